//! The writer task: batches from the queue to the store, to the spill while the store fails,
//! replays the spill when it answers again, and enforces retention.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::spill::Spill;
use super::{Counters, Record, ReqLogConfig};
use crate::store::{
    Args, Dialect, ParamSource, Params, Statement, Store, StoreError, Value, ValueRef,
};

pub(super) struct Writer {
    pub(super) store: Store,
    pub(super) migrated: bool,
    pub(super) spill: Arc<Spill>,
    pub(super) counters: Arc<Counters>,
    pub(super) config: ReqLogConfig,
}

/// Columns of `requests`, in the order [`row`] gives their values.
pub(crate) const COLUMNS: [&str; 36] = [
    "id",
    "request_id",
    "started_at",
    "principal",
    "key_name",
    "team",
    "user_id",
    "tags",
    "client_api",
    "operation",
    "alias",
    "stream",
    "provider",
    "model",
    "deployment",
    "route",
    "attempt_count",
    "attempts",
    "status",
    "outcome",
    "error_kind",
    "error_message",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_nanos",
    "cost_known",
    "latency_ms",
    "ttft_ms",
    "cache_outcome",
    "guardrail_outcome",
    "body_policy",
    "request_body",
    "response_body",
    "bodies_truncated",
    "usage_estimated",
];

fn int(v: Option<u64>) -> ValueRef<'static> {
    v.map_or(ValueRef::Null, |n| {
        ValueRef::Int(i64::try_from(n).unwrap_or(i64::MAX))
    })
}

/// The records of one insert statement, bound straight from the batch the writer holds.
#[derive(Debug)]
struct Rows {
    records: Arc<Vec<Record>>,
    range: Range<usize>,
    /// Per record: its tags and its attempts as JSON text.
    json: Vec<(Option<String>, String)>,
}

impl Rows {
    fn new(records: Arc<Vec<Record>>, range: Range<usize>) -> Self {
        let json = records[range.clone()]
            .iter()
            .map(|r| {
                let tags = (!r.tags.is_empty())
                    .then(|| serde_json::to_string(&r.tags).ok())
                    .flatten();
                let attempts = super::record::Attempt::list_json(&r.attempts);
                (tags, attempts)
            })
            .collect();
        Self {
            records,
            range,
            json,
        }
    }
}

impl ParamSource for Rows {
    fn values<'a>(&'a self, out: &mut Vec<ValueRef<'a>>) {
        out.reserve(self.range.len() * COLUMNS.len());
        for (r, (tags, attempts)) in self.records[self.range.clone()].iter().zip(&self.json) {
            row(r, tags.as_deref(), attempts, out);
        }
    }
}

/// Appends the values of one record, in [`COLUMNS`] order.
fn row<'a>(r: &'a Record, tags: Option<&'a str>, attempts: &'a str, out: &mut Vec<ValueRef<'a>>) {
    fn text<S: std::ops::Deref<Target = str>>(s: &Option<S>) -> ValueRef<'_> {
        ValueRef::text(s.as_deref())
    }
    out.extend([
        ValueRef::Text(&r.id),
        ValueRef::Text(&r.request_id),
        ValueRef::Int(r.started_at),
        ValueRef::Text(&r.principal),
        text(&r.key_name),
        text(&r.team),
        text(&r.user),
        ValueRef::text(tags),
        ValueRef::Text(&r.client_api),
        ValueRef::Text(&r.operation),
        text(&r.alias),
        ValueRef::Bool(r.stream),
        text(&r.provider),
        text(&r.model),
        text(&r.deployment),
        text(&r.route),
        ValueRef::Int(r.attempts.iter().filter(|a| a.sent).count() as i64),
        ValueRef::Text(attempts),
        ValueRef::Int(i64::from(r.status)),
        ValueRef::Text(&r.outcome),
        ValueRef::text(r.error_kind.as_deref()),
        text(&r.error_message),
        int(r.prompt_tokens),
        int(r.completion_tokens),
        int(r.cached_tokens),
        r.cost_nanos.map_or(ValueRef::Null, ValueRef::Int),
        ValueRef::Bool(r.cost_known),
        // `NOT NULL`, and SQLite stores a NaN as NULL.
        ValueRef::Real(if r.latency_ms.is_finite() {
            r.latency_ms
        } else {
            0.0
        }),
        r.ttft_ms.map_or(ValueRef::Null, ValueRef::Real),
        text(&r.cache_outcome),
        text(&r.guardrail_outcome),
        ValueRef::Text(&r.body_policy),
        text(&r.request_body),
        text(&r.response_body),
        ValueRef::Bool(r.bodies_truncated),
        ValueRef::Bool(r.usage_estimated),
    ]);
}

