//! `shadowdraft enforce`: the enforcement node.
//!
//! It mirrors the base branch of the policy repository (git2, at an interval
//! and on `POST /v1/refresh`), loads and strictly validates each new commit and
//! swaps it in whole (a bad commit leaves the last good one in force), decides
//! over the OpenID AuthZEN Authorization API 1.0, and in shadow mode answers
//! allow while recording the real decision, which it reports to the bot as
//! `ObservationBatch`es through a disk spool.
//!
//! The decision path: AuthZEN JSON → (agent, tool, server, args) →
//! `core::mapping::request` → `core::replay::authorize` on the (agent, tool)
//! slice prebuilt at load. Its cost does not depend on the size of the fleet.
//! Decisions are remembered per commit ([`cache`]) by the values the rules
//! read, so a repeated call skips Cedar entirely.
//!
//! The node can also sit in the agent's call path as an MCP gateway
//! ([`mcp`]): every `tools/call` takes the same decision path.

pub mod authzen;
pub mod cache;
pub mod feedback;
pub mod mcp;
pub mod policy;
pub mod tls;

pub use crate::config::{EnforceConfig, Mode, NodeSettings};

use crate::config::Committer;
use crate::core::check::why_denied;
use crate::core::mapping;
use crate::core::native;
use crate::core::replay::authorize;
use crate::git::{Credentials, PolicyRepo};
use anyhow::Context as _;
use authzen::{BadRequest, DecisionContext, DecisionOut, Query};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cache::DecisionCache;
use feedback::{Feedback, Sender};
use policy::{Enforced, PolicyState, SyncStatus};
use serde_json::json;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Counters of the node, for `GET /metrics`.
#[derive(Default)]
pub struct NodeMetrics {
    /// [mode][real decision]: enforce/shadow × deny/allow.
    evaluations: [[AtomicU64; 2]; 2],
    pub bad_requests: AtomicU64,
    pub fetch_failures: AtomicU64,
    pub load_failures: AtomicU64,
    pub loads: AtomicU64,
    pub batches_sent: AtomicU64,
    pub batches_failed: AtomicU64,
    pub batches_rejected: AtomicU64,
    pub spool_dropped: AtomicU64,
    /// Calls beyond the observation limits, left out of the reports.
    pub unreportable: AtomicU64,
    /// MCP gateway: sessions opened, calls refused in enforce mode, upstream
    /// restarts after a crash, requests the upstream did not answer in time.
    pub mcp_sessions: AtomicU64,
    pub mcp_refused: AtomicU64,
    pub mcp_upstream_restarts: AtomicU64,
    pub mcp_upstream_timeouts: AtomicU64,
}

impl NodeMetrics {
    fn evaluated(&self, mode: Mode, allowed: bool) {
        self.evaluations[mode as usize][allowed as usize].fetch_add(1, Relaxed);
    }

    pub fn evaluations(&self, mode: Mode, allowed: bool) -> u64 {
        self.evaluations[mode as usize][allowed as usize].load(Relaxed)
    }
}

/// The enforcement node: settings, the policy in force, feedback.
pub struct Node {
    pub settings: NodeSettings,
    pub policy: PolicyState,
    pub metrics: Arc<NodeMetrics>,
    pub feedback: Arc<Feedback>,
    /// The TLS client configuration for reports and MCP upstream URLs.
    pub tls: Arc<rustls::ClientConfig>,
    /// Cancelled when the node stops: ends MCP sessions and their streams.
    pub stopping: tokio_util::sync::CancellationToken,
    repo: Mutex<Option<PolicyRepo>>,
}

/// What the policy says about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub determining: Vec<String>,
    pub reason: Option<String>,
}

fn deny(reason: String) -> Decision {
    Decision {
        allowed: false,
        determining: Vec::new(),
        reason: Some(reason),
    }
}

