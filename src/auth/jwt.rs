//! Issuing and verifying JWTs (`docs/protocol.md` §2). Our own tokens are HS256 with the hub's
//! secret; tokens of an external identity provider are RS256 or ES256 ([`ExternalIssuer`]). The
//! key is chosen by the token's algorithm, and each key only verifies its own family, so an
//! RS256 public key can never be used as an HS256 secret. `exp` is required and checked without
//! leeway, `nbf` when present; a disabled account's tokens are refused.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};

use super::claims::{Claims, Identity, Issuer, strict_validation};
use super::disabled::DisabledUsers;
use super::external::{ExternalIssuer, Rejection};
use crate::user::Role;

/// Verifies every token the hub sees and signs the ones it hands out.
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The checks of our own HS256 tokens, built once (it allocates).
    validation: Validation,
    external: Option<ExternalIssuer>,
    disabled: DisabledUsers,
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
pub struct TokenRejected(pub String);

impl TokenService {
    pub fn new(secret: &[u8], external: Option<ExternalIssuer>) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation: strict_validation(Algorithm::HS256),
            external,
            disabled: DisabledUsers::default(),
        }
    }

    /// Fetches the external provider's JWKS, when there is one (at start; later fetches happen
    /// on unknown key ids).
    pub async fn fetch_external_keys(&self) {
        if let Some(external) = &self.external {
            external.fetch_keys().await;
        }
    }

    /// The set of disabled accounts this service refuses, to be kept current by the caller.
    pub fn disabled_users(&self) -> &DisabledUsers {
        &self.disabled
    }

    /// Signs an HS256 token for `sub` valid for `ttl` from now: a new sign-in.
    pub fn issue(
        &self,
        sub: &str,
        role: Role,
        company: &str,
        name: Option<&str>,
        ttl: Duration,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        self.sign(sub, role, company, name, ttl, now)
    }

    /// Signs a new token for a verified identity that keeps its original sign-in time.
    pub fn reissue(
        &self,
        identity: &Identity,
        ttl: Duration,
        auth_time: i64,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let user = &identity.user;
        let name = Some(&*user.name);
        self.sign(user.id.as_str(), user.role, identity.company.as_str(), name, ttl, auth_time)
    }

    fn sign(
        &self,
        sub: &str,
        role: Role,
        company: &str,
        name: Option<&str>,
        ttl: Duration,
        auth_time: i64,
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
            auth_time: Some(auth_time),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(IssuedToken { token, expires_at })
    }

    /// Verifies signature, algorithm, expiry, `nbf` (and issuer, audience and claims for
    /// external tokens) with the keys at hand, and that the account is not disabled.
    pub fn verify(&self, token: &str) -> Result<Identity, TokenRejected> {
        self.verify_with_known_keys(token).map_err(|e| TokenRejected(e.to_string()))
    }

    /// [`verify`](Self::verify), but a token signed with a key the external provider's JWKS
    /// did not have yet makes the hub fetch the JWKS again (at most once per 30 s) first: keys
    /// rotate without a restart.
    pub async fn verify_fresh(&self, token: &str) -> Result<Identity, TokenRejected> {
        match self.verify_with_known_keys(token) {
            Err(Rejection::UnknownKey(kid)) => {
                let Some(external) = &self.external else {
                    return Err(TokenRejected(format!("unknown key {kid}")));
                };
                external.refetch_keys().await;
                self.verify(token)
            }
            other => other.map_err(|e| TokenRejected(e.to_string())),
        }
    }

    fn verify_with_known_keys(&self, token: &str) -> Result<Identity, Rejection> {
        let header = jsonwebtoken::decode_header(token).map_err(Rejection::from)?;
        let identity = match header.alg {
            Algorithm::HS256 => {
                let claims = decode::<Claims>(token, &self.decoding, &self.validation)?.claims;
                Identity::from_claims(claims, Issuer::Hub)
                    .ok_or(Rejection::Claims("unusable sub or company"))?
            }
            Algorithm::RS256 | Algorithm::ES256 => match &self.external {
                Some(external) => external.verify(token, &header)?,
                None => {
                    return Err(Rejection::Other(format!("{:?} is not configured", header.alg)));
                }
            },
            other => return Err(Rejection::Other(format!("algorithm {other:?} is not accepted"))),
        };
        if self.disabled.contains(&identity.company, &identity.user.id) {
            return Err(Rejection::Claims("the account is disabled"));
        }
        Ok(identity)
    }
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

    fn sign(svc: &TokenService, body: &serde_json::Value) -> String {
        encode(&Header::new(Algorithm::HS256), body, &svc.encoding).unwrap()
    }

    #[test]
    fn issued_tokens_verify() {
        let svc = service();
        let issued = svc.issue("u1", Role::Agent, "acme", Some("Ann"), Duration::from_secs(60));
        let id = svc.verify(&issued.unwrap().token).unwrap();
        assert_eq!(id.user.id.as_str(), "u1");
        assert_eq!(id.company.as_str(), "acme");
        assert_eq!(&*id.user.name, "Ann");
        assert_eq!(id.issuer, Issuer::Hub);
        assert!(id.auth_time.is_some());
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
    fn wrong_secret_past_expiry_and_future_nbf_are_rejected() {
        let other = TokenService::new(b"another-secret-another-secret!!", None);
        let token = other.issue("u", Role::Agent, "c", None, Duration::from_secs(60)).unwrap();
        assert!(service().verify(&token.token).is_err());

        let svc = service();
        let now = chrono::Utc::now().timestamp();
        let expired =
            serde_json::json!({"sub": "u", "role": "agent", "company": "c", "exp": now - 1});
        assert!(svc.verify(&sign(&svc, &expired)).is_err());
        let early = serde_json::json!({"sub": "u", "role": "agent", "company": "c",
                                       "exp": now + 600, "nbf": now + 300});
        assert!(svc.verify(&sign(&svc, &early)).is_err());
        let ripe = serde_json::json!({"sub": "u", "role": "agent", "company": "c",
                                      "exp": now + 600, "nbf": now - 1});
        assert!(svc.verify(&sign(&svc, &ripe)).is_ok());
    }

    #[test]
    fn missing_exp_is_rejected() {
        let svc = service();
        let body = serde_json::json!({"sub": "u", "role": "agent", "company": "c"});
        assert!(svc.verify(&sign(&svc, &body)).is_err());
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

    #[test]
    fn a_disabled_accounts_tokens_are_refused() {
        let svc = service();
        let token = svc.issue("u1", Role::Agent, "acme", None, Duration::from_secs(60)).unwrap();
        let key = (
            crate::ids::CompanyId::parse("acme").unwrap(),
            crate::ids::UserId::parse("u1").unwrap(),
        );
        svc.disabled_users().replace([key].into_iter().collect());
        assert!(svc.verify(&token.token).is_err());
        svc.disabled_users().replace(Default::default());
        assert!(svc.verify(&token.token).is_ok());
    }
}
