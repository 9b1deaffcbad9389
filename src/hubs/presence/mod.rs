//! `PresenceHub`: the directory of who is connected, company → user → connections, plus each
//! agent's status. It is the one place a connection is registered and deregistered, and every
//! removal, however it happened, is announced to the subscribed hubs as [`PresenceEvent`], so
//! they forget the connection too. It also delivers to a user's connections and to "the
//! company's agents" (every connection of an agent or admin) for the other hubs and the REST
//! handlers. Presence is per user: a second tab is one more connection, and presence news goes
//! out only on a user's first connect and last disconnect — at once for agents and admins
//! (`presence_changed`), batched for customers (at most one `presence_batch` per second per
//! company, see `CustomerChanges`), so a storm of guest connections costs each agent at most
//! one frame a second.
//!
//! Mailbox:
//!
//! | message | sent by | answer |
//! | --- | --- | --- |
//! | [`Connect`] | a session, once authenticated (and admitted by the per-user cap) | — |
//! | [`Disconnect`] | a session's `stopping()` | — (idempotent; always announced) |
//! | [`EvictSlowConsumer`] | any hub whose delivery found a full mailbox | — (closes it with 4009) |
//! | [`Subscribe`] | startup, for each hub that needs [`PresenceEvent`]s | — |
//! | [`SetAgentStatus`] | a session (`agent_status`), once stored | `agent_status_changed` to the company's agents |
//! | [`SetInCall`] | `CallHub` | the agent shown `busy` while in a browser call, then their chosen status |
//! | [`SendOnlineUsers`] | a session (`get_online_users`) | `online_users` to the asking connection |
//! | [`DeliverToUser`] | hubs, REST handlers | connections reached |
//! | [`DeliverToStaff`] | `CallHub` | connections reached |
//! | [`DeliverToAvailableAgents`] | `CallHub` (offers) | connections reached |
//! | [`DeliverToStaffAndUser`] | `CallHub` (status pushes) | connections reached |
//! | [`IsOnline`] | `CallHub` (grace period) | whether the user has a connection |
//! | [`ListConnections`] | `GET /api/v1/ws/clients` | the company's connections |
//! | [`GetTotals`] | `GET /api/v1/ws/status` | global counts |
//! | [`CloseUser`] | the disabled-accounts watch | — (the user's connections close, 4001) |
//! | [`CloseAll`] | shutdown | connections asked to close (1001) |

mod status;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

pub use status::{DeliverToAvailableAgents, SetAgentStatus, SetInCall};

use self::status::shown_status;
use super::connection::{ConnectionHandle, ReplyTo, SlowConsumer, fan_out};
use crate::chat::ConversationId;
use crate::ids::{CompanyId, ConnId, UserId};
use crate::metrics::Metrics;
use crate::protocol::{AgentStatus, CloseCode, Frame, OnlineUser, ServerMessage, encode};
use crate::user::{Role, UserRef};

/// Told by the PresenceHub to every subscribed hub. Handlers must be idempotent.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum PresenceEvent {
    /// A connection is gone for good (closed, dropped, timed out or evicted). Announced even
    /// when it was already removed, so a hub it talked to after its eviction forgets it too.
    ConnectionClosed { company: CompanyId, conn: ConnId },
    /// A user's last connection is gone.
    UserOffline { company: CompanyId, user_id: UserId },
    /// An agent became available: came online, chose `available`, or left a call, and is
    /// shown `available` now.
    AgentAvailable { company: CompanyId, user_id: UserId },
    /// How many of the company's agents are shown `available` changed (§6 `agents_available`).
    AvailableAgents { company: CompanyId, count: usize },
}

/// The directory actor. See the module docs.
#[derive(Default)]
pub struct PresenceHub {
    metrics: Arc<Metrics>,
    companies: HashMap<CompanyId, Directory>,
    subscribers: Vec<Recipient<PresenceEvent>>,
    online_users: usize,
    connections: usize,
    /// Customers who came or went since the last `presence_batch`, per company.
    customer_changes: HashMap<CompanyId, CustomerChanges>,
    /// Agents who are a party of a browser call in progress (told by the `CallHub`): shown
    /// `busy`, not offered calls. Kept apart from the directory: it outlives a reconnect.
    in_call: HashSet<(CompanyId, UserId)>,
}

/// How often customers' comings and goings are told to the company's agents.
const BATCH_EVERY: Duration = Duration::from_secs(1);

