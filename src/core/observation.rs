//! Observations: the calls enforcement nodes saw (DESIGN §1), parsed and checked.
//!
//! Parsing is pure: callers hand in text and a name for it, and every error names
//! that source, the line and the field, so a bad line in a million is easy to find.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Deepest nesting of objects and arrays accepted inside `args`.
pub const MAX_ARGS_DEPTH: usize = 8;
/// Most leaf values accepted in one call's `args`.
pub const MAX_ARGS_LEAVES: usize = 512;
/// Longest accepted line of `.jsonl` input, and longest string value.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Largest `count` one line may stand for; keeps every sum of counts far from overflow.
pub const MAX_COUNT: u64 = 1 << 40;
/// Longest accepted agent, tool or server id.
pub const MAX_ID_BYTES: usize = 256;
/// Most attributes a call's `session` may carry.
pub const MAX_SESSION_ATTRS: usize = 32;

/// What the policy on `main` decided for the call while the node was shadowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShadowDecision {
    Allow,
    Deny,
}

/// One observed tool call (or `count` identical ones).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub agent: String,
    pub tool: String,
    pub server: String,
    pub args: Map<String, Value>,
    pub count: u64,
    /// Unix seconds; `None` when the observation did not say.
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub decision: Option<ShadowDecision>,
    pub trace_id: Option<String>,
    /// Attributes of the session the call was made in (DESIGN §1): the end
    /// user the agent acts for (`user`), a tenant, a conversation. Flat:
    /// strings, numbers and booleans only.
    pub session: Option<Map<String, Value>>,
}

/// Most tool catalogues one batch may carry.
pub const MAX_CATALOGUES: usize = 64;

/// A batch as posted by an enforcement node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub source: String,
    pub policy_commit: Option<String>,
    pub calls: Vec<Call>,
    /// Calls seen without their arguments (tracing records them only on
    /// request): counted per agent and tool, never drafted from. Their `args`
    /// are empty.
    pub calls_without_args: Vec<Call>,
    /// The latest `tools/list` result of each MCP server the node's gateway
    /// sits in front of, by server name (the calls' `server`).
    pub catalogues: BTreeMap<String, Value>,
}

impl Batch {
    /// Redact the secrets of every call in place (argument values and names,
    /// session attributes; [`super::secrets::redact_arguments`]). Returns
    /// whether anything changed.
    pub fn redact_secrets(&mut self) -> bool {
        let mut changed = false;
        for call in self.calls.iter_mut().chain(self.calls_without_args.iter_mut()) {
            changed |= super::secrets::redact_arguments(&mut call.args);
            if let Some(session) = &mut call.session {
                changed |= super::secrets::redact_arguments(session);
            }
        }
        changed
    }

    /// The `ObservationBatch` document that parses back to this batch.
    pub fn to_json(&self) -> String {
        let call = |c: &Call, with_args: bool| {
            let mut out = Map::new();
            out.insert("agent".into(), c.agent.clone().into());
            out.insert("tool".into(), c.tool.clone().into());
            out.insert("server".into(), c.server.clone().into());
            if with_args {
                out.insert("args".into(), Value::Object(c.args.clone()));
            }
            out.insert("count".into(), c.count.into());
            let times = [("first_seen", c.first_seen), ("last_seen", c.last_seen)];
            for (name, at) in times {
                if let Some(at) = at {
                    out.insert(name.into(), rfc3339(at).into());
                }
            }
            if let Some(decision) = c.decision {
                let decision = match decision {
                    ShadowDecision::Allow => "allow",
                    ShadowDecision::Deny => "deny",
                };
                out.insert("decision".into(), decision.into());
            }
            if let Some(trace) = &c.trace_id {
                out.insert("trace_id".into(), trace.clone().into());
            }
            if let Some(session) = &c.session {
                out.insert("session".into(), Value::Object(session.clone()));
            }
            Value::Object(out)
        };
        let mut doc = Map::new();
        doc.insert("source".into(), self.source.clone().into());
        if let Some(commit) = &self.policy_commit {
            doc.insert("policy_commit".into(), commit.clone().into());
        }
        doc.insert("calls".into(), self.calls.iter().map(|c| call(c, true)).collect());
        if !self.calls_without_args.is_empty() {
            let without: Vec<Value> = self.calls_without_args.iter().map(|c| call(c, false)).collect();
            doc.insert("calls_without_args".into(), without.into());
        }
        if !self.catalogues.is_empty() {
            let catalogues: Map<String, Value> = self.catalogues.clone().into_iter().collect();
            doc.insert("catalogues".into(), Value::Object(catalogues));
        }
        Value::Object(doc).to_string()
    }
}

