//! Storage: the SQLite pool (pragmas set on every pooled connection), the embedded migrations,
//! and [`run`], the one way async code touches diesel. Query functions live one file per table
//! and take `&mut DbConn`; they never run on an actor's thread.

pub mod agents;
pub mod calendar;
pub mod calls;
pub mod chat;
pub mod models;
pub mod schema;
pub mod server_settings;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::r2d2::event::CheckinEvent;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, HandleEvent, NopEventHandler, Pool};
use diesel::{Connection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::{ConfigError, DatabaseUrl, Synchronous};
use crate::error::AppError;
use crate::metrics::Metrics;

pub type DbConn = SqliteConnection;
pub type DbPool = Pool<ConnectionManager<DbConn>>;

/// Migrations compiled into the binary, applied at start.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Connections in the pool: writes serialise on SQLite's lock anyway, reads run in parallel.
const POOL_SIZE: u32 = 8;

/// Set on every connection, in this order: the busy timeout first, so that switching to WAL
/// (which needs the lock after a crash left a journal to recover) waits instead of failing with
/// `database is locked`; WAL lets readers run beside the writer; foreign keys are off by
/// default in SQLite; `synchronous` comes from `--sqlite-synchronous`.
fn pragmas(synchronous: Synchronous) -> String {
    let synchronous = match synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    format!(
        "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
         PRAGMA synchronous = {synchronous};"
    )
}

#[derive(Debug)]
struct SqlitePragmas(String);

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&self.0).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens the database (creating the file) and builds the pool. Fails fast with an error that
/// names `--database-url` when the file cannot be opened.
pub fn connect(url: &DatabaseUrl, synchronous: Synchronous) -> Result<DbPool, ConfigError> {
    connect_timed(url, synchronous, None)
}

/// Records how long each piece of work holds a connection (the checkout time r2d2 reports when
/// the connection comes back): the `db_query_seconds` histogram.
struct QueryTimer(Arc<Metrics>);

impl std::fmt::Debug for QueryTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueryTimer")
    }
}

impl HandleEvent for QueryTimer {
    fn handle_checkin(&self, event: CheckinEvent) {
        self.0.db_query(event.duration());
    }
}

/// [`connect`], timing every use of a connection into `metrics` when given.
pub fn connect_timed(
    url: &DatabaseUrl,
    synchronous: Synchronous,
    metrics: Option<Arc<Metrics>>,
) -> Result<DbPool, ConfigError> {
    let pragmas = pragmas(synchronous);
    let path = url.path.to_string_lossy().into_owned();
    let config_error = |reason: String| ConfigError::new("--database-url", reason);
    // One direct connection first: r2d2 would otherwise retry until its timeout before saying
    // anything about a missing directory or an unreadable file.
    let mut probe =
        DbConn::establish(&path).map_err(|e| config_error(format!("cannot open {url}: {e}")))?;
    probe.batch_execute(&pragmas).map_err(|e| config_error(format!("cannot use {url}: {e}")))?;
    drop(probe);
    Pool::builder()
        .max_size(POOL_SIZE)
        .connection_timeout(Duration::from_secs(5))
        .connection_customizer(Box::new(SqlitePragmas(pragmas)))
        .event_handler(match metrics {
            Some(metrics) => Box::new(QueryTimer(metrics)),
            None => Box::new(NopEventHandler),
        })
        .build(ConnectionManager::new(path))
        .map_err(|e| config_error(format!("cannot open {url}: {e}")))
}

/// Applies pending migrations and returns the versions it applied.
pub fn migrate(pool: &DbPool) -> Result<Vec<String>, DbError> {
    let mut conn = pool.get()?;
    let applied = conn.run_pending_migrations(MIGRATIONS).map_err(DbError::Migration)?;
    Ok(applied.iter().map(ToString::to_string).collect())
}

/// A storage failure. Clients only ever see 503 `storage_unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database query: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database migration: {0}")]
    Migration(Box<dyn std::error::Error + Send + Sync>),
    #[error("database task was cancelled")]
    Canceled,
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        AppError::storage(e)
    }
}

/// Runs blocking diesel work on actix's blocking pool; the pool checkout happens there too.
pub async fn run<T, F>(pool: &DbPool, work: F) -> Result<T, DbError>
where
    F: FnOnce(&mut DbConn) -> Result<T, diesel::result::Error> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    web::block(move || {
        let mut conn = pool.get()?;
        work(&mut conn).map_err(DbError::from)
    })
    .await
    .map_err(|_| DbError::Canceled)?
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::{BigInt, Text};
    use diesel::{QueryableByName, RunQueryDsl};

    use super::*;

    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = Text)]
        journal_mode: String,
    }

    #[derive(QueryableByName)]
    struct Number {
        #[diesel(sql_type = BigInt)]
        value: i64,
    }

    fn number(conn: &mut DbConn, sql: &str) -> i64 {
        diesel::sql_query(sql).get_result::<Number>(conn).unwrap().value
    }

    #[test]
    fn every_pooled_connection_gets_the_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let url: DatabaseUrl = format!("sqlite://{}/t.db", dir.path().display()).parse().unwrap();
        let pool = connect(&url, Synchronous::Full).unwrap();
        let mut conns: Vec<_> = (0..POOL_SIZE).map(|_| pool.get().unwrap()).collect();
        for conn in &mut conns {
            let mode = diesel::sql_query("PRAGMA journal_mode").get_result::<Mode>(&mut **conn);
            assert_eq!(mode.unwrap().journal_mode, "wal");
            assert_eq!(number(conn, "SELECT foreign_keys AS value FROM pragma_foreign_keys"), 1);
            assert_eq!(number(conn, "SELECT timeout AS value FROM pragma_busy_timeout"), 5000);
            // FULL = 2: an acknowledged write survives power loss.
            assert_eq!(number(conn, "SELECT synchronous AS value FROM pragma_synchronous"), 2);
        }
    }

    #[test]
    fn migrations_apply_once() {
        let dir = tempfile::tempdir().unwrap();
        let url: DatabaseUrl = format!("sqlite://{}/t.db", dir.path().display()).parse().unwrap();
        let pool = connect(&url, Synchronous::Full).unwrap();
        assert!(!migrate(&pool).unwrap().is_empty());
        assert!(migrate(&pool).unwrap().is_empty());
    }
}
