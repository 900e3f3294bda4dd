//! Secrets planted in about 0.5% of train calls: tokens, keys, a JWT or a card number in free text,
//! a token in a URL, a key in the one secret-named argument. A drafter must never turn them
//! into policy.

use crate::agent::Agent;
use crate::args::ArgKind;
use crate::calendar::DAY_ZERO_UNIX_SECONDS;
use crate::rng::{Rng, ALPHANUMERIC, BASE64URL, UPPER_ALPHANUMERIC};
use crate::tools::TOOLS;
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// Labels of the secrets planted in train calls.
pub const SECRET_KINDS: [&str; 7] = [
    "secret_github_token",
    "secret_stripe_key",
    "secret_aws_key",
    "secret_jwt",
    "secret_card_number",
    "secret_url_token",
    "secret_api_key_arg",
];

// Applied only to calls that have a free-text or URL argument (~60% of calls), hence ~0.5% overall.
const SECRET_PER_10K: u64 = 95;
// The one secret-named argument lives on a single tool, so it needs its own, higher rate to show
// up.
const API_KEY_PER_10K: u64 = 300;

/// Declared in the order of [`SECRET_KINDS`], which holds their labels.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Secret {
    GithubToken,
    StripeKey,
    AwsKey,
    Jwt,
    CardNumber,
    UrlToken,
    ApiKeyArg,
}

impl Secret {
    /// The secrets hidden in free text, drawn uniformly.
    const IN_TEXT: [Secret; 5] = [
        Secret::GithubToken,
        Secret::StripeKey,
        Secret::AwsKey,
        Secret::Jwt,
        Secret::CardNumber,
    ];

    fn label(self) -> &'static str {
        SECRET_KINDS[self as usize]
    }
}

/// Perhaps plants a secret in the arguments of a train call; returns its label if it did.
pub(crate) fn plant_secret(
    agent: &Agent,
    tool_ix: usize,
    day: i64,
    args: &mut Map<String, Value>,
    rng: &mut Rng,
) -> Option<&'static str> {
    let tool = &TOOLS[tool_ix];
    if let Some(key_arg) = tool.args.iter().find(|arg| arg.kind == ArgKind::ApiKey) {
        if rng.chance_per_10k(API_KEY_PER_10K) {
            args.insert(key_arg.name.into(), Value::from(api_key(rng)));
            return Some(Secret::ApiKeyArg.label());
        }
    }
    if !rng.chance_per_10k(SECRET_PER_10K) {
        return None;
    }
    let sent = |is_kind: fn(ArgKind) -> bool| {
        tool.args
            .iter()
            .find(|arg| is_kind(arg.kind) && args.contains_key(arg.name))
            .map(|arg| arg.name)
    };
    let text_arg = sent(|kind| matches!(kind, ArgKind::Text(_)));
    let url_arg = sent(|kind| kind == ArgKind::Url);
    let secret = match (text_arg, url_arg) {
        (None, None) => return None,
        (None, Some(_)) => Secret::UrlToken,
        (Some(_), url_arg) => {
            let choices = Secret::IN_TEXT.len() + url_arg.is_some() as usize;
            Secret::IN_TEXT
                .get(rng.index(choices))
                .copied()
                .unwrap_or(Secret::UrlToken)
        }
    };
    if secret == Secret::UrlToken {
        let name = url_arg?;
        let mut url = args[name].as_str().unwrap_or_default().to_string();
        let _ = write!(
            url,
            "{}{}=",
            if url.contains('?') { '&' } else { '?' },
            rng.pick(&["token", "access_token", "sig"])
        );
        let len = rng.inclusive(32, 48) as usize;
        rng.push_chars(&mut url, len, ALPHANUMERIC);
        args.insert(name.into(), Value::from(url));
        return Some(secret.label());
    }
    let name = text_arg?;
    let mut text = args[name].as_str().unwrap_or_default().to_string();
    match secret {
        Secret::GithubToken => {
            text.push_str(" CI token if you need it: ghp_");
            rng.push_chars(&mut text, 36, ALPHANUMERIC);
        }
        Secret::StripeKey => {
            text.push_str(" Retry with sk_live_");
            rng.push_chars(&mut text, 24, ALPHANUMERIC);
        }
        Secret::AwsKey => {
            text.push_str(" aws creds AKIA");
            rng.push_chars(&mut text, 16, UPPER_ALPHANUMERIC);
            text.push_str(" / ");
            rng.push_chars(&mut text, 40, ALPHANUMERIC);
        }
        Secret::Jwt => {
            text.push_str(" Authorization: Bearer ");
            text.push_str(&jwt(agent, day, rng));
        }
        Secret::CardNumber => {
            text.push_str(" Card on file: ");
            text.push_str(&test_card_number(rng));
            let _ = write!(text, " exp {:02}/{}", rng.inclusive(1, 12), rng.inclusive(27, 31));
        }
        Secret::UrlToken | Secret::ApiKeyArg => unreachable!("{secret:?} is not planted in free text"),
    }
    args.insert(name.into(), Value::from(text));
    Some(secret.label())
}

