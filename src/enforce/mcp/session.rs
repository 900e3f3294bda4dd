//! One gateway session: the agent's transport on one side, one upstream
//! connection on the other, and the messages passed between them as the SDK
//! parsed them. Everything passes through unchanged except a `tools/call`,
//! which is decided first (and in enforce mode may be answered here instead),
//! and a `tools/list` result, which is reported as the server's catalogue (and
//! in enforce mode may lose the tools the agent has no rule for).
//!
//! An upstream that exits is restarted: its requests in flight get an error,
//! and the agent's `initialize` is replayed to the new one so the session
//! goes on. An upstream that does not answer a request within the timeout:
//! the agent gets an error and the upstream a cancellation.

use super::intercept::{self, CataloguePages};
use super::upstream::Connection;
use super::Gateway;
use crate::enforce::authzen::Query;
use crate::enforce::Mode;
use rmcp::model::{
    CancelledNotification, CancelledNotificationParam, ClientJsonRpcMessage, ClientNotification,
    ClientRequest, CustomResult, ErrorData, GetMeta, InitializedNotification, JsonRpcMessage, ProgressToken,
    RequestId, ServerJsonRpcMessage, ServerNotification, ServerResult,
};
use rmcp::transport::Transport;
use rmcp::RoleServer;
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::time::{Duration, Instant};

/// Restarts allowed within [`RESTART_WINDOW`] before the session gives up.
const MAX_RESTARTS: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// Who is calling: the agent (the principal) and its session attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub agent: String,
    pub session: Map<String, Value>,
}

/// A request forwarded upstream and not yet answered.
struct InFlight {
    method: String,
    deadline: Instant,
    progress: Option<ProgressToken>,
    /// `tools/list`; `true` inside when asked without a cursor (a first page).
    lists_tools: Option<bool>,
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The agent closed its side.
    ClientGone,
    /// The upstream could not be (re)started or kept crashing.
    UpstreamFailed(String),
}

pub struct Session<A> {
    gateway: Arc<Gateway>,
    identity: Identity,
    agent: A,
    upstream: Connection,
    in_flight: HashMap<RequestId, InFlight>,
    /// The agent's `initialize` and `notifications/initialized`, replayed to a restarted upstream.
    initialize: Option<ClientJsonRpcMessage>,
    initialized: bool,
    /// The id of a replayed `initialize` whose answer the agent must not see.
    replaying: Option<RequestId>,
    restarts: VecDeque<Instant>,
    pages: CataloguePages,
}

enum Event {
    Agent(Option<ClientJsonRpcMessage>),
    Upstream(Option<ServerJsonRpcMessage>),
    Deadline,
}

impl<A: Transport<RoleServer>> Session<A> {
    /// Open the upstream for a new session.
    pub fn open(gateway: Arc<Gateway>, identity: Identity, agent: A) -> Result<Session<A>, String> {
        let upstream = Connection::open(&gateway.upstream, &gateway.node.tls).map_err(|e| e.to_string())?;
        gateway.node.metrics.mcp_sessions.fetch_add(1, Relaxed);
        tracing::info!(server = %gateway.server, agent = %identity.agent, pid = ?upstream.pid(), "MCP session opened");
        Ok(Session {
            gateway,
            identity,
            agent,
            upstream,
            in_flight: HashMap::new(),
            initialize: None,
            initialized: false,
            replaying: None,
            restarts: VecDeque::new(),
            pages: CataloguePages::default(),
        })
    }

    /// Pass messages until one side goes away.
    pub async fn run(mut self) -> Ended {
        let ended = loop {
            let deadline = self.in_flight.values().map(|f| f.deadline).min();
            let event = tokio::select! {
                m = self.agent.receive() => Event::Agent(m),
                m = self.upstream.receive() => Event::Upstream(m),
                _ = sleep_until(deadline) => Event::Deadline,
            };
            let step = match event {
                Event::Agent(None) => Err(Ended::ClientGone),
                Event::Agent(Some(m)) => self.on_agent_message(m).await,
                Event::Upstream(Some(m)) => self.on_upstream_message(m).await,
                Event::Upstream(None) => self.restart().await,
                Event::Deadline => self.expire().await,
            };
            if let Err(ended) = step {
                break ended;
            }
        };
        // Requests still waiting will not be answered: say so while the agent can hear it.
        if let Ended::UpstreamFailed(why) = &ended {
            let ids: Vec<RequestId> = self.in_flight.keys().cloned().collect();
            for id in ids {
                let _ = self
                    .send_agent(error(id, format!("the upstream MCP server failed: {why}")))
                    .await;
            }
        }
        self.upstream.close().await;
        let _ = self.agent.close().await;
        tracing::info!(server = %self.gateway.server, agent = %self.identity.agent, ?ended, "MCP session closed");
        ended
    }

