//! Live statistics of each deployment, fed by every request: requests in flight, decaying
//! estimates of latency (to response headers) and time to first token, the recent error rate,
//! and the provider's remaining rate-limit quota as its last response reported it.
//!
//! Latency-aware, least-in-flight, quota-aware and scored routing read these; so does
//! `GET /v1/deployments/stats`. They live in [`crate::resilience::DeploymentHealth`] next to
//! the breaker, keyed by `provider/model` like it, so they survive config reloads.
//!
//! The estimates are exponentially weighted moving averages over *time*: a sample's weight is
//! `1 - exp(-Δt/τ)` (but at least [`MIN_WEIGHT`], so bursts still move them), and when a
//! deployment gets no traffic its estimates decay towards zero with time constant
//! [`IDLE_DECAY`]. Decay is what lets a deployment that was slow or failing a minute ago be
//! tried again instead of being starved forever.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::resilience::reset::{self, QuotaReading};
use crate::resilience::{DeploymentHealth, LatencyWindow};

/// Time constant of the moving averages while traffic flows.
pub const TAU: Duration = Duration::from_secs(10);
/// Time constant of the decay towards zero while a deployment gets no samples.
pub const IDLE_DECAY: Duration = Duration::from_secs(60);
/// Least weight of one sample, so a burst of samples in the same instant still counts.
pub const MIN_WEIGHT: f64 = 0.05;

/// A time-decaying moving average.
#[derive(Debug, Clone, Copy)]
pub struct Decaying {
    value: f64,
    at: Option<Instant>,
}

impl Default for Decaying {
    fn default() -> Self {
        Self {
            value: 0.0,
            at: None,
        }
    }
}

impl Decaying {
    /// Adds a sample observed at `now`.
    pub fn update(&mut self, sample: f64, now: Instant) {
        match self.at {
            None => self.value = sample,
            Some(at) => {
                let dt = now.saturating_duration_since(at).as_secs_f64();
                let keep = (-dt / TAU.as_secs_f64()).exp().min(1.0 - MIN_WEIGHT);
                self.value = keep * self.value + (1.0 - keep) * sample;
            }
        }
        self.at = Some(now);
    }

    /// The estimate at `now`, decayed for the time since the last sample; `None` before any.
    pub fn read(&self, now: Instant) -> Option<f64> {
        let at = self.at?;
        let idle = now.saturating_duration_since(at).as_secs_f64();
        Some(self.value * (-idle / IDLE_DECAY.as_secs_f64()).exp())
    }
}

/// The provider's rate-limit state as of its last response.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    /// What the headers said.
    pub reading: QuotaReading,
    /// When they were read.
    pub at: Instant,
}

impl Quota {
    /// Requests the provider still allows now: `None` when unknown or when the reported reset
    /// time has passed (the window refilled).
    pub fn remaining_requests(&self, now: Instant) -> Option<u64> {
        let r = &self.reading;
        live(r.remaining_requests, r.reset_requests, self.at, now)
    }

    /// Tokens the provider still allows now, as for [`Quota::remaining_requests`].
    pub fn remaining_tokens(&self, now: Instant) -> Option<u64> {
        let r = &self.reading;
        live(r.remaining_tokens, r.reset_tokens, self.at, now)
    }
}

fn live(remaining: Option<u64>, reset: Option<Duration>, at: Instant, now: Instant) -> Option<u64> {
    let remaining = remaining?;
    match reset {
        Some(d) if at + d <= now => None,
        _ => Some(remaining),
    }
}

/// Whether a deployment has rate-limit room for one more request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Headroom {
    /// Nothing known, or room to spare.
    Ok,
    /// Running out: fewer requests or tokens left (after those in flight) than the reserve,
    /// or than this request needs. Carries when the provider said it refills.
    Low {
        /// Time until the exhausted limit resets, when reported.
        resets_in: Option<Duration>,
    },
}

/// Live statistics of one deployment.
#[derive(Debug)]
pub struct DeploymentStats {
    in_flight: AtomicI64,
    requests: AtomicU64,
    failures: AtomicU64,
    inner: Mutex<Inner>,
    /// Recent times to first token, for the p95.
    pub ttft_window: LatencyWindow,
}

#[derive(Debug, Default)]
struct Inner {
    latency_ms: Decaying,
    ttft_ms: Decaying,
    errors: Decaying,
    quota: Option<Quota>,
}

impl Default for DeploymentStats {
    fn default() -> Self {
        Self {
            in_flight: AtomicI64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
            ttft_window: LatencyWindow::default(),
        }
    }
}

