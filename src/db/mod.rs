//! Storage: one pool of SQLite or PostgreSQL connections, the embedded migrations of each, and
//! [`run`], the one way async code touches diesel. Query functions live one file per table and
//! take `&mut DbConn`; they never run on an actor's thread.
//!
//! One source, two backends: a query is written once inside [`on_backend!`], which expands it
//! for each connection type, so each expansion is type-checked by diesel for its own backend
//! (PostgreSQL's and SQLite's `RETURNING`, `ON CONFLICT` and types included). Writes that must
//! be atomic go through [`write`]: `BEGIN IMMEDIATE` on SQLite (the one writer at a time), a
//! plain transaction on PostgreSQL, where the conditional updates and row locks inside decide.

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
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::r2d2::event::CheckinEvent;
use diesel::r2d2::{
    ConnectionManager, CustomizeConnection, HandleEvent, NopEventHandler, Pool, PooledConnection,
};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::{ConfigError, DatabaseUrl, Synchronous};
use crate::error::AppError;
use crate::metrics::Metrics;

/// A pooled connection to whichever database `--database-url` names.
pub enum DbConn {
    Sqlite(PooledConnection<ConnectionManager<SqliteConnection>>),
    Postgres(PooledConnection<ConnectionManager<PgConnection>>),
}

/// The pool of one of the two backends.
#[derive(Clone)]
pub enum DbPool {
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    Postgres(Pool<ConnectionManager<PgConnection>>),
}

impl DbPool {
    pub fn get(&self) -> Result<DbConn, diesel::r2d2::PoolError> {
        Ok(match self {
            DbPool::Sqlite(pool) => DbConn::Sqlite(pool.get()?),
            DbPool::Postgres(pool) => DbConn::Postgres(pool.get()?),
        })
    }
}

/// Raw SQL on either backend (scripts, tests): the text must suit the backend it runs on.
impl SimpleConnection for DbConn {
    fn batch_execute(&mut self, query: &str) -> diesel::QueryResult<()> {
        match self {
            DbConn::Sqlite(c) => c.batch_execute(query),
            DbConn::Postgres(c) => c.batch_execute(query),
        }
    }
}

/// Runs `$body` with `$c` bound to the backend's own connection (`&mut SqliteConnection` or
/// `&mut PgConnection`): the body is compiled once for each backend.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($c) => {
                let $c: &mut diesel::SqliteConnection = &mut *$c;
                $body
            }
            $crate::db::DbConn::Postgres($c) => {
                let $c: &mut diesel::PgConnection = &mut *$c;
                $body
            }
        }
    };
}

diesel::define_sql_function! {
    /// `COALESCE(value, fallback)` over nullable text: the first that is not null.
    #[sql_name = "coalesce"]
    fn coalesce_text(
        value: diesel::sql_types::Nullable<diesel::sql_types::Text>,
        fallback: diesel::sql_types::Nullable<diesel::sql_types::Text>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

diesel::define_sql_function! {
    /// `COALESCE(value, fallback)` over nullable integers.
    #[sql_name = "coalesce"]
    fn coalesce_big(
        value: diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
        fallback: diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::BigInt>;
}

/// Runs `work` in a write transaction: committed when it succeeds, rolled back when it fails.
pub fn write<T, E, F>(conn: &mut DbConn, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConn::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(&mut **c, "BEGIN IMMEDIATE")?
        }
        DbConn::Postgres(c) => AnsiTransactionManager::begin_transaction_sql(&mut **c, "BEGIN")?,
    }
    let done = work(conn);
    let ended = match (&done, &mut *conn) {
        (Ok(_), DbConn::Sqlite(c)) => AnsiTransactionManager::commit_transaction(&mut **c),
        (Ok(_), DbConn::Postgres(c)) => AnsiTransactionManager::commit_transaction(&mut **c),
        (Err(_), DbConn::Sqlite(c)) => AnsiTransactionManager::rollback_transaction(&mut **c),
        (Err(_), DbConn::Postgres(c)) => AnsiTransactionManager::rollback_transaction(&mut **c),
    };
    let value = done?;
    ended?;
    Ok(value)
}

/// Migrations compiled into the binary, applied at start: the same schema, in each backend's
/// dialect.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Connections in the pool: writes serialise on SQLite's lock anyway, reads run in parallel.
const POOL_SIZE: u32 = 8;
/// Per node on PostgreSQL, where writers do run in parallel.
const POSTGRES_POOL_SIZE: u32 = 16;

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

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
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
    let events: Box<dyn HandleEvent> = match metrics {
        Some(metrics) => Box::new(QueryTimer(metrics)),
        None => Box::new(NopEventHandler),
    };
    let config_error = |reason: String| ConfigError::new("--database-url", reason);
    match url {
        DatabaseUrl::Sqlite { path } => {
            let pragmas = pragmas(synchronous);
            let path = path.to_string_lossy().into_owned();
            // One direct connection first: r2d2 would otherwise retry until its timeout before
            // saying anything about a missing directory or an unreadable file.
            let mut probe = SqliteConnection::establish(&path)
                .map_err(|e| config_error(format!("cannot open {url}: {e}")))?;
            probe
                .batch_execute(&pragmas)
                .map_err(|e| config_error(format!("cannot use {url}: {e}")))?;
            drop(probe);
            Pool::builder()
                .max_size(POOL_SIZE)
                .connection_timeout(Duration::from_secs(5))
                .connection_customizer(Box::new(SqlitePragmas(pragmas)))
                .event_handler(events)
                .build(ConnectionManager::new(path))
                .map(DbPool::Sqlite)
                .map_err(|e| config_error(format!("cannot open {url}: {e}")))
        }
        DatabaseUrl::Postgres { url: secret } => {
            // The same fail-fast probe; the error names the URL without its password.
            PgConnection::establish(secret.expose())
                .map_err(|e| config_error(format!("cannot connect to {url}: {e}")))?;
            Pool::builder()
                .max_size(POSTGRES_POOL_SIZE)
                .connection_timeout(Duration::from_secs(5))
                .event_handler(events)
                .build(ConnectionManager::new(secret.expose()))
                .map(DbPool::Postgres)
                .map_err(|e| config_error(format!("cannot connect to {url}: {e}")))
        }
    }
}

/// Applies pending migrations and returns the versions it applied.
pub fn migrate(pool: &DbPool) -> Result<Vec<String>, DbError> {
    let mut conn = pool.get()?;
    let applied = match &mut conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        DbConn::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
    }
    .map_err(DbError::Migration)?;
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

    fn number(conn: &mut SqliteConnection, sql: &str) -> i64 {
        diesel::sql_query(sql).get_result::<Number>(conn).unwrap().value
    }

    #[test]
    fn every_pooled_connection_gets_the_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let url: DatabaseUrl = format!("sqlite://{}/t.db", dir.path().display()).parse().unwrap();
        let pool = connect(&url, Synchronous::Full).unwrap();
        let mut conns: Vec<_> = (0..POOL_SIZE).map(|_| pool.get().unwrap()).collect();
        for conn in &mut conns {
            let DbConn::Sqlite(conn) = conn else { unreachable!("a sqlite:// URL") };
            let conn: &mut SqliteConnection = conn;
            let mode = diesel::sql_query("PRAGMA journal_mode").get_result::<Mode>(conn);
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
