//! `CallHub`: live calls. It owns two things.
//!
//! **The push of stored status changes** ([`status`]): every change is stored first
//! ([`record`]) and then pushed, never backwards, to the owner's connections and the company's
//! agents, each connection once.
//!
//! **Browser calls from the landing page** ([`browser`]): a customer's `call_request` queues a
//! call and offers it to the company's available agents; the first `call_accept` wins. The hub
//! handles one message at a time, so "first" is decided here, atomically, even for two accepts
//! in the same millisecond; the database's forward-only update backs it up. Then the hub
//! relays WebRTC signaling between the two parties only, in order, and ends the call on
//! `call_end`, when nobody accepts in time (`no-answer`), or when a party stays offline past
//! the grace period (`connection-lost`). Every transition is stored through [`record`], like
//! telephony calls. Frames for a party go to all of that user's connections (through the
//! PresenceHub), so a party that reconnects keeps receiving; answers to a request go to the
//! requesting connection.
//!
//! Mailbox:
//!
//! | message | sent by | answer |
//! | --- | --- | --- |
//! | [`CallChanged`] | [`record`], after a change is stored | `call_status_changed` to owner + agents |
//! | [`RequestCall`] | a customer's session (`call_request`) | `call_queued` or `queue_full`; `incoming_call` to available agents |
//! | [`AcceptCall`] | an agent's session (`call_accept`) | `call_accepted` to both parties, `call_taken` to the other agents, or `call_already_taken` |
//! | [`EndCall`] | a party's session (`call_end`) | `call_ended` to both parties, or `not_in_call` |
//! | [`RelaySignal`] | a party's session (`webrtc_*`, `ice_candidate`) | the frame to the other party, or `not_in_call` |
//! | [`IsParty`] | a customer's session (`join_room` of `call:<id>`) | whether the customer is a party |
//! | [`PresenceEvent`] | the PresenceHub | offers to an agent who became available; the grace timer for a party who went offline |

mod browser;
mod status;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::json;

pub use browser::{AcceptCall, EndCall, IsParty, RelaySignal, RequestCall, Signal};
pub use status::{CallChanged, RecordError, record, record_as};

use super::connection::{ReplyTo, SlowConsumer};
use super::presence::{DeliverToUser, EvictSlowConsumer, IsOnline, PresenceEvent, PresenceHub};
use crate::calls::{CallEvent, CallStatus, CallTarget, CompanyChoice, TERMINAL_RANK};
use crate::db::DbPool;
use crate::db::calls::StoredEvent;
use crate::error::ErrorCode;
use crate::ids::{CallId, CompanyId, UserId};
use crate::protocol::{Frame, ServerMessage};
use crate::user::UserRef;

/// How long the rank of an ended call is remembered, to drop its late notices.
const REMEMBER_ENDED: Duration = Duration::from_secs(600);
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// The provider name and key space of calls placed from the landing page.
const BROWSER: &str = "browser";

/// Timing and limits of browser calls, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct CallSettings {
    pub queue_timeout: Duration,
    pub grace: Duration,
    pub max_queued_per_company: usize,
}

/// The call actor. See the module docs.
pub struct CallHub {
    presence: Addr<PresenceHub>,
    pool: DbPool,
    settings: CallSettings,
    /// Per call: the rank last pushed, and when (see [`CallChanged`]'s handler).
    sent: HashMap<CallId, (i32, Instant)>,
    /// Browser calls that have not ended, by id.
    live: HashMap<CallId, BrowserCall>,
    /// Per company, the ids of browser calls waiting for an agent, oldest first.
    queues: HashMap<CompanyId, Vec<CallId>>,
    /// Each customer's one open call.
    open: HashMap<(CompanyId, UserId), CallId>,
}

struct BrowserCall {
    company: CompanyId,
    customer: UserRef,
    agent: Option<UserRef>,
    note: Option<String>,
    phase: Phase,
    /// Whether the call was offered to at least one agent (and so stored as `ringing`).
    offered: bool,
}

/// Where a browser call is in its life. Each transition that changes the stored status first
/// waits for the store, in a phase of its own (`Creating`, `Accepting`), because the hub keeps
/// handling messages meanwhile: a second `call_accept` arriving while the first one's
/// `in-progress` is being stored must already be late, and a `call_end` arriving then must find
/// the call. Only the hub's own callbacks move a call out of those two phases.
///
/// ```text
/// Creating ──stored──▶ Waiting ──first accept──▶ Accepting ──stored──▶ Talking
///    │                    ▲                          │
///    └─store failed: gone └────store failed──────────┘
/// ```
/// From any phase, `call_end`, `no-answer` or `connection-lost` ends the call (it leaves `live`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The `queued` status is being stored; nobody has been offered the call yet.
    Creating,
    /// Queued, offered to available agents; the queue timeout runs.
    Waiting,
    /// An agent won; the `in-progress` status is being stored.
    Accepting,
    /// Both parties are connected through us; signaling is relayed.
    Talking,
}

impl BrowserCall {
    fn is_party(&self, user_id: &UserId) -> bool {
        &self.customer.id == user_id || self.agent.as_ref().is_some_and(|a| &a.id == user_id)
    }

    /// The other party of a call in progress.
    fn other_party(&self, user_id: &UserId) -> Option<&UserRef> {
        let agent = self.agent.as_ref()?;
        if &self.customer.id == user_id {
            Some(agent)
        } else if &agent.id == user_id {
            Some(&self.customer)
        } else {
            None
        }
    }

