//! `POST /github/webhook`: verify the delivery, store it once, answer. The
//! delivery is parsed once into a typed event ([`crate::bot::events`]); the
//! work happens in the worker ([`crate::bot::review`]), well inside GitHub's 10 s.

use super::{error, App};
use crate::bot::events::{self, Parsed};
use crate::bot::Context;
use crate::config::ForgeSettings;
use crate::core::hex;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use std::sync::Arc;

/// Does `signature` (`sha256=<hex>`) sign `body` with one of `secrets`? The
/// comparison is constant-time (`Mac::verify_slice`).
pub fn verify(secrets: &[String], body: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = hex::decode(hex) else {
        return false;
    };
    secrets.iter().any(|secret| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    })
}

/// `sha256=<hex>` as GitHub sends it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(&mac.finalize().into_bytes()))
}

pub async fn receive(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let secrets: &[String] = match &app.ctx.settings.forge {
        ForgeSettings::Github(gh) => &gh.webhook_secrets,
        ForgeSettings::Local => &[],
    };
    if secrets.is_empty() {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "no webhook secret is configured (forge.webhook_secrets_env): every delivery is refused",
        );
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(signature) = header("x-hub-signature-256") else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing X-Hub-Signature-256",
        );
    };
    if !verify(secrets, &body, signature) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "X-Hub-Signature-256 does not match the body with any configured secret",
        );
    }
    let (Some(event), Some(delivery)) = (header("x-github-event"), header("x-github-delivery")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing_header",
            "X-GitHub-Event and X-GitHub-Delivery are required",
        );
    };
    let (name, delivery) = (event.to_string(), delivery.to_string());
    // A payload may be 25 MB: parse off the async threads.
    let parsed = {
        let name = name.clone();
        tokio::task::spawn_blocking(move || {
            events::parse(&name, &body).map(|parsed| match parsed {
                Parsed::Event(event) => Ok(serde_json::to_vec(&event).expect("events serialise")),
                Parsed::Ignored(why) => Err(why),
            })
        })
        .await
        .expect("parsing does not panic")
    };
    accept(&app.ctx, &name, &delivery, parsed).await
}

/// Store a parsed delivery once for the worker (any replica may take it).
async fn accept(
    ctx: &Context,
    name: &str,
    delivery: &str,
    parsed: Result<Result<Vec<u8>, String>, events::Rejected>,
) -> Response {
    let typed = match parsed {
        Ok(Ok(typed)) => typed,
        Ok(Err(why)) => return (StatusCode::ACCEPTED, Json(json!({"ignored": why}))).into_response(),
        Err(rejected) => {
            ctx.metrics.webhook_rejected();
            tracing::warn!(%delivery, error = %rejected, "webhook payload refused");
            return error(StatusCode::BAD_REQUEST, "invalid_payload", rejected.to_string());
        }
    };
    match ctx
        .store
        .record_delivery(delivery, name, &typed, crate::clock::now())
        .await
    {
        Ok(true) => {
            ctx.wake.notify_one();
            (StatusCode::ACCEPTED, Json(json!({"queued": true}))).into_response()
        }
        Ok(false) => (StatusCode::OK, Json(json!({"duplicate": true}))).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "store_failed", format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_any_configured_secret() {
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let secrets = vec!["old".to_string(), "new".to_string()];
        assert!(verify(&secrets, body, &sign("new", body)));
        assert!(verify(&secrets, body, &sign("old", body)));
        assert!(!verify(&secrets, body, &sign("other", body)));
        assert!(!verify(&secrets, b"tampered", &sign("new", body)));
        assert!(!verify(&secrets, body, "sha1=abc"));
        assert!(!verify(&secrets, body, "sha256=zz"));
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
