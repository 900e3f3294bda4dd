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

/// Hex tokens shorter than this are ids (Mongo ObjectIds are 24), not keys.
const HEX_MIN_LEN: usize = 32;
/// Random hex averages ~3.7 bits/char at 32 chars; hashes of text do too.
const HEX_MIN_ENTROPY: f64 = 3.0;
const MIXED_MIN_LEN: usize = 20;
/// Random base62 of 20 chars averages ~4.0 bits/char; identifiers rarely pass 3.5.
const MIXED_MIN_ENTROPY: f64 = 3.5;
/// Share of a token covered by word-like letter runs above which it reads as
/// glued words (`getCustomerInvoiceById2024`) rather than random characters.
const MAX_WORDINESS: f64 = 0.5;
/// Random tokens switch between lower case, upper case and digits on 30–45% of
/// adjacent pairs; below 10% a token is long runs of one class, i.e. words and
/// numbers glued together.
const MIN_CLASS_CHANGE_RATE: f64 = 0.1;
/// Bounds the look-ahead of prefix matchers so that a long run of near-misses
/// (`sk-a-sk-a-…`) stays linear.
const MAX_PREFIX_SCAN: usize = 512;

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
/// `author`, `session_count`, `nextPageToken`, `secret_name`).
pub fn is_secret_name(arg_name: &str) -> bool {
    secret_name(arg_name.as_bytes())
}

/// True when `text` contains a secret anywhere: as the whole value, inside a URL
/// path or query, after `Bearer`, in free text or in `key=value` pairs.
pub fn contains_secret(text: &str) -> bool {
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

/// `‹secret:xxxxxxxx›` for a whole value.
pub fn redacted(value: &str) -> String {
    let mut o = String::with_capacity(PLACEHOLDER_OPEN.len() + 11);
    push_placeholder(&mut o, value);
    o
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
    kind: SecretKind,
}

/// Reports secret spans in order, never overlapping, until `emit` returns false.
///
/// One pass: detectors anchored on a distinctive start (prefixes, `eyJ`, card
/// digits, `-----BEGIN`, `Bearer`) are tried where a word starts, everything
/// else is collected into tokens that are judged once when they end.
fn scan(text: &str, emit: &mut dyn FnMut(Span) -> bool) {
    let b = text.as_bytes();
    let n = b.len();
    let mut i = 0;
    let mut tok: Option<usize> = None;
    let mut jwt_dead_until = 0;
    while i < n {
        let c = b[i];
        if i == 0 || !b[i - 1].is_ascii_alphanumeric() {
            if let Some(sp) = anchored_at(b, i, &mut jwt_dead_until) {
                if let Some(ts) = tok.take() {
                    if !token_spans(b, ts, i, emit) {
                        return;
                    }
                }
                if !emit(sp) {
                    return;
                }
                i = sp.end;
                continue;
            }
        }
        if is_token_byte(c) {
            tok.get_or_insert(i);
            i += 1;
            // No word starts inside an alphanumeric run: skip it in one go.
            if c.is_ascii_alphanumeric() {
                while i < n && b[i].is_ascii_alphanumeric() {
                    i += 1;
                }
            }
            continue;
        }
        if c == b'=' && tok.is_some() {
            if let Some(k) = padding_len(b, i) {
                i += k;
                continue;
            }
        }
        if let Some(ts) = tok.take() {
            if !token_spans(b, ts, i, emit) {
                return;
            }
            if let Some(sp) = key_value(b, ts, i) {
                if !emit(sp) {
                    return;
                }
                i = sp.end;
                continue;
            }
        }
        if c == b':' {
            if let Some(sp) = url_userinfo(b, i) {
                if !emit(sp) {
                    return;
                }
                i = sp.end;
                continue;
            }
        }
        i += 1;
    }
    if let Some(ts) = tok {
        token_spans(b, ts, n, emit);
    }
}

/// `=` belongs to a token only as base64 padding; elsewhere it separates a key
/// from its value and must not glue them into one token.
fn is_token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'_' | b'-')
}

