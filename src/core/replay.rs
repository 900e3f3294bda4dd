//! Deciding calls with the real Cedar authorizer, and explaining why a rule
//! did not allow one (the `opa eval --explain` of shadowdraft).

use cedar_policy::{Authorizer, Decision, Entities, Policy, PolicySet, Request};
use serde_json::{json, Value};
use std::sync::LazyLock;

static AUTHORIZER: LazyLock<Authorizer> = LazyLock::new(Authorizer::new);
static NO_ENTITIES: LazyLock<Entities> = LazyLock::new(Entities::empty);

/// The outcome of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Ids of the policies that determined the decision.
    pub determining: Vec<String>,
    /// Policies that failed to evaluate (e.g. read an absent attribute).
    pub errors: Vec<String>,
}

/// Decide `request` against `set` (which should be the (agent, tool) slice).
pub fn authorize(set: &PolicySet, request: &Request) -> Verdict {
    let response = AUTHORIZER.is_authorized(request, set, &NO_ENTITIES);
    let mut determining: Vec<String> = response.diagnostics().reason().map(|id| id.to_string()).collect();
    determining.sort();
    let errors = response.diagnostics().errors().map(|e| e.to_string()).collect();
    Verdict {
        allowed: response.decision() == Decision::Allow,
        determining,
        errors,
    }
}

/// Why one rule did not allow a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The principal, action or resource in the rule's head is not this call's.
    Scope,
    /// These conditions (top-level `&&` parts of `when`, or whole `unless`) did not hold.
    Conditions(Vec<String>),
    /// A `forbid` rule that matched.
    Forbidden,
}

fn conjuncts(expr: &Value, out: &mut Vec<Value>) {
    if let Some(and) = expr.get("&&") {
        conjuncts(&and["left"], out);
        conjuncts(&and["right"], out);
    } else {
        out.push(expr.clone());
    }
}

fn body_text(policy: &Policy) -> String {
    let text = policy.to_string();
    let start = text
        .find(")\nwhen")
        .or_else(|| text.find(") when"))
        .map(|i| i + 1);
    let start = start.or_else(|| {
        text.find(")\nunless")
            .or_else(|| text.find(") unless"))
            .map(|i| i + 1)
    });
    let Some(start) = start else { return text };
    let inner = &text[start..];
    let open = inner.find('{').map_or(0, |i| i + 1);
    let close = inner.rfind('}').unwrap_or(inner.len());
    inner[open..close]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn single(head: &Value, kind: &str, body: Option<Value>) -> Option<Policy> {
    let mut p = head.clone();
    p["effect"] = json!("permit");
    p["conditions"] = match body {
        Some(b) => json!([{"kind": kind, "body": b}]),
        None => json!([]),
    };
    Policy::from_json(None, p).ok()
}

/// What [`explain_miss`] tests one by one in a rule's EST (annotations
/// removed): each `when` conjunct and each whole `unless` body (`true`: a
/// `when`), with the text it names the part by. `None` when a part (or the
/// bare scope) does not rebuild as a policy.
pub fn explained_parts(est: &Value) -> Option<Vec<(bool, Value, String)>> {
    single(est, "when", None)?;
    condition_parts(est)
        .into_iter()
        .map(|(kind, part)| {
            let text = body_text(&single(est, &kind, Some(part.clone()))?);
            Some((kind == "when", part, text))
        })
        .collect()
}

/// The parts a rule's conditions are tested by, in order: each `when`
/// conjunct and each whole `unless` body, with its kind.
fn condition_parts(est: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for condition in est["conditions"].as_array().cloned().unwrap_or_default() {
        let kind = condition["kind"].as_str().unwrap_or("when").to_string();
        let mut parts = Vec::new();
        if kind == "when" {
            conjuncts(&condition["body"], &mut parts);
        } else {
            parts.push(condition["body"].clone());
        }
        out.extend(parts.into_iter().map(|part| (kind.clone(), part)));
    }
    out
}

/// Which parts of `policy` fail for `request`.
pub fn explain_miss(policy: &Policy, request: &Request) -> Miss {
    let Ok(mut est) = policy.to_json() else {
        return Miss::Conditions(vec!["(policy cannot be analysed)".into()]);
    };
    if let Some(obj) = est.as_object_mut() {
        obj.remove("annotations");
    }
    let holds = |p: Option<Policy>| {
        p.is_some_and(|p| {
            let mut set = PolicySet::new();
            set.add(p).is_ok() && authorize(&set, request).allowed
        })
    };
    if !holds(single(&est, "when", None)) {
        return Miss::Scope;
    }
    let forbid = est["effect"] == json!("forbid");
    let mut failing = Vec::new();
    for (kind, part) in condition_parts(&est) {
        let p = single(&est, &kind, Some(part));
        if !holds(p.clone()) {
            let text = p.as_ref().map(body_text).unwrap_or_default();
            failing.push(if kind == "unless" {
                format!("unless {text}")
            } else {
                text
            });
        }
    }
    match (forbid, failing.is_empty()) {
        (true, true) => Miss::Forbidden,
        _ => Miss::Conditions(failing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::mapping::{action_uid, agent_uid, server_uid};
    use cedar_policy::{Context, RestrictedExpression};

    fn request(to: &str) -> Request {
        let input = RestrictedExpression::new_record([(
            "to".to_string(),
            RestrictedExpression::new_string(to.into()),
        )])
        .unwrap();
        let ctx = Context::from_pairs([("input".to_string(), input)]).unwrap();
        Request::new(agent_uid("a"), action_uid("send"), server_uid("m"), ctx, None).unwrap()
    }

    #[test]
    fn explains_the_failing_condition() {
        let p: Policy = r#"permit (principal == Agent::"a", action == Action::"send", resource)
            when { context.input has to && context.input.to like "*@acme.com" };"#
            .parse()
            .unwrap();
        assert_eq!(explain_miss(&p, &request("x@acme.com")), Miss::Conditions(vec![]));
        let Miss::Conditions(failing) = explain_miss(&p, &request("x@evil.com")) else {
            panic!()
        };
        assert_eq!(failing, vec![r#"context.input.to like "*@acme.com""#.to_string()]);
        let other: Policy = r#"permit (principal == Agent::"b", action, resource);"#.parse().unwrap();
        assert_eq!(explain_miss(&other, &request("x")), Miss::Scope);
    }

    #[test]
    fn authorize_reports_determining_policies() {
        let set: PolicySet = r#"@id("r1") permit (principal, action, resource);"#.parse().unwrap();
        let v = authorize(&set, &request("x"));
        assert!(v.allowed);
        assert_eq!(v.determining, vec!["policy0".to_string()]);
    }
}
