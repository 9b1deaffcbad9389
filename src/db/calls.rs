//! Queries on `calls`, `call_keys` and `call_events`. [`store_event`] is the one way a call's
//! status changes: one write transaction that finds or creates the call, records the event and
//! moves the status with a conditional update on its rank. Between hubs on PostgreSQL, writers
//! of one provider call are serialised by a transaction-scoped advisory lock on its ids (so two
//! nodes never both create it), and the update fills missing details with `COALESCE` from the
//! row as it is then, never from an earlier read.

use diesel::prelude::*;
use serde_json::Value;

use super::DbConn;
use super::models::{Call, CallEventRow, NewCallEvent, NewCallKey};
use crate::calls::{CallEvent, CallStatus, CallTarget, CompanyChoice, ProviderKey, TERMINAL_RANK};
use crate::ids::{CallId, CompanyId};
use crate::on_backend;

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

/// Why an event could not be stored, besides a database failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A [`CallTarget::Id`] that is not a call of the event's company.
    #[error("no such call")]
    UnknownCall,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Stores one event and applies it if it moves the call forward. `new_call_id` is the id a
/// call created by this event gets.
pub fn store_event(
    conn: &mut DbConn,
    event: &CallEvent,
    new_call_id: &str,
) -> Result<StoredEvent, StoreError> {
    super::write(conn, |conn| {
        if let CallTarget::Keys(keys) = &event.target {
            lock_keys(conn, keys)?;
        }
        let company = resolve_company(conn, event)?;
        let existing = match &event.target {
            CallTarget::Id(id) => {
                Some(find(conn, &company, id.as_str())?.ok_or(StoreError::UnknownCall)?)
            }
            CallTarget::Keys(keys) => find_by_keys(conn, &company, keys)?,
        };
        let (call, previous_status, applied) = match existing {
            None => (create(conn, &company, event, new_call_id)?, None, true),
            Some(call) => {
                let previous = call.status.clone();
                let applied = advance(conn, &call, event)?;
                let call = if applied { reload(conn, &call.id)? } else { call };
                (call, Some(previous), applied)
            }
        };
        if let CallTarget::Keys(keys) = &event.target {
            link_keys(conn, &company, &call.id, keys)?;
        }
        let payload = event.payload.to_string();
        let row = NewCallEvent {
            call_id: &call.id,
            provider: &event.provider,
            status: event.status.as_str(),
            sequence: event.sequence,
            applied,
            payload: &payload,
            received_at: event.received_at,
        };
        on_backend!(conn, c => {
            diesel::insert_into(super::schema::call_events::table).values(&row).execute(c)
        })?;
        Ok(StoredEvent {
            call,
            previous_status,
            applied,
            data: event.data.clone(),
            received_at: event.received_at,
        })
    })
}

/// On PostgreSQL, holds a transaction-scoped advisory lock per provider id, so concurrent
/// writers of one provider call (on any node) take turns. SQLite's `BEGIN IMMEDIATE` already
/// lets one writer in at a time.
fn lock_keys(conn: &mut DbConn, keys: &[ProviderKey]) -> QueryResult<()> {
    use diesel::sql_types::Text;
    if let DbConn::Postgres(c) = conn {
        for (provider, external_id) in keys {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind::<Text, _>(format!("call:{provider}:{external_id}"))
                .execute(&mut **c)?;
        }
    }
    Ok(())
}

/// The company named by the event, or the one that registered one of its keys.
fn resolve_company(conn: &mut DbConn, event: &CallEvent) -> QueryResult<String> {
    let fallback = match &event.company {
        CompanyChoice::Known(company) => return Ok(company.to_string()),
        CompanyChoice::RegisteredElse(fallback) => fallback,
    };
    if let CallTarget::Keys(keys) = &event.target {
        use super::schema::call_keys::dsl as k;
        for (provider, external_id) in keys {
            let companies: Vec<String> = on_backend!(conn, c => {
                k::call_keys
                    .filter(k::provider.eq(provider))
                    .filter(k::external_id.eq(external_id))
                    .select(k::company)
                    .limit(2)
                    .load(c)
            })?;
            // Only an unambiguous registration decides; two companies claiming the same id
            // fall back to the default rather than guess.
            if let [company] = companies.as_slice() {
                return Ok(company.clone());
            }
        }
    }
    Ok(fallback.to_string())
}

