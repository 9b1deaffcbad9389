//! Browser calls: the messages a session sends about a call placed from the landing page,
//! and the transitions they cause (see [`Phase`] in the parent module).

use actix::prelude::*;
use serde_json::Value;

use super::{BrowserCall, CallHub, Phase, RecordError};
use crate::calls::CallStatus;
use crate::db::calls::StoredEvent;
use crate::error::ErrorCode;
use crate::hubs::connection::ReplyTo;
use crate::hubs::presence::{DeliverToAvailableAgents, DeliverToStaff};
use crate::ids::{CallId, CompanyId, UserId};
use crate::protocol::{ServerMessage, encode};
use crate::user::UserRef;

impl CallHub {
    /// Queues a new call for a customer; it waits in `Creating` until `queued` is stored.
    fn enqueue(&mut self, company: CompanyId, customer: UserRef, note: Option<String>) -> CallId {
        let call_id = CallId::random();
        self.open.insert((company.clone(), customer.id.clone()), call_id.clone());
        self.queues.entry(company.clone()).or_default().push(call_id.clone());
        let call = BrowserCall {
            company,
            customer,
            agent: None,
            note,
            phase: Phase::Creating,
            offered: false,
        };
        self.live.insert(call_id.clone(), call);
        call_id
    }

    /// `queued` is stored (or not): answer the customer, start the queue timeout, offer it.
    fn queued(
        &mut self,
        ctx: &mut Context<Self>,
        call_id: CallId,
        reply_to: ReplyTo,
        result: Result<StoredEvent, RecordError>,
    ) {
        let Some(call) = self.live.get_mut(&call_id) else { return };
        let company = call.company.clone();
        if let Err(e) = result {
            log::error!("storing a browser call failed: {e}");
            self.forget(&call_id);
            let text = "storage is unavailable, try again";
            return self.answer_error(&company, &reply_to, ErrorCode::StorageUnavailable, text);
        }
        call.phase = Phase::Waiting;
        let position = self.position(&company, &call_id);
        self.answer(
            &company,
            &reply_to,
            &ServerMessage::CallQueued { call_id: &call_id, position },
        );
        let id = call_id.clone();
        ctx.run_later(self.settings.queue_timeout, move |hub, ctx| {
            if hub.live.get(&id).is_some_and(|c| c.phase == Phase::Waiting) {
                hub.finish(ctx, &id, "no-answer", None);
            }
        });
        self.offer(ctx, &call_id);
    }

    /// Offers a waiting call to the company's available agents.
    fn offer(&mut self, ctx: &mut Context<Self>, call_id: &CallId) {
        let Some(call) = self.live.get(call_id).filter(|c| c.phase == Phase::Waiting) else {
            return;
        };
        let frame = encode(&ServerMessage::IncomingCall {
            call_id,
            customer: &call.customer,
            note: call.note.as_deref(),
        });
        let id = call_id.clone();
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

    /// Offers every call still waiting to an agent who just became available.
    pub(super) fn offer_waiting_to(
        &mut self,
        ctx: &mut Context<Self>,
        company: &CompanyId,
        agent: &UserId,
    ) {
        let waiting: Vec<CallId> = self.queues.get(company).cloned().unwrap_or_default();
        for call_id in waiting {
            let Some(call) = self.live.get(&call_id).filter(|c| c.phase == Phase::Waiting) else {
                continue;
            };
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
        let Some(call) = self.live.get_mut(call_id).filter(|c| !c.offered) else { return };
        call.offered = true;
        self.store(ctx, call_id, CallStatus::Ringing, None, |_, _, result| {
            if let Err(e) = result {
                log::warn!("storing a ringing browser call failed: {e}");
            }
        });
    }

    /// The accepting agent's `in-progress` is stored (or not): connect the parties.
    fn accepted(
        &mut self,
        company: CompanyId,
        call_id: CallId,
        reply_to: ReplyTo,
        result: Result<StoredEvent, RecordError>,
    ) {
        let Some(call) = self.live.get_mut(&call_id).filter(|c| c.phase == Phase::Accepting) else {
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
            call.agent = None;
            self.queues.entry(company.clone()).or_default().insert(0, call_id);
            let text = "storage is unavailable, try again";
            return self.answer_error(&company, &reply_to, ErrorCode::StorageUnavailable, text);
        }
        call.phase = Phase::Talking;
        let (Some(agent), customer) = (call.agent.clone(), call.customer.id.clone()) else {
            return;
        };
        let accepted = ServerMessage::CallAccepted { call_id: &call_id, agent: &agent };
        self.to_user(&company, &customer, encode(&accepted));
        self.answer(&company, &reply_to, &accepted);
        let taken = encode(&ServerMessage::CallTaken { call_id: &call_id, by: &agent });
        let except_user = Some(agent.id.clone());
        self.presence.do_send(DeliverToStaff { company, except_user, frame: taken });
    }

    /// Ends a call: both parties (and, for a call nobody took, the agents it was offered to)
    /// hear `call_ended` at once; the `ended` status is stored and pushed as usual.
    pub(super) fn finish(
        &mut self,
        ctx: &mut Context<Self>,
        call_id: &CallId,
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
        self.forget(call_id);
    }
}

/// A customer asks to talk (`call_request`): answers `call_queued` or `queue_full`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RequestCall {
    pub company: CompanyId,
    pub customer: UserRef,
    pub note: Option<String>,
    pub reply_to: ReplyTo,
}

impl Handler<RequestCall> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: RequestCall, ctx: &mut Context<Self>) {
        let company = msg.company;
        if let Some(call_id) = self.open.get(&(company.clone(), msg.customer.id.clone())) {
            // One open call per customer: asking again answers the same call while it waits.
            if !self.live.get(call_id).is_some_and(|c| c.phase == Phase::Waiting) {
                let text = "you already have an open call";
                return self.answer_error(&company, &msg.reply_to, ErrorCode::InvalidMessage, text);
            }
            let position = self.position(&company, call_id);
            let queued = ServerMessage::CallQueued { call_id, position };
            return self.answer(&company, &msg.reply_to, &queued);
        }
        if self.queues.get(&company).map_or(0, Vec::len) >= self.settings.max_queued_per_company {
            let text = "all agents are busy and the queue is full, try again later";
            return self.answer_error(&company, &msg.reply_to, ErrorCode::QueueFull, text);
        }
        let call_id = self.enqueue(company, msg.customer, msg.note);
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
        let company = msg.company;
        let Some(call) = self.live.get_mut(&msg.call_id).filter(|c| c.company == company) else {
            let text = "no such call waiting";
            return self.answer_error(&company, &msg.reply_to, ErrorCode::NotFound, text);
        };
        if call.phase != Phase::Waiting {
            let text = "another agent took this call";
            return self.answer_error(&company, &msg.reply_to, ErrorCode::CallAlreadyTaken, text);
        }
        // Decided here: from now on every other accept is late.
        call.phase = Phase::Accepting;
        call.agent = Some(msg.agent);
        self.dequeue(&company, &msg.call_id);
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
        let is_party = self
            .live
            .get(&msg.call_id)
            .is_some_and(|c| c.company == msg.company && c.is_party(&msg.user.id));
        if !is_party {
            let text = "you are not a party of that call";
            return self.answer_error(&msg.company, &msg.reply_to, ErrorCode::NotInCall, text);
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
    pub call_id: CallId,
    pub signal: Signal,
    pub reply_to: ReplyTo,
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
        self.live
            .get(&msg.call_id)
            .is_some_and(|c| c.company == msg.company && c.is_party(&msg.user_id))
    }
}