/// Decide one call against `enforced` (`None`: nothing loaded yet, deny).
pub fn decide(enforced: Option<&Enforced>, query: &Query) -> Decision {
    let Some(enforced) = enforced else {
        return deny("no policy has loaded yet: denying until one does".into());
    };
    let Some(set) = enforced.slice_for(&query.agent, &query.tool, &query.server) else {
        return deny(format!(
            "no rule covers agent {:?} calling {:?} on {:?}",
            query.agent, query.tool, query.server
        ));
    };
    let key = enforced
        .unread_strings(&query.agent, &query.tool)
        .map(|unread| DecisionCache::key(query, unread));
    if let Some(hit) = key.as_deref().and_then(|k| enforced.cache.get(k)) {
        return hit;
    }
    let outcome = evaluate(enforced, set, query);
    if let Some(key) = key {
        enforced.cache.put(key, &outcome);
    }
    outcome
}

/// Decide on the slice: natively when its rules are in the fragment, else (or
/// when the native path cannot tell) with Cedar.
fn evaluate(enforced: &Enforced, set: &cedar_policy::PolicySet, query: &Query) -> Decision {
    decide_natively(enforced, query).unwrap_or_else(|| decide_with_cedar(enforced, set, query))
}

/// The decision without Cedar, when every rule it reads is in the native
/// fragment and evaluates; `None`: ask Cedar. Not cached.
pub fn decide_natively(enforced: &Enforced, query: &Query) -> Option<Decision> {
    let rules = enforced.native_slice_for(&query.agent, &query.tool, &query.server)?;
    let context = match mapping::native_context(
        &query.tool,
        &query.args,
        query.session.as_ref(),
        &enforced.repo.schema,
    ) {
        Ok(c) => c,
        Err(e) => return Some(deny(format!("the call does not fit the schema: {e}"))),
    };
    let call = native::Call {
        agent: &query.agent,
        tool: &query.tool,
        server: &query.server,
    };
    let (allowed, determining) = native::decide(rules, call, &context)?;
    let reason = if allowed {
        None
    } else if !determining.is_empty() {
        Some(format!("forbidden by {}", determining.join(", ")))
    } else {
        let explain = enforced.native_explain_for(&query.agent, &query.tool)?;
        Some(format!(
            "no rule allows it ({})",
            native::why_denied(explain, call, &context)?
        ))
    };
    Some(Decision {
        allowed,
        determining,
        reason,
    })
}

/// The decision Cedar takes on the slice of the call (`None`: no rule covers
/// it), without the cache or the native path: the reference.
pub fn decide_by_cedar(enforced: &Enforced, query: &Query) -> Decision {
    match enforced.slice_for(&query.agent, &query.tool, &query.server) {
        Some(set) => decide_with_cedar(enforced, set, query),
        None => decide(Some(enforced), query),
    }
}

/// Map the call to a Cedar request and authorize it on its slice.
fn decide_with_cedar(enforced: &Enforced, set: &cedar_policy::PolicySet, query: &Query) -> Decision {
    let request = match mapping::request(
        &query.agent,
        &query.tool,
        &query.server,
        &query.args,
        query.session.as_ref(),
        &enforced.repo.schema,
    ) {
        Ok(r) => r,
        Err(e) => return deny(format!("the call does not fit the schema: {e}")),
    };
    let verdict = authorize(set, &request);
    let reason = if verdict.allowed {
        None
    } else if !verdict.determining.is_empty() {
        Some(format!("forbidden by {}", verdict.determining.join(", ")))
    } else if !verdict.errors.is_empty() {
        Some(format!("no rule allows it ({})", verdict.errors.join("; ")))
    } else {
        // As `explain` says it: the closest rule and the conditions that failed.
        Some(format!(
            "no rule allows it ({})",
            why_denied(&enforced.repo, &query.agent, &query.tool, &request)
        ))
    };
    Decision {
        allowed: verdict.allowed,
        determining: verdict.determining,
        reason,
    }
}

impl Node {
    /// A node with no policy loaded; `open_repo` false (benchmarks) skips the git mirror.
    pub fn new(settings: NodeSettings, open_repo: bool) -> anyhow::Result<Node> {
        std::fs::create_dir_all(&settings.dir)
            .with_context(|| format!("cannot create {}", settings.dir.display()))?;
        let repo = if open_repo {
            Some(PolicyRepo::open(
                &settings.dir.join("mirror.git"),
                &settings.repo_url,
                &settings.base_branch,
                Committer {
                    name: "shadowdraft enforce".into(),
                    email: "enforce@shadowdraft.invalid".into(),
                },
            )?)
        } else {
            None
        };
        let metrics = Arc::new(NodeMetrics::default());
        let feedback = Arc::new(Feedback::new(&settings, metrics.clone())?);
        let tls = tls::client_config(settings.tls_ca.as_deref())?;
        Ok(Node {
            settings,
            policy: PolicyState::default(),
            metrics,
            feedback,
            tls,
            stopping: tokio_util::sync::CancellationToken::new(),
            repo: Mutex::new(repo),
        })
    }

