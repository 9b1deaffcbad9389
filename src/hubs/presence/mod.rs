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
//! | [`Connect`] | a session, once authenticated (and admitted by the per-user cap), through its worker's [`outbox`] | — |
//! | [`Disconnect`] | a session's `stopping()`, through its worker's [`outbox`] | — (idempotent; always announced) |
//! | [`outbox::Changes`] | each worker thread, once per turn: its sessions' `Connect`s and `Disconnect`s in order | — |
//! | [`EvictSlowConsumer`] | any hub whose delivery found a full mailbox | — (closes it with 4009) |
//! | [`Subscribe`] | startup, for each hub that needs [`PresenceEvent`]s | — |
//! | [`SetAgentStatus`] | a session (`agent_status`), once stored | `agent_status_changed` to the company's agents |
//! | [`SetInCall`] | `CallHub` | the agent shown `busy` while in a browser call, then their chosen status |
//! | [`SendOnlineUsers`] | a session (`get_online_users`) | `online_users` to the asking connection |
//! | [`DeliverToUser`] | hubs, REST handlers | connections reached |
//! | [`DeliverToStaff`] | `CallHub` | connections reached |
//! | [`DeliverToAvailableAgents`] | `CallHub` (offers) | connections reached |
//! | [`DeliverHere`] | `CallHub` (status pushes, each node checking the order itself) | connections reached here |
//! | [`Incoming`] / [`Resync`](crate::cluster::Resync) | the cluster driver | deliveries from other nodes; their users (see `cluster.rs`) |
//! | [`IsOnline`] | `CallHub` (grace period) | whether the user has a connection |
//! | [`ListConnections`] | `GET /api/v1/ws/clients` | the company's connections |
//! | [`GetTotals`] | `GET /api/v1/ws/status` | global counts |
//! | [`CloseUser`] | the disabled-accounts watch | — (the user's connections close, 4001) |
//! | [`CloseAll`] | shutdown | connections asked to close (1001) |

mod audience;
mod cluster;
pub mod outbox;
mod remote;
mod status;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

pub use status::{DeliverToAvailableAgents, SetAgentStatus, SetInCall};

use self::remote::RemoteUsers;
use self::status::shown_status;
use super::connection::{ConnectionHandle, ReplyTo, SlowConsumer, fan_out};
use crate::chat::ConversationId;
use crate::cluster::{Audience, Bus};
use crate::ids::{CompanyId, ConnId, UserId};
use crate::metrics::Metrics;
use crate::net::ConnectionCaps;
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
pub struct PresenceHub {
    metrics: Arc<Metrics>,
    /// The per-user cap, told how many connections a user has on the other nodes.
    caps: Arc<ConnectionCaps>,
    /// The cluster bus, with `--redis-url`: what happens here is told to the other nodes.
    bus: Option<Bus>,
    companies: HashMap<CompanyId, Directory>,
    /// The users of the other nodes (empty on one node).
    remote: RemoteUsers,
    /// Per company, the online agents shown `available`, on any node: who is offered calls,
    /// and how many (§6).
    available: HashMap<CompanyId, HashSet<UserId>>,
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

/// One company's online users and its staff connections on this node.
#[derive(Default)]
struct Directory {
    users: HashMap<UserId, OnlineEntry>,
    /// Every connection of an agent or admin: "the company's agents".
    staff: HashMap<ConnId, (UserId, ConnectionHandle)>,
}

struct OnlineEntry {
    user: UserRef,
    /// The status the agent chose (agents and admins only; customers have none). What others
    /// see can differ: `busy` while in a call (see `status.rs`).
    chosen: Option<AgentStatus>,
    connections: Connections,
}

/// One user's connections on this node: a few browser tabs at most, so a small vector (one
/// allocation the size of its entries) rather than a hash table (four buckets and control
/// bytes for the usual single tab, ~300 bytes more per connection).
#[derive(Default)]
struct Connections(Vec<Connection>);

impl Connections {
    fn insert(&mut self, connection: Connection) {
        self.0.push(connection);
    }

    fn remove(&mut self, conn: ConnId) -> Option<Connection> {
        let at = self.0.iter().position(|c| c.handle.id == conn)?;
        Some(self.0.swap_remove(at))
    }

    fn contains(&self, conn: ConnId) -> bool {
        self.0.iter().any(|c| c.handle.id == conn)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn iter(&self) -> std::slice::Iter<'_, Connection> {
        self.0.iter()
    }
}

struct Connection {
    handle: ConnectionHandle,
    connected_at: DateTime<Utc>,
}

impl PresenceHub {
    /// A hub counting its evictions into `metrics`, telling `caps` of the other nodes'
    /// connections and, with a `bus`, the other nodes of its own.
    pub fn new(metrics: Arc<Metrics>, caps: Arc<ConnectionCaps>, bus: Option<Bus>) -> Self {
        Self {
            metrics,
            caps,
            bus,
            companies: HashMap::new(),
            remote: RemoteUsers::default(),
            available: HashMap::new(),
            subscribers: Vec::new(),
            online_users: 0,
            connections: 0,
            customer_changes: HashMap::new(),
            in_call: HashSet::new(),
        }
    }

