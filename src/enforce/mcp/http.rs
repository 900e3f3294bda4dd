//! The streamable HTTP front: `POST/GET/DELETE /mcp/<server>` on
//! `shadowdraft enforce`, one MCP session (`Mcp-Session-Id`) per agent
//! connection, each with its own upstream connection.
//!
//! Sessions and their SSE streams are the SDK's (`LocalSessionManager`); this
//! file authenticates the agent, checks the request the way the transport
//! specification asks, and wires each new session's transport to a gateway
//! [`Session`].

use super::session::{Identity, Session};
use super::{intercept, Gateway};
use crate::auth::{AuthError, IngestAuth};
use crate::enforce::{Mode, Node};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use futures::{Stream, StreamExt as _};
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, ErrorData, JsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::{ServerSseMessage, SessionId, SessionManager};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

const SESSION_HEADER: &str = "mcp-session-id";

/// Everything `/mcp/<server>` needs.
pub struct Front {
    node: Arc<Node>,
    gateways: BTreeMap<String, Arc<Gateway>>,
    sessions: Arc<LocalSessionManager>,
    /// Who opened each session, and on which server: only they may use it.
    owners: Arc<Mutex<HashMap<SessionId, (String, String)>>>,
    auth: Option<IngestAuth>,
}

/// The routes of the gateway: none when no server is configured.
pub fn router(node: Arc<Node>) -> Router {
    let settings = &node.settings.mcp;
    if settings.servers.is_empty() {
        return Router::new();
    }
    let auth = settings.verifies_tokens().then(|| {
        IngestAuth::new(
            &settings.audience,
            settings.hs256_secret.as_deref(),
            &settings.public_keys,
        )
        .expect("checked keys")
    });
    let gateways = settings
        .servers
        .iter()
        .map(|(name, upstream)| {
            let gateway = Gateway {
                node: node.clone(),
                server: name.clone(),
                upstream: upstream.clone(),
            };
            (name.clone(), Arc::new(gateway))
        })
        .collect();
    let limit = settings.max_message_bytes;
    let front = Arc::new(Front {
        node,
        gateways,
        sessions: Arc::new(LocalSessionManager::default()),
        owners: Arc::default(),
        auth,
    });
    Router::new()
        .route("/mcp/{server}", any(handle))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(front)
}

fn plain(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"error": status.canonical_reason(), "message": message.into()})),
    )
        .into_response()
}

/// A JSON-RPC error as the body of an HTTP error (the request had no usable id).
fn rpc_error(status: StatusCode, error: ErrorData) -> Response {
    let message: ServerJsonRpcMessage = JsonRpcMessage::error(error, None);
    (status, axum::Json(message)).into_response()
}

