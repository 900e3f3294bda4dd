//! What an argument value looks like: a URL, an email address, a path, an
//! identifier, a date, free text or a secret. The structural key of a value is
//! everything a structural pattern can test about it, so two values with the same
//! key are allowed or denied together; that is what lets drafting summarise
//! millions of values by their keys.

use super::secrets;
use super::syntax::PatternPart;
use serde_json::Value;

/// How deep a URL or file path is kept in its key.
const MAX_KEY_DIRS: usize = 3;

/// The structural key of one value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Shape {
    /// `scheme://host[:port]` and the leading directories of the path.
    Url {
        origin: String,
        dirs: Vec<String>,
    },
    Email {
        domain: String,
    },
    /// `root` is `/`, `~/`, `C:\` or empty for relative paths.
    Path {
        root: String,
        sep: char,
        dirs: Vec<String>,
    },
    /// An identifier: a stable prefix such as `cust_`, `INV-` or `#W` and a serial part, or an
    /// opaque token with no prefix (`""`): all digits, or upper-case letters and digits.
    Id {
        prefix: String,
    },
    /// An ISO date or timestamp, by month.
    Date {
        month: String,
    },
    /// A number by sign and order of magnitude.
    Number {
        negative: bool,
        digits: u32,
    },
    Bool(bool),
    /// A set: the distinct shapes of its elements, sorted.
    Set(Vec<Shape>),
    /// Anything else: sentences, words, opaque tokens, composite values.
    Text,
    Secret,
}

impl Shape {
    pub fn kind(&self) -> &'static str {
        match self {
            Shape::Url { .. } => "url",
            Shape::Email { .. } => "email",
            Shape::Path { .. } => "path",
            Shape::Id { .. } => "identifier",
            Shape::Date { .. } => "date",
            Shape::Number { .. } => "number",
            Shape::Bool(_) => "boolean",
            Shape::Set(_) => "set",
            Shape::Text => "text",
            Shape::Secret => "secret",
        }
    }
}

/// The shape of a JSON value and whether it contains a secret anywhere.
/// `scan_free_text: false` skips the secret scan of text with whitespace, for
/// values that will only ever be keyed: free text never reaches a policy, and
/// what evidence shows of it is redacted when rendered.
pub fn classify(value: &Value, scan_free_text: bool) -> (Shape, bool) {
    match value {
        Value::String(s) => string_class(s, scan_free_text),
        Value::Bool(b) => (Shape::Bool(*b), false),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            let digits = if f.abs() < 1.0 {
                0
            } else {
                f.abs().log10().floor() as u32 + 1
            };
            let shape = Shape::Number {
                negative: f < 0.0,
                digits,
            };
            (shape, false)
        }
        // Elements are always scanned: one secret makes the whole set secret.
        Value::Array(items) => {
            let mut elements = std::collections::BTreeSet::new();
            for item in items {
                let (shape, secret) = match item {
                    Value::Array(_) | Value::Object(_) => (Shape::Text, false),
                    scalar => classify(scalar, true),
                };
                if secret {
                    return (Shape::Secret, true);
                }
                elements.insert(shape);
            }
            (Shape::Set(elements.into_iter().collect()), false)
        }
        _ => (Shape::Text, false),
    }
}

/// What structure a string has, by syntax alone (no secret detection): the
/// definition the request mapping derives element attributes from (README,
/// "The request mapping"). Drafting classifies with [`classify`], which adds
/// secrets on top and otherwise agrees with this.
pub fn structure(s: &str) -> Shape {
    if is_free_text(s) || s.contains("..") {
        return text_or_date(s);
    }
    url_shape(s).unwrap_or_else(|| non_url_structure(s))
}

fn is_free_text(s: &str) -> bool {
    s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The kinds of set element the request mapping derives attributes for, so
/// that a rule can require something of *every* element of a set argument
/// (Cedar has no "for all"): `context.derived.<arg>.<attribute>` is the set of
/// each element's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementKind {
    /// An e-mail address; its key is its domain.
    Email,
    /// A URL; its key is `scheme://host[:port]`.
    Url,
    /// An identifier; its key is the `like` pattern of its prefix (`#W*`, `*`).
    Id,
}