fn find_by_keys(
    conn: &mut DbConn,
    company: &str,
    keys: &[ProviderKey],
) -> QueryResult<Option<Call>> {
    use super::schema::call_keys::dsl as k;
    for (provider, external_id) in keys {
        let call_id: Option<String> = on_backend!(conn, c => {
            k::call_keys
                .filter(k::company.eq(company))
                .filter(k::provider.eq(provider))
                .filter(k::external_id.eq(external_id))
                .select(k::call_id)
                .first(c)
                .optional()
        })?;
        if let Some(call_id) = call_id {
            return reload(conn, &call_id).map(Some);
        }
    }
    Ok(None)
}

fn link_keys(
    conn: &mut DbConn,
    company: &str,
    call_id: &str,
    keys: &[ProviderKey],
) -> QueryResult<()> {
    let rows: Vec<NewCallKey<'_>> = keys
        .iter()
        .map(|(provider, external_id)| NewCallKey { company, provider, external_id, call_id })
        .collect();
    // One by one: diesel has no batch insert with ON CONFLICT on SQLite, and a call has a
    // key or two.
    for row in &rows {
        on_backend!(conn, c => {
            diesel::insert_into(super::schema::call_keys::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c)
        })?;
    }
    Ok(())
}

fn create(conn: &mut DbConn, company: &str, event: &CallEvent, id: &str) -> QueryResult<Call> {
    let terminal = event.status.is_terminal();
    let call = Call {
        id: id.to_owned(),
        company: company.to_owned(),
        provider: event.provider.clone(),
        provider_call_id: event.provider_call_id.clone(),
        owner_id: event.owner_id.as_ref().map(ToString::to_string),
        parties: serde_json::to_string(&event.parties).unwrap_or_else(|_| "[]".into()),
        direction: event.direction.clone(),
        from_number: event.from.clone(),
        to_number: event.to.clone(),
        status: event.status.as_str().to_owned(),
        status_rank: event.status.rank(),
        ended_reason: if terminal { event.ended_reason.clone() } else { None },
        last_sequence: event.sequence,
        created_at: event.received_at,
        updated_at: event.received_at,
        ended_at: terminal.then_some(event.received_at),
    };
    on_backend!(conn, c => diesel::insert_into(super::schema::calls::table).values(&call).execute(c))?;
    Ok(call)
}

/// The conditional update: only when the event's rank is ahead of the stored one, the call is
/// not terminal, and (for sequenced providers) the sequence number is newer. Details the call
/// lacks (owner, numbers, direction) are filled in from the event.
fn advance(conn: &mut DbConn, call: &Call, event: &CallEvent) -> QueryResult<bool> {
    use super::schema::calls::dsl as c;
    let rank = event.status.rank();
    let terminal = event.status.is_terminal();
    // Details the call lacks are filled from the event with COALESCE against the row as it is
    // at the update, so a concurrent writer's owner or numbers are never overwritten; the rank
    // filter keeps racing writers forward-only.
    let owner = event.owner_id.as_ref().map(ToString::to_string);
    let changed = on_backend!(conn, db => {
        let mut query = diesel::update(c::calls)
            .filter(c::id.eq(&call.id))
            .filter(c::status_rank.lt(rank))
            .filter(c::status_rank.lt(TERMINAL_RANK))
            .into_boxed();
        if let Some(sequence) = event.sequence {
            query = query.filter(c::last_sequence.is_null().or(c::last_sequence.lt(sequence)));
        }
        query
            .set((
                c::status.eq(event.status.as_str()),
                c::status_rank.eq(rank),
                c::ended_reason.eq(if terminal { event.ended_reason.clone() } else { None }),
                c::last_sequence.eq(super::coalesce_big(event.sequence, c::last_sequence)),
                c::updated_at.eq(event.received_at),
                c::ended_at.eq(terminal.then_some(event.received_at)),
                c::owner_id.eq(super::coalesce_text(c::owner_id, owner.clone())),
                c::direction.eq(super::coalesce_text(c::direction, event.direction.clone())),
                c::from_number.eq(super::coalesce_text(c::from_number, event.from.clone())),
                c::to_number.eq(super::coalesce_text(c::to_number, event.to.clone())),
            ))
            .execute(db)
    })?;
    Ok(changed == 1)
}

fn reload(conn: &mut DbConn, id: &str) -> QueryResult<Call> {
    use super::schema::calls::dsl as c;
    on_backend!(conn, db => c::calls.filter(c::id.eq(id)).select(Call::as_select()).first(db))
}

