//! The gateway's persistent store: a SQLite file by default, PostgreSQL to scale out.
//!
//! A small layer shared by every feature that keeps state (the request log today; virtual keys,
//! budgets and stored responses later). Callers write SQL once: [`Value`] is the one parameter
//! and column type, [`Params`] spells placeholders for the backend (`?N` or `$N`), and the schema
//! is a list of numbered [`Migration`]s applied at start-up, recorded in the
//! `switchyard_migrations` table. SQLite calls run on dedicated threads, never on the async
//! runtime; PostgreSQL connections re-open by themselves after a failure.

mod migrations;
mod pg;
mod sqlite;
mod value;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use migrations::MIGRATIONS;
pub use value::{Value, ValueRef};

use crate::config::Secret;

/// `store:` after validation: where the gateway keeps its state.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// A SQLite database file (created if missing), opened in WAL mode.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// How long a statement waits for a lock held by another connection.
        timeout: Duration,
    },
    /// A PostgreSQL server.
    Postgres {
        /// `postgres://user:password@host:port/db` (or key=value form); holds a password.
        url: Secret,
        /// Bound on connecting and on every statement.
        timeout: Duration,
    },
}

/// The default database file, relative to the working directory.
pub const DEFAULT_SQLITE_PATH: &str = "switchyard.db";
/// The default bound on a store operation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for StoreConfig {
    fn default() -> Self {
        Self::Sqlite {
            path: PathBuf::from(DEFAULT_SQLITE_PATH),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl StoreConfig {
    /// A description without secrets, for logs and `switchyard check`.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { path, .. } => format!("sqlite {}", path.display()),
            Self::Postgres { url, .. } => {
                format!("postgres {}", redact_url(url.expose()))
            }
        }
    }
}

/// `scheme://host:port/db` with any userinfo (and so any password) removed; key=value
/// connection strings are reduced to their host and dbname.
fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
        return format!("{}{}", &url[..scheme_end + 3], rest);
    }
    url.split_whitespace()
        .filter(|kv| {
            kv.starts_with("host=") || kv.starts_with("dbname=") || kv.starts_with("port=")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or is busy now (connection refused or cut, a lock held too
    /// long, an unwritable file); worth retrying later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A statement failed.
    #[error("store statement failed: {0}")]
    Sql(String),
    /// The schema cannot be brought up to date.
    #[error("store schema: {0}")]
    Schema(String),
    /// The store configuration is unusable.
    #[error("store config: {0}")]
    Config(String),
    /// The store was shut down.
    #[error("store closed")]
    Closed,
}

/// One SQL statement with its parameters.
#[derive(Debug, Clone)]
pub struct Statement {
    /// SQL with placeholders spelled by [`Params`]; borrowed when it is written once for
    /// every use (the request log's insert), so a batch does not copy it per row.
    pub sql: std::borrow::Cow<'static, str>,
    /// The values, in placeholder order.
    pub params: Args,
}

/// A statement's parameter values: its own, or read from data it shares with its caller.
#[derive(Debug, Clone)]
pub enum Args {
    /// Values owned by the statement.
    Values(Vec<Value>),
    /// Values borrowed, when the statement runs, from data the caller keeps too: the request
    /// log's batches bind straight from their records, which the writer still holds for the
    /// spill file should the write fail, instead of copying every string of every record into
    /// a [`Value`] first (a fifth of the writer's work per record).
    Shared(Arc<dyn ParamSource>),
}

impl From<Vec<Value>> for Args {
    fn from(values: Vec<Value>) -> Self {
        Self::Values(values)
    }
}

/// Data that hands out a statement's parameter values as it runs (see [`Args::Shared`]).
pub trait ParamSource: Send + Sync + std::fmt::Debug {
    /// Appends every value, in placeholder order.
    fn values<'a>(&'a self, out: &mut Vec<ValueRef<'a>>);
}

/// Which SQL dialect a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Collects parameters and spells their placeholders for a dialect.
#[derive(Debug)]
pub struct Params {
    dialect: Dialect,
    /// The values so far.
    pub values: Vec<Value>,
}

impl Params {
    /// An empty list for `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            values: Vec::new(),
        }
    }

    /// Adds `v` and returns its placeholder.
    pub fn push(&mut self, v: impl Into<Value>) -> String {
        self.values.push(v.into());
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.values.len()),
            Dialect::Postgres => format!("${}", self.values.len()),
        }
    }
}