    async fn on_agent_message(&mut self, message: ClientJsonRpcMessage) -> Result<(), Ended> {
        match message {
            JsonRpcMessage::Request(request) => {
                let id = request.id.clone();
                let mut lists_tools = None;
                match &request.request {
                    ClientRequest::InitializeRequest(_) => {
                        self.initialize = Some(JsonRpcMessage::Request(request.clone()));
                    }
                    ClientRequest::CallToolRequest(call) => {
                        let query = Query {
                            agent: self.identity.agent.clone(),
                            tool: call.params.name.to_string(),
                            server: self.gateway.server.clone(),
                            args: call.params.arguments.clone().unwrap_or_default(),
                            session: Some(self.identity.session.clone()),
                        };
                        if let Some(refused) = self.decide(query) {
                            return self.send_agent(JsonRpcMessage::response(refused, id)).await;
                        }
                    }
                    ClientRequest::ListToolsRequest(list) => {
                        lists_tools = Some(list.params.as_ref().is_none_or(|p| p.cursor.is_none()));
                    }
                    other if other.method() == "tools/call" => {
                        // A `tools/call` the SDK could not read as one: nothing to decide on.
                        if self.mode() == Mode::Enforce {
                            self.gateway.node.metrics.mcp_refused.fetch_add(1, Relaxed);
                            let message =
                                "tools/call params do not fit the MCP schema: refused (fail closed)";
                            return self
                                .send_agent(JsonRpcMessage::error(
                                    ErrorData::invalid_params(message, None),
                                    Some(id),
                                ))
                                .await;
                        }
                        tracing::warn!(agent = %self.identity.agent, "forwarding a tools/call whose params do not fit the MCP schema (shadow mode)");
                    }
                    _ => {}
                }
                let in_flight = InFlight {
                    method: request.request.method().to_string(),
                    deadline: Instant::now() + self.gateway.node.settings.mcp.call_timeout,
                    progress: request.request.get_meta().get_progress_token(),
                    lists_tools,
                };
                self.in_flight.insert(id, in_flight);
                self.send_upstream(JsonRpcMessage::Request(request)).await
            }
            JsonRpcMessage::Notification(notification) => {
                match &notification.notification {
                    ClientNotification::CancelledNotification(cancelled) => {
                        if let Some(id) = &cancelled.params.request_id {
                            self.in_flight.remove(id);
                        }
                    }
                    ClientNotification::InitializedNotification(_) => self.initialized = true,
                    _ => {}
                }
                self.send_upstream(JsonRpcMessage::Notification(notification))
                    .await
            }
            other => self.send_upstream(other).await,
        }
    }

    async fn on_upstream_message(&mut self, message: ServerJsonRpcMessage) -> Result<(), Ended> {
        match message {
            JsonRpcMessage::Response(mut response) => {
                if self.replaying.as_ref() == Some(&response.id) {
                    self.replaying = None;
                    if self.initialized {
                        let done =
                            ClientNotification::InitializedNotification(InitializedNotification::default());
                        return self.send_upstream(JsonRpcMessage::notification(done)).await;
                    }
                    return Ok(());
                }
                if let Some(first) = self.in_flight.remove(&response.id).and_then(|f| f.lists_tools) {
                    response.result = self.tools_listed(&response.result, first);
                }
                self.send_agent(JsonRpcMessage::Response(response)).await
            }
            JsonRpcMessage::Error(error) => {
                if let Some(id) = &error.id {
                    if self.replaying.as_ref() == Some(id) {
                        self.replaying = None;
                        tracing::error!(server = %self.gateway.server, error = ?error.error, "the restarted upstream refused the replayed initialize");
                        return Err(Ended::UpstreamFailed(format!(
                            "the restarted upstream refused initialize: {}",
                            error.error.message
                        )));
                    }
                    self.in_flight.remove(id);
                }
                self.send_agent(JsonRpcMessage::Error(error)).await
            }
            JsonRpcMessage::Notification(notification) => {
                if let ServerNotification::ProgressNotification(progress) = &notification.notification {
                    // A request that reports progress is alive.
                    let extended = Instant::now() + self.gateway.node.settings.mcp.call_timeout;
                    for f in self.in_flight.values_mut() {
                        if f.progress.as_ref() == Some(&progress.params.progress_token) {
                            f.deadline = extended;
                        }
                    }
                }
                self.send_agent(JsonRpcMessage::Notification(notification)).await
            }
            request @ JsonRpcMessage::Request(_) => self.send_agent(request).await,
        }
    }

    fn mode(&self) -> Mode {
        self.gateway.node.settings.mode_of(&self.identity.agent)
    }

    /// The node's decision; the tool result that refuses the call when it is
    /// denied in enforce mode (shadow mode records it and lets it through).
    fn decide(&self, query: Query) -> Option<ServerResult> {
        let node = &self.gateway.node;
        let policy = node.policy.current();
        let out = node.evaluate(policy.as_deref(), query.clone());
        if out.decision {
            return None;
        }
        node.metrics.mcp_refused.fetch_add(1, Relaxed);
        tracing::info!(agent = %query.agent, tool = %query.tool, server = %query.server,
            reason = ?out.context.reason, "refused a tools/call");
        Some(ServerResult::CallToolResult(intercept::refusal(&query, &out)))
    }

