//! The circuit breaker: stop sending traffic to a deployment that keeps failing, probe it
//! once in a while, and take it back when a probe succeeds.
//!
//! It opens on either signal: `consecutive_failures` in a row (a hard outage shows at once),
//! or a failure rate of at least `failure_rate` over the last `window` once `min_requests`
//! were seen (a deployment failing every other request never has a long run of failures).
//! After `open_for` it lets exactly one probe through (half-open); the probe's outcome closes
//! or re-opens it.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Breaker settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker.
    pub consecutive_failures: u32,
    /// Failure share over the window that opens it, e.g. 0.5.
    pub failure_rate: f64,
    /// Requests the window needs before the rate counts.
    pub min_requests: u32,
    /// How far back the failure rate looks.
    pub window: Duration,
    /// How long it stays open before a probe.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate: 0.5,
            min_requests: 20,
            window: Duration::from_secs(30),
            open_for: Duration::from_secs(30),
        }
    }
}

/// The state a breaker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Traffic flows.
    Closed,
    /// Traffic is refused until the probe time.
    Open,
    /// One probe is allowed (or in flight).
    HalfOpen,
}

impl BreakerState {
    /// Stable name for the health endpoint and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// One deployment's breaker.
#[derive(Debug)]
pub struct Breaker {
    cfg: BreakerConfig,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    /// When an open breaker may probe.
    open_until: Instant,
    probe_in_flight: bool,
    consecutive: u32,
    window_start: Instant,
    successes: u32,
    failures: u32,
    /// Times the breaker opened, for the health endpoint.
    opened: u64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(cfg: BreakerConfig) -> Self {
        let now = Instant::now();
        Self {
            cfg,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                open_until: now,
                probe_in_flight: false,
                consecutive: 0,
                window_start: now,
                successes: 0,
                failures: 0,
                opened: 0,
            }),
        }
    }

    /// Whether a request may go to the deployment now; in half-open state this takes the one
    /// probe slot, which [`Breaker::record`] gives back.
    pub fn allow(&self) -> bool {
        let now = Instant::now();
        let mut s = self.inner.lock();
        match s.state {
            BreakerState::Closed => true,
            BreakerState::Open if now >= s.open_until => {
                s.state = BreakerState::HalfOpen;
                s.probe_in_flight = true;
                true
            }
            BreakerState::Open => false,
            BreakerState::HalfOpen if !s.probe_in_flight => {
                s.probe_in_flight = true;
                true
            }
            BreakerState::HalfOpen => false,
        }
    }

    /// Records the outcome of a request that [`Breaker::allow`] let through. `ok` is false
    /// only for failures that say the deployment is unhealthy (not for the client's errors).
    pub fn record(&self, ok: bool) {
        let now = Instant::now();
        let mut s = self.inner.lock();
        if now.saturating_duration_since(s.window_start) >= self.cfg.window {
            s.window_start = now;
            s.successes = 0;
            s.failures = 0;
        }
        match s.state {
            BreakerState::HalfOpen => {
                s.probe_in_flight = false;
                if ok {
                    s.state = BreakerState::Closed;
                    s.consecutive = 0;
                    s.window_start = now;
                    s.successes = 0;
                    s.failures = 0;
                } else {
                    self.open(&mut s, now);
                }
            }
            BreakerState::Closed => {
                if ok {
                    s.consecutive = 0;
                    s.successes += 1;
                    return;
                }
                s.consecutive += 1;
                s.failures += 1;
                let seen = s.successes + s.failures;
                let rate_trips = seen >= self.cfg.min_requests
                    && f64::from(s.failures) >= self.cfg.failure_rate * f64::from(seen);
                if s.consecutive >= self.cfg.consecutive_failures || rate_trips {
                    self.open(&mut s, now);
                }
            }
            // A request let through before the breaker opened: it changes nothing.
            BreakerState::Open => {}
        }
    }

    /// Takes an active health check's outcome: a success closes an open breaker at once (the
    /// deployment is back, no client needs to be the probe); a failure counts like a request's
    /// and keeps an open breaker open for another `open_for`.
    pub fn health_check(&self, ok: bool) {
        let now = Instant::now();
        let mut s = self.inner.lock();
        match (s.state, ok) {
            (BreakerState::Closed, true) => {
                s.consecutive = 0;
            }
            (BreakerState::Closed, false) => {
                drop(s);
                self.record(false);
            }
            (BreakerState::Open | BreakerState::HalfOpen, true) => {
                s.state = BreakerState::Closed;
                s.probe_in_flight = false;
                s.consecutive = 0;
                s.window_start = now;
                s.successes = 0;
                s.failures = 0;
            }
            (BreakerState::Open | BreakerState::HalfOpen, false) => self.open(&mut s, now),
        }
    }

    /// Gives back a probe slot taken by [`Breaker::allow`] for a request that was never sent.
    pub fn release(&self) {
        let mut s = self.inner.lock();
        if s.state == BreakerState::HalfOpen {
            s.probe_in_flight = false;
        }
    }

    /// The current state and how many times the breaker has opened.
    pub fn snapshot(&self) -> (BreakerState, u64) {
        let s = self.inner.lock();
        (s.state, s.opened)
    }

    fn open(&self, s: &mut Inner, now: Instant) {
        s.state = BreakerState::Open;
        s.open_until = now + self.cfg.open_for;
        s.probe_in_flight = false;
        s.consecutive = 0;
        s.opened += 1;
    }
}
