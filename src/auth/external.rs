//! Tokens of an external identity provider (`docs/protocol.md` §2): Auth0, Keycloak, Firebase,
//! Cognito. Their keys come from a PEM file (`--jwt-public-key`) or from the provider's JWKS
//! (`--jwt-jwks-url`), fetched at start and again whenever a token names a key id we do not
//! know (at most once per [`REFETCH_EVERY`]: keys rotate without a restart, and a JWKS that
//! cannot be fetched keeps the last good keys). Every token must carry the configured `iss` and
//! `aud`; role and company are read where the provider puts them (`--jwt-role-claim`,
//! `--jwt-company-claim`).

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use google_calendar3::hyper;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Header, decode};
use serde_json::Value;

use super::claims::{Claims, Identity, Issuer, strict_validation};
use crate::config::ConfigError;
use crate::outbound::{self, HttpClient};
use crate::user::Role;

/// How often an unknown key id may make the hub fetch the JWKS again.
pub const REFETCH_EVERY: Duration = Duration::from_secs(30);
/// Longest a JWKS fetch may take, and the largest JWKS read.
const FETCH_DEADLINE: Duration = Duration::from_secs(10);
const MAX_JWKS: usize = 256 * 1024;

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// Signed with a key id the JWKS did not have when last fetched.
    #[error("unknown key id '{0}'")]
    UnknownKey(String),
    #[error(transparent)]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("{0}")]
    Claims(&'static str),
    #[error("{0}")]
    Other(String),
}

/// Where in an external token's claims a value is: a top-level claim named exactly so (an
/// Auth0 namespaced claim such as `https://example.com/role` included), else a dotted path
/// into objects (`app_metadata.role`).
#[derive(Debug, Clone)]
pub struct ClaimPath(String);

impl ClaimPath {
    pub fn new(path: impl Into<String>) -> Self {
        Self(path.into())
    }

    fn find<'a>(&self, claims: &'a Value) -> Option<&'a Value> {
        claims.get(&self.0).or_else(|| self.0.split('.').try_fold(claims, |v, key| v.get(key)))
    }
}

/// The configured provider: its keys, issuer, audience and where its tokens say role and
/// company.
pub struct ExternalIssuer {
    keys: Keys,
    issuer: String,
    audience: String,
    role_claim: ClaimPath,
    company_claim: ClaimPath,
}

enum Keys {
    Pem { key: DecodingKey, algorithm: Algorithm },
    Jwks(Box<Jwks>),
}

struct Jwks {
    url: String,
    http: HttpClient,
    /// By key id.
    keys: RwLock<HashMap<String, (DecodingKey, Algorithm)>>,
    /// When an unknown key id last made us fetch the JWKS; held across a fetch, so concurrent
    /// callers wait for it instead of fetching too.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
}

impl ExternalIssuer {
    /// A provider whose one key is a PEM file (RSA → RS256, P-256 → ES256).
    pub fn from_pem(
        path: &Path,
        issuer: String,
        audience: String,
        claims: (ClaimPath, ClaimPath),
    ) -> Result<Self, ConfigError> {
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
        let keys = Keys::Pem { key, algorithm };
        Ok(Self { keys, issuer, audience, role_claim: claims.0, company_claim: claims.1 })
    }

    /// A provider whose keys are published as a JWKS at `url` (fetched by [`refetch_keys`]).
    ///
    /// [`refetch_keys`]: Self::refetch_keys
    pub fn from_jwks(
        url: String,
        http: HttpClient,
        issuer: String,
        audience: String,
        claims: (ClaimPath, ClaimPath),
    ) -> Self {
        let jwks = Jwks {
            url,
            http,
            keys: RwLock::new(HashMap::new()),
            last_refetch: tokio::sync::Mutex::new(None),
        };
        let keys = Keys::Jwks(Box::new(jwks));
        Self { keys, issuer, audience, role_claim: claims.0, company_claim: claims.1 }
    }

    /// Fetches the JWKS (at start). A failed fetch keeps the keys we have.
    pub async fn fetch_keys(&self) {
        if let Keys::Jwks(jwks) = &self.keys {
            jwks.load().await;
        }
    }

    /// Fetches the JWKS again for a token with an unknown key id, unless an unknown key id made
    /// us fetch it less than `REFETCH_EVERY` ago (a stream of made-up key ids costs the
    /// provider one request per period). A failed fetch keeps the keys we have.
    pub async fn refetch_keys(&self) {
        let Keys::Jwks(jwks) = &self.keys else { return };
        let mut last = jwks.last_refetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < REFETCH_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        jwks.load().await;
    }