    /// Report the catalogue; in enforce mode, hide tools without a rule if configured.
    fn tools_listed(&mut self, result: &ServerResult, first: bool) -> ServerResult {
        let Ok(value) = serde_json::to_value(result) else {
            return result.clone();
        };
        if let Some(whole) = self.pages.page(&value, first) {
            self.gateway.node.feedback.catalogue(&self.gateway.server, whole);
        }
        let settings = &self.gateway.node.settings.mcp;
        if !settings.hide_unruled_tools || self.mode() != Mode::Enforce {
            return result.clone();
        }
        let policy = self.gateway.node.policy.current();
        let (agent, server) = (&self.identity.agent, &self.gateway.server);
        let kept = intercept::keep_tools(value, |tool| {
            policy
                .as_deref()
                .is_some_and(|p| p.slice_for(agent, tool, server).is_some())
        });
        ServerResult::CustomResult(CustomResult(kept))
    }

    /// The upstream went away: fail what it owed, start it again, replay `initialize`.
    async fn restart(&mut self) -> Result<(), Ended> {
        let server = self.gateway.server.clone();
        tracing::warn!(%server, in_flight = self.in_flight.len(), "the upstream MCP server exited");
        let owed: Vec<RequestId> = self.in_flight.drain().map(|(id, _)| id).collect();
        for id in owed {
            let message = format!(
                "the upstream MCP server {server:?} exited before answering; the gateway restarted it"
            );
            self.send_agent(error(id, message)).await?;
        }
        let now = Instant::now();
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() >= MAX_RESTARTS {
            return Err(Ended::UpstreamFailed(format!(
                "it exited {MAX_RESTARTS} times within {} s",
                RESTART_WINDOW.as_secs()
            )));
        }
        self.restarts.push_back(now);
        // A server that dies at once should not make us spin.
        tokio::time::sleep(Duration::from_millis(100 << self.restarts.len().min(5))).await;
        self.upstream.close().await;
        self.upstream = Connection::open(&self.gateway.upstream, &self.gateway.node.tls)
            .map_err(|e| Ended::UpstreamFailed(e.to_string()))?;
        self.gateway
            .node
            .metrics
            .mcp_upstream_restarts
            .fetch_add(1, Relaxed);
        tracing::info!(%server, pid = ?self.upstream.pid(), "upstream MCP server restarted");
        if let Some(JsonRpcMessage::Request(mut initialize)) = self.initialize.clone() {
            let id = RequestId::String(format!("shadowdraft-reinitialize-{}", self.restarts.len()).into());
            initialize.id = id.clone();
            self.replaying = Some(id);
            self.send_upstream(JsonRpcMessage::Request(initialize)).await?;
        }
        Ok(())
    }

    /// Answer the requests the upstream has sat on too long.
    async fn expire(&mut self) -> Result<(), Ended> {
        let now = Instant::now();
        let late: Vec<RequestId> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        let timeout = self.gateway.node.settings.mcp.call_timeout.as_secs();
        for id in late {
            let Some(f) = self.in_flight.remove(&id) else {
                continue;
            };
            self.gateway
                .node
                .metrics
                .mcp_upstream_timeouts
                .fetch_add(1, Relaxed);
            tracing::warn!(server = %self.gateway.server, method = %f.method, "the upstream did not answer in time");
            let params = CancelledNotificationParam::new(
                Some(id.clone()),
                Some(format!("no answer within {timeout} s (shadowdraft gateway)")),
            );
            let cancel = ClientNotification::CancelledNotification(CancelledNotification::new(params));
            self.send_upstream(JsonRpcMessage::notification(cancel)).await?;
            let message = format!(
                "the upstream MCP server {:?} did not answer {} within {timeout} s",
                self.gateway.server, f.method
            );
            self.send_agent(error(id, message)).await?;
        }
        Ok(())
    }

    async fn send_agent(&mut self, message: ServerJsonRpcMessage) -> Result<(), Ended> {
        self.agent.send(message).await.map_err(|e| {
            tracing::debug!(error = %e, "the agent's side is closed");
            Ended::ClientGone
        })
    }

    async fn send_upstream(&mut self, message: ClientJsonRpcMessage) -> Result<(), Ended> {
        if let Err(e) = self.upstream.send(message).await {
            // The receive side sees the same failure and restarts the upstream.
            tracing::warn!(server = %self.gateway.server, error = %e, "cannot write to the upstream MCP server");
        }
        Ok(())
    }
}

fn error(id: RequestId, message: String) -> ServerJsonRpcMessage {
    JsonRpcMessage::error(ErrorData::internal_error(message, None), Some(id))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
