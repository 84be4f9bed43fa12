//! SQLite behind two dedicated threads (one writer connection, one reader connection), so no
//! SQLite call ever runs on the async runtime. WAL mode lets the reader see committed data while
//! the writer writes.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::{Args, Migration, Statement, StoreError, Value, ValueRef};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// One connection owned by one thread; jobs run on it in order.
struct Worker {
    tx: std::sync::mpsc::Sender<Job>,
}

impl Worker {
    /// Opens the database at `path` on a new thread and configures the connection.
    async fn start(path: &Path, name: &str, timeout: Duration) -> Result<Self, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let path = path.to_owned();
        std::thread::Builder::new()
            .name(format!("switchyard-sqlite-{name}"))
            .spawn(move || {
                let mut conn = match open(&path, timeout) {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                // Ends when every sender (the store handle) is gone.
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite thread: {e}")))?;
        ready_rx
            .await
            .map_err(|_| StoreError::Closed)?
            .map(|()| Self { tx })
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move |c| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

fn open(path: &Path, timeout: Duration) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create `{}`: {e}", dir.display()))
        })?;
    }
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open `{}`: {e}", path.display())))?;
    conn.busy_timeout(timeout).map_err(sql_err)?;
    // 16 KiB pages for a new file (an existing one keeps its size): the request log appends
    // rows of about half a kilobyte to the right edges of its B-trees, and with SQLite's
    // default 4 KiB pages it split one every few records (measured: 800 instructions less per
    // record with 16 KiB). Must come before the first table is made and before WAL mode.
    conn.pragma_update(None, "page_size", 16384)
        .map_err(sql_err)?;
    // WAL: readers never block the writer nor the other way round; NORMAL sync is durable
    // across process crashes (not power loss), the usual trade-off for a log.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql_err)?;
    // 1 MiB of page cache per connection (SQLite's default is 2 MiB): the writer appends at
    // the right edges of a few B-trees and the OS caches the file for readers, while the
    // gateway's resident memory is a product goal (see the benchmark).
    conn.pragma_update(None, "cache_size", -1024)
        .map_err(sql_err)?;
    // Every feature's statements share the writer connection's cache of prepared statements;
    // rusqlite's default of 16 would let them evict the request log's multi-record inserts,
    // which are the dearest to parse again.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Maps a SQLite error: a busy or locked database, or an IO/permission problem, is the store
/// being unavailable (worth retrying later); anything else is a bad statement.
pub(super) fn sql_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(
            C::DatabaseBusy
            | C::DatabaseLocked
            | C::ReadOnly
            | C::SystemIoFailure
            | C::CannotOpen
            | C::PermissionDenied
            | C::DiskFull
            | C::DatabaseCorrupt
            | C::NotADatabase,
        ) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Sql(e.to_string()),
    }
}

/// The SQLite backend.
pub(super) struct Sqlite {
    writer: Worker,
    reader: Worker,
}

impl Sqlite {
    pub(super) async fn open(path: &Path, timeout: Duration) -> Result<Self, StoreError> {
        let writer = Worker::start(path, "writer", timeout).await?;
        let reader = Worker::start(path, "reader", timeout).await?;
        Ok(Self { writer, reader })
    }

    pub(super) async fn query(
        &self,
        sql: String,
        params: Vec<Value>,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        self.reader
            .call(move |c| query(c, &sql, &params).map_err(sql_err))
            .await
    }

    pub(super) async fn transaction(&self, stmts: Vec<Statement>) -> Result<Vec<u64>, StoreError> {
        self.writer
            .call(move |c| {
                let tx = c
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(sql_err)?;
                let mut counts = Vec::with_capacity(stmts.len());
                // A run of the same statement (a batch of request-log records) keeps it
                // prepared and bound to the run: taking it from the cache and putting it back
                // for every row hashed the SQL text twice per row.
                let mut current: Option<Run<'_, '_>> = None;
                let mut values = Vec::new();
                for s in &stmts {
                    let run = match &mut current {
                        Some(run) if run.sql == s.sql => run,
                        _ => {
                            let st = tx.prepare_cached(&s.sql).map_err(sql_err)?;
                            current.insert(Run {
                                sql: &s.sql,
                                st,
                                bound: Vec::new(),
                            })
                        }
                    };
                    match &s.params {
                        Args::Values(v) => values.extend(v.iter().map(Value::as_value_ref)),
                        Args::Shared(source) => source.values(&mut values),
                    }
                    let n = run.execute(&mut values).map_err(sql_err)?;
                    counts.push(n as u64);
                }
                drop(current);
                tx.commit().map_err(sql_err)?;
                Ok(counts)
            })
            .await
    }

