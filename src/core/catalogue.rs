//! The tool catalogue: an MCP `tools/list` result, or an array of
//! `{name, description, inputSchema | parameters}` (the OpenAI function shape).
//! It types arguments never observed and says how risky each tool is.

use super::observation::{ObservationError, Origin};
use super::types::{ArgType, Attr};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// MCP tool annotations (hints the server declares about its tool).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub open_world: Option<bool>,
}

/// One catalogued tool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogueTool {
    pub description: String,
    pub args: BTreeMap<String, Attr>,
    pub annotations: Option<Annotations>,
    /// Top-level arguments whose schema (or item schema) lists an `enum`.
    pub enums: BTreeSet<String>,
}

/// All catalogued tools by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalogue {
    pub tools: BTreeMap<String, CatalogueTool>,
}

fn error(source: &str, field: String, message: &str) -> ObservationError {
    ObservationError {
        origin: Origin {
            source: source.to_string(),
            line: None,
        },
        field,
        message: message.to_string(),
    }
}

/// A JSON Schema type as an argument type; `None` where it cannot be typed.
fn json_schema_type(schema: &Value) -> Option<ArgType> {
    let declared = match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        // `["string", "null"]`: nullable means optional, which presence already covers.
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    };
    let declared = declared.or_else(|| {
        let first = schema.get("enum")?.as_array()?.first()?;
        Some(match first {
            Value::String(_) => "string",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_f64() => "number",
            Value::Number(_) => "integer",
            _ => return None,
        })
    })?;
    Some(match declared {
        "string" => ArgType::String,
        "integer" => ArgType::Long,
        // JSON Schema's "number" admits fractions, so decimal avoids a later type conflict.
        "number" => ArgType::Decimal,
        "boolean" => ArgType::Bool,
        "array" => ArgType::Set(Box::new(json_schema_type(schema.get("items")?)?)),
        "object" => ArgType::Record(object_args(schema)?),
        _ => return None,
    })
}

fn object_args(schema: &Value) -> Option<BTreeMap<String, Attr>> {
    let properties = schema.get("properties")?.as_object()?;
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Some(
        properties
            .iter()
            .filter_map(|(name, prop)| {
                json_schema_type(prop).map(|ty| {
                    let required = required.contains(&name.as_str());
                    (name.clone(), Attr { ty, required })
                })
            })
            .collect(),
    )
}

/// Parse a catalogue document; errors name the source and the JSON path.
pub fn parse(source: &str, text: &str) -> Result<Catalogue, ObservationError> {
    let doc = super::json::parse(text)
        .map_err(|e| error(source, "(document)".into(), &format!("not JSON: {e}")))?;
    let (list, prefix) = match &doc {
        Value::Array(items) => (items, ""),
        Value::Object(map) => match map
            .get("tools")
            .or_else(|| map.get("result").and_then(|r| r.get("tools")))
        {
            Some(Value::Array(items)) => (items, "tools"),
            _ => {
                return Err(error(
                    source,
                    "tools".into(),
                    "expected a `tools` array (MCP tools/list result) or a JSON array of tools",
                ))
            }
        },
        _ => {
            return Err(error(
                source,
                "(document)".into(),
                "expected an object or an array",
            ))
        }
    };
    let mut catalogue = Catalogue::default();
    for (i, item) in list.iter().enumerate() {
        let field = |name: &str| format!("{prefix}[{i}].{name}");
        // OpenAI-style entries wrap the tool in `function`.
        let item = item.get("function").unwrap_or(item);
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| error(source, field("name"), "missing or not a non-empty string"))?;
        let schema = item.get("inputSchema").or_else(|| item.get("parameters"));
        let args = match schema {
            None => BTreeMap::new(),
            Some(s) if s.is_object() => object_args(s).unwrap_or_default(),
            Some(_) => {
                return Err(error(
                    source,
                    field("inputSchema"),
                    "must be a JSON Schema object",
                ))
            }
        };
        let enums = schema
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .filter(|(_, p)| p.get("enum").or_else(|| p.get("items")?.get("enum")).is_some())
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let annotations = item.get("annotations").map(|a| Annotations {
            read_only: a.get("readOnlyHint").and_then(Value::as_bool),
            destructive: a.get("destructiveHint").and_then(Value::as_bool),
            open_world: a.get("openWorldHint").and_then(Value::as_bool),
        });
        let description = item
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        catalogue.tools.insert(
            name.to_string(),
            CatalogueTool {
                description,
                args,
                annotations,
                enums,
            },
        );
    }
    Ok(catalogue)
}

/// One catalogue from several servers' (the bot keeps one per server). A
/// tool name two servers share keeps the first server's entry.
pub fn merge(catalogues: impl IntoIterator<Item = Catalogue>) -> Catalogue {
    let mut merged = Catalogue::default();
    for catalogue in catalogues {
        for (name, tool) in catalogue.tools {
            merged.tools.entry(name).or_insert(tool);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_merge_and_the_first_server_keeps_a_shared_name() {
        let a = parse(
            "a",
            r#"{"tools":[{"name":"read","description":"a's"},{"name":"list"}]}"#,
        )
        .unwrap();
        let b = parse(
            "b",
            r#"{"tools":[{"name":"read","description":"b's"},{"name":"send"}]}"#,
        )
        .unwrap();
        let merged = merge([a, b]);
        assert_eq!(merged.tools.keys().collect::<Vec<_>>(), ["list", "read", "send"]);
        assert_eq!(merged.tools["read"].description, "a's");
    }

    #[test]
    fn reads_mcp_tools_list() {
        let text = r#"{"tools":[{"name":"send_email","description":"Send mail",
            "inputSchema":{"type":"object","properties":{
                "to":{"type":"string"},"cc":{"type":"array","items":{"type":"string"}},
                "priority":{"enum":["low","high"]},"amount":{"type":"number"}},
              "required":["to"]},
            "annotations":{"readOnlyHint":false,"destructiveHint":false}}]}"#;
        let c = parse("cat.json", text).unwrap();
        let t = &c.tools["send_email"];
        assert!(t.args["to"].required);
        assert!(!t.args["cc"].required);
        assert_eq!(t.args["cc"].ty, ArgType::Set(Box::new(ArgType::String)));
        assert_eq!(t.args["priority"].ty, ArgType::String);
        assert_eq!(t.args["amount"].ty, ArgType::Decimal);
        assert_eq!(t.annotations.as_ref().unwrap().read_only, Some(false));
        assert_eq!(t.enums, BTreeSet::from(["priority".to_string()]));
    }

    #[test]
    fn reads_function_arrays() {
        let text = r#"[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#;
        let c = parse("cat.json", text).unwrap();
        assert_eq!(c.tools["get_weather"].args["city"].ty, ArgType::String);
        assert!(c.tools["get_weather"].annotations.is_none());
    }

    #[test]
    fn errors_name_the_entry() {
        let e = parse("cat.json", r#"{"tools":[{"name":"a"},{"description":"x"}]}"#).unwrap_err();
        assert_eq!(e.field, "tools[1].name");
        assert!(e.to_string().starts_with("cat.json: field `tools[1].name`"));
    }
}
