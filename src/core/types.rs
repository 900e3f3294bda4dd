//! Argument types: what the schema says an argument is, and what observations say.

use serde_json::{Number, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The Cedar type of one argument (DESIGN §2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArgType {
    String,
    Long,
    Decimal,
    Bool,
    Set(Box<ArgType>),
    Record(BTreeMap<String, Attr>),
}

/// A record attribute: its type and whether every call must carry it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attr {
    pub ty: ArgType,
    pub required: bool,
}

impl fmt::Display for ArgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgType::String => f.write_str("String"),
            ArgType::Long => f.write_str("Long"),
            ArgType::Decimal => f.write_str("decimal"),
            ArgType::Bool => f.write_str("Bool"),
            ArgType::Set(inner) => write!(f, "Set<{inner}>"),
            ArgType::Record(_) => f.write_str("Record"),
        }
    }
}

/// A type inferred from observed JSON values; merging two observations widens it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Inferred {
    /// Only `null`s or empty arrays seen: nothing to type yet.
    Unknown,
    String,
    Long,
    Decimal,
    Bool,
    Set(Box<Inferred>),
    Record(BTreeMap<String, Inferred>),
    /// Values of incompatible types (e.g. a string and a number).
    Conflict,
}

impl Inferred {
    /// The type of one JSON value.
    pub fn of(value: &Value) -> Inferred {
        match value {
            Value::Null => Inferred::Unknown,
            Value::Bool(_) => Inferred::Bool,
            Value::Number(n) if n.is_i64() || n.is_u64() => Inferred::Long,
            Value::Number(_) => Inferred::Decimal,
            Value::String(_) => Inferred::String,
            Value::Array(items) => {
                let element = items
                    .iter()
                    .fold(Inferred::Unknown, |acc, item| acc.merge(&Inferred::of(item)));
                Inferred::Set(Box::new(element))
            }
            Value::Object(map) => Inferred::Record(
                map.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), Inferred::of(v)))
                    .collect(),
            ),
        }
    }

    /// The narrowest type both observations fit; an integer and a fraction make a decimal.
    pub fn merge(&self, other: &Inferred) -> Inferred {
        use Inferred::*;
        match (self, other) {
            (Unknown, x) | (x, Unknown) => x.clone(),
            (Conflict, _) | (_, Conflict) => Conflict,
            (Long, Decimal) | (Decimal, Long) => Decimal,
            (Set(a), Set(b)) => Set(Box::new(a.merge(b))),
            (Record(a), Record(b)) => {
                let mut out = a.clone();
                for (k, v) in b {
                    let merged = match out.get(k) {
                        Some(existing) => existing.merge(v),
                        None => v.clone(),
                    };
                    out.insert(k.clone(), merged);
                }
                Record(out)
            }
            (a, b) if a == b => a.clone(),
            _ => Conflict,
        }
    }

    /// The schema type, when the observations pin one down. Record attributes
    /// are optional: seeing an argument every time does not prove it is required.
    pub fn to_arg_type(&self) -> Option<ArgType> {
        Some(match self {
            Inferred::Unknown | Inferred::Conflict => return None,
            Inferred::String => ArgType::String,
            Inferred::Long => ArgType::Long,
            Inferred::Decimal => ArgType::Decimal,
            Inferred::Bool => ArgType::Bool,
            Inferred::Set(inner) => ArgType::Set(Box::new(inner.to_arg_type()?)),
            Inferred::Record(fields) => ArgType::Record(
                fields
                    .iter()
                    .filter_map(|(k, v)| {
                        v.to_arg_type()
                            .map(|ty| (k.clone(), Attr { ty, required: false }))
                    })
                    .collect(),
            ),
        })
    }
}

/// Cedar decimals carry four fractional digits in an i64.
pub const DECIMAL_SCALE: i128 = 10_000;

/// A JSON number as a Cedar decimal, scaled by 10^4 (rounded to four places);
/// `None` when outside Cedar's decimal range.
pub fn decimal_scaled(n: &Number) -> Option<i128> {
    let scaled = if let Some(i) = n.as_i64() {
        i as i128 * DECIMAL_SCALE
    } else if n.is_u64() {
        return None;
    } else {
        let f = n.as_f64()?;
        let s = (f * DECIMAL_SCALE as f64).round();
        if !s.is_finite() || s.abs() > i64::MAX as f64 {
            return None;
        }
        s as i128
    };
    (i64::MIN as i128..=i64::MAX as i128)
        .contains(&scaled)
        .then_some(scaled)
}

/// The text of a scaled decimal in Cedar's `decimal("…")` syntax.
pub fn decimal_text(scaled: i128) -> String {
    let sign = if scaled < 0 { "-" } else { "" };
    let abs = scaled.unsigned_abs();
    let whole = abs / DECIMAL_SCALE as u128;
    let frac = abs % DECIMAL_SCALE as u128;
    let mut frac_text = format!("{frac:04}");
    while frac_text.len() > 1 && frac_text.ends_with('0') {
        frac_text.pop();
    }
    format!("{sign}{whole}.{frac_text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_and_fractions_unify_to_decimal() {
        let t = Inferred::of(&json!(3)).merge(&Inferred::of(&json!(2.5)));
        assert_eq!(t, Inferred::Decimal);
        assert_eq!(t.to_arg_type(), Some(ArgType::Decimal));
    }

    #[test]
    fn incompatible_types_conflict() {
        let t = Inferred::of(&json!("x")).merge(&Inferred::of(&json!(1)));
        assert_eq!(t, Inferred::Conflict);
        assert_eq!(t.to_arg_type(), None);
    }

    #[test]
    fn records_merge_fieldwise_and_are_optional() {
        let t = Inferred::of(&json!({"a": 1})).merge(&Inferred::of(&json!({"b": ["x"]})));
        let ArgType::Record(fields) = t.to_arg_type().unwrap() else {
            panic!("record expected")
        };
        assert_eq!(fields["a"].ty, ArgType::Long);
        assert_eq!(fields["b"].ty, ArgType::Set(Box::new(ArgType::String)));
        assert!(!fields["a"].required);
    }

    #[test]
    fn decimals_round_to_four_places_and_print_back() {
        let n = |v: Value| v.as_number().cloned().unwrap();
        assert_eq!(decimal_scaled(&n(json!(149.99))), Some(1_499_900));
        assert_eq!(decimal_text(1_499_900), "149.99");
        assert_eq!(decimal_text(-5), "-0.0005");
        assert_eq!(decimal_text(70_000), "7.0");
        assert_eq!(decimal_scaled(&n(json!(1e300))), None);
        assert_eq!(decimal_scaled(&n(json!(u64::MAX))), None);
    }
}
