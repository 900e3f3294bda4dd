//! `policies/schema.cedarschema`: read it, extend it, write it back.
//!
//! The schema on `main` is authoritative. shadowdraft only adds: new actions and
//! new attributes. It never changes an existing attribute's type or required-ness
//! and never drops what it does not understand (namespaces, common types, entity
//! attributes): it edits Cedar's JSON form of the schema and prints it back.

use super::types::{ArgType, Attr};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Entity type of principals: the agents.
pub const AGENT_TYPE: &str = "Agent";
/// Entity type of resources: the MCP servers / toolsets.
pub const SERVER_TYPE: &str = "McpServer";

/// Per set argument, the names of the attributes declared under
/// `context.derived.<arg>` (`domains`, `origins`, `id_patterns`).
pub type DerivedAttrs = BTreeMap<String, Vec<String>>;

/// The typed argument record of each tool, plus the full schema it came from.
#[derive(Debug, Clone)]
pub struct Schema {
    json: Value,
    tools: BTreeMap<String, BTreeMap<String, Attr>>,
    /// `context.session`, for the actions that declare it.
    sessions: BTreeMap<String, BTreeMap<String, Attr>>,
    /// `context.derived`, for the actions that declare it.
    derived: BTreeMap<String, DerivedAttrs>,
}

/// A schema that does not parse or is not a valid Cedar schema.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

/// An observed argument type the schema on `main` contradicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeConflict {
    pub tool: String,
    pub path: Vec<String>,
    pub schema_type: String,
    pub observed: String,
}

impl Default for Schema {
    fn default() -> Self {
        let json = json!({"": {"entityTypes": {AGENT_TYPE: {}, SERVER_TYPE: {}}, "actions": {}}});
        Schema {
            json,
            tools: BTreeMap::new(),
            sessions: BTreeMap::new(),
            derived: BTreeMap::new(),
        }
    }
}

impl Schema {
    /// Parse Cedar schema syntax; an empty text is the empty default schema.
    pub fn parse(text: &str) -> Result<Schema, SchemaError> {
        if text.trim().is_empty() {
            return Ok(Schema::default());
        }
        let (fragment, _warnings) = cedar_policy::SchemaFragment::from_cedarschema_str(text)
            .map_err(|e| SchemaError(super::diagnostic::describe(&e, text)))?;
        let mut json = fragment.to_json_value().map_err(|e| SchemaError(e.to_string()))?;
        let namespace = json
            .as_object_mut()
            .ok_or_else(|| SchemaError("schema is not an object".into()))?
            .entry("")
            .or_insert_with(|| json!({"entityTypes": {}, "actions": {}}));
        for entity in [AGENT_TYPE, SERVER_TYPE] {
            namespace["entityTypes"]
                .as_object_mut()
                .ok_or_else(|| SchemaError("entityTypes is not an object".into()))?
                .entry(entity)
                .or_insert_with(|| json!({}));
        }
        let mut schema = Schema {
            json,
            tools: BTreeMap::new(),
            sessions: BTreeMap::new(),
            derived: BTreeMap::new(),
        };
        schema.reindex();
        schema.to_cedar()?;
        Ok(schema)
    }

    fn actions(&self) -> Option<&Map<String, Value>> {
        self.json[""]["actions"].as_object()
    }

    fn reindex(&mut self) {
        let context_attr = |name: &str| {
            let name = name.to_string();
            move |(tool, action): (&String, &Value)| {
                let attr = &action["appliesTo"]["context"]["attributes"][&name];
                record_from_json(attr).map(|attrs| (tool.clone(), attrs))
            }
        };
        let actions: Vec<(&String, &Value)> = self.actions().into_iter().flatten().collect();
        let tools = actions
            .iter()
            .copied()
            .filter_map(context_attr("input"))
            .collect();
        let sessions = actions
            .iter()
            .copied()
            .filter_map(context_attr("session"))
            .collect();
        let derived = actions
            .iter()
            .copied()
            .filter_map(context_attr("derived"))
            .map(|(tool, args)| {
                let attrs = args
                    .into_iter()
                    .map(|(arg, attr)| {
                        let names = match attr.ty {
                            ArgType::Record(kinds) => kinds.into_keys().collect(),
                            _ => vec![String::new()],
                        };
                        (arg, names)
                    })
                    .collect();
                (tool, attrs)
            })
            .collect();
        self.tools = tools;
        self.sessions = sessions;
        self.derived = derived;
    }

