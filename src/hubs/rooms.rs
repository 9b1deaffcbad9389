//! `RoomHub`: room membership per company and fan-out inside a room.
//!
//! The hub answers the requesting connection itself (so a `room_joined` always arrives before
//! that room's first message) and tells the others. Rooms are keyed by company first, so a
//! room name from a client can only ever name a room of the caller's company. Join and leave
//! notices are per user (a second tab joining the same room is not news to the others). The
//! automatic `agents` room holds every agent and admin connection; its joins and leaves are
//! silent, since `presence_changed` already tells them.
//!
//! Big rooms stay cheap: `room_joined` lists at most 100 members (`get_room_members` pages
//! through the rest), and in a room of more than `--room-member-events-max` members the joins and
//! leaves are told in at most one `room_members_changed` per second instead of one frame per
//! member per change, so N joins never cost N² frames.
//!
//! Mailbox:
//!
//! | message | sent by | answer |
//! | --- | --- | --- |
//! | [`JoinRoom`] | a session (`join_room`, and the automatic `agents` join) | `room_joined`; `user_joined` (or a batch) to the others |
//! | [`LeaveRoom`] | a session (`leave_room`) | `room_left` or `not_a_member`; `user_left` (or a batch) to the others |
//! | [`ListMembers`] | a session (`get_room_members`) | a page of `room_members`, or `not_a_member` |
//! | [`Publish`] | a session (`publish`) | `room_message` to the others; `published` with a `ref` |
//! | [`PublishToRoom`] | `POST /api/v1/publish` | connections reached |
//! | [`RoomsByConnection`] | `get_connection_info`, `GET /api/v1/ws/clients` | rooms per connection |
//! | [`PresenceEvent`] | the PresenceHub | — (`ConnectionClosed` leaves every room at once) |

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use actix::prelude::*;
use serde_json::Value;

use super::connection::{ReplyTo, SlowConsumer, fan_out};
use super::presence::{EvictSlowConsumer, PresenceEvent, PresenceHub};
use super::room::{self, Room};
use super::room_remote::RemoteMembers;
use crate::cluster::{Audience, Body, Bus, Incoming};
use crate::error::ErrorCode;
use crate::ids::{CompanyId, ConnId, RoomName, UserId};
use crate::protocol::{Frame, ServerMessage, encode};
use crate::user::UserRef;

/// How often a big room's member changes are told.
const BATCH_EVERY: Duration = Duration::from_secs(1);

/// Limits of the room hub, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct RoomLimits {
    pub max_rooms_per_connection: usize,
    /// Above this many members, joins and leaves are batched.
    pub member_events_max: usize,
}

/// The room actor. See the module docs.
pub struct RoomHub {
    companies: HashMap<CompanyId, CompanyRooms>,
    presence: Addr<PresenceHub>,
    limits: RoomLimits,
    /// Big rooms with member changes waiting for the next batch.
    changed: HashSet<(CompanyId, RoomName)>,
    /// The cluster bus: a room's members on the other nodes get what its members here get.
    bus: Option<Bus>,
    /// Who is in which room on the other nodes (for join and leave news).
    remote: RemoteMembers,
}

#[derive(Default)]
struct CompanyRooms {
    rooms: HashMap<RoomName, Room>,
    /// Reverse index: the rooms each connection is in, to leave them all at once.
    memberships: HashMap<ConnId, Vec<RoomName>>,
}

impl CompanyRooms {
    /// Takes a connection out of one room; returns the user who left the room entirely, if
    /// this was their last connection in it.
    fn leave(&mut self, room_name: &RoomName, conn: ConnId) -> Option<UserRef> {
        let room = self.rooms.get_mut(room_name)?;
        let left = room.remove(conn);
        if let Some(list) = self.memberships.get_mut(&conn) {
            list.retain(|r| r != room_name);
            if list.is_empty() {
                self.memberships.remove(&conn);
            }
        }
        if room.is_empty() {
            self.rooms.remove(room_name);
        }
        left
    }

