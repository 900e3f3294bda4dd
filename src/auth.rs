//! Who may post observations (and, on the node, call tools through the MCP
//! gateway): bearer JWTs signed with a shared HS256 secret or with an RS256 /
//! EdDSA key whose public half is configured. `exp` and `aud` are required
//! (`aud` a string or an array, RFC 7519), `nbf` is honoured, a lifetime
//! beyond the configured cap is refused, and so is a header with critical
//! extensions (`crit`, RFC 7515: we implement none). A token that fails any
//! check is refused with the reason.

use anyhow::Context;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

/// What an ingest token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The enforcement node, when the token names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    // Defaults let validation name a missing claim instead of failing to parse.
    #[serde(default)]
    pub aud: Audience,
    #[serde(default)]
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// `aud`: one audience or several (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Default for Audience {
    fn default() -> Self {
        Audience::Many(Vec::new())
    }
}

/// The longest lifetime (`exp` from now) a token may claim, by default.
pub const DEFAULT_MAX_LIFETIME_SECONDS: u64 = 31 * 86_400;

pub struct IngestAuth {
    audience: String,
    keys: Vec<(Algorithm, DecodingKey)>,
    max_lifetime: u64,
}

/// Why a token was refused; the text goes back in the 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing `Authorization: Bearer <jwt>` header")]
    Missing,
    #[error("the token is not a JWT: {0}")]
    Malformed(String),
    #[error("tokens signed with {0:?} are not accepted here")]
    Algorithm(Algorithm),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("the token claims a lifetime of more than {0} seconds")]
    TooLong(u64),
    #[error("the token's header has critical extensions this service does not implement: {0}")]
    Critical(String),
    #[error("the token's audience is not `{0}`")]
    Audience(String),
    #[error("the token lacks the required `{0}` claim")]
    MissingClaim(String),
    #[error("the token's signature does not verify with any configured key")]
    Signature,
}

impl IngestAuth {
    /// `secret`: the HS256 secret; `public_keys`: (path, PEM) of RS256 or EdDSA keys.
    pub fn new(
        audience: &str,
        secret: Option<&[u8]>,
        public_keys: &[(impl AsRef<Path>, Vec<u8>)],
    ) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        if let Some(secret) = secret {
            keys.push((Algorithm::HS256, DecodingKey::from_secret(secret)));
        }
        for (path, pem) in public_keys {
            let path = path.as_ref();
            let key = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
                (Algorithm::RS256, k)
            } else {
                let k = DecodingKey::from_ed_pem(pem).with_context(|| {
                    format!("{} is neither an RSA nor an Ed25519 public key", path.display())
                })?;
                (Algorithm::EdDSA, k)
            };
            keys.push(key);
        }
        anyhow::ensure!(
            !keys.is_empty(),
            "no ingest key is configured: ingest would accept nobody"
        );
        Ok(IngestAuth {
            audience: audience.to_string(),
            keys,
            max_lifetime: DEFAULT_MAX_LIFETIME_SECONDS,
        })
    }

    /// Refuse tokens whose `exp` is further than `seconds` from now.
    pub fn with_max_lifetime(mut self, seconds: u64) -> Self {
        self.max_lifetime = seconds;
        self
    }

    /// Check an `Authorization` header value.
    pub fn verify(&self, authorization: Option<&str>) -> Result<Claims, AuthError> {
        self.decode(authorization)
    }

    /// Check an `Authorization` header value and return every claim (an
    /// agent's token also names the end user it acts for).
    pub fn verify_all(&self, authorization: Option<&str>) -> Result<Map<String, Value>, AuthError> {
        self.decode(authorization)
    }

    fn decode<T: DeserializeOwned>(&self, authorization: Option<&str>) -> Result<T, AuthError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        if let Some(critical) = critical_extensions(token) {
            return Err(AuthError::Critical(critical));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        let mut last = AuthError::Algorithm(header.alg);
        for (alg, key) in self.keys.iter().filter(|(alg, _)| *alg == header.alg) {
            let mut validation = Validation::new(*alg);
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "aud"]);
            validation.validate_nbf = true;
            validation.leeway = 30;
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
                Ok(data) => {
                    // An `exp` beyond u64 (a float) is as good as forever.
                    let exp = data.claims.get("exp").and_then(Value::as_u64).unwrap_or(u64::MAX);
                    let now = crate::clock::now().max(0) as u64;
                    if exp > now.saturating_add(self.max_lifetime) {
                        return Err(AuthError::TooLong(self.max_lifetime));
                    }
                    return serde_json::from_value(Value::Object(data.claims))
                        .map_err(|e| AuthError::Malformed(e.to_string()));
                }
                Err(e) => {
                    last = match e.kind() {
                        ErrorKind::ExpiredSignature => return Err(AuthError::Expired),
                        ErrorKind::ImmatureSignature => return Err(AuthError::NotYetValid),
                        ErrorKind::InvalidAudience => return Err(AuthError::Audience(self.audience.clone())),
                        ErrorKind::MissingRequiredClaim(c) => return Err(AuthError::MissingClaim(c.clone())),
                        ErrorKind::InvalidSignature => AuthError::Signature,
                        // A claim of the wrong type (e.g. a string `exp`) is a malformed token.
                        _ => AuthError::Malformed(e.to_string()),
                    }
                }
            }
        }
        Err(last)
    }
}

