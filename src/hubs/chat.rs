//! `ChatHub`: chat messages stored before anyone is told, then delivered in `seq` order
//! (`docs/protocol.md` §8).
//!
//! Sends from sockets and from REST queue here. While one store runs, new sends wait; when it
//! ends, everything waiting is stored in the next single transaction (group commit: one fsync
//! for a burst, however many conversations), so the hub stores in the order it pushes and a
//! conversation's messages reach screens in `seq` order. A failed store is an error to each of
//! its senders and nothing is pushed. Delivery goes through the PresenceHub to the participants'
//! connections (see [`ConversationId::admits`](crate::chat::ConversationId::admits) for who
//! they are). Typing notices are throttled per connection and conversation; read marks are
//! stored, answered and shown to the others.
//!
//! Mailbox:
//!
//! | message | sent by | answer |
//! | --- | --- | --- |
//! | [`SendMessage`] | a session (`send_message`), `POST …/messages` | `message_sent` or an error to the sender (socket) or the outcome (REST); `message` to the other connections of every participant |
//! | [`MarkRead`] | a session (`mark_read`), `POST …/read` | `read_marked` / the outcome; `conversation_read` to the others |
//! | [`Typing`] | a session (`typing`) | `typing` to the other participants, at most one per 2 s per connection and conversation |
//! | [`PresenceEvent`] | the PresenceHub | forgets a closed connection's typing throttle |

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::connection::{ReplyTo, SlowConsumer};
use super::presence::{DeliverToParticipants, EvictSlowConsumer, PresenceEvent, PresenceHub};
use crate::chat::{ConversationId, Draft};
use crate::db::chat::{Outgoing, Stored};
use crate::db::models::MessageRow;
use crate::db::{self, DbError, DbPool};
use crate::error::ErrorCode;
use crate::ids::{CompanyId, ConnId, UserId};
use crate::limits::TokenBucket;
use crate::metrics::Metrics;
use crate::protocol::{ChatMessage, Sender, ServerMessage, encode};
use crate::time::now_millis;
use crate::time::timestamp_from_millis;
use crate::user::{Role, UserRef};

/// Messages one user may send a second, and in a burst.
const SEND_RATE: f64 = 10.0;
const SEND_BURST: f64 = 20.0;
/// At most one `typing` forwarded per this, per connection and conversation.
const TYPING_EVERY: Duration = Duration::from_secs(2);
/// How often idle rate and typing state is forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often old messages are deleted, when there is a retention.
const RETENTION_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Why a chat request was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChatError {
    #[error("sending too fast, slow down")]
    RateLimited,
    #[error("storage is unavailable, try again")]
    Storage,
}

impl ChatError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::RateLimited => ErrorCode::RateLimited,
            Self::Storage => ErrorCode::StorageUnavailable,
        }
    }
}

/// Who asked, and so where the answer goes.
pub enum Origin {
    /// A socket: answered with a frame (ordered with what the hub pushes to it); the
    /// connection itself gets no copy of the push.
    Socket(ReplyTo),
    /// REST: the outcome comes back to the handler.
    Rest,
}

/// What a send became.
#[derive(Debug, Clone)]
pub struct SendOutcome {
    pub message: MessageRow,
    /// A retry of a message already stored.
    pub repeated: bool,
}

/// The chat actor. See the module docs.
pub struct ChatHub {
    presence: Addr<PresenceHub>,
    pool: DbPool,
    /// Sends waiting for the next store, in arrival order.
    waiting: Vec<Pending>,
    /// Whether a store is running.
    storing: bool,
    send_limits: HashMap<(CompanyId, UserId), TokenBucket>,
    /// Per connection and conversation: when `typing` was last forwarded, and whether active.
    typing: HashMap<(ConnId, ConversationId), (Instant, bool)>,
    /// `--message-retention-days`, when set.
    retention: Option<Duration>,
    metrics: Arc<Metrics>,
}

