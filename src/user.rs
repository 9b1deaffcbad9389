//! Who a user is to the rest of the hub: their [`Role`], and the [`UserRef`] other people see
//! (id, display name, role). Display text from clients is cleaned here before anyone else sees
//! it. A leaf module: tokens (`auth`), the wire (`protocol`) and the hubs all build on it.

use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::UserId;

/// What a token lets its holder be. Unknown roles make the token invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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

/// A user as other users see it: `{"id","name","role"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct UserRef {
    pub id: UserId,
    #[schema(value_type = String)]
    pub name: Arc<str>,
    pub role: Role,
}

/// Longest display name kept from a token or a guest request.
pub const MAX_NAME_CHARS: usize = 80;

/// Client text shown on other people's screens: trimmed, without control characters or
/// bidirectional formatting characters (which could make a name read backwards or hide part of
/// it), cut to `max_chars`.
pub fn clean_text(raw: &str, max_chars: usize) -> String {
    raw.chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .collect::<String>()
        .trim()
        .chars()
        .take(max_chars)
        .collect()
}

/// Unicode's bidirectional formatting characters: embeddings, overrides, isolates and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Trims a display name and cuts it to [`MAX_NAME_CHARS`], dropping control characters.
pub fn clean_display_name(raw: &str) -> String {
    clean_text(raw, MAX_NAME_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_exactly() {
        assert_eq!("agent".parse::<Role>().unwrap(), Role::Agent);
        assert!("Agent".parse::<Role>().is_err());
        assert!(Role::Admin.is_staff() && !Role::Customer.is_staff());
    }

    #[test]
    fn display_text_is_cleaned() {
        assert_eq!(clean_display_name(" Ann\u{7} "), "Ann");
        assert_eq!(clean_text("abcdef", 3), "abc");
        assert_eq!(clean_display_name("\u{202E}nhoJ\u{202C} admin"), "nhoJ admin");
        assert_eq!(clean_display_name("a\u{2066}b\u{2069}\u{200F}"), "ab");
    }
}
