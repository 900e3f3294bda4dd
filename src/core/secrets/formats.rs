//! Token formats known by their shape: vendor prefixes (GitHub, GitLab,
//! Slack, OpenAI, Stripe, Google, Hugging Face, npm), AWS key ids, JWTs and
//! PEM private keys. These are certain where they match, so they are tried
//! before any heuristic, at the start of a word.

use super::scan::{has_digit, run_end, Span};
use super::SecretKind;

/// Bounds the look-ahead of prefix matchers so that a long run of near-misses
/// (`sk-a-sk-a-…`) stays linear.
const MAX_PREFIX_SCAN: usize = 512;

/// A format known by its prefix: which bytes its body has, how many at least,
/// and a last look at the body that tells it from an ordinary word.
struct Prefix {
    prefix: &'static [u8],
    body: fn(u8) -> bool,
    min_body: usize,
    check: fn(&[u8]) -> bool,
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn alnum_underscore(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}
fn alnum_dash(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}
fn b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}
fn any_body(_: &[u8]) -> bool {
    true
}
/// `sk-` also starts ordinary kebab-case words; keys always mix in digits or case.
fn digit_or_mixed_case(s: &[u8]) -> bool {
    has_digit(s) || (s.iter().any(u8::is_ascii_uppercase) && s.iter().any(u8::is_ascii_lowercase))
}

const fn p(prefix: &'static [u8], body: fn(u8) -> bool, min_body: usize, check: fn(&[u8]) -> bool) -> Prefix {
    Prefix {
        prefix,
        body,
        min_body,
        check,
    }
}

const PREFIXES: &[Prefix] = &[
    p(b"ghp_", alnum, 30, any_body),
    p(b"gho_", alnum, 30, any_body),
    p(b"ghu_", alnum, 30, any_body),
    p(b"ghs_", alnum, 30, any_body),
    p(b"ghr_", alnum, 30, any_body),
    p(b"github_pat_", alnum_underscore, 22, any_body),
    p(b"glpat-", b64url, 20, any_body),
    p(b"xoxb-", alnum_dash, 10, has_digit),
    p(b"xoxp-", alnum_dash, 10, has_digit),
    p(b"xoxa-", alnum_dash, 10, has_digit),
    p(b"xoxr-", alnum_dash, 10, has_digit),
    p(b"xoxs-", alnum_dash, 10, has_digit),
    p(b"xoxe-", alnum_dash, 10, has_digit),
    p(b"xapp-", alnum_dash, 10, has_digit),
    // Covers `sk-ant-…` and `sk-proj-…` too.
    p(b"sk-", b64url, 20, digit_or_mixed_case),
    p(b"sk_live_", alnum, 16, any_body),
    p(b"sk_test_", alnum, 16, any_body),
    p(b"rk_live_", alnum, 16, any_body),
    p(b"rk_test_", alnum, 16, any_body),
    p(b"whsec_", alnum, 20, any_body),
    p(b"AIza", b64url, 35, any_body),
    p(b"hf_", alnum, 30, any_body),
    p(b"npm_", alnum, 36, any_body),
];

pub(super) fn prefix_at(b: &[u8], i: usize) -> Option<Span> {
    let rest = &b[i..];
    for p in PREFIXES {
        if !rest.starts_with(p.prefix) {
            continue;
        }
        let bs = i + p.prefix.len();
        let scanned = run_end(b, bs, p.body, MAX_PREFIX_SCAN);
        if scanned - bs < p.min_body || !(p.check)(&b[bs..scanned]) {
            continue;
        }
        let end = run_end(b, scanned, p.body, usize::MAX);
        return Some(Span {
            start: i,
            end,
            kind: SecretKind::KnownToken,
        });
    }
    None
}

pub(super) fn aws_key_id_at(b: &[u8], i: usize) -> Option<Span> {
    let rest = &b[i..];
    if !(rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA")) || rest.len() < 20 {
        return None;
    }
    let body_ok = rest[4..20]
        .iter()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let ends = rest.get(20).is_none_or(|c| !c.is_ascii_alphanumeric());
    (body_ok && ends).then_some(Span {
        start: i,
        end: i + 20,
        kind: SecretKind::KnownToken,
    })
}