    pub(super) async fn migrate(
        &self,
        migrations: &'static [Migration],
    ) -> Result<usize, StoreError> {
        self.writer
            .call(move |c| {
                c.execute_batch(super::MIGRATIONS_TABLE).map_err(sql_err)?;
                let tx = c
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(sql_err)?;
                let applied: Vec<i64> = {
                    let mut st = tx
                        .prepare("SELECT version FROM switchyard_migrations")
                        .map_err(sql_err)?;
                    let rows = st.query_map([], |r| r.get(0)).map_err(sql_err)?;
                    rows.collect::<Result<_, _>>().map_err(sql_err)?
                };
                let todo = super::pending(migrations, &applied)?;
                for m in &todo {
                    tx.execute_batch(m.sqlite).map_err(|e| {
                        StoreError::Schema(format!(
                            "migration {} ({}) failed: {e}",
                            m.version, m.name
                        ))
                    })?;
                    tx.execute(
                        "INSERT INTO switchyard_migrations (version, name, applied_at) \
                         VALUES (?1, ?2, ?3)",
                        rusqlite::params![i64::from(m.version), m.name, super::unix_millis()],
                    )
                    .map_err(sql_err)?;
                }
                tx.commit().map_err(sql_err)?;
                Ok(todo.len())
            })
            .await
    }
}

/// A prepared statement kept through a run of statements with the same text, and the values
/// bound to it now.
struct Run<'s, 'c> {
    sql: &'s str,
    st: rusqlite::CachedStatement<'c>,
    bound: Vec<ValueRef<'s>>,
}

impl<'s> Run<'s, '_> {
    /// Executes the statement with `values` (left empty for the next statement), binding only
    /// the parameters whose value differs from the one already bound.
    ///
    /// SQLite keeps bindings across executions, and consecutive request-log records mostly
    /// repeat each other's values at the same place (the same principal, API, alias, provider,
    /// model, outcome, flags and NULLs): binding a parameter (a call through rusqlite, SQLite
    /// releasing the old value, copying text into a new allocation) cost about 240
    /// instructions, and skipping the unchanged ones saved a quarter of SQLite's thread's work
    /// per record (callgrind), while a comparison costs a few dozen. The cache clears a
    /// statement's bindings when it takes it back, so a run always starts from nothing bound.
    fn execute(&mut self, values: &mut Vec<ValueRef<'s>>) -> rusqlite::Result<usize> {
        let expected = self.st.parameter_count();
        if values.len() != expected {
            let given = values.len();
            values.clear();
            return Err(rusqlite::Error::InvalidParameterCount(given, expected));
        }
        let fresh = self.bound.len() != values.len();
        // Forgotten until every binding is done: a failed one leaves nothing to trust.
        let mut bound = std::mem::take(&mut self.bound);
        for (i, v) in values.iter().enumerate() {
            if fresh || !same_binding(v, &bound[i]) {
                self.st.raw_bind_parameter(i + 1, v)?;
            }
        }
        std::mem::swap(&mut bound, values);
        values.clear();
        self.bound = bound;
        self.st.raw_execute()
    }
}

/// Whether binding `a` would give SQLite exactly what binding `b` gave it: the same type and
/// value, reals bit for bit (`-0.0` is not `0.0`, and a NaN is never skipped by `==`).
fn same_binding(a: &ValueRef<'_>, b: &ValueRef<'_>) -> bool {
    match (a, b) {
        (ValueRef::Null, ValueRef::Null) => true,
        (ValueRef::Int(x), ValueRef::Int(y)) => x == y,
        (ValueRef::Real(x), ValueRef::Real(y)) => x.to_bits() == y.to_bits(),
        // The same text is often the same memory (a fixed name, a name the config shares):
        // then there is nothing to compare.
        (ValueRef::Text(x), ValueRef::Text(y)) => std::ptr::eq(*x, *y) || x == y,
        (ValueRef::Bool(x), ValueRef::Bool(y)) => x == y,
        _ => false,
    }
}

fn query(c: &Connection, sql: &str, params: &[Value]) -> rusqlite::Result<Vec<Vec<Value>>> {
    let mut st = c.prepare_cached(sql)?;
    let n = st.column_count();
    let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            row.push(Value::from_sqlite(r.get_ref(i)?));
        }
        out.push(row);
    }
    Ok(out)
}
