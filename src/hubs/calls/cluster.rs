//! The CallHub in a cluster. A browser call lives on the node where the customer asked for it:
//! that node's CallHub decides everything about it, so "the first accept wins" stays one
//! actor's decision, and the database's forward-only update backs it up as on one node. The
//! other nodes know where each call lives ([`Body::CallOpened`], [`Body::CallParty`]) and pass
//! a party's `call_accept`, `call_decline`, `call_end` and signaling there
//! ([`Body::CallCommand`]); the answer comes back to the asking connection through a
//! [`RemoteConnection`]. Status pushes cross as [`Body::CallChanged`], and each node drops one
//! older than what it already showed, so no screen goes backwards.
//!
//! When a call's node dies, the node that claimed it ends the calls it held after the grace
//! (`connection-lost`): their parties on the other nodes hear `call_ended`.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use serde_json::{Value, json};

use super::{AcceptCall, BROWSER_PROVIDER, CallHub, DeclineCall, EndCall, RelaySignal, Signal};
use crate::calls::{CallEvent, CallStatus, CallTarget, CompanyChoice};
use crate::cluster::{Audience, Body, Bus, CallCommand, Incoming};
use crate::hubs::connection::{ConnectionHandle, ReplyTo, ToConnection};
use crate::hubs::presence::{DeliverHere, DeliverToStaff};
use crate::ids::{CallId, CompanyId, ConnId, UserId};
use crate::net::SocketHandle;
use crate::protocol::{ServerMessage, encode};
use crate::user::UserRef;

/// A browser call living on another node.
pub(super) struct RemoteCall {
    node: Arc<str>,
    company: CompanyId,
    customer: UserId,
    agent: Option<UserId>,
}

impl RemoteCall {
    pub fn is_party(&self, company: &CompanyId, user_id: &UserId) -> bool {
        self.company == *company
            && (self.customer == *user_id || self.agent.as_ref() == Some(user_id))
    }
}

impl CallHub {
    /// Tells the other nodes, in a cluster.
    pub(super) fn tell_nodes(&self, body: Body) {
        if let Some(bus) = &self.bus {
            bus.send(body);
        }
    }

    /// A request about a call that lives on another node goes there; answers whether it went.
    pub(super) fn forward(
        &self,
        company: &CompanyId,
        call_id: &CallId,
        user: &UserRef,
        reply_to: &ReplyTo,
        command: CallCommand,
    ) -> bool {
        let (Some(bus), Some(call)) = (&self.bus, self.remote_calls.get(call_id)) else {
            return false;
        };
        if self.calls.get(call_id).is_some() || call.company != *company {
            return false;
        }
        bus.send(Body::CallCommand {
            company: company.clone(),
            call_id: call_id.clone(),
            user: user.clone(),
            conn: reply_to.conn.id,
            reference: reply_to.reference.clone(),
            command,
        });
        true
    }

    /// Whether `user_id` is a party of a call living on another node.
    pub(super) fn is_remote_party(
        &self,
        company: &CompanyId,
        call_id: &CallId,
        user_id: &UserId,
    ) -> bool {
        self.remote_calls.get(call_id).is_some_and(|c| c.is_party(company, user_id))
    }

    /// A party on another node asks about a call that lives here: handled as if asked here.
    fn command(
        &mut self,
        ctx: &mut Context<Self>,
        (company, call_id, user): (CompanyId, CallId, UserRef),
        reply_to: ReplyTo,
        command: CallCommand,
    ) {
        if self.calls.get(&call_id).is_none() {
            return;
        }
        let signal = match command {
            CallCommand::Offer { sdp } => Signal::Offer(sdp),
            CallCommand::Answer { sdp } => Signal::Answer(sdp),
            CallCommand::Candidate { candidate } => Signal::Candidate(candidate),
            CallCommand::Accept => {
                let accept = AcceptCall { company, agent: user, call_id, reply_to };
                return <Self as Handler<AcceptCall>>::handle(self, accept, ctx);
            }
            CallCommand::Decline => {
                let decline = DeclineCall { company, agent: user, call_id, reply_to };
                return <Self as Handler<DeclineCall>>::handle(self, decline, ctx);
            }
            CallCommand::End { reason } => {
                let end = EndCall { company, user, call_id, reason, reply_to };
                return <Self as Handler<EndCall>>::handle(self, end, ctx);
            }
        };
        let relay = RelaySignal { company, from: user, call_id, signal, reply_to };
        <Self as Handler<RelaySignal>>::handle(self, relay, ctx);
    }

    /// A status change another node stored: shown here unless a later one already was.
    fn changed_elsewhere(
        &mut self,
        company: CompanyId,
        call_id: CallId,
        rank: i32,
        owner_id: Option<UserId>,
        frame: crate::protocol::Frame,
    ) {
        if self.sent.get(&call_id).is_some_and(|(sent, _)| *sent >= rank) {
            return;
        }
        self.sent.insert(call_id, (rank, Instant::now()));
        let audience = Audience::StaffAndUser { user_id: owner_id };
        self.presence.do_send(DeliverHere { company, audience, frame });
    }

