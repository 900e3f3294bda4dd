//! Keeps secrets seen in observed tool-call arguments out of everything
//! shadowdraft writes (drafted Cedar policy, commits, PR bodies). Each secret
//! span becomes `‹secret:xxxxxxxx›`, a short stable hash that lets reviewers
//! tell secrets apart without seeing any of them.
//!
//! # What is detected
//!
//! * Known token formats: GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`,
//!   `github_pat_`), GitLab `glpat-`, Slack `xox[abeprs]-`/`xapp-`, OpenAI and
//!   Anthropic `sk-`/`sk-ant-`, Stripe `sk_live_`/`sk_test_`/`rk_*`/`whsec_`,
//!   Hugging Face `hf_`, npm `npm_`, AWS key ids `AKIA`/`ASIA`, Google `AIza`,
//!   JWTs, `Bearer`/`Basic` credentials and `user:password@` in URLs.
//! * PEM private keys, up to the END line, or to the end of the text when it
//!   is cut short: half a key is still a key.
//! * Card numbers: 13–19 digits, bare or grouped 4-4-4-4 or 4-6-5 by spaces or
//!   dashes, with an issuer prefix and a valid Luhn digit.
//! * High-entropy runs of `[A-Za-z0-9+/=_-]`: single-case hex of 32+ chars at
//!   3.0+ bits/char; other runs of 20+ chars that mix letters with digits or
//!   both cases at 3.5+ bits/char, switch character class on 10%+ of
//!   neighbouring pairs and are less than half English-looking words.
//! * Values after a secret-named key in text (`password=…`, `"api_key": "…"`,
//!   `Authorization: …`, `--token …`, `curl -u user:pass`).
//!
//! # What is not, and why
//!
//! UUIDs, ULIDs and 24-hex Mongo ObjectIds are ids that policy has to name.
//! Words glued by `_`, `-`, `/` or camelCase, dates, paths, URLs, numbers of up
//! to 12 digits and low-entropy runs are structure, not secrets. A short
//! password with no secret-named key beside it (`hunter2`) looks like any
//! other word, so only the argument's name can give it away. The other way
//! round, random-looking ids of 20+ chars (Drive file ids, git SHAs, trace ids,
//! base64 data) are redacted too: leaking a secret costs more than losing an
//! id from a draft.
//!
//! # Where each part lives
//!
//! `scan` walks the text once and calls the detectors: `formats` (vendor
//! prefixes, AWS key ids, JWTs, PEM keys), `auth` (`Bearer`/`Basic`), `cards`,
//! `key_value` (secret-named keys, URL userinfo) and `high_entropy`, which
//! judges runs with `randomness`. `names` and `vocabulary` decide which names
//! are secret names.

mod auth;
mod cards;
#[cfg(test)]
mod fixtures;
mod formats;
mod high_entropy;
mod key_value;
mod names;
mod randomness;
mod scan;
mod vocabulary;

use auth::is_auth_scheme;
use names::secret_name;
use scan::scan;
use sha2::{Digest, Sha256};

/// Why a value was judged to be a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretKind {
    KnownToken,
    PrivateKey,
    CardNumber,
    HighEntropy,
    SecretName,
}

impl SecretKind {
    /// A short human label, for diagnostics and PR bodies.
    pub fn label(self) -> &'static str {
        match self {
            SecretKind::KnownToken => "known token format",
            SecretKind::PrivateKey => "private key",
            SecretKind::CardNumber => "card number",
            SecretKind::HighEntropy => "high-entropy string",
            SecretKind::SecretName => "secret-named argument",
        }
    }
}

const PLACEHOLDER_OPEN: &str = "‹secret:";

/// The whole value looks like a secret (a token, key, card number or a
/// high-entropy string). Surrounding whitespace is ignored, and so is a leading
/// `Bearer`/`Basic` scheme word.
pub fn detect(value: &str) -> Option<SecretKind> {
    let t = value.trim();
    if t.is_empty() {
        return None;
    }
    let mut found = None;
    scan(t, &mut |sp| {
        let head = &t[..sp.start];
        let whole = sp.start == 0 || is_auth_scheme(head.trim_end().as_bytes());
        if whole && sp.end == t.len() {
            found = Some(sp.kind);
        }
        false
    });
    found
}

/// True when an argument's name says it carries a secret (`password`,
/// `api_key`, `clientSecret`, `X-Auth-Token`, `session_id`…), but not for
/// names that merely mention one (`token_count`, `max_tokens`, `tokenizer`,
/// `author`, `session_count`, `nextPageToken`, `secret_name`). A name that
/// held a secret and was redacted is one too.
pub fn is_secret_name(arg_name: &str) -> bool {
    secret_name(arg_name.as_bytes()) || arg_name.contains(PLACEHOLDER_OPEN)
}

