//! What the bot shows about itself: proposals, one agent's state, metrics.

use super::{error, App};
use crate::bot::metrics::Gauges;
use crate::bot::Context;
use crate::config::ForgeSettings;
use crate::forge::Forge;
use crate::store::Store;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// The local forge's proposals (with their bodies); with GitHub, the pull
/// request the bot last updated per agent.
pub async fn proposals(State(app): State<Arc<App>>) -> Response {
    let store = &app.ctx.store;
    let listed = match app.ctx.forge {
        Forge::Local(_) => store
            .local_pulls()
            .await
            .map(|pulls| json!({ "proposals": pulls })),
        Forge::GitHub(_) => store.proposals().await.map(|records| {
            let records: Vec<_> = records
                .into_iter()
                .map(|(agent, record)| json!({"agent": agent, "pull_request": record}))
                .collect();
            json!({ "proposals": records })
        }),
    };
    match listed {
        Ok(body) => Json(body).into_response(),
        Err(e) => store_failed(e),
    }
}

/// The store did not answer: this replica cannot serve the request now.
fn store_failed(e: anyhow::Error) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "store_failed", format!("{e:#}"))
}

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let ctx = &app.ctx;
    let store = &ctx.store;
    // A store that does not answer is reported as such, not waited on for each gauge.
    let store_up = store.health().await.is_ok();
    let since = crate::clock::now() - crate::bot::rollout::ACTIVE_SECONDS;
    let (queue_depth, shapes_in_window, nodes, installations) = if store_up {
        let installations = match &ctx.settings.forge {
            ForgeSettings::Github(gh) => {
                let name = format!("{}/{}", gh.app.owner, gh.app.repo);
                store.installations_serving(&name).await.ok()
            }
            ForgeSettings::Local => None,
        };
        (
            store.queue_depth().await.unwrap_or(-1),
            ctx.shapes_in_window().await.unwrap_or_default(),
            store.nodes(since).await.unwrap_or_default(),
            installations,
        )
    } else {
        (-1, 0, Vec::new(), None)
    };
    let text = ctx.metrics.render(&Gauges {
        queue_depth,
        shapes_in_window,
        github_errors: ctx.forge.errors_by_status(),
        github_calls: ctx.forge.github_calls(),
        nodes,
        installations,
        store: store.kind(),
        store_up,
        replica: replica(store),
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// This process's name when it claims work (PostgreSQL), as `/healthz` and `/metrics` show it.
fn replica(store: &Store) -> Option<String> {
    match store {
        Store::Sqlite(_) => None,
        Store::Postgres(db) => Some(db.replica().to_string()),
    }
}

/// `GET /healthz`: 200 while the store answers, 503 (and why) while it does not.
pub async fn healthz(State(app): State<Arc<App>>) -> Response {
    let store = &app.ctx.store;
    let (status, database) = match store.health().await {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ok" } else { "unavailable" },
        "store": store.kind(),
        "database": database,
        "replica": replica(store),
    });
    (status, Json(body)).into_response()
}

/// `GET /v1/agents/{agent}` (bearer token, as for ingest): why the bot does
/// or does not propose for an agent. The calls in its window (and, per tool,
/// those seen without arguments, which no rule is drafted from), its queued job
/// and last error, the open proposal, what reviewers turned down or ignored,
/// and what was promoted.
pub async fn agent(State(app): State<Arc<App>>, Path(agent): Path<String>, headers: HeaderMap) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Err(e) = app.auth.verify(authorization) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string());
    }
    match agent_status(&app.ctx, agent).await {
        Ok(body) => Json(body).into_response(),
        Err(e) => store_failed(e),
    }
}

async fn agent_status(ctx: &Context, agent: String) -> anyhow::Result<serde_json::Value> {
    let days = ctx.settings.drafting.window_days;
    let who = agent.clone();
    let (calls, without_args) = ctx
        .observed(&agent, move |window| {
            let summary = window.summary(&who, crate::core::window::span(crate::clock::now(), days));
            let without_args = summary.without_args.get(&who).cloned().unwrap_or_default();
            (summary.calls, without_args)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = &ctx.store;
    let job = store.job(&agent).await?.map(|status| {
        json!({
            "due_at": status.job.due_at,
            "attempts": status.job.attempts,
            "last_error": status.last_error,
            "claimed_by": status.claimed_by,
        })
    });
    let turned_down: Vec<_> = store
        .rejections(&agent)
        .await?
        .into_iter()
        .map(|(fingerprint, r)| {
            json!({"fingerprint": fingerprint, "calls": r.calls, "reason": r.reason, "permanent": r.permanent})
        })
        .collect();
    let ignored: Vec<_> = store
        .ignored_tools(&agent)
        .await?
        .into_iter()
        .map(|(tool, reason)| json!({"tool": tool, "reason": reason}))
        .collect();
    let promoted: Vec<_> = store
        .promotions()
        .await?
        .into_iter()
        .filter(|(a, _, _)| *a == agent)
        .map(|(_, rule, pull)| json!({"rule": rule, "pull_request": pull}))
        .collect();
    Ok(json!({
        "agent": agent,
        "calls_in_window": calls,
        "calls_without_args": without_args,
        "window_days": days,
        "job": job,
        "proposal": store.proposal(&agent).await?,
        "turned_down": turned_down,
        "ignored_tools": ignored,
        "promoted": promoted,
    }))
}
