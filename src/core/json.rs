//! JSON objects read strictly: a key given twice is an error, at any depth.
//! serde_json keeps the last of duplicate keys; a tool may read the first,
//! so a call decided on one value could run with another.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};
use std::fmt;

/// `#[serde(deserialize_with = "…")]` for a JSON object field.
pub fn object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Map<String, Value>, D::Error> {
    match deserializer.deserialize_any(StrictVisitor)? {
        Value::Object(map) => Ok(map),
        other => Err(de::Error::invalid_type(unexpected(&other), &"an object")),
    }
}

/// … for an optional JSON object field (with `#[serde(default)]`).
pub fn optional_object<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Map<String, Value>>, D::Error> {
    match deserializer.deserialize_any(StrictVisitor)? {
        Value::Object(map) => Ok(Some(map)),
        Value::Null => Ok(None),
        other => Err(de::Error::invalid_type(unexpected(&other), &"an object")),
    }
}

/// Parse a JSON document whole, duplicate keys refused.
pub fn parse(text: &str) -> serde_json::Result<Value> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let parsed = value(&mut deserializer)?;
    deserializer.end()?;
    Ok(parsed)
}

/// A whole JSON value, duplicate keys refused.
pub fn value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    deserializer.deserialize_any(StrictVisitor)
}

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("a number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

struct StrictVisitor;

/// One element of an array or map, itself read strictly.
struct Strict(Value);

impl<'de> de::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(256));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let Strict(value) = access.next_value()?;
            match map.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(seen) => {
                    return Err(de::Error::custom(format_args!("duplicate key `{}`", seen.key())));
                }
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct Holder {
        #[serde(deserialize_with = "super::object")]
        args: serde_json::Map<String, serde_json::Value>,
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        let ok: Holder = serde_json::from_str(r#"{"args": {"a": 1, "b": {"c": [1, {"d": 2}]}}}"#).unwrap();
        assert_eq!(ok.args["b"]["c"][1]["d"], 2);
        let e = serde_json::from_str::<Holder>(
            r#"{"args": {"customer_id": "evil/../x", "n": 1, "customer_id": "cust_XP1"}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("duplicate key `customer_id`"), "{e}");
        let e = serde_json::from_str::<Holder>(r#"{"args": {"a": [{"x": 1, "x": 2}]}}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate key `x`"), "{e}");
        assert!(super::parse(r#"{"a": 1} {"#).is_err(), "trailing text");
        assert!(super::parse(r#"{"a": 1, "a": 2}"#)
            .unwrap_err()
            .to_string()
            .contains("duplicate"));
        let e = serde_json::from_str::<Holder>(r#"{"args": [1]}"#).unwrap_err();
        assert!(e.to_string().contains("an object"), "{e}");
    }
}
