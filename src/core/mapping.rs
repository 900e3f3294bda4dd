//! The request mapping (DESIGN §2), the one definition every path uses:
//! principal `Agent::"<agent>"`, action `Action::"<tool>"`, resource
//! `McpServer::"<server>"`, context `{input: <args>}` typed by the schema,
//! plus, where the schema declares them for the action, `session` (the call's
//! session attributes) and `derived` (attributes of every element of a set
//! argument: `context.derived.cc.domains`, since Cedar has no "for all").
//!
//! Values are converted here rather than through `Context::from_json_value`,
//! which costs ~40 µs per call with a schema and rejects plain JSON numbers for
//! decimals. A call that does not fit the schema is an error: fail closed.

use super::classify::ElementKind;
use super::native::Val;
use super::schema::{DerivedAttrs, Schema, AGENT_TYPE, SERVER_TYPE};
use super::types::{decimal_scaled, decimal_text, ArgType, Attr};
use cedar_policy::{Context, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::LazyLock;

/// The context attribute holding the call's arguments.
pub const INPUT: &str = "input";
/// The context attribute holding the call's session (DESIGN §1).
pub const SESSION: &str = "session";
/// The context attribute holding what the mapping derives from set arguments.
pub const DERIVED: &str = "derived";
/// The first segment of a session attribute's path where paths name what a
/// call carries (summaries, the paths a rule reads): argument paths start
/// with an argument name, which is never empty, so `["", "user"]` is
/// `context.session.user` and cannot be mistaken for an argument.
pub const SESSION_ROOT: &str = "";

static AGENT: LazyLock<EntityTypeName> =
    LazyLock::new(|| EntityTypeName::from_str(AGENT_TYPE).expect("valid"));
static SERVER: LazyLock<EntityTypeName> =
    LazyLock::new(|| EntityTypeName::from_str(SERVER_TYPE).expect("valid"));
static ACTION: LazyLock<EntityTypeName> =
    LazyLock::new(|| EntityTypeName::from_str("Action").expect("valid"));

/// Why a call cannot be turned into a Cedar request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("tool `{0}` is not an action in the schema")]
    UnknownTool(String),
    #[error("argument `{0}` is not in the schema")]
    UnknownArgument(String),
    #[error("argument `{path}` should be {expected}, got {found}")]
    WrongType {
        path: String,
        expected: String,
        found: &'static str,
    },
    #[error("required argument `{0}` is missing")]
    MissingArgument(String),
    #[error("argument `{0}` is outside the range Cedar can represent")]
    OutOfRange(String),
    #[error(
        "the schema declares `context.derived.{0}`, which is not an attribute the request mapping derives"
    )]
    UnknownDerived(String),
}

/// `Agent::"<id>"`.
pub fn agent_uid(id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(AGENT.clone(), EntityId::new(id))
}

/// `Action::"<tool>"`.
pub fn action_uid(tool: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ACTION.clone(), EntityId::new(tool))
}

