//! Recording a call event: webhook and REST handlers (and the CallHub itself, for browser
//! calls) call [`record`]; the event is stored and the call moved forward in one transaction,
//! and only then is the hub told ([`CallChanged`], with the frame encoded once). Nobody hears
//! of a change that could still be lost.

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::calls::CallEvent;
use crate::db::calls::{StoreError, StoredEvent};
use crate::db::{self, DbError, DbPool};
use crate::ids::{CallId, CompanyId, UserId};
use crate::protocol::{Frame, ServerMessage, encode};
use crate::time::timestamp_from_millis;

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

/// Stores an event and, when it changed the call, tells the `CallHub` (`call_hub`): stored
/// first, told after.
pub async fn record<H>(
    pool: &DbPool,
    call_hub: &Addr<H>,
    event: CallEvent,
) -> Result<StoredEvent, RecordError>
where
    H: Handler<CallChanged>,
    H::Context: ToEnvelope<H, CallChanged>,
{
    record_as(pool, call_hub, event, CallId::random()).await
}

/// [`record`], with the id a call created by this event gets (browser calls choose their own).
pub async fn record_as<H>(
    pool: &DbPool,
    call_hub: &Addr<H>,
    event: CallEvent,
    new_call_id: CallId,
) -> Result<StoredEvent, RecordError>
where
    H: Handler<CallChanged>,
    H::Context: ToEnvelope<H, CallChanged>,
{
    let stored = db::run(pool, move |conn| {
        match db::calls::store_event(conn, &event, new_call_id.as_str()) {
            Ok(stored) => Ok(Some(stored)),
            Err(StoreError::UnknownCall) => Ok(None),
            Err(StoreError::Database(e)) => Err(e),
        }
    })
    .await?
    .ok_or(RecordError::UnknownCall)?;
    if stored.applied
        && let (Some(company), Some(call_id)) =
            (CompanyId::parse(&stored.call.company), CallId::parse(&stored.call.id))
    {
        call_hub.do_send(CallChanged {
            company,
            call_id,
            owner_id: stored.call.owner_id.as_deref().and_then(UserId::parse),
            rank: stored.call.status_rank,
            frame: status_frame(&stored),
        });
    }
    Ok(stored)
}

/// The `call_status_changed` frame for an applied change.
fn status_frame(stored: &StoredEvent) -> Frame {
    let call = &stored.call;
    encode(&ServerMessage::CallStatusChanged {
        call_id: &call.id,
        status: &call.status,
        previous_status: stored.previous_status.as_deref(),
        provider: &call.provider,
        direction: call.direction.as_deref(),
        from: call.from_number.as_deref(),
        to: call.to_number.as_deref(),
        owner_id: call.owner_id.as_deref(),
        ended_reason: call.ended_reason.as_deref(),
        at: timestamp_from_millis(stored.received_at),
        data: &stored.data,
    })
}

/// A stored, applied change of a call's status.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CallChanged {
    pub company: CompanyId,
    pub call_id: CallId,
    pub owner_id: Option<UserId>,
    /// The call's rank after the change; notices at or below the last sent rank are dropped.
    pub rank: i32,
    /// `call_status_changed`, encoded once.
    pub frame: Frame,
}
