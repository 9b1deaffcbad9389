//! Issuing and verifying JWTs. Our own tokens are HS256 with the hub's secret; tokens from an
//! external identity provider are RS256 or ES256 with `--jwt-public-key` and must carry the
//! configured `iss` and `aud`. The key is chosen by the token's algorithm, and each key only
//! verifies its own family, so an RS256 public key can never be used as an HS256 secret.
//! `exp` is required and checked without leeway.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};

use super::claims::{Claims, Identity};
use crate::config::ConfigError;
use crate::user::Role;

/// Verifies every token the hub sees and signs the ones it hands out.
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    external: Option<ExternalIssuer>,
}

/// The public key, issuer and audience of an external identity provider.
pub struct ExternalIssuer {
    key: DecodingKey,
    algorithm: Algorithm,
    issuer: String,
    audience: String,
}

impl ExternalIssuer {
    /// Reads a PEM public key (RSA → RS256, P-256 → ES256).
    pub fn load(path: &Path, issuer: String, audience: String) -> Result<Self, ConfigError> {
        let pem = std::fs::read(path).map_err(|e| {
            ConfigError::new("--jwt-public-key", format!("cannot read {}: {e}", path.display()))
        })?;
        let (key, algorithm) = if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
            (key, Algorithm::RS256)
        } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
            (key, Algorithm::ES256)
        } else {
            return Err(ConfigError::new(
                "--jwt-public-key",
                format!("{} is not an RSA or EC public key in PEM form", path.display()),
            ));
        };
        Ok(Self { key, algorithm, issuer, audience })
    }
}

/// A freshly signed token and when it expires (unix seconds).
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: i64,
}

/// Why a token was refused; only ever logged at debug level, clients see `invalid_token`.
#[derive(Debug, thiserror::Error)]
#[error("token rejected: {0}")]
pub struct TokenRejected(String);

impl TokenService {
    pub fn new(secret: &[u8], external: Option<ExternalIssuer>) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            external,
        }
    }

    /// Signs an HS256 token for `sub` valid for `ttl` from now.
    pub fn issue(
        &self,
        sub: &str,
        role: Role,
        company: &str,
        name: Option<&str>,
        ttl: Duration,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let expires_at = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2));
        let claims = Claims {
            sub: sub.to_owned(),
            role,
            company: company.to_owned(),
            name: name.map(str::to_owned),
            exp: expires_at,
            iat: Some(now),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(IssuedToken { token, expires_at })
    }

    /// Verifies signature, algorithm, expiry (and issuer/audience for external tokens).
    pub fn verify(&self, token: &str) -> Result<Identity, TokenRejected> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenRejected(e.to_string()))?;
        let claims = match header.alg {
            Algorithm::HS256 => {
                decode::<Claims>(token, &self.decoding, &strict_validation(Algorithm::HS256))
            }
            alg @ (Algorithm::RS256 | Algorithm::ES256) => {
                let external = self
                    .external
                    .as_ref()
                    .filter(|e| e.algorithm == alg)
                    .ok_or_else(|| TokenRejected(format!("{alg:?} is not configured")))?;
                let mut validation = strict_validation(alg);
                validation.set_issuer(&[&external.issuer]);
                validation.set_audience(&[&external.audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                decode::<Claims>(token, &external.key, &validation)
            }
            other => {
                return Err(TokenRejected(format!("algorithm {other:?} is not accepted")));
            }
        }
        .map_err(|e| TokenRejected(e.to_string()))?
        .claims;
        Identity::from_claims(claims).ok_or_else(|| TokenRejected("unusable sub or company".into()))
    }
}

fn strict_validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp"]);
    validation
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn service() -> TokenService {
        TokenService::new(b"0123456789abcdef0123456789abcdef", None)
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn issued_tokens_verify() {
        let svc = service();
        let issued = svc.issue("u1", Role::Agent, "acme", Some("Ann"), Duration::from_secs(60));
        let id = svc.verify(&issued.unwrap().token).unwrap();
        assert_eq!(id.user.id.as_str(), "u1");
        assert_eq!(id.company.as_str(), "acme");
        assert_eq!(&*id.user.name, "Ann");
    }

    #[test]
    fn alg_none_is_rejected() {
        let exp = chrono::Utc::now().timestamp() + 600;
        let token = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&format!(r#"{{"sub":"u","role":"admin","company":"c","exp":{exp}}}"#))
        );
        assert!(service().verify(&token).is_err());
    }

    #[test]
    fn wrong_secret_and_past_expiry_are_rejected() {
        let other = TokenService::new(b"another-secret-another-secret!!", None);
        let token = other.issue("u", Role::Agent, "c", None, Duration::from_secs(60)).unwrap();
        assert!(service().verify(&token.token).is_err());

        let svc = service();
        let claims = Claims {
            sub: "u".into(),
            role: Role::Agent,
            company: "c".into(),
            name: None,
            exp: chrono::Utc::now().timestamp() - 1,
            iat: None,
        };
        let expired = encode(&Header::new(Algorithm::HS256), &claims, &svc.encoding).unwrap();
        assert!(svc.verify(&expired).is_err());
    }

    #[test]
    fn missing_exp_is_rejected() {
        let svc = service();
        let body = serde_json::json!({"sub": "u", "role": "agent", "company": "c"});
        let token = encode(&Header::new(Algorithm::HS256), &body, &svc.encoding).unwrap();
        assert!(svc.verify(&token).is_err());
    }

    #[test]
    fn rs256_without_a_configured_key_is_rejected() {
        let token = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256","typ":"JWT"}"#),
            b64(r#"{"sub":"u","role":"admin","company":"c","exp":99999999999}"#)
        );
        assert!(service().verify(&token).is_err());
    }
}