/// Where a piece of input came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: String,
    pub line: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.source, line),
            None => write!(f, "{}", self.source),
        }
    }
}

/// A rejected observation: where, which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: field `{field}`: {message}")]
pub struct ObservationError {
    pub origin: Origin,
    pub field: String,
    pub message: String,
}

#[derive(Deserialize)]
struct RawCall {
    agent: String,
    tool: String,
    #[serde(deserialize_with = "super::json::object")]
    args: Map<String, Value>,
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    first_seen: Option<String>,
    #[serde(default)]
    last_seen: Option<String>,
    #[serde(default)]
    decision: Option<ShadowDecision>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default, deserialize_with = "super::json::optional_object")]
    session: Option<Map<String, Value>>,
}

/// A call without `args`: every other field as in [`RawCall`].
#[derive(Deserialize)]
struct RawCallWithoutArgs {
    agent: String,
    tool: String,
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    first_seen: Option<String>,
    #[serde(default)]
    last_seen: Option<String>,
    #[serde(default)]
    decision: Option<ShadowDecision>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default, deserialize_with = "super::json::optional_object")]
    session: Option<Map<String, Value>>,
}

impl From<RawCallWithoutArgs> for RawCall {
    fn from(raw: RawCallWithoutArgs) -> RawCall {
        RawCall {
            agent: raw.agent,
            tool: raw.tool,
            args: Map::new(),
            server: raw.server,
            count: raw.count,
            first_seen: raw.first_seen,
            last_seen: raw.last_seen,
            decision: raw.decision,
            trace_id: raw.trace_id,
            session: raw.session,
        }
    }
}

#[derive(Deserialize)]
struct RawBatch {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    policy_commit: Option<String>,
    calls: Vec<RawCall>,
    #[serde(default)]
    calls_without_args: Vec<RawCallWithoutArgs>,
    #[serde(default, deserialize_with = "super::json::object")]
    catalogues: Map<String, Value>,
}

fn error(origin: &Origin, field: impl Into<String>, message: impl Into<String>) -> ObservationError {
    ObservationError {
        origin: origin.clone(),
        field: field.into(),
        message: message.into(),
    }
}

/// Turn a serde error into one that names the JSON path of the offending field.
/// Parse `text` as one JSON document naming the path of what is wrong, and
/// nothing after it.
fn tracked<T: serde::de::DeserializeOwned>(origin: &Origin, text: &str) -> Result<T, ObservationError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let value = from_serde(origin, "", serde_path_to_error::deserialize(&mut *de))?;
    de.end().map_err(|e| {
        error(
            origin,
            "(document)",
            format!("text after the JSON value, at column {}", e.column()),
        )
    })?;
    Ok(value)
}

fn from_serde<T>(
    origin: &Origin,
    prefix: &str,
    result: Result<T, serde_path_to_error::Error<serde_json::Error>>,
) -> Result<T, ObservationError> {
    result.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde reports a missing field at the parent path; name the field itself.
        let msg = inner.to_string();
        let missing = msg
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let mut field = match (path.as_str(), missing) {
            (".", Some(name)) => name.to_string(),
            (p, Some(name)) => format!("{p}.{name}"),
            (".", None) => "(document)".to_string(),
            (p, None) => p.to_string(),
        };
        if !prefix.is_empty() {
            field = if field == "(document)" {
                prefix.to_string()
            } else {
                format!("{prefix}.{field}")
            };
        }
        let message = match msg.rfind(" at line ") {
            Some(i) if inner.is_data() || inner.is_syntax() || inner.is_eof() => msg[..i].to_string(),
            _ => msg,
        };
        error(origin, field, message)
    })
}

