//! The request log: one [`Record`] per request, kept in the [`crate::store`] off the hot path
//! and without loss.
//!
//! A request's record is built where its one log line is written (`pipeline::ctx`), so it has
//! the same exactly-once guarantee, dropped and cancelled streams included. [`ReqLog::submit`]
//! puts it on a bounded queue and returns; a writer task stores records in batches (by count or
//! after `flush_interval`). When the store fails, batches go to the [`spill`] file and are
//! replayed when the store answers again, deduplicated by record id. When the queue is full, the
//! request's thread appends its record to the spill file itself (a small buffered write)
//! instead of dropping it. Shutdown ([`ReqLog::shutdown`]) stores or spills everything queued.
//! A record is dropped only when even the spill file cannot be written; the `dropped` counter
//! and an error line say so. [`ReqLog::stats`] gives the counters for `/metrics`.

mod policy;
pub mod query;
mod record;
pub mod spill;
pub mod time;
mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::mpsc;

pub use policy::{redact_body, redact_text, BodyPolicy};
pub use record::{safe_error_message, Attempt, Bodies, Record};

use crate::store::{Store, StoreConfig, StoreError};

/// `request_log:` after validation.
#[derive(Debug, Clone)]
pub struct ReqLogConfig {
    /// Whether records are kept at all (on by default).
    pub enabled: bool,
    /// The body policy of aliases without their own.
    pub bodies: BodyPolicy,
    /// Per-alias body policies (`models.<alias>.log_bodies`).
    pub alias_bodies: HashMap<String, BodyPolicy>,
    /// The most bytes kept of any one body.
    pub max_body_size: usize,
    /// Records the queue holds before request threads spill them directly.
    pub queue_size: usize,
    /// Most records per store write.
    pub batch_size: usize,
    /// Longest a record waits in the queue for its batch to fill.
    pub flush_interval: Duration,
    /// How often a failed store is tried again.
    pub retry_interval: Duration,
    /// Where the spill file lives.
    pub spill_dir: PathBuf,
    /// What old records are deleted.
    pub retention: Retention,
}

/// Retention: records older than `max_age`, and beyond the newest `max_rows`, are deleted by
/// the writer every `interval`.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Oldest record kept.
    pub max_age: Option<Duration>,
    /// Most records kept.
    pub max_rows: Option<u64>,
    /// Time between two clean-ups.
    pub interval: Duration,
}

impl Default for ReqLogConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bodies: BodyPolicy::None,
            alias_bodies: HashMap::new(),
            max_body_size: 64 * 1024,
            queue_size: 10_000,
            batch_size: 256,
            flush_interval: Duration::from_millis(200),
            retry_interval: Duration::from_secs(1),
            spill_dir: PathBuf::from("switchyard-spill"),
            retention: Retention {
                max_age: Some(Duration::from_secs(30 * 86_400)),
                max_rows: None,
                interval: Duration::from_secs(300),
            },
        }
    }
}

/// The request log's counters, for `/metrics` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records waiting in the queue now.
    pub queue_depth: u64,
    /// Records submitted since start.
    pub submitted: u64,
    /// Records written to the store (replays included).
    pub stored: u64,
    /// Records written to the spill file (by the writer or by a request thread).
    pub spilled: u64,
    /// Spilled records stored again by a replay (duplicates of stored ones included).
    pub replayed: u64,
    /// Records lost: the spill file could not be written, or a spilled line was unreadable.
    pub dropped: u64,
    /// Failed store writes.
    pub store_errors: u64,
}

/// Appends the request log's counters in Prometheus' text format: a record dropped must show
/// up on a dashboard, not only in a log line.
pub fn render_metrics(s: &Stats, out: &mut String) {
    for (name, kind, help, v) in [
        (
            "switchyard_request_log_queue_depth",
            "gauge",
            "Records waiting for the store writer.",
            s.queue_depth,
        ),
        (
            "switchyard_request_log_submitted_total",
            "counter",
            "Records submitted.",
            s.submitted,
        ),
        (
            "switchyard_request_log_stored_total",
            "counter",
            "Records written to the store.",
            s.stored,
        ),
        (
            "switchyard_request_log_spilled_total",
            "counter",
            "Records written to the spill file while the store was slow or down.",
            s.spilled,
        ),
        (
            "switchyard_request_log_replayed_total",
            "counter",
            "Spilled records stored again after the store came back.",
            s.replayed,
        ),
        (
            "switchyard_request_log_dropped_total",
            "counter",
            "Records lost (the spill file could not be written). Should stay 0.",
            s.dropped,
        ),
        (
            "switchyard_request_log_store_errors_total",
            "counter",
            "Failed store writes.",
            s.store_errors,
        ),
    ] {
        crate::telemetry::single(out, name, kind, help, v);
    }
}