/// True when `text` contains a secret anywhere: as the whole value, inside a URL
/// path or query, after `Bearer`, in free text or in `key=value` pairs; or
/// the placeholder a secret was redacted to (it still stands for one).
pub fn contains_secret(text: &str) -> bool {
    if text.contains(PLACEHOLDER_OPEN) {
        return true;
    }
    let mut found = false;
    scan(text, &mut |_| {
        found = true;
        false
    });
    found
}

/// `text` with every secret span replaced by `‹secret:xxxxxxxx›`; everything
/// else is kept byte for byte.
pub fn redact(text: &str) -> String {
    let mut out: Option<String> = None;
    let mut last = 0;
    scan(text, &mut |sp| {
        // Spans always fall on ASCII positions; widening is only a guard against
        // a future detector slicing inside a multi-byte character.
        let mut start = sp.start.max(last);
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = sp.end.max(start);
        while !text.is_char_boundary(end) {
            end += 1;
        }
        let start = start.max(last);
        let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
        o.push_str(&text[last..start]);
        push_placeholder(o, &text[start..end]);
        last = end;
        true
    });
    match out {
        Some(mut o) => {
            o.push_str(&text[last..]);
            o
        }
        None => text.to_owned(),
    }
}

/// `‹secret:xxxxxxxx›` for a whole value; a value that already is one is kept.
pub fn redacted(value: &str) -> String {
    if is_placeholder(value) {
        return value.to_string();
    }
    let mut o = String::with_capacity(PLACEHOLDER_OPEN.len() + 11);
    push_placeholder(&mut o, value);
    o
}

/// Exactly one `‹secret:xxxxxxxx›`.
fn is_placeholder(value: &str) -> bool {
    value
        .strip_prefix(PLACEHOLDER_OPEN)
        .and_then(|rest| rest.strip_suffix('›'))
        .is_some_and(|hash| hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Redact the secrets of a call's arguments in place, keys included: a
/// secret-named argument's string values become one placeholder each, any
/// other string and any key keeps everything but its secret spans. Applied
/// where observations enter (ingest, the node's reports), so no raw secret
/// is ever stored, folded or drafted from. Returns whether anything changed.
pub fn redact_arguments(args: &mut serde_json::Map<String, serde_json::Value>) -> bool {
    redact_record(args, false)
}

fn redact_record(record: &mut serde_json::Map<String, serde_json::Value>, secret_named: bool) -> bool {
    let mut changed = false;
    let renamed: Vec<(String, String)> = record
        .keys()
        .map(|key| (key.clone(), redact(key)))
        .filter(|(key, hidden)| key != hidden)
        .collect();
    for (key, hidden) in renamed {
        if let Some(value) = record.remove(&key) {
            record.insert(hidden, value);
            changed = true;
        }
    }
    for (key, value) in record.iter_mut() {
        changed |= redact_value(value, secret_named || is_secret_name(key));
    }
    changed
}

fn redact_value(value: &mut serde_json::Value, secret_named: bool) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            let hidden = if secret_named { redacted(s) } else { redact(s) };
            let changed = hidden != *s;
            *s = hidden;
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |c, v| redact_value(v, secret_named) | c),
        Value::Object(record) => redact_record(record, secret_named),
        _ => false,
    }
}

