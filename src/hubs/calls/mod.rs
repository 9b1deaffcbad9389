//! `CallHub`: live calls. It owns two things.
//!
//! **The push of stored status changes**: every change is stored first ([`record`]) and then
//! pushed, never backwards, to the owner's connections and the company's agents, each
//! connection once.
//!
//! **Browser calls from the landing page** (bookkeeping in `browser.rs`): a customer's
//! `call_request` queues a call and offers it to the company's available agents; the first
//! `call_accept` wins. The hub handles one message at a time, so "first" is decided here,
//! atomically, even for two accepts in the same millisecond; the database's forward-only update
//! backs it up. Then the hub relays WebRTC signaling between the two parties only, in order, and
//! ends the call on `call_end`, when nobody accepts in time (`no-answer`), or when a party stays
//! offline past the grace period (`connection-lost`). Every transition is stored through
//! [`record`], like telephony calls. Frames for a party go to all of that user's connections
//! (through the PresenceHub), so a party that reconnects keeps receiving; answers to a request go
//! to the requesting connection.
//!
//! Mailbox:
//!
//! | message | sent by | answer |
//! | --- | --- | --- |
//! | [`CallChanged`] | [`record`], after a change is stored | `call_status_changed` to owner + agents |
//! | [`RequestCall`] | a customer's session (`call_request`) | `call_queued` or `queue_full`; `incoming_call` to available agents |
//! | [`AcceptCall`] | an agent's session (`call_accept`) | `call_accepted` to both parties, `call_taken` to the other agents, or `call_already_taken` |
//! | [`DeclineCall`] | an agent's session (`call_decline`) | `call_withdrawn` to that agent's connections |
//! | [`EndCall`] | a party's session (`call_end`) | `call_ended` to both parties, or `not_in_call` |
//! | [`RelaySignal`] | a party's session (`webrtc_*`, `ice_candidate`) | the frame to the other party, or `not_in_call` |
//! | [`IsParty`] | a customer's session (`join_room` of `call:<id>`) | whether the customer is a party |
//! | [`PresenceEvent`] | the PresenceHub | offers to an agent who became available; `queue_position` when the number of available agents changes; the grace timer for a party who went offline |
//!
//! While an agent is a party of a call (from the moment their accept wins until it ends) the
//! hub tells the PresenceHub ([`SetInCall`]), which shows them `busy` and stops offering them
//! calls. A waiting customer hears `queue_position` whenever their place in line or the number
//! of available agents changes.

mod browser;
mod cluster;
mod status;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::{Value, json};

pub use status::{CallChanged, RecordError, record, record_as};

use self::browser::{BrowserCalls, Phase};
use self::cluster::RemoteCall;
use super::connection::{ReplyTo, SlowConsumer};
use super::presence::{
    DeliverHere, DeliverToAvailableAgents, DeliverToStaff, DeliverToUser, EvictSlowConsumer,
    IsOnline, PresenceEvent, PresenceHub, SetInCall,
};
use crate::calls::{CallEvent, CallStatus, CallTarget, CompanyChoice, TERMINAL_RANK};
use crate::cluster::{Audience, Body, Bus, CallCommand};
use crate::config::CallsSettings;
use crate::db::DbPool;
use crate::db::calls::StoredEvent;
use crate::error::ErrorCode;
use crate::ids::{CallId, CompanyId, UserId};
use crate::protocol::{Frame, ServerMessage, encode};
use crate::user::UserRef;

/// How long the rank of an ended call is remembered, to drop its late notices.
const REMEMBER_ENDED: Duration = Duration::from_secs(600);
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// The provider name and key space of calls placed from the landing page.
pub const BROWSER_PROVIDER: &str = "browser";

/// The call actor. See the module docs.
pub struct CallHub {
    presence: Addr<PresenceHub>,
    pool: DbPool,
    settings: CallsSettings,
    /// Per call: the rank last pushed, and when (see [`CallChanged`]'s handler).
    sent: HashMap<CallId, (i32, Instant)>,
    /// The browser calls that have not ended.
    calls: BrowserCalls,
    /// Per company, how many agents are shown `available` (told by the PresenceHub).
    agents_available: HashMap<CompanyId, usize>,
    /// The cluster bus, with `--redis-url` (see `cluster.rs`).
    bus: Option<Bus>,
    /// The browser calls living on other nodes.
    remote_calls: HashMap<CallId, RemoteCall>,
    /// Per browser call with a store in flight, the stores asked for since (see [`Self::store`]).
    stores_waiting: HashMap<CallId, VecDeque<PendingStore>>,
}