/// Unix seconds as RFC 3339, the form observations carry (the number itself
/// if it is beyond what RFC 3339 can write).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

fn parse_time(origin: &Origin, field: &str, text: &str) -> Result<i64, ObservationError> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| {
            error(
                origin,
                field,
                format!("not an RFC 3339 timestamp ({e}): {text:?}"),
            )
        })
}

fn check_id(origin: &Origin, field: &str, id: &str) -> Result<(), ObservationError> {
    if id.is_empty() {
        return Err(error(origin, field, "must not be empty"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(error(origin, field, format!("longer than {MAX_ID_BYTES} bytes")));
    }
    if id.chars().any(char::is_control) {
        return Err(error(origin, field, "contains control characters"));
    }
    Ok(())
}

/// Depth and size limits keep one hostile call from costing unbounded work downstream.
fn check_args(origin: &Origin, prefix: &str, args: &Map<String, Value>) -> Result<(), ObservationError> {
    fn walk(
        origin: &Origin,
        path: &mut String,
        value: &Value,
        depth: usize,
        leaves: &mut usize,
    ) -> Result<(), ObservationError> {
        if depth > MAX_ARGS_DEPTH {
            return Err(error(
                origin,
                path.clone(),
                format!("nested deeper than {MAX_ARGS_DEPTH} levels"),
            ));
        }
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    if key.is_empty() {
                        return Err(error(origin, path.clone(), "has an empty argument name"));
                    }
                    let len = path.len();
                    path.push('.');
                    path.push_str(key);
                    walk(origin, path, inner, depth + 1, leaves)?;
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(origin, path, inner, depth + 1, leaves)?;
                    path.truncate(len);
                }
            }
            Value::String(s) if s.len() > MAX_LINE_BYTES => {
                return Err(error(
                    origin,
                    path.clone(),
                    format!("string longer than {MAX_LINE_BYTES} bytes"),
                ));
            }
            _ => {}
        }
        *leaves += 1;
        if *leaves > MAX_ARGS_LEAVES {
            return Err(error(
                origin,
                path.clone(),
                format!("more than {MAX_ARGS_LEAVES} values"),
            ));
        }
        Ok(())
    }
    let mut path = format!("{prefix}args");
    let mut leaves = 0;
    for (key, value) in args {
        if key.is_empty() {
            return Err(error(origin, path, "has an empty argument name"));
        }
        let len = path.len();
        path.push('.');
        path.push_str(key);
        walk(origin, &mut path, value, 1, &mut leaves)?;
        path.truncate(len);
    }
    Ok(())
}

/// What is wrong with a session, as (field, message): a session is a flat
/// record of a few short attributes. Shared with the node's AuthZEN intake.
pub fn session_problem(session: &Map<String, Value>) -> Option<(String, String)> {
    if session.len() > MAX_SESSION_ATTRS {
        return Some((
            "session".into(),
            format!("more than {MAX_SESSION_ATTRS} attributes"),
        ));
    }
    for (key, value) in session {
        let field = format!("session.{key}");
        if key.is_empty() || key.len() > MAX_ID_BYTES || key.chars().any(char::is_control) {
            return Some((
                "session".into(),
                "attribute names must be 1 to 256 printable characters".into(),
            ));
        }
        match value {
            Value::String(s) if s.len() > MAX_ID_BYTES => {
                return Some((field, format!("longer than {MAX_ID_BYTES} bytes")))
            }
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {}
            _ => return Some((field, "must be a string, a number or a boolean".into())),
        }
    }
    None
}

fn check_session(origin: &Origin, session: &Map<String, Value>) -> Result<(), ObservationError> {
    match session_problem(session) {
        Some((field, message)) => Err(error(origin, field, message)),
        None => Ok(()),
    }
}

