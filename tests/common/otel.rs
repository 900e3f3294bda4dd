//! OpenTelemetry exporters posting to `/v1/traces`: the real Python SDK
//! (`tests/fixtures/otlp/export_spans.py`) and raw OTLP/HTTP requests.

use super::external::otel_python;
use super::http::{request, Reply};
use std::net::SocketAddr;
use std::path::Path;

/// What the SDK's exports were answered.
pub struct Exported {
    pub ok: bool,
    /// The script's JSON line: `{"results": [...]}` or `{"status", "body"}`.
    pub report: serde_json::Value,
    pub stderr: String,
}

/// Run the traced agent of `export_spans.py` with `args`, exporting to `addr`
/// with `token`, configured through the standard `OTEL_*` environment.
pub async fn sdk_export(addr: SocketAddr, token: &str, args: &[&str], gzip: bool) -> Exported {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otlp/export_spans.py");
    let mut command = tokio::process::Command::new(otel_python());
    command
        .arg(script)
        .args(args)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"))
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("Authorization=Bearer%20{token}"),
        )
        .env("OTEL_SERVICE_NAME", "support-service")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        .kill_on_drop(true);
    if gzip {
        command.env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip");
    } else {
        command.env_remove("OTEL_EXPORTER_OTLP_COMPRESSION");
    }
    let output = command.output().await.expect("the OpenTelemetry SDK script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("the script printed no report:\n{stdout}\n{stderr}"));
    Exported {
        ok: output.status.success(),
        report,
        stderr,
    }
}

/// Post an OTLP/HTTP body to `/v1/traces` with `token` (if any) and `headers`.
pub async fn post_traces(
    addr: SocketAddr,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut all: Vec<(&str, &str)> = vec![("content-type", content_type)];
    if let Some(auth) = &auth {
        all.push(("authorization", auth));
    }
    all.extend_from_slice(headers);
    request("POST", &format!("http://{addr}/v1/traces"), &all, body).await
}