/// A browser call's store, its event already built, waiting for the one before it.
type PendingStore = Box<dyn FnOnce(&mut CallHub, &mut Context<CallHub>)>;

impl CallHub {
    pub fn new(
        presence: Addr<PresenceHub>,
        pool: DbPool,
        settings: CallsSettings,
        bus: Option<Bus>,
    ) -> Self {
        let (sent, calls, agents_available) =
            (HashMap::new(), BrowserCalls::default(), HashMap::new());
        let (remote_calls, stores_waiting) = (HashMap::new(), HashMap::new());
        Self {
            presence,
            pool,
            settings,
            sent,
            calls,
            agents_available,
            bus,
            remote_calls,
            stores_waiting,
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
        let (company, user_id) = (company.clone(), user_id.clone());
        self.presence.do_send(DeliverToUser { company, user_id, except_conn: None, frame });
    }

    fn available_in(&self, company: &CompanyId) -> usize {
        self.agents_available.get(company).copied().unwrap_or(0)
    }

    /// Tells the customers of these waiting calls where they stand.
    fn tell_positions(&self, calls: &[CallId]) {
        for call_id in calls {
            let Some(call) = self.calls.in_phase(call_id, Phase::Waiting) else { continue };
            let position = self.calls.position(&call.company, call_id);
            let agents_available = self.available_in(&call.company);
            let frame =
                encode(&ServerMessage::QueuePosition { call_id, position, agents_available });
            self.to_user(&call.company, &call.customer.id, frame);
        }
    }

    /// Shows an agent `busy` while they are a party of a call, their chosen status after.
    fn set_in_call(&self, company: &CompanyId, agent: &UserId, in_call: bool) {
        let (company, user_id) = (company.clone(), agent.clone());
        self.presence.do_send(SetInCall { company, user_id, in_call });
    }

    /// Stores a browser call's status through [`record_as`]; `then` sees the outcome here. A
    /// call's stores run one at a time, in the order asked, so its event log reads as things
    /// happened: a `ringing` stored in the background must not land after the `in-progress` of
    /// an accept that came quickly (they would race on two database connections).
    fn store<F>(
        &mut self,
        ctx: &mut Context<Self>,
        call_id: &CallId,
        status: CallStatus,
        reason: Option<&str>,
        then: F,
    ) where
        F: FnOnce(&mut Self, &mut Context<Self>, Result<StoredEvent, RecordError>) + 'static,
    {
        let Some(call) = self.calls.get(call_id) else { return };
        let company = CompanyChoice::Known(call.company.clone());
        let target = CallTarget::Keys(vec![(BROWSER_PROVIDER.to_owned(), call_id.to_string())]);
        let event = CallEvent {
            ended_reason: reason.map(str::to_owned),
            owner_id: call.agent.as_ref().map(|a| a.id.clone()),
            direction: Some("inbound".to_owned()),
            from: Some(call.customer.name.to_string()),
            provider_call_id: Some(call_id.to_string()),
            parties: call.parties(),
            payload: json!({"status": status.as_str(), "reason": reason, "note": call.note}),
            data: json!({"customer": call.customer, "note": call.note}),
            ..CallEvent::new(company, target, BROWSER_PROVIDER, status)
        };
        let id = call_id.clone();
        let run: PendingStore = Box::new(move |hub, ctx| {
            let (pool, addr, key) = (hub.pool.clone(), ctx.address(), id.clone());
            async move { record_as(&pool, &addr, event, id).await }
                .into_actor(hub)
                .map(move |result, hub, ctx| {
                    then(hub, ctx, result);
                    hub.next_store(ctx, &key);
                })
                .spawn(ctx);
        });
        match self.stores_waiting.entry(call_id.clone()) {
            Entry::Occupied(mut waiting) => waiting.get_mut().push_back(run),
            Entry::Vacant(slot) => {
                slot.insert(VecDeque::new());
                run(self, ctx);
            }
        }
    }

    /// A store of `call_id` is done: start the next one asked for, if any.
    fn next_store(&mut self, ctx: &mut Context<Self>, call_id: &CallId) {
        match self.stores_waiting.get_mut(call_id).and_then(VecDeque::pop_front) {
            Some(run) => run(self, ctx),
            None => {
                self.stores_waiting.remove(call_id);
            }
        }
    }

    /// Stores a status nobody waits for; a failure is only logged (the call goes on).
    fn store_quietly(
        &mut self,
        ctx: &mut Context<Self>,
        call_id: &CallId,
        status: CallStatus,
        reason: Option<&str>,
    ) {
        self.store(ctx, call_id, status, reason, move |_, _, result| {
            if let Err(e) = result {
                log::warn!("storing a browser call's {} failed: {e}", status.as_str());
            }
        });
    }

    /// `queued` is stored (or not): answer the customer, start the queue timeout, offer it.
    fn queued(
        &mut self,
        ctx: &mut Context<Self>,
        call_id: CallId,
        reply_to: ReplyTo,
        result: Result<StoredEvent, RecordError>,
    ) {
        let Some(call) = self.calls.get_mut(&call_id) else { return };
        let company = call.company.clone();
        if let Err(e) = result {
            log::error!("storing a browser call failed: {e}");
            self.calls.forget(&call_id);
            let text = "storage is unavailable, try again";
            return self.answer_error(&company, &reply_to, ErrorCode::StorageUnavailable, text);
        }
        call.phase = Phase::Waiting;
        let customer = call.customer.id.clone();
        self.tell_nodes(Body::CallOpened {
            company: company.clone(),
            call_id: call_id.clone(),
            customer,
        });
        let position = self.calls.position(&company, &call_id);
        let agents_available = self.available_in(&company);
        self.answer(
            &company,
            &reply_to,
            &ServerMessage::CallQueued { call_id: &call_id, position, agents_available },
        );
        let id = call_id.clone();
        ctx.run_later(self.settings.queue_timeout(), move |hub, ctx| {
            if hub.calls.in_phase(&id, Phase::Waiting).is_some() {
                hub.finish(ctx, &id, "no-answer", None);
            }
        });
        self.offer(ctx, &call_id);
    }

    /// Offers a waiting call to the company's available agents (but those who declined it).
    fn offer(&mut self, ctx: &mut Context<Self>, call_id: &CallId) {
        let Some(call) = self.calls.in_phase(call_id, Phase::Waiting) else { return };
        let frame = encode(&ServerMessage::IncomingCall {
            call_id,
            customer: &call.customer,
            note: call.note.as_deref(),
        });
        let id = call_id.clone();
        let (company, except) = (call.company.clone(), call.declined.clone());
        self.presence
            .send(DeliverToAvailableAgents { company: company.clone(), except, frame })
            .into_actor(self)
            .map(move |delivered, hub, ctx| {
                // In a cluster the offer also went to the available agents of the other nodes.
                let elsewhere = hub.bus.is_some() && hub.available_in(&company) > 0;
                if delivered.unwrap_or(0) > 0 || elsewhere {
                    hub.mark_offered(ctx, &id);
                }
            })
            .spawn(ctx);
    }

    /// Offers every call still waiting to an agent who just became available.
    fn offer_waiting_to(&mut self, ctx: &mut Context<Self>, company: &CompanyId, agent: &UserId) {
        for call_id in self.calls.queue(company) {
            let Some(call) = self.calls.in_phase(&call_id, Phase::Waiting) else { continue };
            if call.declined.contains(agent) {
                continue;
            }
            let incoming = ServerMessage::IncomingCall {
                call_id: &call_id,
                customer: &call.customer,
                note: call.note.as_deref(),
            };
            self.to_user(company, agent, encode(&incoming));
            self.mark_offered(ctx, &call_id);
        }
    }

    /// The first time a call reaches an agent's screen it is `ringing`.
    fn mark_offered(&mut self, ctx: &mut Context<Self>, call_id: &CallId) {
        let Some(call) = self.calls.get_mut(call_id).filter(|c| !c.offered) else { return };
        call.offered = true;
        self.store_quietly(ctx, call_id, CallStatus::Ringing, None);
    }

    /// The accepting agent's `in-progress` is stored (or not): connect the parties.
    fn accepted(
        &mut self,
        company: CompanyId,
        call_id: CallId,
        reply_to: ReplyTo,
        result: Result<StoredEvent, RecordError>,
    ) {
        let Some(call) = self.calls.get_mut(&call_id).filter(|c| c.phase == Phase::Accepting)
        else {
            // The customer hung up while the accept was being stored.
            return self.answer_error(
                &company,
                &reply_to,
                ErrorCode::NotFound,
                "the call has ended",
            );
        };
        if let Err(e) = result {
            log::error!("storing an accepted browser call failed: {e}");
            call.phase = Phase::Waiting;
            if let Some(agent) = call.agent.take() {
                self.set_in_call(&company, &agent.id, false);
            }
            self.calls.requeue_first(&company, call_id);
            self.tell_positions(&self.calls.queue(&company));
            let text = "storage is unavailable, try again";
            return self.answer_error(&company, &reply_to, ErrorCode::StorageUnavailable, text);
        }
        call.phase = Phase::Talking;
        let (Some(agent), customer) = (call.agent.clone(), call.customer.id.clone()) else {
            return;
        };
        self.tell_nodes(Body::CallParty {
            call_id: call_id.clone(),
            agent: Some(agent.id.clone()),
        });
        let accepted = ServerMessage::CallAccepted { call_id: &call_id, agent: &agent };
        self.to_user(&company, &customer, encode(&accepted));
        self.answer(&company, &reply_to, &accepted);
        let taken = encode(&ServerMessage::CallTaken { call_id: &call_id, by: &agent });
        let except_user = Some(agent.id.clone());
        self.presence.do_send(DeliverToStaff { company, except_user, frame: taken });
    }

    /// Ends a call: both parties (and, for a call nobody took, the agents it was offered to)
    /// hear `call_ended` at once; the `ended` status is stored and pushed as usual.
    fn finish(
        &mut self,
        ctx: &mut Context<Self>,
        call_id: &CallId,
        reason: &str,
        by: Option<&UserRef>,
    ) {
        let Some(call) = self.calls.get(call_id) else { return };
        if let Some(agent) = &call.agent {
            self.set_in_call(&call.company, &agent.id, false);
        }
        let frame = encode(&ServerMessage::CallEnded { call_id, reason, by });
        self.to_user(&call.company, &call.customer.id, frame.clone());
        match (&call.agent, call.phase) {
            (Some(agent), Phase::Talking) => self.to_user(&call.company, &agent.id, frame),
            _ => {
                let company = call.company.clone();
                self.presence.do_send(DeliverToStaff { company, except_user: None, frame })
            }
        }
        self.store_quietly(ctx, call_id, CallStatus::Ended, Some(reason));
        self.tell_nodes(Body::CallParty { call_id: call_id.clone(), agent: None });
        let moved_up = self.calls.forget(call_id);
        self.tell_positions(&moved_up);
    }

    /// A party's last connection is gone: end its calls unless it is back within the grace.
    fn end_after_grace(&mut self, ctx: &mut Context<Self>, company: CompanyId, user_id: UserId) {
        for call_id in self.calls.calls_of(&company, &user_id) {
            let (company, user_id) = (company.clone(), user_id.clone());
            ctx.run_later(self.settings.grace(), move |hub, ctx| {
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

impl Handler<CallChanged> for CallHub {
    type Result = ();

    /// Two handlers on two worker threads can store two changes of one call and tell the hub
    /// in either order. The database already refused to move the call backwards; this memory
    /// of the last rank pushed per call makes the screens agree with it: a notice that is not
    /// newer than the one already shown is dropped, not shown late.
    fn handle(&mut self, msg: CallChanged, _: &mut Context<Self>) {
        if self.sent.get(&msg.call_id).is_some_and(|(rank, _)| *rank >= msg.rank) {
            return;
        }
        self.sent.insert(msg.call_id.clone(), (msg.rank, Instant::now()));
        if let Some(bus) = &self.bus {
            let (company, call_id, owner_id) =
                (msg.company.clone(), msg.call_id, msg.owner_id.clone());
            bus.send_frame(
                Body::CallChanged { company, call_id, rank: msg.rank, owner_id },
                &msg.frame,
            );
        }
        let audience = Audience::StaffAndUser { user_id: msg.owner_id };
        self.presence.do_send(DeliverHere { company: msg.company, audience, frame: msg.frame });
    }
}

/// A customer asks to talk (`call_request`): answers `call_queued` or `queue_full`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RequestCall {
    pub company: CompanyId,
    pub customer: UserRef,
    pub note: Option<String>,
    /// The customer's address (its /64 for IPv6), when known.
    pub client_ip: Option<IpAddr>,
    pub reply_to: ReplyTo,
}

impl Handler<RequestCall> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: RequestCall, ctx: &mut Context<Self>) {
        let company = msg.company;
        if let Some(call_id) = self.calls.open_call(&company, &msg.customer.id) {
            // One open call per customer: asking again answers the same call while it waits.
            if self.calls.in_phase(call_id, Phase::Waiting).is_none() {
                let text = "you already have an open call";
                return self.answer_error(&company, &msg.reply_to, ErrorCode::InvalidMessage, text);
            }
            let position = self.calls.position(&company, call_id);
            let agents_available = self.available_in(&company);
            let queued = ServerMessage::CallQueued { call_id, position, agents_available };
            return self.answer(&company, &msg.reply_to, &queued);
        }
        if self.calls.waiting(&company) >= self.settings.max_queued_per_company() {
            let text = "all agents are busy and the queue is full, try again later";
            return self.answer_error(&company, &msg.reply_to, ErrorCode::QueueFull, text);
        }
        if self.calls.ip_is_full(msg.client_ip) {
            let text = "too many open calls from this address, try again later";
            return self.answer_error(&company, &msg.reply_to, ErrorCode::QueueFull, text);
        }
        let call_id = self.calls.enqueue(company, msg.customer, msg.note, msg.client_ip);
        let (id, reply_to) = (call_id.clone(), msg.reply_to);
        self.store(ctx, &call_id, CallStatus::Queued, None, move |hub, ctx, result| {
            hub.queued(ctx, id, reply_to, result)
        });
    }
}

/// An agent takes a waiting call (`call_accept`); the first one wins.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AcceptCall {
    pub company: CompanyId,
    pub agent: UserRef,
    pub call_id: CallId,
    pub reply_to: ReplyTo,
}

impl Handler<AcceptCall> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: AcceptCall, ctx: &mut Context<Self>) {
        if self.forward(&msg.company, &msg.call_id, &msg.agent, &msg.reply_to, CallCommand::Accept)
        {
            return;
        }
        let company = msg.company;
        let Some(call) = self.calls.get_mut(&msg.call_id).filter(|c| c.company == company) else {
            let text = "no such call waiting";
            return self.answer_error(&company, &msg.reply_to, ErrorCode::NotFound, text);
        };
        if call.phase != Phase::Waiting {
            let text = "another agent took this call";
            return self.answer_error(&company, &msg.reply_to, ErrorCode::CallAlreadyTaken, text);
        }
        // Decided here: from now on every other accept is late, and the agent is busy.
        call.phase = Phase::Accepting;
        call.agent = Some(msg.agent.clone());
        self.set_in_call(&company, &msg.agent.id, true);
        let moved_up = self.calls.dequeue(&company, &msg.call_id);
        self.tell_positions(&moved_up);
        let (call_id, reply_to) = (msg.call_id, msg.reply_to);
        let id = call_id.clone();
        self.store(ctx, &call_id, CallStatus::InProgress, None, move |hub, _, result| {
            hub.accepted(company, id, reply_to, result)
        });
    }
}