/// Check a parsed call. Fields in errors are relative to the call; a batch
/// prefixes them with the call's index only when one fails (the hot path
/// builds no strings).
fn finish_call(origin: &Origin, raw: RawCall) -> Result<Call, ObservationError> {
    let field = |name: &str| name.to_string();
    check_id(origin, "agent", &raw.agent)?;
    check_id(origin, "tool", &raw.tool)?;
    let server = raw.server.unwrap_or_else(|| "default".to_string());
    check_id(origin, "server", &server)?;
    let count = raw.count.unwrap_or(1);
    if count == 0 {
        return Err(error(origin, field("count"), "must be at least 1"));
    }
    if count > MAX_COUNT {
        return Err(error(
            origin,
            field("count"),
            format!("must be at most {MAX_COUNT}"),
        ));
    }
    check_args(origin, "", &raw.args)?;
    if let Some(session) = &raw.session {
        check_session(origin, session)?;
    }
    let first_seen = raw
        .first_seen
        .map(|t| parse_time(origin, &field("first_seen"), &t))
        .transpose()?;
    let last_seen = raw
        .last_seen
        .map(|t| parse_time(origin, &field("last_seen"), &t))
        .transpose()?;
    if let (Some(first), Some(last)) = (first_seen, last_seen) {
        if last < first {
            return Err(error(origin, field("last_seen"), "is earlier than first_seen"));
        }
    }
    Ok(Call {
        agent: raw.agent,
        tool: raw.tool,
        server,
        args: raw.args,
        count,
        first_seen: first_seen.or(last_seen),
        last_seen: last_seen.or(first_seen),
        decision: raw.decision,
        trace_id: raw.trace_id,
        session: raw.session,
    })
}

/// Parse one call from a JSON text.
pub fn parse_call(origin: &Origin, text: &str) -> Result<Call, ObservationError> {
    // As for batches: only a call that fails pays for tracking the path.
    let raw: RawCall = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(_) => tracked(origin, text)?,
    };
    finish_call(origin, raw)
}

/// What a node id (`source`) may be: it becomes a metrics label and a key.
pub const NODE_ID_RULE: &str = "must be 1 to 64 characters of A-Z, a-z, 0-9, `.`, `_`, `-` and `:`";

