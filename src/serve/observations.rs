//! `POST /v1/observations`: authenticate, validate the batch whole, hand it
//! to ingest, answer once it is durable.

use super::{error, App};
use crate::auth::AuthError;
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
    // The latest catalogue wins; keeping it twice for a retried batch is harmless.
    if !batch.catalogues.is_empty() {
        let now = crate::clock::now();
        let store = app.ctx.store();
        for (server, catalogue) in &batch.catalogues {
            if let Err(e) = store.save_catalogue(server, &catalogue.to_string(), &batch.source, now) {
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