/// `McpServer::"<id>"`.
pub fn server_uid(id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(SERVER.clone(), EntityId::new(id))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What the mapping builds a typed value with: Cedar's restricted
/// expressions for a [`request`], or [`Val`]s for [`native_context`].
/// One conversion for both, so they cannot disagree on what fits the schema.
trait Build {
    type Out;
    fn string(s: &str) -> Self::Out;
    fn bool(b: bool) -> Self::Out;
    fn long(i: i64) -> Self::Out;
    /// A decimal scaled by 10^4, within Cedar's range.
    fn decimal(scaled: i128) -> Self::Out;
    fn set(items: Vec<Self::Out>) -> Self::Out;
    /// `Err`: a name twice.
    fn record(fields: Vec<(String, Self::Out)>) -> Result<Self::Out, ()>;
}

struct Cedar;

impl Build for Cedar {
    type Out = RestrictedExpression;
    fn string(s: &str) -> RestrictedExpression {
        RestrictedExpression::new_string(s.to_string())
    }
    fn bool(b: bool) -> RestrictedExpression {
        RestrictedExpression::new_bool(b)
    }
    fn long(i: i64) -> RestrictedExpression {
        RestrictedExpression::new_long(i)
    }
    fn decimal(scaled: i128) -> RestrictedExpression {
        RestrictedExpression::new_decimal(decimal_text(scaled))
    }
    fn set(items: Vec<RestrictedExpression>) -> RestrictedExpression {
        RestrictedExpression::new_set(items)
    }
    fn record(fields: Vec<(String, RestrictedExpression)>) -> Result<RestrictedExpression, ()> {
        RestrictedExpression::new_record(fields).map_err(|_| ())
    }
}

struct Native;

impl Build for Native {
    type Out = Val;
    fn string(s: &str) -> Val {
        Val::String(s.into())
    }
    fn bool(b: bool) -> Val {
        Val::Bool(b)
    }
    fn long(i: i64) -> Val {
        Val::Long(i)
    }
    fn decimal(scaled: i128) -> Val {
        // `decimal_scaled` keeps to i64, the range Cedar parses `decimal_text` into.
        Val::Decimal(scaled as i64)
    }
    fn set(items: Vec<Val>) -> Val {
        Val::set(items)
    }
    fn record(fields: Vec<(String, Val)>) -> Result<Val, ()> {
        Val::record(fields).ok_or(())
    }
}

fn convert<B: Build>(path: &str, value: &Value, ty: &ArgType) -> Result<B::Out, MappingError> {
    let wrong = || MappingError::WrongType {
        path: path.to_string(),
        expected: ty.to_string(),
        found: kind(value),
    };
    Ok(match (ty, value) {
        (ArgType::String, Value::String(s)) => B::string(s),
        (ArgType::Bool, Value::Bool(b)) => B::bool(*b),
        (ArgType::Long, Value::Number(n)) => {
            if n.is_f64() {
                return Err(wrong());
            }
            let i = n
                .as_i64()
                .ok_or_else(|| MappingError::OutOfRange(path.to_string()))?;
            B::long(i)
        }
        (ArgType::Decimal, Value::Number(n)) => {
            let scaled = decimal_scaled(n).ok_or_else(|| MappingError::OutOfRange(path.to_string()))?;
            B::decimal(scaled)
        }
        (ArgType::Set(element), Value::Array(items)) => B::set(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| convert::<B>(&format!("{path}[{i}]"), item, element))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        (ArgType::Record(attrs), Value::Object(map)) => record::<B>(path, map, attrs)?,
        _ => return Err(wrong()),
    })
}

fn record<B: Build>(
    path: &str,
    map: &Map<String, Value>,
    attrs: &BTreeMap<String, Attr>,
) -> Result<B::Out, MappingError> {
    let join = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    let mut fields = Vec::with_capacity(map.len());
    for (name, value) in map {
        if value.is_null() {
            continue;
        }
        let attr = attrs
            .get(name)
            .ok_or_else(|| MappingError::UnknownArgument(join(name)))?;
        fields.push((name.clone(), convert::<B>(&join(name), value, &attr.ty)?));
    }
    for (name, attr) in attrs {
        if attr.required && map.get(name).is_none_or(Value::is_null) {
            return Err(MappingError::MissingArgument(join(name)));
        }
    }
    B::record(fields).map_err(|()| MappingError::UnknownArgument(path.to_string()))
}

/// The session as the schema declares it: attributes it does not declare are
/// left out (no policy can read them under strict validation), a declared one
/// of the wrong type does not fit.
fn session_record<B: Build>(
    session: &Map<String, Value>,
    declared: &BTreeMap<String, Attr>,
) -> Result<B::Out, MappingError> {
    let mut fields = Vec::with_capacity(session.len());
    for (name, value) in session {
        if let Some(attr) = declared.get(name) {
            fields.push((
                name.clone(),
                convert::<B>(&format!("{SESSION}.{name}"), value, &attr.ty)?,
            ));
        }
    }
    for (name, attr) in declared {
        if attr.required && !session.contains_key(name) {
            return Err(MappingError::MissingArgument(format!("{SESSION}.{name}")));
        }
    }
    B::record(fields).map_err(|()| MappingError::UnknownArgument(SESSION.to_string()))
}

/// `context.derived`: for each declared set argument present in the call, the
/// set of each element's key, per declared kind (`classify::ElementKind`).
fn derived_record<B: Build>(
    args: &Map<String, Value>,
    declared: &DerivedAttrs,
) -> Result<B::Out, MappingError> {
    let mut fields = Vec::new();
    for (arg, attributes) in declared {
        let Some(Value::Array(items)) = args.get(arg) else {
            continue;
        };
        let mut kinds = Vec::with_capacity(attributes.len());
        for attribute in attributes {
            let kind = ElementKind::from_attribute(attribute)
                .ok_or_else(|| MappingError::UnknownDerived(format!("{arg}.{attribute}")))?;
            let keys: std::collections::BTreeSet<String> = items
                .iter()
                .map(|item| item.as_str().map(|s| kind.key(s)).unwrap_or_default())
                .collect();
            kinds.push((
                attribute.clone(),
                B::set(keys.iter().map(|k| B::string(k)).collect()),
            ));
        }
        let record = B::record(kinds).map_err(|()| MappingError::UnknownDerived(arg.clone()))?;
        fields.push((arg.clone(), record));
    }
    B::record(fields).map_err(|()| MappingError::UnknownDerived(String::new()))
}

/// The context's attributes for a call, built with `B`.
fn context_pairs<B: Build>(
    tool: &str,
    args: &Map<String, Value>,
    session: Option<&Map<String, Value>>,
    schema: &Schema,
) -> Result<Vec<(String, B::Out)>, MappingError> {
    let attrs = schema
        .tool(tool)
        .ok_or_else(|| MappingError::UnknownTool(tool.to_string()))?;
    let mut pairs = vec![(INPUT.to_string(), record::<B>("", args, attrs)?)];
    if let (Some(declared), Some(session)) = (schema.session(tool), session) {
        pairs.push((SESSION.to_string(), session_record::<B>(session, declared)?));
    }
    if let Some(declared) = schema.derived(tool) {
        pairs.push((DERIVED.to_string(), derived_record::<B>(args, declared)?));
    }
    Ok(pairs)
}

/// The Cedar request for a call, typed by `schema`. `session` is the call's
/// session (DESIGN §1), used when the schema declares `context.session`.
pub fn request(
    agent: &str,
    tool: &str,
    server: &str,
    args: &Map<String, Value>,
    session: Option<&Map<String, Value>>,
    schema: &Schema,
) -> Result<Request, MappingError> {
    let pairs = context_pairs::<Cedar>(tool, args, session, schema)?;
    let context = Context::from_pairs(pairs).map_err(|_| MappingError::OutOfRange(INPUT.to_string()))?;
    Request::new(
        agent_uid(agent),
        action_uid(tool),
        server_uid(server),
        context,
        None,
    )
    .map_err(|_| MappingError::UnknownTool(tool.to_string()))
}

/// The same context as [`request`] gives Cedar, as a record of native values
/// for [`super::native`] (the same checks, the same errors).
pub fn native_context(
    tool: &str,
    args: &Map<String, Value>,
    session: Option<&Map<String, Value>>,
    schema: &Schema,
) -> Result<Val, MappingError> {
    let pairs = context_pairs::<Native>(tool, args, session, schema)?;
    Val::record(pairs).ok_or_else(|| MappingError::OutOfRange(INPUT.to_string()))
}

/// Why a Cedar request cannot be read back as a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InverseError {
    #[error("the request's {0} is not an `{1}` entity")]
    WrongEntity(&'static str, &'static str),
    #[error("the request has no context")]
    NoContext,
    #[error("`{0}` holds {1}, which no call argument maps to")]
    NotAnArgument(String, String),
}