    fn is_empty(&self) -> bool {
        self.rooms.is_empty() && self.memberships.is_empty()
    }
}

impl RoomHub {
    pub fn new(presence: Addr<PresenceHub>, limits: RoomLimits, bus: Option<Bus>) -> Self {
        let (companies, changed, remote) =
            (HashMap::new(), HashSet::new(), RemoteMembers::default());
        Self { companies, presence, limits, changed, bus, remote }
    }

    /// Sends a room's message to its members on the other nodes (but `except_conn`).
    fn to_other_nodes(
        &self,
        company: &CompanyId,
        room: &RoomName,
        except_conn: Option<ConnId>,
        frame: &Frame,
    ) {
        if let Some(bus) = &self.bus {
            let audience = Audience::Room { room: room.clone(), except_conn };
            bus.deliver(company, audience, frame);
        }
    }

    /// `user`'s first connection joined a room here, or their last one left it. In a cluster
    /// the other nodes hear it, and it is news only if the user is in the room on no other
    /// node; each node tells its own members (see [`Self::announce_here`]).
    fn announce(
        &mut self,
        company: &CompanyId,
        room_name: &RoomName,
        user: &UserRef,
        joined: bool,
        slow: &mut Vec<SlowConsumer>,
    ) {
        if room_name.is_agents() {
            return;
        }
        if let Some(bus) = &self.bus {
            let (company, room) = (company.clone(), room_name.clone());
            bus.send(Body::RoomMember { company, room, user: user.clone(), joined });
        }
        if !self.remote.has(company, room_name, &user.id) {
            self.announce_here(company, room_name, user, joined, slow);
        }
    }

    /// Tells this node's members of a room that `user` joined or left: at once in a small
    /// room, in the next batch in a big one. The user's own connections in the room get
    /// nothing.
    fn announce_here(
        &mut self,
        company: &CompanyId,
        room_name: &RoomName,
        user: &UserRef,
        joined: bool,
        slow: &mut Vec<SlowConsumer>,
    ) {
        let big = self.limits.member_events_max;
        let Some(room) = self.companies.get_mut(company).and_then(|r| r.rooms.get_mut(room_name))
        else {
            return;
        };
        if room.member_count() > big {
            room.record(user, joined);
            self.changed.insert((company.clone(), room_name.clone()));
            return;
        }
        let frame = if joined {
            encode(&ServerMessage::UserJoined { room: room_name, user })
        } else {
            encode(&ServerMessage::UserLeft { room: room_name, user })
        };
        let others = room.connections().filter(|(u, _)| *u != &user.id);
        fan_out(others, &frame, slow);
    }

    /// Sends each big room that changed one `room_members_changed`.
    fn flush_member_changes(&mut self) {
        for (company, room_name) in std::mem::take(&mut self.changed) {
            let Some(room) =
                self.companies.get_mut(&company).and_then(|r| r.rooms.get_mut(&room_name))
            else {
                continue;
            };
            let changes = room.take_changes();
            if changes.is_empty() {
                continue;
            }
            // At most a page of each: a second of 10,000 joins must not send 10,000 names to
            // 10,000 members. A client that sees `truncated` pages through the members instead.
            let truncated = changes.joined.len() > room::PAGE || changes.left.len() > room::PAGE;
            let frame = encode(&ServerMessage::RoomMembersChanged {
                room: &room_name,
                joined: changes.joined.values().take(room::PAGE).collect(),
                left: changes.left.values().take(room::PAGE).collect(),
                member_count: room.member_count(),
                truncated,
            });
            let mut slow = Vec::new();
            fan_out(room.connections(), &frame, &mut slow);
            self.evict(&company, slow);
        }
    }

