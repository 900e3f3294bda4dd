//! The OpenID AuthZEN Authorization API 1.0, mapped onto DESIGN §2:
//! subject `{type: "agent", id}` → principal `Agent::"<id>"`, action `{name}` →
//! `Action::"<name>"`, resource `{type: "mcp_server", id}` → `McpServer::"<id>"`,
//! context `{input: <args>}` → `context.input`, typed by the schema.
//!
//! The JSON is read straight into the call (agent, tool, server, args) and
//! turned into the Cedar request by `core::mapping` (no `Context::from_json_value`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// AuthZEN subject / resource: `{type, id, properties?}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Entity {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default, deserialize_with = "optional_value")]
    pub properties: Option<Value>,
}

/// AuthZEN action: `{name, properties?}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ActionRef {
    pub name: String,
    #[serde(default, deserialize_with = "optional_value")]
    pub properties: Option<Value>,
}

/// One evaluation, as sent (every part optional so `evaluations` items can
/// take the top-level defaults).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EvaluationBody {
    #[serde(default)]
    pub subject: Option<Entity>,
    #[serde(default)]
    pub action: Option<ActionRef>,
    #[serde(default)]
    pub resource: Option<Entity>,
    #[serde(default, deserialize_with = "crate::core::json::optional_object")]
    pub context: Option<Map<String, Value>>,
}

/// Any JSON value, duplicate keys refused.
fn optional_value<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    crate::core::json::value(deserializer).map(Some)
}

/// `options.evaluations_semantic`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Semantic {
    #[default]
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Options {
    #[serde(default)]
    pub evaluations_semantic: Option<Semantic>,
}

/// `POST /access/v1/evaluations`: the top-level parts are defaults for each item.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EvaluationsBody {
    #[serde(flatten)]
    pub defaults: EvaluationBody,
    #[serde(default)]
    pub evaluations: Option<Vec<EvaluationBody>>,
    #[serde(default)]
    pub options: Option<Options>,
}

/// A request the node cannot evaluate: answered with 400 and this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// The call one evaluation stands for (DESIGN §1/§2).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub agent: String,
    pub tool: String,
    pub server: String,
    pub args: Map<String, Value>,
    /// `context.session`: the session the call is made in (DESIGN §1).
    pub session: Option<Map<String, Value>>,
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BadRequest> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(BadRequest("request body must be a JSON object".into()));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let inner = inner.classify();
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        if path == "."
            || matches!(
                inner,
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof
            )
        {
            BadRequest(format!("request body: {message}"))
        } else {
            BadRequest(format!("`{path}`: {message}"))
        }
    })
}

/// Parse the body of `POST /access/v1/evaluation`.
pub fn parse_evaluation(body: &[u8]) -> Result<Query, BadRequest> {
    let request: EvaluationBody = parse(body)?;
    resolve("", request, &EvaluationBody::default())
}

/// Parse the body of `POST /access/v1/evaluations`: the queries in order and
/// the semantic. With no `evaluations` (or an empty list) it is one evaluation,
/// answered like `POST /access/v1/evaluation` (`Ok((queries, None))`).
pub fn parse_evaluations(body: &[u8], max: usize) -> Result<(Vec<Query>, Option<Semantic>), BadRequest> {
    let request: EvaluationsBody = parse(body)?;
    let asked = request.evaluations.as_ref().map_or(0, Vec::len);
    if asked > max {
        return Err(BadRequest(format!(
            "`evaluations` has {asked} items; at most {max} are evaluated per request (enforce.max_evaluations)"
        )));
    }
    let defaults = request.defaults;
    let semantic = request
        .options
        .and_then(|o| o.evaluations_semantic)
        .unwrap_or_default();
    match request.evaluations {
        Some(items) if !items.is_empty() => {
            let queries = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| resolve(&format!("evaluations[{i}]."), item, &defaults))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((queries, Some(semantic)))
        }
        _ => Ok((vec![resolve("", defaults, &EvaluationBody::default())?], None)),
    }
}

