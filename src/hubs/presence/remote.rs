//! The users connected to the other nodes of a cluster, as their presence envelopes told
//! (`crate::cluster`): per user, how many connections each node holds and the status they chose.
//! Each node keeps its own copy and decides from it, for its own connections, whether a user
//! came or went: a user with tabs on two nodes is online once, everywhere.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ids::{CompanyId, UserId};
use crate::protocol::AgentStatus;
use crate::user::UserRef;

/// One user as the other nodes hold them.
pub(super) struct RemoteUser {
    pub user: UserRef,
    /// Per node: connections there, and the status chosen (agents and admins).
    nodes: HashMap<Arc<str>, (usize, Option<AgentStatus>)>,
}

impl RemoteUser {
    pub fn connections(&self) -> usize {
        self.nodes.values().map(|(conns, _)| conns).sum()
    }

    /// The status chosen, as the node that last told it (they agree: the choice is stored).
    pub fn chosen(&self) -> Option<AgentStatus> {
        self.nodes.values().find_map(|(_, chosen)| *chosen)
    }
}

#[derive(Default)]
pub(super) struct RemoteUsers {
    companies: HashMap<CompanyId, HashMap<UserId, RemoteUser>>,
}

impl RemoteUsers {
    pub fn get(&self, company: &CompanyId, user_id: &UserId) -> Option<&RemoteUser> {
        self.companies.get(company)?.get(user_id)
    }

    pub fn is_online(&self, company: &CompanyId, user_id: &UserId) -> bool {
        self.get(company, user_id).is_some()
    }

    pub fn company(&self, company: &CompanyId) -> impl Iterator<Item = &RemoteUser> {
        self.companies.get(company).into_iter().flat_map(HashMap::values)
    }

    pub fn all(&self) -> impl Iterator<Item = (&CompanyId, &UserId, &RemoteUser)> {
        self.companies.iter().flat_map(|(c, users)| users.iter().map(move |(u, r)| (c, u, r)))
    }

    /// Sets what `node` holds of `user` (`conns` 0: nothing). Answers whether the user was
    /// on another node before, and is after.
    pub fn apply(
        &mut self,
        node: &Arc<str>,
        company: &CompanyId,
        user: UserRef,
        chosen: Option<AgentStatus>,
        conns: usize,
    ) -> (bool, bool) {
        let users = self.companies.entry(company.clone()).or_default();
        let before = users.contains_key(&user.id);
        let user_id = user.id.clone();
        if conns > 0 {
            let entry = users
                .entry(user_id.clone())
                .or_insert_with(|| RemoteUser { user, nodes: HashMap::new() });
            entry.nodes.insert(node.clone(), (conns, chosen));
        } else if let Some(entry) = users.get_mut(&user_id) {
            entry.nodes.remove(node);
            if entry.nodes.is_empty() {
                users.remove(&user_id);
            }
        }
        let after = users.contains_key(&user_id);
        if users.is_empty() {
            self.companies.remove(company);
        }
        (before, after)
    }

    /// Forgets everything `node` held; answers the users it held who are on no other node.
    pub fn drop_node(&mut self, node: &str) -> Vec<(CompanyId, UserRef)> {
        let mut gone = Vec::new();
        for (company, users) in &mut self.companies {
            users.retain(|_, entry| {
                entry.nodes.remove(node);
                let keep = !entry.nodes.is_empty();
                if !keep {
                    gone.push((company.clone(), entry.user.clone()));
                }
                keep
            });
        }
        self.companies.retain(|_, users| !users.is_empty());
        gone
    }

    /// Every (node, company, user) held.
    pub fn entries(&self) -> Vec<(Arc<str>, CompanyId, UserRef)> {
        self.all()
            .flat_map(|(c, _, r)| r.nodes.keys().map(|n| (n.clone(), c.clone(), r.user.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::Role;

    fn agent(id: &str) -> UserRef {
        UserRef { id: UserId::parse(id).unwrap(), name: Arc::from(id), role: Role::Agent }
    }

    #[test]
    fn a_user_is_online_while_any_node_holds_them() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let acme = CompanyId::parse("acme").unwrap();
        let mut remote = RemoteUsers::default();
        assert_eq!(remote.apply(&a, &acme, agent("u"), None, 1), (false, true));
        assert_eq!(remote.apply(&b, &acme, agent("u"), Some(AgentStatus::Away), 2), (true, true));
        assert_eq!(remote.get(&acme, &agent("u").id).unwrap().connections(), 3);
        assert_eq!(remote.apply(&a, &acme, agent("u"), None, 0), (true, true));
        assert_eq!(remote.get(&acme, &agent("u").id).unwrap().chosen(), Some(AgentStatus::Away));
        remote.apply(&a, &acme, agent("v"), None, 1);
        let gone = remote.drop_node("b");
        assert_eq!(gone.len(), 1, "u was only on b: {}", gone.len());
        assert!(remote.is_online(&acme, &agent("v").id));
        assert_eq!(remote.entries(), vec![(a, acme, agent("v"))]);
    }
}