struct Pending {
    send: Outgoing,
    company: CompanyId,
    origin: Origin,
    outcome: oneshot::Sender<Result<SendOutcome, ChatError>>,
}

impl ChatHub {
    pub fn new(
        presence: Addr<PresenceHub>,
        pool: DbPool,
        retention: Option<Duration>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (waiting, send_limits, typing) = (Vec::new(), HashMap::new(), HashMap::new());
        Self { presence, pool, waiting, storing: false, send_limits, typing, retention, metrics }
    }

    /// Deletes the messages older than the retention (at start, then daily).
    fn expire_old_messages(&self) {
        let Some(retention) = self.retention else { return };
        let cutoff = now_millis() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let pool = self.pool.clone();
        actix::spawn(async move {
            match db::run(&pool, move |conn| db::chat::delete_older_than(conn, cutoff)).await {
                Ok(0) => {}
                Ok(deleted) => log::info!("deleted {deleted} chat messages past their retention"),
                Err(e) => log::warn!("deleting old chat messages failed: {e}"),
            }
        });
    }

    /// Stores everything waiting in one transaction, unless a store is running (its end
    /// starts the next).
    fn store_waiting(&mut self, ctx: &mut Context<Self>) {
        if self.storing || self.waiting.is_empty() {
            return;
        }
        self.storing = true;
        let batch = std::mem::take(&mut self.waiting);
        let sends: Vec<Outgoing> = batch.iter().map(|p| p.send.clone()).collect();
        let pool = self.pool.clone();
        async move { db::run(&pool, move |conn| db::chat::store(conn, &sends)).await }
            .into_actor(self)
            .map(move |result, hub, ctx| {
                hub.storing = false;
                hub.stored(batch, result);
                hub.store_waiting(ctx);
            })
            .spawn(ctx);
    }

    /// A batch is stored (or not): answer each sender, then push each new message.
    fn stored(&mut self, batch: Vec<Pending>, result: Result<Vec<Stored>, DbError>) {
        let stored = match result {
            Ok(stored) => {
                self.metrics.chat_messages_stored(stored.iter().filter(|s| !s.repeated).count());
                stored
            }
            Err(e) => {
                log::error!("storing {} chat messages failed: {e}", batch.len());
                for pending in batch {
                    self.answer_error(&pending, &ChatError::Storage);
                    let _ = pending.outcome.send(Err(ChatError::Storage));
                }
                return;
            }
        };
        for (pending, stored) in batch.into_iter().zip(stored) {
            let message = chat_message(&stored.message, &pending.send.conversation);
            let mut slow = Vec::new();
            if let Origin::Socket(reply_to) = &pending.origin {
                reply_to.reply(&ServerMessage::MessageSent { message: &message }, &mut slow);
            }
            // A retry was pushed when it was first stored.
            if !stored.repeated {
                let except_conn = match &pending.origin {
                    Origin::Socket(reply_to) => Some(reply_to.conn.id),
                    Origin::Rest => None,
                };
                self.presence.do_send(DeliverToParticipants {
                    company: pending.company.clone(),
                    conversation: pending.send.conversation.clone(),
                    except_conn,
                    except_user: None,
                    frame: encode(&ServerMessage::Message { message: &message }),
                });
            }
            self.evict(&pending.company, slow);
            let outcome = SendOutcome { message: stored.message, repeated: stored.repeated };
            let _ = pending.outcome.send(Ok(outcome));
        }
    }

    fn answer_error(&self, pending: &Pending, error: &ChatError) {
        if let Origin::Socket(reply_to) = &pending.origin {
            let mut slow = Vec::new();
            reply_to.error(error.code(), &error.to_string(), &mut slow);
            self.evict(&pending.company, slow);
        }
    }

    fn evict(&self, company: &CompanyId, slow: Vec<SlowConsumer>) {
        for SlowConsumer { user_id, conn } in slow {
            self.presence.do_send(EvictSlowConsumer { company: company.clone(), user_id, conn });
        }
    }

