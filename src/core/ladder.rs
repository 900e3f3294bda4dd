//! The generalisation ladder: for one argument of one rule, the tightest
//! condition the evidence supports, and why.
//!
//! Rungs, tightest first: exact literal set → structural pattern (URL prefix,
//! email domain, directory, identifier prefix, month) → numeric range → type
//! only. Destinations of side-effecting tools stay low on the ladder: they are
//! where an injected agent sends what it steals.

use super::classify::{self, Shape};
use super::config::{PatternKind, Thresholds};
use super::summary::Entry;
use super::syntax::PatternPart;
use super::types::{decimal_scaled, ArgType, DECIMAL_SCALE};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// The rung an argument ended on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rung {
    Literal,
    Pattern,
    Range,
    TypeOnly,
}

impl Rung {
    pub fn label(self) -> &'static str {
        match self {
            Rung::Literal => "exact values",
            Rung::Pattern => "pattern",
            Rung::Range => "range",
            Rung::TypeOnly => "type only",
        }
    }
}

/// Whether an argument says where a side-effecting call sends, writes or pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Destination,
    Parameter,
}

/// What a rule requires of one argument's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Any,
    /// One of these scalar values.
    OneOf(Vec<Value>),
    /// A set whose elements all come from these values.
    SubsetOf(Vec<Value>),
    /// Matches one of the patterns and none of the guards.
    Like {
        patterns: Vec<Vec<PatternPart>>,
        guards: Vec<&'static str>,
    },
    /// Within bounds, scaled by 10^4 (Cedar decimal precision).
    Range {
        low: i128,
        high: i128,
    },
}

/// The ladder's answer for one argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub rung: Rung,
    pub condition: Condition,
    pub reason: String,
    /// Anything of the right type is allowed: the reviewer should look.
    pub unconstrained: bool,
    /// Values looked like secrets; none is written anywhere.
    pub secret: bool,
}

/// Everything the ladder looks at for one argument of one rule.
pub struct LeafInput<'a> {
    pub ty: &'a ArgType,
    /// The entries are exact values (not structural keys).
    pub exact: bool,
    /// Entries seen in this rule's calls, with their call counts there.
    pub values: Vec<(&'a Entry, u64)>,
    pub calls: u64,
    /// Distinct values and calls over all of this agent's calls to the tool.
    pub distinct: u64,
    pub leaf_calls: u64,
    pub secret_name: bool,
    pub role: Role,
}

fn type_only(reason: String, unconstrained: bool) -> Decision {
    Decision {
        rung: Rung::TypeOnly,
        condition: Condition::Any,
        reason,
        unconstrained,
        secret: false,
    }
}

fn pattern_kind(shape: &Shape) -> Option<PatternKind> {
    Some(match shape {
        Shape::Url { .. } => PatternKind::Url,
        Shape::Email { .. } => PatternKind::Email,
        Shape::Path { .. } => PatternKind::Path,
        Shape::Id { .. } => PatternKind::Identifier,
        Shape::Date { .. } => PatternKind::Date,
        _ => return None,
    })
}

/// The tightest pattern set (deepest directories) within `max_patterns`.
fn patterns(shapes: &BTreeSet<&Shape>, t: &Thresholds) -> Option<(PatternKind, Condition)> {
    let first = shapes.iter().next()?;
    let kind = pattern_kind(first)?;
    if shapes.iter().any(|s| pattern_kind(s) != Some(kind)) {
        return None;
    }
    for depth in (0..=t.path_depth).rev() {
        let found: Option<BTreeSet<Vec<PatternPart>>> =
            shapes.iter().map(|s| classify::pattern(s, depth)).collect();
        if let Some(found) = found {
            if found.len() <= t.max_patterns {
                return Some((
                    kind,
                    Condition::Like {
                        patterns: found.into_iter().collect(),
                        guards: classify::guards(first).to_vec(),
                    },
                ));
            }
        }
    }
    None
}