    /// Evaluate one query: the answer (mode applied) and, in shadow mode, record it.
    pub fn evaluate(&self, policy: Option<&Enforced>, query: Query) -> DecisionOut {
        let outcome = decide(policy, &query);
        let mode = self.settings.mode_of(&query.agent);
        self.metrics.evaluated(mode, outcome.allowed);
        let commit = policy.map(|p| p.commit.clone());
        let decision = match mode {
            Mode::Enforce => outcome.allowed,
            Mode::Shadow => true,
        };
        if mode == Mode::Shadow {
            self.feedback.record(commit.as_deref(), query, outcome.allowed);
        }
        DecisionOut {
            decision,
            context: DecisionContext {
                policy_commit: commit,
                mode: mode.as_str(),
                determining_policies: outcome.determining,
                reason: outcome.reason,
                shadow_decision: (mode == Mode::Shadow).then_some(outcome.allowed),
            },
        }
    }

    /// `POST /access/v1/evaluation`, in process: the body in, the JSON answer out.
    pub fn evaluation(&self, body: &[u8]) -> Result<Vec<u8>, BadRequest> {
        let query = authzen::parse_evaluation(body)?;
        let policy = self.policy.current();
        let out = self.evaluate(policy.as_deref(), query);
        Ok(serde_json::to_vec(&out).expect("serialisable"))
    }

    /// `POST /access/v1/evaluations`, in process.
    pub fn evaluations(&self, body: &[u8]) -> Result<Vec<u8>, BadRequest> {
        let (queries, semantic) = authzen::parse_evaluations(body, self.settings.max_evaluations)?;
        let policy = self.policy.current();
        let Some(semantic) = semantic else {
            let query = queries.into_iter().next().expect("one query");
            let out = self.evaluate(policy.as_deref(), query);
            return Ok(serde_json::to_vec(&out).expect("serialisable"));
        };
        let mut results = Vec::with_capacity(queries.len());
        for query in queries {
            let out = self.evaluate(policy.as_deref(), query);
            let stop = authzen::stop_after(semantic, out.decision);
            results.push(out);
            if stop {
                break;
            }
        }
        Ok(serde_json::to_vec(&json!({ "evaluations": results })).expect("serialisable"))
    }

    /// Fetch the base branch and load its tip if it is new. Blocking (git2).
    pub fn sync(&self) -> SyncStatus {
        let guard = self.repo.lock().expect("repo lock");
        let Some(repo) = guard.as_ref() else {
            return self.policy.status();
        };
        // Several processes may share the mirror (one `shadowdraft mcp` per
        // agent and server): one fetches at a time.
        let _exclusive = match std::fs::File::create(self.settings.dir.join("mirror.lock")) {
            Ok(file) => file.lock().map(|()| file).ok(),
            Err(_) => None,
        };
        let credentials = self.settings.repo_token.as_ref().map(|t| Credentials {
            user: "x-access-token".into(),
            password: t.clone(),
        });
        let tip = match repo.fetch(credentials.as_ref()) {
            Ok(tip) => tip.to_string(),
            Err(e) => {
                self.metrics.fetch_failures.fetch_add(1, Relaxed);
                let message = format!("{e:#}");
                tracing::error!(error = %message, "cannot fetch the policy repository; keeping the current policy");
                self.policy.failed(None, message);
                return self.policy.status();
            }
        };
        let current = self.policy.current().map(|p| p.commit.clone());
        if current.as_deref() == Some(tip.as_str()) {
            if self.policy.status().error.is_some() {
                // The fetch works again and the tip is the policy in force.
                self.policy.install_status_ok(&tip);
            }
            return self.policy.status();
        }
        if self.policy.failed_tip().as_deref() == Some(tip.as_str()) {
            return self.policy.status();
        }
        let loaded = repo
            .files(tip.parse().expect("a fetched oid"))
            .map_err(|e| vec![format!("{e:#}")])
            .and_then(|files| Enforced::build(&tip, &files));
        match loaded {
            Ok(enforced) => {
                tracing::info!(commit = %tip, rules = enforced.rules, "policy loaded");
                self.policy.install(enforced);
                self.policy.set_failed_tip(None);
                self.metrics.loads.fetch_add(1, Relaxed);
            }
            Err(problems) => {
                self.metrics.load_failures.fetch_add(1, Relaxed);
                let message = format!("commit {tip} does not load: {}", problems.join("; "));
                tracing::error!(error = %message, kept = ?current, "keeping the last good policy");
                self.policy.failed(Some(tip.clone()), message);
                self.policy.set_failed_tip(Some(tip));
            }
        }
        self.policy.status()
    }