/// Either party ends the call (`call_end`); anyone else gets `not_in_call`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndCall {
    pub company: CompanyId,
    pub user: UserRef,
    pub call_id: CallId,
    pub reason: Option<String>,
    pub reply_to: ReplyTo,
}

impl Handler<EndCall> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: EndCall, ctx: &mut Context<Self>) {
        let end = CallCommand::End { reason: msg.reason.clone() };
        if self.forward(&msg.company, &msg.call_id, &msg.user, &msg.reply_to, end) {
            return;
        }
        let is_party = self
            .calls
            .get(&msg.call_id)
            .is_some_and(|c| c.company == msg.company && c.is_party(&msg.user.id));
        if !is_party {
            let text = "you are not a party of that call";
            return self.answer_error(&msg.company, &msg.reply_to, ErrorCode::NotInCall, text);
        }
        // A customer who stops waiting cancels: nobody answered, nothing was hung up.
        let waiting = self.calls.get(&msg.call_id).is_some_and(|c| c.agent.is_none());
        let reason = match msg.reason.as_deref() {
            _ if waiting => "canceled",
            Some(reason) => reason,
            None => "hangup",
        };
        self.finish(ctx, &msg.call_id, reason, Some(&msg.user));
    }
}

/// An offered agent declines a waiting call (`call_decline`): the offer is withdrawn from that
/// agent only (`call_withdrawn` to their connections); the others keep it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeclineCall {
    pub company: CompanyId,
    pub agent: UserRef,
    pub call_id: CallId,
    pub reply_to: ReplyTo,
}

