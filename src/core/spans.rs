//! OpenTelemetry traces as observations (DESIGN §11): the tool-execution spans
//! of the GenAI semantic conventions become §1 calls.
//!
//! Pure: an OTLP export request (decoded at the edge) and a [`SpanMapping`]
//! in; the calls out, both parsed (a [`Batch`]) and as the `ObservationBatch`
//! document the journal keeps, which parses back to exactly that batch. Each
//! call goes through the same checks as a posted observation, and an error
//! names the span (its place in the export, trace and span id) and the
//! attribute the bad value came from.
//!
//! The conventions are still in development, so the known variants of their
//! names are accepted (README, "Send OpenTelemetry traces"). Tool arguments
//! are opt-in there: a tool span without them is kept as a call without
//! arguments, counted per agent and tool and never drafted from.

use super::hex;
use super::observation::{
    parse_batch, parse_call, parse_call_without_args, rfc3339, Batch, Call, ObservationError, Origin,
    MAX_SESSION_ATTRS,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// `gen_ai.operation.name` of a tool execution.
pub const EXECUTE_TOOL: &str = "execute_tool";
/// `mcp.method.name` of an MCP tool call.
pub const TOOLS_CALL: &str = "tools/call";
/// Where the tool's name is read, first found wins; then the span name
/// (`execute_tool <tool>`, `tools/call <tool>`).
pub const TOOL_NAME: [&str; 2] = ["gen_ai.tool.name", "mcp.tool.name"];
/// Where the call's arguments are read, first found wins: the current name,
/// then the one instrumentations used before the attribute registry had it.
pub const ARGUMENTS: [&str; 2] = ["gen_ai.tool.call.arguments", "gen_ai.tool.arguments"];
/// Rejected spans named in one partial-success message.
const REJECTIONS_NAMED: usize = 5;

/// How spans become calls: `ingest.otlp` in `shadowdraft.yaml`. Every list is
/// an order of preference; each attribute is looked for on the span, then on
/// its resource.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpanMapping {
    /// The principal: the first of these attributes present.
    pub agent_attributes: Vec<String>,
    /// The MCP server (the resource of the request); `default` when none is present.
    pub server_attributes: Vec<String>,
    /// Session attribute (DESIGN §1 `session`) → the span attributes it is read from.
    pub session_attributes: BTreeMap<String, Vec<String>>,
    /// Also take tool spans of kind SERVER: the callee's view of a call its
    /// caller reports too (an MCP server's own span), so off by default.
    pub server_spans: bool,
    /// What an invalid tool span does to its export.
    pub invalid_spans: InvalidSpans,
}

impl Default for SpanMapping {
    fn default() -> Self {
        let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        SpanMapping {
            agent_attributes: names(&["gen_ai.agent.id", "gen_ai.agent.name", "service.name"]),
            server_attributes: names(&["mcp.server.name", "server.address"]),
            session_attributes: BTreeMap::from([
                ("conversation".to_string(), names(&["gen_ai.conversation.id"])),
                ("user".to_string(), names(&["user.id", "enduser.id"])),
            ]),
            server_spans: false,
            invalid_spans: InvalidSpans::Reject,
        }
    }
}

impl SpanMapping {
    /// A mapping that can name an agent and builds valid sessions; the error names the key.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.agent_attributes.is_empty() {
            return Err((
                "agent_attributes".into(),
                "must name at least one attribute".into(),
            ));
        }
        if self.session_attributes.len() > MAX_SESSION_ATTRS {
            return Err((
                "session_attributes".into(),
                format!("at most {MAX_SESSION_ATTRS} session attributes"),
            ));
        }
        let lists = [
            ("agent_attributes", &self.agent_attributes),
            ("server_attributes", &self.server_attributes),
        ];
        let sessions = self.session_attributes.iter().map(|(k, v)| (k.as_str(), v));
        for (key, names) in lists.into_iter().chain(sessions) {
            if names.iter().any(String::is_empty) {
                return Err((key.to_string(), "attribute names must not be empty".into()));
            }
        }
        Ok(())
    }
}

/// What an invalid tool span (arguments that are not a JSON object, no tool
/// name, a value over the observation limits) does to its export.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvalidSpans {
    /// The export is refused whole (400), like an observation batch.
    #[default]
    Reject,
    /// The span is left out and counted in the answer's partial success.
    Skip,
}

/// What one export held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Every span in the export.
    pub spans: u64,
    /// Tool spans taken as calls with arguments.
    pub calls: u64,
    /// Tool spans taken as calls without arguments.
    pub without_args: u64,
    /// Tool spans of kind SERVER, left out (`server_spans: false`).
    pub server_side: u64,
    /// Invalid tool spans.
    pub rejected: u64,
}

/// An export turned into calls.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub batch: Batch,
    /// The batch as an `ObservationBatch` document, which parses back to `batch`.
    pub body: String,
    /// SHA-256 (hex) over the trace and span ids of the spans taken: an
    /// export sent again carries the same spans.
    pub spans_digest: String,
    pub seen: Seen,
    /// The first invalid spans left out (`invalid_spans: skip`).
    pub rejected: Vec<ObservationError>,
}

