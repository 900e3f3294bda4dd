//! Who may post observations (and, on the node, call tools through the MCP
//! gateway): bearer JWTs signed with a shared HS256 secret or with an RS256 /
//! EdDSA key whose public half is configured. `exp` and `aud` are required; a
//! token that fails any check is refused with the reason.

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
    pub aud: String,
    #[serde(default)]
    pub exp: u64,
}

pub struct IngestAuth {
    audience: String,
    keys: Vec<(Algorithm, DecodingKey)>,
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
        })
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
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        let mut last = AuthError::Algorithm(header.alg);
        for (alg, key) in self.keys.iter().filter(|(alg, _)| *alg == header.alg) {
            let mut validation = Validation::new(*alg);
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "aud"]);
            validation.leeway = 30;
            match jsonwebtoken::decode::<T>(token, key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => {
                    last = match e.kind() {
                        ErrorKind::ExpiredSignature => return Err(AuthError::Expired),
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

/// An HS256 ingest token, as the embedded default prints and enforcement nodes send.
pub fn hs256_token(secret: &[u8], audience: &str, subject: &str, exp: u64) -> String {
    let claims = Claims {
        sub: Some(subject.to_string()),
        aud: audience.to_string(),
        exp,
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
            aud: "shadowdraft".into(),
            exp: now() + 60,
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