    /// Removes connections from every room of a company (a worklist, since the `user_left`
    /// notices may find more slow consumers). Slow ones are reported to the PresenceHub, which
    /// evicts them everywhere and closes them.
    fn remove_connections(
        &mut self,
        company: &CompanyId,
        mut pending: Vec<(ConnId, Option<UserId>)>,
    ) {
        while let Some((conn, slow_user)) = pending.pop() {
            if let Some(user_id) = slow_user {
                let company = company.clone();
                self.presence.do_send(EvictSlowConsumer { company, user_id, conn });
            }
            let Some(rooms) = self.companies.get_mut(company) else { continue };
            let Some(joined) = rooms.memberships.remove(&conn) else { continue };
            let left: Vec<(RoomName, UserRef)> = joined
                .into_iter()
                .filter_map(|name| rooms.leave(&name, conn).map(|user| (name, user)))
                .collect();
            let mut slow = Vec::new();
            for (room_name, user) in left {
                self.announce(company, &room_name, &user, false, &mut slow);
            }
            pending.extend(slow.into_iter().map(|s| (s.conn, Some(s.user_id))));
            if self.companies.get(company).is_some_and(CompanyRooms::is_empty) {
                self.companies.remove(company);
            }
        }
    }

    fn evict(&mut self, company: &CompanyId, slow: Vec<SlowConsumer>) {
        if !slow.is_empty() {
            self.remove_connections(
                company,
                slow.into_iter().map(|s| (s.conn, Some(s.user_id))).collect(),
            );
        }
    }

    /// The room, if `conn` is in it.
    fn room_of(&self, company: &CompanyId, room: &RoomName, conn: ConnId) -> Option<&Room> {
        let room = self.companies.get(company)?.rooms.get(room)?;
        room.has_connection(conn).then_some(room)
    }
}

impl Actor for RoomHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(BATCH_EVERY, |hub, _| hub.flush_member_changes());
    }
}

/// Joins a connection to a room and answers `room_joined`; others hear of the user's first
/// connection in the room. Access rules are checked by the caller.
#[derive(Message)]
#[rtype(result = "()")]
pub struct JoinRoom {
    pub company: CompanyId,
    pub room: RoomName,
    pub user: UserRef,
    pub reply_to: ReplyTo,
    /// The automatic `agents` join at connect: no answer is sent.
    pub automatic: bool,
}

impl Handler<JoinRoom> for RoomHub {
    type Result = ();

    fn handle(&mut self, msg: JoinRoom, _: &mut Context<Self>) {
        let conn = msg.reply_to.conn.id;
        let max_rooms = self.limits.max_rooms_per_connection;
        let rooms = self.companies.entry(msg.company.clone()).or_default();
        let joined = rooms.memberships.entry(conn).or_default();
        let already_member = joined.contains(&msg.room);
        let mut slow = Vec::new();
        if !already_member && joined.len() >= max_rooms {
            if joined.is_empty() {
                rooms.memberships.remove(&conn);
            }
            let text = format!("a connection may be in at most {max_rooms} rooms");
            msg.reply_to.error(ErrorCode::Forbidden, &text, &mut slow);
            return self.evict(&msg.company, slow);
        }
        let mut first_of_user = false;
        if !already_member {
            joined.push(msg.room.clone());
            let room = rooms.rooms.entry(msg.room.clone()).or_default();
            first_of_user = room.add(conn, &msg.user, msg.reply_to.conn.clone());
        }
        if first_of_user {
            self.announce(&msg.company, &msg.room, &msg.user, true, &mut slow);
        }
        if !msg.automatic
            && let Some(room) = self.room_of(&msg.company, &msg.room, conn)
        {
            let (members, next) = room.page(None);
            let joined = ServerMessage::RoomJoined {
                room: &msg.room,
                member_count: room.member_count(),
                members,
                members_truncated: next.is_some(),
            };
            msg.reply_to.reply(&joined, &mut slow);
        }
        self.evict(&msg.company, slow);
    }
}

/// Takes a connection out of a room and answers `room_left` (or `not_a_member`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveRoom {
    pub company: CompanyId,
    pub room: RoomName,
    pub reply_to: ReplyTo,
}

