//! Chat over REST (`docs/protocol.md` §8): the inbox, a conversation's history, posting and read
//! marks. Every route checks the same rule as the WebSocket
//! ([`ConversationId::admits`]): a conversation the caller may not see is `404 not_found`.
//! Posts and read marks go through the ChatHub, so they are stored, ordered and pushed exactly
//! as their WebSocket twins.

use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::Routes;
use crate::auth::{Caller, Identity};
use crate::chat::{ConversationId, Direction, Draft};
use crate::db::chat::{InboxCursor, InboxEntry, Page, Reader};
use crate::db::{self, models::Conversation};
use crate::error::{AppError, ErrorBody, ErrorCode};
use crate::hubs::chat::{ChatError, MarkRead, Origin, SendMessage, chat_message};
use crate::protocol::ChatMessage;
use crate::state::AppState;
use crate::time::timestamp_from_millis;
use crate::user::Role;

/// Default and largest page, of conversations and of messages.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

pub fn configure(routes: &mut Routes<'_>) {
    routes.get("/api/v1/conversations", inbox);
    routes.get("/api/v1/conversations/{id}/messages", history);
    routes.post("/api/v1/conversations/{id}/messages", post_message);
    routes.post("/api/v1/conversations/{id}/read", mark_read);
}

fn not_found() -> AppError {
    AppError::not_found("conversation")
}

/// The conversation a path names, if the caller may see it.
fn visible(identity: &Identity, id: &str) -> Result<ConversationId, AppError> {
    ConversationId::parse(id).filter(|c| c.admits(&identity.user)).ok_or_else(not_found)
}

fn limit(value: Option<i64>) -> Result<i64, AppError> {
    let limit = value.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::invalid_message(format!("limit must be 1-{MAX_PAGE}")));
    }
    Ok(limit)
}

fn chat_error(e: ChatError) -> AppError {
    AppError::new(e.code(), e.to_string())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct InboxQuery {
    /// Only conversations with unread messages.
    unread: Option<bool>,
    /// Page size, 1-200 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One conversation in the inbox.
#[derive(Serialize, ToSchema)]
struct InboxItem<'a> {
    id: &'a str,
    /// `support` or `direct`.
    kind: &'a str,
    with: With<'a>,
    last_message: Option<ChatMessage<'a>>,
    unread_count: i64,
    updated_at: String,
}

#[derive(Serialize, ToSchema)]
struct InboxPage<'a> {
    conversations: Vec<InboxItem<'a>>,
    next_cursor: Option<String>,
}

/// The caller's conversations, latest activity first, with the last message and the caller's
/// unread count.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "chat", params(InboxQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = InboxPage, example = json!({"conversations": [{"id": "support:guest-7",
            "kind": "support", "with": {"id": "guest-7", "name": "Vera", "role": "customer"},
            "last_message": {"id": "m1", "conversation": "support:guest-7", "seq": 1,
                "from": {"id": "guest-7", "name": "Vera", "role": "customer"}, "text": "Hello",
                "meta": null, "client_id": null, "sent_at": "2026-11-24T09:00:00.000Z"},
            "unread_count": 1, "updated_at": "2026-11-24T09:00:00.000Z"}], "next_cursor": null})),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    ))]
async fn inbox(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<InboxQuery>,
) -> Result<HttpResponse, AppError> {
    let identity = caller.0;
    let query = query.into_inner();
    let limit = limit(query.limit)?;
    let cursor = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            decode_cursor(c)
                .ok_or_else(|| AppError::invalid_message("cursor is not one of ours"))?,
        ),
    };
    let me = identity.user.id.to_string();
    let reader = match identity.role() {
        Role::Customer => Reader::Customer(me),
        Role::Agent | Role::Admin => Reader::Staff(me),
        Role::Service => Reader::Service(me),
    };
    let company = identity.company.to_string();
    let unread_only = query.unread.unwrap_or(false);
    let (entries, next) = db::run(&state.pool, move |conn| {
        db::chat::inbox(conn, &company, &reader, unread_only, cursor.as_ref(), limit)
    })
    .await?;
    let ids: Vec<_> = entries.iter().map(|e| ConversationId::parse(&e.conversation.id)).collect();
    let conversations =
        entries.iter().zip(&ids).map(|(e, id)| inbox_item(e, id.as_ref(), &identity)).collect();
    let next_cursor = next.map(|c| encode_cursor(&c));
    Ok(HttpResponse::Ok().json(InboxPage { conversations, next_cursor }))
}

