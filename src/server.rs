//! `shadowdraft serve`: the HTTP surface (axum) and the start-up and shutdown
//! of everything behind it. Handlers check, store and answer; drafting
//! happens in the worker.

use crate::auth::{AuthError, IngestAuth};
use crate::config::{Forge as ForgeSettings, Settings};
use crate::forge::{Forge, LocalForge};
use crate::github::GitHub;
use crate::ingest::{self, FoldProgress, IngestError, Ingestor, WriterSettings};
use crate::metrics::{Gauges, Metrics};
use crate::repo::{self, PolicyRepo};
use crate::store::{Appended, Store};
use crate::worker::{self, Context};
use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// The shared state of the HTTP handlers.
pub struct App {
    pub ctx: Arc<Context>,
    pub ingestor: Ingestor,
    pub auth: IngestAuth,
    /// The generated HS256 ingest key of the embedded default, if used.
    pub generated_key: Option<Vec<u8>>,
}

pub fn router(app: Arc<App>) -> Router {
    let max_body = app.ctx.settings.ingest.max_body_bytes;
    Router::new()
        .route(
            "/v1/observations",
            post(observations).layer(DefaultBodyLimit::max(max_body)),
        )
        .route(
            "/github/webhook",
            post(crate::webhook::receive).layer(DefaultBodyLimit::max(WEBHOOK_MAX_BODY)),
        )
        .route("/v1/proposals", get(proposals))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(app)
}

/// GitHub caps webhook payloads at 25 MB.
const WEBHOOK_MAX_BODY: usize = 25 * 1024 * 1024;

/// A JSON error body: `{"error": code, "message": text}`.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": code, "message": message.into()}))).into_response()
}

async fn observations(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Err(e) = app.auth.verify(authorization) {
        let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string());
        let challenge = match e {
            AuthError::Missing => "Bearer".to_string(),
            other => format!("Bearer error=\"invalid_token\", error_description=\"{other}\""),
        };
        if let Ok(value) = challenge.parse() {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        return response;
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the batch is larger than ingest.max_body_bytes ({} bytes); send smaller batches",
                    app.ctx.settings.ingest.max_body_bytes
                ),
            )
        }
        Err(rejection) => return error(rejection.status(), "unreadable_body", rejection.body_text()),
    };
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.is_empty() && k.len() <= 255 => Some(k.to_string()),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        }
    };
    // Parsing a large batch is CPU work: keep it off the async threads.
    let (validated, body) = tokio::task::spawn_blocking(move || (ingest::validate(&body), body))
        .await
        .expect("validation does not panic");
    let batch = match validated {
        Ok(batch) => batch,
        Err(message) => {
            app.ctx.metrics.batch_rejected();
            return error(StatusCode::BAD_REQUEST, "invalid_observation", message);
        }
    };
    let calls: u64 = batch.calls.iter().map(|c| c.count).sum();
    match app.ingestor.submit(key, &body, batch).await {
        Ok(Appended::New(id)) => (
            StatusCode::ACCEPTED,
            Json(json!({"accepted": true, "batch": id, "calls": calls})),
        )
            .into_response(),
        Ok(Appended::Duplicate) => {
            app.ctx.metrics.batch_duplicate();
            (StatusCode::OK, Json(json!({"accepted": true, "duplicate": true}))).into_response()
        }
        Ok(Appended::KeyReused) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different batch",
        ),
        Err(e @ (IngestError::Busy | IngestError::ShuttingDown)) => {
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, "1".parse().expect("valid header"));
            response
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "store_failed", e.to_string()),
    }
}

