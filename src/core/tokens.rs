//! A small Cedar tokenizer for two questions asked of every rule, cheaply:
//! its content fingerprint, and which `context.input` paths it reads.
//!
//! Cedar's own parser costs a few hundred microseconds per rule, and a fleet
//! has thousands of rules; these questions need tokens, not a syntax tree.

use super::mapping::SESSION_ROOT;
use sha2::{Digest, Sha256};

/// One token of Cedar source; whitespace and comments are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    /// An identifier or keyword.
    Ident(&'a str),
    /// A string literal, quotes and escapes as written.
    Str(&'a str),
    /// Anything else: numbers, operators, punctuation.
    Punct(&'a str),
}

/// Tokens of `source`; unterminated strings run to the end (the parser reports them).
pub fn tokenize(source: &str) -> Vec<Token<'_>> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if c == b'"' {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
            out.push(Token::Str(&source[start..i]));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push(Token::Ident(&source[start..i]));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Token::Punct(&source[start..i]));
        } else {
            let two = source.get(i..i + 2).unwrap_or("");
            let len = match two {
                "==" | "!=" | "<=" | ">=" | "&&" | "||" | "::" => 2,
                _ => source[i..].chars().next().map_or(1, char::len_utf8),
            };
            out.push(Token::Punct(&source[i..i + len]));
            i += len;
        }
    }
    out
}

/// Tokens after the leading annotations (`@name("value")` or `@name`).
fn skip_annotations<'t, 'a>(mut tokens: &'t [Token<'a>]) -> &'t [Token<'a>] {
    while let [Token::Punct("@"), Token::Ident(_), rest @ ..] = tokens {
        tokens = match rest {
            [Token::Punct("("), Token::Str(_), Token::Punct(")"), after @ ..] => after,
            _ => rest,
        };
    }
    tokens
}

/// The content fingerprint of one policy's source: SHA-256 over its tokens
/// without annotations, so reformatting and comments keep it and any change
/// to what the rule says breaks it.
pub fn fingerprint(policy_source: &str) -> String {
    let tokens = tokenize(policy_source);
    let mut hasher = Sha256::new();
    for token in skip_annotations(&tokens) {
        let text = match token {
            Token::Ident(t) | Token::Str(t) | Token::Punct(t) => t,
        };
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn string_value(literal: &str) -> String {
    let inner = literal
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or(literal);
    inner.replace("\\\"", "\"").replace("\\\\", "\\")
}

/// The `context.input` paths a policy reads as values, and the session
/// attributes it reads (as `["", name]`, see `mapping::SESSION_ROOT`); a read
/// of `context.derived.<arg>…` is a read of the argument. `has` tests are not
/// reads (presence is part of every call shape). `None` when the policy uses
/// `context`, `context.input`, `context.session` or `context.derived` as a
/// whole, so every value matters.
pub fn read_paths(policy_source: &str) -> Option<Vec<Vec<String>>> {
    let tokens = tokenize(policy_source);
    let mut paths = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] != Token::Ident("context")
            || matches!(tokens.get(i.wrapping_sub(1)), Some(Token::Punct(".")))
        {
            i += 1;
            continue;
        }
        // `context` must be followed by `.input`, `.session` or `.derived`
        // (or `has …`, or another attribute, which the mapping never sets).
        let root = match (tokens.get(i + 1), tokens.get(i + 2)) {
            (Some(Token::Punct(".")), Some(Token::Ident(name @ ("input" | "session" | "derived")))) => *name,
            (Some(Token::Punct(".")), Some(Token::Ident(_))) | (Some(Token::Ident("has")), _) => {
                i += 2;
                continue;
            }
            _ => return None,
        };
        let mut j = i + 3;
        let mut path = Vec::new();
        loop {
            match (tokens.get(j), tokens.get(j + 1), tokens.get(j + 2)) {
                // `.name(` is a method call on the path so far, not an attribute.
                (Some(Token::Punct(".")), Some(Token::Ident(_)), Some(Token::Punct("("))) => break,
                (Some(Token::Punct(".")), Some(Token::Ident(name)), _) => {
                    path.push(name.to_string());
                    j += 2;
                }
                (Some(Token::Punct("[")), Some(Token::Str(name)), Some(Token::Punct("]"))) => {
                    path.push(string_value(name));
                    j += 3;
                }
                _ => break,
            }
        }
        let presence_only = tokens.get(j) == Some(&Token::Ident("has"));
        if !presence_only {
            if path.is_empty() {
                return None;
            }
            match root {
                // `context.derived.cc.domains` is read from the argument `cc`.
                "derived" => path.truncate(1),
                "session" => path.insert(0, SESSION_ROOT.to_string()),
                _ => {}
            }
            paths.push(path);
        }
        i = j;
    }
    paths.sort();
    paths.dedup();
    Some(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_ignores_layout_comments_and_annotations() {
        let a = r#"@id("x") permit (principal, action, resource) when { context.input.a == "b c" };"#;
        let b = "// note\npermit(\n  principal,\n  action,\n  resource\n)\nwhen\n{\n  context.input.a == \"b c\"\n};";
        assert_eq!(fingerprint(a), fingerprint(b));
        let c = r#"permit (principal, action, resource) when { context.input.a == "b  c" };"#;
        assert_ne!(fingerprint(a), fingerprint(c), "string contents count");
        let d = r#"permit (principal, action, resource) when { context.input.a != "b c" };"#;
        assert_ne!(fingerprint(a), fingerprint(d));
    }

    #[test]
    fn read_paths_follow_attribute_chains() {
        let p = r#"permit (principal, action, resource) when {
            context.input has to && context.input.to like "*@a.com" &&
            !(context.input has bcc) && context.input.meta["x-y"] == 1 &&
            context.input.tags.contains("a") &&
            (if context.input has n.m then context.input.n.m > 2 else true) };"#;
        assert_eq!(
            read_paths(p).unwrap(),
            vec![
                vec!["meta".to_string(), "x-y".to_string()],
                vec!["n".to_string(), "m".to_string()],
                vec!["tags".to_string()],
                vec!["to".to_string()],
            ]
        );
    }

    #[test]
    fn session_and_derived_reads_are_followed() {
        let p = r#"permit (principal, action, resource) when {
            context has session && context.session has user &&
            context.input.user_id == context.session.user &&
            context.derived has cc && ["a.com"].containsAll(context.derived.cc.domains) };"#;
        assert_eq!(
            read_paths(p).unwrap(),
            vec![
                vec!["".to_string(), "user".to_string()],
                vec!["cc".to_string()],
                vec!["user_id".to_string()],
            ]
        );
        let whole = "permit (principal, action, resource) when { context.session == {} };";
        assert_eq!(read_paths(whole), None);
    }

    #[test]
    fn whole_context_reads_everything() {
        assert_eq!(
            read_paths(r#"permit (principal, action, resource) when { context.input == {} };"#),
            None
        );
        assert_eq!(
            read_paths(r#"permit (principal, action, resource) when { context == {} };"#),
            None
        );
        assert_eq!(
            read_paths("permit (principal, action, resource) when { context has input };"),
            Some(vec![])
        );
        assert_eq!(read_paths("permit (principal, action, resource);"), Some(vec![]));
    }

    #[test]
    fn strings_hide_their_contents() {
        let p = r#"permit (principal, action, resource) when { context.input.a == "context.input" };"#;
        assert_eq!(read_paths(p), Some(vec![vec!["a".to_string()]]));
    }
}