fn push_placeholder(out: &mut String, secret: &str) {
    // Eight hex chars tell secrets apart in a review without helping anyone
    // brute-force them back.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(secret.as_bytes());
    out.push_str(PLACEHOLDER_OPEN);
    for &byte in &digest[..4] {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0xf)] as char);
    }
    out.push('›');
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn labels_are_short_and_distinct() {
        let kinds = [
            SecretKind::KnownToken,
            SecretKind::PrivateKey,
            SecretKind::CardNumber,
            SecretKind::HighEntropy,
            SecretKind::SecretName,
        ];
        let labels: std::collections::BTreeSet<_> = kinds.iter().map(|k| k.label()).collect();
        assert_eq!(labels.len(), kinds.len());
        assert_eq!(SecretKind::CardNumber.label(), "card number");
    }

    #[test]
    fn arguments_are_redacted_in_values_and_names_once() {
        let key = "sk_live_51HqLyjWDarjtT1zdp7dc4kL9mQ2xVbN8rT5yU3iO";
        let mut args = serde_json::json!({
            "api_key": "correct-horse-battery",
            "url": format!("https://api.example.com/v1?token={key}"),
            "headers": {"Authorization": format!("Bearer {key}"), "Accept": "json"},
            key: 1,
            "amount": 12,
            "tags": ["ok", key],
        });
        let args = args.as_object_mut().unwrap();
        assert!(redact_arguments(args));
        let text = serde_json::Value::Object(args.clone()).to_string();
        assert!(!text.contains(key) && !text.contains("correct-horse"), "{text}");
        assert_eq!(
            (args["amount"].clone(), args["headers"]["Accept"].clone()),
            (12.into(), "json".into())
        );
        assert!(
            args.keys()
                .any(|k| k.starts_with(PLACEHOLDER_OPEN) && is_secret_name(k)),
            "{text}"
        );
        assert!(contains_secret(args["api_key"].as_str().unwrap()));
        let once = args.clone();
        assert!(!redact_arguments(args), "redacting twice changes nothing");
        assert_eq!(*args, once);
        let mut plain = serde_json::json!({"path": "/srv/reports/q3.csv", "limit": 20});
        assert!(!redact_arguments(plain.as_object_mut().unwrap()));
    }

    #[test]
    fn ordinary_values_are_left_alone() {
        for v in ordinary() {
            assert!(!contains_secret(v), "{v:?} -> {:?}", redact(v));
            assert_eq!(detect(v), None, "{v}");
            assert_eq!(redact(v), v);
        }
    }

    #[test]
    fn redaction_keeps_surrounding_text_byte_for_byte() {
        let text = format!("  «héllo» token:\t{GHP}\r\nnext line ✓ 4111-1111-1111-1111 fin");
        let out = redact(&text);
        assert_eq!(
            out,
            format!(
                "  «héllo» token:\t{}\r\nnext line ✓ {} fin",
                redacted(GHP),
                redacted("4111-1111-1111-1111")
            )
        );
    }

    #[test]
    fn same_secret_same_placeholder() {
        let a = redact(&format!("first {GHP} here"));
        let b = redact(&format!("{GHP} again, and {GHP}"));
        let p = redacted(GHP);
        assert!(a.contains(&p) && b.matches(&p).count() == 2);
        assert_ne!(redacted(GHP), redacted(AWS_SECRET));
        assert_eq!(p.chars().count(), "‹secret:xxxxxxxx›".chars().count());
        assert!(p.starts_with("‹secret:") && p.ends_with('›'));
        assert!(p["‹secret:".len()..p.len() - '›'.len_utf8()]
            .bytes()
            .all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn redaction_leaves_no_piece_of_a_secret_longer_than_four_chars() {
        let mut cases: Vec<(String, String)> = Vec::new();
        for s in known_tokens().into_iter().chain(high_entropy()).chain(cards()) {
            cases.push((s.to_string(), s.to_string()));
            cases.push((format!("value: \"{s}\" (from tool call)"), s.to_string()));
            cases.push((format!("https://example.com/x/{s}?a=1"), s.to_string()));
        }
        cases.push((PEM.to_string(), PEM.to_string()));
        cases.push(("password=hunter22".to_string(), "hunter22".to_string()));
        for (text, secret) in cases {
            let out = redact(&text);
            let s = secret.as_bytes();
            for w in s.windows(5) {
                let piece = std::str::from_utf8(w).unwrap();
                assert!(
                    !out.contains(piece),
                    "{piece:?} of {secret:?} survived in {out:?}"
                );
            }
        }
    }

    #[test]
    fn redaction_is_idempotent() {
        for t in [
            format!("Authorization: Bearer {JWT}"),
            "password=hunter2 and secret: x9".to_string(),
            format!("{AWS_SECRET} / 4111 1111 1111 1111"),
            "mongodb+srv://app:Pa55w0rd@cluster0.example.net/db".to_string(),
        ] {
            let once = redact(&t);
            assert_eq!(redact(&once), once);
        }
    }

    #[test]
    fn detect_is_about_the_whole_value() {
        assert_eq!(detect(&format!("  {GHP}\n")), Some(SecretKind::KnownToken));
        assert_eq!(detect(&format!("see {GHP}")), None);
        assert_eq!(detect("password=hunter2"), None);
        assert_eq!(detect("hunter2"), None);
        assert_eq!(detect("   "), None);
    }

    #[test]
    fn pathological_inputs_stay_fast() {
        // Quadratic behaviour would take minutes on these in a debug build.
        let n = 20_000;
        for unit in [
            "sk-a",
            "eyJa_",
            "=",
            "a=",
            "-----BEGIN ",
            "1 ",
            "a/",
            "password=",
            "ghp_",
            "Bearer ",
            "://",
            "x",
            "/a",
            "a-b_",
            "--token ",
            "4111 ",
        ] {
            let s = unit.repeat(n);
            let _ = contains_secret(&s);
            let _ = redact(&s);
        }
        // One huge token: judged once, and a repeating pattern is no secret.
        assert!(!contains_secret(&"Ab1".repeat(100_000)));
        let huge_key = "Zr4pL8qN2vX7tB1mK9cW3yH6jF0sD5gA".repeat(10_000);
        assert_eq!(redact(&huge_key), redacted(&huge_key));
    }
}