    /// The parties, for the stored call.
    fn parties(&self) -> Vec<UserId> {
        let mut parties = vec![self.customer.id.clone()];
        parties.extend(self.agent.as_ref().map(|a| a.id.clone()));
        parties
    }
}

impl CallHub {
    pub fn new(presence: Addr<PresenceHub>, pool: DbPool, settings: CallSettings) -> Self {
        Self {
            presence,
            pool,
            settings,
            sent: HashMap::new(),
            live: HashMap::new(),
            queues: HashMap::new(),
            open: HashMap::new(),
        }
    }

    /// Answers the requesting connection; a full mailbox there is a slow consumer.
    fn answer(&self, company: &CompanyId, to: &ReplyTo, message: &ServerMessage<'_>) {
        let mut slow = Vec::new();
        to.reply(message, &mut slow);
        self.evict(company, slow);
    }

    fn answer_error(&self, company: &CompanyId, to: &ReplyTo, code: ErrorCode, text: &str) {
        let mut slow = Vec::new();
        to.error(code, text, &mut slow);
        self.evict(company, slow);
    }

    /// This hub keeps no connections, so evicting is only telling the PresenceHub.
    fn evict(&self, company: &CompanyId, slow: Vec<SlowConsumer>) {
        for SlowConsumer { user_id, conn } in slow {
            self.presence.do_send(EvictSlowConsumer { company: company.clone(), user_id, conn });
        }
    }

    fn to_user(&self, company: &CompanyId, user_id: &UserId, frame: Frame) {
        self.presence.do_send(DeliverToUser {
            company: company.clone(),
            user_id: user_id.clone(),
            frame,
        });
    }

    /// A waiting call's place in its company's queue, from 1.
    fn position(&self, company: &CompanyId, call_id: &CallId) -> usize {
        self.queues
            .get(company)
            .and_then(|q| q.iter().position(|id| id == call_id))
            .map_or(0, |i| i + 1)
    }

    fn dequeue(&mut self, company: &CompanyId, call_id: &CallId) {
        if let Some(queue) = self.queues.get_mut(company) {
            queue.retain(|id| id != call_id);
        }
    }

    /// Drops every trace of a browser call from the hub's maps.
    fn forget(&mut self, call_id: &CallId) {
        if let Some(call) = self.live.remove(call_id) {
            self.open.remove(&(call.company.clone(), call.customer.id.clone()));
            self.dequeue(&call.company, call_id);
        }
    }

    /// Stores a browser call's status through [`record_as`]; `then` sees the outcome here.
    fn store<F>(
        &self,
        ctx: &mut Context<Self>,
        call_id: &CallId,
        status: CallStatus,
        reason: Option<&str>,
        then: F,
    ) where
        F: FnOnce(&mut Self, &mut Context<Self>, Result<StoredEvent, RecordError>) + 'static,
    {
        let Some(call) = self.live.get(call_id) else { return };
        let company = CompanyChoice::Known(call.company.clone());
        let target = CallTarget::Keys(vec![(BROWSER.to_owned(), call_id.to_string())]);
        let event = CallEvent {
            ended_reason: reason.map(str::to_owned),
            owner_id: call.agent.as_ref().map(|a| a.id.clone()),
            direction: Some("inbound".to_owned()),
            from: Some(call.customer.name.to_string()),
            provider_call_id: Some(call_id.to_string()),
            parties: call.parties(),
            payload: json!({"status": status.as_str(), "reason": reason, "note": call.note}),
            data: json!({"customer": call.customer, "note": call.note}),
            ..CallEvent::new(company, target, BROWSER, status)
        };
        let (pool, hub, id) = (self.pool.clone(), ctx.address(), call_id.clone());
        async move { record_as(&pool, &hub, event, id).await }
            .into_actor(self)
            .map(move |result, hub, ctx| then(hub, ctx, result))
            .spawn(ctx);
    }

    /// A party's last connection is gone: end its calls unless it is back within the grace.
    fn end_after_grace(&mut self, ctx: &mut Context<Self>, company: CompanyId, user_id: UserId) {
        let calls: Vec<CallId> = self
            .live
            .iter()
            .filter(|(_, c)| c.company == company && c.is_party(&user_id))
            .map(|(id, _)| id.clone())
            .collect();
        for call_id in calls {
            let (company, user_id) = (company.clone(), user_id.clone());
            ctx.run_later(self.settings.grace, move |hub, ctx| {
                hub.presence
                    .send(IsOnline { company, user_id })
                    .into_actor(hub)
                    .map(move |online, hub, ctx| {
                        if !online.unwrap_or(false) {
                            hub.finish(ctx, &call_id, "connection-lost", None);
                        }
                    })
                    .spawn(ctx);
            });
        }
    }
}

impl Actor for CallHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SWEEP_EVERY, |hub, _| {
            // Live calls stay until they end; ended ones are kept a while for their stragglers.
            hub.sent.retain(|_, (rank, at)| *rank < TERMINAL_RANK || at.elapsed() < REMEMBER_ENDED);
        });
    }
}

impl Handler<PresenceEvent> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: PresenceEvent, ctx: &mut Context<Self>) {
        match msg {
            PresenceEvent::AgentAvailable { company, user_id } => {
                self.offer_waiting_to(ctx, &company, &user_id)
            }
            PresenceEvent::UserOffline { company, user_id } => {
                self.end_after_grace(ctx, company, user_id)
            }
            PresenceEvent::ConnectionClosed { .. } => {}
        }
    }
}