/// Customers' presence changes waiting for the next `presence_batch`. A customer who comes
/// and goes within one batch (or goes and comes back) cancels out and appears in neither list:
/// the agents' view was right before and is right after.
#[derive(Default)]
struct CustomerChanges {
    online: HashMap<UserId, UserRef>,
    offline: HashMap<UserId, UserRef>,
}

impl CustomerChanges {
    fn came(&mut self, user: &UserRef) {
        if self.offline.remove(&user.id).is_none() {
            self.online.insert(user.id.clone(), user.clone());
        }
    }

    fn went(&mut self, user: &UserRef) {
        if self.online.remove(&user.id).is_none() {
            self.offline.insert(user.id.clone(), user.clone());
        }
    }
}

/// One company's online users and its staff connections.
#[derive(Default)]
struct Directory {
    users: HashMap<UserId, OnlineEntry>,
    /// Every connection of an agent or admin: "the company's agents".
    staff: HashMap<ConnId, (UserId, ConnectionHandle)>,
    /// The online agents shown `available`: who is offered calls, and how many (§6).
    available: HashSet<UserId>,
}

struct OnlineEntry {
    user: UserRef,
    /// The status the agent chose (agents and admins only; customers have none). What others
    /// see can differ: `busy` while in a call (see `status.rs`).
    chosen: Option<AgentStatus>,
    connections: HashMap<ConnId, Connection>,
}

struct Connection {
    handle: ConnectionHandle,
    connected_at: DateTime<Utc>,
}

impl PresenceHub {
    /// A hub counting its evictions into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics, ..Self::default() }
    }

    /// Removes connections (a worklist: announcing one user's departure can reveal more slow
    /// consumers), announces each to the subscribers, and closes evicted ones with 4009.
    fn remove_connections(
        &mut self,
        company: &CompanyId,
        mut pending: Vec<(UserId, ConnId, bool)>,
    ) {
        while let Some((user_id, conn, evicted)) = pending.pop() {
            announce(
                &self.subscribers,
                PresenceEvent::ConnectionClosed { company: company.clone(), conn },
            );
            let Some(directory) = self.companies.get_mut(company) else {
                continue;
            };
            directory.staff.remove(&conn);
            let Some(entry) = directory.users.get_mut(&user_id) else {
                continue;
            };
            let Some(removed) = entry.connections.remove(&conn) else {
                continue;
            };
            self.connections -= 1;
            if evicted {
                self.metrics.evicted();
                log::info!(
                    conn_id:% = conn, user_id = user_id.as_str(), company = company.as_str();
                    "closing a slow consumer"
                );
                removed.handle.close(CloseCode::SlowConsumer, "slow consumer");
            }
            if !entry.connections.is_empty() {
                continue;
            }
            if let Some(gone) = directory.users.remove(&user_id) {
                self.refresh_availability(company, &user_id);
                let slow = self.went_offline(company, gone);
                pending.extend(slow.into_iter().map(|s| (s.user_id, s.conn, true)));
            }
        }
    }

    /// A user's last connection is gone: the other hubs hear it, and the agents (at once for
    /// staff, in the next batch for a customer). Returns the slow consumers found.
    fn went_offline(&mut self, company: &CompanyId, gone: OnlineEntry) -> Vec<SlowConsumer> {
        self.online_users -= 1;
        let user_id = gone.user.id.clone();
        announce(
            &self.subscribers,
            PresenceEvent::UserOffline { company: company.clone(), user_id },
        );
        let mut slow = Vec::new();
        if gone.user.role.is_staff() {
            let changed =
                ServerMessage::PresenceChanged { user: &gone.user, online: false, status: None };
            if let Some(directory) = self.companies.get(company) {
                fan_out(
                    directory.staff.values().map(|(u, h)| (u, h)),
                    &encode(&changed),
                    &mut slow,
                );
            }
        } else {
            self.customer_changes.entry(company.clone()).or_default().went(&gone.user);
        }
        if self.companies.get(company).is_some_and(|d| d.users.is_empty()) {
            self.companies.remove(company);
        }
        slow
    }

    /// Sends each company's agents one `presence_batch` with the customers who came and went.
    fn flush_customer_changes(&mut self) {
        for (company, changes) in std::mem::take(&mut self.customer_changes) {
            if changes.online.is_empty() && changes.offline.is_empty() {
                continue;
            }
            let Some(directory) = self.companies.get(&company) else { continue };
            let batch = ServerMessage::PresenceBatch {
                online: changes.online.values().collect(),
                offline: changes.offline.values().collect(),
            };
            let mut slow = Vec::new();
            fan_out(directory.staff.values().map(|(u, h)| (u, h)), &encode(&batch), &mut slow);
            self.evict(&company, slow);
        }
    }

    fn evict(&mut self, company: &CompanyId, slow: Vec<SlowConsumer>) {
        if !slow.is_empty() {
            self.remove_connections(
                company,
                slow.into_iter().map(|s| (s.user_id, s.conn, true)).collect(),
            );
        }
    }
}

