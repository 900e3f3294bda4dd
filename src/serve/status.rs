//! What the bot shows about itself: proposals and metrics.

use super::{error, App};
use crate::bot::metrics::Gauges;
use crate::forge::Forge;
use axum::extract::State;
use axum::http::{header, StatusCode};
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
    let (queue_depth, nodes) = {
        let store = app.ctx.store.lock().expect("store lock");
        let since = crate::clock::now() - crate::bot::rollout::ACTIVE_SECONDS;
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
