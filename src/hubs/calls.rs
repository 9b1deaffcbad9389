//! `CallHub`: live calls. It owns two things.
//!
//! **The push of stored status changes.** Webhook and REST handlers (and this hub itself) store
//! a change first (`calls::record`) and only then send [`CallChanged`] with the frame encoded
//! once. Two handlers on two worker threads can tell the hub in either order, so it remembers
//! the rank it last sent for each call and drops any notice that is not newer: a screen sees a
//! call's statuses strictly forward. Delivery goes through the PresenceHub to the owner's
//! connections and the company's agents, each connection once.
//!
//! **Browser calls from the landing page.** A customer's `call_request` queues a call and offers
//! it to the company's available agents; the first `call_accept` wins. The hub handles one
//! message at a time, so "first" is decided here, atomically, even for two accepts in the same
//! millisecond; the database's forward-only update backs it up. Then the hub relays WebRTC
//! signaling between the two parties only, in order, and ends the call on `call_end`, when
//! nobody accepts in time (`no-answer`), or when a party stays offline past the grace period
//! (`connection-lost`). Every transition is stored through the same path as telephony calls.
//! Frames for a party go to all of that user's connections (through the PresenceHub), so a
//! party that reconnects keeps receiving; answers to a request go to the requesting connection.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::{Value, json};

