//! Queries on `server_settings`: values the hub generates once and keeps across restarts.

use diesel::prelude::*;

use super::DbConn;

/// Key of the generated HS256 secret.
pub const JWT_SECRET: &str = "jwt_secret";

/// The stored value of `name`, or `make()` stored and returned when there is none yet. One
/// immediate transaction, so two processes starting at once agree on one value.
pub fn get_or_create(
    conn: &mut DbConn,
    name: &str,
    make: impl FnOnce() -> String,
) -> QueryResult<String> {
    use super::schema::server_settings::dsl::{key, server_settings, value};
    conn.immediate_transaction(|conn| {
        let existing =
            server_settings.filter(key.eq(name)).select(value).first::<String>(conn).optional()?;
        if let Some(existing) = existing {
            return Ok(existing);
        }
        let fresh = make();
        diesel::insert_into(server_settings)
            .values((key.eq(name), value.eq(&fresh)))
            .execute(conn)?;
        Ok(fresh)
    })
}