/// One multi-row insert of `records[range]`, skipping ids already stored (replays, retries).
fn insert(store: &Store, records: &Arc<Vec<Record>>, range: Range<usize>) -> Statement {
    let dialect = store.dialect();
    let rows = range.len();
    let sql =
        fixed_sql(dialect, rows).map_or_else(|| insert_sql(dialect, rows).into(), Cow::Borrowed);
    Statement {
        sql,
        params: Args::Shared(Arc::new(Rows::new(Arc::clone(records), range))),
    }
}

/// Records per insert statement on SQLite: a batch is cut into the largest of these first.
/// One statement per record paid, for every record, the statement's set-up and tear-down (six
/// B-tree cursors opened, positioned and freed, the statement reset): a fifth of SQLite's time
/// per record. Fixed sizes keep the statement texts few, so SQLite parses each once and keeps
/// it prepared (a text that changed with the batch size was parsed again for every batch,
/// which cost more than it saved).
const SQLITE_RUNS: [usize; 3] = [16, 4, 1];

/// The insert for one of the [`SQLITE_RUNS`] sizes, written once per dialect (formatting 36
/// placeholders per record cost more than a fifth of the request log's CPU); `None` for other
/// sizes.
fn fixed_sql(dialect: Dialect, rows: usize) -> Option<&'static str> {
    static CELLS: [[OnceLock<String>; SQLITE_RUNS.len()]; 2] =
        [const { [const { OnceLock::new() }; SQLITE_RUNS.len()] }; 2];
    let i = SQLITE_RUNS.iter().position(|&n| n == rows)?;
    let d = match dialect {
        Dialect::Sqlite => 0,
        Dialect::Postgres => 1,
    };
    Some(CELLS[d][i].get_or_init(|| insert_sql(dialect, rows)))
}

/// The insert of `rows` records that skips ids already stored.
///
/// SQLite gets `INSERT OR IGNORE`: with `ON CONFLICT (id) DO NOTHING` every other constraint
/// could still abort a statement halfway through its records, so SQLite kept a statement
/// journal of every page each multi-record insert touched, in a temporary file (measured:
/// 3.7 KB written per record, three times the WAL's own writes). `OR IGNORE` cannot abort, so
/// there is no journal. It would also skip a record that breaks a `NOT NULL` column, so
/// [`row`] never gives those a NULL. The only unique index is the id, as with `ON CONFLICT`.
fn insert_sql(dialect: Dialect, rows: usize) -> String {
    let mut p = Params::new(dialect);
    let verb = match dialect {
        Dialect::Sqlite => "INSERT OR IGNORE",
        Dialect::Postgres => "INSERT",
    };
    let mut sql = format!("{verb} INTO requests ({}) VALUES ", COLUMNS.join(", "));
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for j in 0..COLUMNS.len() {
            if j > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&p.push(Value::Null));
        }
        sql.push(')');
    }
    if dialect == Dialect::Postgres {
        sql.push_str(" ON CONFLICT (id) DO NOTHING");
    }
    sql
}

/// Stores `records` in one transaction. On SQLite: runs of the [`SQLITE_RUNS`] sizes, largest
/// first, so only three statement texts ever occur and all stay prepared.
/// PostgreSQL gets multi-row inserts of up to 256 records (one round trip each), which stay
/// under its parameter limit.
pub(crate) async fn store_records(
    store: &Store,
    records: Arc<Vec<Record>>,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let stmts = match store.dialect() {
        Dialect::Sqlite => {
            let mut stmts = Vec::new();
            let mut at = 0;
            for n in SQLITE_RUNS {
                while records.len() - at >= n {
                    stmts.push(insert(store, &records, at..at + n));
                    at += n;
                }
            }
            stmts
        }
        Dialect::Postgres => (0..records.len())
            .step_by(256)
            .map(|at| insert(store, &records, at..records.len().min(at + 256)))
            .collect(),
    };
    store.transaction(stmts).await.map(|_| ())
}