    /// Prometheus text.
    pub fn render_metrics(&self) -> String {
        let m = &self.metrics;
        let mut out = String::new();
        out.push_str("# HELP shadowdraft_enforce_evaluations_total Evaluations by mode and by what the policy decided.\n");
        out.push_str("# TYPE shadowdraft_enforce_evaluations_total counter\n");
        for mode in [Mode::Shadow, Mode::Enforce] {
            for (allowed, decision) in [(true, "allow"), (false, "deny")] {
                let _ = writeln!(
                    out,
                    "shadowdraft_enforce_evaluations_total{{mode=\"{}\",decision=\"{decision}\"}} {}",
                    mode.as_str(),
                    m.evaluations(mode, allowed)
                );
            }
        }
        let status = self.policy.status();
        let current = self.policy.current();
        out.push_str(
            "# HELP shadowdraft_enforce_policy_info The commit in force (value 1), with its rule count.\n",
        );
        out.push_str("# TYPE shadowdraft_enforce_policy_info gauge\n");
        if let Some(p) = &current {
            let _ = writeln!(
                out,
                "shadowdraft_enforce_policy_info{{commit=\"{}\",rules=\"{}\"}} 1",
                p.commit, p.rules
            );
        }
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        gauge(
            &mut out,
            "shadowdraft_enforce_policy_loaded",
            "1 once a policy is in force.",
            "gauge",
            current.is_some() as u64,
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_policy_loaded_at_seconds",
            "When the policy in force was loaded (unix time).",
            "gauge",
            status.loaded_at.unwrap_or(0) as u64,
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_policy_loads_total",
            "Commits loaded.",
            "counter",
            m.loads.load(Relaxed),
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_policy_load_failures_total",
            "Commits of the base branch that did not load (the last good policy stayed).",
            "counter",
            m.load_failures.load(Relaxed),
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_policy_fetch_failures_total",
            "Failed fetches of the policy repository.",
            "counter",
            m.fetch_failures.load(Relaxed),
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_policy_last_sync_failed",
            "1 while the last fetch or load failed.",
            "gauge",
            status.error.is_some() as u64,
        );
        // Per commit: they start again at zero when a new commit loads.
        let cache = current.as_ref().map(|p| &p.cache);
        for (name, help, value) in [
            (
                "shadowdraft_enforce_decision_cache_entries",
                "Decisions remembered for the commit in force.",
                cache.map_or(0, |c| c.len() as u64),
            ),
            (
                "shadowdraft_enforce_decision_cache_hits",
                "Decisions answered from the cache since the commit in force loaded.",
                cache.map_or(0, |c| c.hits()),
            ),
            (
                "shadowdraft_enforce_decision_cache_misses",
                "Decisions Cedar took since the commit in force loaded (not in the cache).",
                cache.map_or(0, |c| c.misses()),
            ),
        ] {
            gauge(&mut out, name, help, "gauge", value);
        }
        gauge(
            &mut out,
            "shadowdraft_enforce_bad_requests_total",
            "Requests refused with 400.",
            "counter",
            m.bad_requests.load(Relaxed),
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_pending_calls",
            "Distinct observed calls not yet in a batch.",
            "gauge",
            self.feedback.pending() as u64,
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_spool_batches",
            "Batches spooled on disk, waiting to be sent.",
            "gauge",
            self.feedback.spool().depth() as u64,
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_batches_sent_total",
            "Batches the bot accepted.",
            "counter",
            m.batches_sent.load(Relaxed),
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_batches_failed_total",
            "Attempts to send a batch that failed (retried).",
            "counter",
            m.batches_failed.load(Relaxed),
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_batches_rejected_total",
            "Batches the bot refused as invalid (set aside in spool/rejected).",
            "counter",
            m.batches_rejected.load(Relaxed),
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_spool_dropped_total",
            "Batches dropped because the spool was full.",
            "counter",
            m.spool_dropped.load(Relaxed),
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_unreportable_calls_total",
            "Calls beyond the observation limits (depth, size), left out of the reports.",
            "counter",
            m.unreportable.load(Relaxed),
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_mcp_sessions_total",
            "MCP gateway sessions opened.",
            "counter",
            m.mcp_sessions.load(Relaxed),
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_mcp_refused_total",
            "tools/call requests refused in enforce mode (never forwarded).",
            "counter",
            m.mcp_refused.load(Relaxed),
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_mcp_upstream_restarts_total",
            "Upstream MCP servers restarted after they exited.",
            "counter",
            m.mcp_upstream_restarts.load(Relaxed),
        );
        gauge(
            &mut out,
            "shadowdraft_enforce_mcp_upstream_timeouts_total",
            "Requests an upstream MCP server did not answer within enforce.mcp.call_timeout_seconds.",
            "counter",
            m.mcp_upstream_timeouts.load(Relaxed),
        );
        out
    }
}