/// The call a Cedar request stands for: the inverse of [`request`], so a
/// request the solver made up reads as a call someone could make. `context.input`
/// becomes the arguments and `context.session` the session; anything else in
/// the context is derived from those by [`request`] and recomputed when the call
/// is replayed, so it is not part of the call.
pub fn call_from_request(request: &Request) -> Result<super::observation::Call, InverseError> {
    let id = |uid: Option<&EntityUid>, role: &'static str, ty: &'static str| match uid {
        Some(uid) if uid.type_name().to_string() == ty => Ok(uid.id().unescaped().to_string()),
        _ => Err(InverseError::WrongEntity(role, ty)),
    };
    let agent = id(request.principal(), "principal", AGENT_TYPE)?;
    let tool = id(request.action(), "action", "Action")?;
    let server = id(request.resource(), "resource", SERVER_TYPE)?;
    let context = request.context().ok_or(InverseError::NoContext)?;
    let record = |key: &str| -> Result<Option<Map<String, Value>>, InverseError> {
        match context.get(key) {
            None => Ok(None),
            Some(value) => match json_of(key, &value)? {
                Value::Object(map) => Ok(Some(map)),
                other => Err(InverseError::NotAnArgument(
                    format!("context.{key}"),
                    other.to_string(),
                )),
            },
        }
    };
    Ok(super::observation::Call {
        agent,
        tool,
        server,
        args: record("input")?.unwrap_or_default(),
        count: 1,
        first_seen: None,
        last_seen: None,
        decision: None,
        trace_id: None,
        session: record("session")?,
    })
}

