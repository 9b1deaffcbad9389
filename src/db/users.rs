//! Queries on `users` (login accounts).

use diesel::prelude::*;

use super::DbConn;
use super::models::{NewUser, User};
use crate::on_backend;

/// Inserts an account; a taken email fails with a unique-violation error.
pub fn insert(conn: &mut DbConn, user: &NewUser<'_>) -> QueryResult<()> {
    use super::schema::users::dsl::users;
    on_backend!(conn, c => diesel::insert_into(users).values(user).execute(c))?;
    Ok(())
}

/// The account with this (lower-cased) email, if any.
pub fn find_by_email(conn: &mut DbConn, address: &str) -> QueryResult<Option<User>> {
    use super::schema::users::dsl::{email, users};
    on_backend!(conn, c => {
        users.filter(email.eq(address)).select(User::as_select()).first(c).optional()
    })
}

/// The account of `company` with this id, if any.
pub fn find_by_id(conn: &mut DbConn, in_company: &str, user_id: &str) -> QueryResult<Option<User>> {
    use super::schema::users::dsl::{company, id, users};
    on_backend!(conn, c => {
        let query = users.filter(id.eq(user_id)).filter(company.eq(in_company));
        query.select(User::as_select()).first(c).optional()
    })
}

/// Whether `user_id` is someone of `company` the hub may act for: an enabled account, or (for
/// an identity provider's users, who have no account here) a staff user seen connecting.
pub fn known(conn: &mut DbConn, in_company: &str, user_id: &str) -> QueryResult<bool> {
    use super::schema::agents::dsl as a;
    use super::schema::users::dsl as u;
    let account =
        u::users.filter(u::id.eq(user_id)).filter(u::company.eq(in_company)).select(u::disabled_at);
    let account: Option<Option<i64>> = on_backend!(conn, c => account.first(c).optional())?;
    if let Some(disabled_at) = account {
        return Ok(disabled_at.is_none());
    }
    let seen = a::agents.filter(a::company.eq(in_company)).filter(a::user_id.eq(user_id));
    on_backend!(conn, c => diesel::select(diesel::dsl::exists(seen)).get_result(c))
}

/// Disables (`Some(at)`) or enables (`None`) the account with this email; false when there is
/// none.
pub fn set_disabled(conn: &mut DbConn, address: &str, at: Option<i64>) -> QueryResult<bool> {
    use super::schema::users::dsl::{disabled_at, email, users};
    let update = diesel::update(users.filter(email.eq(address))).set(disabled_at.eq(at));
    let changed = on_backend!(conn, c => update.execute(c))?;
    Ok(changed == 1)
}

/// (company, id) of every disabled account.
pub fn disabled(conn: &mut DbConn) -> QueryResult<Vec<(String, String)>> {
    use super::schema::users::dsl::{company, disabled_at, id, users};
    let query = users.filter(disabled_at.is_not_null()).select((company, id));
    on_backend!(conn, c => query.load(c))
}

/// A company is known once it has at least one account.
pub fn company_exists(conn: &mut DbConn, name: &str) -> QueryResult<bool> {
    use super::schema::users::dsl::{company, users};
    let query = diesel::select(diesel::dsl::exists(users.filter(company.eq(name))));
    on_backend!(conn, c => query.get_result(c))
}