/// Three or more base64url segments joined by dots, the header being JSON
/// (`{"` encodes as `eyJ`).
pub(super) fn jwt_at(b: &[u8], i: usize, dead_until: &mut usize) -> Option<Span> {
    if i < *dead_until || !b[i..].starts_with(b"eyJ") {
        return None;
    }
    let n = b.len();
    let e1 = run_end(b, i, b64url, usize::MAX);
    // Every later `eyJ` inside this same segment ends at the same dot, so it
    // would fail the same way; remembering that keeps the scan linear.
    *dead_until = e1;
    if e1 - i < 10 || b.get(e1) != Some(&b'.') {
        return None;
    }
    let e2 = run_end(b, e1 + 1, b64url, usize::MAX);
    if e2 - (e1 + 1) < 4 || b.get(e2) != Some(&b'.') {
        return None;
    }
    let mut end = run_end(b, e2 + 1, b64url, usize::MAX);
    // JWE has five segments.
    while end + 1 < n && b[end] == b'.' && b64url(b[end + 1]) {
        end = run_end(b, end + 1, b64url, usize::MAX);
    }
    Some(Span {
        start: i,
        end,
        kind: SecretKind::KnownToken,
    })
}

pub(super) fn pem_at(b: &[u8], i: usize) -> Option<Span> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    if !b[i..].starts_with(BEGIN) {
        return None;
    }
    let ls = i + BEGIN.len();
    let le = run_end(b, ls, |c| c != b'-' && c != b'\n', 80);
    if !b[le..].starts_with(b"-----") || find(&b[ls..le], b"PRIVATE KEY").is_none() {
        return None;
    }
    let end = find(&b[le + 5..], b"-----END ")
        .and_then(|k| {
            let after = le + 5 + k + 9;
            find(&b[after..], b"-----").map(|m| after + m + 5)
        })
        .unwrap_or(b.len());
    Some(Span {
        start: i,
        end,
        kind: SecretKind::PrivateKey,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{contains_secret, detect, redact, redacted, SecretKind};

    #[test]
    fn known_token_formats_are_detected_whole() {
        for t in known_tokens() {
            assert_eq!(detect(t), Some(SecretKind::KnownToken), "{t}");
            assert!(contains_secret(t), "{t}");
            assert_eq!(redact(t), redacted(t), "{t}");
        }
    }

    #[test]
    fn known_token_near_misses_are_not_known_tokens() {
        for t in [
            "ghp_short",
            "AKIA1234",
            "AKIAIOSFODNN7EXAMPLEX",
            "akiaiosfodnn7example",
            "xoxb-nodigitshere",
            "sk-learn-is-a-python-library",
            "eyJhbGciOiJIUzI1NiJ9",
            "eyJhbGciOiJIUzI1NiJ9.payload",
            "AIzaTooShort",
            "taskghp_R8nDfT2k",
        ] {
            assert_ne!(detect(t), Some(SecretKind::KnownToken), "{t}");
        }
    }

    #[test]
    fn known_tokens_are_found_inside_text() {
        let texts = [
            format!("git clone https://{GHP}@github.com/acme/app.git"),
            format!("GITHUB_TOKEN={GHP} make release"),
            format!("curl -H 'Authorization: Bearer {JWT}' https://api.acme.com/v1/me"),
            format!("/auth/callback?id_token={JWT}&state=xyz"),
            "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE".to_string(),
            "key:AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI,".to_string(),
            "use sk_live_4eC39HqLyjWDarjtT1zdp7dc for prod".to_string(),
        ];
        for t in &texts {
            assert!(contains_secret(t), "{t}");
            assert_eq!(detect(t), None, "not a whole-value secret: {t}");
        }
    }

    #[test]
    fn private_keys() {
        assert_eq!(detect(PEM), Some(SecretKind::PrivateKey));
        assert_eq!(detect(&format!("{PEM}\n")), Some(SecretKind::PrivateKey));
        let openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----";
        assert_eq!(detect(openssh), Some(SecretKind::PrivateKey));
        // JSON-escaped newlines, as in a GCP service-account file.
        let escaped = "{\"type\": \"service_account\", \"key\": \"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\n-----END PRIVATE KEY-----\\n\"}";
        let out = redact(escaped);
        assert!(!out.contains("MIIEvQIBADANBg"), "{out}");
        assert!(
            out.starts_with("{\"type\": \"service_account\", \"key\": \"‹secret:"),
            "{out}"
        );
        // A truncated key is still redacted to the end.
        let truncated =
            "key follows: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5";
        assert_eq!(
            redact(truncated),
            format!("key follows: {}", redacted(&truncated[13..]))
        );
        assert!(!contains_secret("-----BEGIN PUBLIC KEY-----"));
        assert!(!contains_secret("-----BEGIN CERTIFICATE-----"));
    }
}