use super::presence::{
    DeliverToAvailableAgents, DeliverToStaff, DeliverToStaffAndUser, DeliverToUser,
    EvictSlowConsumer, IsOnline, PresenceHub,
};
use super::{ConnectionHandle, Delivery, PresenceEvent};
use crate::calls::{self, CallEvent, CallStatus, CallTarget, CompanyChoice, TERMINAL_RANK};
use crate::db::DbPool;
use crate::error::ErrorCode;
use crate::ids::{CompanyId, UserId};
use crate::protocol::{Frame, ServerMessage, UserRef, encode, encode_reply, error_frame};

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
    /// Per call: the rank last pushed, and when.
    sent: HashMap<String, (i32, Instant)>,
    /// Browser calls that have not ended, by id.
    live: HashMap<String, BrowserCall>,
    /// Per company, the ids of browser calls waiting for an agent, oldest first.
    queues: HashMap<CompanyId, Vec<String>>,
    /// Each customer's one open call.
    open: HashMap<(CompanyId, UserId), String>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The `queued` status is being stored.
    Creating,
    /// Queued, offered to available agents.
    Waiting,
    /// An agent won; the `in-progress` status is being stored.
    Accepting,
    /// Both parties are connected through us.
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
    fn reply(
        &self,
        company: &CompanyId,
        user_id: &UserId,
        requester: &ConnectionHandle,
        frame: &Frame,
    ) {
        if requester.deliver(frame) == Delivery::Slow {
            let (company, user_id, conn) = (company.clone(), user_id.clone(), requester.id);
            self.presence.do_send(EvictSlowConsumer { company, user_id, conn });
        }
    }

    fn reply_error(
        &self,
        company: &CompanyId,
        user_id: &UserId,
        requester: &ConnectionHandle,
        code: ErrorCode,
        text: &str,
        reference: Option<&Value>,
    ) {
        self.reply(company, user_id, requester, &error_frame(code, text, reference));
    }

    fn to_user(&self, company: &CompanyId, user_id: &UserId, frame: Frame) {
        self.presence.do_send(DeliverToUser {
            company: company.clone(),
            user_id: user_id.clone(),
            frame,
        });
    }

    fn position(&self, company: &CompanyId, call_id: &str) -> usize {
        self.queues
            .get(company)
            .and_then(|q| q.iter().position(|id| id == call_id))
            .map_or(0, |i| i + 1)
    }

    /// Stores a browser call's status through the common path; `then` sees the outcome here.
    fn store<F>(
        &self,
        ctx: &mut Context<Self>,
        call_id: &str,
        status: CallStatus,
        reason: Option<&str>,
        then: F,
    ) where
        F: FnOnce(&mut Self, &mut Context<Self>, Result<calls::StoredEvent, calls::RecordError>)
            + 'static,
    {
        let Some(call) = self.live.get(call_id) else { return };
        let mut parties = vec![call.customer.id.to_string()];
        parties.extend(call.agent.as_ref().map(|a| a.id.to_string()));
        let company = CompanyChoice::Known(call.company.clone());
        let target = CallTarget::Keys(vec![(BROWSER.to_owned(), call_id.to_owned())]);
        let event = CallEvent {
            ended_reason: reason.map(str::to_owned),
            owner_id: call.agent.as_ref().map(|a| a.id.to_string()),
            direction: Some("inbound".to_owned()),
            from: Some(call.customer.name.to_string()),
            provider_call_id: Some(call_id.to_owned()),
            parties,
            payload: json!({"status": status.as_str(), "reason": reason, "note": call.note}),
            data: json!({"customer": call.customer, "note": call.note}),
            ..CallEvent::new(company, target, BROWSER, status)
        };
        let (pool, hub, id) = (self.pool.clone(), ctx.address(), call_id.to_owned());
        async move { calls::record_as(&pool, &hub, event, id).await }
            .into_actor(self)
            .map(move |result, hub, ctx| then(hub, ctx, result))
            .spawn(ctx);
    }

    /// Offers a waiting call to the company's available agents.
    fn offer(&mut self, ctx: &mut Context<Self>, call_id: &str) {
        let Some(call) = self.live.get(call_id).filter(|c| c.phase == Phase::Waiting) else {
            return;
        };
        let frame = encode(&ServerMessage::IncomingCall {
            call_id,
            customer: &call.customer,
            note: call.note.as_deref(),
        });
        let id = call_id.to_owned();
        self.presence
            .send(DeliverToAvailableAgents { company: call.company.clone(), frame })
            .into_actor(self)
            .map(move |delivered, hub, ctx| {
                if delivered.unwrap_or(0) > 0 {
                    hub.mark_offered(ctx, &id);
                }
            })
            .spawn(ctx);
    }

    /// The first time a call reaches an agent's screen it is `ringing`.
    fn mark_offered(&mut self, ctx: &mut Context<Self>, call_id: &str) {
        let Some(call) = self.live.get_mut(call_id).filter(|c| !c.offered) else { return };
        call.offered = true;
        self.store(ctx, call_id, CallStatus::Ringing, None, |_, _, result| {
            if let Err(e) = result {
                log::warn!("storing a ringing browser call failed: {e}");
            }
        });
    }

    /// Ends a call: both parties (and, for a call nobody took, the agents it was offered to)
    /// hear `call_ended` at once; the `ended` status is stored and pushed as usual.
    fn finish(
        &mut self,
        ctx: &mut Context<Self>,
        call_id: &str,
        reason: &str,
        by: Option<&UserRef>,
    ) {
        let Some(call) = self.live.get(call_id) else { return };
        let frame = encode(&ServerMessage::CallEnded { call_id, reason, by });
        self.to_user(&call.company, &call.customer.id, frame.clone());
        match (&call.agent, call.phase) {
            (Some(agent), Phase::Talking) => self.to_user(&call.company, &agent.id, frame),
            _ => self.presence.do_send(DeliverToStaff {
                company: call.company.clone(),
                except_user: None,
                frame,
            }),
        }
        self.store(ctx, call_id, CallStatus::Ended, Some(reason), |_, _, result| {
            if let Err(e) = result {
                log::warn!("storing an ended browser call failed: {e}");
            }
        });
        if let Some(call) = self.live.remove(call_id) {
            self.open.remove(&(call.company.clone(), call.customer.id.clone()));
            if let Some(queue) = self.queues.get_mut(&call.company) {
                queue.retain(|id| id != call_id);
            }
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

/// A stored, applied change of a call's status.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CallChanged {
    pub company: CompanyId,
    pub call_id: String,
    pub owner_id: Option<UserId>,
    /// The call's rank after the change; notices at or below the last sent rank are dropped.
    pub rank: i32,
    /// `call_status_changed`, encoded once.
    pub frame: Frame,
}

impl Handler<CallChanged> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: CallChanged, _: &mut Context<Self>) {
        if self.sent.get(&msg.call_id).is_some_and(|(rank, _)| *rank >= msg.rank) {
            return;
        }
        self.sent.insert(msg.call_id, (msg.rank, Instant::now()));
        self.presence.do_send(DeliverToStaffAndUser {
            company: msg.company,
            user_id: msg.owner_id,
            frame: msg.frame,
        });
    }
}

/// A customer asks to talk (`call_request`): answers `call_queued` or `queue_full`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RequestCall {
    pub company: CompanyId,
    pub customer: UserRef,
    pub requester: ConnectionHandle,
    pub note: Option<String>,
    pub reference: Option<Value>,
}