#[derive(Debug)]
struct Counters {
    submitted: AtomicU64,
    stored: AtomicU64,
    spilled: AtomicU64,
    replayed: AtomicU64,
    dropped: AtomicU64,
    store_errors: AtomicU64,
    /// Set when a request thread spilled (queue full), so the writer replays soon.
    overflowed: std::sync::atomic::AtomicBool,
    /// How many queued records complete the batch the writer is gathering (`usize::MAX` when
    /// it is not gathering). The request that brings the queue to it signals `batch_full`, so
    /// the writer sleeps until `flush_interval` ends instead of polling the queue.
    batch_need: std::sync::atomic::AtomicUsize,
    batch_full: tokio::sync::Notify,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            submitted: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            spilled: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            overflowed: std::sync::atomic::AtomicBool::new(false),
            batch_need: std::sync::atomic::AtomicUsize::new(usize::MAX),
            batch_full: tokio::sync::Notify::new(),
        }
    }
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// The running request log: the queue's sending side, the spill, the counters and the writer.
pub struct ReqLog {
    tx: mpsc::Sender<Record>,
    spill: Arc<spill::Spill>,
    counters: Arc<Counters>,
    config: ReqLogConfig,
    store: Store,
    stop: Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            tokio::task::JoinHandle<()>,
        )>,
    >,
}

impl std::fmt::Debug for ReqLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReqLog").finish_non_exhaustive()
    }
}

impl ReqLog {
    /// Opens the store and starts the writer on the current runtime. A SQLite file that cannot
    /// be opened is an error; a store that is busy or unreachable now is not (records spill
    /// until it answers, and the schema is brought up to date then).
    pub async fn start(config: ReqLogConfig, store: &StoreConfig) -> Result<Arc<Self>, StoreError> {
        let store_handle = Store::connect(store).await?;
        let migrated = match store_handle.migrate().await {
            Ok(_) => true,
            // Reachable but busy or down (a lock held, a server away): start anyway.
            Err(StoreError::Unavailable(e)) => {
                tracing::warn!(store = %store.describe(), error = %e,
                    "request log store unavailable at start-up; records spill until it answers");
                false
            }
            Err(e) => return Err(e),
        };
        Ok(Self::with_store(config, store_handle, migrated))
    }

    /// Starts the writer over an opened store.
    pub fn with_store(config: ReqLogConfig, store: Store, migrated: bool) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(config.queue_size.max(1));
        let spill = Arc::new(spill::Spill::new(config.spill_dir.clone()));
        let counters = Arc::new(Counters::default());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(
            writer::Writer {
                store: store.clone(),
                migrated,
                spill: Arc::clone(&spill),
                counters: Arc::clone(&counters),
                config: config.clone(),
            }
            .run(rx, stop_rx),
        );
        Arc::new(Self {
            tx,
            spill,
            counters,
            config,
            store,
            stop: Mutex::new(Some((stop_tx, task))),
        })
    }

    /// Queues a record. Never blocks on the store and never drops: when the queue is full (or
    /// the writer has stopped) the record is appended to the spill file right here.
    pub fn submit(&self, record: Record) {
        Counters::add(&self.counters.submitted, 1);
        let record = match self.tx.try_send(record) {
            Ok(()) => {
                // `>=`: concurrent senders may both see the queue past the exact need. Below
                // it, this costs two atomic reads per record.
                let need = self.counters.batch_need.load(Ordering::SeqCst);
                if self.tx.max_capacity() - self.tx.capacity() >= need {
                    self.counters.batch_full.notify_one();
                }
                return;
            }
            Err(mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r)) => r,
        };
        match self.spill.append(std::slice::from_ref(&record)) {
            Ok(()) => {
                Counters::add(&self.counters.spilled, 1);
                self.counters.overflowed.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                Counters::add(&self.counters.dropped, 1);
                tracing::error!(
                    request_id = %record.request_id,
                    spill_dir = %self.spill.dir().display(),
                    error = %e,
                    "request log record dropped: the queue is full and the spill file cannot be written"
                );
            }
        }
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            queue_depth: (self.tx.max_capacity() - self.tx.capacity()) as u64,
            submitted: load(&c.submitted),
            stored: load(&c.stored),
            spilled: load(&c.spilled),
            replayed: load(&c.replayed),
            dropped: load(&c.dropped),
            store_errors: load(&c.store_errors),
        }
    }

    /// The store the records go to (for the admin API).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The body capture for a request whose body is `body`, before its model is known: the
    /// default policy, and the body kept when any policy could want it.
    pub fn bodies_for(&self, body: &Bytes) -> Bodies {
        let any =
            self.config.bodies.keeps() || self.config.alias_bodies.values().any(|p| p.keeps());
        Bodies {
            policy: self.config.bodies,
            cap: self.config.max_body_size,
            request: any.then(|| body.clone()),
            ..Bodies::default()
        }
    }

    /// The body policy of `alias` (the model name the client sent).
    pub fn policy_for(&self, alias: &str) -> BodyPolicy {
        self.config
            .alias_bodies
            .get(alias)
            .copied()
            .unwrap_or(self.config.bodies)
    }

    /// Stores (or spills) everything queued and stops the writer. Records submitted afterwards
    /// go straight to the spill file, replayed at the next start.
    pub async fn shutdown(&self) {
        let stop = self.stop.lock().take();
        if let Some((tx, task)) = stop {
            let _ = tx.send(());
            if let Err(e) = task.await {
                tracing::error!(error = %e, "request log writer failed");
            }
        }
    }
}

#[cfg(test)]
mod tests;
