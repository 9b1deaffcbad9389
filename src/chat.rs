//! The chat model (`docs/protocol.md` §8): conversation ids, the one rule that decides who may
//! see a conversation, and what a message may carry. Pure data and checks: `db::chat` stores,
//! `hubs::chat` orders and delivers, the WebSocket and REST handlers call both.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::ids::UserId;
use crate::user::{Role, UserRef};

/// Longest message text, in characters after trimming.
pub const MAX_TEXT_CHARS: usize = 4000;
/// Largest `meta`, as compact JSON.
pub const MAX_META_BYTES: usize = 1024;
/// Longest `client_id`.
pub const MAX_CLIENT_ID_CHARS: usize = 64;

/// A conversation of one company.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConversationId {
    /// `support:<customer>`: one customer and the company's team.
    Support { customer: UserId },
    /// `direct:<a>:<b>`: two staff users, `a` before `b` in byte order.
    Direct { a: UserId, b: UserId },
}

impl ConversationId {
    /// Parses a conversation id a client names; `None` for anything but the canonical forms
    /// (a direct id with its two users out of order, or one user twice, is not one).
    pub fn parse(value: &str) -> Option<Self> {
        if let Some(customer) = value.strip_prefix("support:") {
            return UserId::parse(customer).map(|customer| Self::Support { customer });
        }
        let (a, b) = value.strip_prefix("direct:")?.split_once(':')?;
        let (a, b) = (UserId::parse(a)?, UserId::parse(b)?);
        (a.as_str().as_bytes() < b.as_str().as_bytes()).then_some(Self::Direct { a, b })
    }

    /// The direct conversation of two staff users (in either order); `None` for one user.
    pub fn direct(one: &UserId, other: &UserId) -> Option<Self> {
        match one.as_str().as_bytes().cmp(other.as_str().as_bytes()) {
            std::cmp::Ordering::Less => Some(Self::Direct { a: one.clone(), b: other.clone() }),
            std::cmp::Ordering::Greater => Some(Self::Direct { a: other.clone(), b: one.clone() }),
            std::cmp::Ordering::Equal => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Support { .. } => "support",
            Self::Direct { .. } => "direct",
        }
    }

    /// Whether `user` may read and write this conversation: the one rule, for REST and
    /// WebSocket alike. Customers: their own support conversation. Staff: every support
    /// conversation of their company and their own direct ones. Services: all of their
    /// company's. (The company is never in question: ids are always looked up inside the
    /// caller's company.)
    pub fn admits(&self, user: &UserRef) -> bool {
        match (self, user.role) {
            (_, Role::Service) => true,
            (Self::Support { customer }, Role::Customer) => customer == &user.id,
            (Self::Support { .. }, Role::Agent | Role::Admin) => true,
            (Self::Direct { a, b }, Role::Agent | Role::Admin) => a == &user.id || b == &user.id,
            (Self::Direct { .. }, Role::Customer) => false,
        }
    }

    /// The other staff user of a direct conversation.
    pub fn other_member(&self, user: &UserId) -> Option<&UserId> {
        match self {
            Self::Direct { a, b } if a == user => Some(b),
            Self::Direct { a, b } if b == user => Some(a),
            _ => None,
        }
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Support { customer } => write!(f, "support:{customer}"),
            Self::Direct { a, b } => write!(f, "direct:{a}:{b}"),
        }
    }
}

impl Serialize for ConversationId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ConversationId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&raw).ok_or_else(|| serde::de::Error::custom("not a conversation id"))
    }
}

/// Why a message could not be taken as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

/// What a sender asks to store, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub text: String,
    /// Compact JSON of an object, when given.
    pub meta: Option<String>,
    pub client_id: Option<String>,
}