fn check_id(field: &str, id: &str) -> Result<(), BadRequest> {
    if id.is_empty() {
        return Err(BadRequest(format!("`{field}` must not be empty")));
    }
    if id.len() > crate::core::observation::MAX_ID_BYTES || id.chars().any(char::is_control) {
        return Err(BadRequest(format!(
            "`{field}` must be at most {} bytes without control characters",
            crate::core::observation::MAX_ID_BYTES
        )));
    }
    Ok(())
}

/// An item with the defaults filled in, checked and turned into a call.
fn resolve(prefix: &str, item: EvaluationBody, defaults: &EvaluationBody) -> Result<Query, BadRequest> {
    let missing = |what: &str| {
        let hint = if prefix.is_empty() {
            String::new()
        } else {
            " (and there is no top-level default)".to_string()
        };
        BadRequest(format!("`{prefix}{what}` is required{hint}"))
    };
    let subject = item
        .subject
        .or_else(|| defaults.subject.clone())
        .ok_or_else(|| missing("subject"))?;
    let action = item
        .action
        .or_else(|| defaults.action.clone())
        .ok_or_else(|| missing("action"))?;
    let resource = item
        .resource
        .or_else(|| defaults.resource.clone())
        .ok_or_else(|| missing("resource"))?;
    if subject.kind != "agent" {
        return Err(BadRequest(format!(
            "`{prefix}subject.type` must be \"agent\", not {:?}",
            subject.kind
        )));
    }
    if resource.kind != "mcp_server" {
        return Err(BadRequest(format!(
            "`{prefix}resource.type` must be \"mcp_server\", not {:?}",
            resource.kind
        )));
    }
    check_id(&format!("{prefix}subject.id"), &subject.id)?;
    check_id(&format!("{prefix}action.name"), &action.name)?;
    check_id(&format!("{prefix}resource.id"), &resource.id)?;
    let context = match item.context {
        Some(c) => Some(c),
        None => defaults.context.clone(),
    };
    let mut context = context.unwrap_or_default();
    let args = match context.remove("input") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(args)) => args,
        Some(_) => {
            return Err(BadRequest(format!(
                "`{prefix}context.input` must be an object (the tool's arguments)"
            )))
        }
    };
    let session = match context.remove("session") {
        None | Some(Value::Null) => None,
        Some(Value::Object(session)) => {
            if let Some((field, message)) = crate::core::observation::session_problem(&session) {
                return Err(BadRequest(format!("`{prefix}context.{field}`: {message}")));
            }
            Some(session)
        }
        Some(_) => {
            return Err(BadRequest(format!(
                "`{prefix}context.session` must be an object (the session's attributes)"
            )))
        }
    };
    Ok(Query {
        agent: subject.id,
        tool: action.name,
        server: resource.id,
        args,
        session,
    })
}

/// The decision's context: why, and under which policy.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DecisionContext {
    /// The commit of the policy repository the node enforces (`null` before the first load).
    pub policy_commit: Option<String>,
    /// `enforce` or `shadow` for this agent.
    pub mode: &'static str,
    /// Ids of the policies that determined the decision.
    pub determining_policies: Vec<String>,
    /// Why the policy denied (also in shadow mode, where the answer is allow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Shadow mode only: what the policy decided (the answer is always allow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_decision: Option<bool>,
}

/// `{"decision": bool, "context": {...}}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DecisionOut {
    pub decision: bool,
    pub context: DecisionContext,
}