impl ElementKind {
    pub const ALL: [ElementKind; 3] = [ElementKind::Email, ElementKind::Url, ElementKind::Id];

    /// The attribute under `context.derived.<arg>`.
    pub fn attribute(self) -> &'static str {
        match self {
            ElementKind::Email => "domains",
            ElementKind::Url => "origins",
            ElementKind::Id => "id_patterns",
        }
    }

    pub fn from_attribute(name: &str) -> Option<ElementKind> {
        ElementKind::ALL.into_iter().find(|k| k.attribute() == name)
    }

    /// The kind of an element shape, if it is one.
    pub fn of(shape: &Shape) -> Option<ElementKind> {
        match shape {
            Shape::Email { .. } => Some(ElementKind::Email),
            Shape::Url { .. } => Some(ElementKind::Url),
            Shape::Id { .. } => Some(ElementKind::Id),
            _ => None,
        }
    }

    /// The key of an element of this kind; `None` for an element of another kind.
    pub fn key_of(self, shape: &Shape) -> Option<String> {
        match (self, shape) {
            (ElementKind::Email, Shape::Email { domain }) => Some(domain.clone()),
            (ElementKind::Url, Shape::Url { origin, .. }) => Some(origin.clone()),
            (ElementKind::Id, Shape::Id { prefix }) => Some(format!("{prefix}*")),
            _ => None,
        }
    }

    /// The key the request mapping derives for one element: `""` for an
    /// element that is not of this kind, which no drafted rule lists.
    pub fn key(self, element: &str) -> String {
        self.key_of(&structure(element)).unwrap_or_default()
    }
}

/// Text with spaces is free text, unless it starts with a date.
fn text_or_date(s: &str) -> Shape {
    if looks_like_date(s) {
        date_shape(s)
    } else {
        Shape::Text
    }
}

/// A URL keeps its shape when a secret sits only in its query or last
/// segment: the key never includes those parts.
fn string_class(s: &str, scan_free_text: bool) -> (Shape, bool) {
    let free_text = is_free_text(s);
    if free_text && !scan_free_text {
        return (text_or_date(s), false);
    }
    let secret = secrets::contains_secret(s);
    if !free_text && !s.contains("..") {
        if let Some(shape @ Shape::Url { .. }) = url_shape(s) {
            let Shape::Url { origin, dirs } = &shape else {
                unreachable!()
            };
            let key_secret =
                secrets::contains_secret(origin) || dirs.iter().any(|d| secrets::contains_secret(d));
            if !key_secret {
                return (shape, secret);
            }
        }
    }
    if secret {
        return (Shape::Secret, true);
    }
    if free_text || s.contains("..") {
        return (text_or_date(s), false);
    }
    (non_url_structure(s), false)
}

fn non_url_structure(s: &str) -> Shape {
    email_shape(s)
        .or_else(|| looks_like_date(s).then(|| date_shape(s)))
        .or_else(|| path_shape(s))
        .or_else(|| id_shape(s))
        .unwrap_or(Shape::Text)
}

fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '%' | '+')
}

fn url_shape(s: &str) -> Option<Shape> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    {
        return None;
    }
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    // Userinfo (`good.com@evil.com`) is a classic disguise: never generalise it.
    if authority.is_empty()
        || !authority
            .chars()
            .all(|c| is_plain(c) || c == ':' || c == '[' || c == ']')
    {
        return None;
    }
    if !path.starts_with('/') {
        return None;
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    let segments: Vec<&str> = path[1..].split('/').collect();
    // The last segment is the leaf (a file, an id): only directories before it form the key.
    let dirs = segments[..segments.len() - 1]
        .iter()
        .take(MAX_KEY_DIRS)
        .take_while(|seg| !seg.is_empty() && seg.chars().all(is_plain))
        .map(|seg| seg.to_string())
        .collect();
    Some(Shape::Url {
        origin: format!("{scheme}://{authority}"),
        dirs,
    })
}

fn email_shape(s: &str) -> Option<Shape> {
    let (local, domain) = s.split_once('@')?;
    let valid_local = !local.is_empty() && local.chars().all(|c| is_plain(c) || c == '\'');
    let valid_domain = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    (valid_local && valid_domain).then(|| Shape::Email {
        domain: domain.to_string(),
    })
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
        && (b.len() == 10 || b[10] == b'T' || b[10] == b' ')
}