    /// The typed arguments of `tool`, if the schema declares them.
    pub fn tool(&self, tool: &str) -> Option<&BTreeMap<String, Attr>> {
        self.tools.get(tool)
    }

    /// The session attributes `tool`'s context declares (`context.session`).
    pub fn session(&self, tool: &str) -> Option<&BTreeMap<String, Attr>> {
        self.sessions.get(tool)
    }

    /// The derived attributes `tool`'s context declares (`context.derived`).
    pub fn derived(&self, tool: &str) -> Option<&DerivedAttrs> {
        self.derived.get(tool)
    }

    /// The record attribute `name` of `tool`'s context, created (optional or
    /// not) if missing; `None` when the context is a human's common type.
    fn context_record(&mut self, tool: &str, name: &str, required: bool) -> Option<&mut Value> {
        if !self.actions().is_some_and(|a| a.contains_key(tool)) {
            return None;
        }
        let context = &mut self.json[""]["actions"][tool]["appliesTo"]["context"];
        if context.get("type").and_then(Value::as_str) != Some("Record") {
            return None;
        }
        if !context["attributes"].is_object() {
            context["attributes"] = json!({});
        }
        let record = context["attributes"]
            .as_object_mut()
            .expect("attributes is an object")
            .entry(name.to_string())
            .or_insert_with(|| {
                let mut v = json!({"type": "Record", "attributes": {}});
                if !required {
                    v["required"] = json!(false);
                }
                v
            });
        (record.get("type").and_then(Value::as_str) == Some("Record")).then_some(record)
    }

    /// Declare `context.session` of `tool` (the action must exist): new
    /// attributes are added, existing ones kept; disagreements are returned.
    pub fn add_session(&mut self, tool: &str, attrs: &BTreeMap<String, Attr>) -> Vec<TypeConflict> {
        let mut conflicts = Vec::new();
        if let Some(record) = self.context_record(tool, "session", false) {
            merge_record(
                tool,
                &mut vec!["session".to_string()],
                record,
                attrs,
                &mut conflicts,
            );
        }
        self.reindex();
        conflicts
    }

    /// Declare `context.derived.<arg>.<kind attribute>` (a `Set<String>`) of
    /// `tool` for each kind; the action must exist.
    pub fn add_derived(&mut self, tool: &str, arg: &str, kinds: &[super::classify::ElementKind]) {
        let strings = ArgType::Set(Box::new(ArgType::String));
        let inner: BTreeMap<String, Attr> = kinds
            .iter()
            .map(|k| {
                let attr = Attr {
                    ty: strings.clone(),
                    required: true,
                };
                (k.attribute().to_string(), attr)
            })
            .collect();
        let args = BTreeMap::from([(
            arg.to_string(),
            Attr {
                ty: ArgType::Record(inner),
                required: false,
            },
        )]);
        if let Some(record) = self.context_record(tool, "derived", true) {
            merge_record(
                tool,
                &mut vec!["derived".to_string()],
                record,
                &args,
                &mut Vec::new(),
            );
        }
        self.reindex();
    }

    /// Tools with an action in the schema.
    pub fn tools(&self) -> impl Iterator<Item = &str> {
        self.actions()
            .into_iter()
            .flat_map(|a| a.keys().map(String::as_str))
    }