    /// Takes one send from the user's bucket.
    fn may_send(&mut self, company: &CompanyId, user: &UserId) -> bool {
        let now = Instant::now();
        let key = (company.clone(), user.clone());
        let bucket =
            self.send_limits.entry(key).or_insert_with(|| TokenBucket::new(SEND_RATE, SEND_BURST));
        bucket.try_take(now)
    }
}

impl Actor for ChatHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.expire_old_messages();
        ctx.run_interval(RETENTION_EVERY, |hub, _| hub.expire_old_messages());
        ctx.run_interval(SWEEP_EVERY, |hub, _| {
            let now = Instant::now();
            hub.send_limits.retain(|_, bucket| !bucket.is_full(now));
            hub.typing.retain(|_, (at, _)| at.elapsed() < SWEEP_EVERY);
        });
    }
}

/// A participant sends a message to a conversation they may see (checked by the caller).
#[derive(Message)]
#[rtype(result = "Result<SendOutcome, ChatError>")]
pub struct SendMessage {
    pub company: CompanyId,
    pub conversation: ConversationId,
    pub from: UserRef,
    pub draft: Draft,
    pub origin: Origin,
}

impl Handler<SendMessage> for ChatHub {
    type Result = ResponseFuture<Result<SendOutcome, ChatError>>;

    fn handle(&mut self, msg: SendMessage, ctx: &mut Context<Self>) -> Self::Result {
        let (outcome, answer) = oneshot::channel();
        let send = Outgoing {
            company: msg.company.to_string(),
            conversation: msg.conversation,
            from: msg.from,
            draft: msg.draft,
            message_id: crate::ids::random_uuid().simple().to_string(),
            sent_at: now_millis(),
        };
        let pending = Pending { send, company: msg.company, origin: msg.origin, outcome };
        if !self.may_send(&pending.company, &pending.send.from.id) {
            self.answer_error(&pending, &ChatError::RateLimited);
            return Box::pin(async { Err(ChatError::RateLimited) });
        }
        self.waiting.push(pending);
        self.store_waiting(ctx);
        Box::pin(async move { answer.await.unwrap_or(Err(ChatError::Storage)) })
    }
}

/// What a read mark became: the position kept and what is still unread.
#[derive(Debug, Clone, Copy)]
pub struct ReadOutcome {
    pub seq: i64,
    pub unread: i64,
}

/// A participant has read a conversation up to `seq` (access checked by the caller).
#[derive(Message)]
#[rtype(result = "Result<ReadOutcome, ChatError>")]
pub struct MarkRead {
    pub company: CompanyId,
    pub conversation: ConversationId,
    pub reader: UserRef,
    pub seq: i64,
    pub origin: Origin,
}

impl Handler<MarkRead> for ChatHub {
    type Result = ResponseActFuture<Self, Result<ReadOutcome, ChatError>>;

    fn handle(&mut self, msg: MarkRead, _: &mut Context<Self>) -> Self::Result {
        let pool = self.pool.clone();
        let (company, id, user) =
            (msg.company.to_string(), msg.conversation.to_string(), msg.reader.id.to_string());
        let seq = msg.seq;
        let store = async move {
            db::run(&pool, move |conn| db::chat::mark_read(conn, &company, &id, &user, seq)).await
        };
        Box::pin(store.into_actor(self).map(move |result, hub, _| {
            let (seq, unread) = result.map_err(|e| {
                log::error!("storing a read mark failed: {e}");
                ChatError::Storage
            })?;
            hub.read_marked(&msg, seq, unread);
            Ok(ReadOutcome { seq, unread })
        }))
    }
}