/// Tells every subscribed hub; a free function so it can run while a directory is borrowed.
fn announce(subscribers: &[Recipient<PresenceEvent>], event: PresenceEvent) {
    for subscriber in subscribers {
        subscriber.do_send(event.clone());
    }
}

impl Actor for PresenceHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(BATCH_EVERY, |hub, _| hub.flush_customer_changes());
    }
}

/// A session has authenticated: add its connection to the directory.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub company: CompanyId,
    pub user: UserRef,
    pub handle: ConnectionHandle,
    pub connected_at: DateTime<Utc>,
    /// The status an agent chose last time (stored); `None`: `available`.
    pub chosen: Option<AgentStatus>,
}

impl Handler<Connect> for PresenceHub {
    type Result = ();

    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) {
        let directory = self.companies.entry(msg.company.clone()).or_default();
        let is_staff = msg.user.role.is_staff();
        let mut first_connection = false;
        let entry = directory.users.entry(msg.user.id.clone()).or_insert_with(|| {
            first_connection = true;
            OnlineEntry {
                user: msg.user.clone(),
                chosen: is_staff.then_some(msg.chosen.unwrap_or(AgentStatus::Available)),
                connections: HashMap::new(),
            }
        });
        let conn = msg.handle.id;
        let status = shown_status(&self.in_call, &msg.company, &msg.user.id, entry.chosen);
        entry.connections.insert(
            conn,
            Connection { handle: msg.handle.clone(), connected_at: msg.connected_at },
        );
        self.connections += 1;
        let mut slow = Vec::new();
        if first_connection {
            self.online_users += 1;
            if is_staff {
                let changed =
                    ServerMessage::PresenceChanged { user: &msg.user, online: true, status };
                fan_out(
                    directory.staff.values().map(|(u, h)| (u, h)),
                    &encode(&changed),
                    &mut slow,
                );
            } else {
                self.customer_changes.entry(msg.company.clone()).or_default().came(&msg.user);
            }
        }
        if is_staff {
            directory.staff.insert(conn, (msg.user.id.clone(), msg.handle));
            self.refresh_availability(&msg.company, &msg.user.id);
            // Every new connection of an available agent hears the calls still waiting.
            if status == Some(AgentStatus::Available) {
                let user_id = msg.user.id.clone();
                announce(
                    &self.subscribers,
                    PresenceEvent::AgentAvailable { company: msg.company.clone(), user_id },
                );
            }
        }
        self.evict(&msg.company, slow);
    }
}

/// A session has stopped (closed, dropped, timed out): forget its connection. Idempotent, and
/// always announced to the subscribers, even if the connection was already evicted, so a hub
/// the session talked to after its eviction forgets it too.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub company: CompanyId,
    pub user_id: UserId,
    pub conn: ConnId,
}

impl Handler<Disconnect> for PresenceHub {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        self.remove_connections(&msg.company, vec![(msg.user_id, msg.conn, false)]);
    }
}

/// Another hub found this connection's mailbox full: evict it everywhere and close it (4009).
#[derive(Message)]
#[rtype(result = "()")]
pub struct EvictSlowConsumer {
    pub company: CompanyId,
    pub user_id: UserId,
    pub conn: ConnId,
}

impl Handler<EvictSlowConsumer> for PresenceHub {
    type Result = ();

    fn handle(&mut self, msg: EvictSlowConsumer, _: &mut Context<Self>) {
        self.remove_connections(&msg.company, vec![(msg.user_id, msg.conn, true)]);
    }
}

/// Registers a hub that must hear about every [`PresenceEvent`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub subscriber: Recipient<PresenceEvent>,
}

impl Handler<Subscribe> for PresenceHub {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.subscribers.push(msg.subscriber);
    }
}

/// `get_online_users`: answers the requesting connection with `online_users`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendOnlineUsers {
    pub company: CompanyId,
    pub reply_to: ReplyTo,
}

impl Handler<SendOnlineUsers> for PresenceHub {
    type Result = ();

