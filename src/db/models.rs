//! Row structs (`Queryable`) and insert forms (`Insertable`), one pair per table.

use diesel::prelude::*;

use super::schema::users;

/// A login account.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub company: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: i64,
    /// When the account was disabled; `None` while it is enabled.
    pub disabled_at: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub company: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub password_hash: &'a str,
    pub created_at: i64,
}

use super::schema::{call_events, call_keys, calls};

/// A call (see `crate::calls`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = calls)]
pub struct Call {
    pub id: String,
    pub company: String,
    pub provider: String,
    pub provider_call_id: Option<String>,
    pub owner_id: Option<String>,
    /// JSON array of user ids (browser calls).
    pub parties: String,
    pub direction: Option<String>,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub status: String,
    pub status_rank: i32,
    pub ended_reason: Option<String>,
    pub last_sequence: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub ended_at: Option<i64>,
}

/// One external id of a call.
#[derive(Debug, Insertable)]
#[diesel(table_name = call_keys)]
pub struct NewCallKey<'a> {
    pub company: &'a str,
    pub provider: &'a str,
    pub external_id: &'a str,
    pub call_id: &'a str,
}

/// One received event, applied or not.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = call_events)]
pub struct CallEventRow {
    pub id: i32,
    pub call_id: String,
    pub provider: String,
    pub status: String,
    pub sequence: Option<i64>,
    pub applied: bool,
    pub payload: String,
    pub received_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = call_events)]
pub struct NewCallEvent<'a> {
    pub call_id: &'a str,
    pub provider: &'a str,
    pub status: &'a str,
    pub sequence: Option<i64>,
    pub applied: bool,
    pub payload: &'a str,
    pub received_at: i64,
}

use super::schema::{calendar_connections, calendar_oauth_states};

/// A user's connected calendar; `refresh_token` is encrypted.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = calendar_connections)]
pub struct CalendarConnection {
    pub company: String,
    pub user_id: String,
    pub refresh_token: String,
    pub calendar_id: Option<String>,
    pub time_zone: Option<String>,
    pub connected_at: i64,
}

/// A pending consent.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = calendar_oauth_states)]
pub struct OAuthState {
    pub state: String,
    pub company: String,
    pub user_id: String,
    pub code_verifier: String,
    pub expires_at: i64,
    /// SHA-256 (hex) of the `sb_oauth` cookie value of the browser that started the flow.
    pub browser_binding: String,
}

use super::schema::{conversations, messages};

/// A chat conversation (see `crate::chat`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = conversations)]
pub struct Conversation {
    pub company: String,
    pub id: String,
    pub kind: String,
    pub customer_id: Option<String>,
    pub member_a: Option<String>,
    pub member_b: Option<String>,
    pub customer_name: Option<String>,
    pub member_a_name: Option<String>,
    pub member_b_name: Option<String>,
    pub member_a_role: Option<String>,
    pub member_b_role: Option<String>,
    /// The seq of the newest message (0 before the first).
    pub last_seq: i64,
    pub last_message_at: i64,
    pub created_at: i64,
}

/// One stored chat message.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub company: String,
    pub conversation: String,
    pub seq: i64,
    pub id: String,
    pub sender_id: String,
    pub sender_name: String,
    pub sender_role: String,
    pub text: String,
    /// Compact JSON of an object.
    pub meta: Option<String>,
    pub client_id: Option<String>,
    pub sent_at: i64,
}