fn padding_len(b: &[u8], i: usize) -> Option<usize> {
    let k = b[i..].iter().take(3).take_while(|&&c| c == b'=').count();
    let next = b.get(i + k).copied();
    if k <= 2 && !next.is_some_and(|c| is_token_byte(c) || c == b'=') {
        Some(k)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Detectors anchored at the start of a word.

fn anchored_at(b: &[u8], i: usize, jwt_dead_until: &mut usize) -> Option<Span> {
    match b[i] {
        b'-' => pem_at(b, i),
        b'0'..=b'9' => card_at(b, i),
        b'e' => jwt_at(b, i, jwt_dead_until),
        b'A' => aws_key_id_at(b, i).or_else(|| prefix_at(b, i)),
        b'B' | b'b' => auth_scheme_at(b, i),
        b'g' | b'x' | b's' | b'r' | b'w' | b'h' | b'n' => prefix_at(b, i),
        _ => None,
    }
}

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
fn has_digit(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_digit)
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

fn prefix_at(b: &[u8], i: usize) -> Option<Span> {
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

fn run_end(b: &[u8], from: usize, pred: fn(u8) -> bool, cap: usize) -> usize {
    let limit = b.len().min(from.saturating_add(cap));
    let mut j = from;
    while j < limit && pred(b[j]) {
        j += 1;
    }
    j
}

fn aws_key_id_at(b: &[u8], i: usize) -> Option<Span> {
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
fn jwt_at(b: &[u8], i: usize, dead_until: &mut usize) -> Option<Span> {
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

fn pem_at(b: &[u8], i: usize) -> Option<Span> {
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

fn starts_with_ignore_case(b: &[u8], i: usize, word: &[u8]) -> bool {
    b.len() >= i + word.len() && b[i..i + word.len()].eq_ignore_ascii_case(word)
}

fn is_auth_scheme(word: &[u8]) -> bool {
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
fn auth_scheme_at(b: &[u8], i: usize) -> Option<Span> {
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
    if v.len() < 8 || v.len() % 4 != 0 {
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

fn card_at(b: &[u8], i: usize) -> Option<Span> {
    // The fraction digits of a decimal are not a card.
    if i >= 2 && b[i - 1] == b'.' && b[i - 2].is_ascii_digit() {
        return None;
    }
    let n = b.len();
    let mut digits = [0u8; 19];
    let mut nd = 0;
    let mut groups = [0u8; 8];
    let mut ng = 0;
    let mut sep = 0u8;
    let mut first_end = i;
    let mut j = i;
    let mut overflow = false;
    loop {
        let gs = j;
        while j < n && b[j].is_ascii_digit() {
            if nd == digits.len() {
                overflow = true;
                break;
            }
            digits[nd] = b[j] - b'0';
            nd += 1;
            j += 1;
        }
        if overflow {
            break;
        }
        groups[ng] = (j - gs) as u8;
        ng += 1;
        if ng == 1 {
            first_end = j;
        }
        let next_sep = b.get(j).copied().filter(|&c| c == b' ' || c == b'-');
        match next_sep {
            Some(c)
                if ng < groups.len()
                    && (sep == 0 || sep == c)
                    && b.get(j + 1).is_some_and(u8::is_ascii_digit) =>
            {
                sep = c;
                j += 1;
            }
            _ => break,
        }
    }
    let trailing_ok = |e: usize| !b.get(e).is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_');
    let grouped = !overflow && ng > 1 && card_grouping(&groups[..ng]) && trailing_ok(j);
    let (len, end) = if grouped {
        (nd, j)
    } else {
        // The run did not group like a card; the first block alone still may be one.
        (usize::from(groups[0]), first_end)
    };
    if !grouped && (groups[0] == 0 || !trailing_ok(first_end) || (overflow && ng == 1)) {
        return None;
    }
    let d = &digits[..len];
    (len >= 13 && card_prefix(d) && luhn(d)).then_some(Span {
        start: i,
        end,
        kind: SecretKind::CardNumber,
    })
}

fn card_grouping(g: &[u8]) -> bool {
    let (last, body) = g.split_last().expect("at least one group");
    let fours = body.iter().all(|&x| x == 4) && (1..=4).contains(last);
    fours || g == [4, 6, 5] || g == [4, 6, 4]
}

/// Issuer prefixes: without them every 10th long numeric id (timestamps, order
/// ids starting with a year) would pass Luhn and be called a card.
fn card_prefix(d: &[u8]) -> bool {
    let two = d[0] * 10 + d[1];
    let four = u16::from(two) * 100 + u16::from(d[2] * 10 + d[3]);
    match d[0] {
        4..=6 => true,
        3 => match two {
            34 | 37 => d.len() == 15,
            30 | 35 | 36 | 38 | 39 => d.len() >= 14,
            _ => false,
        },
        2 => (2221..=2720).contains(&four) && d.len() == 16,
        _ => false,
    }
}

fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &x)| {
            let x = u32::from(x);
            if k % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum % 10 == 0
}

// ---------------------------------------------------------------------------
// Detectors run when something else ends.

/// `scheme://user:password@host`: the whole userinfo goes, since the user part
/// is sometimes the token (`https://TOKEN:x-oauth-basic@…`).
fn url_userinfo(b: &[u8], i: usize) -> Option<Span> {
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
fn key_value(b: &[u8], ks: usize, ke: usize) -> Option<Span> {
    let n = b.len();
    let key = &b[ks..ke];
    // `curl -u user:password`: the flag is no secret name, its value is.
    let user_flag = key == b"-u" || key == b"--user";
    // The `secret:` inside an earlier placeholder is not a key.
    if (key.len() < 3 && !user_flag) || key.len() > 64 || b[..ks].ends_with("‹".as_bytes()) {
        return None;
    }
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
    // Structure first, names second: most tokens never get this far.
    if !user_flag && !secret_name(key) {
        return None;
    }
    j = skip_blanks(b, j);
    let mut quote = None;
    if b.get(j) == Some(&b'\\') && b.get(j + 1).is_some_and(|&c| is_quote(c)) {
        quote = Some((b[j + 1], true));
        j += 2;
    } else if b.get(j).is_some_and(|&c| is_quote(c)) {
        quote = Some((b[j], false));
        j += 1;
    }
    let mut vs = j;
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
    if quote.is_none() && b.get(vs) == Some(&b'-') && key[0] == b'-' {
        return None;
    }
    // Keep `Bearer`/`Basic` visible; only the credential after it is secret.
    let first_word_end = run_end(b, vs, |c| c.is_ascii_alphabetic(), 16);
    if is_auth_scheme(&b[vs..first_word_end]) {
        let after = skip_blanks(b, first_word_end);
        let next_end = if quote.is_some() {
            ve
        } else {
            run_end(b, after, is_value_byte, usize::MAX)
        };
        if after > first_word_end && after < next_end {
            vs = after;
            return (!trivial_value(&b[vs..next_end])).then_some(Span {
                start: vs,
                end: next_end,
                kind: SecretKind::SecretName,
            });
        }
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

// ---------------------------------------------------------------------------
// Generic high-entropy tokens.

/// Separators split a token into segments. Segments that are words and UUIDs
/// anchor the token as structured text; each run of other segments between
/// anchors is judged on its own, which keeps `https://hooks.slack.com/services/`
/// visible while the webhook's random tail is redacted.
fn token_spans(b: &[u8], ts: usize, te: usize, emit: &mut dyn FnMut(Span) -> bool) -> bool {
    // Random runs need a digit or an upper-case letter (`looks_random`), so
    // lower-case words and paths are done without looking at their words.
    let tok = &b[ts..te];
    if tok.len() < MIXED_MIN_LEN || !tok.iter().any(|c| c.is_ascii_digit() || c.is_ascii_uppercase()) {
        return true;
    }
    // One short word inside an otherwise random token is more likely chance
    // than structure (`fvZAg+irmr/P0Nag…`), unless the token is a path.
    let mut inner_anchors = 0;
    let mut short_anchor = false;
    for_each_segment(b, ts, te, |s, e, anchor, lead| {
        if anchor && !lead {
            inner_anchors += 1;
            short_anchor = e - s <= 5;
        }
    });
    let ignore_inner = inner_anchors == 1 && short_anchor && b[ts] != b'/';
    let mut units = Units {
        b,
        te,
        pending: None,
        prev: None,
        gap: 0,
    };
    let mut unit: Option<(usize, usize)> = None;
    let mut ok = true;
    for_each_segment(b, ts, te, |s, e, anchor, lead| {
        if !ok {
            return;
        }
        if anchor && (lead || !ignore_inner) {
            if let Some(u) = unit.take() {
                ok = units.close(u, emit);
            }
            units.gap += 1;
        } else {
            unit = Some((unit.map_or(s, |u| u.0), e));
        }
    });
    if let (true, Some(u)) = (ok, unit) {
        ok = units.close(u, emit);
    }
    ok && units.finish(emit)
}

/// Calls `f(start, end, is_anchor, leads)` for each segment of the token
/// `b[ts..te]`, where `leads` means it starts the token or a path segment.
fn for_each_segment(b: &[u8], ts: usize, te: usize, mut f: impl FnMut(usize, usize, bool, bool)) {
    let mut p = ts;
    let mut first = true;
    while p < te {
        if is_separator(b[p]) {
            p += 1;
            continue;
        }
        let s = p;
        let uuid_end = uuid_at(b, p, te);
        p = uuid_end.unwrap_or_else(|| run_end(b, s, |c| !is_separator(c), te - s));
        let seg = &b[s..p];
        // What starts the token or a path segment is where names go: a short
        // lowercase prefix there names the kind of id (`ami-`, `org_`) and must
        // not make the id look longer than it is. Elsewhere three letters are
        // as likely a chance piece of random base64 as a word.
        let lead = first || b[s - 1] == b'/';
        let type_prefix = lead
            && p < te
            && matches!(b[p], b'-' | b'_')
            && seg.len() <= 8
            && seg.iter().all(u8::is_ascii_lowercase);
        let word = is_anchor(seg) && (seg.len() >= 4 || lead);
        let id = uuid_end.is_some() || is_ulid(seg) || is_compact_timestamp(seg);
        f(s, p, id || type_prefix || word, lead);
        first = false;
    }
}

/// Judges the runs between anchors of one token in order. A chance word inside
/// random base64 would otherwise leave the key's other pieces in the clear, so
/// a random run also takes the key-like runs one word away from it.
struct Units<'a> {
    b: &'a [u8],
    te: usize,
    /// A random run whose span may still grow to the right.
    pending: Option<(usize, usize)>,
    /// The last run judged not random, which a random run may take over.
    prev: Option<(usize, usize)>,
    /// Anchors since the last run; a run further away is separate text.
    gap: usize,
}

impl Units<'_> {
    fn close(&mut self, (s, e): (usize, usize), emit: &mut dyn FnMut(Span) -> bool) -> bool {
        let unit = &self.b[s..e];
        let near = std::mem::take(&mut self.gap) <= 1;
        if looks_random(unit) {
            if !self.finish(emit) {
                return false;
            }
            let start = match self.prev.take() {
                Some((ps, pe)) if near && looks_like_key_piece(&self.b[ps..pe]) => ps,
                _ => s,
            };
            self.pending = Some((start, e));
            return true;
        }
        match self.pending {
            Some((ps, _)) if near && looks_like_key_piece(unit) => {
                self.pending = Some((ps, e));
                self.prev = None;
                true
            }
            _ => {
                self.prev = Some((s, e));
                self.finish(emit)
            }
        }
    }

    fn finish(&mut self, emit: &mut dyn FnMut(Span) -> bool) -> bool {
        let Some((s, e)) = self.pending.take() else {
            return true;
        };
        let end = run_end(self.b, e, |c| c == b'=', (self.te - e).min(2));
        emit(Span {
            start: s,
            end,
            kind: SecretKind::HighEntropy,
        })
    }
}

/// Mixes letters with digits or both cases, as base64 pieces do and path
/// words (`v1`, `2024`, `files`) do not.
fn looks_like_key_piece(s: &[u8]) -> bool {
    let lower = s.iter().any(u8::is_ascii_lowercase);
    let upper = s.iter().any(u8::is_ascii_uppercase);
    let digit = has_digit(s);
    s.len() >= 3 && (lower || upper) && (digit || (lower && upper))
}

fn is_separator(c: u8) -> bool {
    matches!(c, b'/' | b'_' | b'-' | b'+' | b'=')
}

/// 8-4-4-4-12 hex at a segment start, ending the token or a segment.
fn uuid_at(b: &[u8], p: usize, te: usize) -> Option<usize> {
    const SHAPE: &[u8; 36] = b"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    let end = p + SHAPE.len();
    if end > te || (end < te && !is_separator(b[end])) {
        return None;
    }
    let ok = b[p..end].iter().zip(SHAPE).all(|(&c, &s)| {
        if s == b'-' {
            c == b'-'
        } else {
            c.is_ascii_hexdigit()
        }
    });
    ok.then_some(end)
}

/// ULIDs are ids like UUIDs: 26 Crockford base32 chars whose leading
/// timestamp starts `01` for every date from 2005 to 2039.
fn is_ulid(seg: &[u8]) -> bool {
    let crockford = |c: &u8| {
        let c = c.to_ascii_uppercase();
        c.is_ascii_digit() || (c.is_ascii_uppercase() && !matches!(c, b'I' | b'L' | b'O' | b'U'))
    };
    seg.len() == 26
        && seg.starts_with(b"01")
        && seg.iter().all(crockford)
        && (seg.iter().all(|c| !c.is_ascii_lowercase()) || seg.iter().all(|c| !c.is_ascii_uppercase()))
}

/// `20240915T102233Z`, as in run ids and object keys.
fn is_compact_timestamp(seg: &[u8]) -> bool {
    let seg = seg.strip_suffix(b"Z").unwrap_or(seg);
    seg.len() >= 13
        && seg.len() <= 15
        && seg[8] == b'T'
        && seg.iter().enumerate().all(|(k, c)| k == 8 || c.is_ascii_digit())
}

/// A whole segment that is one word (`services`, `Library`, `EXPORT`).
fn is_anchor(seg: &[u8]) -> bool {
    let lower = seg.iter().all(u8::is_ascii_lowercase);
    let upper = seg.len() >= 4 && seg.iter().all(u8::is_ascii_uppercase);
    let capitalized =
        seg.len() >= 4 && seg[0].is_ascii_uppercase() && seg[1..].iter().all(u8::is_ascii_lowercase);
    (lower || upper || capitalized) && word_like(seg)
}

/// For each first letter (row) the second letters (bit 0 = `a`) of the 334
/// letter pairs that make up 99% of the pairs inside words of English technical
/// prose (man pages and Vim's help). Half of all pairs are missing, so a run of
/// random letters rarely avoids them while real words do.
#[rustfmt::skip]
const COMMON_PAIRS: [u32; 26] = [
    0b01111111101011110101101110, // a
    0b01000101100100101100010101, // b
    0b01000111101101110110010101, // c
    0b00000101101110100101011011, // d
    0b01111111111111100101111111, // e
    0b01000111100100100100110101, // f
    0b00000111100110100111010101, // g
    0b01000111100101000100010001, // h
    0b10101011101111110001111111, // i
    0b00000100000100000000010000, // j
    0b00000101000001000100010001, // k
    0b01000111001100100100111001, // l
    0b00000101001101100100011011, // m
    0b01001111001111110101111101, // n
    0b01111111101111111101111111, // o
    0b01000111101100110110011101, // p
    0b00000100000000100000000000, // q
    0b01011111101111110101111111, // r
    0b01011111111111110110111101, // s
    0b01110111101101100110111101, // t
    0b00100011101011100101111111, // u
    0b00000000001100000100010001, // v
    0b00000001100110100110010001, // w
    0b00000010001000000100111101, // x
    0b00000011101111000100010000, // y
    0b00000000000100000000010001, // z
];

/// Letters (any case) that read as an English word rather than chance:
/// vowels spread through, and common letter pairs only (one odd pair allowed in
/// longer words: `checkout`, `dashboard`).
fn word_like(word: &[u8]) -> bool {
    if word.len() < 3 {
        return false;
    }
    let mut vowels = 0;
    let mut consonant_run = 0;
    let mut odd_pairs = 0;
    for (k, &c) in word.iter().enumerate() {
        let c = c.to_ascii_lowercase();
        if !c.is_ascii_lowercase() {
            return false;
        }
        if matches!(c, b'a' | b'e' | b'i' | b'o' | b'u' | b'y') {
            vowels += 1;
            consonant_run = 0;
        } else {
            consonant_run += 1;
            if consonant_run > 4 {
                return false;
            }
        }
        if k > 0 {
            let prev = word[k - 1].to_ascii_lowercase();
            if COMMON_PAIRS[usize::from(prev - b'a')] >> (c - b'a') & 1 == 0 {
                odd_pairs += 1;
            }
        }
    }
    vowels * 5 >= word.len() && odd_pairs <= usize::from(word.len() >= 7)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Lower,
    Upper,
    Digit,
    Other,
}

fn class_of(c: u8) -> Class {
    match c {
        b'a'..=b'z' => Class::Lower,
        b'A'..=b'Z' => Class::Upper,
        b'0'..=b'9' => Class::Digit,
        _ => Class::Other,
    }
}

/// Changes between letter case and digits; a capital starting a lowercase word
/// is not a change, so `Reports` is one class and `getCustomer` has one change.
fn class_changes(s: &[u8]) -> usize {
    s.windows(2)
        .filter(|w| {
            let (a, c) = (class_of(w[0]), class_of(w[1]));
            a != c && a != Class::Other && c != Class::Other && !(a == Class::Upper && c == Class::Lower)
        })
        .count()
}

/// Share of `s` inside word-like letter runs (`word`, `Word`, `WORD`), which
/// tells glued words (`getCustomerInvoiceById2024`) from random letters.
fn wordiness(s: &[u8]) -> f64 {
    let mut covered = 0;
    let mut k = 0;
    while k < s.len() {
        if !s[k].is_ascii_alphabetic() {
            k += 1;
            continue;
        }
        let rs = k;
        if s[k].is_ascii_uppercase() {
            while k < s.len() && s[k].is_ascii_uppercase() {
                k += 1;
            }
            // In `HTTPServer` the `S` starts the next word.
            if k < s.len() && s[k].is_ascii_lowercase() && k - rs > 1 {
                k -= 1;
            }
        }
        if k == rs || (k - rs == 1 && s[rs].is_ascii_uppercase()) {
            while k < s.len() && s[k].is_ascii_lowercase() {
                k += 1;
            }
        }
        if word_like(&s[rs..k]) {
            covered += k - rs;
        }
    }
    covered as f64 / s.len() as f64
}

/// Shannon entropy in bits per byte.
fn entropy(s: &[u8]) -> f64 {
    let mut counts = [0u32; 128];
    for &c in s {
        counts[usize::from(c & 0x7f)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

fn looks_random(s: &[u8]) -> bool {
    let n = s.len();
    if n < MIXED_MIN_LEN {
        return false;
    }
    let (mut lower, mut upper, mut digit) = (0, 0, 0);
    for &c in s {
        match class_of(c) {
            Class::Lower => lower += 1,
            Class::Upper => upper += 1,
            Class::Digit => digit += 1,
            Class::Other => {}
        }
    }
    if lower + upper == 0 {
        // Numbers of any length: ids and timestamps. Cards have their own detector.
        return false;
    }
    let hex_lower = digit + lower == n && s.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    let hex_upper = digit + upper == n && s.iter().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c));
    if hex_lower || hex_upper {
        return n >= HEX_MIN_LEN && entropy(s) >= HEX_MIN_ENTROPY;
    }
    if digit == 0 && (upper == 0 || lower == 0) {
        return false;
    }
    class_changes(s) as f64 >= MIN_CLASS_CHANGE_RATE * (n - 1) as f64
        && wordiness(s) < MAX_WORDINESS
        && entropy(s) >= MIXED_MIN_ENTROPY
}

// ---------------------------------------------------------------------------
// Argument names.

/// Splits `X-Api-Key`, `apiKey`, `APIKey`, `api_key2` into words.
fn name_parts<'a>(name: &'a [u8], mut f: impl FnMut(&'a [u8])) {
    let mut start: Option<usize> = None;
    for i in 0..=name.len() {
        let split = match name.get(i) {
            None => true,
            Some(c) if !c.is_ascii_alphanumeric() => true,
            Some(c) if c.is_ascii_uppercase() && i > 0 => {
                let prev = name[i - 1];
                prev.is_ascii_lowercase()
                    || prev.is_ascii_digit()
                    || (prev.is_ascii_uppercase() && name.get(i + 1).is_some_and(u8::is_ascii_lowercase))
            }
            Some(_) => false,
        };
        if split {
            if let Some(s) = start.take() {
                f(&name[s..i]);
            }
        }
        if name.get(i).is_some_and(u8::is_ascii_alphanumeric) && start.is_none() {
            start = Some(i);
        }
    }
}

/// Head nouns that name a secret on their own.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "passcode",
    "secret",
    "secrets",
    "token",
    "apikey",
    "apitoken",
    "authtoken",
    "accesstoken",
    "refreshtoken",
    "sessiontoken",
    "accesskey",
    "secretkey",
    "privatekey",
    "privkey",
    "clientsecret",
    "credential",
    "credentials",
    "creds",
    "cookie",
    "cookies",
    "session",
    "sessionid",
    "authorization",
    "auth",
    "bearer",
    "jwt",
];
/// `<x>_key` is a secret only for these `x`; `primary_key`, `sort_key`,
/// `cache_key` and `partition_key` are not.
const KEY_QUALIFIERS: &[&str] = &[
    "api",
    "access",
    "private",
    "secret",
    "signing",
    "encryption",
    "master",
    "client",
    "auth",
    "ssh",
    "gpg",
    "pgp",
    "app",
    "consumer",
    "session",
    "license",
    "hmac",
    "shared",
    "webhook",
    "admin",
    "service",
    "subscription",
    "integration",
    "deploy",
    "decryption",
    "root",
];
/// `<x>_token` names a count, a model's vocabulary or a page cursor for these
/// `x` (`max_token`, `nextPageToken`, `CancellationToken`).
const NON_SECRET_TOKEN_QUALIFIERS: &[&str] = &[
    "page",
    "next",
    "continuation",
    "pagination",
    "cursor",
    "sync",
    "start",
    "end",
    "stop",
    "max",
    "min",
    "num",
    "count",
    "input",
    "output",
    "prompt",
    "completion",
    "total",
    "eos",
    "bos",
    "pad",
    "unk",
    "sep",
    "cls",
    "mask",
    "special",
    "first",
    "last",
    "prev",
    "previous",
    "resume",
    "delta",
    "cached",
    "reasoning",
    "context",
    "vocab",
    "cancellation",
    "cancel",
    "lexer",
    "parser",
    "syntax",
    "csv",
    "text",
];
/// Plural `tokens` is usually an LLM count (`max_tokens`) unless qualified.
const TOKENS_QUALIFIERS: &[&str] = &[
    "api", "auth", "access", "refresh", "session", "bearer", "oauth", "id", "bot", "user", "personal",
    "service",
];
/// `pass` alone is ambiguous (`pass: true` in a test report); after these it is not a password.
const NON_SECRET_PASS_QUALIFIERS: &[&str] = &[
    "first", "second", "third", "last", "next", "single", "multi", "boarding", "by", "one", "two",
];
/// Suffixes that keep the secret meaning of what they follow (`password_hash`,
/// `token_value`, `apiKeyHeader`); `_count`, `_type`, `_name`, `_id` do not.
const SECRET_SUFFIXES: &[&str] = &[
    "value",
    "val",
    "str",
    "string",
    "raw",
    "plain",
    "plaintext",
    "b64",
    "base64",
    "encoded",
    "hex",
    "pem",
    "der",
    "header",
    "data",
    "text",
    "hash",
    "hashed",
    "confirm",
    "confirmation",
    "bytes",
    "json",
];

fn in_list(list: &[&str], word: &[u8]) -> bool {
    list.iter().any(|w| word.eq_ignore_ascii_case(w.as_bytes()))
}

fn secret_name(name: &[u8]) -> bool {
    let mut parts: [&[u8]; 3] = [&[], &[], &[]];
    name_parts(name, |p| parts = [parts[1], parts[2], p]);
    let [p3, p2, p1] = parts;
    secret_pair(p2, p1) || (in_list(SECRET_SUFFIXES, p1) && secret_pair(p3, p2))
}

/// Whether `word`, as the head of a name, preceded by `qualifier`, names a secret.
fn secret_pair(qualifier: &[u8], word: &[u8]) -> bool {
    let word = trim_digits(word);
    let qualifier = trim_digits(qualifier);
    if word.is_empty() {
        return false;
    }
    let is = |w: &str| word.eq_ignore_ascii_case(w.as_bytes());
    if is("token") {
        !in_list(NON_SECRET_TOKEN_QUALIFIERS, qualifier)
    } else if is("tokens") {
        in_list(TOKENS_QUALIFIERS, qualifier)
    } else if is("key") || is("keys") {
        in_list(KEY_QUALIFIERS, qualifier)
    } else if is("id") {
        qualifier.eq_ignore_ascii_case(b"session")
    } else if is("pass") {
        !qualifier.is_empty() && !in_list(NON_SECRET_PASS_QUALIFIERS, qualifier)
    } else {
        in_list(SECRET_WORDS, word)
    }
}

/// `password2` and `oauth2` count as `password` and `oauth`.
fn trim_digits(s: &[u8]) -> &[u8] {
    let k = s.iter().rposition(|c| !c.is_ascii_digit()).map_or(0, |k| k + 1);
    &s[..k]
}

#[cfg(test)]
mod tests {
    use super::*;

    const GHP: &str = "ghp_R8nDfT2kLq9ZxV4mWp7sYb3cHj6uNe1gAo5i";
    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    const AWS_SECRET: &str = "Zr4pL8qN2vX7tB1mK9cW3yH6jF0sD5gA/uE+iO2k";
    const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----";

    fn known_tokens() -> Vec<&'static str> {
        vec![
            GHP,
            "gho_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghu_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghr_16C7e42F292c6912E7710c838347Ae178B4a",
            "github_pat_11ABCDEFG0aBcDeFgHiJkLmN_OpQrStUvWxYz0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567",
            "glpat-Xy9z8W7v6U5t4S3r2Q1p",
            "xoxb-2048201390-4821739127364-AbCdEfGhIjKlMnOpQrStUvWx",
            "xoxp-2048201390-2049134802-4821739127364-0f6a1b2c3d4e5f60718293a4b5c6d7e8",
            "xoxa-2-2048201390-AbCdEfGhIjKl",
            "xoxr-2048201390-AbCdEfGhIjKl",
            "xoxs-2048201390-AbCdEfGhIjKl",
            "sk-ant-api03-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Ji0Hg9Fe8Dc7Ba6-ZyXwVu5T4sR3qP2oAA",
            "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
            "sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zT3BlbkFJ",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "rk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAY34FZKBOKMUTVV7A",
            "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI",
            "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
            "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            JWT,
        ]
    }

    fn high_entropy() -> Vec<&'static str> {
        vec![
            AWS_SECRET,
            "3f786850e387550fdab836ed7e6dc881de23001b",
            "9b74c9897bac770ffc029102a200c5de",
            "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg==",
            "kq7R3vX9pL2mN8wT4yB6cF1hJ5dG0sQz",
            "a8f5f167f44f4964e6c998dee827110c7b3dc9a1f3b5e9c2a4d6f8b0c2e4a6b8",
            "ijkl9m3n2b7v6c5x4z8q1w0e",
            "K5QW4ZLSMF2GS3TBNRZXG2LUEBRXK4TF",
            "r8_Hq3kV9mTz2LwXp7Yb4Nc6Rd1Fs5Gj0Ae",
        ]
    }

    fn cards() -> Vec<&'static str> {
        vec![
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "4242424242424242",
            "5555555555554444",
            "5105 1051 0510 5100",
            "2223003122003222",
            "378282246310005",
            "3782 822463 10005",
            "6011111111111117",
            "6011 0009 9013 9424",
            "3530111333300000",
            "30569309025904",
            "4222222222222",
            "4000056655665556",
        ]
    }

    /// Ordinary argument values that must survive untouched.
    fn ordinary() -> Vec<&'static str> {
        vec![
            "550e8400-e29b-41d4-a716-446655440000",
            "F47AC10B-58CC-4372-A567-0E02B2C3D479",
            "urn:uuid:550e8400-e29b-41d4-a716-446655440000",
            "cust_550e8400-e29b-41d4-a716-446655440000",
            "/v1/users/550e8400-e29b-41d4-a716-446655440000/orders",
            "2024-09-15",
            "2024-09-15T10:22:33Z",
            "2024-09-15T10:22:33.123456+00:00",
            "20240915T102233Z",
            "Sun, 15 Sep 2024 10:22:33 GMT",
            "alice.smith+billing@example.com",
            "ops-team@acme-corp.io",
            "https://api.acme.com/v1/customers/cust_1234/invoices",
            "https://api.acme.com/v1/customers/cust_1234/invoices?limit=100&starting_after=inv_0042",
            "https://github.com/acme/shadowdraft/pull/1234/files",
            "https://www.example.com/search?q=quarterly+revenue+report+2024",
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "https://user@example.com/path",
            "http://localhost:8080/healthz",
            "/var/data/reports/2024/q3-summary.csv",
            "/home/alice/Documents/Reports2024/SummaryFinal.docx",
            "C:\\Users\\alice\\AppData\\Local\\Temp\\report-2024-09-15.xlsx",
            "s3://acme-data-lake/raw/events/year=2024/month=09/day=15/part-00000-c000.snappy.parquet",
            "uploads/2024/09/15/IMG_20240915_123456.jpg",
            "src/core/classify.rs",
            "projects/acme-prod/locations/us-central1/functions/sendInvoiceReminder",
            "arn:aws:iam::123456789012:role/AdminAccess",
            "arn:aws:s3:::acme-customer-exports/2024/q3/",
            "INV-2024-000123",
            "cust_000481",
            "acct-7731",
            "ORD-000000123456",
            "order_2024_09_15_000123456",
            "INV_ACME_EXPORT_REPORT_2024",
            "SUMMARYREPORT2024Q3FINAL",
            "i-0123456789abcdef0",
            "ami-0abcd1234efgh5678",
            "sg-0a1b2c3d4e5f67890",
            "507f1f77bcf86cd799439011",
            "x86_64-unknown-linux-gnu",
            "aarch64-apple-darwin",
            "v1.2.3-beta.4+build.5678",
            "nginx:1.25.3-alpine3.18",
            "q3-2024-board-deck-FINAL-v7.pptx",
            "123456789012",
            "1726398153000",
            "1726398153000000000",
            "4111111111111112",
            "4111 1111 1111 1112",
            "+1 (555) 123-4567",
            "+44 20 7946 0958",
            "2024-09-15 2024-09-16",
            "20240915123045",
            "3.14159265358979323846",
            "0.1234567890123456",
            "Please send the Q3 summary to the finance team by Friday.",
            "The bearer of this letter is authorized to collect the parcel.",
            "Basic plan includes 5 seats and email support",
            "Bearer tokens are described in RFC 6750",
            "Authorization header is missing",
            "max_tokens=1000",
            "token_count: 5",
            "session_count=3",
            "password_reset_required=true",
            "{\"password\": null, \"token\": \"\"}",
            "password=${DB_PASSWORD}",
            "--token $GITHUB_TOKEN",
            "Session: Q3 planning",
            "auth: required",
            "aaaaaaaaaaaaaaaaaaaaaaaa",
            "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "0000000000000000000000000000000000000000",
            "customer_support_ticket_export",
            "CustomerSupportTicketExport",
            "getCustomerInvoiceById2024",
            "Build20240915HotfixRelease",
            "run_id=20240915T102233Z_7f3a9c",
            "evt_01HZX3K4M5N6P7Q8R9S0T1V2W3",
            "01arz3ndektsv4rrffq69g5fav",
            "curl -u alice https://example.com",
            "abcdefghijklmnopqrstuvwxyz0123456789",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "the_quick_brown_fox_jumps_over_the_lazy_dog",
            "permit(principal == Agent::\"support-bot\", action == Action::\"crm.search\", resource);",
            "{\"customer_id\": \"cust_1234\", \"amount\": 4200, \"currency\": \"usd\"}",
            "-----BEGIN PUBLIC KEY-----",
            "ghp_example",
            "sk-learn-is-a-python-library",
            "AKIA1234",
            "pay with card ending 4242 today",
            "secret_name=prod/db/password",
            "mañana a las 10:00 — reunión con el equipo",
            "",
        ]
    }

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

    #[test]
    fn card_numbers() {
        for c in cards() {
            assert_eq!(detect(c), Some(SecretKind::CardNumber), "{c}");
        }
        let text = "pay with 4111 1111 1111 1111 today";
        assert!(contains_secret(text));
        assert_eq!(
            redact(text),
            format!("pay with {} today", redacted("4111 1111 1111 1111"))
        );
        assert!(contains_secret("card=4242424242424242;exp=12/27"));
        assert!(contains_secret("cards: 4111111111111111, 5555555555554444"));
        assert_eq!(
            redact("4111111111111111 2"),
            format!("{} 2", redacted("4111111111111111")),
            "a trailing unrelated number does not hide the card"
        );
    }

    #[test]
    fn not_cards() {
        for n in [
            "4111111111111112",
            "4111 1111 1111 1112",
            "123456789012",
            "411111111111",
            "41111111111111111111",
            "1726398153000",
            "20240915123045",
            "0.4111111111111111",
            "2024-09-15 2024-09-16",
            "4111 1111 11 11 1111",
            "x4111111111111111",
        ] {
            assert!(!contains_secret(n), "{n}");
        }
    }

    #[test]
    fn high_entropy_tokens() {
        for t in high_entropy() {
            assert_eq!(detect(t), Some(SecretKind::HighEntropy), "{t}");
        }
    }

    #[test]
    fn high_entropy_inside_urls_and_text_keeps_the_structure() {
        let hook = "https://hooks.slack.com/services/T024BE7LD/B01ABCDEF12/AbCdEf1234567890GhIjKlMn";
        let out = redact(hook);
        assert!(
            out.starts_with("https://hooks.slack.com/services/‹secret:"),
            "{out}"
        );
        assert!(!out.contains("GhIjKlMn"), "{out}");

        let url = format!("https://files.acme.com/download/{AWS_SECRET}/report.pdf");
        let out = redact(&url);
        assert!(
            out.starts_with("https://files.acme.com/download/‹secret:"),
            "{out}"
        );
        assert!(out.ends_with("/report.pdf"), "{out}");

        let q = "https://api.acme.com/v1/export?signature=kq7R3vX9pL2mN8wT4yB6cF1hJ5dG0sQz&format=csv";
        assert_eq!(
            redact(q),
            format!(
                "https://api.acme.com/v1/export?signature={}&format=csv",
                redacted("kq7R3vX9pL2mN8wT4yB6cF1hJ5dG0sQz")
            )
        );
        let prose = "the key is 9b74c9897bac770ffc029102a200c5de, keep it safe";
        assert_eq!(
            redact(prose),
            format!(
                "the key is {}, keep it safe",
                redacted("9b74c9897bac770ffc029102a200c5de")
            )
        );
    }

    #[test]
    fn random_tokens_are_caught_reliably() {
        // xorshift: deterministic, no dependency.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabets: [(&[u8], usize); 4] = [
            (b"0123456789abcdef", 40),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                32,
            ),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                40,
            ),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                43,
            ),
        ];
        for (alphabet, len) in alphabets {
            let trials = 500;
            let mut caught = 0;
            for _ in 0..trials {
                let s: String = (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                    .collect();
                if contains_secret(&s) {
                    caught += 1;
                }
            }
            assert!(caught * 100 >= trials * 99, "{caught}/{trials} of length {len}");
        }
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
    fn secret_names() {
        for n in [
            "password",
            "PASSWORD",
            "passwd",
            "db_password",
            "DB_PASSWORD",
            "newPassword",
            "password2",
            "password_confirmation",
            "passwordHash",
            "db_pass",
            "passphrase",
            "secret",
            "client_secret",
            "clientSecret",
            "webhook-secret",
            "token",
            "auth_token",
            "authToken",
            "access_token",
            "refreshToken",
            "id_token",
            "X-Auth-Token",
            "x-amz-security-token",
            "api_key",
            "apiKey",
            "APIKey",
            "API_KEY",
            "x-api-key",
            "apikey",
            "access_key",
            "aws_secret_access_key",
            "private_key",
            "privateKey",
            "secret_key",
            "authorization",
            "Authorization",
            "Proxy-Authorization",
            "auth",
            "basic_auth",
            "credential",
            "credentials",
            "session",
            "session_id",
            "sessionId",
            "session_token",
            "cookie",
            "Set-Cookie",
            "cookies",
            "api_tokens",
            "token_value",
            "--password",
        ] {
            assert!(is_secret_name(n), "{n} should be a secret name");
        }
        for n in [
            "token_count",
            "tokenCount",
            "max_tokens",
            "maxTokens",
            "input_tokens",
            "tokens",
            "tokenizer",
            "token_type",
            "next_token",
            "nextPageToken",
            "page_token",
            "NextToken",
            "cancellationToken",
            "author",
            "author_name",
            "authority",
            "authentication_method",
            "auth_type",
            "session_count",
            "sessions",
            "session_name_prefix",
            "secret_name",
            "secretArn",
            "secret_id",
            "password_policy",
            "password_min_length",
            "password_reset_required",
            "passenger",
            "bypass",
            "first_pass",
            "primary_key",
            "sort_key",
            "key",
            "keys",
            "api_key_id",
            "private_key_id",
            "credential_type",
            "cookie_name",
            "customer_id",
            "description",
            "",
            "_",
        ] {
            assert!(!is_secret_name(n), "{n} should not be a secret name");
        }
    }

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