/// The `crit` member of a token's header, if it has one (any is unknown to us).
fn critical_extensions(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes).ok()?;
    header.get("crit").map(|c| c.to_string())
}

/// An HS256 ingest token, as the embedded default prints and enforcement nodes send.
pub fn hs256_token(secret: &[u8], audience: &str, subject: &str, exp: u64) -> String {
    let claims = Claims {
        sub: Some(subject.to_string()),
        aud: Audience::One(audience.to_string()),
        exp,
        nbf: None,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn auth() -> IngestAuth {
        IngestAuth::new("shadowdraft", Some(SECRET), &[] as &[(&str, Vec<u8>)]).unwrap()
    }

    #[test]
    fn a_valid_token_passes_and_names_its_node() {
        let token = hs256_token(SECRET, "shadowdraft", "node-1", now() + 60);
        let claims = auth().verify(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(claims.sub.as_deref(), Some("node-1"));
    }

    #[test]
    fn each_failure_says_what_is_wrong() {
        let a = auth();
        assert_eq!(a.verify(None), Err(AuthError::Missing));
        assert!(matches!(
            a.verify(Some("Bearer abc")),
            Err(AuthError::Malformed(_))
        ));
        let expired = hs256_token(SECRET, "shadowdraft", "n", now() - 3600);
        assert_eq!(
            a.verify(Some(&format!("Bearer {expired}"))),
            Err(AuthError::Expired)
        );
        let other_aud = hs256_token(SECRET, "someone-else", "n", now() + 60);
        assert!(matches!(
            a.verify(Some(&format!("Bearer {other_aud}"))),
            Err(AuthError::Audience(_))
        ));
        let forged = hs256_token(
            b"another secret of thirty-two byt",
            "shadowdraft",
            "n",
            now() + 60,
        );
        assert_eq!(
            a.verify(Some(&format!("Bearer {forged}"))),
            Err(AuthError::Signature)
        );
    }

    #[test]
    fn nodes_may_sign_with_rsa_or_ed25519_keys() {
        let keys = [
            (
                "rsa.pub.pem",
                include_bytes!("../tests/fixtures/ingest/node-rsa.pub.pem").to_vec(),
            ),
            (
                "ed.pub.pem",
                include_bytes!("../tests/fixtures/ingest/node-ed25519.pub.pem").to_vec(),
            ),
        ];
        let auth = IngestAuth::new("shadowdraft", None, &keys).unwrap();
        let claims = Claims {
            sub: Some("node-9".into()),
            aud: Audience::One("shadowdraft".into()),
            exp: now() + 60,
            nbf: None,
        };
        let rsa = EncodingKey::from_rsa_pem(include_bytes!("../tests/fixtures/ingest/node-rsa.pem")).unwrap();
        let ed =
            EncodingKey::from_ed_pem(include_bytes!("../tests/fixtures/ingest/node-ed25519.pem")).unwrap();
        for (alg, key) in [(Algorithm::RS256, rsa), (Algorithm::EdDSA, ed)] {
            let token = jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap();
            assert_eq!(
                auth.verify(Some(&format!("Bearer {token}"))),
                Ok(claims.clone()),
                "{alg:?}"
            );
        }
        // No HS256 secret is configured: an HS256 token is refused for its algorithm.
        let hs = hs256_token(SECRET, "shadowdraft", "n", now() + 60);
        assert_eq!(
            auth.verify(Some(&format!("Bearer {hs}"))),
            Err(AuthError::Algorithm(Algorithm::HS256))
        );
    }

    fn rsa_signed(claims: &serde_json::Value) -> String {
        let key = EncodingKey::from_rsa_pem(include_bytes!("../tests/fixtures/ingest/node-rsa.pem")).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
    }

    fn hs_signed(header: &Header, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(SECRET)).unwrap()
    }

    fn rsa_auth() -> IngestAuth {
        let public = [(
            "rsa.pub.pem",
            include_bytes!("../tests/fixtures/ingest/node-rsa.pub.pem").to_vec(),
        )];
        IngestAuth::new("shadowdraft", None, &public).unwrap()
    }

    #[test]
    fn a_token_not_valid_yet_is_refused_with_either_algorithm() {
        let claims = serde_json::json!({"aud": "shadowdraft", "exp": now() + 600, "nbf": now() + 300});
        let hs = hs_signed(&Header::new(Algorithm::HS256), &claims);
        assert_eq!(
            auth().verify(Some(&format!("Bearer {hs}"))),
            Err(AuthError::NotYetValid)
        );
        let rs = rsa_signed(&claims);
        assert_eq!(
            rsa_auth().verify(Some(&format!("Bearer {rs}"))),
            Err(AuthError::NotYetValid)
        );
        let ready = serde_json::json!({"aud": "shadowdraft", "exp": now() + 600, "nbf": now() - 5});
        let hs = hs_signed(&Header::new(Algorithm::HS256), &ready);
        assert!(auth().verify(Some(&format!("Bearer {hs}"))).is_ok());
    }

    #[test]
    fn an_audience_array_that_names_us_is_accepted() {
        let ours = serde_json::json!({"aud": ["other", "shadowdraft"], "exp": now() + 60});
        let token = hs_signed(&Header::new(Algorithm::HS256), &ours);
        let claims = auth().verify(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(
            claims.aud,
            Audience::Many(vec!["other".into(), "shadowdraft".into()])
        );
        let theirs = serde_json::json!({"aud": ["other"], "exp": now() + 60});
        let token = hs_signed(&Header::new(Algorithm::HS256), &theirs);
        assert!(matches!(
            auth().verify(Some(&format!("Bearer {token}"))),
            Err(AuthError::Audience(_))
        ));
    }

    #[test]
    fn critical_header_extensions_are_refused() {
        use base64::Engine as _;
        let b64 =
            |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let header = b64(
            &serde_json::json!({"alg": "HS256", "typ": "JWT", "crit": ["exp-extension"], "exp-extension": 1}),
        );
        let payload = b64(&serde_json::json!({"aud": "shadowdraft", "exp": now() + 60}));
        let signing_input = format!("{header}.{payload}");
        let signature = {
            use hmac::Mac;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
            mac.update(signing_input.as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        };
        let token = format!("{signing_input}.{signature}");
        let result = auth().verify(Some(&format!("Bearer {token}")));
        assert!(
            matches!(result, Err(AuthError::Critical(ref c)) if c.contains("exp-extension")),
            "{result:?}"
        );
    }

    #[test]
    fn a_lifetime_beyond_the_cap_is_refused() {
        let forever = serde_json::json!({"aud": "shadowdraft", "exp": u64::MAX});
        let token = hs_signed(&Header::new(Algorithm::HS256), &forever);
        assert_eq!(
            auth().verify(Some(&format!("Bearer {token}"))),
            Err(AuthError::TooLong(DEFAULT_MAX_LIFETIME_SECONDS))
        );
        let week = serde_json::json!({"aud": "shadowdraft", "exp": now() + 7 * 86_400});
        let token = hs_signed(&Header::new(Algorithm::HS256), &week);
        assert!(auth().verify(Some(&format!("Bearer {token}"))).is_ok());
        let short = auth().with_max_lifetime(3600);
        assert_eq!(
            short.verify(Some(&format!("Bearer {token}"))),
            Err(AuthError::TooLong(3600))
        );
    }

    #[test]
    fn every_claim_can_be_read() {
        #[derive(Serialize)]
        struct Agent {
            sub: &'static str,
            aud: &'static str,
            exp: u64,
            act: serde_json::Value,
        }
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Agent {
                sub: "support-bot",
                aud: "shadowdraft",
                exp: now() + 60,
                act: serde_json::json!({"user": "alice@acme.com"}),
            },
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let claims = auth().verify_all(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(claims["sub"], "support-bot");
        assert_eq!(claims["act"]["user"], "alice@acme.com");
        assert_eq!(auth().verify_all(None), Err(AuthError::Missing));
    }

    #[test]
    fn tokens_without_exp_are_refused() {
        #[derive(Serialize)]
        struct NoExp {
            aud: &'static str,
        }
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoExp { aud: "shadowdraft" },
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let result = auth().verify(Some(&format!("Bearer {token}")));
        assert_eq!(result, Err(AuthError::MissingClaim("exp".into())));
    }
}
