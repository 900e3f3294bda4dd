//! The generalisation ladder: for one argument of one rule, the tightest
//! condition the evidence supports, and why.
//!
//! Rungs, tightest first: exact literal set → structural pattern (URL prefix,
//! email domain, directory, identifier prefix, month) → numeric range → type
//! only. Destinations of side-effecting tools stay low on the ladder: they are
//! where an injected agent sends what it steals.

use super::classify::{self, ElementKind, Shape};
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
    /// Equal to an attribute of the call's session (not a ladder rung: it
    /// relates the value to whom the call is made for).
    Session,
    Literal,
    Pattern,
    Range,
    TypeOnly,
}

impl Rung {
    pub fn label(self) -> &'static str {
        match self {
            Rung::Session => "session",
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
    /// A set each element of which has one of these keys (its e-mail domain,
    /// URL origin or identifier pattern), through `context.derived`.
    Elements {
        kind: ElementKind,
        keys: Vec<String>,
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
    /// A read-only tool's lookup term (a query, names, keywords): what it
    /// looks up, not where it reads; any value passes.
    pub lookup: bool,
    /// Element kinds the schema derives attributes for (`context.derived`),
    /// for a set argument.
    pub derived: &'a [ElementKind],
    /// The catalogue lists the argument's values (`enum`): they are an enum
    /// even when they look like identifiers (`utf-8`).
    pub declared_enum: bool,
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
/// Identifiers whose prefixes are too many fall back to prefixes cut at the
/// first separator; a prefix-less identifier's pattern (`*`) subsumes the rest.
fn patterns(shapes: &BTreeSet<&Shape>, t: &Thresholds) -> Option<(PatternKind, Condition)> {
    let first = shapes.iter().next()?;
    let kind = pattern_kind(first)?;
    if shapes.iter().any(|s| pattern_kind(s) != Some(kind)) {
        return None;
    }
    let like = |found: BTreeSet<Vec<PatternPart>>| {
        let found = if found.contains(&vec![PatternPart::Wildcard]) {
            vec![vec![PatternPart::Wildcard]]
        } else {
            found.into_iter().collect()
        };
        Some((
            kind,
            Condition::Like {
                patterns: found,
                guards: classify::guards(first).to_vec(),
            },
        ))
    };
    for depth in (0..=t.path_depth).rev() {
        let found: Option<BTreeSet<Vec<PatternPart>>> =
            shapes.iter().map(|s| classify::pattern(s, depth)).collect();
        if let Some(found) = found {
            if found.len() <= t.max_patterns {
                return like(found);
            }
        }
    }
    if kind == PatternKind::Identifier {
        let found: Option<BTreeSet<Vec<PatternPart>>> =
            shapes.iter().map(|s| classify::kind_pattern(s)).collect();
        if let Some(found) = found.filter(|f| f.len() <= t.max_patterns) {
            return like(found);
        }
    }
    None
}

/// A `like` condition that only guards: its one pattern is `*`.
fn guards_only(condition: &Condition) -> bool {
    matches!(condition, Condition::Like { patterns, .. } if patterns == &[vec![PatternPart::Wildcard]])
}

/// How identifiers look, for the evidence: `#W` + 7 digits, 10 digits, 6 letters or digits.
fn id_structure(values: &[(&Entry, u64)]) -> String {
    let mut prefixes: BTreeSet<&str> = BTreeSet::new();
    let (mut low, mut high) = (usize::MAX, 0);
    let (mut digits, mut upper, mut lower) = (false, false, false);
    for (e, _) in values {
        let (Shape::Id { prefix }, Some(text)) = (&e.shape, e.value.as_str()) else {
            continue;
        };
        prefixes.insert(prefix);
        let serial = &text[prefix.len().min(text.len())..];
        low = low.min(serial.len());
        high = high.max(serial.len());
        digits |= serial.chars().any(|c| c.is_ascii_digit());
        upper |= serial.chars().any(|c| c.is_ascii_uppercase());
        lower |= serial
            .chars()
            .any(|c| c.is_ascii_lowercase() || !c.is_ascii_alphanumeric());
    }
    let one = low == 1 && high == 1;
    let alphabet = match (digits, upper, lower, one) {
        (true, false, false, true) => "digit",
        (true, false, false, false) => "digits",
        (false, true, false, true) => "upper-case letter",
        (false, true, false, false) => "upper-case letters",
        (_, true, false, _) => "upper-case letters and digits",
        (.., true) => "character",
        _ => "characters",
    };
    let length = if low == high {
        low.to_string()
    } else {
        format!("{low}–{high}")
    };
    let prefix = match prefixes.len() {
        0 => String::new(),
        1 if prefixes.contains("") => String::new(),
        1 => format!("`{}` + ", prefixes.first().expect("one")),
        n => format!("{n} prefixes + "),
    };
    format!("{prefix}{length} {alphabet}")
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

/// What an element key of this kind is, for the evidence.
pub fn element_key_label(kind: ElementKind) -> &'static str {
    match kind {
        ElementKind::Email => "e-mail domain",
        ElementKind::Url => "URL origin",
        ElementKind::Id => "identifier pattern",
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
            let counted = format!("{distinct} distinct in {} calls", input.calls);
            if input.lookup {
                return Decision {
                    secret,
                    ..type_only(
                        format!(
                            "what a read-only tool looks up (a query, a name: ≈{} distinct): any string passes",
                            input.distinct
                        ),
                        true,
                    )
                };
            }
            // Opaque ids of parameters generalise by their structure rather
            // than look like an enum because they repeat: the next customer's
            // order id is as good as this one's. (A preset that lists whatever
            // it can, `min_repeats: 0`, still lists them.)
            let ids = !input.declared_enum
                && t.min_repeats > 0.0
                && !shapes.is_empty()
                && shapes.iter().all(|s| matches!(s, Shape::Id { .. }));
            let pattern = patterns(&shapes, t);
            // Destinations prefer a list to a pattern unless the preset allows the kind; a
            // pattern that only guards is no reason to stop listing them.
            let preferred = pattern.clone().filter(|(kind, condition)| {
                input.role == Role::Parameter
                    || (t.destination_patterns.contains(kind) && !guards_only(condition))
            });
            if listable && enum_like && !(ids && input.role == Role::Parameter) {
                return literal(format!("enum-like: {counted}"));
            }
            let by_pattern = |(kind, condition): (PatternKind, Condition), why: &str| {
                let reason = if kind == PatternKind::Identifier {
                    let tested = if guards_only(&condition) {
                        "only the characters `/` and `..` are excluded"
                    } else {
                        "the prefix is tested"
                    };
                    format!(
                        "{why}identifiers ({}; ≈{} distinct): {tested}; Cedar `like` cannot test their length or alphabet",
                        id_structure(&input.values),
                        input.distinct
                    )
                } else {
                    format!(
                        "{why}≈{} distinct values share {} patterns",
                        input.distinct,
                        kind.label()
                    )
                };
                Decision {
                    rung: Rung::Pattern,
                    condition,
                    reason,
                    unconstrained: false,
                    secret,
                }
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
            let mut element_shapes: BTreeSet<&Shape> = BTreeSet::new();
            let mut occurrences = 0u64;
            for (e, _) in &input.values {
                let array = e.value.as_array().map(Vec::as_slice).unwrap_or_default();
                occurrences = occurrences.saturating_add(e.count.saturating_mul(array.len() as u64));
                for item in array {
                    if elements.insert(item.to_string()) {
                        items.push(item.clone());
                    }
                }
                if let Shape::Set(shapes) = &e.shape {
                    element_shapes.extend(shapes);
                }
            }
            items.sort_by_key(|a| a.to_string());
            if input.lookup {
                return type_only(
                    format!(
                        "names a read-only tool looks up ({} distinct elements): any set passes",
                        elements.len()
                    ),
                    true,
                );
            }
            let counted = format!("{} distinct elements in {} calls", elements.len(), input.calls);
            let listed = |why: String| Decision {
                rung: Rung::Literal,
                condition: Condition::SubsetOf(items.clone()),
                reason: why,
                unconstrained: false,
                secret: false,
            };
            // Every element of one kind the schema derives keys for: the set takes a pattern.
            let kind = element_shapes
                .iter()
                .map(|s| ElementKind::of(s))
                .reduce(|a, b| if a == b { a } else { None })
                .flatten()
                .filter(|k| input.derived.contains(k));
            let by_keys = kind.and_then(|kind| {
                let keys: BTreeSet<String> = element_shapes.iter().filter_map(|s| kind.key_of(s)).collect();
                (keys.len() <= t.max_patterns).then(|| Decision {
                    rung: Rung::Pattern,
                    reason: format!(
                        "every element's {}: {} seen ({counted})",
                        element_key_label(kind),
                        keys.len()
                    ),
                    condition: Condition::Elements {
                        kind,
                        keys: keys.into_iter().collect(),
                    },
                    unconstrained: false,
                    secret: false,
                })
            });
            let listable = input.exact && items.len() <= limit;
            let enum_like = occurrences as f64 >= t.min_repeats * elements.len() as f64;
            if kind == Some(ElementKind::Id)
                && input.role == Role::Parameter
                && !input.declared_enum
                && t.min_repeats > 0.0
            {
                if let Some(d) = by_keys {
                    return d;
                }
            }
            if listable && enum_like {
                return listed(format!("enum-like: {counted}"));
            }
            let allowed = |kind: ElementKind| {
                input.role == Role::Parameter
                    || t.destination_patterns.contains(&match kind {
                        ElementKind::Email => PatternKind::Email,
                        ElementKind::Url => PatternKind::Url,
                        ElementKind::Id => PatternKind::Identifier,
                    })
            };
            if let Some(d) = by_keys.clone().filter(|_| kind.is_some_and(allowed)) {
                return d;
            }
            if listable {
                return listed(match input.role {
                    Role::Destination => format!("destination of a side-effecting tool: {counted}, listed"),
                    Role::Parameter => counted,
                });
            }
            if let Some(d) = by_keys {
                return Decision {
                    reason: format!("too many to list: {}", d.reason),
                    ..d
                };
            }
            type_only(
                format!(
                    "more than {limit} distinct elements, not all of one kind the request mapping \
                     derives keys for (e-mail, URL, identifier): any set passes"
                ),
                true,
            )
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
            lookup: false,
            derived: &ElementKind::ALL,
            declared_enum: false,
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
            lookup: false,
            derived: &[],
            declared_enum: false,
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
    fn identifiers_of_parameters_are_never_an_enum() {
        let orders: Vec<Value> = (0..5).map(|i| json!(format!("#W{}", 2378150 + i))).collect();
        let d = run(ArgType::String, &orders, 500, Role::Parameter, Preset::Balanced);
        assert_eq!(d.rung, Rung::Pattern, "{d:?}");
        assert!(d.reason.contains("`#W` + 7 digits"), "{}", d.reason);
        assert!(d.reason.contains("cannot test their length"), "{}", d.reason);
        let items: Vec<Value> = (0..5).map(|i| json!(format!("100829223{i}"))).collect();
        let d = run(ArgType::String, &items, 500, Role::Parameter, Preset::Balanced);
        assert_eq!(
            d.condition,
            Condition::Like {
                patterns: vec![vec![PatternPart::Wildcard]],
                guards: vec!["*/*", "*..*"]
            }
        );
        // Destinations are still listed: a guard is no reason to stop.
        let d = run(ArgType::String, &items, 5, Role::Destination, Preset::Loose);
        assert_eq!(d.rung, Rung::Literal);
        // Per-customer prefixes, too many to list, fall back to the kind.
        let contacts: Vec<Value> = (0..20)
            .map(|i| {
                json!(format!(
                    "ct_{}{i}",
                    ["ab", "xy", "q", "rs", "tu", "vw", "k", "m", "n", "p"][i % 10]
                ))
            })
            .collect();
        let d = run(ArgType::String, &contacts, 20, Role::Parameter, Preset::Balanced);
        let Condition::Like { patterns, .. } = d.condition else {
            panic!("{d:?}")
        };
        assert_eq!(
            patterns,
            vec![vec![PatternPart::Literal("ct_".into()), PatternPart::Wildcard]]
        );
    }

    #[test]
    fn lookups_of_read_only_tools_take_anything() {
        let cities = [json!("Paris"), json!("London")];
        let es = entries(&cities);
        let input = LeafInput {
            ty: &ArgType::String,
            exact: true,
            values: es.iter().map(|e| (e, 50)).collect(),
            calls: 100,
            distinct: 2,
            leaf_calls: 100,
            secret_name: false,
            role: Role::Parameter,
            lookup: true,
            derived: &[],
            declared_enum: false,
        };
        let d = decide(&input, &Preset::Tight.thresholds());
        assert_eq!((d.rung, d.condition), (Rung::TypeOnly, Condition::Any));
    }

    #[test]
    fn sets_are_matched_element_by_element() {
        let sets: Vec<Value> = (0..40)
            .map(|i| json!([format!("u{i}@acme.com"), format!("p{i}@partner.io")]))
            .collect();
        let d = run(
            ArgType::Set(Box::new(ArgType::String)),
            &sets,
            40,
            Role::Destination,
            Preset::Balanced,
        );
        assert_eq!(
            d.condition,
            Condition::Elements {
                kind: ElementKind::Email,
                keys: vec!["acme.com".into(), "partner.io".into()]
            },
            "{d:?}"
        );
        let d = run(
            ArgType::Set(Box::new(ArgType::String)),
            &sets,
            40,
            Role::Destination,
            Preset::Tight,
        );
        assert_eq!(
            d.rung,
            Rung::Pattern,
            "80 addresses: too many to list, even for tight"
        );
        assert!(d.reason.starts_with("too many to list"), "{}", d.reason);
        let ids: Vec<Value> = (0..3).map(|i| json!([format!("100829223{i}")])).collect();
        let set = || ArgType::Set(Box::new(ArgType::String));
        let d = run(set(), &ids, 300, Role::Parameter, Preset::Balanced);
        assert_eq!(
            d.condition,
            Condition::Elements {
                kind: ElementKind::Id,
                keys: vec!["*".into()]
            },
            "ids are not an enum, in sets either"
        );
        let d = run(set(), &ids, 300, Role::Parameter, Preset::Tight);
        assert_eq!(d.rung, Rung::Literal, "tight lists what it can");
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
