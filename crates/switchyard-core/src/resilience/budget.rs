//! The retry budget: retries may add at most a fixed fraction of recent requests.
//!
//! Per-request attempt caps alone turn an outage into a storm: with three attempts, a
//! deployment that fails everything receives three times its normal traffic exactly when it
//! can least take it. The budget bounds retries per deployment to `ratio` of the first attempts
//! seen in the last `window`, plus a small floor (`min_per_second`) so that a quiet deployment
//! can still retry its occasional failure.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// How many buckets the window is split into; counts expire one bucket at a time.
const BUCKETS: usize = 10;

/// Budget settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Retries allowed per first attempt, e.g. 0.2.
    pub ratio: f64,
    /// Retries always allowed per second of window, whatever the traffic.
    pub min_per_second: f64,
    /// How far back requests count.
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_second: 1.0,
            window: Duration::from_secs(10),
        }
    }
}

/// One deployment's retry budget.
#[derive(Debug)]
pub struct RetryBudget {
    cfg: BudgetConfig,
    bucket_len: Duration,
    inner: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    /// Start of the current bucket.
    current_start: Instant,
    current: usize,
    requests: [u64; BUCKETS],
    retries: [u64; BUCKETS],
}

impl RetryBudget {
    /// A budget with nothing spent.
    pub fn new(cfg: BudgetConfig) -> Self {
        let bucket_len = (cfg.window / BUCKETS as u32).max(Duration::from_millis(1));
        Self {
            cfg,
            bucket_len,
            inner: Mutex::new(Window {
                current_start: Instant::now(),
                current: 0,
                requests: [0; BUCKETS],
                retries: [0; BUCKETS],
            }),
        }
    }

    /// Counts a first attempt (it earns `ratio` of a retry).
    pub fn record_request(&self) {
        let mut w = self.inner.lock();
        self.advance(&mut w, Instant::now());
        let i = w.current;
        w.requests[i] += 1;
    }

    /// Spends one retry if the budget allows it; `false` means do not retry.
    pub fn try_retry(&self) -> bool {
        let mut w = self.inner.lock();
        self.advance(&mut w, Instant::now());
        let requests: u64 = w.requests.iter().sum();
        let retries: u64 = w.retries.iter().sum();
        let allowed = self.cfg.ratio * requests as f64
            + self.cfg.min_per_second * self.cfg.window.as_secs_f64();
        if (retries as f64) < allowed.floor() {
            let i = w.current;
            w.retries[i] += 1;
            true
        } else {
            false
        }
    }

    /// Rotates buckets that have expired by `now`.
    fn advance(&self, w: &mut Window, now: Instant) {
        let elapsed = now.saturating_duration_since(w.current_start);
        let steps = (elapsed.as_nanos() / self.bucket_len.as_nanos()) as usize;
        if steps == 0 {
            return;
        }
        for _ in 0..steps.min(BUCKETS) {
            w.current = (w.current + 1) % BUCKETS;
            let i = w.current;
            w.requests[i] = 0;
            w.retries[i] = 0;
        }
        w.current_start += self.bucket_len * steps as u32;
    }
}