/// AuthZEN-style 400: `{"error": "invalid_request", "message": ...}`.
fn bad_request(node: &Node, e: BadRequest) -> Response {
    node.metrics.bad_requests.fetch_add(1, Relaxed);
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "invalid_request", "message": e.0})),
    )
        .into_response()
}

fn answer(node: &Node, headers: &HeaderMap, result: Result<Vec<u8>, BadRequest>) -> Response {
    let mut response = match result {
        Ok(body) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response(),
        Err(e) => bad_request(node, e),
    };
    // AuthZEN: the PDP echoes the request id.
    if let Some(id) = headers.get("x-request-id") {
        response.headers_mut().insert("x-request-id", id.clone());
    }
    response
}

async fn evaluation(State(node): State<Arc<Node>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = node.evaluation(&body);
    answer(&node, &headers, result)
}

async fn evaluations(State(node): State<Arc<Node>>, headers: HeaderMap, body: Bytes) -> Response {
    // Up to `max_evaluations` decisions: off the async threads, so health and
    // single evaluations stay responsive.
    let n = node.clone();
    let result = tokio::task::spawn_blocking(move || n.evaluations(&body))
        .await
        .expect("evaluations do not panic");
    answer(&node, &headers, result)
}

async fn configuration(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| node.settings.listen.to_string(), str::to_string);
    let base = format!("http://{host}");
    axum::Json(json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
    }))
    .into_response()
}

async fn refresh(State(node): State<Arc<Node>>) -> Response {
    let n = node.clone();
    let status = tokio::task::spawn_blocking(move || n.sync())
        .await
        .expect("sync does not panic");
    let code = match (&status.error, &status.fetched, &status.commit) {
        (None, _, _) => StatusCode::OK,
        // The branch tip does not load: the last good policy stays in force.
        (Some(_), Some(fetched), commit) if commit.as_ref() != Some(fetched) => StatusCode::CONFLICT,
        (Some(_), _, _) => StatusCode::BAD_GATEWAY,
    };
    (code, axum::Json(status)).into_response()
}

async fn health(State(node): State<Arc<Node>>) -> Response {
    axum::Json(json!({"status": "ok", "policy": node.policy.status()})).into_response()
}

async fn metrics(State(node): State<Arc<Node>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.render_metrics(),
    )
        .into_response()
}

pub fn router(node: Arc<Node>) -> Router {
    let max_body = node.settings.max_body_bytes;
    let gateway = mcp::http::router(node.clone());
    Router::new()
        .route("/access/v1/evaluation", post(evaluation))
        .route("/access/v1/evaluations", post(evaluations))
        .route("/.well-known/authzen-configuration", get(configuration))
        .route("/v1/refresh", post(refresh))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(node)
        .merge(gateway)
}

/// A running node.
pub struct Running {
    pub addr: SocketAddr,
    pub node: Arc<Node>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stop serving, spool what is waiting (it is sent after the next start).
    pub async fn stop(self) {
        self.node.stopping.cancel();
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        let node = self.node;
        let _ = tokio::task::spawn_blocking(move || node.feedback.flush()).await;
    }
}