impl Handler<LeaveRoom> for RoomHub {
    type Result = ();

    fn handle(&mut self, msg: LeaveRoom, _: &mut Context<Self>) {
        let conn = msg.reply_to.conn.id;
        let mut slow = Vec::new();
        if self.room_of(&msg.company, &msg.room, conn).is_none() {
            let text = format!("not a member of room '{}'", msg.room);
            msg.reply_to.error(ErrorCode::NotAMember, &text, &mut slow);
            return self.evict(&msg.company, slow);
        }
        let rooms = self.companies.entry(msg.company.clone()).or_default();
        if let Some(user) = rooms.leave(&msg.room, conn) {
            self.announce(&msg.company, &msg.room, &user, false, &mut slow);
        }
        msg.reply_to.reply(&ServerMessage::RoomLeft { room: &msg.room }, &mut slow);
        if self.companies.get(&msg.company).is_some_and(CompanyRooms::is_empty) {
            self.companies.remove(&msg.company);
        }
        self.evict(&msg.company, slow);
    }
}

/// `get_room_members`: a page of a room's members, for its members only.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ListMembers {
    pub company: CompanyId,
    pub room: RoomName,
    pub cursor: Option<String>,
    pub reply_to: ReplyTo,
}

impl Handler<ListMembers> for RoomHub {
    type Result = ();

    fn handle(&mut self, msg: ListMembers, _: &mut Context<Self>) {
        let mut slow = Vec::new();
        let cursor = match msg.cursor.as_deref().map(room::decode_cursor) {
            Some(None) => {
                let text = "cursor is not one this hub gave out";
                msg.reply_to.error(ErrorCode::InvalidMessage, text, &mut slow);
                return self.evict(&msg.company, slow);
            }
            other => other.flatten(),
        };
        match self.room_of(&msg.company, &msg.room, msg.reply_to.conn.id) {
            None => {
                let text = format!("not a member of room '{}'", msg.room);
                msg.reply_to.error(ErrorCode::NotAMember, &text, &mut slow);
            }
            Some(room) => {
                let (members, next_cursor) = room.page(cursor.as_ref());
                let page = ServerMessage::RoomMembers { room: &msg.room, members, next_cursor };
                msg.reply_to.reply(&page, &mut slow);
            }
        }
        self.evict(&msg.company, slow);
    }
}

/// A member publishes: the room's other connections get `room_message`. A sender who is not a
/// member gets `not_a_member`; with a `ref`, a member gets `published`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish {
    pub company: CompanyId,
    pub room: RoomName,
    pub from: UserRef,
    pub data: Value,
    pub reply_to: ReplyTo,
}

impl Handler<Publish> for RoomHub {
    type Result = ();

    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) {
        let conn = msg.reply_to.conn.id;
        let mut slow = Vec::new();
        match self.room_of(&msg.company, &msg.room, conn) {
            None => {
                let text = format!("not a member of room '{}'", msg.room);
                msg.reply_to.error(ErrorCode::NotAMember, &text, &mut slow);
            }
            Some(room) => {
                let message = ServerMessage::RoomMessage {
                    room: &msg.room,
                    from: &msg.from,
                    data: &msg.data,
                };
                let frame = encode(&message);
                let delivered = fan_out(room.others(conn), &frame, &mut slow);
                self.to_other_nodes(&msg.company, &msg.room, Some(conn), &frame);
                if msg.reply_to.reference.is_some() {
                    let published = ServerMessage::Published { room: &msg.room, delivered };
                    msg.reply_to.reply(&published, &mut slow);
                }
            }
        }
        self.evict(&msg.company, slow);
    }
}

/// Server-side publishing (`POST /api/v1/publish`): every member gets `room_message`.
/// Answers how many connections were reached.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct PublishToRoom {
    pub company: CompanyId,
    pub room: RoomName,
    pub from: UserRef,
    pub data: Value,
}