    /// Whether a user has a connection on this node or another.
    fn is_online(&self, company: &CompanyId, user_id: &UserId) -> bool {
        self.companies.get(company).is_some_and(|d| d.users.contains_key(user_id))
            || self.remote.is_online(company, user_id)
    }

    /// Delivers `frame` to `audience` on this node and, in a cluster, on the others; answers
    /// how many connections here it reached.
    fn deliver(&mut self, company: &CompanyId, audience: Audience, frame: Frame) -> usize {
        let delivered = self.deliver_here(company, &audience, &frame);
        if let Some(bus) = &self.bus {
            bus.deliver(company, audience, &frame);
        }
        delivered
    }

    /// Delivers `frame` to `audience`'s connections on this node.
    fn deliver_here(&mut self, company: &CompanyId, audience: &Audience, frame: &Frame) -> usize {
        let Some(directory) = self.companies.get(company) else { return 0 };
        let available = self.available.get(company);
        let mut slow = Vec::new();
        let delivered = audience::deliver(directory, available, audience, frame, &mut slow);
        self.evict(company, slow);
        delivered
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
            let Some(removed) = entry.connections.remove(conn) else {
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
            let (user, chosen, conns) = (entry.user.clone(), entry.chosen, entry.connections.len());
            self.publish_presence(company, user, chosen, conns);
            if conns > 0 {
                continue;
            }
            if let Some(gone) =
                self.companies.get_mut(company).and_then(|d| d.users.remove(&user_id))
            {
                self.refresh_availability(company, &user_id);
                let slow = self.went_offline(company, gone);
                pending.extend(slow.into_iter().map(|s| (s.user_id, s.conn, true)));
            }
        }
    }

    /// A user's last connection here is gone: unless they are on another node, the other hubs
    /// hear it, and the agents. Returns the slow consumers found.
    fn went_offline(&mut self, company: &CompanyId, gone: OnlineEntry) -> Vec<SlowConsumer> {
        self.online_users -= 1;
        let slow = if self.remote.is_online(company, &gone.user.id) {
            Vec::new()
        } else {
            self.announce_offline(company, &gone.user)
        };
        if self.companies.get(company).is_some_and(|d| d.users.is_empty()) {
            self.companies.remove(company);
        }
        slow
    }

    /// A user came online (on any node): the agents here hear it, at once for staff, in the
    /// next batch for a customer.
    fn announce_online(
        &mut self,
        company: &CompanyId,
        user: &UserRef,
        status: Option<AgentStatus>,
    ) -> Vec<SlowConsumer> {
        let mut slow = Vec::new();
        if !user.role.is_staff() {
            self.customer_changes.entry(company.clone()).or_default().came(user);
        } else if let Some(directory) = self.companies.get(company) {
            let changed = ServerMessage::PresenceChanged { user, online: true, status };
            let staff = directory.staff.values().filter(|(u, _)| *u != user.id);
            fan_out(staff.map(|(u, h)| (u, h)), &encode(&changed), &mut slow);
        }
        slow
    }

