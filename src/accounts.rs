//! Account state the running hub follows from the database: disabled accounts
//! (`switchboard user disable`, run from any shell against the same database). Every second the
//! set of disabled accounts is read again; the token service refuses their tokens from then on,
//! and the connections of accounts disabled since the last look are closed with 4001.

use std::collections::HashSet;
use std::time::Duration;

use actix::Addr;

use crate::auth::{AccountKey, DisabledUsers};
use crate::db::{self, DbPool};
use crate::hubs::presence::{CloseUser, PresenceHub};
use crate::ids::{CompanyId, UserId};
use crate::protocol::CloseCode;

/// How often the disabled accounts are read.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Starts following disabled accounts (on the current arbiter, until the system stops).
pub fn watch_disabled(pool: DbPool, disabled: DisabledUsers, presence: Addr<PresenceHub>) {
    actix_rt::spawn(async move {
        let mut tick = actix_rt::time::interval(WATCH_EVERY);
        loop {
            tick.tick().await;
            let rows = match db::run(&pool, db::users::disabled).await {
                Ok(rows) => rows,
                Err(e) => {
                    log::warn!("cannot read disabled accounts: {e}");
                    continue;
                }
            };
            let now: HashSet<AccountKey> = rows
                .iter()
                .filter_map(|(company, id)| Some((CompanyId::parse(company)?, UserId::parse(id)?)))
                .collect();
            for (company, user_id) in disabled.replace(now) {
                log::info!("account {user_id} of {company} is disabled: closing its connections");
                let (code, reason) = (CloseCode::Unauthorized, "account disabled");
                presence.do_send(CloseUser { company, user_id, code, reason });
            }
        }
    });
}
