//! The PresenceHub in a cluster: what it tells the other nodes (each user's connections and
//! chosen status here, as [`Body::Presence`]) and what it does with what they tell: deliveries to
//! its own connections, the other nodes' users in [`RemoteUsers`](super::remote::RemoteUsers),
//! an agent's call, a dead node. Each node decides from its own view, for its own connections,
//! whether a user came or went, so every connection hears it once.

use std::collections::HashSet;
use std::sync::Arc;

use actix::prelude::*;

use super::{PresenceEvent, PresenceHub, announce};
use crate::cluster::{Body, Incoming, Resync};
use crate::ids::{CompanyId, UserId};
use crate::protocol::AgentStatus;
use crate::user::UserRef;

impl PresenceHub {
    /// Tells the other nodes what this node holds of a user (`conns` 0: nothing any more).
    pub(super) fn publish_presence(
        &self,
        company: &CompanyId,
        user: UserRef,
        chosen: Option<AgentStatus>,
        conns: usize,
    ) {
        if let Some(bus) = &self.bus {
            bus.presence(Body::Presence { company: company.clone(), user, chosen, conns });
        }
    }

    /// Every user of this node, for the bus to republish after (re)connecting.
    fn local_presence(&self) -> Vec<Body> {
        let entries =
            self.companies.iter().flat_map(|(c, d)| d.users.values().map(move |e| (c, e)));
        entries
            .map(|(company, e)| Body::Presence {
                company: company.clone(),
                user: e.user.clone(),
                chosen: e.chosen,
                conns: e.connections.len(),
            })
            .collect()
    }

    /// Another node holds `conns` connections of `user`, who chose `chosen`.
    fn apply_remote(
        &mut self,
        node: &Arc<str>,
        company: &CompanyId,
        user: UserRef,
        chosen: Option<AgentStatus>,
        conns: usize,
    ) {
        let (was_online, was_shown) =
            (self.is_online(company, &user.id), self.shown(company, &user.id));
        self.remote.apply(node, company, user.clone(), chosen, conns);
        let elsewhere = self.remote.get(company, &user.id).map_or(0, |r| r.connections());
        self.caps.set_elsewhere(company, &user.id, elsewhere);
        // A choice made on another node is this node's too (it offers calls by it). Not
        // published back: an echo could overtake a newer choice made on the first node.
        let here = self.companies.get_mut(company).and_then(|d| d.users.get_mut(&user.id));
        if let Some(entry) = here.filter(|_| chosen.is_some()) {
            entry.chosen = chosen;
        }
        self.remote_changed(company, &user, was_online, was_shown);
    }

    /// What the agents here hear after a change on another node: the user came, went, or is
    /// now shown another status.
    fn remote_changed(
        &mut self,
        company: &CompanyId,
        user: &UserRef,
        was_online: bool,
        was_shown: Option<AgentStatus>,
    ) {
        let (online, shown) = (self.is_online(company, &user.id), self.shown(company, &user.id));
        let slow = match (was_online, online) {
            (false, true) => self.announce_online(company, user, shown),
            (true, false) => self.announce_offline(company, user),
            (true, true) if shown != was_shown => {
                return self.status_shown(company, &user.id, None);
            }
            _ => return,
        };
        if user.role.is_staff() && self.refresh_availability(company, &user.id) {
            let event = PresenceEvent::AgentAvailable {
                company: company.clone(),
                user_id: user.id.clone(),
            };
            announce(&self.subscribers, event);
        }
        self.evict(company, slow);
    }

    /// A node is gone: its users who are on no other node go offline here.
    fn node_gone(&mut self, node: &str) {
        let before: Vec<(CompanyId, UserRef, Option<AgentStatus>)> = self
            .remote
            .all()
            .map(|(c, _, r)| (c.clone(), r.user.clone(), self.shown(c, &r.user.id)))
            .collect();
        self.remote.drop_node(node);
        for (company, user, was_shown) in before {
            let elsewhere = self.remote.get(&company, &user.id).map_or(0, |r| r.connections());
            self.caps.set_elsewhere(&company, &user.id, elsewhere);
            self.remote_changed(&company, &user, true, was_shown);
        }
    }
}

impl Handler<Incoming> for PresenceHub {
    type Result = ();

    fn handle(&mut self, msg: Incoming, _: &mut Context<Self>) {
        match msg.body {
            Body::Deliver { company, audience } => {
                if let Some(frame) = msg.frame {
                    self.deliver_here(&company, &audience, &frame);
                }
            }
            Body::Presence { company, user, chosen, conns } => {
                self.apply_remote(&msg.from, &company, user, chosen, conns)
            }
            Body::InCall { company, user_id, in_call } => {
                self.set_in_call(company, user_id, in_call)
            }
            Body::NodeGone { node } => self.node_gone(&node),
            _ => {}
        }
    }
}

impl Handler<Resync> for PresenceHub {
    type Result = ();

    /// The bus (re)connected: the other nodes' users are now what Redis holds (whoever went
    /// meanwhile goes here too), and this node's users are republished.
    fn handle(&mut self, msg: Resync, _: &mut Context<Self>) {
        let fresh: HashSet<(Arc<str>, CompanyId, UserId)> = msg
            .remote
            .iter()
            .filter_map(|(node, body)| match body {
                Body::Presence { company, user, .. } => {
                    Some((node.clone(), company.clone(), user.id.clone()))
                }
                _ => None,
            })
            .collect();
        for (node, company, user) in self.remote.entries() {
            if !fresh.contains(&(node.clone(), company.clone(), user.id.clone())) {
                self.apply_remote(&node, &company, user, None, 0);
            }
        }
        for (node, body) in msg.remote {
            if let Body::Presence { company, user, chosen, conns } = body {
                self.apply_remote(&node, &company, user, chosen, conns);
            }
        }
        if let Some(bus) = &self.bus {
            bus.snapshot(self.local_presence());
        }
    }
}
