//! Random-looking runs inside ordinary tokens. A token (URL, path, id) is cut
//! into segments at separators; words, UUIDs, ULIDs and timestamps anchor it
//! as structure, and only the runs between anchors are judged random or not
//! (`randomness`). That keeps the readable parts of a URL or path and redacts
//! just the key inside it.

use super::randomness::{looks_random, word_like, MIXED_MIN_LEN};
use super::scan::{has_digit, run_end, Span};
use super::SecretKind;

/// Separators split a token into segments. Segments that are words and UUIDs
/// anchor the token as structured text; each run of other segments between
/// anchors is judged on its own, which keeps `https://hooks.slack.com/services/`
/// visible while the webhook's random tail is redacted.
pub(super) fn token_spans(b: &[u8], ts: usize, te: usize, emit: &mut dyn FnMut(Span) -> bool) -> bool {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{detect, redact, redacted, SecretKind};

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
}