/// Open the mirror, bind, and start syncing, flushing and sending.
pub async fn start(settings: NodeSettings) -> anyhow::Result<Running> {
    let listen = settings.listen;
    let node = Arc::new(tokio::task::spawn_blocking(move || Node::new(settings, true)).await??);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let (shutdown, stopped) = watch::channel(false);
    let mut tasks = background(&node, &stopped, true);

    let mut stop_serving = stopped;
    let serving = crate::http::serve(listener, router(node.clone()), node.settings.http, async move {
        let _ = stop_serving.wait_for(|stop| *stop).await;
    });
    tasks.push(tokio::spawn(serving));
    tracing::info!(%addr, node = %node.settings.node_id, "shadowdraft enforce serving");
    Ok(Running {
        addr,
        node,
        shutdown,
        tasks,
    })
}

/// The node's background work until `stopped`: policy sync (now, when
/// `sync_now`, then every interval), flushing observed calls into spooled
/// batches, and sending them.
pub fn background(
    node: &Arc<Node>,
    stopped: &watch::Receiver<bool>,
    sync_now: bool,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();

    // Policy sync: now (unless the caller just did), then every interval.
    {
        let node = node.clone();
        let mut stop = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let mut sync = sync_now;
            loop {
                if sync {
                    let n = node.clone();
                    let _ = tokio::task::spawn_blocking(move || n.sync()).await;
                }
                sync = true;
                tokio::select! {
                    _ = tokio::time::sleep(node.settings.interval) => {}
                    _ = stop.changed() => return,
                }
            }
        }));
    }
    // Flush observed calls into spooled batches.
    {
        let node = node.clone();
        let mut stop = stopped.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(node.settings.flush_interval) => {}
                    _ = node.feedback.full.notified() => {}
                    _ = stop.changed() => return,
                }
                let feedback = node.feedback.clone();
                match tokio::task::spawn_blocking(move || feedback.flush()).await {
                    Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "cannot spool observations"),
                    Err(e) => tracing::error!(error = %e, "flush panicked"),
                    Ok(Ok(_)) => {}
                }
            }
        }));
    }

    // Send spooled batches.
    tasks.push(tokio::spawn(node.sender().run(stopped.clone())));
    tasks
}