fn date_shape(s: &str) -> Shape {
    Shape::Date {
        month: s[..7].to_string(),
    }
}

fn path_shape(s: &str) -> Option<Shape> {
    let (root, rest, sep) = if let Some(rest) = s.strip_prefix('/') {
        ("/", rest, '/')
    } else if let Some(rest) = s.strip_prefix("~/") {
        ("~/", rest, '/')
    } else if s.len() > 3 && s.as_bytes()[1] == b':' && s.as_bytes()[2] == b'\\' {
        (&s[..3], &s[3..], '\\')
    } else if s.contains('/') && !s.contains(':') {
        ("", s, '/')
    } else {
        return None;
    };
    let segments: Vec<&str> = rest.split(sep).collect();
    if segments.iter().any(|seg| {
        !seg.chars()
            .all(|c| is_plain(c) || c == '@' || c == '=' || c == ',')
    }) {
        return None;
    }
    let dirs = segments[..segments.len() - 1]
        .iter()
        .take(MAX_KEY_DIRS)
        .take_while(|seg| !seg.is_empty())
        .map(|seg| seg.to_string())
        .collect();
    Some(Shape::Path {
        root: root.to_string(),
        sep,
        dirs,
    })
}

/// An identifier, in one of four forms:
/// - letters, a separator (`-`, `_`, `:`), then a serial part with a digit;
///   the prefix runs up to the first digit (`cust_XP` of `cust_XP0042`), so an
///   agent's own id space is kept apart from another's;
/// - `#`, letters, then digits (`#W2378156`: prefix `#W`);
/// - all digits (`1008292230`): no prefix;
/// - upper-case letters and digits, 4 to 34 of them with a digit among them,
///   or exactly six (`ZFA04Y`, `VAAOXJ`, an IBAN): no prefix.
///
/// Letters without a separator are never a prefix: in `ZFA04Y` they are part
/// of the serial.
fn id_shape(s: &str) -> Option<Shape> {
    let id = |prefix: &str| {
        Some(Shape::Id {
            prefix: prefix.to_string(),
        })
    };
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if let Some(rest) = s.strip_prefix('#') {
        let letters = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let serial = &rest[letters..];
        return (!serial.is_empty() && serial.chars().all(|c| c.is_ascii_digit())).then(|| Shape::Id {
            prefix: s[..=letters].to_string(),
        });
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        return id("");
    }
    let upper = s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if upper && (s.len() == 6 || ((4..=34).contains(&s.len()) && s.chars().any(|c| c.is_ascii_digit()))) {
        return id("");
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':')
    {
        return None;
    }
    let sep = s.find(['-', '_', ':'])?;
    if sep == 0 || !s[..sep].chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    // An id carries a serial part; `in_progress` is a word, not an id.
    let first_digit = s[sep..].find(|c: char| c.is_ascii_digit())? + sep;
    id(&s[..first_digit])
}

/// A shorter identifier prefix, up to and including its first separator
/// (`ct_` of `ct_ab`), for when prefixes up to the first digit are too many.
pub fn kind_prefix(prefix: &str) -> &str {
    match prefix.find(['-', '_', ':']) {
        Some(i) => &prefix[..=i],
        None => prefix,
    }
}

/// The `like` pattern a structural key stands for, if it can be written as one.
/// `dirs_kept` shortens URL and path directories to a common prefix.
pub fn pattern(shape: &Shape, dirs_kept: usize) -> Option<Vec<PatternPart>> {
    use PatternPart::{Literal, Wildcard};
    match shape {
        Shape::Url { origin, dirs } => {
            let mut prefix = format!("{origin}/");
            for d in dirs.iter().take(dirs_kept) {
                prefix.push_str(d);
                prefix.push('/');
            }
            Some(vec![Literal(prefix), Wildcard])
        }
        Shape::Email { domain } => Some(vec![Wildcard, Literal(format!("@{domain}"))]),
        Shape::Path { root, sep, dirs } => {
            let kept: Vec<&String> = dirs.iter().take(dirs_kept).collect();
            if kept.is_empty() {
                // `/*` would allow the whole filesystem: not a useful pattern.
                return None;
            }
            let mut prefix = root.clone();
            for d in kept {
                prefix.push_str(d);
                prefix.push(*sep);
            }
            Some(vec![Literal(prefix), Wildcard])
        }
        Shape::Id { prefix } if prefix.is_empty() => Some(vec![Wildcard]),
        Shape::Id { prefix } => Some(vec![Literal(prefix.clone()), Wildcard]),
        // Dates keep their month only at the deepest setting: tomorrow's calls
        // rarely share today's month for long.
        Shape::Date { month } if dirs_kept >= 3 => Some(vec![Literal(format!("{month}-")), Wildcard]),
        Shape::Date { month } => Some(vec![Literal(format!("{}-", &month[..4])), Wildcard]),
        _ => None,
    }
}