impl Mapped {
    /// The OTLP partial-success message: why spans were rejected, or a
    /// warning about calls without arguments; empty when there is nothing to say.
    pub fn message(&self) -> String {
        let mut parts = Vec::new();
        if self.seen.rejected > 0 {
            let named: Vec<String> = self.rejected.iter().map(ToString::to_string).collect();
            let more = self.seen.rejected - named.len() as u64;
            let mut text = format!(
                "{} invalid tool spans left out: {}",
                self.seen.rejected,
                named.join("; ")
            );
            if more > 0 {
                text.push_str(&format!("; and {more} more"));
            }
            parts.push(text);
        }
        if self.seen.without_args > 0 {
            parts.push(format!(
                "{} tool spans carry no `{}`: they are counted but no rule is drafted from them; \
                 enable recording of tool call arguments in the instrumentation",
                self.seen.without_args, ARGUMENTS[0]
            ));
        }
        parts.join(". ")
    }
}

/// An export refused whole (`invalid_spans: reject`): its first invalid span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub first: Box<ObservationError>,
    /// What the export held; `seen.rejected` invalid tool spans among it.
    pub seen: Seen,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.first)?;
        if self.seen.rejected > 1 {
            write!(f, " (and {} more invalid tool spans)", self.seen.rejected - 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejected {}

/// Turn the tool spans of an export into calls from `source`.
pub fn map_export(
    request: &ExportTraceServiceRequest,
    mapping: &SpanMapping,
    source: &str,
) -> Result<Mapped, Rejected> {
    let mut seen = Seen::default();
    let mut written = Vec::new();
    let mut rejected = Vec::new();
    for (r, resource_spans) in request.resource_spans.iter().enumerate() {
        let resource: &[KeyValue] = resource_spans
            .resource
            .as_ref()
            .map_or(&[], |res| res.attributes.as_slice());
        for (s, scope) in resource_spans.scope_spans.iter().enumerate() {
            for (i, span) in scope.spans.iter().enumerate() {
                seen.spans += 1;
                let at = SpanAt {
                    path: (r, s, i),
                    span,
                    resource,
                };
                match at.take(mapping) {
                    Ok(Taken::NotATool) => {}
                    Ok(Taken::ServerSide) => seen.server_side += 1,
                    Ok(Taken::Call(call)) => written.push(*call),
                    Err(e) => reject(&mut seen, &mut rejected, e),
                }
            }
        }
    }
    // One parse of the whole batch checks every call as a posted batch is
    // checked; only when it fails is each call parsed alone, to name the span.
    let whole = rejected
        .is_empty()
        .then(|| parse_batch(&journal(), &body_of(source, &written)).ok())
        .flatten();
    let batch = match whole {
        Some(batch) => batch,
        None => {
            let mut batch = Batch {
                source: source.to_string(),
                ..Batch::default()
            };
            let mut valid = Vec::with_capacity(written.len());
            for call in written {
                match call.parse() {
                    Ok(parsed) if call.args => batch.calls.push(parsed),
                    Ok(parsed) => batch.calls_without_args.push(parsed),
                    Err(e) => {
                        reject(&mut seen, &mut rejected, e);
                        continue;
                    }
                }
                valid.push(call);
            }
            written = valid;
            batch
        }
    };
    if mapping.invalid_spans == InvalidSpans::Reject && !rejected.is_empty() {
        return Err(Rejected {
            first: Box::new(rejected.swap_remove(0)),
            seen,
        });
    }
    seen.calls = batch.calls.len() as u64;
    seen.without_args = batch.calls_without_args.len() as u64;
    let mut digest = Sha256::new();
    for call in &written {
        digest.update(&call.at.span.trace_id);
        digest.update(&call.at.span.span_id);
    }
    Ok(Mapped {
        body: body_of(source, &written),
        batch,
        spans_digest: hex::encode(&digest.finalize()),
        seen,
        rejected,
    })
}

fn reject(seen: &mut Seen, rejected: &mut Vec<ObservationError>, e: ObservationError) {
    seen.rejected += 1;
    if rejected.len() < REJECTIONS_NAMED {
        rejected.push(e);
    }
}

/// The origin of a batch parse; errors are renamed after their span.
fn journal() -> Origin {
    Origin {
        source: "OTLP export".into(),
        line: None,
    }
}

/// The `ObservationBatch` of these calls, in their order.
fn body_of(source: &str, calls: &[Written<'_>]) -> String {
    let size: usize = calls.iter().map(|c| c.text.len() + 1).sum();
    let mut body = String::with_capacity(size + source.len() + 64);
    body.push_str("{\"source\":");
    push_json_str(&mut body, source);
    for (name, args) in [("calls", true), ("calls_without_args", false)] {
        body.push_str(",\"");
        body.push_str(name);
        body.push_str("\":[");
        let mut first = true;
        for call in calls.iter().filter(|c| c.args == args) {
            if !first {
                body.push(',');
            }
            first = false;
            body.push_str(&call.text);
        }
        body.push(']');
    }
    body.push('}');
    body
}

/// What became of one span.
enum Taken<'a> {
    NotATool,
    ServerSide,
    Call(Box<Written<'a>>),
}

/// A tool span written as a §1 call, not yet checked.
struct Written<'a> {
    at: SpanAt<'a>,
    /// The call's JSON.
    text: String,
    /// It has arguments (else it is a call without them).
    args: bool,
    sources: Sources<'a>,
}

impl Written<'_> {
    /// The call, checked as a posted observation is; errors name the span and attribute.
    fn parse(&self) -> Result<Call, ObservationError> {
        let parsed = if self.args {
            parse_call(&journal(), &self.text)
        } else {
            parse_call_without_args(&journal(), &self.text)
        };
        parsed.map_err(|mut e| {
            e.origin = self.at.origin();
            e.field = self.sources.field(&e.field);
            e
        })
    }
}

/// One span in its export.
#[derive(Clone, Copy)]
struct SpanAt<'a> {
    /// (resource, scope, span) indices.
    path: (usize, usize, usize),
    span: &'a Span,
    resource: &'a [KeyValue],
}