/// Apply the semantic: how many of `decisions` (in order) are evaluated and returned.
pub fn stop_after(semantic: Semantic, decision: bool) -> bool {
    match semantic {
        Semantic::ExecuteAll => false,
        Semantic::DenyOnFirstDeny => !decision,
        Semantic::PermitOnFirstPermit => decision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    fn one() -> Value {
        json!({"subject": {"type": "agent", "id": "a"}, "action": {"name": "send"},
               "resource": {"type": "mcp_server", "id": "gmail"},
               "context": {"input": {"to": "x@acme.com"}}})
    }

    #[test]
    fn an_evaluation_maps_to_a_call() {
        let q = parse_evaluation(&body(one())).unwrap();
        assert_eq!(
            (q.agent.as_str(), q.tool.as_str(), q.server.as_str()),
            ("a", "send", "gmail")
        );
        assert_eq!(q.args["to"], "x@acme.com");
        let mut no_context = one();
        no_context.as_object_mut().unwrap().remove("context");
        assert!(parse_evaluation(&body(no_context)).unwrap().args.is_empty());
    }

    #[test]
    fn malformed_requests_name_what_is_wrong() {
        let e = parse_evaluation(b"{not json").unwrap_err();
        assert!(e.0.starts_with("request body:"), "{e}");
        let mut v = one();
        v.as_object_mut().unwrap().remove("subject");
        assert_eq!(parse_evaluation(&body(v)).unwrap_err().0, "`subject` is required");
        let mut v = one();
        v["subject"]["type"] = json!("user");
        assert!(parse_evaluation(&body(v)).unwrap_err().0.contains("subject.type"));
        let mut v = one();
        v["resource"]["type"] = json!("document");
        assert!(parse_evaluation(&body(v))
            .unwrap_err()
            .0
            .contains("resource.type"));
        let mut v = one();
        v["action"] = json!({"name": 5});
        assert!(parse_evaluation(&body(v))
            .unwrap_err()
            .0
            .contains("`action.name`"));
        let mut v = one();
        v["context"]["input"] = json!([1]);
        assert!(parse_evaluation(&body(v))
            .unwrap_err()
            .0
            .contains("context.input"));
        let mut v = one();
        v["subject"]["id"] = json!("");
        assert!(parse_evaluation(&body(v)).unwrap_err().0.contains("subject.id"));
        // The tool may read the first of two keys: refuse, never decide on the last.
        let twice = br#"{"subject": {"type": "agent", "id": "a"}, "action": {"name": "t"},
            "resource": {"type": "mcp_server", "id": "s"},
            "context": {"input": {"customer_id": "evil/../x", "n": 1, "customer_id": "cust_XP1"}}}"#;
        let e = parse_evaluation(twice).unwrap_err();
        assert!(
            e.0.contains("duplicate key `customer_id`") && e.0.contains("context"),
            "{e}"
        );
        let twice = br#"{"subject": {"type": "agent", "id": "a"}, "subject": {"type": "agent", "id": "b"},
            "action": {"name": "t"}, "resource": {"type": "mcp_server", "id": "s"}}"#;
        assert!(parse_evaluation(twice)
            .unwrap_err()
            .0
            .contains("duplicate field `subject`"));
    }

    #[test]
    fn evaluations_take_top_level_defaults() {
        let v = json!({
        "subject": {"type": "agent", "id": "a"},
        "resource": {"type": "mcp_server", "id": "gmail"},
        "options": {"evaluations_semantic": "deny_on_first_deny"},
        "evaluations": [
            {"action": {"name": "send"}, "context": {"input": {"to": "x"}}},
            {"action": {"name": "read"}, "subject": {"type": "agent", "id": "b"}}
        ]});
        let (queries, semantic) = parse_evaluations(&body(v), 16).unwrap();
        assert_eq!(semantic, Some(Semantic::DenyOnFirstDeny));
        assert_eq!(queries.len(), 2);
        assert_eq!(queries[0].agent, "a");
        assert_eq!(queries[1].agent, "b");
        assert_eq!(queries[1].server, "gmail");
        let v = json!({"evaluations": [{"action": {"name": "send"}}]});
        let e = parse_evaluations(&body(v), 16).unwrap_err();
        assert!(e.0.contains("`evaluations[0].subject` is required"), "{e}");
        let v = json!({"options": {"evaluations_semantic": "first_wins"}, "evaluations": []});
        let e = parse_evaluations(&body(v), 16).unwrap_err();
        assert!(e.0.contains("options.evaluations_semantic"), "{e}");
        // No items: a single evaluation.
        let (queries, semantic) = parse_evaluations(&body(one()), 16).unwrap();
        assert_eq!((queries.len(), semantic), (1, None));
    }

    #[test]
    fn semantics_stop_where_they_should() {
        assert!(!stop_after(Semantic::ExecuteAll, false));
        assert!(stop_after(Semantic::DenyOnFirstDeny, false));
        assert!(!stop_after(Semantic::DenyOnFirstDeny, true));
        assert!(stop_after(Semantic::PermitOnFirstPermit, true));
    }
}
