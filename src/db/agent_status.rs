//! Queries on `agent_statuses`: each agent's chosen status, remembered across reconnects and
//! restarts (§4). The PresenceHub holds the live view; these rows are read when an agent's
//! connection opens and written before a change is announced.

use diesel::prelude::*;

use super::DbConn;
use super::schema::agent_statuses::dsl as s;
use crate::ids::{CompanyId, UserId};
use crate::protocol::AgentStatus;

/// The status the agent last chose; `None` when they never chose one.
pub fn chosen(
    conn: &mut DbConn,
    company: &CompanyId,
    user_id: &UserId,
) -> QueryResult<Option<AgentStatus>> {
    let stored: Option<String> = s::agent_statuses
        .filter(s::company.eq(company.as_str()))
        .filter(s::user_id.eq(user_id.as_str()))
        .select(s::status)
        .first(conn)
        .optional()?;
    Ok(stored.as_deref().and_then(AgentStatus::parse))
}

/// Remembers the agent's choice.
pub fn choose(
    conn: &mut DbConn,
    company: &CompanyId,
    user_id: &UserId,
    status: AgentStatus,
    at: i64,
) -> QueryResult<()> {
    let row = (
        s::company.eq(company.as_str()),
        s::user_id.eq(user_id.as_str()),
        s::status.eq(status.as_str()),
        s::updated_at.eq(at),
    );
    conn.immediate_transaction(|conn| {
        diesel::insert_into(s::agent_statuses)
            .values(row)
            .on_conflict((s::company, s::user_id))
            .do_update()
            .set((s::status.eq(status.as_str()), s::updated_at.eq(at)))
            .execute(conn)
    })?;
    Ok(())
}