/// A call of `company` by id.
pub fn find(conn: &mut DbConn, company: &str, id: &str) -> QueryResult<Option<Call>> {
    use super::schema::calls::dsl as c;
    on_backend!(conn, db => {
        c::calls
            .filter(c::id.eq(id))
            .filter(c::company.eq(company))
            .select(Call::as_select())
            .first(db)
            .optional()
    })
}

/// The call a provider's ids name: inside `company` when it is known, else the one call (in any
/// company) those ids are linked to; `None` when there is none or it is ambiguous.
pub fn find_for_provider(
    conn: &mut DbConn,
    company: Option<&str>,
    keys: &[ProviderKey],
) -> QueryResult<Option<Call>> {
    if let Some(company) = company {
        return find_by_keys(conn, company, keys);
    }
    use super::schema::call_keys::dsl as k;
    for (provider, external_id) in keys {
        let mut ids: Vec<String> = on_backend!(conn, c => {
            k::call_keys
                .filter(k::provider.eq(provider))
                .filter(k::external_id.eq(external_id))
                .select(k::call_id)
                .limit(2)
                .load(c)
        })?;
        if ids.len() == 1
            && let Some(id) = ids.pop()
        {
            return reload(conn, &id).map(Some);
        }
    }
    Ok(None)
}

/// Ends every call of `provider` that is still open, with `reason`, through the same
/// [`store_event`] as any event (so each gets its entry in the event log). For calls that only
/// lived in a previous run's memory — browser calls after a restart. Returns how many ended.
pub fn end_open_calls(conn: &mut DbConn, provider: &str, reason: &str) -> QueryResult<usize> {
    use super::schema::calls::dsl as c;
    let open: Vec<(String, String)> = on_backend!(conn, db => {
        c::calls
            .filter(c::provider.eq(provider))
            .filter(c::status_rank.lt(TERMINAL_RANK))
            .select((c::company, c::id))
            .load(db)
    })?;
    let mut ended = 0;
    for (company, id) in open {
        let (Some(company), Some(id)) = (CompanyId::parse(&company), CallId::parse(&id)) else {
            continue;
        };
        let event = CallEvent {
            ended_reason: Some(reason.to_owned()),
            payload: serde_json::json!({"status": "ended", "reason": reason}),
            ..CallEvent::new(
                CompanyChoice::Known(company),
                CallTarget::Id(id),
                provider,
                CallStatus::Ended,
            )
        };
        match store_event(conn, &event, "") {
            Ok(stored) if stored.applied => ended += 1,
            Ok(_) | Err(StoreError::UnknownCall) => {}
            Err(StoreError::Database(e)) => return Err(e),
        }
    }
    Ok(ended)
}

/// A call's event log, oldest first.
pub fn events(conn: &mut DbConn, call_id: &str) -> QueryResult<Vec<CallEventRow>> {
    use super::schema::call_events::dsl as e;
    on_backend!(conn, db => {
        e::call_events
            .filter(e::call_id.eq(call_id))
            .order(e::id.asc())
            .select(CallEventRow::as_select())
            .load(db)
    })
}

/// Where a page of calls starts: strictly older than `(created_at, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
}

impl Cursor {
    /// The opaque form clients send back as `before`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id)
    }

    pub fn decode(value: &str) -> Option<Self> {
        let (created_at, id) = value.split_once('.')?;
        Some(Self { created_at: created_at.parse().ok()?, id: id.to_owned() })
    }
}

/// A page of a company's calls, newest first; also returns the cursor of the next page.
pub fn list(
    conn: &mut DbConn,
    company: &str,
    status: Option<&str>,
    before: Option<&Cursor>,
    limit: i64,
) -> QueryResult<(Vec<Call>, Option<Cursor>)> {
    use super::schema::calls::dsl as c;
    let mut page: Vec<Call> = on_backend!(conn, db => {
        let mut query =
            c::calls.filter(c::company.eq(company)).select(Call::as_select()).into_boxed();
        if let Some(status) = status {
            query = query.filter(c::status.eq(status.to_owned()));
        }
        if let Some(cursor) = before {
            query = query.filter(
                c::created_at
                    .lt(cursor.created_at)
                    .or(c::created_at.eq(cursor.created_at).and(c::id.lt(cursor.id.clone()))),
            );
        }
        query.order((c::created_at.desc(), c::id.desc())).limit(limit + 1).load(db)
    })?;
    let next = if page.len() as i64 > limit {
        page.truncate(limit as usize);
        page.last().map(|call| Cursor { created_at: call.created_at, id: call.id.clone() })
    } else {
        None
    };
    Ok((page, next))
}