/// A point-in-time copy of one deployment's statistics.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatsSnapshot {
    /// Requests sent and not yet finished (streams count until they end).
    pub in_flight: u64,
    /// Attempts finished since start.
    pub requests: u64,
    /// Of those, failures that say the deployment is unhealthy.
    pub failures: u64,
    /// Decaying estimate of the time to response headers, ms.
    pub latency_ms: Option<f64>,
    /// Decaying estimate of the time to first token, ms.
    pub ttft_ms: Option<f64>,
    /// Decaying recent error rate, 0 to 1.
    pub error_rate: Option<f64>,
    /// The provider's remaining quota, as last reported.
    pub quota: Option<Quota>,
}

impl DeploymentStats {
    /// Requests in flight now.
    pub fn in_flight(&self) -> u64 {
        u64::try_from(self.in_flight.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Records an attempt's time to response headers (successful attempts only).
    pub fn record_latency(&self, d: Duration, now: Instant) {
        self.inner
            .lock()
            .latency_ms
            .update(d.as_secs_f64() * 1000.0, now);
    }

    /// Records a served request's time to first token.
    pub fn record_ttft(&self, ms: f64, now: Instant) {
        self.ttft_window
            .record(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
        self.inner.lock().ttft_ms.update(ms, now);
    }

    /// Records an attempt's outcome: `healthy` is false only for failures that say something
    /// about the deployment (overload, 5xx, timeouts, rate limits), not the client's mistakes.
    pub fn record_outcome(&self, healthy: bool, now: Instant) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !healthy {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.inner
            .lock()
            .errors
            .update(if healthy { 0.0 } else { 1.0 }, now);
    }

    /// Reads the provider's rate-limit headers from any response (success or error).
    pub fn observe_headers(&self, headers: &HeaderMap, now: Instant) {
        if let Some(reading) = reset::quota(headers, SystemTime::now()) {
            self.inner.lock().quota = Some(Quota { reading, at: now });
        }
    }

    /// Sets the quota directly (simulations and tests).
    pub fn set_quota(&self, reading: QuotaReading, now: Instant) {
        self.inner.lock().quota = Some(Quota { reading, at: now });
    }

    /// A copy of everything, estimates decayed to `now`.
    pub fn snapshot(&self, now: Instant) -> StatsSnapshot {
        let inner = self.inner.lock();
        StatsSnapshot {
            in_flight: self.in_flight(),
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            latency_ms: inner.latency_ms.read(now),
            ttft_ms: inner.ttft_ms.read(now),
            error_rate: inner.errors.read(now),
            quota: inner.quota,
        }
    }

    /// Whether one more request needing about `tokens` tokens fits the provider's remaining
    /// quota, keeping `reserve` (a fraction of each limit, at least one request) unused.
    pub fn headroom(&self, tokens: u64, reserve: f64, now: Instant) -> Headroom {
        let Some(q) = self.inner.lock().quota else {
            return Headroom::Ok;
        };
        let in_flight = self.in_flight();
        let r = &q.reading;
        let keep = |limit: Option<u64>| -> u64 {
            limit.map_or(1, |l| ((l as f64 * reserve).ceil() as u64).max(1))
        };
        if let Some(left) = q.remaining_requests(now) {
            if left.saturating_sub(in_flight) < keep(r.limit_requests) {
                return Headroom::Low {
                    resets_in: r
                        .reset_requests
                        .map(|d| (q.at + d).saturating_duration_since(now)),
                };
            }
        }
        if let Some(left) = q.remaining_tokens(now) {
            let need = tokens.max(keep(r.limit_tokens));
            if left < need {
                return Headroom::Low {
                    resets_in: r
                        .reset_tokens
                        .map(|d| (q.at + d).saturating_duration_since(now)),
                };
            }
        }
        Headroom::Ok
    }
}

/// A request in flight at a deployment; counts down when dropped (for streams, when the body
/// ends), so no path can leak a count.
#[derive(Debug)]
pub struct InFlight(Arc<DeploymentHealth>, Instant);

impl InFlight {
    /// Counts a request starting at `health`'s deployment now.
    pub fn begin(health: Arc<DeploymentHealth>) -> Self {
        health.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(health, Instant::now())
    }

    /// The deployment's statistics.
    pub fn stats(&self) -> &DeploymentStats {
        &self.0.stats
    }

    /// When the attempt started.
    pub fn started(&self) -> Instant {
        self.1
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