    /// `node` is gone. Its calls are forgotten here; the node that claimed it (`claimed`) ends
    /// them once the grace has passed, for their parties on the surviving nodes.
    fn calls_orphaned(&mut self, ctx: &mut Context<Self>, node: &str, claimed: bool) {
        let orphans: Vec<(CallId, RemoteCall)> = {
            let ids: Vec<CallId> = self
                .remote_calls
                .iter()
                .filter(|(_, c)| &*c.node == node)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| self.remote_calls.remove(&id).map(|c| (id, c)))
                .collect()
        };
        if !claimed {
            return;
        }
        for (call_id, call) in orphans {
            ctx.run_later(self.settings.grace(), move |hub, ctx| {
                hub.end_orphan(ctx, call_id, call)
            });
        }
    }

    /// Ends a call whose node died: both parties hear `call_ended`, the agent is free again,
    /// and `ended` (`connection-lost`) is stored (the forward-only update refuses it if the
    /// call had ended already).
    fn end_orphan(&mut self, ctx: &mut Context<Self>, call_id: CallId, call: RemoteCall) {
        let frame = encode(&ServerMessage::CallEnded {
            call_id: &call_id,
            reason: "connection-lost",
            by: None,
        });
        self.to_user(&call.company, &call.customer, frame.clone());
        match &call.agent {
            Some(agent) => {
                self.to_user(&call.company, agent, frame);
                self.set_in_call(&call.company, agent, false);
            }
            None => {
                let company = call.company.clone();
                self.presence.do_send(DeliverToStaff { company, except_user: None, frame });
            }
        }
        let target = CallTarget::Keys(vec![(BROWSER_PROVIDER.to_owned(), call_id.to_string())]);
        let event = CallEvent {
            ended_reason: Some("connection-lost".to_owned()),
            owner_id: call.agent.clone(),
            payload: json!({"status": "ended", "reason": "connection-lost"}),
            data: Value::Null,
            ..CallEvent::new(
                CompanyChoice::Known(call.company),
                target,
                BROWSER_PROVIDER,
                CallStatus::Ended,
            )
        };
        let (pool, hub) = (self.pool.clone(), ctx.address());
        actix_rt::spawn(async move {
            if let Err(e) = super::record_as(&pool, &hub, event, call_id).await {
                log::warn!("ending a dead node's browser call failed: {e}");
            }
        });
    }
}

impl Handler<Incoming> for CallHub {
    type Result = ();

    fn handle(&mut self, msg: Incoming, ctx: &mut Context<Self>) {
        match msg.body {
            Body::CallOpened { company, call_id, customer } => {
                let call = RemoteCall { node: msg.from, company, customer, agent: None };
                self.remote_calls.insert(call_id, call);
            }
            Body::CallParty { call_id, agent: Some(agent) } => {
                if let Some(call) = self.remote_calls.get_mut(&call_id) {
                    call.agent = Some(agent);
                }
            }
            Body::CallParty { call_id, agent: None } => {
                self.remote_calls.remove(&call_id);
            }
            Body::CallCommand { company, call_id, user, conn, reference, command } => {
                let Some(bus) = self.bus.clone() else { return };
                let reply_to = RemoteConnection::reply_to(bus, &company, &user.id, conn, reference);
                self.command(ctx, (company, call_id, user), reply_to, command);
            }
            Body::CallChanged { company, call_id, rank, owner_id } => {
                if let Some(frame) = msg.frame {
                    self.changed_elsewhere(company, call_id, rank, owner_id, frame);
                }
            }
            Body::NodeGone { node } => {
                let claimed = self.bus.as_ref().is_some_and(|b| *b.node() == msg.from);
                self.calls_orphaned(ctx, &node, claimed);
            }
            _ => {}
        }
    }
}

/// A connection on another node, as a hub here answers it: what it is sent crosses the bus to
/// that connection only. Lives as long as a hub holds its handle.
pub(super) struct RemoteConnection {
    bus: Bus,
    company: CompanyId,
    user_id: UserId,
    conn: ConnId,
}

impl RemoteConnection {
    fn reply_to(
        bus: Bus,
        company: &CompanyId,
        user_id: &UserId,
        conn: ConnId,
        reference: Option<Value>,
    ) -> ReplyTo {
        let remote = Self { bus, company: company.clone(), user_id: user_id.clone(), conn }.start();
        let (socket, _) = SocketHandle::new(None, std::time::Duration::ZERO);
        let handle = ConnectionHandle::new(conn, remote.recipient(), socket);
        ReplyTo { user_id: user_id.clone(), conn: handle, reference }
    }
}

impl Actor for RemoteConnection {
    type Context = Context<Self>;
}

impl Handler<ToConnection> for RemoteConnection {
    type Result = ();

    /// A frame goes over the bus; closing is the other node's business (it evicts its own
    /// slow consumers).
    fn handle(&mut self, msg: ToConnection, _: &mut Context<Self>) {
        if let ToConnection::Deliver(frame) = msg {
            let audience = Audience::Connection { user_id: self.user_id.clone(), conn: self.conn };
            self.bus.deliver(&self.company, audience, &frame);
        }
    }
}
