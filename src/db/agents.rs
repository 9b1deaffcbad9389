//! Queries on `agents`: each agent's and admin's display name as last seen and the status they
//! chose (§4), kept across reconnects and restarts. The PresenceHub holds the live view; a row
//! is read when a staff connection opens (and written only when the name changed, so a
//! reconnect storm costs reads), and written before a chosen status is announced.

use std::collections::HashMap;

use diesel::prelude::*;

use super::DbConn;
use super::schema::agents::dsl as a;
use crate::ids::CompanyId;
use crate::on_backend;
use crate::protocol::AgentStatus;
use crate::user::UserRef;

/// A staff user connects: remembers their name if it is new, and answers the status they last
/// chose (`None`: they never chose).
pub fn seen(
    conn: &mut DbConn,
    company: &CompanyId,
    user: &UserRef,
    at: i64,
) -> QueryResult<Option<AgentStatus>> {
    let row: Option<(String, Option<String>)> = on_backend!(conn, c => {
        a::agents
            .filter(a::company.eq(company.as_str()))
            .filter(a::user_id.eq(user.id.as_str()))
            .select((a::name, a::status))
            .first(c)
            .optional()
    })?;
    let (name, status) = row.unzip();
    if name.as_deref() != Some(&*user.name) {
        upsert(conn, company, user, None, at)?;
    }
    Ok(status.flatten().as_deref().and_then(AgentStatus::parse))
}

/// Remembers the status a staff user chose (and their name).
pub fn choose(
    conn: &mut DbConn,
    company: &CompanyId,
    user: &UserRef,
    status: AgentStatus,
    at: i64,
) -> QueryResult<()> {
    upsert(conn, company, user, Some(status), at)
}

/// Inserts or updates the row: the name always, the status only when one is given.
fn upsert(
    conn: &mut DbConn,
    company: &CompanyId,
    user: &UserRef,
    status: Option<AgentStatus>,
    at: i64,
) -> QueryResult<()> {
    let name = &*user.name;
    let row = (
        a::company.eq(company.as_str()),
        a::user_id.eq(user.id.as_str()),
        a::name.eq(name),
        a::status.eq(status.map(AgentStatus::as_str)),
        a::updated_at.eq(at),
    );
    let insert = diesel::insert_into(a::agents).values(row).on_conflict((a::company, a::user_id));
    match status {
        Some(status) => {
            let update = insert.do_update().set((
                a::name.eq(name),
                a::status.eq(status.as_str()),
                a::updated_at.eq(at),
            ));
            on_backend!(conn, c => update.execute(c))?
        }
        None => {
            let update = insert.do_update().set((a::name.eq(name), a::updated_at.eq(at)));
            on_backend!(conn, c => update.execute(c))?
        }
    };
    Ok(())
}

/// The last seen names of these users of `company` (those the hub has seen).
pub fn names(
    conn: &mut DbConn,
    company: &str,
    user_ids: &[&str],
) -> QueryResult<HashMap<String, String>> {
    let rows: Vec<(String, String)> = on_backend!(conn, c => {
        a::agents
            .filter(a::company.eq(company))
            .filter(a::user_id.eq_any(user_ids))
            .select((a::user_id, a::name))
            .load(c)
    })?;
    Ok(rows.into_iter().collect())
}