/// Where a value of a call was read.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    Attribute { on_resource: bool, key: &'a str },
    SpanName,
}

impl Source<'_> {
    /// `attributes["key"]`, as OTLP/JSON would reach it.
    fn path(&self) -> String {
        match self {
            Source::Attribute { on_resource, key } => {
                let prefix = if *on_resource { "resource." } else { "" };
                let mut path = format!("{prefix}attributes[");
                push_json_str(&mut path, key);
                path.push(']');
                path
            }
            Source::SpanName => "name".into(),
        }
    }
}

fn on_span(key: &str) -> Source<'_> {
    Source::Attribute {
        on_resource: false,
        key,
    }
}

/// Where each value of a call came from, for errors.
struct Sources<'a> {
    agent: Source<'a>,
    tool: Source<'a>,
    server: Option<Source<'a>>,
    args: Option<Source<'a>>,
    /// (session key, source).
    session: Vec<(&'a str, Source<'a>)>,
}

impl Sources<'_> {
    /// The span field an observation error's call field came from.
    fn field(&self, call_field: &str) -> String {
        let (head, rest) = match call_field.find(['.', '[']) {
            Some(i) => call_field.split_at(i),
            None => (call_field, ""),
        };
        match head {
            "agent" => self.agent.path(),
            "tool" => self.tool.path(),
            "server" => self.server.map_or_else(|| "server".into(), |s| s.path()),
            "args" => format!("{}{rest}", self.args.map_or_else(|| "args".into(), |s| s.path())),
            "session" => rest
                .strip_prefix('.')
                .and_then(|key| self.session.iter().find(|(k, _)| *k == key))
                .map_or_else(|| "session attributes".into(), |(_, s)| s.path()),
            "first_seen" => "startTimeUnixNano".into(),
            "last_seen" => "endTimeUnixNano".into(),
            "trace_id" => "traceId".into(),
            _ => call_field.to_string(),
        }
    }
}

impl<'a> SpanAt<'a> {
    fn origin(&self) -> Origin {
        let (r, s, i) = self.path;
        let short = |bytes: &[u8], n: usize| hex::encode(&bytes[..bytes.len().min(n)]);
        Origin {
            source: format!(
                "resourceSpans[{r}].scopeSpans[{s}].spans[{i}] (trace {}, span {})",
                short(&self.span.trace_id, 16),
                short(&self.span.span_id, 8)
            ),
            line: None,
        }
    }

