//! `RoomHub`: room membership per company and fan-out inside a room.
//!
//! The hub answers the requesting connection itself (so a `room_joined` always arrives before
//! that room's first message) and tells the others. Rooms are keyed by company first, so a
//! room name from a client can only ever name a room of the caller's company. Join and leave
//! notices are per user (a second tab joining the same room is not news to the others). The
//! automatic `agents` room holds every agent and admin connection; its joins and leaves are
//! silent, since `presence_changed` already tells them.
//!
//! Mailbox:
//!
//! | message | sent by | answer |
//! | --- | --- | --- |
//! | [`JoinRoom`] | a session (`join_room`, and the automatic `agents` join) | `room_joined`; `user_joined` to the others |
//! | [`LeaveRoom`] | a session (`leave_room`) | `room_left` or `not_a_member`; `user_left` to the others |
//! | [`Publish`] | a session (`publish`) | `room_message` to the others; `published` with a `ref` |
//! | [`PublishToRoom`] | `POST /api/v1/publish` | connections reached |
//! | [`RoomsByConnection`] | `get_connection_info`, `GET /api/v1/ws/clients` | rooms per connection |
//! | [`PresenceEvent`] | the PresenceHub | — (`ConnectionClosed` leaves every room at once) |

use std::collections::HashMap;

use actix::prelude::*;
use serde_json::Value;

use super::connection::{ConnectionHandle, ReplyTo, SlowConsumer, fan_out};
use super::presence::{EvictSlowConsumer, PresenceEvent, PresenceHub};
use crate::error::ErrorCode;
use crate::ids::{CompanyId, ConnId, RoomName, UserId};
use crate::protocol::{ServerMessage, encode};
use crate::user::UserRef;

/// The room actor. See the module docs.
pub struct RoomHub {
    companies: HashMap<CompanyId, CompanyRooms>,
    presence: Addr<PresenceHub>,
    max_rooms_per_connection: usize,
}

#[derive(Default)]
struct CompanyRooms {
    rooms: HashMap<RoomName, Room>,
    /// Reverse index: the rooms each connection is in, to leave them all at once.
    memberships: HashMap<ConnId, Vec<RoomName>>,
}

#[derive(Default)]
struct Room {
    members: HashMap<ConnId, (UserId, ConnectionHandle)>,
    /// Each member user and how many of their connections are in the room.
    users: HashMap<UserId, (UserRef, usize)>,
}

impl Room {
    fn member_refs(&self) -> Vec<&UserRef> {
        let mut members: Vec<&UserRef> = self.users.values().map(|(u, _)| u).collect();
        members.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        members
    }

    /// Everyone in the room but `except`.
    fn others(&self, except: ConnId) -> impl Iterator<Item = (&UserId, &ConnectionHandle)> {
        self.members.iter().filter(move |(c, _)| **c != except).map(|(_, (u, h))| (u, h))
    }
}

impl RoomHub {
    pub fn new(presence: Addr<PresenceHub>, max_rooms_per_connection: usize) -> Self {
        Self { companies: HashMap::new(), presence, max_rooms_per_connection }
    }

    /// Takes a connection out of one room; returns the user who left the room entirely, if
    /// this was their last connection in it.
    fn leave(rooms: &mut CompanyRooms, room_name: &RoomName, conn: ConnId) -> Option<UserRef> {
        let room = rooms.rooms.get_mut(room_name)?;
        let (user_id, _) = room.members.remove(&conn)?;
        if let Some(list) = rooms.memberships.get_mut(&conn) {
            list.retain(|r| r != room_name);
            if list.is_empty() {
                rooms.memberships.remove(&conn);
            }
        }
        let remaining = room.users.get_mut(&user_id).map(|(_, n)| {
            *n -= 1;
            *n
        });
        let left =
            if remaining == Some(0) { room.users.remove(&user_id).map(|(u, _)| u) } else { None };
        if room.members.is_empty() {
            rooms.rooms.remove(room_name);
        }
        left
    }