    /// A user's last connection on every node is gone: the other hubs hear it, and the agents
    /// here (at once for staff, in the next batch for a customer).
    fn announce_offline(&mut self, company: &CompanyId, user: &UserRef) -> Vec<SlowConsumer> {
        let user_id = user.id.clone();
        announce(
            &self.subscribers,
            PresenceEvent::UserOffline { company: company.clone(), user_id },
        );
        let mut slow = Vec::new();
        if !user.role.is_staff() {
            self.customer_changes.entry(company.clone()).or_default().went(user);
        } else if let Some(directory) = self.companies.get(company) {
            let changed = ServerMessage::PresenceChanged { user, online: false, status: None };
            fan_out(directory.staff.values().map(|(u, h)| (u, h)), &encode(&changed), &mut slow);
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
        let company = msg.company;
        let directory = self.companies.entry(company.clone()).or_default();
        let is_staff = msg.user.role.is_staff();
        let mut first_connection = false;
        let entry = directory.users.entry(msg.user.id.clone()).or_insert_with(|| {
            first_connection = true;
            OnlineEntry {
                user: msg.user.clone(),
                chosen: is_staff.then_some(msg.chosen.unwrap_or(AgentStatus::Available)),
                connections: Connections::default(),
            }
        });
        let conn = msg.handle.id;
        entry
            .connections
            .insert(Connection { handle: msg.handle.clone(), connected_at: msg.connected_at });
        let (chosen, conns) = (entry.chosen, entry.connections.len());
        if is_staff {
            directory.staff.insert(conn, (msg.user.id.clone(), msg.handle));
        }
        self.connections += 1;
        let status = shown_status(&self.in_call, &company, &msg.user.id, chosen);
        let mut slow = Vec::new();
        if first_connection {
            self.online_users += 1;
            if !self.remote.is_online(&company, &msg.user.id) {
                slow = self.announce_online(&company, &msg.user, status);
            }
        }
        self.publish_presence(&company, msg.user.clone(), chosen, conns);
        if is_staff {
            self.refresh_availability(&company, &msg.user.id);
            // Every new connection of an available agent hears the calls still waiting.
            if status == Some(AgentStatus::Available) {
                let user_id = msg.user.id.clone();
                announce(
                    &self.subscribers,
                    PresenceEvent::AgentAvailable { company: company.clone(), user_id },
                );
            }
        }
        self.evict(&company, slow);
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

    /// Everyone online on any node, each once, with their connections on every node.
    fn handle(&mut self, msg: SendOnlineUsers, _: &mut Context<Self>) {
        let company = &msg.company;
        let elsewhere = |user_id: &UserId| {
            self.remote.get(company, user_id).map_or(0, remote::RemoteUser::connections)
        };
        let here = self.companies.get(company).map(|d| &d.users);
        let mut users: Vec<OnlineUser<'_>> = here
            .into_iter()
            .flat_map(HashMap::values)
            .map(|e| OnlineUser {
                user: &e.user,
                status: shown_status(&self.in_call, company, &e.user.id, e.chosen),
                connections: e.connections.len() + elsewhere(&e.user.id),
            })
            .collect();
        let only_remote = self
            .remote
            .company(company)
            .filter(|r| !here.is_some_and(|h| h.contains_key(&r.user.id)));
        users.extend(only_remote.map(|r| OnlineUser {
            user: &r.user,
            status: shown_status(&self.in_call, company, &r.user.id, r.chosen()),
            connections: r.connections(),
        }));
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
        let audience = Audience::User { user_id: msg.user_id, except_conn: msg.except_conn };
        self.deliver(&msg.company, audience, msg.frame)
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
        self.deliver(&msg.company, Audience::Staff { except_user: msg.except_user }, msg.frame)
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
        self.is_online(&msg.company, &msg.user_id)
    }
}

/// Delivers a frame to an audience on this node only (what another node already decided to
/// show here, e.g. a call's status change it had not shown yet).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct DeliverHere {
    pub company: CompanyId,
    pub audience: Audience,
    pub frame: Frame,
}

impl Handler<DeliverHere> for PresenceHub {
    type Result = usize;

    fn handle(&mut self, msg: DeliverHere, _: &mut Context<Self>) -> usize {
        self.deliver_here(&msg.company, &msg.audience, &msg.frame)
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
                e.connections.iter().map(|c| ConnectionEntry {
                    conn: c.handle.id,
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

/// With `cluster`, the counts of every node (`ws/status`); without, this node's (metrics).
#[derive(Message)]
#[rtype(result = "Totals")]
pub struct GetTotals {
    pub cluster: bool,
}

impl Handler<GetTotals> for PresenceHub {
    type Result = MessageResult<GetTotals>;

    /// Over the cluster a user on two nodes is one user.
    fn handle(&mut self, msg: GetTotals, _: &mut Context<Self>) -> Self::Result {
        let mut totals = Totals { users: self.online_users, connections: self.connections };
        if !msg.cluster {
            return MessageResult(totals);
        }
        for (company, user_id, remote) in self.remote.all() {
            totals.connections += remote.connections();
            let here = self.companies.get(company).is_some_and(|d| d.users.contains_key(user_id));
            totals.users += usize::from(!here);
        }
        MessageResult(totals)
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
        let audience = Audience::Participants {
            conversation: msg.conversation,
            except_conn: msg.except_conn,
            except_user: msg.except_user,
        };
        self.deliver(&msg.company, audience, msg.frame)
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
        let here = self.companies.get(&msg.company).and_then(|d| d.users.get(&msg.user_id));
        here.map(|e| e.user.role)
            .or_else(|| self.remote.get(&msg.company, &msg.user_id).map(|r| r.user.role))
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
        for connection in entry.into_iter().flat_map(|e| e.connections.iter()) {
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
            for connection in entry.connections.iter() {
                connection.handle.close(CloseCode::GoingAway, "server shutting down");
                asked += 1;
            }
        }
        asked
    }
}
