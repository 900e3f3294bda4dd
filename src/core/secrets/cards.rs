//! Payment card numbers: 13–19 digits, bare or grouped like printed cards,
//! with an issuer prefix and a valid Luhn check digit. The prefix and Luhn
//! checks together keep long numeric ids and timestamps out.

use super::scan::Span;
use super::SecretKind;

pub(super) fn card_at(b: &[u8], i: usize) -> Option<Span> {
    // The fraction digits of a decimal are not a card.
    if i >= 2 && b[i - 1] == b'.' && b[i - 2].is_ascii_digit() {
        return None;
    }
    let g = DigitGroups::read(b, i);
    let trailing_ok = |e: usize| !b.get(e).is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_');
    let grouped = !g.overflow && g.count > 1 && card_grouping(&g.groups[..g.count]) && trailing_ok(g.end);
    let (len, end) = if grouped {
        (g.len, g.end)
    } else {
        // The run did not group like a card; the first block alone still may be one.
        (usize::from(g.groups[0]), g.first_end)
    };
    if !grouped && (g.groups[0] == 0 || !trailing_ok(g.first_end) || (g.overflow && g.count == 1)) {
        return None;
    }
    let d = &g.digits[..len];
    (len >= 13 && card_prefix(d) && luhn(d)).then_some(Span {
        start: i,
        end,
        kind: SecretKind::CardNumber,
    })
}

/// The run of digit groups where a card may start, joined by one kind of
/// separator (space or dash) as on a printed card.
struct DigitGroups {
    /// The digits of all groups in order, as numbers.
    digits: [u8; 19],
    len: usize,
    /// How many digits each group has.
    groups: [u8; 8],
    count: usize,
    first_end: usize,
    /// Where reading stopped: after the last group, or inside one on overflow.
    end: usize,
    /// More than 19 digits, the longest a card has.
    overflow: bool,
}

impl DigitGroups {
    fn read(b: &[u8], i: usize) -> DigitGroups {
        let n = b.len();
        let mut g = DigitGroups {
            digits: [0; 19],
            len: 0,
            groups: [0; 8],
            count: 0,
            first_end: i,
            end: i,
            overflow: false,
        };
        let mut sep = 0u8;
        let mut j = i;
        loop {
            let gs = j;
            while j < n && b[j].is_ascii_digit() {
                if g.len == g.digits.len() {
                    g.overflow = true;
                    break;
                }
                g.digits[g.len] = b[j] - b'0';
                g.len += 1;
                j += 1;
            }
            if g.overflow {
                break;
            }
            g.groups[g.count] = (j - gs) as u8;
            g.count += 1;
            if g.count == 1 {
                g.first_end = j;
            }
            let next_sep = b.get(j).copied().filter(|&c| c == b' ' || c == b'-');
            match next_sep {
                Some(c)
                    if g.count < g.groups.len()
                        && (sep == 0 || sep == c)
                        && b.get(j + 1).is_some_and(u8::is_ascii_digit) =>
                {
                    sep = c;
                    j += 1;
                }
                _ => break,
            }
        }
        g.end = j;
        g
    }
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
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{contains_secret, detect, redact, redacted, SecretKind};

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
}
