//! Token claims on the wire, and the verified [`Identity`] the rest of the hub works with.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

use crate::ids::{CompanyId, UserId};
use crate::user::{Role, UserRef, clean_display_name};

/// The JWT payload of `docs/protocol.md` §2.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub company: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// When the user originally signed in (unix seconds): refreshed tokens keep it, and no
    /// refresh reaches past `--session-max-age-secs` after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// Who signed a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuer {
    /// This hub (HS256): logins, guests, `switchboard token`, refreshes.
    Hub,
    /// The configured external identity provider, which refreshes its own tokens.
    External,
}

/// A caller whose token has been verified.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: UserRef,
    pub company: CompanyId,
    /// Unix seconds at which the token stops being valid.
    pub expires_at: i64,
    /// Unix seconds the token was issued at, when it says.
    pub issued_at: Option<i64>,
    /// Unix seconds of the original sign-in, when the token says.
    pub auth_time: Option<i64>,
    pub issuer: Issuer,
}

impl Identity {
    /// Builds an identity from claims whose signature and expiry were already checked;
    /// `None` when the ids are unusable (empty, too long, control characters).
    pub fn from_claims(claims: Claims, issuer: Issuer) -> Option<Self> {
        let id = UserId::parse(&claims.sub)?;
        let company = CompanyId::parse(&claims.company)?;
        let name = claims
            .name
            .as_deref()
            .map(clean_display_name)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| id.as_str().to_owned());
        Some(Self {
            user: UserRef { id, name: Arc::from(name), role: claims.role },
            company,
            expires_at: claims.exp,
            issued_at: claims.iat,
            auth_time: claims.auth_time,
            issuer,
        })
    }

    pub fn role(&self) -> Role {
        self.user.role
    }
}

/// `exp` required and `nbf` checked, both without leeway.
pub(super) fn strict_validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp"]);
    validation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_roles_do_not_parse() {
        let json = r#"{"sub":"u","role":"root","company":"c","exp":1}"#;
        assert!(serde_json::from_str::<Claims>(json).is_err());
    }

    #[test]
    fn name_defaults_to_the_subject_and_is_cleaned() {
        let claims = |name: Option<&str>| Claims {
            sub: "u-1".into(),
            role: Role::Agent,
            company: "acme".into(),
            name: name.map(str::to_owned),
            exp: 10,
            iat: None,
            auth_time: None,
        };
        assert_eq!(&*Identity::from_claims(claims(None), Issuer::Hub).unwrap().user.name, "u-1");
        assert_eq!(
            &*Identity::from_claims(claims(Some(" Ann\u{7} ")), Issuer::Hub).unwrap().user.name,
            "Ann"
        );
        let mut empty_company = claims(None);
        empty_company.company = String::new();
        assert!(Identity::from_claims(empty_company, Issuer::Hub).is_none());
    }
}
