//! `POST /v1/observations`: authenticate, validate the batch whole, hand it
//! to ingest, answer once it is durable.

use super::{authenticate, challenge, error, idempotency_key, App};
use crate::bot::ingest::{self, IngestError};
use crate::store::Appended;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

pub async fn receive(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(e) = authenticate(&app, &headers) {
        let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string());
        if let Some(value) = challenge(&e) {
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
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_idempotency_key", message),
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
    // The latest catalogue wins; keeping it twice for a retried batch is harmless.
    if !batch.catalogues.is_empty() {
        let now = crate::clock::now();
        for (server, catalogue) in &batch.catalogues {
            let saved = app
                .ctx
                .store
                .save_catalogue(server, &catalogue.to_string(), &batch.source, now)
                .await;
            if let Err(e) = saved {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store_failed",
                    format!("{e:#}"),
                );
            }
        }
    }
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
        // Nothing was acknowledged: the node keeps the batch and retries (any replica).
        Err(e) => {
            let code = match e {
                IngestError::Store(_) => "store_unavailable",
                IngestError::Busy | IngestError::ShuttingDown => "unavailable",
            };
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, code, e.to_string());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, "1".parse().expect("valid header"));
            response
        }
    }
}
