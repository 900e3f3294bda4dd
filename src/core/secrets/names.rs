//! Whether an argument or key name says it carries a secret. A name is split
//! into words (`X-Api-Key`, `apiKey`, `api_key2`) and its head word is judged
//! together with the word before it, so `api_key` is a secret and
//! `primary_key` is not. The word lists are in `vocabulary`.

use super::vocabulary::{
    KEY_QUALIFIERS, NON_SECRET_PASS_QUALIFIERS, NON_SECRET_TOKEN_QUALIFIERS, SECRET_SUFFIXES, SECRET_WORDS,
    TOKENS_QUALIFIERS,
};

/// Splits `X-Api-Key`, `apiKey`, `APIKey`, `api_key2` into words.
pub(super) fn name_parts<'a>(name: &'a [u8], mut f: impl FnMut(&'a [u8])) {
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

fn in_list(list: &[&str], word: &[u8]) -> bool {
    list.iter().any(|w| word.eq_ignore_ascii_case(w.as_bytes()))
}

pub(super) fn secret_name(name: &[u8]) -> bool {
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
    use super::super::is_secret_name;

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
}