    /// Verifies a token of this provider with the keys at hand.
    pub fn verify(&self, token: &str, header: &Header) -> Result<Identity, Rejection> {
        let claims: Value = match &self.keys {
            Keys::Pem { key, algorithm } if *algorithm == header.alg => {
                decode(token, key, &self.validation(header.alg))?.claims
            }
            Keys::Pem { .. } => {
                return Err(Rejection::Other(format!("{:?} is not configured", header.alg)));
            }
            Keys::Jwks(jwks) => {
                let kid =
                    header.kid.as_deref().ok_or(Rejection::Claims("the token names no key id"))?;
                let keys = jwks.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner());
                let (key, algorithm) =
                    keys.get(kid).ok_or_else(|| Rejection::UnknownKey(kid.to_owned()))?;
                if *algorithm != header.alg {
                    return Err(Rejection::Claims("the key is not for this algorithm"));
                }
                decode(token, key, &self.validation(header.alg))?.claims
            }
        };
        self.identity(&claims)
    }

    fn validation(&self, alg: Algorithm) -> jsonwebtoken::Validation {
        let mut validation = strict_validation(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation
    }

    /// Reads sub, role, company and name where this provider puts them.
    fn identity(&self, claims: &Value) -> Result<Identity, Rejection> {
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
        let sub = text(claims.get("sub")).ok_or(Rejection::Claims("the token has no sub"))?;
        let role =
            text(self.role_claim.find(claims)).ok_or(Rejection::Claims("the token has no role"))?;
        let role = Role::from_str(&role).map_err(Rejection::Other)?;
        let company = text(self.company_claim.find(claims))
            .ok_or(Rejection::Claims("the token has no company"))?;
        let number = |key: &str| claims.get(key).and_then(Value::as_i64);
        let claims = Claims {
            sub,
            role,
            company,
            name: text(claims.get("name")),
            exp: number("exp").unwrap_or_default(),
            iat: number("iat"),
            auth_time: number("auth_time"),
        };
        Identity::from_claims(claims, Issuer::External)
            .ok_or(Rejection::Claims("unusable sub or company"))
    }
}

impl Jwks {
    /// Replaces the keys with a fresh fetch; keeps them when the fetch fails.
    async fn load(&self) {
        match self.fetch().await {
            Ok(keys) => {
                log::info!("fetched {} signing keys from the JWKS", keys.len());
                *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
            }
            Err(e) => log::warn!("cannot fetch the JWKS ({e}); keeping the keys we have"),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, (DecodingKey, Algorithm)>, String> {
        let request = hyper::Request::get(&self.url)
            .header(hyper::header::ACCEPT, "application/json")
            .body(outbound::body(Vec::new()))
            .map_err(|e| e.to_string())?;
        let (status, bytes) = outbound::send(&self.http, request, FETCH_DEADLINE, MAX_JWKS).await?;
        if !status.is_success() {
            return Err(format!("the JWKS answered {status}"));
        }
        let set: JwkSet = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        Ok(set.keys.iter().filter_map(usable_key).collect())
    }
}

/// A JWK we can verify with: it has a key id and is an RS256 or ES256 (P-256) key.
fn usable_key(jwk: &Jwk) -> Option<(String, (DecodingKey, Algorithm))> {
    let kid = jwk.common.key_id.clone()?;
    let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(KeyAlgorithm::RS256), _) | (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        (Some(KeyAlgorithm::ES256), _) => Algorithm::ES256,
        (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return None,
    };
    Some((kid, (DecodingKey::from_jwk(jwk).ok()?, algorithm)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_paths_reach_into_objects_and_take_whole_names_first() {
        let claims = serde_json::json!({
            "app_metadata": {"role": "agent", "org": {"id": "acme"}},
            "https://example.com/company": "globex",
        });
        assert_eq!(ClaimPath::new("app_metadata.role").find(&claims).unwrap(), "agent");
        assert_eq!(ClaimPath::new("app_metadata.org.id").find(&claims).unwrap(), "acme");
        assert_eq!(ClaimPath::new("https://example.com/company").find(&claims).unwrap(), "globex");
        assert!(ClaimPath::new("role").find(&claims).is_none());
    }
}
