//! Agent status: what an agent chose (`agent_status`, stored by the session before it asks
//! here) and what the company sees, which is `busy` while the agent is a party of a browser call
//! in progress (told by the `CallHub`), whatever they chose; when the call ends their choice
//! shows again. The agents shown `available` are kept as a set per company: they are the ones
//! offered calls, and their number is §6's `agents_available`, announced to the subscribed hubs
//! whenever it changes.

use std::collections::HashSet;

use actix::prelude::*;

use super::{PresenceEvent, PresenceHub, announce};
use crate::cluster::{Audience, Body};
use crate::hubs::connection::{ReplyTo, fan_out};
use crate::ids::{CompanyId, UserId};
use crate::protocol::{AgentStatus, Frame, ServerMessage, encode};

/// What the company sees of an agent who chose `chosen`.
pub(super) fn shown_status(
    in_call: &HashSet<(CompanyId, UserId)>,
    company: &CompanyId,
    user_id: &UserId,
    chosen: Option<AgentStatus>,
) -> Option<AgentStatus> {
    let busy = chosen.is_some() && in_call.contains(&(company.clone(), user_id.clone()));
    if busy { Some(AgentStatus::Busy) } else { chosen }
}

impl PresenceHub {
    /// The status the company sees of an online agent (here, or on another node).
    pub(super) fn shown(&self, company: &CompanyId, user_id: &UserId) -> Option<AgentStatus> {
        let chosen = match self.companies.get(company).and_then(|d| d.users.get(user_id)) {
            Some(entry) => entry.chosen,
            None => self.remote.get(company, user_id)?.chosen(),
        };
        shown_status(&self.in_call, company, user_id, chosen)
    }

    /// Puts the agent in or out of the company's available set after anything that can change
    /// it (connect, last disconnect, a choice, a call); announces a new count. Answers whether
    /// the agent just became available.
    pub(super) fn refresh_availability(&mut self, company: &CompanyId, user_id: &UserId) -> bool {
        let available = self.shown(company, user_id) == Some(AgentStatus::Available);
        let set = self.available.entry(company.clone()).or_default();
        let changed = if available { set.insert(user_id.clone()) } else { set.remove(user_id) };
        let count = set.len();
        if count == 0 {
            self.available.remove(company);
        }
        if changed {
            announce(
                &self.subscribers,
                PresenceEvent::AvailableAgents { company: company.clone(), count },
            );
        }
        changed && available
    }

    /// Tells the company's agents what they now see of `user_id` (`reply_to` hears it with its
    /// `ref` instead of plainly), and the other hubs when the agent became available.
    pub(super) fn status_shown(
        &mut self,
        company: &CompanyId,
        user_id: &UserId,
        reply_to: Option<ReplyTo>,
    ) {
        let Some(status) = self.shown(company, user_id) else { return };
        if self.refresh_availability(company, user_id) {
            let event = PresenceEvent::AgentAvailable {
                company: company.clone(),
                user_id: user_id.clone(),
            };
            announce(&self.subscribers, event);
        }
        let Some(directory) = self.companies.get(company) else { return };
        let changed = ServerMessage::AgentStatusChanged { user_id, status };
        let skip = reply_to.as_ref().map(|r| r.conn.id);
        let mut slow = Vec::new();
        let others = directory.staff.iter().filter(|(c, _)| Some(**c) != skip);
        fan_out(others.map(|(_, (u, h))| (u, h)), &encode(&changed), &mut slow);
        if let Some(reply_to) = reply_to {
            reply_to.reply(&changed, &mut slow);
        }
        self.evict(company, slow);
    }
}

/// An agent or admin chose a status, already stored by their session; the company's agents hear
/// `agent_status_changed` with what they now see (the requesting connection with its `ref`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetAgentStatus {
    pub company: CompanyId,
    pub status: AgentStatus,
    pub reply_to: ReplyTo,
}

impl Handler<SetAgentStatus> for PresenceHub {
    type Result = ();

    fn handle(&mut self, msg: SetAgentStatus, _: &mut Context<Self>) {
        let user_id = msg.reply_to.user_id.clone();
        let entry = self.companies.get_mut(&msg.company).and_then(|d| d.users.get_mut(&user_id));
        let Some(entry) = entry.filter(|e| e.connections.contains(msg.reply_to.conn.id)) else {
            return;
        };
        entry.chosen = Some(msg.status);
        let (user, conns) = (entry.user.clone(), entry.connections.len());
        self.publish_presence(&msg.company, user, Some(msg.status), conns);
        self.status_shown(&msg.company, &user_id, Some(msg.reply_to));
    }
}

/// The `CallHub` tells that an agent became, or stopped being, a party of a browser call in
/// progress.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetInCall {
    pub company: CompanyId,
    pub user_id: UserId,
    pub in_call: bool,
}

impl Handler<SetInCall> for PresenceHub {
    type Result = ();

    fn handle(&mut self, msg: SetInCall, _: &mut Context<Self>) {
        if let Some(bus) = &self.bus {
            let (company, user_id) = (msg.company.clone(), msg.user_id.clone());
            bus.send(Body::InCall { company, user_id, in_call: msg.in_call });
        }
        self.set_in_call(msg.company, msg.user_id, msg.in_call);
    }
}

impl PresenceHub {
    /// Shows an agent `busy` while in a call (told here, or by the node of the call).
    pub(super) fn set_in_call(&mut self, company: CompanyId, user_id: UserId, in_call: bool) {
        let before = self.shown(&company, &user_id);
        let key = (company.clone(), user_id.clone());
        if in_call {
            self.in_call.insert(key);
        } else {
            self.in_call.remove(&key);
        }
        if self.shown(&company, &user_id) != before {
            self.status_shown(&company, &user_id, None);
        }
    }
}

/// Delivers a frame to the connections of the company's agents shown `available`, leaving out
/// `except` (agents who declined the call); answers how many connections it reached.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct DeliverToAvailableAgents {
    pub company: CompanyId,
    pub except: Vec<UserId>,
    pub frame: Frame,
}

impl Handler<DeliverToAvailableAgents> for PresenceHub {
    type Result = usize;

    fn handle(&mut self, msg: DeliverToAvailableAgents, _: &mut Context<Self>) -> usize {
        self.deliver(&msg.company, Audience::AvailableAgents { except: msg.except }, msg.frame)
    }
}