impl Handler<PublishToRoom> for RoomHub {
    type Result = usize;

    fn handle(&mut self, msg: PublishToRoom, _: &mut Context<Self>) -> usize {
        let message =
            ServerMessage::RoomMessage { room: &msg.room, from: &msg.from, data: &msg.data };
        let frame = encode(&message);
        self.to_other_nodes(&msg.company, &msg.room, None, &frame);
        let Some(room) = self.companies.get(&msg.company).and_then(|r| r.rooms.get(&msg.room))
        else {
            return 0;
        };
        let mut slow = Vec::new();
        let delivered = fan_out(room.connections(), &frame, &mut slow);
        self.evict(&msg.company, slow);
        delivered
    }
}

/// The rooms of each of a company's connections (for connection listings).
#[derive(Message)]
#[rtype(result = "HashMap<ConnId, Vec<RoomName>>")]
pub struct RoomsByConnection {
    pub company: CompanyId,
    /// Only this connection, or all of the company's when `None`.
    pub conn: Option<ConnId>,
}

impl Handler<RoomsByConnection> for RoomHub {
    type Result = MessageResult<RoomsByConnection>;

    fn handle(&mut self, msg: RoomsByConnection, _: &mut Context<Self>) -> Self::Result {
        let Some(rooms) = self.companies.get(&msg.company) else {
            return MessageResult(HashMap::new());
        };
        let mut result: HashMap<ConnId, Vec<RoomName>> = match msg.conn {
            Some(conn) => rooms
                .memberships
                .get_key_value(&conn)
                .map(|(c, r)| (*c, r.clone()))
                .into_iter()
                .collect(),
            None => rooms.memberships.clone(),
        };
        for list in result.values_mut() {
            list.sort();
        }
        MessageResult(result)
    }
}

impl Handler<PresenceEvent> for RoomHub {
    type Result = ();

    fn handle(&mut self, msg: PresenceEvent, _: &mut Context<Self>) {
        if let PresenceEvent::ConnectionClosed { company, conn } = msg {
            self.remove_connections(&company, vec![(conn, None)]);
        }
    }
}

impl Handler<Incoming> for RoomHub {
    type Result = ();

    /// From another node: a room's message for its members here, a member who came or went
    /// there, or a dead node whose members left every room.
    fn handle(&mut self, msg: Incoming, _: &mut Context<Self>) {
        let mut slow = Vec::new();
        let company = match msg.body {
            Body::Deliver { company, audience: Audience::Room { room, except_conn } } => {
                let Some(frame) = msg.frame else { return };
                let Some(room) = self.companies.get(&company).and_then(|r| r.rooms.get(&room))
                else {
                    return;
                };
                fan_out(
                    room.connections().filter(|(_, h)| Some(h.id) != except_conn),
                    &frame,
                    &mut slow,
                );
                company
            }
            Body::RoomMember { company, room, user, joined } => {
                let was = self.is_member(&company, &room, &user.id);
                self.remote.apply(&msg.from, &company, &room, user.clone(), joined);
                if was != self.is_member(&company, &room, &user.id) {
                    self.announce_here(&company, &room, &user, joined, &mut slow);
                }
                company
            }
            Body::NodeGone { node } => {
                for (company, room, user) in self.remote.drop_node(&node) {
                    if !self.is_member(&company, &room, &user.id) {
                        self.announce_here(&company, &room, &user, false, &mut slow);
                        self.evict(&company, std::mem::take(&mut slow));
                    }
                }
                return;
            }
            _ => return,
        };
        self.evict(&company, slow);
    }
}

impl RoomHub {
    /// Whether `user_id` is in the room on this node or another.
    fn is_member(&self, company: &CompanyId, room: &RoomName, user_id: &UserId) -> bool {
        let here = self.companies.get(company).and_then(|r| r.rooms.get(room));
        here.is_some_and(|r| r.has_user(user_id)) || self.remote.has(company, room, user_id)
    }
}