impl Handler<DeclineCall> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: DeclineCall, _: &mut Context<Self>) {
        if self.forward(&msg.company, &msg.call_id, &msg.agent, &msg.reply_to, CallCommand::Decline)
        {
            return;
        }
        let company = msg.company;
        let call = self.calls.get_mut(&msg.call_id).filter(|c| c.company == company);
        let Some(call) = call.filter(|c| c.phase == Phase::Waiting) else {
            let text = "no such call waiting";
            return self.answer_error(&company, &msg.reply_to, ErrorCode::NotFound, text);
        };
        let agent = msg.reply_to.user_id.clone();
        if !call.declined.contains(&agent) {
            call.declined.push(agent.clone());
        }
        let withdrawn = ServerMessage::CallWithdrawn { call_id: &msg.call_id };
        self.answer(&company, &msg.reply_to, &withdrawn);
        // The decliner's other tabs drop the offer too (the asking one already has its answer).
        self.presence.do_send(DeliverToUser {
            company,
            user_id: agent,
            except_conn: Some(msg.reply_to.conn.id),
            frame: encode(&withdrawn),
        });
    }
}

/// One WebRTC signaling message, relayed unchanged.
#[derive(Debug, Clone)]
pub enum Signal {
    Offer(Value),
    Answer(Value),
    Candidate(Value),
}