    /// Declare `tool`'s arguments: new actions and new attributes are added,
    /// existing ones kept as they are; disagreements are returned.
    pub fn add_tool(&mut self, tool: &str, args: &BTreeMap<String, Attr>) -> Vec<TypeConflict> {
        let mut conflicts = Vec::new();
        let namespace = &mut self.json[""];
        if !namespace["actions"].is_object() {
            namespace["actions"] = json!({});
        }
        let actions = namespace["actions"]
            .as_object_mut()
            .expect("actions is an object");
        let action = actions.entry(tool.to_string()).or_insert_with(|| {
            json!({"appliesTo": {
                "principalTypes": [AGENT_TYPE],
                "resourceTypes": [SERVER_TYPE],
                "context": {"type": "Record", "attributes": {}},
            }})
        });
        let context = &mut action["appliesTo"]["context"];
        if context.get("type").and_then(Value::as_str) != Some("Record") {
            // A context given by a common type is a human's design: leave it alone.
            return conflicts;
        }
        let attributes = &mut context["attributes"];
        if !attributes.is_object() {
            *attributes = json!({});
        }
        let input = attributes
            .as_object_mut()
            .expect("attributes is an object")
            .entry("input")
            .or_insert_with(|| json!({"type": "Record", "attributes": {}}));
        merge_record(tool, &mut Vec::new(), input, args, &mut conflicts);
        self.reindex();
        conflicts
    }

    /// The schema in Cedar syntax, deterministic for the same content.
    pub fn render(&self) -> Result<String, SchemaError> {
        let fragment = cedar_policy::SchemaFragment::from_json_value(self.json.clone())
            .map_err(|e| SchemaError(e.to_string()))?;
        let text = fragment
            .to_cedarschema()
            .map_err(|e| SchemaError(e.to_string()))?;
        Ok(format!("{}\n", text.trim_end()))
    }

    /// The schema as Cedar's validator wants it.
    pub fn to_cedar(&self) -> Result<cedar_policy::Schema, SchemaError> {
        let fragment = cedar_policy::SchemaFragment::from_json_value(self.json.clone())
            .map_err(|e| SchemaError(e.to_string()))?;
        cedar_policy::Schema::from_schema_fragments([fragment]).map_err(|e| SchemaError(e.to_string()))
    }
}

fn type_to_json(ty: &ArgType) -> Value {
    match ty {
        ArgType::String => json!({"type": "String"}),
        ArgType::Long => json!({"type": "Long"}),
        ArgType::Bool => json!({"type": "Boolean"}),
        ArgType::Decimal => json!({"type": "Extension", "name": "decimal"}),
        ArgType::Set(inner) => json!({"type": "Set", "element": type_to_json(inner)}),
        ArgType::Record(attrs) => {
            let attributes: Map<String, Value> = attrs
                .iter()
                .map(|(name, attr)| (name.clone(), attr_to_json(attr)))
                .collect();
            json!({"type": "Record", "attributes": attributes})
        }
    }
}

fn attr_to_json(attr: &Attr) -> Value {
    let mut v = type_to_json(&attr.ty);
    if !attr.required {
        v["required"] = json!(false);
    }
    v
}

/// A Cedar JSON-schema type as an `ArgType`; `None` for types shadowdraft does
/// not map calls onto (entity references, common types, ip addresses).
fn type_from_json(v: &Value) -> Option<ArgType> {
    let name = v.get("name").and_then(Value::as_str);
    match v.get("type").and_then(Value::as_str)? {
        "String" => Some(ArgType::String),
        "Long" => Some(ArgType::Long),
        "Boolean" => Some(ArgType::Bool),
        "Extension" if name == Some("decimal") => Some(ArgType::Decimal),
        "Set" => Some(ArgType::Set(Box::new(type_from_json(v.get("element")?)?))),
        "Record" => record_from_json(v).map(ArgType::Record),
        "EntityOrCommon" => match name? {
            "String" | "__cedar::String" => Some(ArgType::String),
            "Long" | "__cedar::Long" => Some(ArgType::Long),
            "Bool" | "Boolean" | "__cedar::Bool" => Some(ArgType::Bool),
            "decimal" | "__cedar::decimal" => Some(ArgType::Decimal),
            _ => None,
        },
        _ => None,
    }
}

fn record_from_json(v: &Value) -> Option<BTreeMap<String, Attr>> {
    if v.get("type").and_then(Value::as_str) != Some("Record") {
        return None;
    }
    let attrs = v.get("attributes")?.as_object()?;
    Some(
        attrs
            .iter()
            .filter_map(|(name, a)| {
                let required = a.get("required").and_then(Value::as_bool).unwrap_or(true);
                type_from_json(a).map(|ty| (name.clone(), Attr { ty, required }))
            })
            .collect(),
    )
}