    fn fail(&self, field: impl Into<String>, message: impl Into<String>) -> ObservationError {
        ObservationError {
            origin: self.origin(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// Attribute `key` on the span or its resource. A key given twice is an
    /// error (OTLP requires keys to be unique; which value counts would be a guess).
    fn find(&self, on_resource: bool, key: &'a str) -> Result<Option<&'a AnyValue>, ObservationError> {
        let attributes: &'a [KeyValue] = if on_resource {
            self.resource
        } else {
            self.span.attributes.as_slice()
        };
        let mut found = attributes.iter().filter(|kv| kv.key == key);
        let first = found.next();
        if found.next().is_some() {
            let source = Source::Attribute { on_resource, key };
            return Err(self.fail(source.path(), "is given more than once"));
        }
        Ok(first
            .and_then(|kv| kv.value.as_ref())
            .filter(|v| v.value.is_some()))
    }

    /// The first of `keys` present, on the span, then on the resource.
    fn first_of(&self, keys: &'a [String]) -> Result<Option<(Source<'a>, &'a AnyValue)>, ObservationError> {
        for key in keys {
            for on_resource in [false, true] {
                if let Some(value) = self.find(on_resource, key)? {
                    return Ok(Some((Source::Attribute { on_resource, key }, value)));
                }
            }
        }
        Ok(None)
    }

    /// The span has attribute `key` with the string `value`. Deciding what a
    /// span is stays lenient: only tool spans are held to the rules.
    fn says(&self, key: &str, value: &str) -> bool {
        self.span.attributes.iter().any(|kv| {
            kv.key == key
                && matches!(
                    kv.value.as_ref().and_then(|v| v.value.as_ref()),
                    Some(any_value::Value::StringValue(s)) if s == value
                )
        })
    }

    fn text(&self, source: Source<'_>, value: &'a AnyValue) -> Result<&'a str, ObservationError> {
        match &value.value {
            Some(any_value::Value::StringValue(s)) => Ok(s),
            other => Err(self.fail(source.path(), format!("must be a string, not {}", kind_of(other)))),
        }
    }

    fn take(&self, mapping: &'a SpanMapping) -> Result<Taken<'a>, ObservationError> {
        if !self.says("gen_ai.operation.name", EXECUTE_TOOL) && !self.says("mcp.method.name", TOOLS_CALL) {
            return Ok(Taken::NotATool);
        }
        if self.span.kind == SpanKind::Server as i32 && !mapping.server_spans {
            return Ok(Taken::ServerSide);
        }
        let mut text = String::with_capacity(256);

        let (agent_source, value) = self.first_of(&mapping.agent_attributes)?.ok_or_else(|| {
            self.fail(
                "attributes",
                format!(
                    "names no agent: none of {} is set on the span or its resource",
                    mapping.agent_attributes.join(", ")
                ),
            )
        })?;
        text.push_str("{\"agent\":");
        push_json_str(&mut text, self.text(agent_source, value)?);

        let (tool_source, tool) = self.tool_name()?;
        text.push_str(",\"tool\":");
        push_json_str(&mut text, tool);

        let server = self.first_of(&mapping.server_attributes)?;
        if let Some((source, value)) = server {
            text.push_str(",\"server\":");
            push_json_str(&mut text, self.text(source, value)?);
        }

        let args = self.arguments(&mut text)?;

        let start = self.span.start_time_unix_nano;
        let end = self.span.end_time_unix_nano;
        if start > 0 {
            let last = if end > 0 { end } else { start };
            for (field, nanos) in [("first_seen", start), ("last_seen", last)] {
                text.push_str(",\"");
                text.push_str(field);
                text.push_str("\":\"");
                text.push_str(&rfc3339(seconds(nanos)));
                text.push('"');
            }
        }
        text.push_str(",\"trace_id\":\"");
        text.push_str(&self.trace_id()?);
        text.push('"');

        let mut session = Vec::new();
        for (name, keys) in &mapping.session_attributes {
            let Some((source, value)) = self.first_of(keys)? else {
                continue;
            };
            text.push_str(if session.is_empty() { ",\"session\":{" } else { "," });
            push_json_str(&mut text, name);
            text.push(':');
            match &value.value {
                Some(any_value::Value::StringValue(s)) => push_json_str(&mut text, s),
                Some(any_value::Value::BoolValue(b)) => text.push_str(if *b { "true" } else { "false" }),
                Some(any_value::Value::IntValue(i)) => text.push_str(&i.to_string()),
                Some(any_value::Value::DoubleValue(d)) => {
                    text.push_str(&finite(*d).map_err(|m| self.fail(source.path(), m))?.to_string())
                }
                other => {
                    return Err(self.fail(
                        source.path(),
                        format!(
                            "a session attribute must be a string, number or boolean, not {}",
                            kind_of(other)
                        ),
                    ))
                }
            }
            session.push((name.as_str(), source));
        }
        if !session.is_empty() {
            text.push('}');
        }
        text.push('}');
        Ok(Taken::Call(Box::new(Written {
            at: *self,
            text,
            args: args.is_some(),
            sources: Sources {
                agent: agent_source,
                tool: tool_source,
                server: server.map(|(source, _)| source),
                args,
                session,
            },
        })))
    }

    fn tool_name(&self) -> Result<(Source<'static>, &'a str), ObservationError> {
        for key in TOOL_NAME {
            if let Some(value) = self.find(false, key)? {
                return Ok((on_span(key), self.text(on_span(key), value)?));
            }
        }
        let name = self.span.name.as_str();
        [EXECUTE_TOOL, TOOLS_CALL]
            .iter()
            .find_map(|prefix| name.strip_prefix(prefix)?.strip_prefix(' '))
            .map(str::trim)
            .filter(|tool| !tool.is_empty())
            .map(|tool| (Source::SpanName, tool))
            .ok_or_else(|| {
                self.fail(
                    "attributes",
                    format!(
                        "a tool span names no tool: set `{}` (or name the span `execute_tool <tool>`)",
                        TOOL_NAME[0]
                    ),
                )
            })
    }

    /// Write `"args": …` from a JSON string or a key-value list, and say
    /// where they came from; `None` when not recorded.
    fn arguments(&self, text: &mut String) -> Result<Option<Source<'static>>, ObservationError> {
        for key in ARGUMENTS {
            let Some(value) = self.find(false, key)? else {
                continue;
            };
            let path = on_span(key).path();
            text.push_str(",\"args\":");
            match &value.value {
                // Kept as written: checked here, parsed once with the batch.
                Some(any_value::Value::StringValue(json)) => {
                    check_json_object(json).map_err(|m| self.fail(&path, m))?;
                    text.push_str(json);
                }
                Some(any_value::Value::KvlistValue(_)) => {
                    let args = json_of(value).map_err(|(at, m)| self.fail(format!("{path}{at}"), m))?;
                    text.push_str(&args.to_string());
                }
                other => {
                    return Err(self.fail(
                        &path,
                        format!(
                            "must be a JSON object (a JSON string or a key-value list), not {}",
                            kind_of(other)
                        ),
                    ))
                }
            }
            return Ok(Some(on_span(key)));
        }
        Ok(None)
    }

    /// Lower-case hex, as OTLP/JSON writes it.
    fn trace_id(&self) -> Result<String, ObservationError> {
        let id = &self.span.trace_id;
        if id.len() != 16 {
            return Err(self.fail("traceId", format!("must be 16 bytes, not {}", id.len())));
        }
        if id.iter().all(|b| *b == 0) {
            return Err(self.fail("traceId", "is all zeros (an invalid trace id)"));
        }
        Ok(hex::encode(id))
    }
}

fn seconds(unix_nano: u64) -> i64 {
    (unix_nano / 1_000_000_000) as i64
}

fn finite(d: f64) -> Result<Value, String> {
    Number::from_f64(d)
        .map(Value::Number)
        .ok_or_else(|| format!("{d} is not a finite number"))
}

/// `s` as a JSON string.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if escaped.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escaped);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

fn kind_of(value: &Option<any_value::Value>) -> &'static str {
    match value {
        None => "an empty value",
        Some(any_value::Value::StringValue(_)) => "a string",
        Some(any_value::Value::BoolValue(_)) => "a boolean",
        Some(any_value::Value::IntValue(_)) => "an integer",
        Some(any_value::Value::DoubleValue(_)) => "a double",
        Some(any_value::Value::ArrayValue(_)) => "an array",
        Some(any_value::Value::KvlistValue(_)) => "a key-value list",
        Some(any_value::Value::BytesValue(_)) => "bytes",
        Some(any_value::Value::StringValueStrindex(_)) => "a profiling string reference",
    }
}

/// An attribute value as JSON. Errors carry the path below the attribute.
fn json_of(value: &AnyValue) -> Result<Value, (String, String)> {
    Ok(match &value.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => finite(*d).map_err(|m| (String::new(), m))?,
        Some(any_value::Value::ArrayValue(array)) => Value::Array(
            array
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| json_of(v).map_err(|(at, m)| (format!("[{i}]{at}"), m)))
                .collect::<Result<_, _>>()?,
        ),
        Some(any_value::Value::KvlistValue(list)) => {
            let mut map = Map::new();
            for kv in &list.values {
                let here = format!(".{}", kv.key);
                let inner = match &kv.value {
                    Some(v) => json_of(v).map_err(|(at, m)| (format!("{here}{at}"), m))?,
                    None => Value::Null,
                };
                if map.insert(kv.key.clone(), inner).is_some() {
                    return Err((here, "is given more than once".into()));
                }
            }
            Value::Object(map)
        }
        Some(other @ (any_value::Value::BytesValue(_) | any_value::Value::StringValueStrindex(_))) => {
            return Err((
                String::new(),
                format!("{} cannot be an argument value", kind_of(&Some(other.clone()))),
            ))
        }
    })
}

