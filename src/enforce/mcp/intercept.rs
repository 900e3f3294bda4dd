//! What the gateway changes in the traffic, as pure functions: the tool
//! result that refuses a call, the `tools/list` result with the tools the
//! agent has no rule for left out, the catalogue a `tools/list` reports, and
//! the session attributes of a connection.

use crate::enforce::authzen::{DecisionOut, Query};
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value};

/// The session attribute naming the end user the agent acts for (DESIGN §1).
pub const USER_ATTR: &str = "user";
/// The session attribute holding the MCP session id.
pub const SESSION_ATTR: &str = "mcp_session";

/// The tool result a refused call gets: `isError: true`, and a text naming
/// the decision, the reason and the policy commit.
pub fn refusal(query: &Query, out: &DecisionOut) -> CallToolResult {
    let context = &out.context;
    let reason = context.reason.as_deref().unwrap_or("no rule allows it");
    let commit = context.policy_commit.as_deref().map_or_else(
        || "no policy loaded yet".to_string(),
        |c| format!("policy commit {c}"),
    );
    let text = format!(
        "shadowdraft denied this call (decision: deny, mode: {}): agent {:?} calling tool {:?} on server {:?}: {reason} ({commit}).",
        context.mode, query.agent, query.tool, query.server
    );
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    // The `resultType` discriminator belongs to protocol 2026-07-28; the
    // sessions the gateway serves negotiated an earlier one.
    result.result_type = None;
    result
}

/// The tools of a `tools/list` result, if it has them.
pub fn tools(result: &Value) -> Option<&Vec<Value>> {
    result.get("tools")?.as_array()
}

/// `result` with only the tools `keep` accepts (by name).
pub fn keep_tools(mut result: Value, keep: impl Fn(&str) -> bool) -> Value {
    if let Some(Value::Array(tools)) = result.get_mut("tools") {
        tools.retain(|tool| tool.get("name").and_then(Value::as_str).is_some_and(&keep));
    }
    result
}

/// A catalogue being read page by page (`tools/list` with `nextCursor`).
#[derive(Debug, Default)]
pub struct CataloguePages {
    tools: Vec<Value>,
}

impl CataloguePages {
    /// Add one page; `first` when it was asked for without a cursor. Returns
    /// the whole catalogue (`{"tools": [...]}`) once the last page is in.
    pub fn page(&mut self, result: &Value, first: bool) -> Option<Value> {
        if first {
            self.tools.clear();
        }
        let page = tools(result)?;
        for tool in page {
            let name = tool.get("name");
            self.tools.retain(|t| t.get("name") != name);
            self.tools.push(tool.clone());
        }
        match result.get("nextCursor") {
            Some(Value::String(_)) => None,
            _ => Some(serde_json::json!({ "tools": std::mem::take(&mut self.tools) })),
        }
    }
}

/// The value at a dotted claim path (`act.sub`) of a token, as a session
/// attribute: strings, numbers and booleans only.
pub fn claim_at(claims: &Map<String, Value>, path: &[String]) -> Option<Value> {
    let (first, rest) = path.split_first()?;
    let mut value = claims.get(first)?;
    for name in rest {
        value = value.get(name)?;
    }
    match value {
        Value::String(s) if !s.is_empty() && s.len() <= 256 => Some(value.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.clone()),
        _ => None,
    }
}

/// The session attributes of a connection: the end user, when known, and the
/// MCP session id.
pub fn session(user: Option<Value>, session_id: &str) -> Map<String, Value> {
    let mut attrs = Map::new();
    if let Some(user) = user {
        attrs.insert(USER_ATTR.into(), user);
    }
    attrs.insert(SESSION_ATTR.into(), Value::from(session_id));
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enforce::authzen::DecisionContext;
    use serde_json::json;

    fn query() -> Query {
        Query {
            agent: "support-bot".into(),
            tool: "write_file".into(),
            server: "files".into(),
            args: Map::new(),
            session: None,
        }
    }

    #[test]
    fn a_refusal_names_the_decision_the_reason_and_the_commit() {
        let out = DecisionOut {
            decision: false,
            context: DecisionContext {
                policy_commit: Some("abc123".into()),
                mode: "enforce",
                determining_policies: Vec::new(),
                reason: Some(
                    "no rule covers agent \"support-bot\" calling \"write_file\" on \"files\"".into(),
                ),
                shadow_decision: None,
            },
        };
        let result = serde_json::to_value(refusal(&query(), &out)).unwrap();
        assert_eq!(result["isError"], true);
        assert!(result.get("resultType").is_none(), "{result}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("decision: deny"), "{text}");
        assert!(text.contains("no rule covers agent"), "{text}");
        assert!(text.contains("policy commit abc123"), "{text}");
        let none = DecisionOut {
            context: DecisionContext {
                policy_commit: None,
                ..out.context.clone()
            },
            ..out
        };
        let result = serde_json::to_value(refusal(&query(), &none)).unwrap();
        assert!(result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("no policy loaded yet"));
    }

    #[test]
    fn tools_without_a_rule_can_be_left_out() {
        let list = json!({"tools": [{"name": "read_file"}, {"name": "write_file"}, {"title": "no name"}]});
        let kept = keep_tools(list, |name| name == "read_file");
        assert_eq!(kept, json!({"tools": [{"name": "read_file"}]}));
    }

    #[test]
    fn a_paged_catalogue_is_reported_once_whole() {
        let mut pages = CataloguePages::default();
        let first = json!({"tools": [{"name": "a"}, {"name": "b"}], "nextCursor": "2"});
        assert_eq!(pages.page(&first, true), None);
        let last = json!({"tools": [{"name": "b", "description": "newer"}, {"name": "c"}]});
        let whole = pages.page(&last, false).unwrap();
        let names: Vec<&str> = whole["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(whole["tools"][1]["description"], "newer");
        assert_eq!(pages.page(&json!({"nope": 1}), true), None);
    }

    #[test]
    fn the_user_comes_from_a_claim_path() {
        let claims = json!({"sub": "bot", "user": "alice", "act": {"sub": "u-7", "n": 3, "o": {}}})
            .as_object()
            .unwrap()
            .clone();
        let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(claim_at(&claims, &path("user")), Some(json!("alice")));
        assert_eq!(claim_at(&claims, &path("act.sub")), Some(json!("u-7")));
        assert_eq!(claim_at(&claims, &path("act.n")), Some(json!(3)));
        assert_eq!(
            claim_at(&claims, &path("act.o")),
            None,
            "objects are not attributes"
        );
        assert_eq!(claim_at(&claims, &path("act.missing")), None);
        let attrs = session(Some(json!("alice")), "s-1");
        assert_eq!(
            Value::Object(attrs),
            json!({"user": "alice", "mcp_session": "s-1"})
        );
        assert_eq!(Value::Object(session(None, "s-2")), json!({"mcp_session": "s-2"}));
    }
}