impl Writer {
    pub(super) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Record>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        let batch_size = self.config.batch_size.max(1);
        // Leftovers of an earlier run (a store outage across a restart) are replayed first.
        let mut healthy = !self.spill.has_backlog();
        let mut retry_at = Instant::now();
        let mut retention = tokio::time::interval(self.config.retention.interval);
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(batch_size);
        let mut stopping = false;
        loop {
            tokio::select! {
                biased;
                _ = &mut stop, if !stopping => {
                    stopping = true;
                    // Takes no more records; the queued ones are still received below.
                    rx.close();
                }
                n = rx.recv_many(&mut batch, batch_size) => {
                    if n == 0 {
                        break;
                    }
                    if !stopping && self.gather(&mut rx, &mut batch, batch_size, &mut stop).await {
                        stopping = true;
                        rx.close();
                    }
                    let records = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                    healthy = self.write(records, healthy, &mut retry_at).await;
                    // Request threads spilled directly (the queue was full): replay soon.
                    if healthy && self.counters.overflowed.swap(false, Ordering::Relaxed) {
                        healthy = false;
                        retry_at = Instant::now();
                    }
                }
                () = tokio::time::sleep_until(retry_at), if !healthy => {
                    healthy = self.replay().await;
                    retry_at = Instant::now() + self.config.retry_interval;
                }
                _ = retention.tick() => {
                    if healthy {
                        self.retention().await;
                    }
                }
            }
        }
        // Shutting down: one last try to leave nothing in the spill.
        if !healthy || self.spill.has_backlog() {
            self.replay().await;
        }
    }

    /// Fills `batch` up to `batch_size` from the queue, waiting at most `flush_interval`.
    ///
    /// Neither a wake-up per record (a cross-thread hop and a futex call per request) nor a
    /// polling tick (which woke the writer about a hundred times a second at 1,000 req/s):
    /// the writer sleeps until the deadline, and the request that fills a batch in the queue
    /// wakes it early ([`super::ReqLog::submit`]).
    ///
    /// Returns `true` when shutdown was asked meanwhile: the batch is written at once, and the
    /// caller takes no more records.
    async fn gather(
        &self,
        rx: &mut mpsc::Receiver<Record>,
        batch: &mut Vec<Record>,
        batch_size: usize,
        stop: &mut tokio::sync::oneshot::Receiver<()>,
    ) -> bool {
        let deadline = Instant::now() + self.config.flush_interval;
        let need = &self.counters.batch_need;
        loop {
            // Registered before the queue is read, so a batch completed in between still
            // wakes this wait.
            let full = self.counters.batch_full.notified();
            tokio::pin!(full);
            full.as_mut().enable();
            while batch.len() < batch_size {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            if batch.len() >= batch_size || Instant::now() >= deadline {
                break;
            }
            let missing = batch_size - batch.len();
            need.store(missing, Ordering::SeqCst);
            // A request that read the old need while queueing the last missing record did not
            // signal: the queue's length, read after the store, catches it.
            if rx.len() >= missing {
                continue;
            }
            let stopped = tokio::select! {
                () = tokio::time::sleep_until(deadline) => false,
                () = &mut full => false,
                _ = &mut *stop => true,
            };
            if stopped {
                need.store(usize::MAX, Ordering::SeqCst);
                return true;
            }
        }
        need.store(usize::MAX, Ordering::SeqCst);
        false
    }

    async fn ensure_migrated(&mut self) -> Result<(), StoreError> {
        if !self.migrated {
            self.store.migrate().await?;
            self.migrated = true;
        }
        Ok(())
    }

    /// Stores a batch, or spills it when the store fails (or is known down: the spill keeps
    /// the order and the store is not hammered). Returns whether the store is healthy.
    async fn write(&mut self, records: Vec<Record>, healthy: bool, retry_at: &mut Instant) -> bool {
        // Shared with the insert statements, which bind from it; kept here for the spill.
        let records = Arc::new(records);
        if healthy {
            let r = match self.ensure_migrated().await {
                Ok(()) => store_records(&self.store, Arc::clone(&records)).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => {
                    Counters::add(&self.counters.stored, records.len() as u64);
                    return true;
                }
                Err(e) => {
                    Counters::add(&self.counters.store_errors, 1);
                    tracing::warn!(error = %e, records = records.len(),
                        "request log store write failed; spilling to disk until it recovers");
                    *retry_at = Instant::now() + self.config.retry_interval;
                }
            }
        }
        self.spill_batch(records).await;
        false
    }

    async fn spill_batch(&self, records: Arc<Vec<Record>>) {
        let n = records.len() as u64;
        let spill = Arc::clone(&self.spill);
        let r = tokio::task::spawn_blocking(move || {
            let r = spill.append(&records);
            (r, records)
        })
        .await;
        match r {
            Ok((Ok(()), _)) => Counters::add(&self.counters.spilled, n),
            Ok((Err(e), records)) => {
                Counters::add(&self.counters.dropped, n);
                let first = records.first().map(|r| r.request_id.clone());
                tracing::error!(error = %e, records = n, first_request_id = first.as_deref(),
                    spill_dir = %self.spill.dir().display(),
                    "request log records dropped: the store failed and the spill file cannot be written");
            }
            Err(e) => {
                Counters::add(&self.counters.dropped, n);
                tracing::error!(error = %e, records = n, "request log records dropped: spill task failed");
            }
        }
    }

    /// Stores every spilled record; returns whether the spill is now empty (store healthy).
    async fn replay(&mut self) -> bool {
        if let Err(e) = self.ensure_migrated().await {
            tracing::debug!(error = %e, "request log store still unavailable");
            return false;
        }
        // Request threads may spill while a replay runs; a few rounds catch up with them.
        for _ in 0..3 {
            if !self.replay_round().await {
                return false;
            }
            let spill = Arc::clone(&self.spill);
            if !tokio::task::spawn_blocking(move || spill.has_backlog())
                .await
                .unwrap_or(true)
            {
                tracing::info!("request log store available; spilled records replayed");
                return true;
            }
        }
        false
    }

    /// Rotates the active spill file and stores every waiting file; false when interrupted.
    async fn replay_round(&mut self) -> bool {
        let spill = Arc::clone(&self.spill);
        let files = match tokio::task::spawn_blocking(move || spill.rotate()).await {
            Ok(Ok(files)) => files,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the request log spill directory");
                return false;
            }
            Err(_) => return false,
        };
        let batch = self.config.batch_size.max(1);
        for path in files {
            let mut offset = Some(0);
            while let Some(at) = offset {
                let p = path.clone();
                let chunk = match tokio::task::spawn_blocking(move || {
                    Spill::read_chunk(&p, at, batch)
                })
                .await
                {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, file = %path.display(), "cannot read a request log spill file");
                        return false;
                    }
                    Err(_) => return false,
                };
                if chunk.bad_lines > 0 {
                    Counters::add(&self.counters.dropped, chunk.bad_lines);
                    tracing::error!(lines = chunk.bad_lines, file = %path.display(),
                        "request log records dropped: unreadable lines in the spill file (a write cut short)");
                }
                let n = chunk.records.len() as u64;
                if let Err(e) = store_records(&self.store, Arc::new(chunk.records)).await {
                    Counters::add(&self.counters.store_errors, 1);
                    tracing::debug!(error = %e, "request log replay interrupted; retrying later");
                    return false;
                }
                Counters::add(&self.counters.stored, n);
                Counters::add(&self.counters.replayed, n);
                offset = chunk.next;
                // Not counted twice if the replay is interrupted after this chunk: the
                // chunk's ids are skipped by the next replay's inserts.
            }
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::error!(error = %e, file = %path.display(), "cannot remove a replayed spill file");
                return false;
            }
        }
        true
    }

    pub(super) async fn retention(&self) {
        let r = self.config.retention;
        let mut stmts = Vec::new();
        if let Some(age) = r.max_age {
            let cutoff =
                crate::store::unix_millis() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
            let mut p = Params::new(self.store.dialect());
            let sql = format!("DELETE FROM requests WHERE started_at < {}", p.push(cutoff));
            stmts.push(Statement {
                sql: sql.into(),
                params: p.values.into(),
            });
        }
        if let Some(rows) = r.max_rows {
            let mut p = Params::new(self.store.dialect());
            // The newest `rows` records are kept (ties on the oldest kept time stay too).
            let offset = p.push(i64::try_from(rows.saturating_sub(1)).unwrap_or(i64::MAX));
            let sql = format!(
                "DELETE FROM requests WHERE started_at < (SELECT started_at FROM requests \
                 ORDER BY started_at DESC LIMIT 1 OFFSET {offset})"
            );
            stmts.push(Statement {
                sql: sql.into(),
                params: p.values.into(),
            });
        }
        if stmts.is_empty() {
            return;
        }
        match self.store.transaction(stmts).await {
            Ok(counts) => {
                let n: u64 = counts.iter().sum();
                if n > 0 {
                    tracing::info!(deleted = n, "request log retention");
                }
            }
            Err(e) => tracing::warn!(error = %e, "request log retention failed"),
        }
    }
}