/// The local forge's proposals (with their bodies); with GitHub, the pull
/// request the bot last updated per agent.
async fn proposals(State(app): State<Arc<App>>) -> Response {
    let ctx = app.ctx.clone();
    let listed = tokio::task::spawn_blocking(move || -> anyhow::Result<serde_json::Value> {
        let store = ctx.store.lock().expect("store lock");
        Ok(match ctx.forge {
            Forge::Local(_) => json!({ "proposals": store.local_pulls()? }),
            Forge::GitHub(_) => {
                let records: Vec<_> = store
                    .proposals()?
                    .into_iter()
                    .map(|(agent, record)| json!({"agent": agent, "pull_request": record}))
                    .collect();
                json!({ "proposals": records })
            }
        })
    })
    .await;
    match listed {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_failed",
            format!("{e:#}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "store_failed", e.to_string()),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let (queue_depth, nodes) = {
        let store = app.ctx.store.lock().expect("store lock");
        let since = crate::clock::now() - crate::rollout::ACTIVE_SECONDS;
        (
            store.queue_depth().unwrap_or(-1),
            store.nodes(since).unwrap_or_default(),
        )
    };
    let shapes_in_window = app.ctx.window.lock().expect("window lock").shape_count();
    let text = app.ctx.metrics.render(&Gauges {
        queue_depth,
        shapes_in_window,
        github_errors: app.ctx.forge.errors_by_status(),
        nodes,
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// A running service: its address and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    worker: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stop accepting, finish requests and the job in flight, store what is waiting.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        let _ = self.worker.await;
        let app = self.app;
        tokio::task::spawn_blocking(move || app.ingestor.shutdown())
            .await
            .expect("writer shutdown does not panic");
    }
}

/// Open the store, recover the window, connect the repository and forge, bind and serve.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    let data = settings.data_dir.clone();
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
    let db = data.join("shadowdraft.db");
    let ingest_store = Store::open(&db)?;
    let folder_store = Store::open(&db)?;
    let retain_days = settings.drafting.window_days.max(settings.drafting.unused_after);
    let now = crate::clock::now();
    let recovered = ingest::recover(&ingest_store, retain_days, now)?;
    let through = recovered.through;
    let window = Arc::new(Mutex::new(recovered.window));
    let store = Arc::new(Mutex::new(Store::open(&db)?));

    let url = match &settings.repo_url {
        Some(url) => url.clone(),
        None => {
            let local = data.join("policy-repo.git");
            let (files, _) = crate::bootstrap::files(&settings.review, &settings.base_branch);
            let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
            repo::init_bare(&local, &settings.base_branch, &files, &settings.committer)?;
            std::fs::canonicalize(&local)?.display().to_string()
        }
    };
    let repo = PolicyRepo::open(
        &data.join("mirror.git"),
        &url,
        &settings.base_branch,
        settings.committer.clone(),
    )?;

    let forge = match &settings.forge {
        ForgeSettings::Local => Forge::Local(LocalForge::new(store.clone(), data.join("proposals"))),
        ForgeSettings::Github(gh) => Forge::GitHub(Box::new(GitHub::new(gh.app.clone())?)),
    };

    let (generated_key, announce) = match &settings.ingest.hs256_secret {
        None if settings.ingest.public_keys.is_empty() => {
            let (key, new) = generated_ingest_key(&data)?;
            (Some(key), new)
        }
        _ => (None, false),
    };
    let secret = settings
        .ingest
        .hs256_secret
        .as_deref()
        .or(generated_key.as_deref());
    let auth = IngestAuth::new(&settings.ingest.audience, secret, &settings.ingest.public_keys)?;

    let metrics = Arc::new(Metrics::default());
    let wake = Arc::new(Notify::new());
    let progress = Arc::new(FoldProgress::default());
    let ingestor = Ingestor::start(
        ingest_store,
        folder_store,
        window.clone(),
        through,
        progress.clone(),
        WriterSettings {
            debounce_seconds: settings.drafting.debounce_seconds as i64,
            retain_days,
            checkpoint_every: Duration::from_secs(2),
        },
        metrics.clone(),
        wake.clone(),
    );
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    if let (Some(key), true) = (&generated_key, announce) {
        print_ingest_example(key, &settings.ingest.audience, &data.join(INGEST_KEY), addr);
    }
    let ctx = Arc::new(Context {
        settings,
        store,
        window,
        repo: Arc::new(Mutex::new(repo)),
        forge,
        progress,
        metrics,
        wake,
    });
    let app = Arc::new(App {
        ctx: ctx.clone(),
        ingestor,
        auth,
        generated_key,
    });
    let (shutdown, stopped) = watch::channel(false);
    let worker = tokio::spawn(worker::run(ctx, stopped.clone()));
    let mut stop_serving = stopped;
    let serving = axum::serve(listener, router(app.clone())).with_graceful_shutdown(async move {
        let _ = stop_serving.wait_for(|stop| *stop).await;
    });
    let server = tokio::spawn(async move { serving.await });
    tracing::info!(%addr, "shadowdraft serving");
    Ok(Running {
        addr,
        app,
        shutdown,
        server,
        worker,
    })
}

const INGEST_KEY: &str = "ingest.key";

/// The embedded default's HS256 ingest key: generated once and kept in
/// `data_dir` (mode 0600). Returns the key and whether it is new.
fn generated_ingest_key(data: &Path) -> anyhow::Result<(Vec<u8>, bool)> {
    let path = data.join(INGEST_KEY);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok((text.trim().as_bytes().to_vec(), false));
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness for the ingest key: {e}"))?;
    let key = ingest::hex(&raw);
    write_private(&path, &key)?;
    Ok((key.into_bytes(), true))
}

/// Shown once, when the key is made: a token and a request ready to paste.
fn print_ingest_example(key: &[u8], audience: &str, path: &Path, addr: SocketAddr) {
    let token = crate::auth::hs256_token(
        key,
        audience,
        "example-node",
        (crate::clock::now() + 30 * 86_400) as u64,
    );
    println!(
        "Generated an ingest key in {} (nodes sign HS256 JWTs with it, aud \"{audience}\").\n\
         Shown only now: a token valid for 30 days, and an example request:\n\n  \
         export SHADOWDRAFT_TOKEN={token}\n  \
         curl -X POST http://{addr}/v1/observations -H \"Authorization: Bearer $SHADOWDRAFT_TOKEN\" \\\n    \
         -H 'Content-Type: application/json' \\\n    \
         -d '{{\"source\":\"node-1\",\"calls\":[{{\"agent\":\"support-bot\",\"tool\":\"search_docs\",\"args\":{{\"query\":\"refund policy\"}}}}]}}'\n",
        path.display(),
    );
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
