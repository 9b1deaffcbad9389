//! Token claims on the wire, and the verified [`Identity`] the rest of the hub works with.

use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::{CompanyId, UserId};
use crate::protocol::UserRef;

/// What a token lets its holder be. Unknown roles make the token invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Agent,
    Admin,
    Service,
}

impl Role {
    /// Agents and admins: the people on the dashboard ("the company's agents").
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Agent | Role::Admin)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent => "agent",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "customer" => Ok(Role::Customer),
            "agent" => Ok(Role::Agent),
            "admin" => Ok(Role::Admin),
            "service" => Ok(Role::Service),
            other => Err(format!("unknown role '{other}' (customer, agent, admin, service)")),
        }
    }
}

/// The JWT payload of PROTOCOL.md §2.
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
}

/// Longest display name kept from a token or a guest request.
pub const MAX_NAME_CHARS: usize = 80;

/// A caller whose token has been verified.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: UserRef,
    pub company: CompanyId,
    /// Unix seconds at which the token stops being valid.
    pub expires_at: i64,
    /// Unix seconds the token was issued at, when it says.
    pub issued_at: Option<i64>,
}

impl Identity {
    /// Builds an identity from claims whose signature and expiry were already checked;
    /// `None` when the ids are unusable (empty, too long, control characters).
    pub fn from_claims(claims: Claims) -> Option<Self> {
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
        })
    }

    pub fn role(&self) -> Role {
        self.user.role
    }
}

/// Trims a display name and cuts it to [`MAX_NAME_CHARS`], dropping control characters.
pub fn clean_display_name(raw: &str) -> String {
    crate::protocol::clean_text(raw, MAX_NAME_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_roles_do_not_parse() {
        let json = r#"{"sub":"u","role":"root","company":"c","exp":1}"#;
        assert!(serde_json::from_str::<Claims>(json).is_err());
        assert_eq!("agent".parse::<Role>().unwrap(), Role::Agent);
        assert!("Agent".parse::<Role>().is_err());
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
        };
        assert_eq!(&*Identity::from_claims(claims(None)).unwrap().user.name, "u-1");
        assert_eq!(&*Identity::from_claims(claims(Some(" Ann\u{7} "))).unwrap().user.name, "Ann");
        let mut empty_company = claims(None);
        empty_company.company = String::new();
        assert!(Identity::from_claims(empty_company).is_none());
    }
}
