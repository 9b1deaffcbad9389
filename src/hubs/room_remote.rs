//! Who is in which room on the other nodes of a cluster, as their `RoomMember` envelopes told
//! (`crate::cluster`): enough for each node to tell its own members when a user joined a room
//! on any node, or left it on every node — and, when a node dies, that its members left.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ids::{CompanyId, RoomName, UserId};
use crate::user::UserRef;

type Members = HashMap<Arc<str>, HashMap<UserId, UserRef>>;

#[derive(Default)]
pub(super) struct RemoteMembers {
    /// Per room, per node, the users in it there.
    rooms: HashMap<(CompanyId, RoomName), Members>,
}

impl RemoteMembers {
    /// Whether `user_id` is in the room on another node.
    pub fn has(&self, company: &CompanyId, room: &RoomName, user_id: &UserId) -> bool {
        self.rooms
            .get(&(company.clone(), room.clone()))
            .is_some_and(|nodes| nodes.values().any(|users| users.contains_key(user_id)))
    }

    /// `node` says `user` joined the room there (their first connection) or left it.
    pub fn apply(
        &mut self,
        node: &Arc<str>,
        company: &CompanyId,
        room: &RoomName,
        user: UserRef,
        joined: bool,
    ) {
        let key = (company.clone(), room.clone());
        let nodes = self.rooms.entry(key.clone()).or_default();
        let users = nodes.entry(node.clone()).or_default();
        if joined {
            users.insert(user.id.clone(), user);
        } else {
            users.remove(&user.id);
        }
        if users.is_empty() {
            nodes.remove(node);
        }
        if nodes.is_empty() {
            self.rooms.remove(&key);
        }
    }

    /// Forgets a dead node; answers the users it had in rooms who are in them on no other
    /// node (this node's own members are for the caller to check).
    pub fn drop_node(&mut self, node: &str) -> Vec<(CompanyId, RoomName, UserRef)> {
        let mut gone = Vec::new();
        for ((company, room), nodes) in &mut self.rooms {
            let Some(users) = nodes.remove(node) else { continue };
            for (user_id, user) in users {
                if !nodes.values().any(|others| others.contains_key(&user_id)) {
                    gone.push((company.clone(), room.clone(), user));
                }
            }
        }
        self.rooms.retain(|_, nodes| !nodes.is_empty());
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::Role;

    #[test]
    fn a_dead_nodes_members_leave_unless_another_node_holds_them() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let (acme, sales) = (CompanyId::parse("acme").unwrap(), RoomName::parse("sales").unwrap());
        let user = |id: &str| UserRef {
            id: UserId::parse(id).unwrap(),
            name: Arc::from(id),
            role: Role::Agent,
        };
        let mut members = RemoteMembers::default();
        members.apply(&a, &acme, &sales, user("ann"), true);
        members.apply(&a, &acme, &sales, user("bob"), true);
        members.apply(&b, &acme, &sales, user("bob"), true);
        assert!(members.has(&acme, &sales, &user("ann").id));
        let gone = members.drop_node("a");
        assert_eq!(gone, vec![(acme.clone(), sales.clone(), user("ann"))]);
        assert!(members.has(&acme, &sales, &user("bob").id), "still in the room on b");
        members.apply(&b, &acme, &sales, user("bob"), false);
        assert!(!members.has(&acme, &sales, &user("bob").id));
    }
}
