//! The bookkeeping of browser calls: each live call with its [`Phase`], the per-company queue
//! of calls waiting for an agent, each customer's one open call, and the open calls per client
//! IP (at most [`MAX_OPEN_PER_IP`], so guests cannot fill a company's queue). Plain data, kept by the
//! `CallHub`, which decides the transitions.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::ids::{CallId, CompanyId, UserId};
use crate::user::UserRef;

/// Open browser calls one client IP (IPv6: one /64) may hold.
pub const MAX_OPEN_PER_IP: usize = 3;

/// One browser call that has not ended.
pub struct BrowserCall {
    pub company: CompanyId,
    /// Where the customer connected from (its /64 for IPv6), when known.
    pub client_ip: Option<IpAddr>,
    pub customer: UserRef,
    pub agent: Option<UserRef>,
    pub note: Option<String>,
    pub phase: Phase,
    /// Whether the call was offered to at least one agent (and so stored as `ringing`).
    pub offered: bool,
    /// Agents who declined it: it is not offered to them again.
    pub declined: Vec<UserId>,
}

/// Where a browser call is in its life. Each transition that changes the stored status first
/// waits for the store, in a phase of its own (`Creating`, `Accepting`), because the hub keeps
/// handling messages meanwhile: a second `call_accept` arriving while the first one's
/// `in-progress` is being stored must already be late, and a `call_end` arriving then must find
/// the call. Only the hub's own store callbacks move a call out of those two phases.
///
/// ```text
/// Creating ──stored──▶ Waiting ──first accept──▶ Accepting ──stored──▶ Talking
///    │                    ▲                          │
///    └─store failed: gone └────store failed──────────┘
/// ```
/// From any phase, `call_end`, `no-answer` or `connection-lost` ends the call (it is forgotten).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
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
    pub fn is_party(&self, user_id: &UserId) -> bool {
        &self.customer.id == user_id || self.agent.as_ref().is_some_and(|a| &a.id == user_id)
    }

    /// The other party of a call in progress.
    pub fn other_party(&self, user_id: &UserId) -> Option<&UserRef> {
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
    pub fn parties(&self) -> Vec<UserId> {
        let mut parties = vec![self.customer.id.clone()];
        parties.extend(self.agent.as_ref().map(|a| a.id.clone()));
        parties
    }
}

/// Every live browser call, indexed three ways.
#[derive(Default)]
pub struct BrowserCalls {
    /// By id.
    live: HashMap<CallId, BrowserCall>,
    /// Per company, the ids of calls waiting for an agent, oldest first.
    queues: HashMap<CompanyId, Vec<CallId>>,
    /// Each customer's one open call.
    open: HashMap<(CompanyId, UserId), CallId>,
    /// Open calls per client IP.
    per_ip: HashMap<IpAddr, usize>,
}

impl BrowserCalls {
    /// Adds a new call for a customer at the end of its company's queue, in `Creating`.
    pub fn enqueue(
        &mut self,
        company: CompanyId,
        customer: UserRef,
        note: Option<String>,
        client_ip: Option<IpAddr>,
    ) -> CallId {
        let call_id = CallId::random();
        self.open.insert((company.clone(), customer.id.clone()), call_id.clone());
        self.queues.entry(company.clone()).or_default().push(call_id.clone());
        if let Some(ip) = client_ip {
            *self.per_ip.entry(ip).or_default() += 1;
        }
        let phase = Phase::Creating;
        let (agent, offered, declined) = (None, false, Vec::new());
        let call =
            BrowserCall { company, client_ip, customer, agent, note, phase, offered, declined };
        self.live.insert(call_id.clone(), call);
        call_id
    }

    pub fn get(&self, call_id: &CallId) -> Option<&BrowserCall> {
        self.live.get(call_id)
    }

    pub fn get_mut(&mut self, call_id: &CallId) -> Option<&mut BrowserCall> {
        self.live.get_mut(call_id)
    }

    /// A live call, only if it is in `phase`.
    pub fn in_phase(&self, call_id: &CallId, phase: Phase) -> Option<&BrowserCall> {
        self.live.get(call_id).filter(|c| c.phase == phase)
    }

    /// The customer's open call, if any.
    pub fn open_call(&self, company: &CompanyId, customer: &UserId) -> Option<&CallId> {
        self.open.get(&(company.clone(), customer.clone()))
    }

    /// Whether one more call from `ip` would pass [`MAX_OPEN_PER_IP`].
    pub fn ip_is_full(&self, ip: Option<IpAddr>) -> bool {
        ip.is_some_and(|ip| self.per_ip.get(&ip).copied().unwrap_or(0) >= MAX_OPEN_PER_IP)
    }

    /// How many calls wait in a company's queue.
    pub fn waiting(&self, company: &CompanyId) -> usize {
        self.queues.get(company).map_or(0, Vec::len)
    }

    /// The ids of a company's waiting calls, oldest first.
    pub fn queue(&self, company: &CompanyId) -> Vec<CallId> {
        self.queues.get(company).cloned().unwrap_or_default()
    }

    /// A waiting call's place in its company's queue, from 1.
    pub fn position(&self, company: &CompanyId, call_id: &CallId) -> usize {
        self.queues
            .get(company)
            .and_then(|q| q.iter().position(|id| id == call_id))
            .map_or(0, |i| i + 1)
    }

    /// Takes a call out of its company's queue; answers the calls that were behind it (their
    /// place in line just moved up).
    pub fn dequeue(&mut self, company: &CompanyId, call_id: &CallId) -> Vec<CallId> {
        let Some(queue) = self.queues.get_mut(company) else { return Vec::new() };
        let Some(at) = queue.iter().position(|id| id == call_id) else { return Vec::new() };
        queue.remove(at);
        queue[at..].to_vec()
    }

    /// Puts a call back at the head of its queue (an accept that could not be stored).
    pub fn requeue_first(&mut self, company: &CompanyId, call_id: CallId) {
        self.queues.entry(company.clone()).or_default().insert(0, call_id);
    }

    /// Drops every trace of a call; answers the calls that were behind it in the queue.
    pub fn forget(&mut self, call_id: &CallId) -> Vec<CallId> {
        let mut moved_up = Vec::new();
        if let Some(call) = self.live.remove(call_id) {
            self.open.remove(&(call.company.clone(), call.customer.id.clone()));
            moved_up = self.dequeue(&call.company, call_id);
            if let Some(ip) = call.client_ip
                && let Some(count) = self.per_ip.get_mut(&ip)
            {
                *count -= 1;
                if *count == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
        moved_up
    }

    /// The calls a user is a party of.
    pub fn calls_of(&self, company: &CompanyId, user_id: &UserId) -> Vec<CallId> {
        self.live
            .iter()
            .filter(|(_, c)| &c.company == company && c.is_party(user_id))
            .map(|(id, _)| id.clone())
            .collect()
    }
}