pub fn is_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// A git commit id, abbreviated or whole (SHA-1 or SHA-256).
pub fn is_commit(id: &str) -> bool {
    (7..=64).contains(&id.len()) && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parse one call whose arguments were not recorded (an item of a batch's
/// `calls_without_args`); its `args` are empty.
pub fn parse_call_without_args(origin: &Origin, text: &str) -> Result<Call, ObservationError> {
    let raw: RawCallWithoutArgs = tracked(origin, text)?;
    finish_call(origin, raw.into())
}

/// Parse an `ObservationBatch` JSON document; it is accepted whole or not at all.
pub fn parse_batch(origin: &Origin, text: &str) -> Result<Batch, ObservationError> {
    // Tracking the path of every value is costly; only a batch that fails pays
    // for a second parse that names where.
    let raw: RawBatch = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(_) => tracked(origin, text)?,
    };
    let source = raw.source.unwrap_or_default();
    if !source.is_empty() && !is_node_id(&source) {
        return Err(error(origin, "source", NODE_ID_RULE));
    }
    if let Some(commit) = &raw.policy_commit {
        if !is_commit(commit) {
            return Err(error(
                origin,
                "policy_commit",
                "must be a git commit id: 7 to 64 lower-case hex digits",
            ));
        }
    }
    let calls = raw
        .calls
        .into_iter()
        .enumerate()
        .map(|(i, call)| {
            finish_call(origin, call).map_err(|mut e| {
                e.field = format!("calls[{i}].{}", e.field);
                e
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let calls_without_args = raw
        .calls_without_args
        .into_iter()
        .enumerate()
        .map(|(i, call)| {
            finish_call(origin, call.into()).map_err(|mut e| {
                e.field = format!("calls_without_args[{i}].{}", e.field);
                e
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if raw.catalogues.len() > MAX_CATALOGUES {
        return Err(error(
            origin,
            "catalogues",
            format!("more than {MAX_CATALOGUES} servers"),
        ));
    }
    for (server, catalogue) in &raw.catalogues {
        let field = format!("catalogues.{server}");
        check_id(origin, &field, server)?;
        super::catalogue::parse(&field, &catalogue.to_string()).map_err(|e| {
            let inner = match e.field.as_str() {
                "(document)" => field.clone(),
                f => format!("{field}.{f}"),
            };
            error(origin, inner, e.message)
        })?;
    }
    Ok(Batch {
        source,
        policy_commit: raw.policy_commit,
        calls,
        calls_without_args,
        catalogues: raw.catalogues.into_iter().collect(),
    })
}

/// Whether a call the node saw can be reported as it is: within the limits a
/// batch is checked against (a call beyond them would make the bot refuse its
/// whole batch).
pub fn reportable(
    args: &Map<String, Value>,
    session: Option<&Map<String, Value>>,
) -> Result<(), ObservationError> {
    let origin = Origin {
        source: "call".into(),
        line: None,
    };
    check_args(&origin, "", args)?;
    if let Some(session) = session {
        check_session(&origin, session)?;
    }
    Ok(())
}

/// One line of observation input: a call, or a whole batch on one line.
#[derive(Debug)]
pub enum Line {
    Call(Box<Call>),
    Batch(Batch),
}

/// Parse one non-empty `.jsonl` line: a call, or a batch (an object with `calls`).
pub fn parse_line(origin: &Origin, text: &str) -> Result<Line, ObservationError> {
    if text.len() > MAX_LINE_BYTES {
        return Err(error(
            origin,
            "(line)",
            format!("longer than {MAX_LINE_BYTES} bytes"),
        ));
    }
    // A cheap look for the batch key avoids parsing every call line twice.
    if text.contains("\"calls\"") {
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
            if map.contains_key("calls") && !map.contains_key("tool") {
                return parse_batch(origin, text).map(Line::Batch);
            }
        }
    }
    parse_call(origin, text).map(|call| Line::Call(Box::new(call)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_may_follow_the_json_value() {
        let origin = Origin {
            source: "t".into(),
            line: Some(2),
        };
        let call = r#"{"agent": "a", "tool": "t", "args": {}} trailing"#;
        let e = parse_line(&origin, call).unwrap_err();
        assert!(e.to_string().contains("text after the JSON value"), "{e}");
        let batch = r#"{"source": "n", "calls": []} {"source": "m", "calls": []}"#;
        assert!(parse_batch(&origin, batch).is_err());
        assert!(parse_call_without_args(&origin, r#"{"agent": "a", "tool": "t"} x"#).is_err());
        assert!(parse_line(&origin, r#"{"agent": "a", "tool": "t", "args": {}}  "#).is_ok());
    }

    #[test]
    fn a_redacted_batch_parses_back_to_itself() {
        let origin = Origin {
            source: "t".into(),
            line: None,
        };
        let key = "sk_live_51HqLyjWDarjtT1zdp7dc4kL9mQ2xVbN8rT5yU3iO";
        let text = format!(
            r#"{{"source": "node-1", "policy_commit": "abc1234", "calls": [
              {{"agent": "a", "tool": "charge", "server": "stripe", "args": {{"api_key": "{key}", "n": 1.5}},
                "count": 3, "first_seen": "2026-11-30T10:00:00Z", "last_seen": "2026-11-30T11:00:00Z",
                "decision": "deny", "trace_id": "t1", "session": {{"user": "u1", "token": "{key}"}}}}],
              "calls_without_args": [{{"agent": "a", "tool": "upload", "count": 2}}],
              "catalogues": {{"files": {{"tools": []}}}}}}"#
        );
        let mut batch = parse_batch(&origin, &text).unwrap();
        assert_eq!(parse_batch(&origin, &batch.to_json()).unwrap(), batch);
        assert!(batch.redact_secrets());
        let stored = batch.to_json();
        assert!(!stored.contains(key), "{stored}");
        assert_eq!(parse_batch(&origin, &stored).unwrap(), batch);
        assert!(!batch.redact_secrets());
    }

    #[test]
    fn a_key_given_twice_is_refused_naming_where() {
        let origin = Origin {
            source: "t".into(),
            line: Some(3),
        };
        let text = r#"{"source": "n", "calls": [{"agent": "a", "tool": "t", "args": {}},
            {"agent": "a", "tool": "t", "args": {"customer_id": "evil/../x", "customer_id": "cust_XP1"}}]}"#;
        let e = parse_batch(&origin, text).unwrap_err();
        assert!(e.field.starts_with("calls[1].args"), "{e}");
        assert!(e.message.contains("duplicate key `customer_id`"), "{e}");
        let twice = r#"{"agent": "a", "agent": "b", "tool": "t", "args": {}}"#;
        assert!(parse_call(&origin, twice)
            .unwrap_err()
            .message
            .contains("duplicate field `agent`"));
    }

    #[test]
    fn a_session_is_a_flat_record_of_short_attributes() {
        let origin = Origin {
            source: "t".into(),
            line: Some(1),
        };
        let ok = r#"{"agent": "a", "tool": "t", "args": {}, "session": {"user": "u-1", "tier": 2, "admin": false}}"#;
        let call = parse_call(&origin, ok).unwrap();
        assert_eq!(call.session.unwrap()["user"], "u-1");
        let nested = r#"{"agent": "a", "tool": "t", "args": {}, "session": {"user": {"id": 1}}}"#;
        let e = parse_call(&origin, nested).unwrap_err();
        assert_eq!(e.field, "session.user");
        let not_object = r#"{"agent": "a", "tool": "t", "args": {}, "session": "u-1"}"#;
        assert_eq!(parse_call(&origin, not_object).unwrap_err().field, "session");
    }

    fn origin() -> Origin {
        Origin {
            source: "calls.jsonl".into(),
            line: Some(7),
        }
    }

    #[test]
    fn defaults_fill_optional_fields() {
        let call = parse_call(&origin(), r#"{"agent":"a","tool":"t","args":{}}"#).unwrap();
        assert_eq!(call.server, "default");
        assert_eq!(call.count, 1);
        assert_eq!(call.first_seen, None);
    }

    #[test]
    fn errors_name_source_line_and_field() {
        let e = parse_call(&origin(), r#"{"agent":"a","tool":5,"args":{}}"#).unwrap_err();
        assert_eq!(e.field, "tool");
        assert!(e.to_string().starts_with("calls.jsonl:7: field `tool`"), "{e}");
        let e = parse_call(&origin(), r#"{"agent":"a","args":{}}"#).unwrap_err();
        assert_eq!(e.field, "tool");
        assert!(e.message.contains("missing"), "{e}");
        let e = parse_call(&origin(), r#"{"agent":"a","tool":"t","args":[]}"#).unwrap_err();
        assert_eq!(e.field, "args");
        let e = parse_call(&origin(), r#"{"agent":"a","tool":"t","args":{},"count":0}"#).unwrap_err();
        assert_eq!(e.field, "count");
        let e = parse_call(
            &origin(),
            r#"{"agent":"a","tool":"t","args":{},"first_seen":"yesterday"}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "first_seen");
    }

    #[test]
    fn batch_errors_name_the_call() {
        let text = r#"{"source":"n1","calls":[{"agent":"a","tool":"t","args":{}},{"agent":"a","tool":"t","args":{},"decision":"maybe"}]}"#;
        let e = parse_batch(&origin(), text).unwrap_err();
        assert_eq!(e.field, "calls[1].decision", "{e}");
    }

    #[test]
    fn calls_without_args_are_calls_minus_their_arguments() {
        let text = r#"{"source":"otlp","calls":[],"calls_without_args":[{"agent":"a","tool":"t","trace_id":"x"},{"agent":"a","tool":""}]}"#;
        let e = parse_batch(&origin(), text).unwrap_err();
        assert_eq!(e.field, "calls_without_args[1].tool", "{e}");
        let text = r#"{"calls":[],"calls_without_args":[{"agent":"a","tool":"t","count":2}]}"#;
        let batch = parse_batch(&origin(), text).unwrap();
        let call = &batch.calls_without_args[0];
        assert_eq!(
            (call.count, call.args.is_empty(), call.server.as_str()),
            (2, true, "default")
        );
        let one = parse_call_without_args(&origin(), r#"{"agent":"a","tool":"t"}"#).unwrap();
        assert_eq!(one.tool, "t");
        // Batches from before the field still parse.
        let old = parse_batch(&origin(), r#"{"calls":[]}"#).unwrap();
        assert!(old.calls_without_args.is_empty());
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let mut args = String::from("1");
        for _ in 0..12 {
            args = format!("{{\"x\":{args}}}");
        }
        let text = format!(r#"{{"agent":"a","tool":"t","args":{args}}}"#);
        let e = parse_call(&origin(), &text).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e}");
        assert!(e.field.starts_with("args.x.x"), "{e}");
    }

    #[test]
    fn a_batch_may_carry_the_catalogue_of_each_server() {
        let text = r#"{"source":"n","calls":[],"catalogues":{"files":{"tools":[
            {"name":"read_file","inputSchema":{"type":"object","properties":{"path":{"type":"string"}}},
             "annotations":{"readOnlyHint":true}}]}}}"#;
        let batch = parse_batch(&origin(), text).unwrap();
        assert_eq!(batch.catalogues["files"]["tools"][0]["name"], "read_file");
        let bad = r#"{"calls":[],"catalogues":{"files":{"tools":[{"description":"no name"}]}}}"#;
        let e = parse_batch(&origin(), bad).unwrap_err();
        assert_eq!(e.field, "catalogues.files.tools[0].name", "{e}");
        let not_a_list = r#"{"calls":[],"catalogues":{"files":[1]}}"#;
        let e = parse_batch(&origin(), not_a_list).unwrap_err();
        assert!(e.field.starts_with("catalogues.files"), "{e}");
        let e = parse_batch(&origin(), r#"{"calls":[],"catalogues":{"":{"tools":[]}}}"#).unwrap_err();
        assert_eq!(e.field, "catalogues.");
    }

    #[test]
    fn reportable_calls_stay_within_the_batch_limits() {
        let ok: Map<String, Value> = serde_json::from_str(r#"{"path": "/srv/a"}"#).unwrap();
        assert!(reportable(&ok, None).is_ok());
        let mut deep = Value::from(1);
        for _ in 0..12 {
            deep = serde_json::json!({ "x": deep });
        }
        let deep: Map<String, Value> = deep.as_object().unwrap().clone();
        assert!(reportable(&deep, None).unwrap_err().message.contains("nested"));
        let session: Map<String, Value> = serde_json::from_str(r#"{"user": {"id": 1}}"#).unwrap();
        assert_eq!(reportable(&ok, Some(&session)).unwrap_err().field, "session.user");
    }

    #[test]
    fn lines_are_calls_or_whole_batches() {
        let call = parse_line(&origin(), r#"{"agent":"a","tool":"t","args":{}}"#).unwrap();
        assert!(matches!(call, Line::Call(c) if c.agent == "a"));
        let batch = r#"{"source":"n","calls":[{"agent":"b","tool":"t","args":{}}]}"#;
        let Line::Batch(b) = parse_line(&origin(), batch).unwrap() else {
            panic!("a batch line")
        };
        assert_eq!((b.source.as_str(), b.calls.len()), ("n", 1));
        // A call whose arguments happen to be named `calls` is still a call.
        let tricky = r#"{"agent":"a","tool":"t","args":{"calls":[]}}"#;
        assert!(matches!(parse_line(&origin(), tricky).unwrap(), Line::Call(_)));
        let pretty =
            "{\n  \"source\": \"n\",\n  \"calls\": [\n {\"agent\":\"c\",\"tool\":\"t\",\"args\":{}}\n ]\n}\n";
        assert_eq!(parse_batch(&origin(), pretty).unwrap().calls.len(), 1);
    }
}
