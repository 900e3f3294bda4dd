//! Writing Cedar source text safely: string literals, `like` patterns, attribute paths.
//!
//! Every observed value that reaches a policy goes through here, so an argument
//! value can never break out of its literal and inject policy text.

use std::fmt::Write;

/// Words that cannot follow a `.` or `has` as a bare identifier.
const RESERVED: &[&str] = &[
    "true",
    "false",
    "if",
    "then",
    "else",
    "in",
    "is",
    "like",
    "has",
    "__cedar",
    "principal",
    "action",
    "resource",
    "context",
    "permit",
    "forbid",
    "when",
    "unless",
];

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&name)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0' => out.push_str("\\0"),
        c if c.is_control() => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// A Cedar string literal, quotes included.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        push_escaped(&mut out, c);
    }
    out.push('"');
    out
}

/// One piece of a `like` pattern.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternPart {
    Literal(String),
    Wildcard,
}

/// A `like` pattern literal, quotes included; literal `*` is escaped.
pub fn pattern(parts: &[PatternPart]) -> String {
    let mut out = String::from("\"");
    for part in parts {
        match part {
            PatternPart::Wildcard => out.push('*'),
            PatternPart::Literal(text) => {
                for c in text.chars() {
                    if c == '*' {
                        out.push_str("\\*");
                    } else {
                        push_escaped(&mut out, c);
                    }
                }
            }
        }
    }
    out.push('"');
    out
}

/// Whether `value` matches the pattern, with Cedar's `like` semantics.
pub fn pattern_matches(parts: &[PatternPart], value: &str) -> bool {
    fn go(parts: &[PatternPart], value: &str) -> bool {
        match parts.split_first() {
            None => value.is_empty(),
            Some((PatternPart::Literal(lit), rest)) => {
                value.strip_prefix(lit.as_str()).is_some_and(|v| go(rest, v))
            }
            Some((PatternPart::Wildcard, rest)) => value
                .char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(value.len()))
                .any(|i| go(rest, &value[i..])),
        }
    }
    go(parts, value)
}

/// `context.input.a.b` (bracketed where a name is not an identifier).
pub fn input_path(path: &[String]) -> String {
    context_path("input", path)
}

/// `context.<root>.a.b`, for `input`, `session` or `derived`.
pub fn context_path(root: &str, path: &[String]) -> String {
    let mut out = format!("context.{root}");
    for name in path {
        if is_identifier(name) {
            out.push('.');
            out.push_str(name);
        } else {
            out.push('[');
            out.push_str(&quote(name));
            out.push(']');
        }
    }
    out
}

/// The test that `context.<root>` has attribute `name`: `context.session has user`.
pub fn context_has(root: &str, name: &str) -> String {
    let attr = if is_identifier(name) {
        name.to_string()
    } else {
        quote(name)
    };
    format!("context.{root} has {attr}")
}

/// The test that `context.input.<path>` is present, safe for strict validation.
pub fn has_path(path: &[String]) -> String {
    if path.iter().all(|n| is_identifier(n)) {
        return format!("context.input has {}", path.join("."));
    }
    (0..path.len())
        .map(|i| {
            let name = &path[i];
            let attr = if is_identifier(name) {
                name.clone()
            } else {
                quote(name)
            };
            format!("{} has {attr}", input_path(&path[..i]))
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_neutralises_injection() {
        assert_eq!(quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(quote("x\u{1b}"), r#""x\u{1b}""#);
    }

    #[test]
    fn patterns_escape_stars() {
        let p = [PatternPart::Literal("a*b".into()), PatternPart::Wildcard];
        assert_eq!(pattern(&p), r#""a\*b*""#);
        assert!(pattern_matches(&p, "a*bzzz"));
        assert!(!pattern_matches(&p, "axbzzz"));
    }

    #[test]
    fn paths_bracket_non_identifiers() {
        let path = vec!["meta".to_string(), "user-id".to_string()];
        assert_eq!(input_path(&path), r#"context.input.meta["user-id"]"#);
        assert_eq!(
            has_path(&path),
            r#"context.input has meta && context.input.meta has "user-id""#
        );
        assert_eq!(has_path(&["in".to_string()]), r#"context.input has "in""#);
        assert_eq!(has_path(&["a".into(), "b".into()]), "context.input has a.b");
    }
}
