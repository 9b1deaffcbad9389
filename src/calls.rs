//! Calls: one model for telephony calls reported by providers (Twilio, Vapi, any other through
//! REST) and browser calls placed from the landing page (PROTOCOL.md §6).
//!
//! Every source turns what it received into a [`CallEvent`]; `db::calls::store_event` stores it
//! and moves the call forward in one transaction; only then is the [`CallHub`] told, with a
//! frame encoded once. Statuses only move forward: each has a rank, and the database update is
//! conditional on the rank, so racing webhooks (or two processes) can never move a call back.
//!
//! [`CallHub`]: crate::hubs::CallHub

use actix::Addr;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::calls::StoreError;
use crate::db::models::Call;
use crate::db::{self, DbError, DbPool};
use crate::hubs::calls::{CallChanged, CallHub};
use crate::ids::{CompanyId, UserId};
use crate::protocol::{ServerMessage, timestamp_from_millis};

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

/// Which call an event is about.
#[derive(Debug, Clone)]
pub enum CallTarget {
    /// A call of ours, by id (REST status updates, browser calls).
    Id(String),
    /// A provider's ids for it, `(provider, external id)`, best first; the call is created on
    /// the first event and every key is linked to it.
    Keys(Vec<(String, String)>),
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
    pub owner_id: Option<String>,
    pub direction: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The provider's own id for the call, kept on a call it creates.
    pub provider_call_id: Option<String>,
    /// Browser calls: the user ids taking part.
    pub parties: Vec<String>,
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
            received_at: db::now_millis(),
        }
    }
}

/// What storing one event did.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The call after the event.
    pub call: Call,
    /// The status before the event; `None` when the event created the call.
    pub previous_status: Option<String>,
    /// False for duplicates, stale events and anything after a terminal status.
    pub applied: bool,
    /// The details to show with the change.
    pub data: Value,
    pub received_at: i64,
}

impl StoredEvent {
    /// The `call_status_changed` frame for an applied change.
    pub fn frame(&self) -> crate::protocol::Frame {
        let call = &self.call;
        crate::protocol::encode(&ServerMessage::CallStatusChanged {
            call_id: &call.id,
            status: &call.status,
            previous_status: self.previous_status.as_deref(),
            provider: &call.provider,
            direction: call.direction.as_deref(),
            from: call.from_number.as_deref(),
            to: call.to_number.as_deref(),
            owner_id: call.owner_id.as_deref(),
            ended_reason: call.ended_reason.as_deref(),
            at: timestamp_from_millis(self.received_at),
            data: &self.data,
        })
    }
}

/// Why [`record`] stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The event named a call id that is not one of the company's calls.
    #[error("no such call")]
    UnknownCall,
    /// The database failed; the transaction left nothing behind.
    #[error(transparent)]
    Storage(#[from] DbError),
}

impl From<RecordError> for crate::error::AppError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Storage(e) => crate::error::AppError::storage(e),
            RecordError::UnknownCall => crate::error::AppError::not_found("call"),
        }
    }
}

/// A user id given as a call's owner (a signed URL, trusted metadata, a service's request);
/// `invalid_message` naming `field` when malformed.
pub fn parse_owner(
    value: Option<&str>,
    field: &str,
) -> Result<Option<String>, crate::error::AppError> {
    value
        .map(|v| {
            UserId::parse(v).map(|u| u.to_string()).ok_or_else(|| {
                crate::error::AppError::invalid_message(format!("{field} is not a valid user id"))
            })
        })
        .transpose()
}

/// Stores an event and, when it changed the call, tells the [`CallHub`]: stored first, told
/// after, so nobody hears of a change that could still be lost.
pub async fn record(
    pool: &DbPool,
    call_hub: &Addr<CallHub>,
    event: CallEvent,
) -> Result<StoredEvent, RecordError> {
    record_as(pool, call_hub, event, uuid::Uuid::new_v4().simple().to_string()).await
}

/// [`record`], with the id a call created by this event gets (browser calls choose their own).
pub async fn record_as(
    pool: &DbPool,
    call_hub: &Addr<CallHub>,
    event: CallEvent,
    new_call_id: String,
) -> Result<StoredEvent, RecordError> {
    let stored =
        db::run(pool, move |conn| match db::calls::store_event(conn, &event, &new_call_id) {
            Ok(stored) => Ok(Some(stored)),
            Err(StoreError::UnknownCall) => Ok(None),
            Err(StoreError::Database(e)) => Err(e),
        })
        .await?
        .ok_or(RecordError::UnknownCall)?;
    if stored.applied
        && let Some(company) = CompanyId::parse(&stored.call.company)
    {
        call_hub.do_send(CallChanged {
            company,
            call_id: stored.call.id.clone(),
            owner_id: stored.call.owner_id.as_deref().and_then(UserId::parse),
            rank: stored.call.status_rank,
            frame: stored.frame(),
        });
    }
    Ok(stored)
}

/// A call as REST shows it.
#[derive(Debug, Serialize)]
pub struct CallJson<'a> {
    pub id: &'a str,
    pub company: &'a str,
    pub provider: &'a str,
    pub provider_call_id: Option<&'a str>,
    pub owner_id: Option<&'a str>,
    pub direction: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub status: &'a str,
    pub ended_reason: Option<&'a str>,
    pub created_at: String,
    pub updated_at: String,
    pub ended_at: Option<String>,
}

impl<'a> From<&'a Call> for CallJson<'a> {
    fn from(call: &'a Call) -> Self {
        Self {
            id: &call.id,
            company: &call.company,
            provider: &call.provider,
            provider_call_id: call.provider_call_id.as_deref(),
            owner_id: call.owner_id.as_deref(),
            direction: call.direction.as_deref(),
            from: call.from_number.as_deref(),
            to: call.to_number.as_deref(),
            status: &call.status,
            ended_reason: call.ended_reason.as_deref(),
            created_at: timestamp_from_millis(call.created_at),
            updated_at: timestamp_from_millis(call.updated_at),
            ended_at: call.ended_at.map(timestamp_from_millis),
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