fn unauthorized(e: &str, invalid: bool) -> Response {
    let mut response = plain(StatusCode::UNAUTHORIZED, e);
    let challenge = match invalid {
        false => "Bearer".to_string(),
        true => format!("Bearer error=\"invalid_token\", error_description=\"{e}\""),
    };
    if let Ok(value) = challenge.parse() {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .any(|m| m.eq_ignore_ascii_case(media) || m == "*/*")
}

fn sse(node: &Node, stream: impl Stream<Item = ServerSseMessage> + Send + 'static) -> Response {
    let events = stream.map(|message| {
        let mut event = Event::default();
        event = match &message.message {
            Some(m) => event.data(serde_json::to_string(m.as_ref()).expect("messages serialise")),
            None => event.data(""),
        };
        if let Some(id) = message.event_id {
            event = event.id(id);
        }
        if let Some(retry) = message.retry {
            event = event.retry(retry);
        }
        Ok::<Event, Infallible>(event)
    });
    let stopping = node.stopping.clone().cancelled_owned();
    Sse::new(events.take_until(stopping))
        .keep_alive(KeepAlive::default())
        .into_response()
}

impl Front {
    /// The agent and its session attributes (without the session id), or the 401.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(String, Option<Value>), Box<Response>> {
        let settings = &self.node.settings.mcp;
        let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(authorization) = authorization else {
            // Without a token only a configured agent in shadow mode may call.
            return match &settings.agent {
                Some(agent) if self.node.settings.mode_of(agent) == Mode::Shadow => Ok((agent.clone(), None)),
                _ => Err(Box::new(unauthorized(&AuthError::Missing.to_string(), false))),
            };
        };
        let Some(auth) = &self.auth else {
            return Err(Box::new(unauthorized(
                "this node verifies no agent tokens: set enforce.mcp.hs256_secret_env or enforce.mcp.public_key_paths",
                true,
            )));
        };
        let claims = auth
            .verify_all(Some(authorization))
            .map_err(|e| Box::new(unauthorized(&e.to_string(), true)))?;
        let agent = match claims.get("sub") {
            Some(Value::String(sub))
                if !sub.is_empty() && sub.len() <= 256 && !sub.chars().any(char::is_control) =>
            {
                sub.clone()
            }
            _ => {
                return Err(Box::new(unauthorized(
                    "the token must name the agent in `sub`",
                    true,
                )))
            }
        };
        Ok((agent, intercept::claim_at(&claims, &settings.user_claim)))
    }

    /// The session a request names, if it exists and belongs to this agent on this server.
    async fn owned_session(
        &self,
        headers: &HeaderMap,
        agent: &str,
        server: &str,
    ) -> Result<SessionId, Response> {
        let id: SessionId = headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                plain(
                    StatusCode::BAD_REQUEST,
                    "Mcp-Session-Id is required (initialize first)",
                )
            })?
            .into();
        let owner = self.owners.lock().expect("owners lock").get(&id).cloned();
        let live = self.sessions.has_session(&id).await.unwrap_or(false);
        match owner {
            Some((a, s)) if live && a == agent && s == server => Ok(id),
            _ => Err(plain(StatusCode::NOT_FOUND, "no such MCP session")),
        }
    }

    /// A new session: its upstream, and the task passing messages until it ends.
    async fn open(
        &self,
        gateway: Arc<Gateway>,
        agent: String,
        user: Option<Value>,
        initialize: ClientJsonRpcMessage,
    ) -> Response {
        let (id, transport) = match self.sessions.create_session().await {
            Ok(pair) => pair,
            Err(e) => {
                return plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot create a session: {e}"),
                )
            }
        };
        let identity = Identity {
            agent: agent.clone(),
            session: intercept::session(user, &id),
        };
        let session = match Session::open(gateway.clone(), identity, transport) {
            Ok(s) => s,
            Err(e) => {
                let _ = self.sessions.close_session(&id).await;
                tracing::error!(server = %gateway.server, error = %e, "cannot start the upstream MCP server");
                return rpc_error(
                    StatusCode::BAD_GATEWAY,
                    ErrorData::internal_error(format!("cannot reach the upstream MCP server: {e}"), None),
                );
            }
        };
        self.owners
            .lock()
            .expect("owners lock")
            .insert(id.clone(), (agent, gateway.server.clone()));
        let (sessions, owners) = (self.sessions.clone(), self.owners.clone());
        let stopping = self.node.stopping.clone();
        let closing = id.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = session.run() => {}
                _ = stopping.cancelled() => {}
            }
            let _ = sessions.close_session(&closing).await;
            owners.lock().expect("owners lock").remove(&closing);
        });
        let answer = match self.sessions.initialize_session(&id, initialize).await {
            Ok(answer) => answer,
            Err(e) => {
                return plain(
                    StatusCode::BAD_GATEWAY,
                    format!("the session did not initialize: {e}"),
                )
            }
        };
        let mut response = sse(
            &self.node,
            futures::stream::once(async move { ServerSseMessage::from_message(answer) }),
        );
        if let Ok(value) = id.parse() {
            response.headers_mut().insert(SESSION_HEADER, value);
        }
        response
    }
}

