//! Typed identifiers. A value of one of these types has passed the edge: ids from tokens are
//! non-empty, room names match the contract's pattern. They are cheap to clone (`Arc<str>`),
//! because hub maps and fan-out frames hold many copies of the same few strings.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

macro_rules! shared_str_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

shared_str_id!(
    /// A user id (a token's `sub`), only meaningful inside its company.
    UserId
);
shared_str_id!(
    /// A tenant id (a token's `company`). Every hub map is keyed by it first.
    CompanyId
);
shared_str_id!(
    /// A call's id: ours for browser calls and calls a provider reported (a random hex
    /// string), or whatever a client names in a call frame (checked like other ids, then
    /// looked up inside the caller's company).
    CallId
);
shared_str_id!(
    /// A room name matching `[A-Za-z0-9_.:-]{1,64}`, resolved inside the caller's company.
    RoomName
);

/// Longest user or company id a token may carry.
pub const MAX_ID_LEN: usize = 128;

fn checked_id(value: &str) -> Option<Arc<str>> {
    let ok = !value.is_empty() && value.len() <= MAX_ID_LEN && !value.chars().any(char::is_control);
    ok.then(|| Arc::from(value))
}

impl UserId {
    /// A user id from a verified token or a stored row; `None` when empty, too long or odd.
    pub fn parse(value: &str) -> Option<Self> {
        checked_id(value).map(Self)
    }
}

impl CompanyId {
    /// A company id from a verified token, a stored row or a signed callback; `None` when
    /// empty, too long or odd.
    pub fn parse(value: &str) -> Option<Self> {
        checked_id(value).map(Self)
    }
}

impl CallId {
    /// A fresh id for a call we create.
    pub fn random() -> Self {
        Self(Arc::from(random_uuid().simple().to_string()))
    }

    /// A call id from a client frame, a URL path or a stored row; `None` when empty, too long
    /// or odd.
    pub fn parse(value: &str) -> Option<Self> {
        checked_id(value).map(Self)
    }
}

/// Call ids arrive in client frames; one that is not an id is an `invalid_message`.
impl<'de> serde::Deserialize<'de> for CallId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&raw).ok_or_else(|| serde::de::Error::custom("call_id is not a valid id"))
    }
}

/// Ids read back from another node's bus envelope (`crate::cluster`) pass the same checks as
/// at the edge.
macro_rules! deserialize_by_parse {
    ($($name:ident),*) => {$(
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&raw).ok_or_else(|| {
                    serde::de::Error::custom(concat!(stringify!($name), " is not valid"))
                })
            }
        }
    )*};
}

deserialize_by_parse!(UserId, CompanyId, RoomName, ConnId);

impl RoomName {
    /// The automatic room that holds every connected agent and admin of a company.
    pub const AGENTS: &'static str = "agents";

    /// Parses a client-supplied room name; `None` when it breaks the contract's rule.
    pub fn parse(value: &str) -> Option<Self> {
        let ok = (1..=64).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
        ok.then(|| Self(Arc::from(value)))
    }

    /// The `agents` room.
    pub fn agents() -> Self {
        Self(Arc::from(Self::AGENTS))
    }

    pub fn is_agents(&self) -> bool {
        &*self.0 == Self::AGENTS
    }

    /// The room of a browser call, `call:<call_id>`, whose parties may join it.
    pub fn call_id(&self) -> Option<CallId> {
        self.0.strip_prefix("call:").and_then(CallId::parse)
    }
}

/// One WebSocket connection. Random, so a session id says nothing about how many exist.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(uuid::Uuid);

impl ConnId {
    pub fn random() -> Self {
        Self(random_uuid())
    }

    pub fn parse(value: &str) -> Option<Self> {
        uuid::Uuid::try_parse(value).ok().map(Self)
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn:{}", self.0.simple())
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.simple(), f)
    }
}

impl Serialize for ConnId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A version-4 UUID from the operating system's randomness, like `Uuid::new_v4`, but drawn
/// from a per-thread pool refilled 256 ids at a time: one `getrandom` call per id was two
/// system calls in every WebSocket handshake (its id and its request id).
pub fn random_uuid() -> uuid::Uuid {
    const ID: usize = 16;
    thread_local! {
        static POOL: std::cell::RefCell<([u8; 256 * ID], usize)> =
            const { std::cell::RefCell::new(([0; 256 * ID], 256 * ID)) };
    }
    POOL.with_borrow_mut(|(bytes, used)| {
        if *used == bytes.len() {
            getrandom::fill(bytes).unwrap_or_else(|e| panic!("no OS random source: {e}"));
            *used = 0;
        }
        let mut id = [0; ID];
        id.copy_from_slice(&bytes[*used..*used + ID]);
        // Each id's bytes are used once and wiped, so none is ever handed out twice.
        bytes[*used..*used + ID].fill(0);
        *used += ID;
        uuid::Builder::from_random_bytes(id).into_uuid()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_follow_the_contract() {
        for good in ["a", "agents", "call:123", "team.sales-2_x", &"r".repeat(64)] {
            assert!(RoomName::parse(good).is_some(), "{good}");
        }
        for bad in ["", "has space", "ümlaut", "a/b", &"r".repeat(65), "x\n"] {
            assert!(RoomName::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(RoomName::parse("call:abc").unwrap().call_id(), CallId::parse("abc"));
        assert!(RoomName::parse("agents").unwrap().is_agents());
    }

    #[test]
    fn ids_reject_empty_long_and_control_characters() {
        assert!(UserId::parse("u-1").is_some());
        assert!(UserId::parse("").is_none());
        assert!(UserId::parse(&"x".repeat(MAX_ID_LEN + 1)).is_none());
        assert!(CompanyId::parse("acme\u{0}").is_none());
        assert!(serde_json::from_str::<CallId>("\"c-1\"").is_ok());
        assert!(serde_json::from_str::<CallId>("\"\"").is_err());
        assert_ne!(CallId::random(), CallId::random());
    }

    #[test]
    fn random_ids_are_v4_and_distinct_across_refills() {
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| random_uuid()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.get_version_num() == 4));
    }
}
