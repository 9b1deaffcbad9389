//! Queries on `server_settings`: values the hub generates once and keeps across restarts.

use diesel::prelude::*;

use super::DbConn;
use crate::on_backend;

/// Key of the generated HS256 secret.
pub const JWT_SECRET: &str = "jwt_secret";

/// The stored value of `name`, or `make()` stored and returned when there is none yet. Two
/// processes starting at once agree on one value: the insert does nothing when another got
/// there first, and the value is read back.
pub fn get_or_create(
    conn: &mut DbConn,
    name: &str,
    make: impl FnOnce() -> String,
) -> QueryResult<String> {
    use super::schema::server_settings::dsl::{key, server_settings, value};
    let existing = server_settings.filter(key.eq(name)).select(value);
    if let Some(found) = on_backend!(conn, c => existing.first::<String>(c).optional())? {
        return Ok(found);
    }
    let fresh = make();
    let insert = diesel::insert_into(server_settings)
        .values((key.eq(name), value.eq(&fresh)))
        .on_conflict(key)
        .do_nothing();
    on_backend!(conn, c => insert.execute(c))?;
    on_backend!(conn, c => existing.first::<String>(c))
}
