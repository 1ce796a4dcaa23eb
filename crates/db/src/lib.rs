//! Storage for every service: one `Db` handle over SQLite or PostgreSQL with the same SQL.
//!
//! Queries are written once in the SQL both engines accept (`$1` placeholders, `ON CONFLICT`,
//! `RETURNING`, TEXT ids, BIGINT unix-millisecond times) and run through sqlx's `Any` driver.
//! The few places where the engines differ go through [`Dialect`].

mod group;
mod migrate;
pub mod params;
mod private;
mod prune;

pub use migrate::Migration;
pub use private::{private_dir, private_file};
pub use prune::{Prune, prune};
pub use sqlx;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// A row as read through the `Any` driver.
pub type Row = sqlx::any::AnyRow;

/// A write transaction. It derefs to the connection, so statements run on `&mut *tx`.
///
/// On SQLite it also holds the file's place in an in-process queue of writers: SQLite has one
/// writer per file, and a writer that finds the lock taken sleeps in SQLite's busy handler in
/// growing steps (up to 100 ms), so under load some waited seconds while others went first.
/// Queued writers instead take turns in order, with no sleeping. Writes on the hot paths
/// therefore go through `begin()` even when they are one statement: a plain statement on the
/// pool would bypass the queue, and both it and the writer it collides with could sleep.
/// Writers queued together also commit together, sharing one fsync ([`group`]).
pub struct Tx {
    inner: TxInner,
}

enum TxInner {
    Postgres(sqlx::Transaction<'static, sqlx::Any>),
    /// A turn in the file's group commit (see [`group`]).
    Sqlite(group::Member),
}

impl Tx {
    /// Commits; on SQLite returns once the commit of the writer's group is durable.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.inner {
            TxInner::Postgres(tx) => tx.commit().await,
            TxInner::Sqlite(member) => member.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self.inner {
            TxInner::Postgres(tx) => tx.rollback().await,
            TxInner::Sqlite(member) => member.rollback().await,
        }
    }
}

impl std::ops::Deref for Tx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        match &self.inner {
            TxInner::Postgres(tx) => tx,
            TxInner::Sqlite(member) => member.conn_ref(),
        }
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        match &mut self.inner {
            TxInner::Postgres(tx) => tx,
            TxInner::Sqlite(member) => member.conn(),
        }
    }
}

/// The writers' queue of one SQLite file, shared by every pool on that file.
fn writers_of(path: &Path) -> Arc<group::Writers> {
    static QUEUES: LazyLock<std::sync::Mutex<HashMap<PathBuf, Arc<group::Writers>>>> =
        LazyLock::new(Default::default);
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut queues = QUEUES.lock().unwrap_or_else(|e| e.into_inner());
    queues.entry(key).or_default().clone()
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("invalid database configuration: {0}")]
    Config(String),
    #[error("migration {version} failed: {source}")]
    Migration {
        version: &'static str,
        source: sqlx::Error,
    },
}

impl DbError {
    /// True when the statement broke a UNIQUE or PRIMARY KEY constraint (maps to CONFLICT).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlx(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }

    /// True when a CHECK constraint refused the change.
    pub fn is_check_violation(&self) -> bool {
        match self {
            DbError::Sqlx(sqlx::Error::Database(e)) => e.is_check_violation(),
            _ => false,
        }
    }
}

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// The SQL engine behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Where one service keeps its data.
#[derive(Debug, Clone)]
pub enum DbTarget {
    /// A SQLite file (created when missing).
    SqliteFile(std::path::PathBuf),
    /// A PostgreSQL URL, the schema this service owns in it and how many connections the
    /// service keeps for requests (its event pipeline keeps half as many more, at least 2).
    Postgres {
        url: String,
        schema: String,
        pool_size: u32,
    },
}

/// A pooled PostgreSQL connection idle for longer is pinged before it is handed out.
const STALE_AFTER: Duration = Duration::from_secs(1);

/// How SQLite commits reach the disk.
#[derive(Debug, Clone, Copy)]
enum Durability {
    /// fsync on every commit.
    Full,
    /// No fsync per commit (WAL `synchronous = NORMAL`).
    Relaxed,
}

/// A connection pool to one service's database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite only: the file's queue of writers (see [`Tx`]).
    writers: Option<Arc<group::Writers>>,
    /// SQLite only: whether this handle's commits wait for fsync.
    durable: bool,
    /// PostgreSQL only: connections kept for the event pipeline (see [`Db::pipeline`]).
    pipeline: Option<AnyPool>,
}

impl Db {
    /// Connects, creating the SQLite file or the PostgreSQL schema when missing.
    pub async fn connect(target: &DbTarget) -> Result<Db> {
        sqlx::any::install_default_drivers();
        match target {
            DbTarget::SqliteFile(path) => Self::connect_sqlite(path, Durability::Full).await,
            DbTarget::Postgres {
                url,
                schema,
                pool_size,
            } => Self::connect_postgres(url, schema, *pool_size).await,
        }
    }