/// A 40-character API key.
pub(crate) fn api_key(rng: &mut Rng) -> String {
    let mut key = String::new();
    rng.push_chars(&mut key, 40, ALPHANUMERIC);
    key
}

fn base64url(bytes: &[u8]) -> String {
    let mut s = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        for i in 0..=chunk.len() {
            s.push(BASE64URL[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
    }
    s
}

/// An HS256 JWT for the agent, issued on `day`, with a random signature.
fn jwt(agent: &Agent, day: i64, rng: &mut Rng) -> String {
    let payload = format!(
        "{{\"sub\":\"{}\",\"iat\":{},\"scope\":\"{}\"}}",
        agent.id,
        DAY_ZERO_UNIX_SECONDS + day * 86_400 + rng.inclusive(0, 86_399),
        rng.pick(&["read write", "admin", "billing:write"])
    );
    let mut s = String::from("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.");
    s.push_str(&base64url(payload.as_bytes()));
    s.push('.');
    rng.push_chars(&mut s, 43, BASE64URL);
    s
}

/// Luhn-valid test-card-like number (4111 1111 1111 xxxx and friends), in a few common layouts.
fn test_card_number(rng: &mut Rng) -> String {
    let mut digits: Vec<u32> = rng
        .pick(&["411111111111", "424242424242", "555555555555", "400000000000"])
        .bytes()
        .map(|b| (b - b'0') as u32)
        .collect();
    for _ in 0..3 {
        digits.push(rng.below(10) as u32);
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            // Before the check digit is appended, the digits to double are at even positions from the
            // right.
            if i % 2 == 0 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    let separator = *rng.pick(&[" ", "-", ""]);
    let mut s = String::new();
    for (i, d) in digits.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            s.push_str(separator);
        }
        s.push(char::from(b'0' + *d as u8));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{luhn_ok, snake_case};

    #[test]
    fn kinds_are_declared_in_label_order() {
        let all = Secret::IN_TEXT
            .iter()
            .chain(&[Secret::UrlToken, Secret::ApiKeyArg]);
        for (i, secret) in all.enumerate() {
            assert_eq!(*secret as usize, i);
            let name = snake_case(&format!("{secret:?}"));
            assert_eq!(secret.label(), format!("secret_{name}"));
        }
    }

    #[test]
    fn card_numbers_are_luhn_valid() {
        let mut rng = Rng::from_parts(&[1]);
        for _ in 0..200 {
            let card = test_card_number(&mut rng);
            let digits: Vec<u32> = card.chars().filter_map(|c| c.to_digit(10)).collect();
            assert_eq!(digits.len(), 16);
            assert!(luhn_ok(&digits), "{card}");
        }
    }
}