impl Handler<RequestCall> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: RequestCall, ctx: &mut Context<Self>) {
        let (company, user_id) = (msg.company.clone(), msg.customer.id.clone());
        if let Some(call_id) = self.open.get(&(company.clone(), user_id.clone())) {
            // One open call per customer: asking again answers the same call while it waits.
            let waiting = self.live.get(call_id).is_some_and(|c| c.phase == Phase::Waiting);
            let frame = if waiting {
                let queued = ServerMessage::CallQueued {
                    call_id,
                    position: self.position(&company, call_id),
                };
                encode_reply(&queued, msg.reference.as_ref())
            } else {
                error_frame(
                    ErrorCode::InvalidMessage,
                    "you already have an open call",
                    msg.reference.as_ref(),
                )
            };
            return self.reply(&company, &user_id, &msg.requester, &frame);
        }
        let waiting = self.queues.get(&company).map_or(0, Vec::len);
        if waiting >= self.settings.max_queued_per_company {
            let text = "all agents are busy and the queue is full, try again later";
            return self.reply_error(
                &company,
                &user_id,
                &msg.requester,
                ErrorCode::QueueFull,
                text,
                msg.reference.as_ref(),
            );
        }
        let call_id = uuid::Uuid::new_v4().simple().to_string();
        self.open.insert((company.clone(), user_id.clone()), call_id.clone());
        self.queues.entry(company.clone()).or_default().push(call_id.clone());
        let call = BrowserCall {
            company,
            customer: msg.customer,
            agent: None,
            note: msg.note,
            phase: Phase::Creating,
            offered: false,
        };
        self.live.insert(call_id.clone(), call);
        let (requester, reference) = (msg.requester, msg.reference);
        self.store(ctx, &call_id.clone(), CallStatus::Queued, None, move |hub, ctx, result| {
            let Some(call) = hub.live.get_mut(&call_id) else { return };
            let (company, user_id) = (call.company.clone(), call.customer.id.clone());
            if let Err(e) = result {
                log::error!("storing a browser call failed: {e}");
                hub.live.remove(&call_id);
                hub.open.remove(&(company.clone(), user_id.clone()));
                if let Some(queue) = hub.queues.get_mut(&company) {
                    queue.retain(|id| id != &call_id);
                }
                let text = "storage is unavailable, try again";
                return hub.reply_error(
                    &company,
                    &user_id,
                    &requester,
                    ErrorCode::StorageUnavailable,
                    text,
                    reference.as_ref(),
                );
            }
            call.phase = Phase::Waiting;
            let queued = ServerMessage::CallQueued {
                call_id: &call_id,
                position: hub.position(&company, &call_id),
            };
            hub.reply(&company, &user_id, &requester, &encode_reply(&queued, reference.as_ref()));
            let timeout = hub.settings.queue_timeout;
            let id = call_id.clone();
            ctx.run_later(timeout, move |hub, ctx| {
                if hub.live.get(&id).is_some_and(|c| c.phase == Phase::Waiting) {
                    hub.finish(ctx, &id, "no-answer", None);
                }
            });
            hub.offer(ctx, &call_id);
        });
    }
}

/// An agent takes a waiting call (`call_accept`); the first one wins.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AcceptCall {
    pub company: CompanyId,
    pub agent: UserRef,
    pub requester: ConnectionHandle,
    pub call_id: String,
    pub reference: Option<Value>,
}