/// A versioned schema change. Versions are applied in order, each once, in a transaction with
/// its row in `switchyard_migrations`; a released migration is never edited, only followed.
#[derive(Debug)]
pub struct Migration {
    /// Position in the history, from 1, without gaps.
    pub version: u32,
    /// What it does, recorded with it.
    pub name: &'static str,
    /// The SQLite script.
    pub sqlite: &'static str,
    /// The PostgreSQL script.
    pub postgres: &'static str,
}

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS switchyard_migrations (\
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

/// The migrations of `all` not yet in `applied`, in order. A database that has a version this
/// binary does not know was migrated by a newer release: refusing it protects its data.
fn pending<'m>(all: &'m [Migration], applied: &[i64]) -> Result<Vec<&'m Migration>, StoreError> {
    let known = all.iter().map(|m| i64::from(m.version)).max().unwrap_or(0);
    if let Some(newer) = applied.iter().find(|v| **v > known) {
        return Err(StoreError::Schema(format!(
            "the database has schema version {newer}, newer than this binary knows ({known}); \
             upgrade switchyard"
        )));
    }
    Ok(all
        .iter()
        .filter(|m| !applied.contains(&i64::from(m.version)))
        .collect())
}

/// Milliseconds since the Unix epoch, the store's timestamp unit.
pub fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(Box<pg::Pg>),
}

/// A handle on the store; cheap to clone, shareable across runtimes and threads.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store without touching the schema. SQLite opens its file now (a path that
    /// cannot be opened is an error); PostgreSQL connects on first use.
    pub async fn connect(cfg: &StoreConfig) -> Result<Self, StoreError> {
        let backend = match cfg {
            StoreConfig::Sqlite { path, timeout } => {
                Backend::Sqlite(sqlite::Sqlite::open(path, *timeout).await?)
            }
            StoreConfig::Postgres { url, timeout } => {
                Backend::Postgres(Box::new(pg::Pg::new(url.expose(), *timeout)?))
            }
        };
        Ok(Self {
            backend: Arc::new(backend),
        })
    }

    /// Opens the store and brings its schema up to date ([`MIGRATIONS`]).
    pub async fn open(cfg: &StoreConfig) -> Result<Self, StoreError> {
        let store = Self::connect(cfg).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations this binary knows and the database lacks; returns how many.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        self.migrate_with(MIGRATIONS).await
    }

    /// Applies the given migrations (tests use their own lists).
    pub async fn migrate_with(
        &self,
        migrations: &'static [Migration],
    ) -> Result<usize, StoreError> {
        match &*self.backend {
            Backend::Sqlite(s) => s.migrate(migrations).await,
            Backend::Postgres(p) => p.migrate(migrations).await,
        }
    }

    /// The SQL dialect to write queries in.
    pub fn dialect(&self) -> Dialect {
        match &*self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a read query and returns its rows.
    pub async fn query(
        &self,
        sql: String,
        params: Vec<Value>,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(s) => s.query(sql, params).await,
            Backend::Postgres(p) => p.query(sql, params).await,
        }
    }

    /// Runs statements in one transaction: all of them or none. Returns the rows each changed.
    pub async fn transaction(&self, stmts: Vec<Statement>) -> Result<Vec<u64>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(s) => s.transaction(stmts).await,
            Backend::Postgres(p) => p.transaction(stmts).await,
        }
    }

    /// Deletes the rows of `table` whose `expires_at` has passed (the retention of the stores
    /// that keep per-tenant state); a failure is only logged, the next purge retries.
    pub(crate) async fn purge_expired(&self, table: &'static str) {
        let mut p = Params::new(self.dialect());
        let sql = format!(
            "DELETE FROM {table} WHERE expires_at <= {}",
            p.push(unix_millis())
        );
        if let Err(e) = self.execute(sql, p.values).await {
            tracing::warn!(error = %e, table, "could not purge expired rows");
        }
    }

    /// Runs one statement; returns the rows it changed.
    pub async fn execute(&self, sql: String, params: Vec<Value>) -> Result<u64, StoreError> {
        let counts = self
            .transaction(vec![Statement {
                sql: sql.into(),
                params: params.into(),
            }])
            .await?;
        Ok(counts.into_iter().sum())
    }
}

#[cfg(test)]
pub(crate) mod tests;
