//! Whether a run of characters is random: entropy, how often the character
//! class changes, and how much of it reads as English words. The thresholds
//! are tuned so that real keys are caught (see the test below) while glued
//! identifiers (`getCustomerInvoiceById2024`) and ids that policy must name
//! are not.

/// Hex tokens shorter than this are ids (Mongo ObjectIds are 24), not keys.
const HEX_MIN_LEN: usize = 32;
/// Random hex averages ~3.7 bits/char at 32 chars; hashes of text do too.
const HEX_MIN_ENTROPY: f64 = 3.0;
/// Runs shorter than this are never judged random.
pub(super) const MIXED_MIN_LEN: usize = 20;
/// Random base62 of 20 chars averages ~4.0 bits/char; identifiers rarely pass 3.5.
const MIXED_MIN_ENTROPY: f64 = 3.5;
/// Share of a token covered by word-like letter runs above which it reads as
/// glued words (`getCustomerInvoiceById2024`) rather than random characters.
const MAX_WORDINESS: f64 = 0.5;
/// Random tokens switch between lower case, upper case and digits on 30–45% of
/// adjacent pairs; below 10% a token is long runs of one class, i.e. words and
/// numbers glued together.
const MIN_CLASS_CHANGE_RATE: f64 = 0.1;

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
pub(super) fn word_like(word: &[u8]) -> bool {
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
pub(super) fn class_changes(s: &[u8]) -> usize {
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

pub(super) fn looks_random(s: &[u8]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::super::contains_secret;

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
}