    /// A second handle on a SQLite file whose commits skip the fsync (`synchronous = NORMAL`
    /// under WAL): they survive a process crash but the last ones may be lost on power loss.
    /// Only for writes whose loss is harmless, such as the event log's delivery bookkeeping
    /// (a lost ack means a redelivery, which the inbox absorbs).
    pub async fn connect_sqlite_relaxed(path: &Path) -> Result<Db> {
        sqlx::any::install_default_drivers();
        Self::connect_sqlite(path, Durability::Relaxed).await
    }

    async fn connect_sqlite(path: &Path, durability: Durability) -> Result<Db> {
        if let Some(dir) = path.parent() {
            private_dir(dir)
                .map_err(|e| DbError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        private_file(path)
            .map_err(|e| DbError::Config(format!("cannot create {}: {e}", path.display())))?;
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            // A connection to a local file cannot go stale; the default ping before each
            // acquire is a round trip to SQLite's thread, a good part of a small statement.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    // WAL lets readers run beside the one writer; FULL sync keeps every
                    // acknowledged commit across power loss; the busy timeout makes a second
                    // writer wait for the lock instead of failing.
                    let pragmas = match durability {
                        Durability::Full => {
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;"
                        }
                        Durability::Relaxed => {
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;"
                        }
                    };
                    conn.execute(pragmas).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Db {
            pool,
            dialect: Dialect::Sqlite,
            writers: Some(writers_of(path)),
            durable: matches!(durability, Durability::Full),
            pipeline: None,
        })
    }

    async fn connect_postgres(url: &str, schema: &str, pool_size: u32) -> Result<Db> {
        if !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || schema.is_empty()
        {
            return Err(DbError::Config(format!("invalid schema name {schema:?}")));
        }
        let options = AnyConnectOptions::from_str(url)?;
        // The schema must exist before pooled connections put it on their search path.
        {
            let admin = AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options.clone())
                .await
                .map_err(tls_hint)?;
            let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            match admin.execute(sqlx::AssertSqlSafe(create)).await {
                Ok(_) => {}
                // Two processes creating the same schema at once: the loser sees a duplicate.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
                Err(e) => return Err(e.into()),
            }
            admin.close().await;
        }
        let pool_of = |max_connections| {
            let search_path = format!("SET search_path TO \"{schema}\"");
            AnyPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                // Ping only a connection that sat idle for a while (the server may have
                // restarted meanwhile): sqlx's default pings before every acquire, a round
                // trip added to every statement run on the pool.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > STALE_AFTER {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .after_connect(move |conn, _| {
                    let search_path = search_path.clone();
                    Box::pin(async move {
                        conn.execute(sqlx::AssertSqlSafe(search_path)).await?;
                        Ok(())
                    })
                })
        };
        let pool = pool_of(pool_size.max(1))
            .connect_with(options.clone())
            .await?;
        // A relay, a consumer's lanes and a redrive at once.
        let pipeline = pool_of((pool_size / 2).max(2)).connect_lazy_with(options);
        Ok(Db {
            pool,
            dialect: Dialect::Postgres,
            writers: None,
            durable: true,
            pipeline: Some(pipeline),
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The same database through connections of its own for the event pipeline (relay and
    /// consumers) on PostgreSQL: a burst of requests holding every connection of the main
    /// pool then cannot starve the saga. On SQLite, one writer at a time anyway, the same pool.
    pub fn pipeline(&self) -> Db {
        match &self.pipeline {
            Some(pipeline) => Db {
                pool: pipeline.clone(),
                ..self.clone()
            },
            None => self.clone(),
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Starts a write transaction. On SQLite it is a turn in the file's group commit, whose
    /// transaction takes the write lock up front (`BEGIN IMMEDIATE`): a deferred transaction
    /// that reads and then writes fails with SQLITE_BUSY instead of waiting when another
    /// writer got there first.
    pub async fn begin(&self) -> Result<Tx> {
        let inner = match &self.writers {
            Some(writers) => TxInner::Sqlite(writers.begin(&self.pool, self.durable).await?),
            None => TxInner::Postgres(self.pool.begin().await?),
        };
        Ok(Tx { inner })
    }

    /// True when a trivial query succeeds (used by /readyz).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(pipeline) = &self.pipeline {
            pipeline.close().await;
        }
    }
}

/// A TLS failure says which settings decide it: the error alone ("invalid peer certificate:
/// UnknownIssuer") does not tell an operator where the CA comes from.
fn tls_hint(e: sqlx::Error) -> DbError {
    // A handshake refused by our side surfaces as Tls or, from inside rustls, as Io.
    let refused = match &e {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => io.to_string().contains("certificate"),
        _ => false,
    };
    match e {
        e if refused => DbError::Config(format!(
            "TLS to PostgreSQL failed: {e}. The server's certificate is checked against the CA \
             file (BAZAAR_DATABASE_CA_FILE, or sslrootcert in the database URL) as sslmode \
             says (verify-ca, verify-full)"
        )),
        e => DbError::Sqlx(e),
    }
}

/// A new time-ordered id (UUID v7) as stored: lower-case hyphenated text.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Current time as stored: unix milliseconds.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Converts stored unix milliseconds back into a timestamp.
pub fn from_millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