async fn handle(
    State(front): State<Arc<Front>>,
    Path(server): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(gateway) = front.gateways.get(&server).cloned() else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("no MCP server {server:?} is configured under enforce.mcp.servers"),
        );
    };
    // Browsers must not reach local tools from a web page (DNS rebinding).
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        if !front
            .node
            .settings
            .mcp
            .allowed_origins
            .iter()
            .any(|o| o == origin)
        {
            return plain(
                StatusCode::FORBIDDEN,
                format!("Origin {origin} is not in enforce.mcp.allowed_origins"),
            );
        }
    }
    let (agent, user) = match front.authenticate(&headers) {
        Ok(who) => who,
        Err(response) => return *response,
    };
    match method {
        Method::POST => post(&front, gateway, agent, user, &headers, body).await,
        Method::GET => {
            if !accepts(&headers, "text/event-stream") {
                return plain(StatusCode::NOT_ACCEPTABLE, "GET must accept text/event-stream");
            }
            let id = match front.owned_session(&headers, &agent, &server).await {
                Ok(id) => id,
                Err(response) => return response,
            };
            let last = headers
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let stream = match last {
                Some(last) => front.sessions.resume(&id, last).await.map(|s| s.boxed()),
                None => front
                    .sessions
                    .create_standalone_stream(&id)
                    .await
                    .map(|s| s.boxed()),
            };
            match stream {
                Ok(stream) => sse(&front.node, stream),
                Err(e) => plain(StatusCode::CONFLICT, e.to_string()),
            }
        }
        Method::DELETE => {
            let id = match front.owned_session(&headers, &agent, &server).await {
                Ok(id) => id,
                Err(response) => return response,
            };
            let _ = front.sessions.close_session(&id).await;
            StatusCode::OK.into_response()
        }
        _ => {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use POST, GET or DELETE");
            response
                .headers_mut()
                .insert(header::ALLOW, "GET, POST, DELETE".parse().expect("valid header"));
            response
        }
    }
}

async fn post(
    front: &Front,
    gateway: Arc<Gateway>,
    agent: String,
    user: Option<Value>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !(accepts(headers, "application/json") && accepts(headers, "text/event-stream")) {
        return plain(
            StatusCode::NOT_ACCEPTABLE,
            "POST must accept both application/json and text/event-stream",
        );
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the message is larger than enforce.mcp.max_message_bytes ({} bytes)",
                    front.node.settings.mcp.max_message_bytes
                ),
            )
        }
        Err(rejection) => return plain(rejection.status(), rejection.body_text()),
    };
    let message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                ErrorData::parse_error(format!("not JSON: {e}"), None),
            )
        }
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                ErrorData::invalid_request(format!("not a JSON-RPC 2.0 MCP message: {e}"), None),
            )
        }
    };
    let is_initialize = matches!(
        &message,
        JsonRpcMessage::Request(r) if matches!(r.request, ClientRequest::InitializeRequest(_))
    );
    if headers.get(SESSION_HEADER).is_none() {
        if !is_initialize {
            return plain(
                StatusCode::BAD_REQUEST,
                "Mcp-Session-Id is required (initialize first)",
            );
        }
        return front.open(gateway, agent, user, message).await;
    }
    let id = match front.owned_session(headers, &agent, &gateway.server).await {
        Ok(id) => id,
        Err(response) => return response,
    };
    match message {
        JsonRpcMessage::Request(_) => match front.sessions.create_stream(&id, message).await {
            Ok(stream) => sse(&front.node, stream),
            Err(e) => plain(StatusCode::NOT_FOUND, e.to_string()),
        },
        _ => match front.sessions.accept_message(&id, message).await {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(e) => plain(StatusCode::NOT_FOUND, e.to_string()),
        },
    }
}
