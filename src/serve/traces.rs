//! `POST /v1/traces`: OTLP/HTTP (DESIGN §11). Protobuf or JSON, plain,
//! gzip or deflate, with the bearer JWT and body limit of `/v1/observations`. The tool
//! spans become calls (`core::spans`), handed to the same durable ingest as an
//! observation batch: the 200 comes once they are stored.
//!
//! Answers follow the OTLP/HTTP specification: an `ExportTraceServiceResponse`
//! (with a partial success when spans were left out, or to warn about calls
//! without arguments) in the request's encoding; failures carry a
//! `google.rpc.Status` (code and message) in that encoding, with 400 for data
//! that cannot be taken, 401, 413, 415, and 503 with `Retry-After` when busy.

use super::{authenticate, challenge, idempotency_key, App};
use crate::bot::ingest::IngestError;
use crate::bot::metrics::SpanCounts;
use crate::core::spans::{map_export, Mapped, Rejected, Seen};
use crate::store::Appended;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::io::Read;
use std::sync::Arc;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// How the request came, and so how the answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the body of an OTLP/HTTP failure.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

impl Encoding {
    /// From `Content-Type` (parameters such as `charset` aside); `None` for any other type.
    fn of(headers: &HeaderMap) -> Option<Encoding> {
        let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let media = value.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case(PROTOBUF) {
            Some(Encoding::Protobuf)
        } else if media.eq_ignore_ascii_case(JSON) {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        })
    }

    /// 200 with an `ExportTraceServiceResponse`; `message` (if any) goes in its partial success.
    fn success(self, rejected_spans: u64, message: String) -> Response {
        let partial_success =
            (rejected_spans > 0 || !message.is_empty()).then_some(ExportTracePartialSuccess {
                rejected_spans: rejected_spans as i64,
                error_message: message,
            });
        let body = match (self, partial_success) {
            (Encoding::Protobuf, partial_success) => {
                ExportTraceServiceResponse { partial_success }.encode_to_vec()
            }
            // A full success is the empty message.
            (Encoding::Json, None) => b"{}".to_vec(),
            (Encoding::Json, partial_success) => {
                serde_json::to_vec(&ExportTraceServiceResponse { partial_success })
                    .expect("the response serialises")
            }
        };
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, self.content_type())],
            body,
        )
            .into_response()
    }

    /// A failure: `google.rpc.Status` with the gRPC code that matches `status`;
    /// the JSON form also carries the house `error` code.
    fn failure(self, status: StatusCode, error: &str, message: impl Into<String>) -> Response {
        let message = message.into();
        let code = match status {
            StatusCode::UNAUTHORIZED => 16,          // UNAUTHENTICATED
            StatusCode::PAYLOAD_TOO_LARGE => 8,      // RESOURCE_EXHAUSTED
            StatusCode::SERVICE_UNAVAILABLE => 14,   // UNAVAILABLE
            StatusCode::INTERNAL_SERVER_ERROR => 13, // INTERNAL
            _ => 3,                                  // INVALID_ARGUMENT
        };
        let body = match self {
            Encoding::Protobuf => RpcStatus { code, message }.encode_to_vec(),
            Encoding::Json => serde_json::json!({"code": code, "message": message, "error": error})
                .to_string()
                .into_bytes(),
        };
        (status, [(header::CONTENT_TYPE, self.content_type())], body).into_response()
    }
}

/// Why an export was not taken.
enum Refused {
    TooLarge,
    /// Not gzip, not protobuf or JSON of an export request.
    Unreadable(String),
    Spans(Rejected),
}