    /// Tells a room that `user` left, unless the room is silent; returns the slow consumers.
    fn announce_left(
        rooms: &CompanyRooms,
        room_name: &RoomName,
        user: &UserRef,
        slow: &mut Vec<SlowConsumer>,
    ) {
        if room_name.is_agents() {
            return;
        }
        if let Some(room) = rooms.rooms.get(room_name) {
            let frame = encode(&ServerMessage::UserLeft { room: room_name, user });
            fan_out(room.members.values().map(|(u, h)| (u, h)), &frame, slow);
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
                self.presence.do_send(EvictSlowConsumer {
                    company: company.clone(),
                    user_id,
                    conn,
                });
            }
            let Some(rooms) = self.companies.get_mut(company) else {
                continue;
            };
            let Some(joined) = rooms.memberships.remove(&conn) else {
                continue;
            };
            let mut slow = Vec::new();
            for room_name in joined {
                if let Some(user) = Self::leave(rooms, &room_name, conn) {
                    Self::announce_left(rooms, &room_name, &user, &mut slow);
                }
            }
            pending.extend(slow.into_iter().map(|s| (s.conn, Some(s.user_id))));
            if rooms.rooms.is_empty() && rooms.memberships.is_empty() {
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
}

impl Actor for RoomHub {
    type Context = Context<Self>;
}

/// Joins a connection to a room and answers `room_joined`; others hear `user_joined` when this
/// is the user's first connection in the room. Access rules are checked by the caller.
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
        let rooms = self.companies.entry(msg.company.clone()).or_default();
        let joined = rooms.memberships.entry(conn).or_default();
        let already_member = joined.contains(&msg.room);
        let mut slow = Vec::new();
        if !already_member && joined.len() >= self.max_rooms_per_connection {
            let text =
                format!("a connection may be in at most {} rooms", self.max_rooms_per_connection);
            msg.reply_to.error(ErrorCode::Forbidden, &text, &mut slow);
            if joined.is_empty() {
                rooms.memberships.remove(&conn);
            }
            self.evict(&msg.company, slow);
            return;
        }
        let room = rooms.rooms.entry(msg.room.clone()).or_default();
        let mut first_of_user = false;
        if !already_member {
            joined.push(msg.room.clone());
            room.members.insert(conn, (msg.user.id.clone(), msg.reply_to.conn.clone()));
            let count = room.users.entry(msg.user.id.clone()).or_insert_with(|| {
                first_of_user = true;
                (msg.user.clone(), 0)
            });
            count.1 += 1;
        }
        if first_of_user && !msg.room.is_agents() {
            let frame = encode(&ServerMessage::UserJoined { room: &msg.room, user: &msg.user });
            fan_out(room.others(conn), &frame, &mut slow);
        }
        if !msg.automatic {
            let joined = ServerMessage::RoomJoined { room: &msg.room, members: room.member_refs() };
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
        let rooms = self.companies.entry(msg.company.clone()).or_default();
        let is_member = rooms.memberships.get(&conn).is_some_and(|r| r.contains(&msg.room));
        if is_member {
            if let Some(user) = Self::leave(rooms, &msg.room, conn) {
                Self::announce_left(rooms, &msg.room, &user, &mut slow);
            }
            msg.reply_to.reply(&ServerMessage::RoomLeft { room: &msg.room }, &mut slow);
        } else {
            let text = format!("not a member of room '{}'", msg.room);
            msg.reply_to.error(ErrorCode::NotAMember, &text, &mut slow);
        }
        if rooms.rooms.is_empty() && rooms.memberships.is_empty() {
            self.companies.remove(&msg.company);
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
        let room = self
            .companies
            .get(&msg.company)
            .and_then(|r| r.rooms.get(&msg.room))
            .filter(|room| room.members.contains_key(&conn));
        match room {
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
                let delivered = fan_out(room.others(conn), &encode(&message), &mut slow);
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
        let Some(room) = self.companies.get(&msg.company).and_then(|r| r.rooms.get(&msg.room))
        else {
            return 0;
        };
        let message =
            ServerMessage::RoomMessage { room: &msg.room, from: &msg.from, data: &msg.data };
        let mut slow = Vec::new();
        let delivered =
            fan_out(room.members.values().map(|(u, h)| (u, h)), &encode(&message), &mut slow);
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