impl ChatHub {
    /// Answers a read mark and shows it to the reader's other connections and the others.
    fn read_marked(&self, msg: &MarkRead, seq: i64, unread: i64) {
        let conversation = &msg.conversation;
        let mut slow = Vec::new();
        let except_conn = match &msg.origin {
            Origin::Socket(reply_to) => {
                let marked = ServerMessage::ReadMarked { conversation, seq, unread };
                reply_to.reply(&marked, &mut slow);
                Some(reply_to.conn.id)
            }
            Origin::Rest => None,
        };
        let read = ServerMessage::ConversationRead { conversation, user: &msg.reader, seq };
        self.presence.do_send(DeliverToParticipants {
            company: msg.company.clone(),
            conversation: conversation.clone(),
            except_conn,
            except_user: None,
            frame: encode(&read),
        });
        self.evict(&msg.company, slow);
    }
}

/// A participant is typing (or stopped) in a conversation they may see.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Typing {
    pub company: CompanyId,
    pub conversation: ConversationId,
    pub user: UserRef,
    pub conn: ConnId,
    pub active: bool,
}

impl Handler<Typing> for ChatHub {
    type Result = ();

    /// At most one `typing` per `TYPING_EVERY` per connection and conversation; a stop after
    /// a forwarded start always goes through, so nobody is left "typing" for the 6 s clients
    /// wait before they stop believing it.
    fn handle(&mut self, msg: Typing, _: &mut Context<Self>) {
        let key = (msg.conn, msg.conversation.clone());
        let last = self.typing.get(&key).copied();
        let forward = match (msg.active, last) {
            (true, Some((at, _))) => at.elapsed() >= TYPING_EVERY,
            (false, Some((_, was_active))) => was_active,
            (true, None) => true,
            (false, None) => false,
        };
        if !forward {
            return;
        }
        self.typing.insert(key, (Instant::now(), msg.active));
        let frame = ServerMessage::Typing {
            conversation: &msg.conversation,
            user: &msg.user,
            active: msg.active,
        };
        self.presence.do_send(DeliverToParticipants {
            company: msg.company,
            conversation: msg.conversation.clone(),
            except_conn: None,
            except_user: Some(msg.user.id.clone()),
            frame: encode(&frame),
        });
    }
}

impl Handler<PresenceEvent> for ChatHub {
    type Result = ();

    fn handle(&mut self, msg: PresenceEvent, _: &mut Context<Self>) {
        if let PresenceEvent::ConnectionClosed { conn, .. } = msg {
            self.typing.retain(|(c, _), _| *c != conn);
        }
    }
}

/// A stored message as the wire shows it (`meta` as the object it was).
pub fn chat_message<'a>(row: &'a MessageRow, conversation: &'a ConversationId) -> ChatMessage<'a> {
    ChatMessage {
        id: &row.id,
        conversation,
        seq: row.seq,
        from: Sender { id: &row.sender_id, name: &row.sender_name, role: &row.sender_role },
        text: &row.text,
        meta: row.meta.as_deref().and_then(|m| serde_json::from_str(m).ok()),
        client_id: row.client_id.as_deref(),
        sent_at: timestamp_from_millis(row.sent_at),
    }
}

/// Whether a user id names someone the caller may write to, and so which conversation `to`
/// means: an account or a connected user of the company tells the role; a customer without an
/// account is known by their support conversation.
pub async fn role_of(
    pool: &DbPool,
    presence: &Addr<PresenceHub>,
    company: &CompanyId,
    user: &UserId,
) -> Result<Option<Role>, DbError> {
    let (c, u) = (company.to_string(), user.to_string());
    let account = db::run(pool, move |conn| db::users::find_by_id(conn, &c, &u)).await?;
    if let Some(account) = account {
        return Ok(account.role.parse().ok());
    }
    let online =
        presence.send(super::presence::RoleOf { company: company.clone(), user_id: user.clone() });
    if let Ok(Some(role)) = online.await {
        return Ok(Some(role));
    }
    let (c, id) =
        (company.to_string(), ConversationId::Support { customer: user.clone() }.to_string());
    let support = db::run(pool, move |conn| db::chat::find(conn, &c, &id)).await?;
    Ok(support.map(|_| Role::Customer))
}