fn merge_record(
    tool: &str,
    path: &mut Vec<String>,
    record: &mut Value,
    args: &BTreeMap<String, Attr>,
    conflicts: &mut Vec<TypeConflict>,
) {
    if !record["attributes"].is_object() {
        record["attributes"] = json!({});
    }
    for (name, attr) in args {
        path.push(name.clone());
        let attributes = record["attributes"].as_object_mut().expect("attributes object");
        match attributes.get_mut(name) {
            None => {
                attributes.insert(name.clone(), attr_to_json(attr));
            }
            Some(existing) => match (type_from_json(existing), &attr.ty) {
                (Some(ArgType::Record(_)), ArgType::Record(inner)) => {
                    merge_record(tool, path, existing, inner, conflicts);
                }
                (Some(have), want) if have == *want => {}
                (have, want) => conflicts.push(TypeConflict {
                    tool: tool.to_string(),
                    path: path.clone(),
                    schema_type: have.map_or_else(|| "an unsupported type".into(), |t| t.to_string()),
                    observed: want.to_string(),
                }),
            },
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, ArgType)]) -> BTreeMap<String, Attr> {
        pairs
            .iter()
            .map(|(n, t)| {
                (
                    n.to_string(),
                    Attr {
                        ty: t.clone(),
                        required: false,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn adds_tools_and_round_trips() {
        let mut s = Schema::default();
        let c = s.add_tool(
            "send_email",
            &attrs(&[
                ("to", ArgType::String),
                ("amount", ArgType::Decimal),
                ("tags", ArgType::Set(Box::new(ArgType::String))),
            ]),
        );
        assert!(c.is_empty());
        let text = s.render().unwrap();
        assert!(text.contains("action \"send_email\""), "{text}");
        let again = Schema::parse(&text).unwrap();
        assert_eq!(again.tool("send_email"), s.tool("send_email"));
        assert_eq!(again.render().unwrap(), text, "rendering is stable");
    }

    #[test]
    fn never_changes_or_drops_existing_declarations() {
        let text = r#"
            type Money = Long;
            entity Agent { team: String };
            entity McpServer;
            entity Team;
            action "pay" appliesTo { principal: [Agent], resource: [McpServer],
              context: { input: { amount: Long } } };
        "#;
        let mut s = Schema::parse(text).unwrap();
        let conflicts = s.add_tool(
            "pay",
            &attrs(&[("amount", ArgType::Decimal), ("memo", ArgType::String)]),
        );
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].schema_type, "Long");
        let out = s.render().unwrap();
        assert!(out.contains("type Money"), "{out}");
        assert!(out.contains("entity Team"), "{out}");
        assert!(out.contains("team: String"), "{out}");
        let pay = s.tool("pay").unwrap();
        assert!(pay["amount"].required, "required-ness is kept");
        assert_eq!(pay["amount"].ty, ArgType::Long);
        assert!(!pay["memo"].required);
    }

    #[test]
    fn sessions_and_element_keys_are_declared_and_round_trip() {
        let mut s = Schema::default();
        s.add_tool("send", &attrs(&[("cc", ArgType::Set(Box::new(ArgType::String)))]));
        assert!(s
            .add_session("send", &attrs(&[("user", ArgType::String)]))
            .is_empty());
        s.add_derived("send", "cc", &[crate::core::classify::ElementKind::Email]);
        assert!(s
            .add_session("nope", &attrs(&[("user", ArgType::String)]))
            .is_empty());
        let text = s.render().unwrap();
        assert!(!text.contains("nope"), "no action is made up: {text}");
        let again = Schema::parse(&text).unwrap();
        assert_eq!(again.session("send").unwrap()["user"].ty, ArgType::String);
        assert!(!again.session("send").unwrap()["user"].required);
        assert_eq!(again.derived("send").unwrap()["cc"], vec!["domains".to_string()]);
        assert_eq!(again.render().unwrap(), text);
        // A session attribute's type is never changed.
        let mut again = again;
        let conflicts = again.add_session("send", &attrs(&[("user", ArgType::Long)]));
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].path, vec!["session".to_string(), "user".to_string()]);
    }

    #[test]
    fn parse_errors_are_reported() {
        let e = Schema::parse("entity Agent").unwrap_err();
        assert!(!e.0.is_empty());
    }
}
