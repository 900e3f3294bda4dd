//! Secrets known by what stands before them rather than by their own shape:
//! the value after a secret-named key (`password=…`, `"api_key": "…"`,
//! `Authorization: …`, `--token …`, `curl -u user:pass`) and the userinfo of a
//! URL (`scheme://user:password@host`). These run where a token ends, once the
//! key before the separator is known.

use super::auth::is_auth_scheme;
use super::names::{name_parts, secret_name};
use super::scan::{has_digit, run_end, Span};
use super::{SecretKind, PLACEHOLDER_OPEN};

/// `scheme://user:password@host`: the whole userinfo goes, since the user part
/// is sometimes the token (`https://TOKEN:x-oauth-basic@…`).
pub(super) fn url_userinfo(b: &[u8], i: usize) -> Option<Span> {
    if !b[i..].starts_with(b"://") {
        return None;
    }
    let us = i + 3;
    if b[us..].starts_with(PLACEHOLDER_OPEN.as_bytes()) {
        return None;
    }
    let ae = run_end(
        b,
        us,
        |c| {
            !c.is_ascii_whitespace()
                && !matches!(c, b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'`' | b'\\')
        },
        usize::MAX,
    );
    let at = b[us..ae].iter().rposition(|&c| c == b'@')? + us;
    (at > us && b[us..at].contains(&b':')).then_some(Span {
        start: us,
        end: at,
        kind: SecretKind::KnownToken,
    })
}

/// A value following a secret-named key: `password=…`, `"token": "…"`,
/// `Authorization: Bearer …`, `--password …`.
pub(super) fn key_value(b: &[u8], ks: usize, ke: usize) -> Option<Span> {
    let key = &b[ks..ke];
    // `curl -u user:password`: the flag is no secret name, its value is.
    let user_flag = key == b"-u" || key == b"--user";
    // The `secret:` inside an earlier placeholder is not a key.
    if (key.len() < 3 && !user_flag) || key.len() > 64 || b[..ks].ends_with("‹".as_bytes()) {
        return None;
    }
    let j = past_separator(b, key, ke)?;
    // Structure first, names second: most tokens never get this far.
    if !user_flag && !secret_name(key) {
        return None;
    }
    let (vs, ve, quoted) = value_at(b, key, skip_blanks(b, j));
    if !quoted && b.get(vs) == Some(&b'-') && key[0] == b'-' {
        return None;
    }
    // Keep `Bearer`/`Basic` visible; only the credential after it is secret.
    if let Some((cs, ce)) = credential_after_scheme(b, vs, ve, quoted) {
        return (!trivial_value(&b[cs..ce])).then_some(Span {
            start: cs,
            end: ce,
            kind: SecretKind::SecretName,
        });
    }
    let v = &b[vs..ve];
    if trivial_value(v) || (weak_secret_name(key) && !token_like(v)) || (user_flag && !v.contains(&b':')) {
        return None;
    }
    Some(Span {
        start: vs,
        end: ve,
        kind: SecretKind::SecretName,
    })
}

/// Where the value may start after the key ending at `ke`: past a quote
/// closing the key and an `=` or `:` (or, after a `--flag`, a blank). `None`
/// when no separator follows, so the key is no key.
fn past_separator(b: &[u8], key: &[u8], ke: usize) -> Option<usize> {
    let mut j = ke;
    if b.get(j) == Some(&b'\\') && b.get(j + 1).is_some_and(|&c| is_quote(c)) {
        j += 2;
    } else if b.get(j).is_some_and(|&c| is_quote(c)) {
        j += 1;
    }
    let quoted_key = j > ke;
    let blanks_from = j;
    j = skip_blanks(b, j);
    let had_blank = j > blanks_from;
    match b.get(j) {
        Some(b'=') if b.get(j + 1) != Some(&b'=') => j += 1,
        Some(b':') if b.get(j + 1) != Some(&b':') && !b[j + 1..].starts_with(b"//") => j += 1,
        // `--password hunter2` on a command line.
        _ if key[0] == b'-' && had_blank && !quoted_key => {}
        _ => return None,
    }
    Some(j)
}

/// The value starting at `j`, as `(start, end, quoted)`: up to its closing
/// quote (plain or backslash-escaped, as in JSON inside a string), to the end
/// of the line for a cookie header, or else to the first delimiter.
fn value_at(b: &[u8], key: &[u8], mut j: usize) -> (usize, usize, bool) {
    let n = b.len();
    let mut quote = None;
    if b.get(j) == Some(&b'\\') && b.get(j + 1).is_some_and(|&c| is_quote(c)) {
        quote = Some((b[j + 1], true));
        j += 2;
    } else if b.get(j).is_some_and(|&c| is_quote(c)) {
        quote = Some((b[j], false));
        j += 1;
    }
    let vs = j;
    let ve = match quote {
        Some((q, escaped)) => {
            let mut k = j;
            while k < n && b[k] != b'\n' && !(b[k] == q && (escaped || b[k - 1] != b'\\')) {
                k += 1;
            }
            if escaped && k > vs && b[k - 1] == b'\\' {
                k - 1
            } else {
                k
            }
        }
        None if key_part_is(key, b"cookie") => {
            run_end(b, j, |c| !matches!(c, b'\n' | b'\r' | b'"' | b'\''), usize::MAX)
        }
        None => run_end(b, j, is_value_byte, usize::MAX),
    };
    (vs, ve, quote.is_some())
}

