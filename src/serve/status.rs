//! What the bot shows about itself: proposals, one agent's state, metrics.

use super::{error, App};
use crate::bot::metrics::Gauges;
use crate::config::ForgeSettings;
use crate::forge::Forge;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// The local forge's proposals (with their bodies); with GitHub, the pull
/// request the bot last updated per agent.
pub async fn proposals(State(app): State<Arc<App>>) -> Response {
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

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let (queue_depth, nodes, installations) = {
        let store = app.ctx.store();
        let since = crate::clock::now() - crate::bot::rollout::ACTIVE_SECONDS;
        let installations = match &app.ctx.settings.forge {
            ForgeSettings::Github(gh) => {
                let name = format!("{}/{}", gh.app.owner, gh.app.repo);
                store.installations_serving(&name).ok()
            }
            ForgeSettings::Local => None,
        };
        (
            store.queue_depth().unwrap_or(-1),
            store.nodes(since).unwrap_or_default(),
            installations,
        )
    };
    let shapes_in_window = app.ctx.window.lock().expect("window lock").shape_count();
    let text = app.ctx.metrics.render(&Gauges {
        queue_depth,
        shapes_in_window,
        github_errors: app.ctx.forge.errors_by_status(),
        nodes,
        installations,
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
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
    let ctx = app.ctx.clone();
    let read = tokio::task::spawn_blocking(move || -> anyhow::Result<serde_json::Value> {
        let days = ctx.settings.drafting.window_days;
        let summary = ctx
            .window
            .lock()
            .expect("window lock")
            .summary(&agent, crate::core::window::span(crate::clock::now(), days));
        let calls = summary.calls;
        let without_args = summary.without_args.get(&agent).cloned().unwrap_or_default();
        let store = ctx.store();
        let job = store.job(&agent)?.map(|(job, last_error)| {
            json!({"due_at": job.due_at, "attempts": job.attempts, "last_error": last_error})
        });
        let turned_down: Vec<_> = store
            .rejections(&agent)?
            .into_iter()
            .map(|(fingerprint, r)| {
                json!({"fingerprint": fingerprint, "calls": r.calls, "reason": r.reason, "permanent": r.permanent})
            })
            .collect();
        let ignored: Vec<_> = store
            .ignored_tools(&agent)?
            .into_iter()
            .map(|(tool, reason)| json!({"tool": tool, "reason": reason}))
            .collect();
        let promoted: Vec<_> = store
            .promotions()?
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
            "proposal": store.proposal(&agent)?,
            "turned_down": turned_down,
            "ignored_tools": ignored,
            "promoted": promoted,
        }))
    })
    .await;
    match read {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_failed",
            format!("{e:#}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "store_failed", e.to_string()),
    }
}