impl Node {
    /// A sender of this node's spooled batches.
    pub fn sender(&self) -> Sender {
        Sender::new(
            self.settings.clone(),
            self.feedback.clone(),
            self.metrics.clone(),
            &self.tls,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::Value;

    fn node(yaml: &str) -> (tempfile::TempDir, Node) {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("data_dir: {}\n{yaml}", dir.path().display());
        let config = Config::parse("t.yaml", &text).unwrap();
        let settings = NodeSettings::from_config(&config, "t.yaml", &|_| None).unwrap();
        (dir, Node::new(settings, false).unwrap())
    }

    fn load(node: &Node) {
        let text = r#"@id("a/send/1") permit (principal == Agent::"a", action == Action::"send", resource == McpServer::"gmail")
              when { context.input.to like "*@acme.com" };"#;
        let files = policy::tests::files(text);
        node.policy.install(Enforced::build("c1c1c1c", &files).unwrap());
    }

    fn call(agent: &str, to: &str) -> Vec<u8> {
        serde_json::json!({"subject": {"type": "agent", "id": agent}, "action": {"name": "send"},
            "resource": {"type": "mcp_server", "id": "gmail"}, "context": {"input": {"to": to}}})
        .to_string()
        .into_bytes()
    }

    fn answer(bytes: Vec<u8>) -> Value {
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn enforce_mode_denies_everything_until_a_policy_loads() {
        let (_dir, node) = node("enforce: {mode: enforce}\n");
        let out = answer(node.evaluation(&call("a", "x@acme.com")).unwrap());
        assert_eq!(out["decision"], false);
        assert!(
            out["context"]["reason"].as_str().unwrap().contains("no policy"),
            "{out}"
        );
        assert_eq!(out["context"]["policy_commit"], Value::Null);
        load(&node);
        let out = answer(node.evaluation(&call("a", "x@acme.com")).unwrap());
        assert_eq!(out["decision"], true, "{out}");
        assert_eq!(out["context"]["policy_commit"], "c1c1c1c");
        assert_eq!(out["context"]["determining_policies"][0], "a/send/1");
        let out = answer(node.evaluation(&call("a", "x@evil.com")).unwrap());
        assert_eq!(out["decision"], false);
        let out = answer(node.evaluation(&call("b", "x@acme.com")).unwrap());
        assert_eq!(out["decision"], false);
        assert!(out["context"]["reason"]
            .as_str()
            .unwrap()
            .contains("no rule covers"));
        // An argument the schema does not know: fail closed.
        let bcc = serde_json::json!({"subject": {"type": "agent", "id": "a"}, "action": {"name": "send"},
            "resource": {"type": "mcp_server", "id": "gmail"},
            "context": {"input": {"to": "x@acme.com", "bcc": "y@evil.com"}}});
        let out = answer(node.evaluation(bcc.to_string().as_bytes()).unwrap());
        assert_eq!(out["decision"], false);
        assert!(
            out["context"]["reason"].as_str().unwrap().contains("bcc"),
            "{out}"
        );
        assert_eq!(node.feedback.pending(), 0, "enforce mode does not report");
    }

    #[test]
    fn shadow_mode_answers_allow_and_records_the_real_decision() {
        let (_dir, node) = node("enforce: {mode: enforce, agents: {s: shadow}}\n");
        load(&node);
        for _ in 0..3 {
            let out = answer(node.evaluation(&call("s", "x@evil.com")).unwrap());
            assert_eq!(out["decision"], true);
            assert_eq!(out["context"]["shadow_decision"], false);
            assert_eq!(out["context"]["mode"], "shadow");
        }
        node.evaluation(&call("s", "y@evil.com")).unwrap();
        assert_eq!(
            node.feedback.pending(),
            2,
            "identical calls are counted, not repeated"
        );
        assert_eq!(node.feedback.flush().unwrap(), 1);
        let files = node.feedback.spool().list();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        let origin = crate::core::observation::Origin {
            source: "spool".into(),
            line: None,
        };
        let batch = crate::core::observation::parse_batch(&origin, &text).unwrap();
        assert_eq!(batch.source, "node-1");
        assert_eq!(batch.policy_commit.as_deref(), Some("c1c1c1c"));
        let counts: u64 = batch.calls.iter().map(|c| c.count).sum();
        assert_eq!(counts, 4);
        assert!(batch
            .calls
            .iter()
            .all(|c| c.decision == Some(crate::core::observation::ShadowDecision::Deny)));
        let metrics = node.render_metrics();
        assert!(
            metrics.contains("shadowdraft_enforce_evaluations_total{mode=\"shadow\",decision=\"deny\"} 4"),
            "{metrics}"
        );
        assert!(
            metrics.contains("shadowdraft_enforce_spool_batches 1"),
            "{metrics}"
        );
    }

    #[test]
    fn evaluations_apply_the_semantic() {
        let (_dir, node) = node("enforce: {mode: enforce}\n");
        load(&node);
        let body = |semantic: &str| {
            serde_json::json!({
            "subject": {"type": "agent", "id": "a"}, "action": {"name": "send"},
            "resource": {"type": "mcp_server", "id": "gmail"},
            "options": {"evaluations_semantic": semantic},
            "evaluations": [
                {"context": {"input": {"to": "1@acme.com"}}},
                {"context": {"input": {"to": "2@evil.com"}}},
                {"context": {"input": {"to": "3@acme.com"}}}
            ]})
            .to_string()
        };
        let decisions = |semantic: &str| -> Vec<bool> {
            let out = answer(node.evaluations(body(semantic).as_bytes()).unwrap());
            out["evaluations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["decision"].as_bool().unwrap())
                .collect()
        };
        assert_eq!(decisions("execute_all"), vec![true, false, true]);
        assert_eq!(decisions("deny_on_first_deny"), vec![true, false]);
        assert_eq!(decisions("permit_on_first_permit"), vec![true]);
        let single = answer(node.evaluations(&call("a", "x@acme.com")).unwrap());
        assert_eq!(single["decision"], true);
        let e = node.evaluations(b"[]").unwrap_err();
        assert!(e.0.contains("request body"), "{e}");
    }
}