/// A Cedar value as the JSON an argument would carry (DESIGN §2 read backwards).
fn json_of(path: &str, value: &cedar_policy::EvalResult) -> Result<Value, InverseError> {
    use cedar_policy::EvalResult;
    Ok(match value {
        EvalResult::Bool(b) => Value::Bool(*b),
        EvalResult::Long(i) => Value::from(*i),
        EvalResult::String(s) => Value::String(s.clone()),
        EvalResult::Set(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| json_of(&format!("{path}[{i}]"), item))
                .collect::<Result<_, _>>()?,
        ),
        EvalResult::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, item)| Ok((name.clone(), json_of(&format!("{path}.{name}"), item)?)))
                .collect::<Result<_, _>>()?,
        ),
        EvalResult::ExtensionValue(text) => text
            .strip_prefix("decimal(\"")
            .and_then(|t| t.strip_suffix("\")"))
            .and_then(|digits| serde_json::from_str::<serde_json::Number>(digits).ok())
            .map(Value::Number)
            .ok_or_else(|| InverseError::NotAnArgument(path.to_string(), text.clone()))?,
        EvalResult::EntityUid(uid) => {
            return Err(InverseError::NotAnArgument(path.to_string(), uid.to_string()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::parse(
            r#"entity Agent; entity McpServer;
            action "pay" appliesTo { principal: [Agent], resource: [McpServer],
              context: { input: { amount: decimal, to: String, "tags"?: Set<String>,
                "meta"?: { "n"?: Long } } } };"#,
        )
        .unwrap()
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn fitting_calls_map() {
        let s = schema();
        let r = request(
            "a",
            "pay",
            "stripe",
            &args(json!({"amount": 5, "to": "x", "meta": {"n": 2}, "tags": null})),
            None,
            &s,
        );
        let r = r.unwrap();
        assert_eq!(r.principal().unwrap().to_string(), r#"Agent::"a""#);
        assert_eq!(r.action().unwrap().to_string(), r#"Action::"pay""#);
        assert_eq!(r.resource().unwrap().to_string(), r#"McpServer::"stripe""#);
    }

    /// A tool whose context declares a session and element keys of `cc`.
    fn with_context() -> Schema {
        Schema::parse(
            r#"entity Agent; entity McpServer;
            action "send" appliesTo { principal: [Agent], resource: [McpServer],
              context: { input: { "user_id"?: String, "cc"?: Set<String> },
                "session"?: { "user"?: String, "tier"?: Long },
                derived: { "cc"?: { domains: Set<String> } } } };"#,
        )
        .unwrap()
    }

    fn decide(schema: &Schema, args: Value, session: Option<Value>) -> Result<bool, MappingError> {
        let set: cedar_policy::PolicySet = r#"permit (principal, action, resource) when {
              context has session && context.session has user &&
              context.input.user_id == context.session.user &&
              (if context.input has cc
               then context.derived has cc && ["acme.com"].containsAll(context.derived.cc.domains)
               else true) };"#
            .parse()
            .unwrap();
        let session = session.map(|s| s.as_object().unwrap().clone());
        let r = request(
            "a",
            "send",
            "s",
            &args.as_object().unwrap().clone(),
            session.as_ref(),
            schema,
        )?;
        Ok(crate::core::replay::authorize(&set, &r).allowed)
    }

    #[test]
    fn the_session_and_element_keys_reach_the_context() {
        let s = with_context();
        let me = json!({"user": "u-1", "conversation": "c-9"});
        assert_eq!(decide(&s, json!({"user_id": "u-1"}), Some(me.clone())), Ok(true));
        assert_eq!(
            decide(&s, json!({"user_id": "u-2"}), Some(me.clone())),
            Ok(false),
            "another user's id"
        );
        assert_eq!(
            decide(&s, json!({"user_id": "u-1"}), None),
            Ok(false),
            "no session"
        );
        let cc = |cc: Value| json!({"user_id": "u-1", "cc": cc});
        assert_eq!(
            decide(&s, cc(json!(["a@acme.com", "b@acme.com"])), Some(me.clone())),
            Ok(true)
        );
        assert_eq!(decide(&s, cc(json!([])), Some(me.clone())), Ok(true));
        for hostile in [
            json!(["a@acme.com", "x@gmail.com"]),
            json!(["x@gmail.com,a@acme.com"]),
            json!(["acme.com"]),
        ] {
            assert_eq!(
                decide(&s, cc(hostile.clone()), Some(me.clone())),
                Ok(false),
                "{hostile}"
            );
        }
        let e = decide(&s, json!({"user_id": "u-1"}), Some(json!({"user": 7}))).unwrap_err();
        assert!(
            matches!(e, MappingError::WrongType { ref path, .. } if path == "session.user"),
            "{e}"
        );
        let e = decide(&s, json!({"user_id": "u-1"}), Some(json!({"tier": 1.5}))).unwrap_err();
        assert!(e.to_string().contains("session.tier"), "{e}");
    }

    #[test]
    fn a_derived_attribute_the_mapping_does_not_know_fails_closed() {
        let s = Schema::parse(
            r#"entity Agent; entity McpServer;
            action "send" appliesTo { principal: [Agent], resource: [McpServer],
              context: { input: { "cc"?: Set<String> }, derived: { "cc"?: { sizes: Set<String> } } } };"#,
        )
        .unwrap();
        let e = request("a", "send", "s", &args(json!({"cc": ["a@b.c"]})), None, &s).unwrap_err();
        assert_eq!(e, MappingError::UnknownDerived("cc.sizes".into()));
    }

    #[test]
    fn misfits_fail_closed_with_a_reason() {
        let s = schema();
        let e = request(
            "a",
            "pay",
            "s",
            &args(json!({"amount": 1.5, "to": "x", "bcc": "y"})),
            None,
            &s,
        )
        .unwrap_err();
        assert_eq!(e, MappingError::UnknownArgument("bcc".into()));
        let e = request(
            "a",
            "pay",
            "s",
            &args(json!({"amount": "1", "to": "x"})),
            None,
            &s,
        )
        .unwrap_err();
        assert!(
            matches!(e, MappingError::WrongType { ref path, .. } if path == "amount"),
            "{e}"
        );
        let e = request("a", "pay", "s", &args(json!({"amount": 1})), None, &s).unwrap_err();
        assert_eq!(e, MappingError::MissingArgument("to".into()));
        let e = request("a", "refund", "s", &args(json!({})), None, &s).unwrap_err();
        assert_eq!(e, MappingError::UnknownTool("refund".into()));
        let e = request(
            "a",
            "pay",
            "s",
            &args(json!({"amount": 1, "to": "x", "meta": {"n": 1.5}})),
            None,
            &s,
        )
        .unwrap_err();
        assert!(e.to_string().contains("meta.n"), "{e}");
    }

    #[test]
    fn requests_read_back_as_the_calls_they_came_from() {
        let s = schema();
        let call = json!({"amount": 149.99, "to": "ZZ00\"x", "tags": ["b", "a"], "meta": {"n": -2}});
        let r = request("billing-bot", "pay", "stripe", &args(call.clone()), None, &s).unwrap();
        let back = call_from_request(&r).unwrap();
        assert_eq!(
            (back.agent.as_str(), back.tool.as_str(), back.server.as_str()),
            ("billing-bot", "pay", "stripe")
        );
        assert_eq!(back.args["amount"], json!(149.99));
        assert_eq!(back.args["to"], json!("ZZ00\"x"));
        assert_eq!(
            back.args["tags"],
            json!(["a", "b"]),
            "a set reads back in Cedar's order"
        );
        assert_eq!(back.args["meta"], json!({"n": -2}));
        assert_eq!(back.session, None);
        let again = request(
            &back.agent,
            &back.tool,
            &back.server,
            &back.args,
            back.session.as_ref(),
            &s,
        )
        .unwrap();
        assert_eq!(
            again.context().unwrap(),
            r.context().unwrap(),
            "the call maps to the same request"
        );
    }

    #[test]
    fn the_session_reads_back_and_other_context_is_left_to_the_mapping() {
        let input = RestrictedExpression::new_record([(
            "to".to_string(),
            RestrictedExpression::new_string("x".into()),
        )])
        .unwrap();
        let session = RestrictedExpression::new_record([(
            "user".to_string(),
            RestrictedExpression::new_string("u-1".into()),
        )])
        .unwrap();
        let derived = RestrictedExpression::new_set([RestrictedExpression::new_string("acme.com".into())]);
        let context = Context::from_pairs([
            ("input".to_string(), input),
            ("session".to_string(), session),
            ("to_domains".to_string(), derived),
        ])
        .unwrap();
        let r = Request::new(agent_uid("a"), action_uid("pay"), server_uid("s"), context, None).unwrap();
        let call = call_from_request(&r).unwrap();
        assert_eq!(call.args, args(json!({"to": "x"})));
        assert_eq!(call.session, Some(args(json!({"user": "u-1"}))));
        let other = Request::new(
            action_uid("x"),
            action_uid("pay"),
            server_uid("s"),
            Context::empty(),
            None,
        )
        .unwrap();
        assert_eq!(
            call_from_request(&other).unwrap_err(),
            InverseError::WrongEntity("principal", "Agent")
        );
    }
}
