//! Disabled accounts (`switchboard user disable`): kept in the database, mirrored here so that
//! verifying a token stays a memory lookup. The running hub refreshes the mirror every second
//! (see `crate::accounts`) and closes the connections of accounts that were just disabled.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use crate::ids::{CompanyId, UserId};

/// One disabled account.
pub type AccountKey = (CompanyId, UserId);

/// The set of disabled accounts; cloning shares it.
#[derive(Clone, Default)]
pub struct DisabledUsers(Arc<RwLock<HashSet<AccountKey>>>);

impl DisabledUsers {
    pub fn contains(&self, company: &CompanyId, user: &UserId) -> bool {
        let set = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        // The set is small, and empty on most hubs: skip building a key for the common case.
        !set.is_empty() && set.contains(&(company.clone(), user.clone()))
    }

    /// Replaces the set; returns the accounts that were not disabled before.
    pub fn replace(&self, now: HashSet<AccountKey>) -> Vec<AccountKey> {
        let mut set = self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let newly: Vec<AccountKey> = now.difference(&set).cloned().collect();
        *set = now;
        newly
    }
}
