//! One room's membership, as plain data kept by the `RoomHub`: its connections, its member
//! users in listing order, and — in a big room — the joins and leaves waiting for the next
//! `room_members_changed` (`docs/protocol.md` §4).
//!
//! Every operation costs O(log n) or a page of at most [`PAGE`] users, never the whole room, so
//! N joins cost N log N rather than N².

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::connection::ConnectionHandle;
use crate::ids::{ConnId, UserId};
use crate::user::UserRef;

/// Members listed in a `room_joined`, and per page of `room_members`.
pub const PAGE: usize = 100;

/// Where a page of members starts: after this (name, id).
pub type ListKey = (Arc<str>, UserId);

#[derive(Default)]
pub struct Room {
    /// Every connection in the room.
    members: HashMap<ConnId, (UserId, ConnectionHandle)>,
    /// Each member user and how many of their connections are in the room.
    users: HashMap<UserId, (UserRef, usize)>,
    /// The member users sorted by name, then id.
    order: BTreeSet<ListKey>,
    /// Joins and leaves not yet told (big rooms only).
    changes: MemberChanges,
}

/// Users who joined or left a big room since its last `room_members_changed`; a user who
/// joined and left within one batch (or left and came back) appears in neither list.
#[derive(Default)]
pub struct MemberChanges {
    pub joined: HashMap<UserId, UserRef>,
    pub left: HashMap<UserId, UserRef>,
}

impl MemberChanges {
    pub fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.left.is_empty()
    }
}

impl Room {
    /// Member users (not connections).
    pub fn member_count(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn has_user(&self, user_id: &UserId) -> bool {
        self.users.contains_key(user_id)
    }

    pub fn has_connection(&self, conn: ConnId) -> bool {
        self.members.contains_key(&conn)
    }

    /// Adds a connection; true when it is the user's first in the room.
    pub fn add(&mut self, conn: ConnId, user: &UserRef, handle: ConnectionHandle) -> bool {
        self.members.insert(conn, (user.id.clone(), handle));
        let entry = self.users.entry(user.id.clone()).or_insert_with(|| (user.clone(), 0));
        entry.1 += 1;
        let first = entry.1 == 1;
        if first {
            self.order.insert((Arc::clone(&user.name), user.id.clone()));
        }
        first
    }

    /// Removes a connection; the user, when it was their last connection in the room.
    pub fn remove(&mut self, conn: ConnId) -> Option<UserRef> {
        let (user_id, _) = self.members.remove(&conn)?;
        let (_, count) = self.users.get_mut(&user_id)?;
        *count -= 1;
        if *count > 0 {
            return None;
        }
        let (user, _) = self.users.remove(&user_id)?;
        self.order.remove(&(Arc::clone(&user.name), user.id.clone()));
        Some(user)
    }

    /// Every connection of the room.
    pub fn connections(&self) -> impl Iterator<Item = (&UserId, &ConnectionHandle)> {
        self.members.values().map(|(u, h)| (u, h))
    }

    /// Everyone in the room but `except`.
    pub fn others(&self, except: ConnId) -> impl Iterator<Item = (&UserId, &ConnectionHandle)> {
        self.members.iter().filter(move |(c, _)| **c != except).map(|(_, (u, h))| (u, h))
    }

    /// A page of member users in listing order, after `cursor` (see [`decode_cursor`]); and
    /// the cursor of the next page when there is one.
    pub fn page(&self, cursor: Option<&ListKey>) -> (Vec<&UserRef>, Option<String>) {
        let after = cursor.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let mut keys = self.order.range((after, std::ops::Bound::Unbounded));
        let page: Vec<&ListKey> = keys.by_ref().take(PAGE).collect();
        let next = match (keys.next(), page.last()) {
            (Some(_), Some(last)) => Some(encode_cursor(last)),
            _ => None,
        };
        let users = page.into_iter().filter_map(|(_, id)| self.users.get(id).map(|(u, _)| u));
        (users.collect(), next)
    }

    /// Records a join or leave for the next batch.
    pub fn record(&mut self, user: &UserRef, joined: bool) {
        let (add, cancel) = if joined {
            (&mut self.changes.joined, &mut self.changes.left)
        } else {
            (&mut self.changes.left, &mut self.changes.joined)
        };
        if cancel.remove(&user.id).is_none() {
            add.insert(user.id.clone(), user.clone());
        }
    }

    /// The changes recorded since the last call.
    pub fn take_changes(&mut self) -> MemberChanges {
        std::mem::take(&mut self.changes)
    }
}

/// The opaque `next_cursor`: the last listed (name, id), base64url of a JSON pair.
fn encode_cursor((name, id): &ListKey) -> String {
    let pair = serde_json::json!([&**name, id.as_str()]).to_string();
    URL_SAFE_NO_PAD.encode(pair)
}

/// A `cursor` from a client; `None` when it is not one of ours.
pub fn decode_cursor(cursor: &str) -> Option<ListKey> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let (name, id): (String, String) = serde_json::from_slice(&bytes).ok()?;
    Some((Arc::from(name), UserId::parse(&id)?))
}
