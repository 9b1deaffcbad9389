//! Queries on `calendar_connections` and `calendar_oauth_states`.

use diesel::prelude::*;

use super::DbConn;
use super::models::{CalendarConnection, OAuthState};
use crate::on_backend;

/// Records a pending consent and forgets expired ones.
pub fn insert_state(conn: &mut DbConn, state: &OAuthState, now: i64) -> QueryResult<()> {
    use super::schema::calendar_oauth_states::dsl as s;
    super::write(conn, |conn| {
        let expired = diesel::delete(s::calendar_oauth_states.filter(s::expires_at.lt(now)));
        on_backend!(conn, c => expired.execute(c))?;
        on_backend!(conn, c => diesel::insert_into(s::calendar_oauth_states).values(state).execute(c))?;
        Ok(())
    })
}

/// Takes a consent's state: it is gone afterwards whatever happens (single use, also between
/// hubs: one `DELETE … RETURNING`, so two callbacks cannot both get it); `None` when unknown,
/// already used, or expired.
pub fn take_state(conn: &mut DbConn, state: &str, now: i64) -> QueryResult<Option<OAuthState>> {
    use super::schema::calendar_oauth_states::dsl as s;
    let found = on_backend!(conn, c => {
        diesel::delete(s::calendar_oauth_states.filter(s::state.eq(state)))
            .returning(OAuthState::as_returning())
            .get_result(c)
            .optional()
    })?;
    Ok(found.filter(|f| f.expires_at >= now))
}

/// Stores (or replaces) a user's connection.
pub fn upsert(conn: &mut DbConn, connection: &CalendarConnection) -> QueryResult<()> {
    use super::schema::calendar_connections::dsl as c;
    let upsert = diesel::insert_into(c::calendar_connections)
        .values(connection)
        .on_conflict((c::company, c::user_id))
        .do_update()
        .set(connection);
    on_backend!(conn, db => upsert.execute(db))?;
    Ok(())
}

pub fn find(
    conn: &mut DbConn,
    company: &str,
    user: &str,
) -> QueryResult<Option<CalendarConnection>> {
    use super::schema::calendar_connections::dsl as c;
    on_backend!(conn, db => {
        c::calendar_connections
            .filter(c::company.eq(company))
            .filter(c::user_id.eq(user))
            .select(CalendarConnection::as_select())
            .first(db)
            .optional()
    })
}

/// Removes a user's connection; answers whether there was one.
pub fn delete(conn: &mut DbConn, company: &str, user: &str) -> QueryResult<bool> {
    use super::schema::calendar_connections::dsl as c;
    let delete = diesel::delete(
        c::calendar_connections.filter(c::company.eq(company)).filter(c::user_id.eq(user)),
    );
    let removed = on_backend!(conn, db => delete.execute(db))?;
    Ok(removed > 0)
}
