//! The one pass over the text that finds secret spans. It owns the walk and
//! the order of detectors; what each detector matches lives in its own file.
//! Shared byte helpers (`run_end`, `has_digit`) live here too, since every
//! detector steps through bytes the same way.

use super::auth::auth_scheme_at;
use super::cards::card_at;
use super::formats::{aws_key_id_at, jwt_at, pem_at, prefix_at};
use super::high_entropy::token_spans;
use super::key_value::{key_value, url_userinfo};
use super::SecretKind;

/// A secret at `start..end` of the scanned text, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) kind: SecretKind,
}

/// Reports secret spans in order, never overlapping, until `emit` returns false.
///
/// One pass: detectors anchored on a distinctive start (prefixes, `eyJ`, card
/// digits, `-----BEGIN`, `Bearer`) are tried where a word starts, everything
/// else is collected into tokens that are judged once when they end.
pub(super) fn scan(text: &str, emit: &mut dyn FnMut(Span) -> bool) {
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

/// Detectors anchored at the start of a word, chosen by its first byte so
/// that most words are passed over after one comparison.
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

/// Where the run of `pred` bytes from `from` ends, looking at most `cap` bytes ahead.
pub(super) fn run_end(b: &[u8], from: usize, pred: fn(u8) -> bool, cap: usize) -> usize {
    let limit = b.len().min(from.saturating_add(cap));
    let mut j = from;
    while j < limit && pred(b[j]) {
        j += 1;
    }
    j
}

pub(super) fn has_digit(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_digit)
}
