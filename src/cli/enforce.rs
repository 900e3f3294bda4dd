use crate::config::Config;
use crate::enforce::{self, NodeSettings};
use std::path::PathBuf;
use std::process::ExitCode;

/// Run an enforcement node: decide tool calls over the OpenID AuthZEN API.
///
/// The node mirrors the base branch of the policy repository (policy_repo.url,
/// fetched every enforce.interval_seconds and on POST /v1/refresh), validates
/// each new commit strictly and swaps it in whole; a commit that does not load
/// leaves the last good policy in force. It answers POST /access/v1/evaluation,
/// POST /access/v1/evaluations and GET /.well-known/authzen-configuration:
/// subject {type: "agent", id}, action {name: <tool>}, resource {type:
/// "mcp_server", id}, context {input: <args>}.
///
/// In enforce mode it answers the policy's decision (deny everything until a
/// first policy loads). In shadow mode (the default; enforce.mode, or per agent
/// in enforce.agents) it answers allow, records the real decision and posts the
/// calls to the bot (enforce.report_url) as observation batches, spooled under
/// data_dir/enforce/spool so an outage loses nothing. GET /metrics, GET /healthz.
///
/// For every server under enforce.mcp.servers it also serves the MCP gateway at
/// POST/GET/DELETE /mcp/<server> (streamable HTTP): agents connect with a bearer
/// JWT naming them in `sub`, every tools/call is decided as above, and the
/// node spawns the server's `command` per session or proxies to its `url`.
///
/// Reads shadowdraft.yaml (DESIGN §8): --config FILE, else ./shadowdraft.yaml
/// if present, else the embedded default (the repository and ingest key that
/// `shadowdraft serve` keeps in ./shadowdraft-data, listening on 127.0.0.1:8181).
///
/// Example: shadowdraft enforce --config shadowdraft.yaml
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen on this address instead of enforce.listen (port 0: any free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (config, path) = Config::load(args.config.as_deref())?;
    let file = path.map_or_else(|| "(embedded default)".to_string(), |p| p.display().to_string());
    let mut settings = NodeSettings::from_config(&config, &file, &|var| std::env::var(var).ok())
        .map_err(|e| super::InputError(e.to_string()))?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    super::init_logging();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let stop = super::shutdown_signal();
        let running = enforce::start(settings).await?;
        println!("shadowdraft enforce serving on http://{}", running.addr);
        stop.await;
        tracing::info!("shutting down: spooling pending observations");
        running.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}