fn encode_cursor((at, id): &InboxCursor) -> String {
    URL_SAFE_NO_PAD.encode(json!([at, id]).to_string())
}

fn decode_cursor(value: &str) -> Option<InboxCursor> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(value).ok()?).ok()
}

/// Someone a conversation is with.
#[derive(Serialize, ToSchema)]
struct With<'a> {
    id: &'a str,
    name: &'a str,
    role: &'a str,
}

/// Who the conversation is with, seen by the caller: the customer (for staff and services),
/// the company's team (for the customer), the other staff user (direct).
fn with<'a>(conversation: &'a Conversation, identity: &'a Identity) -> With<'a> {
    let me = identity.user.id.as_str();
    let text = |v: &'a Option<String>, default: &'a str| v.as_deref().unwrap_or(default);
    match (conversation.kind.as_str(), identity.role()) {
        ("support", Role::Customer) => {
            With { id: "team", name: identity.company.as_str(), role: "agent" }
        }
        ("support", _) => {
            let id = text(&conversation.customer_id, "");
            With { id, name: text(&conversation.customer_name, id), role: "customer" }
        }
        _ if conversation.member_a.as_deref() == Some(me) => {
            let id = text(&conversation.member_b, "");
            let role = text(&conversation.member_b_role, "agent");
            With { id, name: text(&conversation.member_b_name, id), role }
        }
        _ => {
            let id = text(&conversation.member_a, "");
            let role = text(&conversation.member_a_role, "agent");
            With { id, name: text(&conversation.member_a_name, id), role }
        }
    }
}

fn inbox_item<'a>(
    entry: &'a InboxEntry,
    id: Option<&'a ConversationId>,
    identity: &'a Identity,
) -> InboxItem<'a> {
    let conversation = &entry.conversation;
    InboxItem {
        id: &conversation.id,
        kind: &conversation.kind,
        with: with(conversation, identity),
        last_message: entry.last_message.as_ref().zip(id).map(|(row, id)| chat_message(row, id)),
        unread_count: entry.unread,
        updated_at: timestamp_from_millis(conversation.last_message_at),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// Messages before this seq (scrolling back); default: the newest.
    before: Option<i64>,
    /// Messages after this seq (catching up).
    after: Option<i64>,
    /// Page size, 1-200 (default 50).
    limit: Option<i64>,
    /// `all` (default), `sent` or `received`.
    direction: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct HistoryPage<'a> {
    messages: Vec<ChatMessage<'a>>,
    has_more: bool,
}