impl Handler<AcceptCall> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: AcceptCall, ctx: &mut Context<Self>) {
        let (company, agent_id) = (msg.company.clone(), msg.agent.id.clone());
        let Some(call) = self.live.get_mut(&msg.call_id).filter(|c| c.company == company) else {
            let text = "no such call waiting";
            return self.reply_error(
                &company,
                &agent_id,
                &msg.requester,
                ErrorCode::NotFound,
                text,
                msg.reference.as_ref(),
            );
        };
        if call.phase != Phase::Waiting {
            let text = "another agent took this call";
            return self.reply_error(
                &company,
                &agent_id,
                &msg.requester,
                ErrorCode::CallAlreadyTaken,
                text,
                msg.reference.as_ref(),
            );
        }
        // Decided here: from now on every other accept is late.
        call.phase = Phase::Accepting;
        call.agent = Some(msg.agent);
        if let Some(queue) = self.queues.get_mut(&company) {
            queue.retain(|id| id != &msg.call_id);
        }
        let (call_id, requester, reference) = (msg.call_id, msg.requester, msg.reference);
        self.store(ctx, &call_id.clone(), CallStatus::InProgress, None, move |hub, _, result| {
            let Some(call) = hub.live.get_mut(&call_id).filter(|c| c.phase == Phase::Accepting)
            else {
                // The customer hung up while the accept was being stored.
                let text = "the call has ended";
                return hub.reply_error(
                    &company,
                    &agent_id,
                    &requester,
                    ErrorCode::NotFound,
                    text,
                    reference.as_ref(),
                );
            };
            if let Err(e) = result {
                log::error!("storing an accepted browser call failed: {e}");
                call.phase = Phase::Waiting;
                call.agent = None;
                hub.queues.entry(company.clone()).or_default().insert(0, call_id.clone());
                let text = "storage is unavailable, try again";
                return hub.reply_error(
                    &company,
                    &agent_id,
                    &requester,
                    ErrorCode::StorageUnavailable,
                    text,
                    reference.as_ref(),
                );
            }
            call.phase = Phase::Talking;
            let Some(agent) = call.agent.clone() else { return };
            let customer = call.customer.id.clone();
            let accepted = ServerMessage::CallAccepted { call_id: &call_id, agent: &agent };
            hub.to_user(&company, &customer, encode(&accepted));
            hub.reply(
                &company,
                &agent_id,
                &requester,
                &encode_reply(&accepted, reference.as_ref()),
            );
            let taken = encode(&ServerMessage::CallTaken { call_id: &call_id, by: &agent });
            hub.presence.do_send(DeliverToStaff {
                company,
                except_user: Some(agent_id),
                frame: taken,
            });
        });
    }
}

/// Either party ends the call (`call_end`); anyone else gets `not_in_call`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndCall {
    pub company: CompanyId,
    pub user: UserRef,
    pub requester: ConnectionHandle,
    pub call_id: String,
    pub reason: Option<String>,
    pub reference: Option<Value>,
}

impl Handler<EndCall> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: EndCall, ctx: &mut Context<Self>) {
        let is_party = self
            .live
            .get(&msg.call_id)
            .is_some_and(|c| c.company == msg.company && c.is_party(&msg.user.id));
        if !is_party {
            let text = "you are not a party of that call";
            return self.reply_error(
                &msg.company,
                &msg.user.id,
                &msg.requester,
                ErrorCode::NotInCall,
                text,
                msg.reference.as_ref(),
            );
        }
        self.finish(ctx, &msg.call_id, msg.reason.as_deref().unwrap_or("hangup"), Some(&msg.user));
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
    pub requester: ConnectionHandle,
    pub call_id: String,
    pub signal: Signal,
    pub reference: Option<Value>,
}

impl Handler<RelaySignal> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: RelaySignal, _: &mut Context<Self>) {
        let other = self
            .live
            .get(&msg.call_id)
            .filter(|c| c.company == msg.company && c.phase == Phase::Talking)
            .and_then(|c| c.other_party(&msg.from.id));
        let Some(other) = other else {
            let text = "that call is not in progress with you";
            return self.reply_error(
                &msg.company,
                &msg.from.id,
                &msg.requester,
                ErrorCode::NotInCall,
                text,
                msg.reference.as_ref(),
            );
        };
        let (call_id, from) = (msg.call_id.as_str(), &msg.from);
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
    pub call_id: String,
    pub user_id: UserId,
}

impl Handler<IsParty> for CallHub {
    type Result = bool;

    fn handle(&mut self, msg: IsParty, _: &mut Context<Self>) -> bool {
        self.live
            .get(&msg.call_id)
            .is_some_and(|c| c.company == msg.company && c.is_party(&msg.user_id))
    }
}

impl Handler<PresenceEvent> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: PresenceEvent, ctx: &mut Context<Self>) {
        match msg {
            PresenceEvent::AgentAvailable { company, user_id } => {
                // Offer every call still waiting to the agent who just became available.
                let waiting: Vec<String> = self.queues.get(&company).cloned().unwrap_or_default();
                for call_id in waiting {
                    let Some(call) = self.live.get(&call_id).filter(|c| c.phase == Phase::Waiting)
                    else {
                        continue;
                    };
                    let incoming = ServerMessage::IncomingCall {
                        call_id: &call_id,
                        customer: &call.customer,
                        note: call.note.as_deref(),
                    };
                    self.to_user(&company, &user_id, encode(&incoming));
                    self.mark_offered(ctx, &call_id);
                }
            }
            PresenceEvent::UserOffline { company, user_id } => {
                // A party's last connection is gone: end its calls unless it is back in time.
                let calls: Vec<String> = self
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
            PresenceEvent::ConnectionClosed { .. } => {}
        }
    }
}
