//! The MCP `tools/list` catalogue: a JSON schema for each tool's arguments, and its annotations.

use crate::args::{ArgKind, ArgSpec};
use crate::tools::{Effect, ToolSpec, CURRENCIES};
use crate::words::capitalise;
use serde_json::{Map, Value};

pub(crate) fn tool_schema(tool: &ToolSpec) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for arg in tool.args {
        props.insert(arg.name.into(), arg_schema(arg));
        // Arguments of one shape only cannot be required: the other shape goes without them.
        if arg.sent_pct == 100 && arg.only_in.is_none() {
            required.push(Value::from(arg.name));
        }
    }
    let mut schema = Map::new();
    schema.insert("type".into(), Value::from("object"));
    schema.insert("properties".into(), Value::Object(props));
    schema.insert("required".into(), Value::Array(required));
    let mut m = Map::new();
    m.insert("name".into(), Value::from(tool.name));
    m.insert("description".into(), Value::from(tool.description));
    m.insert("inputSchema".into(), Value::Object(schema));
    if let Some(hints) = tool.hints {
        let mut annotations = Map::new();
        annotations.insert("readOnlyHint".into(), Value::from(tool.effect == Effect::Read));
        annotations.insert("destructiveHint".into(), Value::from(hints.destructive));
        annotations.insert("openWorldHint".into(), Value::from(hints.open_world));
        m.insert("annotations".into(), Value::Object(annotations));
    }
    Value::Object(m)
}

fn arg_schema(arg: &ArgSpec) -> Value {
    let mut m = Map::new();
    let string_items = |format: Option<&str>| {
        let mut items = Map::new();
        items.insert("type".into(), Value::from("string"));
        if let Some(format) = format {
            items.insert("format".into(), Value::from(format));
        }
        Value::Object(items)
    };
    let (ty, format, items) = match arg.kind {
        ArgKind::IntOneOf(_) | ArgKind::IntRange(..) | ArgKind::AmountCents | ArgKind::PrNumber => {
            ("integer", None, None)
        }
        ArgKind::AmountDecimal => ("number", None, None),
        ArgKind::Bool { .. } | ArgKind::InjectedFlag => ("boolean", None, None),
        ArgKind::Metadata | ArgKind::WebhookPayload => ("object", None, None),
        ArgKind::Recipients(_) | ArgKind::InjectedBcc => ("array", None, Some(string_items(Some("email")))),
        ArgKind::SubsetOf(_) | ArgKind::SsoGroups | ArgKind::InjectedAttachments => {
            ("array", None, Some(string_items(None)))
        }
        ArgKind::Email(_) | ArgKind::Recipient | ArgKind::InjectedReplyTo => ("string", Some("email"), None),
        ArgKind::Url | ArgKind::InjectedCallbackUrl => ("string", Some("uri"), None),
        ArgKind::Date => ("string", Some("date"), None),
        ArgKind::DateTime => ("string", Some("date-time"), None),
        _ => ("string", None, None),
    };
    m.insert("type".into(), Value::from(ty));
    if let Some(format) = format {
        m.insert("format".into(), Value::from(format));
    }
    if let Some(items) = items {
        m.insert("items".into(), items);
    }
    match arg.kind {
        ArgKind::Enum(values) => {
            m.insert("enum".into(), values.iter().map(|&v| Value::from(v)).collect());
        }
        ArgKind::Currency => {
            m.insert(
                "enum".into(),
                CURRENCIES.iter().map(|&v| Value::from(v)).collect(),
            );
        }
        ArgKind::Metadata => {
            let mut props = Map::new();
            props.insert("source".into(), type_schema("string"));
            props.insert("priority".into(), type_schema("integer"));
            m.insert("properties".into(), Value::Object(props));
        }
        _ => {}
    }
    let description = match arg.name {
        "bcc" => "Blind-copy recipients.".to_string(),
        "attachments" => "Local file paths to attach.".to_string(),
        "reply_to" => "Address replies should go to.".to_string(),
        "overwrite" => "Replace the file if it already exists.".to_string(),
        "force" => "Skip health checks and rollout gates.".to_string(),
        "is_admin" => "Grant the organisation administrator role.".to_string(),
        "admin_override" => "Bypass branch protection rules.".to_string(),
        "allow_writes" => "Permit DDL/DML statements.".to_string(),
        "share_publicly" => "Make the page readable without login.".to_string(),
        "callback_url" => "URL notified when the request completes.".to_string(),
        "api_key" => "API key for endpoints that need authentication.".to_string(),
        "amount_cents" => "Amount in the smallest currency unit.".to_string(),
        "amount" => "Amount in major currency units.".to_string(),
        name => capitalise(&name.replace('_', " ")) + ".",
    };
    m.insert("description".into(), Value::from(description));
    Value::Object(m)
}

/// `{"type": ty}`.
fn type_schema(ty: &str) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), Value::from(ty));
    Value::Object(m)
}