/// A page of a conversation's messages in ascending seq.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "chat",
    params(("id" = String, Path, description = "conversation id"), HistoryQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = HistoryPage, example = json!({"messages": [{"id": "m1",
            "conversation": "support:guest-7", "seq": 1,
            "from": {"id": "guest-7", "name": "Vera", "role": "customer"}, "text": "Hello",
            "meta": {"order": 1234}, "client_id": "c-1", "sent_at": "2026-11-24T09:00:00.000Z"}],
            "has_more": false})),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn history(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, AppError> {
    let identity = caller.0;
    let conversation = visible(&identity, &id)?;
    let query = query.into_inner();
    let limit = limit(query.limit)?;
    let direction = Direction::parse(query.direction.as_deref())
        .ok_or_else(|| AppError::invalid_message("direction must be sent, received or all"))?;
    let page = match (query.after, query.before) {
        (Some(_), Some(_)) => {
            return Err(AppError::invalid_message("give before or after, not both"));
        }
        (Some(after), None) => Page::After(after),
        (None, before) => Page::Before(before),
    };
    let (company, key, reader) =
        (identity.company.to_string(), conversation.to_string(), identity.user.id.to_string());
    let (rows, has_more) = db::run(&state.pool, move |conn| {
        db::chat::history(conn, &company, &key, &reader, page, direction, limit)
    })
    .await?;
    let messages: Vec<_> = rows.iter().map(|row| chat_message(row, &conversation)).collect();
    Ok(HttpResponse::Ok().json(HistoryPage { messages, has_more }))
}

#[derive(Deserialize, ToSchema)]
struct PostBody {
    /// 1-4000 characters.
    text: String,
    /// An object of at most 1 KiB, passed along.
    #[schema(value_type = Option<Object>)]
    meta: Option<Value>,
    /// The sender's id for this message (at most 64 characters): a retry is stored once.
    client_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct MessageAnswer<'a> {
    message: ChatMessage<'a>,
}

/// Posts a message: 201 with it, or 200 with the message already stored for a `client_id`
/// repeat. A service token posts as itself.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "chat",
    params(("id" = String, Path, description = "conversation id")),
    request_body(content = PostBody, example = json!({"text": "Yes, it ships today.", "meta": {"order": 1234}, "client_id": "c-2"})),
    security(("bearer" = [])),
    responses(
        (status = 201, body = MessageAnswer, example = json!({"message": {"id": "m2",
            "conversation": "support:guest-7", "seq": 2,
            "from": {"id": "ann", "name": "Ann", "role": "agent"}, "text": "Yes, it ships today.",
            "meta": {"order": 1234}, "client_id": "c-2", "sent_at": "2026-11-24T09:01:00.000Z"}})),
        (status = 200, description = "a repeat of a `client_id`: the message stored before", body = MessageAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
async fn post_message(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<PostBody>,
) -> Result<HttpResponse, AppError> {
    let identity = caller.0;
    let conversation = visible(&identity, &id)?;
    let body = body.into_inner();
    let draft = Draft::new(&body.text, body.meta, body.client_id)
        .map_err(|invalid| AppError::new(ErrorCode::InvalidMessage, invalid.0))?;
    let send = SendMessage {
        company: identity.company.clone(),
        conversation: conversation.clone(),
        from: identity.user.clone(),
        draft,
        origin: Origin::Rest,
    };
    let outcome = state
        .hubs
        .chat
        .send(send)
        .await
        .map_err(|e| AppError::internal(format!("chat hub unavailable: {e}")))?
        .map_err(chat_error)?;
    let message = chat_message(&outcome.message, &conversation);
    let mut answer = if outcome.repeated { HttpResponse::Ok() } else { HttpResponse::Created() };
    Ok(answer.json(MessageAnswer { message }))
}

#[derive(Deserialize, ToSchema)]
struct ReadBody {
    seq: i64,
}

#[derive(Serialize, ToSchema)]
struct ReadAnswer<'a> {
    #[schema(value_type = String)]
    conversation: &'a ConversationId,
    seq: i64,
    unread: i64,
}

/// Marks the conversation read up to `seq`; the position kept never moves back.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/read", tag = "chat",
    params(("id" = String, Path, description = "conversation id")),
    request_body(content = ReadBody, example = json!({"seq": 2})),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ReadAnswer, example = json!({"conversation": "support:guest-7", "seq": 2, "unread": 0})),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn mark_read(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<ReadBody>,
) -> Result<HttpResponse, AppError> {
    let identity = caller.0;
    let conversation = visible(&identity, &id)?;
    let mark = MarkRead {
        company: identity.company.clone(),
        conversation: conversation.clone(),
        reader: identity.user.clone(),
        seq: body.seq,
        origin: Origin::Rest,
    };
    let outcome = state
        .hubs
        .chat
        .send(mark)
        .await
        .map_err(|e| AppError::internal(format!("chat hub unavailable: {e}")))?
        .map_err(chat_error)?;
    Ok(HttpResponse::Ok().json(ReadAnswer {
        conversation: &conversation,
        seq: outcome.seq,
        unread: outcome.unread,
    }))
}