    fn handle(&mut self, msg: SendOnlineUsers, _: &mut Context<Self>) {
        let Some(directory) = self.companies.get(&msg.company) else {
            return;
        };
        let mut users: Vec<OnlineUser<'_>> = directory
            .users
            .values()
            .map(|e| OnlineUser {
                user: &e.user,
                status: shown_status(&self.in_call, &msg.company, &e.user.id, e.chosen),
                connections: e.connections.len(),
            })
            .collect();
        users.sort_by(|a, b| (&a.user.name, &a.user.id).cmp(&(&b.user.name, &b.user.id)));
        let mut slow = Vec::new();
        msg.reply_to.reply(&ServerMessage::OnlineUsers { users }, &mut slow);
        self.evict(&msg.company, slow);
    }
}

/// Delivers a frame to every connection of one user; answers how many were reached.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct DeliverToUser {
    pub company: CompanyId,
    pub user_id: UserId,
    /// Leave out this connection (the one that asked, and got its own answer).
    pub except_conn: Option<ConnId>,
    pub frame: Frame,
}

impl Handler<DeliverToUser> for PresenceHub {
    type Result = usize;

    fn handle(&mut self, msg: DeliverToUser, _: &mut Context<Self>) -> usize {
        let Some(entry) = self.companies.get(&msg.company).and_then(|d| d.users.get(&msg.user_id))
        else {
            return 0;
        };
        let mut slow = Vec::new();
        let targets = entry.connections.iter().filter(|(conn, _)| Some(**conn) != msg.except_conn);
        let delivered =
            fan_out(targets.map(|(_, c)| (&msg.user_id, &c.handle)), &msg.frame, &mut slow);
        self.evict(&msg.company, slow);
        delivered
    }
}

/// Delivers a frame to every connection of the company's agents and admins.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct DeliverToStaff {
    pub company: CompanyId,
    /// Leave out this user's connections (the agent who took a call).
    pub except_user: Option<UserId>,
    pub frame: Frame,
}

impl Handler<DeliverToStaff> for PresenceHub {
    type Result = usize;

    fn handle(&mut self, msg: DeliverToStaff, _: &mut Context<Self>) -> usize {
        let Some(directory) = self.companies.get(&msg.company) else {
            return 0;
        };
        let mut slow = Vec::new();
        let targets = directory.staff.values().filter(|(u, _)| msg.except_user.as_ref() != Some(u));
        let delivered = fan_out(targets.map(|(u, h)| (u, h)), &msg.frame, &mut slow);
        self.evict(&msg.company, slow);
        delivered
    }
}

/// Whether a user has at least one connection.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsOnline {
    pub company: CompanyId,
    pub user_id: UserId,
}

impl Handler<IsOnline> for PresenceHub {
    type Result = bool;

    fn handle(&mut self, msg: IsOnline, _: &mut Context<Self>) -> bool {
        self.companies.get(&msg.company).is_some_and(|d| d.users.contains_key(&msg.user_id))
    }
}

/// Delivers a frame to the company's agents and to every connection of one more user (a
/// call's owner), each connection once even when it is both.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct DeliverToStaffAndUser {
    pub company: CompanyId,
    pub user_id: Option<UserId>,
    pub frame: Frame,
}

impl Handler<DeliverToStaffAndUser> for PresenceHub {
    type Result = usize;

    fn handle(&mut self, msg: DeliverToStaffAndUser, _: &mut Context<Self>) -> usize {
        let Some(directory) = self.companies.get(&msg.company) else { return 0 };
        let mut slow = Vec::new();
        let mut delivered =
            fan_out(directory.staff.values().map(|(u, h)| (u, h)), &msg.frame, &mut slow);
        if let Some(entry) = msg.user_id.as_ref().and_then(|u| directory.users.get(u)) {
            let not_staff =
                entry.connections.iter().filter(|(c, _)| !directory.staff.contains_key(c));
            delivered +=
                fan_out(not_staff.map(|(_, c)| (&entry.user.id, &c.handle)), &msg.frame, &mut slow);
        }
        self.evict(&msg.company, slow);
        delivered
    }
}

/// One connection of a company, for `GET /api/v1/ws/clients`.
#[derive(Debug, Clone)]
pub struct ConnectionEntry {
    pub conn: ConnId,
    pub user: UserRef,
    pub connected_at: DateTime<Utc>,
}

/// Lists a company's connections.
#[derive(Message)]
#[rtype(result = "Vec<ConnectionEntry>")]
pub struct ListConnections {
    pub company: CompanyId,
}

impl Handler<ListConnections> for PresenceHub {
    type Result = MessageResult<ListConnections>;

