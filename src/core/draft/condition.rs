//! How a rule's conditions and sample values are written: Cedar conjuncts for
//! the policy text, short summaries and redacted samples for the evidence.
//! Kept apart from rule building so the wording can change without touching
//! which condition the ladder chose.

use crate::core::classify::guard_parts;
use crate::core::ladder::Condition;
use crate::core::layout::Doc;
use crate::core::mapping::{DERIVED, SESSION};
use crate::core::secrets;
use crate::core::syntax::{context_has, context_path, input_path, pattern, quote, PatternPart};
use crate::core::types::{decimal_scaled, decimal_text, ArgType, DECIMAL_SCALE};
use serde_json::Value;

/// A sample value as shown in evidence: redacted and cut short.
pub(super) fn sample(value: &Value, secret: bool) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if secret {
        return secrets::redacted(&text);
    }
    let text = secrets::redact(&text);
    if text.chars().count() > 48 {
        format!("{}…", text.chars().take(47).collect::<String>())
    } else {
        text
    }
}

fn literal(value: &Value, ty: &ArgType) -> String {
    match (ty, value) {
        (ArgType::Decimal, Value::Number(n)) => {
            format!(
                "decimal(\"{}\")",
                decimal_scaled(n).map(decimal_text).unwrap_or_default()
            )
        }
        (_, Value::String(s)) => quote(s),
        (_, other) => other.to_string(),
    }
}

/// Cedar conjuncts for one argument's condition.
pub(super) fn condition_docs(path: &[String], ty: &ArgType, condition: &Condition) -> Vec<Doc> {
    let expr = input_path(path);
    match condition {
        Condition::Any => vec![],
        Condition::OneOf(values) if values.len() == 1 => {
            vec![Doc::Atom(format!("{expr} == {}", literal(&values[0], ty)))]
        }
        Condition::OneOf(values) => vec![Doc::List {
            items: values.iter().map(|v| literal(v, ty)).collect(),
            method: "contains",
            arg: expr,
        }],
        // Only empty sets seen; `[]` cannot be typed, so say it the typed way.
        Condition::SubsetOf(values) if values.is_empty() => vec![Doc::Atom(format!("{expr}.isEmpty()"))],
        Condition::SubsetOf(values) => {
            let element = match ty {
                ArgType::Set(e) => e.as_ref().clone(),
                other => other.clone(),
            };
            vec![Doc::List {
                items: values.iter().map(|v| literal(v, &element)).collect(),
                method: "containsAll",
                arg: expr,
            }]
        }
        Condition::Like { patterns, guards } => like_docs(expr, patterns, guards),
        Condition::Range { low, high } => range_docs(&expr, ty, *low, *high),
        // Derived attributes exist for top-level arguments only.
        Condition::Elements { kind, keys } => {
            let arg = &path[0];
            vec![
                Doc::Atom(context_has(DERIVED, arg)),
                Doc::List {
                    items: keys.iter().map(|k| quote(k)).collect(),
                    method: "containsAll",
                    arg: context_path(DERIVED, &[arg.clone(), kind.attribute().to_string()]),
                },
            ]
        }
    }
}

/// `context.input.<path> == context.session.<attribute>` (for a set: every
/// element is), after the tests that the session carries the attribute.
pub(super) fn binding_docs(path: &[String], set: bool, attribute: &str) -> Vec<Doc> {
    let session = context_path(SESSION, &[attribute.to_string()]);
    let expr = input_path(path);
    vec![
        Doc::Atom(format!("context has {SESSION}")),
        Doc::Atom(context_has(SESSION, attribute)),
        Doc::Atom(if set {
            format!("[{session}].containsAll({expr})")
        } else {
            format!("{expr} == {session}")
        }),
    ]
}

/// `like` one of the patterns, and `like` none of the guards. A lone `*`
/// pattern (an identifier without a prefix) is left out: only its guards say something.
fn like_docs(expr: String, patterns: &[Vec<PatternPart>], guards: &[&str]) -> Vec<Doc> {
    let mut out = Vec::new();
    if patterns != [vec![PatternPart::Wildcard]] {
        out.push(like_any(&expr, patterns));
    }
    if !guards.is_empty() {
        out.push(Doc::Or {
            not: true,
            items: guards
                .iter()
                .map(|g| format!("{expr} like {}", pattern(&guard_parts(g))))
                .collect(),
        });
    }
    out
}

fn like_any(expr: &str, patterns: &[Vec<PatternPart>]) -> Doc {
    if let [only] = patterns {
        Doc::Like {
            subject: expr.to_string(),
            pattern: pattern(only),
        }
    } else {
        Doc::Or {
            not: false,
            items: patterns
                .iter()
                .map(|p| format!("{expr} like {}", pattern(p)))
                .collect(),
        }
    }
}

/// Bounds in the argument's own type: whole numbers for a `Long`, decimals otherwise.
fn range_docs(expr: &str, ty: &ArgType, low: i128, high: i128) -> Vec<Doc> {
    if *ty == ArgType::Long {
        vec![
            Doc::Atom(format!("{expr} >= {}", low / DECIMAL_SCALE)),
            Doc::Atom(format!("{expr} <= {}", high / DECIMAL_SCALE)),
        ]
    } else {
        vec![
            Doc::Atom(format!(
                "{expr}.greaterThanOrEqual(decimal(\"{}\"))",
                decimal_text(low)
            )),
            Doc::Atom(format!(
                "{expr}.lessThanOrEqual(decimal(\"{}\"))",
                decimal_text(high)
            )),
        ]
    }
}

/// The condition in short form for the evidence (`one of "a", "b"`, `0 ..= 500`).
pub(super) fn condition_summary(condition: &Condition, ty: &ArgType) -> String {
    let show = |v: &Value| match v {
        Value::String(s) => quote(s),
        other => other.to_string(),
    };
    let list = |values: &[Value]| {
        let mut shown: Vec<String> = values.iter().take(4).map(show).collect();
        if values.len() > 4 {
            shown.push(format!("+{} more", values.len() - 4));
        }
        shown.join(", ")
    };
    match condition {
        Condition::Any => format!("any {ty}"),
        Condition::OneOf(values) => format!("one of {}", list(values)),
        Condition::SubsetOf(values) => format!("subset of {}", list(values)),
        Condition::Like { patterns, guards } if patterns == &[vec![PatternPart::Wildcard]] => {
            format!("not like {}", guards.join(", "))
        }
        Condition::Like { patterns, .. } => patterns
            .iter()
            .map(|p| format!("like {}", pattern(p)))
            .collect::<Vec<_>>()
            .join(" or "),
        Condition::Elements { kind, keys } => format!(
            "every {} one of {}",
            crate::core::ladder::element_key_label(*kind),
            list(&keys.iter().map(|k| Value::from(k.as_str())).collect::<Vec<_>>())
        ),
        Condition::Range { low, high } => format!(
            "{} ..= {}",
            decimal_text(*low).trim_end_matches(".0"),
            decimal_text(*high).trim_end_matches(".0")
        ),
    }
}
