//! HTTP auth schemes: the credential after `Bearer` or `Basic`. The scheme
//! word itself stays visible (it is policy context, not a secret), and prose
//! that merely mentions a scheme (`Bearer tokens are…`, `Basic plan`) is told
//! apart from a real credential.

use super::randomness::class_changes;
use super::scan::{run_end, Span};
use super::SecretKind;

fn starts_with_ignore_case(b: &[u8], i: usize, word: &[u8]) -> bool {
    b.len() >= i + word.len() && b[i..i + word.len()].eq_ignore_ascii_case(word)
}

/// Scheme words that may come before a credential; they are kept visible.
pub(super) fn is_auth_scheme(word: &[u8]) -> bool {
    [
        &b"bearer"[..],
        b"basic",
        b"token",
        b"digest",
        b"bot",
        b"negotiate",
    ]
    .iter()
    .any(|w| word.eq_ignore_ascii_case(w))
}

fn is_token68(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// `Bearer <token>` and `Basic <base64 of user:pass>`; the scheme word stays
/// visible because it is useful policy context and not secret.
pub(super) fn auth_scheme_at(b: &[u8], i: usize) -> Option<Span> {
    let basic = if starts_with_ignore_case(b, i, b"bearer") {
        false
    } else if starts_with_ignore_case(b, i, b"basic") {
        true
    } else {
        return None;
    };
    let mut j = i + if basic { 5 } else { 6 };
    if !matches!(b.get(j), Some(b' ' | b'\t')) {
        return None;
    }
    while matches!(b.get(j), Some(b' ' | b'\t')) {
        j += 1;
    }
    let vs = j;
    let mut ve = run_end(b, vs, is_token68, usize::MAX);
    // A sentence's full stop is not part of the token.
    while ve > vs && b[ve - 1] == b'.' {
        ve -= 1;
    }
    let mut end = ve;
    while end < b.len() && end - ve < 2 && b[end] == b'=' {
        end += 1;
    }
    let v = &b[vs..end];
    let ok = if basic {
        basic_credentials(v)
    } else {
        bearer_token(&b[vs..ve])
    };
    ok.then_some(Span {
        start: vs,
        end,
        kind: SecretKind::KnownToken,
    })
}

fn bearer_token(v: &[u8]) -> bool {
    // `Bearer tokens are…` in prose: a plain word is not a token.
    v.len() >= 8 && (v.iter().any(|c| !c.is_ascii_alphabetic()) || class_changes(v) >= 2 || v.len() >= 24)
}

/// Decodes the base64 without allocating, only to see the `user:pass` colon;
/// that is what tells a credential from `Basic plan` in prose.
fn basic_credentials(v: &[u8]) -> bool {
    if v.len() < 8 || !v.len().is_multiple_of(4) {
        return false;
    }
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in v {
        let val = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return false,
        };
        acc = (acc << 6) | u32::from(val);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if (acc >> bits) & 0xff == u32::from(b':') {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{contains_secret, detect, redact, redacted, SecretKind};

    #[test]
    fn bearer_and_basic_credentials() {
        assert_eq!(detect(&format!("Bearer {JWT}")), Some(SecretKind::KnownToken));
        assert_eq!(detect("Bearer 7f3k9Qz2Lm8Xv4Tb"), Some(SecretKind::KnownToken));
        assert_eq!(detect("Basic dXNlcjpwYXNzd29yZA=="), Some(SecretKind::KnownToken));
        assert_eq!(
            redact("Authorization: Basic dXNlcjpwYXNzd29yZA=="),
            format!("Authorization: Basic {}", redacted("dXNlcjpwYXNzd29yZA=="))
        );
        // Base64 without a user:pass colon is not a Basic credential.
        assert!(!contains_secret("Basic aGVsbG8gd29ybGQ="));
        assert!(!contains_secret("Bearer tokens are described in RFC 6750"));
        assert!(!contains_secret("bearer authentication"));
    }
}