    fn handle(&mut self, msg: ListConnections, _: &mut Context<Self>) -> Self::Result {
        let mut list: Vec<ConnectionEntry> = self
            .companies
            .get(&msg.company)
            .into_iter()
            .flat_map(|d| d.users.values())
            .flat_map(|e| {
                e.connections.iter().map(|(conn, c)| ConnectionEntry {
                    conn: *conn,
                    user: e.user.clone(),
                    connected_at: c.connected_at,
                })
            })
            .collect();
        list.sort_by_key(|c| (c.connected_at, c.conn));
        MessageResult(list)
    }
}

/// Global counts for `GET /api/v1/ws/status` (no company is named, nothing else is revealed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub users: usize,
    pub connections: usize,
}

#[derive(Message)]
#[rtype(result = "Totals")]
pub struct GetTotals;

impl Handler<GetTotals> for PresenceHub {
    type Result = MessageResult<GetTotals>;

    fn handle(&mut self, _: GetTotals, _: &mut Context<Self>) -> Self::Result {
        MessageResult(Totals { users: self.online_users, connections: self.connections })
    }
}

/// Delivers a chat frame to the participants of a conversation: a support conversation's
/// customer and the company's agents; a direct conversation's two staff users (only as staff:
/// a customer never receives a direct conversation, whatever id it was sent under).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct DeliverToParticipants {
    pub company: CompanyId,
    pub conversation: ConversationId,
    /// Leave out this connection (the one that sent, and got its own answer).
    pub except_conn: Option<ConnId>,
    /// Leave out this user's connections (the one who is typing).
    pub except_user: Option<UserId>,
    pub frame: Frame,
}

impl Handler<DeliverToParticipants> for PresenceHub {
    type Result = usize;

    fn handle(&mut self, msg: DeliverToParticipants, _: &mut Context<Self>) -> usize {
        let Some(directory) = self.companies.get(&msg.company) else { return 0 };
        let wanted = |user: &UserId, conn: &ConnId| {
            msg.except_conn != Some(*conn) && msg.except_user.as_ref() != Some(user)
        };
        let mut targets: Vec<(&UserId, &ConnectionHandle)> = Vec::new();
        let mut add_user = |user_id: &UserId, as_staff: bool| {
            let Some(entry) = directory.users.get(user_id) else { return };
            if entry.user.role.is_staff() != as_staff {
                return;
            }
            let conns = entry.connections.iter().filter(|(c, _)| wanted(user_id, c));
            targets.extend(conns.map(|(_, c)| (&entry.user.id, &c.handle)));
        };
        match &msg.conversation {
            ConversationId::Support { customer } => add_user(customer, false),
            ConversationId::Direct { a, b } => {
                add_user(a, true);
                add_user(b, true);
            }
        }
        if matches!(msg.conversation, ConversationId::Support { .. }) {
            let staff = directory.staff.iter().filter(|(c, (u, _))| wanted(u, c));
            targets.extend(staff.map(|(_, (u, h))| (u, h)));
        }
        let mut slow = Vec::new();
        let delivered = fan_out(targets, &msg.frame, &mut slow);
        self.evict(&msg.company, slow);
        delivered
    }
}

/// The role of a connected user, if they are connected.
#[derive(Message)]
#[rtype(result = "Option<Role>")]
pub struct RoleOf {
    pub company: CompanyId,
    pub user_id: UserId,
}

impl Handler<RoleOf> for PresenceHub {
    type Result = Option<Role>;

    fn handle(&mut self, msg: RoleOf, _: &mut Context<Self>) -> Option<Role> {
        self.companies.get(&msg.company)?.users.get(&msg.user_id).map(|e| e.user.role)
    }
}

/// Closes every connection of one user (a disabled account: 4001).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseUser {
    pub company: CompanyId,
    pub user_id: UserId,
    pub code: CloseCode,
    pub reason: &'static str,
}

impl Handler<CloseUser> for PresenceHub {
    type Result = ();

    fn handle(&mut self, msg: CloseUser, _: &mut Context<Self>) {
        let entry = self.companies.get(&msg.company).and_then(|d| d.users.get(&msg.user_id));
        for connection in entry.into_iter().flat_map(|e| e.connections.values()) {
            connection.handle.close(msg.code, msg.reason);
        }
    }
}

/// Server shutdown: ask every connection to close with 1001. Answers how many were asked.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CloseAll;

impl Handler<CloseAll> for PresenceHub {
    type Result = usize;

    fn handle(&mut self, _: CloseAll, _: &mut Context<Self>) -> usize {
        let mut asked = 0;
        for entry in self.companies.values().flat_map(|d| d.users.values()) {
            for connection in entry.connections.values() {
                connection.handle.close(CloseCode::GoingAway, "server shutting down");
                asked += 1;
            }
        }
        asked
    }
}
