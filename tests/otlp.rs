//! `POST /v1/traces`: agents that already emit OpenTelemetry GenAI spans feed
//! the bot with no new code. The real OpenTelemetry Python SDK exports to the
//! running bot (protobuf through its OTLP/HTTP exporter, and OTLP/JSON), on the
//! story rig and on the embedded default; hostile exports get a precise 4xx
//! and lose nothing already accepted.

mod common;

use common::http::request;
use common::otel::{post_traces, sdk_export};
use common::rig::*;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde_json::{json, Value};
use shadowdraft::config::Config;
use std::io::Write;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// `google.rpc.Status`, as OTLP/HTTP failures carry it.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// An OTLP/JSON export of one `execute_tool` span, as a collector writes it.
fn json_export(span_id: &str, attributes: Value) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "support-service"}}]},
        "scopeSpans": [{"scope": {"name": "agent"}, "spans": [{
            "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
            "spanId": span_id,
            "name": "execute_tool send_email",
            "kind": 1,
            "startTimeUnixNano": "1795168800000000000",
            "endTimeUnixNano": "1795168801000000000",
            "attributes": attributes,
        }]}],
    }]})
}

fn attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn email_attributes(to: &str) -> Value {
    json!([
        attr("gen_ai.operation.name", "execute_tool"),
        attr("gen_ai.tool.name", "send_email"),
        attr("gen_ai.agent.name", AGENT),
        attr("mcp.server.name", "gmail"),
        attr(
            "gen_ai.tool.call.arguments",
            &json!({"to": to, "subject": "Your ticket", "body": "Hello"}).to_string()
        ),
    ])
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_exports_tool_spans_over_protobuf_and_json_into_one_proposal() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    let addr = bot.running.addr;

    // Protobuf, gzip, through the SDK's own exporter and batch processor.
    let exported = sdk_export(
        addr,
        &token(),
        &[
            "--encoding",
            "protobuf",
            "--agent",
            AGENT,
            "--calls",
            "8",
            "--without-args",
            "3",
        ],
        true,
    )
    .await;
    assert!(exported.ok, "{} {}", exported.report, exported.stderr);
    // OTLP/JSON built from the SDK's spans by the SDK's encoder.
    let exported = sdk_export(
        addr,
        &token(),
        &[
            "--encoding",
            "json",
            "--agent",
            AGENT,
            "--calls",
            "6",
            "--offset",
            "8",
        ],
        false,
    )
    .await;
    assert!(exported.ok, "{} {}", exported.report, exported.stderr);
    assert_eq!(
        exported.report["body"], "{}",
        "a full success is the empty response"
    );
    bot.idle().await;

    // 14 calls with arguments, 3 without; the agent and chat spans are no calls.
    assert_eq!(
        bot.metric("shadowdraft_otlp_spans_total{outcome=\"call\"}").await,
        Some(14.0)
    );
    assert_eq!(
        bot.metric("shadowdraft_otlp_spans_total{outcome=\"without_args\"}")
            .await,
        Some(3.0)
    );
    assert_eq!(
        bot.metric("shadowdraft_otlp_spans_total{outcome=\"not_a_tool\"}")
            .await,
        Some(16.0)
    );
    assert_eq!(bot.metric("shadowdraft_calls_ingested_total").await, Some(14.0));
    let status = bot.agent(AGENT).await;
    assert_eq!(status["calls_in_window"], 14);
    assert_eq!(status["calls_without_args"], json!({"lookup_order": 3}));

    assert_eq!(rig.github.pulls().len(), 1, "one proposal for the agent");
    let pr = rig.github.pull(1).unwrap();
    assert_eq!(pr.head, format!("shadowdraft/{AGENT}"));
    assert!(pr.body.contains("`send_email` on `gmail`"), "{}", pr.body);
    assert!(pr.body.contains("14 calls"), "{}", pr.body);
    assert!(pr.body.contains("from otlp:node-1"), "{}", pr.body);
    assert!(
        pr.body
            .contains("- `lookup_order`: 3 calls seen without arguments"),
        "{}",
        pr.body
    );
    let files = rig.files_at(&format!("shadowdraft/{AGENT}"));
    let policy = &files.agents[&format!("policies/agents/{AGENT}.cedar")];
    assert!(policy.contains("action == Action::\"send_email\""), "{policy}");
    assert!(
        !policy.contains("lookup_order"),
        "no rule from calls without arguments:\n{policy}"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_default_the_sdk_gets_a_local_proposal() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:0\ndata_dir: {}\ndrafting: {{debounce_seconds: 0}}\n",
        dir.path().join("data").display()
    );
    let settings = Config::parse("test.yaml", &yaml)
        .unwrap()
        .settings("test.yaml", &|_| None)
        .unwrap();
    let running = shadowdraft::serve::start(settings).await.unwrap();
    let key = running
        .app
        .generated_key
        .clone()
        .expect("the embedded default generates a key");
    let exp = shadowdraft::clock::now() as u64 + 300;
    let token = shadowdraft::auth::hs256_token(&key, "shadowdraft", "laptop", exp);

    let exported = sdk_export(
        running.addr,
        &token,
        &["--encoding", "protobuf", "--agent", "triage-bot", "--calls", "10"],
        false,
    )
    .await;
    assert!(exported.ok, "{} {}", exported.report, exported.stderr);
    let exported = sdk_export(
        running.addr,
        &token,
        &[
            "--encoding",
            "json",
            "--agent",
            "triage-bot",
            "--calls",
            "4",
            "--offset",
            "10",
            "--without-args",
            "2",
        ],
        true,
    )
    .await;
    assert!(exported.ok, "{} {}", exported.report, exported.stderr);
    let answer: Value = serde_json::from_str(exported.report["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], 0, "{answer}");
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("2 tool spans carry no `gen_ai.tool.call.arguments`"),
        "a warning, not a rejection: {answer}"
    );
    running.idle().await;

    let listed = request(
        "GET",
        &format!("http://{}/v1/proposals", running.addr),
        &[],
        Vec::new(),
    )
    .await
    .json();
    let proposals = listed["proposals"].as_array().unwrap();
    assert_eq!(proposals.len(), 1, "{listed}");
    let body = proposals[0]["body"].as_str().unwrap();
    assert!(body.contains("`send_email` on `gmail`"), "{body}");
    assert!(body.contains("14 calls"), "{body}");
    assert!(
        body.contains("- `lookup_order`: 2 calls seen without arguments"),
        "{body}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_exports_get_a_precise_4xx_and_lose_nothing_accepted() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    let addr = bot.running.addr;
    let ok = post_traces(
        addr,
        Some(&token()),
        JSON,
        json_export("00f067aa0ba902b7", email_attributes("a@adatum.com"))
            .to_string()
            .into_bytes(),
        &[],
    )
    .await;
    assert_eq!((ok.status, ok.body.as_str()), (200, "{}"));

    // The SDK's exporter is told no when one span's arguments are not JSON, and nothing of it is taken.
    let exported = sdk_export(
        addr,
        &token(),
        &["--encoding", "json", "--agent", AGENT, "--calls", "3", "--bad"],
        false,
    )
    .await;
    assert!(!exported.ok);
    assert_eq!(exported.report["status"], 400);
    let status: Value = serde_json::from_str(exported.report["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (status["code"].as_i64(), status["error"].as_str()),
        (Some(3), Some("invalid_span"))
    );
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with("nothing was accepted: resourceSpans[0].scopeSpans[0].spans["),
        "{message}"
    );
    assert!(
        message.contains("field `attributes[\"gen_ai.tool.call.arguments\"]`: is not JSON: expected value at line 1 column 1"),
        "{message}"
    );
    let protobuf = sdk_export(
        addr,
        &token(),
        &[
            "--encoding",
            "protobuf",
            "--agent",
            AGENT,
            "--calls",
            "2",
            "--bad",
        ],
        false,
    )
    .await;
    assert!(
        !protobuf.ok,
        "the exporter reports the failed export: {}",
        protobuf.report
    );

    // Malformed protobuf: a Status in protobuf naming the decode error.
    let reply = post_traces(
        addr,
        Some(&token()),
        PROTOBUF,
        b"\x0a\xff\xff\xff\xff\x0f".to_vec(),
        &[],
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.headers["content-type"], PROTOBUF);
    let status = RpcStatus::decode(&reply.bytes[..]).unwrap();
    assert_eq!(status.code, 3);
    assert!(
        status
            .message
            .starts_with("the body is not a protobuf ExportTraceServiceRequest"),
        "{}",
        status.message
    );

    // OTLP/JSON with protobuf's base64 ids instead of hex: named by its path.
    let mut export = json_export("00f067aa0ba902b7", email_attributes("b@adatum.com"));
    export["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = json!("S/kvNXezTaajzpKdDg5HNg==");
    let reply = post_traces(addr, Some(&token()), JSON, export.to_string().into_bytes(), &[]).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("at `resourceSpans[0].scopeSpans[0].spans[0].traceId`"),
        "{}",
        reply.body
    );

    // Wrong content type, wrong encoding.
    let reply = post_traces(addr, Some(&token()), "text/plain", b"hello".to_vec(), &[]).await;
    assert_eq!(reply.status, 415);
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("not \"text/plain\""),
        "{}",
        reply.body
    );
    let reply = post_traces(
        addr,
        Some(&token()),
        JSON,
        b"{}".to_vec(),
        &[("content-encoding", "br")],
    )
    .await;
    assert_eq!(reply.status, 415, "{}", reply.body);
    let reply = post_traces(
        addr,
        Some(&token()),
        JSON,
        b"not gzip".to_vec(),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("not valid gzip"), "{}", reply.body);

    // No token: 401 with the challenge.
    let body = json_export("00f067aa0ba902b8", email_attributes("c@adatum.com")).to_string();
    let reply = post_traces(addr, None, JSON, body.clone().into_bytes(), &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.headers["www-authenticate"], "Bearer");

    // Huge values: over the body limit (65,536 bytes here), also after gunzip; over the observation limits.
    let huge = json_export("00f067aa0ba902b9", email_attributes(&"x".repeat(70_000))).to_string();
    let reply = post_traces(addr, Some(&token()), JSON, huge.clone().into_bytes(), &[]).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    let reply = post_traces(
        addr,
        Some(&token()),
        JSON,
        gzip(huge.as_bytes()),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(
        reply.status, 413,
        "a small body that inflates past the limit: {}",
        reply.body
    );
    assert!(reply.body.contains("after gunzip"), "{}", reply.body);
    let long_tool = json!([
        attr("gen_ai.operation.name", "execute_tool"),
        attr("gen_ai.tool.name", &"t".repeat(300)),
    ]);
    let reply = post_traces(
        addr,
        Some(&token()),
        JSON,
        json_export("00f067aa0ba902ba", long_tool)
            .to_string()
            .into_bytes(),
        &[],
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply
            .body
            .contains("field `attributes[\\\"gen_ai.tool.name\\\"]`: longer than 256 bytes"),
        "{}",
        reply.body
    );

    // Missing arguments are no error: counted, answered with a warning.
    let bare = json!([
        attr("gen_ai.operation.name", "execute_tool"),
        attr("gen_ai.tool.name", "refund")
    ]);
    let reply = post_traces(
        addr,
        Some(&token()),
        JSON,
        json_export("00f067aa0ba902bb", bare).to_string().into_bytes(),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["partialSuccess"]["rejectedSpans"], 0);

    bot.idle().await;
    let status = bot.agent(AGENT).await;
    assert_eq!(
        status["calls_in_window"], 1,
        "only the first export's call: {status}"
    );
    let service = bot.agent("support-service").await;
    assert_eq!(service["calls_without_args"], json!({"refund": 1}));
    assert_eq!(
        bot.metric("shadowdraft_otlp_exports_total{outcome=\"accepted\"}")
            .await,
        Some(2.0)
    );
    assert_eq!(
        bot.metric("shadowdraft_otlp_exports_total{outcome=\"rejected\"}")
            .await,
        Some(10.0)
    );
    assert_eq!(
        bot.metric("shadowdraft_otlp_spans_total{outcome=\"rejected\"}")
            .await,
        Some(3.0)
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_sent_again_counts_once_and_survives_a_restart() {
    let rig = Rig::new();
    let bot = rig.bot().await;
    let addr = bot.running.addr;
    let mut export = json_export("00f067aa0ba902b7", email_attributes("a@adatum.com"));
    export["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902c0",
            "name": "tools/call search", "kind": 3, "startTimeUnixNano": "1795168800000000000",
            "attributes": [
                attr("mcp.method.name", "tools/call"), attr("gen_ai.tool.name", "search"),
                attr("gen_ai.agent.name", AGENT), attr("server.address", "tickets.internal"),
                {"key": "gen_ai.tool.call.arguments", "value": {"kvlistValue": {"values": [
                    {"key": "q", "value": {"stringValue": "refund"}},
                    {"key": "limit", "value": {"intValue": "20"}}]}}},
            ],
        }));
    let body = export.to_string().into_bytes();
    // An exporter that lost the first answer sends the same spans again, without any key.
    for _ in 0..2 {
        let reply = post_traces(addr, Some(&token()), JSON, body.clone(), &[]).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "{}"));
    }
    // Protobuf of the same spans: the same calls, so the same batch.
    let decoded: ExportTraceServiceRequest = serde_json::from_value(export.clone()).unwrap();
    let reply = post_traces(addr, Some(&token()), PROTOBUF, decoded.encode_to_vec(), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], PROTOBUF);
    let answer = ExportTraceServiceResponse::decode(&reply.bytes[..]).unwrap();
    assert_eq!(answer.partial_success, None);
    assert_eq!(
        bot.metric("shadowdraft_otlp_exports_total{outcome=\"duplicate\"}")
            .await,
        Some(2.0)
    );

    // An Idempotency-Key works as for batches: reused for other spans, 422.
    let other = json_export("00f067aa0ba902d0", email_attributes("b@adatum.com"))
        .to_string()
        .into_bytes();
    let first = post_traces(
        addr,
        Some(&token()),
        JSON,
        other.clone(),
        &[("idempotency-key", "export-1")],
    )
    .await;
    assert_eq!(first.status, 200);
    let reused = post_traces(
        addr,
        Some(&token()),
        JSON,
        body.clone(),
        &[("idempotency-key", "export-1")],
    )
    .await;
    assert_eq!(reused.status, 422, "{}", reused.body);
    bot.idle().await;
    let before = bot.agent(AGENT).await;
    assert_eq!(before["calls_in_window"], 3, "{before}");
    bot.stop().await;

    // What was acknowledged is durable: a new process reads it back.
    let bot = rig.bot().await;
    let after = bot.agent(AGENT).await;
    assert_eq!(after["calls_in_window"], 3, "{after}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipping_invalid_spans_answers_a_partial_success() {
    let rig = Rig::new();
    let mut settings = rig.settings();
    settings.ingest.otlp.invalid_spans = shadowdraft::core::spans::InvalidSpans::Skip;
    let bot = rig.bot_with(settings).await;
    let mut export = json_export("00f067aa0ba902b7", email_attributes("a@adatum.com"));
    let mut bad = export["resourceSpans"][0]["scopeSpans"][0]["spans"][0].clone();
    bad["spanId"] = json!("00f067aa0ba902b8");
    bad["attributes"][4] = attr("gen_ai.tool.call.arguments", "{\"to\": 1, \"to\": 2}");
    export["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array_mut()
        .unwrap()
        .push(bad);
    let reply = post_traces(
        bot.running.addr,
        Some(&token()),
        JSON,
        export.to_string().into_bytes(),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], 1, "{answer}");
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("spans[1]") && message.contains("duplicate key `to`"),
        "{message}"
    );
    bot.idle().await;
    assert_eq!(bot.agent(AGENT).await["calls_in_window"], 1);
    bot.stop().await;
}

#[test]
fn summaries_stored_before_calls_without_args_still_load() {
    use shadowdraft::core::summary::Summary;
    let mut summary = Summary::default();
    summary.add(
        &common::call(&json!({"agent": "a", "tool": "t", "args": {"x": 1}})),
        None,
    );
    // Stored buckets are MessagePack arrays of the fields; one from before
    // `without_args` is the same array without its last (here empty) map.
    let blob = rmp_serde::to_vec(&summary).unwrap();
    assert_eq!(
        (blob[0], blob[blob.len() - 1]),
        (0x93, 0x80),
        "a 3-array ending in an empty map"
    );
    let mut old = vec![0x92];
    old.extend_from_slice(&blob[1..blob.len() - 1]);
    let loaded: Summary = rmp_serde::from_slice(&old).unwrap();
    assert_eq!((loaded.calls, loaded.shape_count()), (1, 1));
    assert!(loaded.without_args.is_empty());
}
