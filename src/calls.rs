//! The call model (`docs/protocol.md` §6): one model for telephony calls
//! reported by providers (Twilio, Vapi, any other through REST) and browser calls placed from
//! the landing page. Pure data: nothing here stores or sends anything.
//!
//! Every source turns what it received into a [`CallEvent`]. `db::calls::store_event` stores it
//! and moves the call forward in one transaction; `hubs::calls::record` then tells the
//! `CallHub`. Statuses only move forward: each has a [`CallStatus::rank`], and the database
//! update is conditional on it, so racing webhooks (or two processes) never move a call back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{CallId, CompanyId, UserId};

/// A call's status; see [`CallStatus::rank`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Ended,
    Failed,
}

impl CallStatus {
    /// Position in `queued → initiated → ringing → in-progress → ended | failed`.
    pub fn rank(self) -> i32 {
        match self {
            CallStatus::Queued => 0,
            CallStatus::Initiated => 1,
            CallStatus::Ringing => 2,
            CallStatus::InProgress => 3,
            CallStatus::Ended | CallStatus::Failed => TERMINAL_RANK,
        }
    }

    pub fn is_terminal(self) -> bool {
        self.rank() == TERMINAL_RANK
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Ended => "ended",
            CallStatus::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "queued" => CallStatus::Queued,
            "initiated" => CallStatus::Initiated,
            "ringing" => CallStatus::Ringing,
            "in-progress" => CallStatus::InProgress,
            "ended" => CallStatus::Ended,
            "failed" => CallStatus::Failed,
            _ => return None,
        })
    }
}

/// Rank of `ended` and `failed`: nothing moves a call out of them.
pub const TERMINAL_RANK: i32 = 4;

/// A provider's own id for a call: `(provider, external id)`, e.g. `("twilio", "CA…")`.
pub type ProviderKey = (String, String);

/// Which call an event is about.
#[derive(Debug, Clone)]
pub enum CallTarget {
    /// A call of ours, by id (REST status updates).
    Id(CallId),
    /// A provider's ids for it, best first; the call is created on the first event and every
    /// key is linked to it.
    Keys(Vec<ProviderKey>),
}

/// Which company an event belongs to.
#[derive(Debug, Clone)]
pub enum CompanyChoice {
    /// Named by something we trust: a signed callback URL, a token, Vapi call metadata.
    Known(CompanyId),
    /// Unnamed: the company that registered one of the event's keys, else this default.
    RegisteredElse(CompanyId),
}

/// One status report about a call, from any source, normalized.
#[derive(Debug, Clone)]
pub struct CallEvent {
    pub company: CompanyChoice,
    pub target: CallTarget,
    /// Who reported it: `twilio`, `vapi`, `browser`, or another provider through REST.
    pub provider: String,
    pub status: CallStatus,
    pub ended_reason: Option<String>,
    /// Twilio's `SequenceNumber`: a lower or equal one than the last applied is stale.
    pub sequence: Option<i64>,
    pub owner_id: Option<UserId>,
    pub direction: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The provider's own id for the call, kept on a call it creates.
    pub provider_call_id: Option<String>,
    /// Browser calls: the users taking part.
    pub parties: Vec<UserId>,
    /// The event as received, for the call's event log.
    pub payload: Value,
    /// The provider details shown in `call_status_changed`.
    pub data: Value,
    /// Unix milliseconds.
    pub received_at: i64,
}

impl CallEvent {
    /// An event saying only who reported which status of which call, received now; the
    /// details default to unknown (set the fields a source has with struct update syntax).
    pub fn new(
        company: CompanyChoice,
        target: CallTarget,
        provider: impl Into<String>,
        status: CallStatus,
    ) -> Self {
        Self {
            company,
            target,
            provider: provider.into(),
            status,
            ended_reason: None,
            sequence: None,
            owner_id: None,
            direction: None,
            from: None,
            to: None,
            provider_call_id: None,
            parties: Vec::new(),
            payload: Value::Null,
            data: Value::Null,
            received_at: crate::time::now_millis(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_rank_forward() {
        let order = ["queued", "initiated", "ringing", "in-progress", "ended"];
        let ranks: Vec<i32> = order.iter().map(|s| CallStatus::parse(s).unwrap().rank()).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(CallStatus::Failed.rank(), CallStatus::Ended.rank());
        assert!(CallStatus::Failed.is_terminal() && !CallStatus::InProgress.is_terminal());
        for s in order {
            assert_eq!(CallStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(CallStatus::parse("completed").is_none());
    }
}
