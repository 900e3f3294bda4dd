//! `shadowdraft serve`: the HTTP surface (axum) and the start-up and shutdown
//! of everything behind it. Handlers check, store and answer; drafting
//! happens in the worker.

mod ingest_key;
mod observations;
mod status;
mod traces;
pub mod webhook;

use crate::auth::{AuthError, Claims, IngestAuth};
use crate::bot::ingest::{self, FoldProgress, Ingestor, Journal, WriterSettings};
use crate::bot::metrics::Metrics;
use crate::bot::{worker, Context, Observed};
use crate::config::{ForgeSettings, Settings, StoreSettings};
use crate::forge::{Forge, GitHub, LocalForge};
use crate::git::{self, PolicyRepo};
use crate::store::{Postgres, Sqlite, Store};
use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
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
            post(observations::receive).layer(DefaultBodyLimit::max(max_body)),
        )
        .route(
            "/v1/traces",
            post(traces::receive).layer(DefaultBodyLimit::max(max_body)),
        )
        .route(
            "/github/webhook",
            post(webhook::receive).layer(DefaultBodyLimit::max(WEBHOOK_MAX_BODY)),
        )
        .route("/v1/proposals", get(status::proposals))
        .route("/v1/agents/{agent}", get(status::agent))
        .route("/healthz", get(status::healthz))
        .route("/metrics", get(status::metrics))
        .with_state(app)
}

/// GitHub caps webhook payloads at 25 MB.
const WEBHOOK_MAX_BODY: usize = 25 * 1024 * 1024;

/// A JSON error body: `{"error": code, "message": text}`.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": code, "message": message.into()}))).into_response()
}

/// The bearer JWT every ingest route demands.
pub(crate) fn authenticate(app: &App, headers: &HeaderMap) -> Result<Claims, AuthError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    app.auth.verify(authorization)
}

/// The `WWW-Authenticate` challenge that goes with a refused token.
pub(crate) fn challenge(e: &AuthError) -> Option<HeaderValue> {
    let text = match e {
        AuthError::Missing => "Bearer".to_string(),
        other => format!("Bearer error=\"invalid_token\", error_description=\"{other}\""),
    };
    text.parse().ok()
}

/// The `Idempotency-Key` header: `Err` when present but not 1 to 255 visible ASCII characters.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, &'static str> {
    match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(k)) if !k.is_empty() && k.len() <= 255 => Ok(Some(k.to_string())),
        Some(_) => Err("Idempotency-Key must be 1 to 255 visible ASCII characters"),
    }
}

/// A running service: its address and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    worker: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Resolves once the worker has nothing left to do: every acknowledged
    /// batch drafted, every delivery handled (what failed waits for its retry).
    pub async fn idle(&self) {
        let ctx = &self.app.ctx;
        ctx.idle.wait(&ctx.wake).await;
    }

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
    let retain_days = settings.drafting.window_days.max(settings.drafting.unused_after);
    let (store, journal, observed) = match &settings.store {
        StoreSettings::Sqlite => {
            let db = data.join("shadowdraft.db");
            let writer = Sqlite::open(&db)?;
            let recovered = ingest::recover(&writer, retain_days, crate::clock::now())?;
            let window = Arc::new(Mutex::new(recovered.window));
            let progress = Arc::new(FoldProgress::default());
            let journal = Journal::Local {
                writer: Box::new(writer),
                folder: Box::new(Sqlite::open(&db)?),
                window: window.clone(),
                through: recovered.through,
                progress: progress.clone(),
            };
            (
                Store::Sqlite(Mutex::new(Sqlite::open(&db)?)),
                journal,
                Observed::Local { window, progress },
            )
        }
        StoreSettings::Postgres { url, lease_seconds } => {
            let db = Postgres::open(url, *lease_seconds).await?;
            tracing::info!(replica = db.replica(), "sharing PostgreSQL with other replicas");
            (
                Store::Postgres(db.clone()),
                Journal::Shared(db.clone()),
                Observed::Shared(db),
            )
        }
    };
    let store = Arc::new(store);

    let url = match &settings.repo_url {
        Some(url) => url.clone(),
        None => {
            let local = data.join("policy-repo.git");
            let (files, _) = crate::render::bootstrap::files(&settings.review, &settings.base_branch);
            let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
            git::init_bare(&local, &settings.base_branch, &files, &settings.committer)?;
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
        ForgeSettings::Github(gh) => Forge::GitHub(Box::new(
            GitHub::new(gh.app.clone())?
                .with_retries(gh.retry.attempts, gh.retry.first_backoff)
                .with_max_retry_wait(gh.retry.max_wait),
        )),
    };

    let (generated_key, announce) = match &settings.ingest.hs256_secret {
        None if settings.ingest.public_keys.is_empty() => {
            let (key, new) = ingest_key::generated_ingest_key(&data)?;
            (Some(key), new)
        }
        _ => (None, false),
    };
    let secret = settings
        .ingest
        .hs256_secret
        .as_deref()
        .or(generated_key.as_deref());
    let auth = IngestAuth::new(&settings.ingest.audience, secret, &settings.ingest.public_keys)?
        .with_max_lifetime(settings.ingest.max_token_lifetime_seconds);

    let metrics = Arc::new(Metrics::default());
    let wake = Arc::new(Notify::new());
    let ingestor = Ingestor::start(
        journal,
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
        ingest_key::print_ingest_example(
            key,
            &settings.ingest.audience,
            &data.join(ingest_key::INGEST_KEY),
            addr,
        );
    }
    let ctx = Arc::new(Context {
        settings,
        store,
        observed,
        repo: Arc::new(Mutex::new(repo)),
        forge,
        metrics,
        wake,
        idle: worker::Idle::default(),
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
    let limits = app.ctx.settings.http;
    let serving = crate::http::serve(listener, router(app.clone()), limits, async move {
        let _ = stop_serving.wait_for(|stop| *stop).await;
    });
    let server = tokio::spawn(serving);
    tracing::info!(%addr, "shadowdraft serving");
    Ok(Running {
        addr,
        app,
        shutdown,
        server,
        worker,
    })
}
