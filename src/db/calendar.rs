//! Queries on `calendar_connections` and `calendar_oauth_states`.

use diesel::prelude::*;

use super::DbConn;
use super::models::{CalendarConnection, OAuthState};

/// Records a pending consent and forgets expired ones.
pub fn insert_state(conn: &mut DbConn, state: &OAuthState, now: i64) -> QueryResult<()> {
    use super::schema::calendar_oauth_states::dsl as s;
    conn.immediate_transaction(|conn| {
        diesel::delete(s::calendar_oauth_states.filter(s::expires_at.lt(now))).execute(conn)?;
        diesel::insert_into(s::calendar_oauth_states).values(state).execute(conn)?;
        Ok(())
    })
}

/// Takes a consent's state: it is gone afterwards whatever happens (single use); `None` when
/// unknown, already used, or expired.
pub fn take_state(conn: &mut DbConn, state: &str, now: i64) -> QueryResult<Option<OAuthState>> {
    use super::schema::calendar_oauth_states::dsl as s;
    conn.immediate_transaction(|conn| {
        let found = s::calendar_oauth_states
            .filter(s::state.eq(state))
            .select(OAuthState::as_select())
            .first(conn)
            .optional()?;
        diesel::delete(s::calendar_oauth_states.filter(s::state.eq(state))).execute(conn)?;
        Ok(found.filter(|f| f.expires_at >= now))
    })
}

/// Stores (or replaces) a user's connection.
pub fn upsert(conn: &mut DbConn, connection: &CalendarConnection) -> QueryResult<()> {
    diesel::replace_into(super::schema::calendar_connections::table)
        .values(connection)
        .execute(conn)?;
    Ok(())
}

pub fn find(
    conn: &mut DbConn,
    company: &str,
    user: &str,
) -> QueryResult<Option<CalendarConnection>> {
    use super::schema::calendar_connections::dsl as c;
    c::calendar_connections
        .filter(c::company.eq(company))
        .filter(c::user_id.eq(user))
        .select(CalendarConnection::as_select())
        .first(conn)
        .optional()
}

/// Removes a user's connection; answers whether there was one.
pub fn delete(conn: &mut DbConn, company: &str, user: &str) -> QueryResult<bool> {
    use super::schema::calendar_connections::dsl as c;
    let removed = diesel::delete(
        c::calendar_connections.filter(c::company.eq(company)).filter(c::user_id.eq(user)),
    )
    .execute(conn)?;
    Ok(removed > 0)
}
