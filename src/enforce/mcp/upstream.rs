//! The connection to one upstream MCP server, through the SDK's client
//! transports: a child process spoken to over stdio, or streamable HTTP.

use crate::config::Upstream;
use futures::future::BoxFuture;
use futures::FutureExt as _;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess, Transport};
use rmcp::RoleClient;
use std::process::Stdio;

/// One live connection to an upstream.
pub enum Connection {
    Child(TokioChildProcess),
    Http(StreamableHttpClientTransport<reqwest::Client>),
}

impl Connection {
    /// Spawn the command or connect to the URL. `max_line` bounds one message
    /// from a child; `tls` is the node's client configuration.
    pub fn open(spec: &Upstream, tls: &rustls::ClientConfig) -> std::io::Result<Connection> {
        match spec {
            Upstream::Command(argv) => {
                let (program, args) = argv.split_first().expect("checked: a command names a program");
                let mut command = tokio::process::Command::new(program);
                command.args(args).kill_on_drop(true);
                // The child's diagnostics go where ours go (stderr), never into the protocol.
                let (child, _) = TokioChildProcess::builder(command)
                    .stderr(Stdio::inherit())
                    .spawn()
                    .map_err(|e| std::io::Error::new(e.kind(), format!("cannot start {program}: {e}")))?;
                Ok(Connection::Child(child))
            }
            Upstream::Url { url, bearer } => {
                let client = reqwest::Client::builder()
                    .use_preconfigured_tls(tls.clone())
                    .build()
                    .map_err(std::io::Error::other)?;
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                if let Some(token) = bearer {
                    config = config.auth_header(token.clone());
                }
                Ok(Connection::Http(StreamableHttpClientTransport::with_client(
                    client, config,
                )))
            }
        }
    }

    /// The child's process id (tests and logs).
    pub fn pid(&self) -> Option<u32> {
        match self {
            Connection::Child(child) => child.id(),
            Connection::Http(_) => None,
        }
    }

    pub fn send(&mut self, message: ClientJsonRpcMessage) -> BoxFuture<'static, Result<(), String>> {
        match self {
            Connection::Child(t) => Transport::<RoleClient>::send(t, message)
                .map(|r| r.map_err(|e| e.to_string()))
                .boxed(),
            Connection::Http(t) => Transport::<RoleClient>::send(t, message)
                .map(|r| r.map_err(|e| e.to_string()))
                .boxed(),
        }
    }

    pub async fn receive(&mut self) -> Option<ServerJsonRpcMessage> {
        match self {
            Connection::Child(t) => Transport::<RoleClient>::receive(t).await,
            Connection::Http(t) => Transport::<RoleClient>::receive(t).await,
        }
    }

    /// Close gracefully: a child gets EOF on stdin, then SIGTERM, then SIGKILL.
    pub async fn close(&mut self) {
        let result = match self {
            Connection::Child(t) => Transport::<RoleClient>::close(t).await.map_err(|e| e.to_string()),
            Connection::Http(t) => Transport::<RoleClient>::close(t).await.map_err(|e| e.to_string()),
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "closing the upstream MCP connection");
        }
    }
}