/// A party sends signaling for its call in progress; it goes to the other party only.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RelaySignal {
    pub company: CompanyId,
    pub from: UserRef,
    pub call_id: CallId,
    pub signal: Signal,
    pub reply_to: ReplyTo,
}

impl Handler<RelaySignal> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: RelaySignal, _: &mut Context<Self>) {
        let command = match &msg.signal {
            Signal::Offer(sdp) => CallCommand::Offer { sdp: sdp.clone() },
            Signal::Answer(sdp) => CallCommand::Answer { sdp: sdp.clone() },
            Signal::Candidate(candidate) => CallCommand::Candidate { candidate: candidate.clone() },
        };
        if self.forward(&msg.company, &msg.call_id, &msg.from, &msg.reply_to, command) {
            return;
        }
        let other = self
            .calls
            .in_phase(&msg.call_id, Phase::Talking)
            .filter(|c| c.company == msg.company)
            .and_then(|c| c.other_party(&msg.from.id));
        let Some(other) = other else {
            let text = "that call is not in progress with you";
            return self.answer_error(&msg.company, &msg.reply_to, ErrorCode::NotInCall, text);
        };
        let (call_id, from) = (&msg.call_id, &msg.from);
        let frame = encode(&match &msg.signal {
            Signal::Offer(sdp) => ServerMessage::WebrtcOffer { call_id, sdp, from },
            Signal::Answer(sdp) => ServerMessage::WebrtcAnswer { call_id, sdp, from },
            Signal::Candidate(candidate) => {
                ServerMessage::IceCandidate { call_id, candidate, from }
            }
        });
        self.to_user(&msg.company, &other.id, frame);
    }
}

/// Whether a user is a party of a live browser call (customers may join its room).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsParty {
    pub company: CompanyId,
    pub call_id: CallId,
    pub user_id: UserId,
}

impl Handler<IsParty> for CallHub {
    type Result = bool;

    fn handle(&mut self, msg: IsParty, _: &mut Context<Self>) -> bool {
        self.calls
            .get(&msg.call_id)
            .is_some_and(|c| c.company == msg.company && c.is_party(&msg.user_id))
            || self.is_remote_party(&msg.company, &msg.call_id, &msg.user_id)
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
            PresenceEvent::AvailableAgents { company, count } => {
                self.agents_available.insert(company.clone(), count);
                self.tell_positions(&self.calls.queue(&company));
            }
            PresenceEvent::ConnectionClosed { .. } => {}
        }
    }
}