/// Check that `text` is one JSON object in which no object gives a key twice
/// (serde_json would keep the last silently, so a reviewer and the policy
/// could read different arguments). Nothing is built: the text is parsed
/// for real once, with its batch.
pub fn check_json_object(text: &str) -> Result<(), String> {
    serde_json::from_str::<Unique>(text).map_err(|e| format!("is not JSON: {e}"))?;
    let kind = match text.trim_start().as_bytes().first() {
        Some(b'{') => return Ok(()),
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    };
    Err(format!("must be a JSON object, not {kind}"))
}

/// Any JSON value whose objects have unique keys.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Unique, A::Error> {
        let mut keys: Vec<Key<'de>> = Vec::new();
        while let Some(key) = access.next_key::<Key<'de>>()? {
            access.next_value::<Unique>()?;
            keys.push(key);
        }
        // Sorting, not a set: no allocation per key, and n log n for hostile objects.
        keys.sort_unstable();
        match keys.windows(2).find(|pair| pair[0] == pair[1]) {
            Some(pair) => Err(de::Error::custom(format!("duplicate key `{}`", pair[0].0))),
            None => Ok(Unique),
        }
    }
}

/// An object key, borrowed from the text unless it has escapes.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::observation::{parse_batch, MAX_LINE_BYTES};
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
    use serde_json::json;

    const TRACE: [u8; 16] = [
        0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
    ];
    /// 2026-11-20T10:00:00Z, in nanoseconds.
    const START: u64 = 1_795_168_800_000_000_000;

    fn any(value: any_value::Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(any(value)),
            ..KeyValue::default()
        }
    }

    fn text(key: &str, value: &str) -> KeyValue {
        kv(key, any_value::Value::StringValue(value.into()))
    }

    fn kvlist(items: Vec<KeyValue>) -> any_value::Value {
        any_value::Value::KvlistValue(KeyValueList { values: items })
    }

    /// An `execute_tool` span of `tool`, with `extra` attributes.
    fn tool_span(tool: &str, span_id: u8, extra: Vec<KeyValue>) -> Span {
        let mut attributes = vec![
            text("gen_ai.operation.name", EXECUTE_TOOL),
            text("gen_ai.tool.name", tool),
        ];
        attributes.extend(extra);
        Span {
            trace_id: TRACE.to_vec(),
            span_id: vec![0, 0, 0, 0, 0, 0, 0, span_id],
            name: format!("execute_tool {tool}"),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: START,
            end_time_unix_nano: START + 1_500_000_000,
            attributes,
            ..Span::default()
        }
    }

    fn export(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: resource,
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    fn service(name: &str) -> Vec<KeyValue> {
        vec![text("service.name", name)]
    }

    fn map(request: &ExportTraceServiceRequest) -> Result<Mapped, Rejected> {
        map_export(request, &SpanMapping::default(), "otlp")
    }

    fn args(json: &str) -> KeyValue {
        text(ARGUMENTS[0], json)
    }

    /// The first invalid span's error.
    fn refused(spans: Vec<Span>) -> ObservationError {
        *map(&export(service("svc"), spans)).unwrap_err().first
    }

    #[test]
    fn a_tool_span_becomes_a_call() {
        let span = tool_span(
            "send_email",
            1,
            vec![
                text("gen_ai.agent.name", "support-bot"),
                text("mcp.server.name", "gmail"),
                args(r#"{"to": "a@adatum.com", "cc": ["b@adatum.com"], "priority": 2}"#),
                text("gen_ai.conversation.id", "conv-7"),
                text("user.id", "u-42"),
            ],
        );
        let mapped = map(&export(service("support-service"), vec![span])).unwrap();
        assert_eq!(
            mapped.seen,
            Seen {
                spans: 1,
                calls: 1,
                ..Seen::default()
            }
        );
        let call = &mapped.batch.calls[0];
        assert_eq!(
            (call.agent.as_str(), call.tool.as_str(), call.server.as_str()),
            ("support-bot", "send_email", "gmail")
        );
        assert_eq!(
            Value::Object(call.args.clone()),
            json!({"to": "a@adatum.com", "cc": ["b@adatum.com"], "priority": 2})
        );
        assert_eq!(call.trace_id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(call.first_seen, Some(1_795_168_800));
        assert_eq!(call.last_seen, Some(1_795_168_801));
        assert_eq!(
            Value::Object(call.session.clone().unwrap()),
            json!({"conversation": "conv-7", "user": "u-42"})
        );
        assert_eq!(call.count, 1);
        assert!(mapped.message().is_empty());
    }

    #[test]
    fn the_journal_body_parses_back_to_the_same_batch() {
        let spans = vec![
            tool_span("search", 1, vec![args(r#"{"q": "weather", "limit": 2.5}"#)]),
            tool_span("list_files", 2, vec![]),
        ];
        let mapped = map(&export(service("svc"), spans)).unwrap();
        let origin = Origin {
            source: "journal".into(),
            line: None,
        };
        assert_eq!(parse_batch(&origin, &mapped.body).unwrap(), mapped.batch);
        assert_eq!(mapped.batch.source, "otlp");
        assert_eq!(mapped.batch.calls_without_args.len(), 1);
    }

    #[test]
    fn the_agent_is_the_first_attribute_present_on_the_span_then_its_resource() {
        let agent_of = |span_attrs: Vec<KeyValue>, resource: Vec<KeyValue>| {
            let span = tool_span("t", 1, span_attrs);
            map(&export(resource, vec![span]))
                .unwrap()
                .batch
                .calls_without_args[0]
                .agent
                .clone()
        };
        let id = text("gen_ai.agent.id", "asst_1");
        let name = text("gen_ai.agent.name", "Helper");
        assert_eq!(agent_of(vec![name.clone(), id.clone()], service("svc")), "asst_1");
        assert_eq!(agent_of(vec![name.clone()], service("svc")), "Helper");
        assert_eq!(agent_of(vec![], service("svc")), "svc");
        // An agent named on the resource outranks the service.
        let mut resource = service("svc");
        resource.push(name);
        assert_eq!(agent_of(vec![], resource), "Helper");
        // Configurable: the service first.
        let mapping = SpanMapping {
            agent_attributes: vec!["service.name".into()],
            ..SpanMapping::default()
        };
        let span = tool_span("t", 1, vec![id]);
        let call = &map_export(&export(service("svc"), vec![span]), &mapping, "otlp")
            .unwrap()
            .batch
            .calls_without_args[0];
        assert_eq!(call.agent, "svc");
    }

    #[test]
    fn a_span_that_names_no_agent_is_refused() {
        let span = tool_span("t", 1, vec![]);
        let e = *map(&export(vec![], vec![span])).unwrap_err().first;
        assert_eq!(e.field, "attributes");
        assert!(
            e.message
                .contains("gen_ai.agent.id, gen_ai.agent.name, service.name"),
            "{e}"
        );
    }

    #[test]
    fn mcp_client_tool_calls_are_calls_and_server_spans_are_left_to_the_client() {
        let mcp = |kind: SpanKind, span_id: u8| Span {
            trace_id: TRACE.to_vec(),
            span_id: vec![9, 9, 9, 9, 9, 9, 9, span_id],
            name: "tools/call get-weather".into(),
            kind: kind as i32,
            start_time_unix_nano: START,
            end_time_unix_nano: START,
            attributes: vec![
                text("mcp.method.name", TOOLS_CALL),
                text("server.address", "weather.internal"),
                kv(
                    ARGUMENTS[0],
                    kvlist(vec![
                        text("city", "Oslo"),
                        kv("days", any_value::Value::IntValue(3)),
                        kv(
                            "units",
                            any_value::Value::ArrayValue(ArrayValue {
                                values: vec![any(any_value::Value::StringValue("C".into()))],
                            }),
                        ),
                        kv(
                            "detail",
                            kvlist(vec![kv("hourly", any_value::Value::BoolValue(true))]),
                        ),
                    ]),
                ),
            ],
            ..Span::default()
        };
        let request = export(
            service("planner"),
            vec![mcp(SpanKind::Client, 1), mcp(SpanKind::Server, 2)],
        );
        let mapped = map(&request).unwrap();
        assert_eq!((mapped.seen.calls, mapped.seen.server_side), (1, 1));
        let call = &mapped.batch.calls[0];
        // The tool from the span name; the server from `server.address`.
        assert_eq!(
            (call.tool.as_str(), call.server.as_str(), call.agent.as_str()),
            ("get-weather", "weather.internal", "planner")
        );
        assert_eq!(
            Value::Object(call.args.clone()),
            json!({"city": "Oslo", "days": 3, "units": ["C"], "detail": {"hourly": true}})
        );
        let both = SpanMapping {
            server_spans: true,
            ..SpanMapping::default()
        };
        assert_eq!(map_export(&request, &both, "otlp").unwrap().seen.calls, 2);
    }

    #[test]
    fn other_spans_are_not_calls_whatever_they_carry() {
        let chat = Span {
            trace_id: vec![],
            name: "chat gpt-5".into(),
            attributes: vec![
                text("gen_ai.operation.name", "chat"),
                kv("gen_ai.operation.name", any_value::Value::IntValue(3)),
                args("not json"),
            ],
            ..Span::default()
        };
        let mapped = map(&export(vec![], vec![chat])).unwrap();
        assert_eq!(
            mapped.seen,
            Seen {
                spans: 1,
                ..Seen::default()
            }
        );
        assert!(mapped.batch.calls.is_empty() && mapped.batch.calls_without_args.is_empty());
    }

    #[test]
    fn calls_without_arguments_are_kept_apart_and_named_in_the_answer() {
        let mapped = map(&export(service("svc"), vec![tool_span("delete_file", 1, vec![])])).unwrap();
        assert_eq!(mapped.seen.without_args, 1);
        let call = &mapped.batch.calls_without_args[0];
        assert!(call.args.is_empty());
        assert_eq!(call.tool, "delete_file");
        assert!(
            mapped
                .message()
                .contains("1 tool spans carry no `gen_ai.tool.call.arguments`"),
            "{}",
            mapped.message()
        );
    }

    #[test]
    fn the_older_arguments_name_is_read_too() {
        let span = tool_span("t", 1, vec![text("gen_ai.tool.arguments", r#"{"a": 1}"#)]);
        let mapped = map(&export(service("svc"), vec![span])).unwrap();
        assert_eq!(Value::Object(mapped.batch.calls[0].args.clone()), json!({"a": 1}));
    }

    #[test]
    fn bad_arguments_are_refused_naming_the_span_and_the_attribute() {
        let cases: Vec<(KeyValue, &str, &str)> = vec![
            (
                args("<to>a@b.com</to>"),
                "attributes[\"gen_ai.tool.call.arguments\"]",
                "is not JSON: expected value at line 1 column 1",
            ),
            (
                args(r#"{"to": "a@adatum.com", "to": "x@evil.com"}"#),
                "attributes[\"gen_ai.tool.call.arguments\"]",
                "duplicate key `to`",
            ),
            (
                args(r#"["a"]"#),
                "attributes[\"gen_ai.tool.call.arguments\"]",
                "must be a JSON object, not an array",
            ),
            (
                args(""),
                "attributes[\"gen_ai.tool.call.arguments\"]",
                "is not JSON: EOF",
            ),
            (
                kv(ARGUMENTS[0], any_value::Value::IntValue(4)),
                "attributes[\"gen_ai.tool.call.arguments\"]",
                "not an integer",
            ),
            (
                kv(ARGUMENTS[0], kvlist(vec![text("to", "a"), text("to", "b")])),
                "attributes[\"gen_ai.tool.call.arguments\"].to",
                "is given more than once",
            ),
            (
                kv(
                    ARGUMENTS[0],
                    kvlist(vec![kv("blob", any_value::Value::BytesValue(vec![1, 2]))]),
                ),
                "attributes[\"gen_ai.tool.call.arguments\"].blob",
                "bytes cannot be an argument value",
            ),
            (
                kv(
                    ARGUMENTS[0],
                    kvlist(vec![kv("ratio", any_value::Value::DoubleValue(f64::NAN))]),
                ),
                "attributes[\"gen_ai.tool.call.arguments\"].ratio",
                "NaN is not a finite number",
            ),
            (
                kv(ARGUMENTS[0], kvlist(vec![text("", "x")])),
                "attributes[\"gen_ai.tool.call.arguments\"]",
                "has an empty argument name",
            ),
        ];
        for (attribute, field, message) in cases {
            let e = refused(vec![tool_span("send_email", 3, vec![attribute])]);
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains(message), "{e}");
            assert!(
                e.to_string().starts_with("resourceSpans[0].scopeSpans[0].spans[0] (trace 4bf92f3577b34da6a3ce929d0e0e4736, span 0000000000000003)"),
                "{e}"
            );
        }
    }

    #[test]
    fn hostile_values_meet_the_observation_limits() {
        let huge = "x".repeat(MAX_LINE_BYTES + 1);
        let e = refused(vec![tool_span(
            "t",
            1,
            vec![args(&json!({"body": huge}).to_string())],
        )]);
        assert_eq!(e.field, "attributes[\"gen_ai.tool.call.arguments\"].body", "{e}");
        assert!(e.message.contains("string longer than"), "{e}");

        let mut deep = String::from("1");
        for _ in 0..12 {
            deep = format!("{{\"x\":{deep}}}");
        }
        let e = refused(vec![tool_span("t", 1, vec![args(&deep)])]);
        assert!(
            e.field
                .starts_with("attributes[\"gen_ai.tool.call.arguments\"].x.x"),
            "{e}"
        );
        assert!(e.message.contains("nested deeper"), "{e}");

        let e = refused(vec![tool_span(&"t".repeat(300), 1, vec![])]);
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("attributes[\"gen_ai.tool.name\"]", "longer than 256 bytes")
        );

        let e = refused(vec![tool_span("t", 1, vec![text("user.id", &"u".repeat(300))])]);
        assert_eq!(e.field, "attributes[\"user.id\"]", "{e}");

        let e = refused(vec![tool_span("t", 1, vec![kv("user.id", kvlist(vec![]))])]);
        assert!(e.message.contains("must be a string, number or boolean"), "{e}");

        let e = refused(vec![tool_span("t", 1, vec![text("gen_ai.agent.name", "a\nb")])]);
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("attributes[\"gen_ai.agent.name\"]", "contains control characters")
        );

        let e = refused(vec![tool_span(
            "t",
            1,
            vec![kv("gen_ai.agent.name", any_value::Value::IntValue(1))],
        )]);
        assert_eq!(e.message, "must be a string, not an integer");

        let e = refused(vec![tool_span("t", 1, vec![text("gen_ai.tool.name", "u")])]);
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("attributes[\"gen_ai.tool.name\"]", "is given more than once")
        );
    }

    #[test]
    fn ids_and_times_must_make_sense() {
        let mut span = tool_span("t", 1, vec![]);
        span.trace_id = vec![0; 16];
        assert_eq!(refused(vec![span]).field, "traceId");
        let mut span = tool_span("t", 1, vec![]);
        span.trace_id = vec![1; 3];
        assert_eq!(refused(vec![span]).message, "must be 16 bytes, not 3");
        let mut span = tool_span("t", 1, vec![]);
        span.end_time_unix_nano = START - 5_000_000_000;
        let e = refused(vec![span]);
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("endTimeUnixNano", "is earlier than first_seen")
        );
        // No times: the call counts when received.
        let mut span = tool_span("t", 1, vec![]);
        (span.start_time_unix_nano, span.end_time_unix_nano) = (0, 0);
        let call = &map(&export(service("s"), vec![span]))
            .unwrap()
            .batch
            .calls_without_args[0];
        assert_eq!((call.first_seen, call.last_seen), (None, None));
    }

    #[test]
    fn a_tool_span_needs_a_tool_name() {
        let mut span = tool_span("t", 1, vec![]);
        span.attributes.retain(|kv| kv.key != "gen_ai.tool.name");
        span.name = "execute_tool".into();
        let e = refused(vec![span.clone()]);
        assert!(e.message.contains("names no tool"), "{e}");
        span.attributes.push(text("mcp.tool.name", "from_mcp"));
        let mapped = map(&export(service("s"), vec![span])).unwrap();
        assert_eq!(mapped.batch.calls_without_args[0].tool, "from_mcp");
    }

    #[test]
    fn invalid_spans_refuse_the_export_or_are_skipped_as_configured() {
        let spans = vec![
            tool_span("good", 1, vec![args(r#"{"a": 1}"#)]),
            tool_span("bad", 2, vec![args("{")]),
            tool_span("bad", 3, vec![args("[]")]),
        ];
        let request = export(service("svc"), spans);
        let rejected = map(&request).unwrap_err();
        assert_eq!(rejected.seen.rejected, 2);
        assert!(rejected.to_string().contains("spans[1]"), "{rejected}");
        assert!(
            rejected.to_string().ends_with("(and 1 more invalid tool spans)"),
            "{rejected}"
        );

        let skip = SpanMapping {
            invalid_spans: InvalidSpans::Skip,
            ..SpanMapping::default()
        };
        let mapped = map_export(&request, &skip, "otlp").unwrap();
        assert_eq!((mapped.seen.calls, mapped.seen.rejected), (1, 2));
        assert_eq!(mapped.batch.calls[0].tool, "good");
        let message = mapped.message();
        assert!(
            message.starts_with("2 invalid tool spans left out: resourceSpans[0].scopeSpans[0].spans[1]"),
            "{message}"
        );
    }

    #[test]
    fn the_same_spans_give_the_same_digest() {
        let request = |id: u8| export(service("s"), vec![tool_span("t", id, vec![])]);
        let digest = |r| map(&r).unwrap().spans_digest;
        assert_eq!(digest(request(1)), digest(request(1)));
        assert_ne!(digest(request(1)), digest(request(2)));
    }

    #[test]
    fn arguments_must_be_one_object_with_unique_keys_at_any_depth() {
        assert_eq!(
            check_json_object(r#" {"a": [1, {"b": null, "c": "\u0062"}]} "#),
            Ok(())
        );
        let e = check_json_object(r#"{"a": {"b": 1, "b": 2}}"#).unwrap_err();
        assert!(e.contains("duplicate key `b`"), "{e}");
        // Escapes do not hide a duplicate.
        let e = check_json_object(r#"{"b": 1, "\u0062": 2}"#).unwrap_err();
        assert!(e.contains("duplicate key `b`"), "{e}");
        assert_eq!(
            check_json_object("3").unwrap_err(),
            "must be a JSON object, not a number"
        );
        assert!(check_json_object("{} {}")
            .unwrap_err()
            .starts_with("is not JSON: trailing characters"));
    }

    #[test]
    fn the_mapping_names_a_bad_key() {
        let empty = SpanMapping {
            agent_attributes: vec![],
            ..SpanMapping::default()
        };
        assert_eq!(empty.check().unwrap_err().0, "agent_attributes");
        let blank = SpanMapping {
            session_attributes: BTreeMap::from([("user".to_string(), vec![String::new()])]),
            ..SpanMapping::default()
        };
        assert_eq!(blank.check().unwrap_err().0, "user");
        assert!(SpanMapping::default().check().is_ok());
    }
}