impl Draft {
    /// Checks text (1–4000 characters after trimming), meta (an object of at most 1 KiB) and
    /// client_id (1–64 printable characters).
    pub fn new(
        text: &str,
        meta: Option<Value>,
        client_id: Option<String>,
    ) -> Result<Self, Invalid> {
        let text = text.trim();
        let chars = text.chars().count();
        if chars == 0 || chars > MAX_TEXT_CHARS {
            return Err(Invalid("text must be 1-4000 characters"));
        }
        let meta = match meta {
            None | Some(Value::Null) => None,
            Some(value @ Value::Object(_)) => {
                let compact = value.to_string();
                if compact.len() > MAX_META_BYTES {
                    return Err(Invalid("meta may be at most 1 KiB"));
                }
                Some(compact)
            }
            Some(_) => return Err(Invalid("meta must be a JSON object")),
        };
        if let Some(id) = &client_id {
            let ok = (1..=MAX_CLIENT_ID_CHARS).contains(&id.chars().count())
                && !id.chars().any(char::is_control);
            if !ok {
                return Err(Invalid("client_id must be 1-64 printable characters"));
            }
        }
        Ok(Self { text: text.to_owned(), meta, client_id })
    }
}

/// Which messages of a history page, relative to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
    All,
}

impl Direction {
    pub fn parse(value: Option<&str>) -> Option<Self> {
        match value {
            None | Some("" | "all") => Some(Self::All),
            Some("sent") => Some(Self::Sent),
            Some("received") => Some(Self::Received),
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn user(id: &str, role: Role) -> UserRef {
        UserRef { id: UserId::parse(id).unwrap(), name: Arc::from(id), role }
    }

    #[test]
    fn ids_parse_only_in_canonical_form() {
        assert_eq!(
            ConversationId::parse("support:guest-1").unwrap().to_string(),
            "support:guest-1"
        );
        assert_eq!(ConversationId::parse("direct:ann:bob").unwrap().to_string(), "direct:ann:bob");
        for bad in ["direct:bob:ann", "direct:ann:ann", "direct:ann", "support:", "room:x", ""] {
            assert!(ConversationId::parse(bad).is_none(), "{bad}");
        }
        let (ann, bob) = (UserId::parse("ann").unwrap(), UserId::parse("bob").unwrap());
        assert_eq!(ConversationId::direct(&bob, &ann), ConversationId::parse("direct:ann:bob"));
        assert!(ConversationId::direct(&ann, &ann).is_none());
    }

    #[test]
    fn only_participants_are_admitted() {
        let support = ConversationId::parse("support:guest-1").unwrap();
        let direct = ConversationId::parse("direct:ann:bob").unwrap();
        assert!(support.admits(&user("guest-1", Role::Customer)));
        assert!(!support.admits(&user("guest-2", Role::Customer)));
        assert!(support.admits(&user("carl", Role::Agent)));
        assert!(direct.admits(&user("bob", Role::Admin)));
        assert!(!direct.admits(&user("carl", Role::Agent)));
        assert!(!direct.admits(&user("ann", Role::Customer)));
        assert!(direct.admits(&user("crm", Role::Service)));
    }

    #[test]
    fn drafts_are_checked() {
        assert_eq!(Draft::new("  hi  ", None, None).unwrap().text, "hi");
        assert!(Draft::new("   ", None, None).is_err());
        assert!(Draft::new(&"x".repeat(4001), None, None).is_err());
        assert!(Draft::new(&"é".repeat(4000), None, None).is_ok());
        assert!(Draft::new("hi", Some(serde_json::json!([1])), None).is_err());
        let big = serde_json::json!({"k": "v".repeat(1100)});
        assert!(Draft::new("hi", Some(big), None).is_err());
        let meta = Draft::new("hi", Some(serde_json::json!({"appointment": 7})), None).unwrap();
        assert_eq!(meta.meta.as_deref(), Some(r#"{"appointment":7}"#));
        assert!(Draft::new("hi", None, Some("x".repeat(65))).is_err());
        assert!(Draft::new("hi", None, Some(String::new())).is_err());
    }
}
