//! What each fuzz target does with an input. A target panics only when the
//! code under test misbehaves: a panic, or an answer that breaks what its
//! callers rely on. Refusing the input with an error is the expected outcome
//! for most inputs.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use shadowdraft::bot::events::{self, Event, Parsed};
use shadowdraft::core::check;
use shadowdraft::core::commands;
use shadowdraft::core::observation::{parse_batch, parse_line, Origin};
use shadowdraft::core::policies::{Policies, RepoFiles};
use shadowdraft::core::schema::Schema;
use shadowdraft::core::spans::{map_export, SpanMapping};
use shadowdraft::enforce::authzen;

/// A fuzz target: takes any bytes.
pub type Target = fn(&[u8]);

/// Every target, by the name of its binary and corpus folder.
pub const TARGETS: [(&str, Target); 8] = [
    ("observations", observations),
    ("otlp_protobuf", otlp_protobuf),
    ("otlp_json", otlp_json),
    ("authzen", authzen),
    ("webhook", webhook),
    ("commands", commands),
    ("policies", policies),
    ("schema", schema),
];

fn origin() -> Origin {
    Origin {
        source: "fuzz".into(),
        line: None,
    }
}

/// `POST /v1/observations` bodies and journal lines (DESIGN §1).
pub fn observations(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(batch) = parse_batch(&origin(), text) {
        for call in &batch.calls {
            assert!(
                !call.agent.is_empty(),
                "a call without an agent was accepted: {text:?}"
            );
        }
    }
    for line in text.lines() {
        let _ = parse_line(&origin(), line);
    }
}

/// `POST /v1/traces` in protobuf (DESIGN §11).
pub fn otlp_protobuf(data: &[u8]) {
    if let Ok(request) = ExportTraceServiceRequest::decode(data) {
        let _ = map_export(&request, &SpanMapping::default(), "fuzz");
    }
}

/// `POST /v1/traces` in OTLP/JSON (DESIGN §11).
pub fn otlp_json(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<ExportTraceServiceRequest>(data) {
        let _ = map_export(&request, &SpanMapping::default(), "fuzz");
    }
}

/// `POST /access/v1/evaluation` and `…/evaluations` (AuthZEN).
pub fn authzen(data: &[u8]) {
    let _ = authzen::parse_evaluation(data);
    if let Ok((queries, _)) = authzen::parse_evaluations(data, 16) {
        assert!(queries.len() <= 16, "more evaluations than the cap");
    }
}

/// Webhook events the bot reads: the first byte picks the event name.
pub fn webhook(data: &[u8]) {
    let Some((first, payload)) = data.split_first() else {
        return;
    };
    // Every event the bot handles, and one it acknowledges and ignores.
    let names: Vec<&str> = events::HANDLED.iter().copied().chain(["ping"]).collect();
    let name = names[*first as usize % names.len()];
    if let Ok(Parsed::Event(event)) = events::parse(name, payload) {
        // The webhook handler stores the event serialised and the worker reads it back.
        let stored = serde_json::to_vec(&event).expect("events serialise");
        let _: Event = serde_json::from_slice(&stored).expect("a stored event reads back");
    }
}

/// `/shadowdraft` commands in a comment.
pub fn commands(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = commands::parse(text);
    assert!(parsed.len() <= text.lines().count(), "more commands than lines");
}

/// A policy repository: a schema, then `\n%%\n`, then one agent's policy file.
/// Without the separator the whole input is the policy file.
pub fn policies(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (schema, policy) = match text.split_once("\n%%\n") {
        Some((schema, policy)) => (Some(schema.to_string()), policy),
        None => (None, text),
    };
    let files = RepoFiles {
        schema,
        agents: [("policies/agents/fuzz.cedar".to_string(), policy.to_string())].into(),
    };
    let _ = Policies::load(&files);
    let _ = check::load(&files);
}

/// `policies/schema.cedarschema`: what parses renders, and the rendering parses.
pub fn schema(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(schema) = Schema::parse(text) {
        let rendered = schema.render().expect("a parsed schema renders");
        Schema::parse(&rendered).expect("a rendered schema parses");
    }
}
