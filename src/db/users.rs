//! Queries on `users` (login accounts).

use diesel::prelude::*;

use super::DbConn;
use super::models::{NewUser, User};

/// Inserts an account; a taken email fails with a unique-violation error.
pub fn insert(conn: &mut DbConn, user: &NewUser<'_>) -> QueryResult<()> {
    use super::schema::users::dsl::users;
    conn.immediate_transaction(|conn| diesel::insert_into(users).values(user).execute(conn))?;
    Ok(())
}

/// The account with this (lower-cased) email, if any.
pub fn find_by_email(conn: &mut DbConn, address: &str) -> QueryResult<Option<User>> {
    use super::schema::users::dsl::{email, users};
    users.filter(email.eq(address)).select(User::as_select()).first(conn).optional()
}

/// A company is known once it has at least one account.
pub fn company_exists(conn: &mut DbConn, name: &str) -> QueryResult<bool> {
    use super::schema::users::dsl::{company, users};
    diesel::select(diesel::dsl::exists(users.filter(company.eq(name)))).get_result(conn)
}