/// The identifier pattern of `shape` with its prefix cut to the first
/// separator: the fallback when full prefixes are too many to list.
pub fn kind_pattern(shape: &Shape) -> Option<Vec<PatternPart>> {
    match shape {
        Shape::Id { prefix } => pattern(
            &Shape::Id {
                prefix: kind_prefix(prefix).to_string(),
            },
            0,
        ),
        _ => None,
    }
}

/// `like` patterns a value of this kind must NOT match, written into the
/// policy beside the pattern so that the generalisation cannot be abused.
pub fn guards(shape: &Shape) -> &'static [&'static str] {
    match shape {
        Shape::Url { .. } | Shape::Path { .. } => &["*..*"],
        Shape::Email { .. } => &["*@*@*", "*,*", "*;*"],
        Shape::Id { .. } => &["*/*", "*..*"],
        _ => &[],
    }
}

/// A guard pattern (`*` is the only wildcard) as pattern parts.
pub fn guard_parts(guard: &str) -> Vec<PatternPart> {
    let mut parts = Vec::new();
    for (i, piece) in guard.split('*').enumerate() {
        if i > 0 {
            parts.push(PatternPart::Wildcard);
        }
        if !piece.is_empty() {
            parts.push(PatternPart::Literal(piece.to_string()));
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string_shape(s: &str) -> Shape {
        string_class(s, true).0
    }
    use crate::core::syntax::pattern_matches;

    #[test]
    fn recognises_kinds() {
        assert_eq!(
            string_shape("https://api.acme.com/v1/customers/cust_1/invoices?x=1"),
            Shape::Url {
                origin: "https://api.acme.com".into(),
                dirs: vec!["v1".into(), "customers".into(), "cust_1".into()]
            }
        );
        assert_eq!(
            string_shape("ann@acme.com"),
            Shape::Email {
                domain: "acme.com".into()
            }
        );
        assert_eq!(string_shape("/srv/reports/q3.csv").kind(), "path");
        assert_eq!(
            string_shape("INV-2026-00123"),
            Shape::Id {
                prefix: "INV-".into()
            }
        );
        assert_eq!(
            string_shape("cust_XP0042"),
            Shape::Id {
                prefix: "cust_XP".into()
            }
        );
        assert_eq!(
            string_shape("2026-11-03"),
            Shape::Date {
                month: "2026-11".into()
            }
        );
        assert_eq!(string_shape("please refund the order"), Shape::Text);
        assert_eq!(string_shape("in_progress"), Shape::Text);
        assert_eq!(
            string_shape("ghp_0123456789abcdefghijABCDEFGHIJ012345"),
            Shape::Secret
        );
        // A token in the query does not hide where the URL goes.
        assert_eq!(
            string_shape("https://hooks.acme.com/v1/x?token=ghp_0123456789abcdefghijABCDEFGHIJ012345"),
            Shape::Url {
                origin: "https://hooks.acme.com".into(),
                dirs: vec!["v1".into()]
            }
        );
    }

    #[test]
    fn disguises_are_not_generalised() {
        assert_eq!(string_shape("https://good.com@evil.com/x"), Shape::Text);
        assert_eq!(string_shape("/srv/reports/../../etc/passwd"), Shape::Text);
        assert_eq!(string_shape("a@evil.com,b@acme.com"), Shape::Text);
    }

    #[test]
    fn every_value_matches_its_own_pattern() {
        for v in [
            "https://api.acme.com/v1/customers/cust_1",
            "https://api.acme.com/x",
            "ann@acme.com",
            "/srv/reports/2026/q3.csv",
            "C:\\data\\x.txt",
            "INV-2026-00123",
            "2026-11-03T10:00:00Z",
        ] {
            let s = string_shape(v);
            for depth in 0..4 {
                if let Some(p) = pattern(&s, depth) {
                    assert!(pattern_matches(&p, v), "{v} vs {p:?}");
                    for g in guards(&s) {
                        assert!(!pattern_matches(&guard_parts(g), v), "{v} hits guard {g}");
                    }
                }
            }
        }
    }

    #[test]
    fn identifiers_come_in_four_forms() {
        let id = |prefix: &str| Shape::Id {
            prefix: prefix.into(),
        };
        assert_eq!(string_shape("#W2378156"), id("#W"));
        assert_eq!(string_shape("1008292230"), id(""));
        assert_eq!(
            string_shape("ZFA04Y"),
            id(""),
            "six upper-case letters and digits"
        );
        assert_eq!(string_shape("VAAOXJ"), id(""));
        assert_eq!(string_shape("GB29NWBK60161331926819"), id(""), "an IBAN");
        assert_eq!(string_shape("credit_card_7815826"), id("credit_card_"));
        assert_eq!(
            string_shape("INBOX"),
            Shape::Text,
            "an upper-case word is not an id"
        );
        assert_eq!(string_shape("#general"), Shape::Text, "a channel is not an id");
        assert_eq!(kind_prefix("ct_ab"), "ct_");
        assert_eq!(kind_prefix("#W"), "#W");
        assert_eq!(pattern(&id(""), 0), Some(vec![PatternPart::Wildcard]));
        assert_eq!(kind_pattern(&id("cust_XP")), pattern(&id("cust_"), 0));
    }

    #[test]
    fn sets_are_shaped_by_their_elements_and_keyed_as_the_mapping_keys_them() {
        let (shape, secret) = classify(&serde_json::json!(["a@x.com", "b@y.com", "c@x.com"]), false);
        assert!(!secret);
        assert_eq!(
            shape,
            Shape::Set(vec![
                Shape::Email {
                    domain: "x.com".into()
                },
                Shape::Email {
                    domain: "y.com".into()
                }
            ])
        );
        let secret_set = serde_json::json!(["x", "ghp_0123456789abcdefghijABCDEFGHIJ012345"]);
        assert_eq!(classify(&secret_set, false), (Shape::Secret, true));
        assert_eq!(ElementKind::Email.key("a@x.com"), "x.com");
        assert_eq!(
            ElementKind::Email.key("a@evil.com,b@x.com"),
            "",
            "not an address: no key"
        );
        assert_eq!(ElementKind::Email.key("https://x.com/a"), "");
        assert_eq!(
            ElementKind::Url.key("https://h.acme.com/v1/x?token=1"),
            "https://h.acme.com"
        );
        assert_eq!(ElementKind::Url.key("https://good.com@evil.com/x"), "");
        assert_eq!(ElementKind::Id.key("#W2378156"), "#W*");
        assert_eq!(ElementKind::Id.key("1008292230"), "*");
        assert_eq!(ElementKind::Id.key("../../etc/passwd"), "");
        for (kind, value) in [
            (ElementKind::Email, "ann@acme.com"),
            (ElementKind::Url, "https://api.acme.com/v1/x"),
            (ElementKind::Id, "cust_XP0042"),
        ] {
            let drafted = kind.key_of(&classify(&Value::from(value), true).0);
            assert_eq!(
                drafted,
                Some(kind.key(value)),
                "drafting and the mapping agree on {value}"
            );
            assert_eq!(ElementKind::from_attribute(kind.attribute()), Some(kind));
        }
    }

    #[test]
    fn url_patterns_keep_the_host_boundary() {
        let s = string_shape("https://api.acme.com/v1/x");
        let p = pattern(&s, 1).unwrap();
        assert!(!pattern_matches(&p, "https://api.acme.com.evil.com/v1/x"));
        assert!(!pattern_matches(&p, "https://api.acme.com@evil.com/v1/x"));
    }
}