/// The credential after a scheme word that starts the value (`Bearer abc`).
fn credential_after_scheme(b: &[u8], vs: usize, ve: usize, quoted: bool) -> Option<(usize, usize)> {
    let first_word_end = run_end(b, vs, |c| c.is_ascii_alphabetic(), 16);
    if !is_auth_scheme(&b[vs..first_word_end]) {
        return None;
    }
    let after = skip_blanks(b, first_word_end);
    let next_end = if quoted {
        ve
    } else {
        run_end(b, after, is_value_byte, usize::MAX)
    };
    (after > first_word_end && after < next_end).then_some((after, next_end))
}

fn is_quote(c: u8) -> bool {
    c == b'"' || c == b'\''
}

fn skip_blanks(b: &[u8], j: usize) -> usize {
    run_end(b, j, |c| c == b' ' || c == b'\t', 16)
}

fn is_value_byte(c: u8) -> bool {
    !c.is_ascii_whitespace()
        && !matches!(
            c,
            b'"' | b'\'' | b'`' | b',' | b';' | b'&' | b'<' | b'>' | b'(' | b')' | b'{' | b'}' | b'[' | b']'
        )
}

/// Values that carry no secret and that policy may need to see as they are:
/// empty, null-ish, booleans, masks, already-redacted text and `$ENV` references.
fn trivial_value(v: &[u8]) -> bool {
    if v.is_empty()
        || v.starts_with(PLACEHOLDER_OPEN.as_bytes())
        || v.iter().all(|&c| c == b'*' || c == b'x' || c == b'X')
    {
        return true;
    }
    const WORDS: &[&[u8]] = &[
        b"null",
        b"none",
        b"nil",
        b"true",
        b"false",
        b"undefined",
        b"redacted",
        b"[redacted]",
        b"<redacted>",
    ];
    if WORDS.iter().any(|w| v.eq_ignore_ascii_case(w)) {
        return true;
    }
    let inner = v
        .strip_prefix(b"${")
        .and_then(|r| r.strip_suffix(b"}"))
        .or_else(|| v.strip_prefix(b"$"));
    inner.is_some_and(|r| {
        !r.is_empty() && !r[0].is_ascii_digit() && r.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
    })
}

/// `session` and `auth` head prose as often as headers (`Session: Q3 planning`),
/// so their values must look like a token before they count.
fn weak_secret_name(key: &[u8]) -> bool {
    let mut last: &[u8] = &[];
    name_parts(key, |p| last = p);
    last.eq_ignore_ascii_case(b"session") || last.eq_ignore_ascii_case(b"auth")
}

fn token_like(v: &[u8]) -> bool {
    v.len() >= 8 && has_digit(v) && v.iter().any(u8::is_ascii_alphabetic)
}

fn key_part_is(key: &[u8], word: &[u8]) -> bool {
    let mut hit = false;
    name_parts(key, |p| hit |= p.eq_ignore_ascii_case(word));
    hit
}

#[cfg(test)]
mod tests {
    use super::super::{contains_secret, redact, redacted};

    #[test]
    fn secrets_after_secret_named_keys() {
        let cases = [
            ("password=hunter2", "hunter2"),
            ("{\"password\":\"hun\\\"ter2\",\"user\":\"bob\"}", "hun\\\"ter2"),
            ("user=bob&password=hunter2&next=/home", "hunter2"),
            ("{\"api_key\": \"abc123\", \"region\": \"eu\"}", "abc123"),
            ("{\\\"password\\\":\\\"p@ss w0rd\\\"}", "p@ss w0rd"),
            ("DB_PASSWORD=s3cr3t! ./run.sh", "s3cr3t!"),
            ("mysql -u root --password hunter2 app", "hunter2"),
            ("mysql -u root --password=hunter2 app", "hunter2"),
            ("X-Api-Key: 12345", "12345"),
            ("Authorization: token-abc", "token-abc"),
            ("Authorization: Bearer abc", "abc"),
            (
                "client_secret: 'correct horse battery staple'",
                "correct horse battery staple",
            ),
            ("Cookie: sid=abc; theme=dark\nAccept: */*", "sid=abc; theme=dark"),
            ("session=a8Kd02jfL2", "a8Kd02jfL2"),
            ("postgres://admin:hunter2@db.internal:5432/app", "admin:hunter2"),
            ("curl -u admin:Sup3rS3cret! https://x.io", "admin:Sup3rS3cret!"),
        ];
        for (text, secret) in cases {
            assert!(contains_secret(text), "{text}");
            let out = redact(text);
            assert_eq!(out, text.replacen(secret, &redacted(secret), 1), "{text}");
        }
    }
}