/// Round up to the next 1-2-5 step (…, 100, 200, 500, 1000, …).
fn nice_ceiling(x: f64) -> f64 {
    if x <= 0.0 {
        return x;
    }
    let magnitude = 10f64.powf(x.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if step * magnitude >= x {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

/// A number scaled by 10^4; whole numbers keep their full i64 range (a Long
/// need not fit in a Cedar decimal).
fn scaled(v: &Value) -> Option<i128> {
    match v.as_i64() {
        Some(i) => Some(i as i128 * DECIMAL_SCALE),
        None => v.as_number().and_then(decimal_scaled),
    }
}

/// Decide one argument.
pub fn decide(input: &LeafInput<'_>, t: &Thresholds) -> Decision {
    // A secret may never be listed; a pattern may stay when it is built only
    // from the parts of the values that are not secret (a URL's host and path).
    let secret = input.secret_name || input.values.iter().any(|(e, _)| e.secret);
    let secret_only = input.secret_name || input.values.iter().any(|(e, _)| e.shape == Shape::Secret);
    if secret_only {
        let why = if input.secret_name {
            "the argument's name says it carries a secret"
        } else {
            "values look like secrets"
        };
        return Decision {
            secret: true,
            ..type_only(format!("{why}: no value is written to the policy"), true)
        };
    }
    let distinct = input.values.len();
    let limit = match input.role {
        Role::Destination => t.destination_max_literals,
        Role::Parameter => t.max_literals,
    };
    let listable = input.exact && distinct <= limit && !secret;
    // Whether values repeat is a property of the argument, not of one rule's share of it.
    let enum_like = input.leaf_calls as f64 >= t.min_repeats * input.distinct as f64;
    let values = || {
        let mut v: Vec<Value> = input.values.iter().map(|(e, _)| e.value.clone()).collect();
        v.sort_by_key(|a| a.to_string());
        v
    };
    let literal = |why: String| Decision {
        rung: Rung::Literal,
        condition: Condition::OneOf(values()),
        reason: why,
        unconstrained: false,
        secret: false,
    };
    match input.ty {
        ArgType::Bool => {
            if distinct == 1 {
                literal("only one value seen".into())
            } else {
                type_only("both values seen".into(), false)
            }
        }
        ArgType::String => {
            let shapes: BTreeSet<&Shape> = input.values.iter().map(|(e, _)| &e.shape).collect();
            let pattern = patterns(&shapes, t);
            // Destinations prefer a list to a pattern unless the preset allows the kind.
            let preferred = pattern
                .clone()
                .filter(|(kind, _)| input.role == Role::Parameter || t.destination_patterns.contains(kind));
            let counted = format!("{distinct} distinct in {} calls", input.calls);
            if listable && enum_like {
                return literal(format!("enum-like: {counted}"));
            }
            let by_pattern = |(kind, condition): (PatternKind, Condition), why: &str| Decision {
                rung: Rung::Pattern,
                condition,
                reason: format!(
                    "{why}≈{} distinct values share {} patterns",
                    input.distinct,
                    kind.label()
                ),
                unconstrained: false,
                secret,
            };
            if let Some(p) = preferred {
                return by_pattern(p, "");
            }
            if listable && input.role == Role::Destination {
                return literal(format!("destination of a side-effecting tool: {counted}, listed"));
            }
            // Too many destinations to list: a pattern is still far tighter than nothing.
            if let Some(p) = pattern {
                return by_pattern(p, "destination, too many to list: ");
            }
            let what = if shapes.iter().any(|s| **s == Shape::Text) {
                "free text"
            } else {
                "values that neither repeat nor share a pattern"
            };
            let what = match input.role {
                Role::Destination => format!("destination: {what}"),
                Role::Parameter => what.to_string(),
            };
            Decision {
                secret,
                ..type_only(
                    format!("{what} (≈{} distinct): any string passes", input.distinct),
                    true,
                )
            }
        }
        ArgType::Long | ArgType::Decimal => {
            let counted = format!("{distinct} distinct in {} calls", input.calls);
            if listable && (enum_like || input.role == Role::Destination) {
                return literal(if input.role == Role::Destination {
                    format!("destination of a side-effecting tool: {counted}, listed")
                } else {
                    format!("enum-like: {counted}")
                });
            }
            if input.role == Role::Destination {
                return type_only(
                    format!(
                        "numeric destination with ≈{} distinct values: any number passes",
                        input.distinct
                    ),
                    true,
                );
            }
            let mut low = i128::MAX;
            let mut high = i128::MIN;
            for (e, _) in &input.values {
                for v in std::iter::once(&e.value).chain(e.high.as_ref()) {
                    if let Some(s) = scaled(v) {
                        low = low.min(s);
                        high = high.max(s);
                    }
                }
            }
            if low > high {
                return type_only("no numeric value seen".into(), true);
            }
            let (seen_low, seen_high) = (low, high);
            if t.numeric_headroom > 0.0 && high > 0 {
                let h = nice_ceiling(high as f64 / DECIMAL_SCALE as f64 * (1.0 + t.numeric_headroom));
                // Headroom never takes a bound past what the type can hold.
                let max = match input.ty {
                    ArgType::Long => i64::MAX as i128 / DECIMAL_SCALE * DECIMAL_SCALE,
                    _ => i64::MAX as i128,
                };
                high = ((h * DECIMAL_SCALE as f64) as i128).clamp(high, max.max(high));
            }
            if t.floor_at_zero && low >= 0 {
                low = 0;
            }
            if *input.ty == ArgType::Long {
                // Long bounds must be whole numbers.
                low = low.div_euclid(DECIMAL_SCALE) * DECIMAL_SCALE;
                high = (high + DECIMAL_SCALE - 1).div_euclid(DECIMAL_SCALE) * DECIMAL_SCALE;
            }
            let widened = if (low, high) == (seen_low, seen_high) {
                String::new()
            } else {
                format!(
                    ", widened from {}..{}",
                    super::types::decimal_text(seen_low).trim_end_matches(".0"),
                    super::types::decimal_text(seen_high).trim_end_matches(".0")
                )
            };
            Decision {
                rung: Rung::Range,
                condition: Condition::Range { low, high },
                reason: format!("≈{} distinct numbers{widened}", input.distinct),
                unconstrained: false,
                secret: false,
            }
        }
        ArgType::Set(element) if matches!(**element, ArgType::String | ArgType::Long | ArgType::Bool) => {
            let mut elements: BTreeSet<String> = BTreeSet::new();
            let mut items: Vec<Value> = Vec::new();
            for (e, _) in &input.values {
                for item in e.value.as_array().into_iter().flatten() {
                    if elements.insert(item.to_string()) {
                        items.push(item.clone());
                    }
                }
            }
            items.sort_by_key(|a| a.to_string());
            if input.exact && items.len() <= limit {
                Decision {
                    rung: Rung::Literal,
                    condition: Condition::SubsetOf(items),
                    reason: format!("{} distinct elements in {} calls", elements.len(), input.calls),
                    unconstrained: false,
                    secret: false,
                }
            } else {
                type_only(
                    // Cedar has no "every element matches" operator: a set cannot take a pattern.
                    format!(
                        "more than {limit} distinct elements, and Cedar cannot match each element \
                         of a set against a pattern: any set passes"
                    ),
                    true,
                )
            }
        }
        ArgType::Set(_) | ArgType::Record(_) => type_only("structured value: type only".into(), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::Preset;
    use serde_json::json;

    fn entries(values: &[Value]) -> Vec<Entry> {
        values
            .iter()
            .map(|v| Entry {
                value: v.clone(),
                high: None,
                hash: crate::core::summary::value_hash(v),
                shape: classify::classify(v, true).0,
                secret: crate::core::secrets::contains_secret(&v.to_string()),
                count: 1,
            })
            .collect()
    }

    fn run(ty: ArgType, values: &[Value], calls: u64, role: Role, preset: Preset) -> Decision {
        let es = entries(values);
        let input = LeafInput {
            ty: &ty,
            exact: true,
            values: es.iter().map(|e| (e, calls / es.len() as u64)).collect(),
            calls,
            distinct: es.len() as u64,
            leaf_calls: calls,
            secret_name: false,
            role,
        };
        decide(&input, &preset.thresholds())
    }

    #[test]
    fn enums_are_listed() {
        let d = run(
            ArgType::String,
            &[json!("open"), json!("closed")],
            200,
            Role::Parameter,
            Preset::Balanced,
        );
        assert_eq!(d.rung, Rung::Literal);
        assert_eq!(
            d.condition,
            Condition::OneOf(vec![json!("closed"), json!("open")])
        );
    }

    #[test]
    fn identifiers_of_read_tools_generalise_to_prefixes() {
        let ids: Vec<Value> = (0..20).map(|i| json!(format!("cust_{i:05}"))).collect();
        let d = run(ArgType::String, &ids, 20, Role::Parameter, Preset::Balanced);
        assert_eq!(d.rung, Rung::Pattern, "{d:?}");
        let Condition::Like { patterns, .. } = d.condition else {
            panic!()
        };
        assert_eq!(
            patterns,
            vec![vec![PatternPart::Literal("cust_".into()), PatternPart::Wildcard]]
        );
    }

    #[test]
    fn destinations_stay_tight() {
        let to: Vec<Value> = (0..5).map(|i| json!(format!("u{i}@acme.com"))).collect();
        let d = run(ArgType::String, &to, 50, Role::Destination, Preset::Balanced);
        assert_eq!(d.rung, Rung::Literal, "recipients that repeat are listed");
        let d = run(ArgType::String, &to, 5, Role::Destination, Preset::Balanced);
        assert_eq!(d.rung, Rung::Pattern, "fresh recipients share their domain");
        let d = run(ArgType::String, &to, 5, Role::Destination, Preset::Tight);
        assert_eq!(d.rung, Rung::Literal, "tight never widens a destination");
        let accounts: Vec<Value> = (0..20).map(|i| json!(format!("acct-{i:04}"))).collect();
        let d = run(
            ArgType::String,
            &accounts,
            20,
            Role::Destination,
            Preset::Balanced,
        );
        assert_eq!(
            d.rung,
            Rung::Literal,
            "balanced lists account destinations rather than trust a prefix"
        );
        let d = run(ArgType::String, &accounts, 20, Role::Destination, Preset::Loose);
        assert_eq!(d.rung, Rung::Pattern);
        let many: Vec<Value> = (0..40).map(|i| json!(format!("acct-{i:04}"))).collect();
        let d = run(ArgType::String, &many, 40, Role::Destination, Preset::Balanced);
        assert_eq!(
            d.rung,
            Rung::Pattern,
            "too many to list: a prefix beats no constraint"
        );
        assert!(d.reason.contains("too many to list"), "{}", d.reason);
        let text: Vec<Value> = (0..40).map(|i| json!(format!("room {i} please"))).collect();
        let d = run(ArgType::String, &text, 40, Role::Destination, Preset::Balanced);
        assert_eq!(d.rung, Rung::TypeOnly);
        assert!(d.unconstrained);
    }

    #[test]
    fn free_text_is_unconstrained_and_secrets_are_never_listed() {
        let text: Vec<Value> = (0..100)
            .map(|i| json!(format!("please look at ticket {i} today")))
            .collect();
        let mut es = entries(&text);
        es.truncate(64);
        let input = LeafInput {
            ty: &ArgType::String,
            exact: false,
            values: es.iter().map(|e| (e, 1)).collect(),
            calls: 100,
            distinct: 100,
            leaf_calls: 100,
            secret_name: false,
            role: Role::Parameter,
        };
        let d = decide(&input, &Preset::Balanced.thresholds());
        assert_eq!((d.rung, d.unconstrained), (Rung::TypeOnly, true));
        let d = run(
            ArgType::String,
            &[json!("ghp_0123456789abcdefghijABCDEFGHIJ012345")],
            1,
            Role::Parameter,
            Preset::Tight,
        );
        assert!(d.secret);
        assert_eq!(d.condition, Condition::Any);
    }

    #[test]
    fn numbers_get_ranges_with_headroom() {
        let amounts: Vec<Value> = (1..=40).map(|i| json!(i * 10 + 3)).collect();
        let d = run(ArgType::Long, &amounts, 40, Role::Parameter, Preset::Balanced);
        assert_eq!(
            d.condition,
            Condition::Range {
                low: 0,
                high: 1000 * DECIMAL_SCALE
            }
        );
        let d = run(ArgType::Long, &amounts, 40, Role::Parameter, Preset::Tight);
        assert_eq!(
            d.condition,
            Condition::Range {
                low: 13 * DECIMAL_SCALE,
                high: 403 * DECIMAL_SCALE
            },
            "tight: no headroom"
        );
        let d = run(ArgType::Long, &amounts[..20], 40, Role::Parameter, Preset::Tight);
        assert_eq!(d.rung, Rung::Literal, "tight lists what it can");
        assert_eq!(nice_ceiling(437.0), 500.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(0.37), 0.5);
    }
}