pub async fn receive(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let encoding = Encoding::of(&headers);
    // Until the type is known, answers are JSON (the house default).
    let answer = encoding.unwrap_or(Encoding::Json);
    let metrics = &app.ctx.metrics;
    let claims = match authenticate(&app, &headers) {
        Ok(claims) => claims,
        Err(e) => {
            let mut response = answer.failure(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string());
            if let Some(value) = challenge(&e) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
            }
            return response;
        }
    };
    let reject = |status: StatusCode, error: &str, message: String, spans: &SpanCounts| {
        metrics.otlp_export("rejected", spans);
        answer.failure(status, error, message)
    };
    let none = [0; 5];
    let Some(encoding) = encoding else {
        let given = headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        return reject(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type must be {PROTOBUF} or {JSON} (OTLP/HTTP), not {}",
                given.map_or("missing".to_string(), |g| format!("{g:?}"))
            ),
            &none,
        );
    };
    let max = app.ctx.settings.ingest.max_body_bytes;
    let too_large = || {
        format!(
            "the export is larger than ingest.max_body_bytes ({max} bytes, after gunzip); \
             export smaller batches (the SDK's max_export_batch_size, the collector's send_batch_max_size)"
        )
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                too_large(),
                &none,
            )
        }
        Err(rejection) => {
            return reject(
                rejection.status(),
                "unreadable_body",
                rejection.body_text(),
                &none,
            )
        }
    };
    let compression = match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str()) {
        None => Compression::None,
        Some(Ok(e)) if e.eq_ignore_ascii_case("identity") => Compression::None,
        Some(Ok(e)) if e.eq_ignore_ascii_case("gzip") => Compression::Gzip,
        Some(Ok(e)) if e.eq_ignore_ascii_case("deflate") => Compression::Deflate,
        Some(other) => {
            return reject(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!(
                    "Content-Encoding must be gzip, deflate or absent, not {:?}",
                    other.unwrap_or("(not text)")
                ),
                &none,
            )
        }
    };
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(message) => {
            return reject(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                message.into(),
                &none,
            )
        }
    };
    let source = claims
        .sub
        .map_or_else(|| "otlp".to_string(), |node| format!("otlp:{node}"));
    // Decompressing, decoding and mapping are CPU work: off the async threads.
    let mapper = app.clone();
    let mapped = tokio::task::spawn_blocking(move || {
        let request = decode(&body, compression, encoding, max)?;
        map_export(&request, &mapper.ctx.settings.ingest.otlp, &source).map_err(Refused::Spans)
    })
    .await
    .expect("mapping does not panic");
    let mapped = match mapped {
        Ok(mapped) => mapped,
        Err(Refused::TooLarge) => {
            return reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                too_large(),
                &none,
            )
        }
        Err(Refused::Unreadable(message)) => {
            return reject(StatusCode::BAD_REQUEST, "invalid_export", message, &none)
        }
        Err(Refused::Spans(rejected)) => {
            return reject(
                StatusCode::BAD_REQUEST,
                "invalid_span",
                format!("nothing was accepted: {rejected}"),
                // Nothing of a refused export is taken: only its invalid spans count.
                &[0, 0, 0, 0, rejected.seen.rejected],
            );
        }
    };
    let spans = counts(&mapped.seen);
    let message = mapped.message();
    if mapped.batch.calls.is_empty() && mapped.batch.calls_without_args.is_empty() {
        metrics.otlp_export("accepted", &spans);
        return encoding.success(mapped.seen.rejected, message);
    }
    // Exporters retry an export whose answer they lost; its spans name it.
    let key = key.or_else(|| Some(format!("otlp:{}", mapped.spans_digest)));
    let Mapped {
        batch, body, seen, ..
    } = mapped;
    match app.ingestor.submit(key, body.as_bytes(), batch).await {
        Ok(Appended::New(_)) => {
            metrics.otlp_export("accepted", &spans);
            encoding.success(seen.rejected, message)
        }
        Ok(Appended::Duplicate) => {
            metrics.batch_duplicate();
            metrics.otlp_export("duplicate", &[0; 5]);
            encoding.success(seen.rejected, message)
        }
        Ok(Appended::KeyReused) => reject(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different export".into(),
            &none,
        ),
        Err(e @ (IngestError::Busy | IngestError::ShuttingDown)) => {
            let mut response =
                encoding.failure(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Err(e) => encoding.failure(StatusCode::INTERNAL_SERVER_ERROR, "store_failed", e.to_string()),
    }
}

/// Spans by outcome, in the order of `metrics::SPAN_OUTCOMES`.
fn counts(seen: &Seen) -> SpanCounts {
    let tools = seen.calls + seen.without_args + seen.server_side + seen.rejected;
    [
        seen.calls,
        seen.without_args,
        seen.spans.saturating_sub(tools),
        seen.server_side,
        seen.rejected,
    ]
}

/// `Content-Encoding` of an export.
#[derive(Debug, Clone, Copy)]
enum Compression {
    None,
    Gzip,
    /// HTTP's `deflate`: zlib-wrapped.
    Deflate,
}

/// The export request in `body`: inflated (to at most `max` bytes) and decoded.
fn decode(
    body: &[u8],
    compression: Compression,
    encoding: Encoding,
    max: usize,
) -> Result<ExportTraceServiceRequest, Refused> {
    let mut inflated = Vec::new();
    let limit = max as u64 + 1;
    let read = match compression {
        Compression::None => None,
        Compression::Gzip => Some(
            flate2::read::MultiGzDecoder::new(body)
                .take(limit)
                .read_to_end(&mut inflated)
                .map_err(|e| format!("the body is not valid gzip: {e}")),
        ),
        Compression::Deflate => Some(
            flate2::read::ZlibDecoder::new(body)
                .take(limit)
                .read_to_end(&mut inflated)
                .map_err(|e| format!("the body is not valid deflate (zlib) data: {e}")),
        ),
    };
    let bytes = match read {
        None => body,
        Some(Err(message)) => return Err(Refused::Unreadable(message)),
        // A small body may inflate past the limit: stop there.
        Some(Ok(_)) if inflated.len() > max => return Err(Refused::TooLarge),
        Some(Ok(_)) => &inflated[..],
    };
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(bytes).map_err(|e| {
            Refused::Unreadable(format!(
                "the body is not a protobuf ExportTraceServiceRequest: {e}"
            ))
        }),
        Encoding::Json => {
            let de = &mut serde_json::Deserializer::from_slice(bytes);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                Refused::Unreadable(format!(
                    "the body is not an OTLP/JSON ExportTraceServiceRequest: at `{path}`: {}",
                    e.into_inner()
                ))
            })
        }
    }
}
