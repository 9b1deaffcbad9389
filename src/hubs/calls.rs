//! `CallHub`: pushes stored call-status changes to the screens that should see them.
//!
//! Webhook and REST handlers store a change first (`db::calls::store_event`) and only then send
//! [`CallChanged`] here with the frame already encoded. Two handlers on two worker threads can
//! tell the hub in either order, so the hub remembers the rank it last sent for each call and
//! drops any notice that is not newer: a screen sees a call's statuses strictly forward, never
//! backwards. Delivery goes through the PresenceHub: the owner's connections and the company's
//! agents, each connection once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::presence::{DeliverToStaffAndUser, PresenceHub};
use crate::calls::TERMINAL_RANK;
use crate::ids::{CompanyId, UserId};
use crate::protocol::Frame;

/// How long the rank of an ended call is remembered, to drop its late notices.
const REMEMBER_ENDED: Duration = Duration::from_secs(600);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The call-status fan-out actor. See the module docs.
pub struct CallHub {
    presence: Addr<PresenceHub>,
    /// Per call: the rank last sent, and when.
    sent: HashMap<String, (i32, Instant)>,
}

impl CallHub {
    pub fn new(presence: Addr<PresenceHub>) -> Self {
        Self { presence, sent: HashMap::new() }
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
