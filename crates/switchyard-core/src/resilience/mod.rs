//! Resilience: bounded retries with backoff, failover across an alias's deployments, retry
//! budgets and circuit breakers.
//!
//! The pipeline asks this module three things per attempt: may this deployment take traffic
//! ([`DeploymentHealth::breaker`]), may we retry at all ([`DeploymentHealth::budget`]), and how
//! long to wait first ([`RetryPolicy::delay`]). It reports every outcome back, which is what
//! opens and closes breakers. State is shared by all workers and lives as long as the process
//! (scale-out sharing of breaker state belongs to the Redis-backed mode).

pub mod breaker;
pub mod budget;
pub mod reset;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use parking_lot::RwLock;

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use budget::{BudgetConfig, RetryBudget};

use crate::error::{FailureKind, GatewayError, UpstreamErrorKind};

/// How a request is retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per client request, the first included (1 disables retries).
    pub max_attempts: u32,
    /// First backoff ceiling; each retry of the same deployment doubles it.
    pub backoff_base: Duration,
    /// Largest backoff ceiling.
    pub backoff_max: Duration,
    /// Longest `Retry-After` worth waiting for; a deployment asking for more is skipped for
    /// this request (another deployment may serve it now).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The wait before retrying a deployment for the `retry`-th time (1 for the first retry):
    /// "full jitter", uniform in `[0, min(max, base * 2^(retry-1))]`, so that clients that
    /// failed together do not come back together. `random` is any uniformly random `u64`.
    /// A provider's `Retry-After` is a floor.
    pub fn delay(&self, retry: u32, random: u64, retry_after: Option<Duration>) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let ceiling = self
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let jittered = Duration::from_nanos(if nanos == 0 { 0 } else { random % (nanos + 1) });
        jittered.max(retry_after.unwrap_or_default())
    }
}

/// Resilience settings for the whole gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResilienceConfig {
    /// Retries.
    pub retry: RetryPolicy,
    /// Retry budget per deployment.
    pub budget: BudgetConfig,
    /// Circuit breaker per deployment.
    pub breaker: BreakerConfig,
    /// Active health checks, when enabled.
    pub health_checks: Option<HealthChecks>,
}

/// Active health checks: every deployment of every alias gets a one-token chat completion
/// every `interval`; the outcome feeds its breaker, so a dead deployment is taken out before a
/// client hits it and a recovered one is back without a client as the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthChecks {
    /// Time between two rounds.
    pub interval: Duration,
    /// How long one probe may take.
    pub timeout: Duration,
}

/// The live state of one deployment.
#[derive(Debug)]
pub struct DeploymentHealth {
    /// Its breaker.
    pub breaker: Breaker,
    /// Its retry budget.
    pub budget: RetryBudget,
    /// Its recent times to response headers.
    pub latency: LatencyWindow,
    /// What happened to its attempts, for `/metrics`.
    pub counters: Counters,
    /// Live routing statistics: in flight, latency and error estimates, provider quota.
    pub stats: crate::routing::stats::DeploymentStats,
}

/// Attempt outcomes of one deployment since start.
#[derive(Debug, Default)]
pub struct Counters {
    successes: AtomicU64,
    failures: [AtomicU64; FailureKind::ALL.len()],
    retries: AtomicU64,
    retries_denied: AtomicU64,
    hedges: AtomicU64,
    hedges_lost: AtomicU64,
}

impl Counters {
    /// An attempt that got a good answer.
    pub fn success(&self) {
        self.successes.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt that failed with `err` (upstream failures only are counted by kind).
    pub fn failure(&self, err: &GatewayError) {
        if let GatewayError::Upstream(u) = err {
            let kind = u.failure();
            if let Some(i) = FailureKind::ALL.iter().position(|k| *k == kind) {
                self.failures[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A re-send to this deployment (its budget allowed it).
    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// A re-send its budget refused.
    pub fn retry_denied(&self) {
        self.retries_denied.fetch_add(1, Ordering::Relaxed);
    }

    /// A hedge attempt sent to this deployment.
    pub fn hedge(&self) {
        self.hedges.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt here cancelled because a hedge elsewhere answered first.
    pub fn hedge_lost(&self) {
        self.hedges_lost.fetch_add(1, Ordering::Relaxed);
    }
}

/// Gateway-wide resilience events since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct Events {
    /// Requests moved on to a fallback alias.
    pub fallbacks: AtomicU64,
    /// Requests answered with an alias's degradation message.
    pub degraded: AtomicU64,
    /// Streams continued on another deployment.
    pub stream_resumes: AtomicU64,
    /// Requests refused because every breaker was open.
    pub circuit_open: AtomicU64,
}

impl Events {
    /// Adds one to `counter`.
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The most recent times to response headers of one deployment, for percentile estimates
/// (hedging's `after: p95`, and latency-aware routing later).
#[derive(Debug, Default)]
pub struct LatencyWindow {
    samples: parking_lot::Mutex<std::collections::VecDeque<Duration>>,
}

impl LatencyWindow {
    /// Samples kept.
    const CAPACITY: usize = 256;
    /// Samples needed before a percentile is trusted.
    pub const MIN_SAMPLES: usize = 20;

    /// Records one successful attempt's time to response headers.
    pub fn record(&self, d: Duration) {
        let mut s = self.samples.lock();
        if s.len() == Self::CAPACITY {
            s.pop_front();
        }
        s.push_back(d);
    }

    /// The `q` quantile (0..=1) of the recent samples, once there are enough of them.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let mut v: Vec<Duration> = self.samples.lock().iter().copied().collect();
        if v.len() < Self::MIN_SAMPLES {
            return None;
        }
        v.sort_unstable();
        let rank = ((v.len() as f64 - 1.0) * q.clamp(0.0, 1.0)).round() as usize;
        v.get(rank).copied()
    }
}

/// When a hedged alias starts its second attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgeDelay {
    /// After a fixed delay.
    Fixed(Duration),
    /// After the first deployment's observed p95 time to headers; `initial` until it has
    /// enough samples.
    P95 {
        /// The delay before there are enough samples.
        initial: Duration,
    },
}

impl HedgeDelay {
    /// The delay for a first attempt at a deployment with this latency record.
    pub fn delay(&self, latency: &LatencyWindow) -> Duration {
        match *self {
            Self::Fixed(d) => d,
            Self::P95 { initial } => latency.quantile(0.95).unwrap_or(initial),
        }
    }
}

/// Deployment states by provider, then model.
type HealthMap = crate::FastMap<Arc<str>, crate::FastMap<Arc<str>, Arc<DeploymentHealth>>>;

/// Live state of every deployment, created on first use.
#[derive(Debug, Default)]
pub struct Health {
    cfg: ResilienceConfig,
    /// provider → model → state.
    map: RwLock<HealthMap>,
    /// Gateway-wide events.
    pub events: Events,
}

/// One deployment's state as the health endpoint shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSnapshot {
    /// Provider name.
    pub provider: Arc<str>,
    /// Upstream model.
    pub model: Arc<str>,
    /// Breaker state.
    pub state: BreakerState,
    /// Times the breaker opened since start.
    pub opened: u64,
}

impl Health {
    /// Empty state with these settings.
    pub fn new(cfg: ResilienceConfig) -> Self {
        Self {
            cfg,
            map: RwLock::default(),
            events: Events::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ResilienceConfig {
        &self.cfg
    }

    /// The state of `model` at `provider`.
    pub fn get(&self, provider: &Arc<str>, model: &Arc<str>) -> Arc<DeploymentHealth> {
        if let Some(h) = self
            .map
            .read()
            .get(&**provider)
            .and_then(|m| m.get(&**model))
        {
            return Arc::clone(h);
        }
        let mut map = self.map.write();
        let entry = map
            .entry(Arc::clone(provider))
            .or_default()
            .entry(Arc::clone(model))
            .or_insert_with(|| {
                Arc::new(DeploymentHealth {
                    breaker: Breaker::new(self.cfg.breaker),
                    budget: RetryBudget::new(self.cfg.budget),
                    latency: LatencyWindow::default(),
                    counters: Counters::default(),
                    stats: Default::default(),
                })
            });
        Arc::clone(entry)
    }

    /// Every deployment seen so far, sorted by provider and model.
    pub fn snapshot(&self) -> Vec<HealthSnapshot> {
        let map = self.map.read();
        let mut out: Vec<HealthSnapshot> = map
            .iter()
            .flat_map(|(p, models)| {
                models.iter().map(|(m, h)| {
                    let (state, opened) = h.breaker.snapshot();
                    HealthSnapshot {
                        provider: Arc::clone(p),
                        model: Arc::clone(m),
                        state,
                        opened,
                    }
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
        out
    }
}

impl Health {
    /// The Prometheus text exposition of breaker states and attempt counters for `deployments`
    /// (the configured ones: labels stay a bounded set whatever clients send).
    pub fn render_metrics(&self, deployments: &[(Arc<str>, Arc<str>)]) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut family =
            |name: &str, kind: &str, help: &str, rows: &mut dyn Iterator<Item = (String, u64)>| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (labels, v) in rows {
                    let _ = writeln!(out, "{name}{labels} {v}");
                }
            };
        let states: Vec<_> = deployments
            .iter()
            .map(|(p, m)| (p, m, self.get(p, m)))
            .collect();
        let lbl = |p: &str, m: &str, extra: &str| {
            format!(
                "{{provider=\"{}\",model=\"{}\"{extra}}}",
                crate::telemetry::escape_label(p),
                crate::telemetry::escape_label(m)
            )
        };
        family(
            "switchyard_breaker_state",
            "gauge",
            "Circuit breaker state per deployment: 0 closed, 1 half-open, 2 open.",
            &mut states.iter().map(|(p, m, h)| {
                let v = match h.breaker.snapshot().0 {
                    BreakerState::Closed => 0,
                    BreakerState::HalfOpen => 1,
                    BreakerState::Open => 2,
                };
                (lbl(p, m, ""), v)
            }),
        );
        family(
            "switchyard_breaker_opened_total",
            "counter",
            "Times each deployment's circuit breaker opened.",
            &mut states
                .iter()
                .map(|(p, m, h)| (lbl(p, m, ""), h.breaker.snapshot().1)),
        );
        family(
            "switchyard_upstream_attempts_total",
            "counter",
            "Upstream attempts per deployment by outcome (ok, or the normalised failure kind).",
            &mut states.iter().flat_map(|(p, m, h)| {
                let ok = (lbl(p, m, ",outcome=\"ok\""), load(&h.counters.successes));
                let failed =
                    FailureKind::ALL
                        .iter()
                        .zip(&h.counters.failures)
                        .map(move |(k, c)| {
                            (lbl(p, m, &format!(",outcome=\"{}\"", k.as_str())), load(c))
                        });
                std::iter::once(ok).chain(failed)
            }),
        );
        for (name, help, pick) in [
            (
                "switchyard_retries_total",
                "Re-sends to a deployment that already failed the request.",
                (|c: &Counters| &c.retries) as fn(&Counters) -> &AtomicU64,
            ),
            (
                "switchyard_retries_denied_total",
                "Re-sends refused by the deployment's retry budget.",
                |c: &Counters| &c.retries_denied,
            ),
            (
                "switchyard_hedges_total",
                "Hedge attempts sent to the deployment.",
                |c: &Counters| &c.hedges,
            ),
            (
                "switchyard_hedges_lost_total",
                "Attempts cancelled because a hedge elsewhere answered first.",
                |c: &Counters| &c.hedges_lost,
            ),
        ] {
            family(
                name,
                "counter",
                help,
                &mut states
                    .iter()
                    .map(|(p, m, h)| (lbl(p, m, ""), load(pick(&h.counters)))),
            );
        }
        for (name, help, counter) in [
            (
                "switchyard_fallbacks_total",
                "Requests moved on to a fallback alias.",
                &self.events.fallbacks,
            ),
            (
                "switchyard_degraded_total",
                "Requests answered with an alias's degradation message.",
                &self.events.degraded,
            ),
            (
                "switchyard_stream_resumes_total",
                "Streams continued on another deployment.",
                &self.events.stream_resumes,
            ),
            (
                "switchyard_circuit_open_rejections_total",
                "Requests refused because every breaker was open.",
                &self.events.circuit_open,
            ),
        ] {
            family(
                name,
                "counter",
                help,
                &mut std::iter::once((String::new(), load(counter))),
            );
        }
        out
    }
}

/// Escapes a Prometheus label value.
/// Whether an outcome says the deployment itself is unhealthy (what breakers count). The
/// client's own mistakes and refusals say nothing about the deployment.
pub fn is_unhealthy(err: &GatewayError) -> bool {
    match err {
        GatewayError::Upstream(u) => matches!(
            u.failure(),
            FailureKind::Overloaded
                | FailureKind::UpstreamError
                | FailureKind::Timeout
                | FailureKind::RateLimited
        ),
        _ => false,
    }
}

/// Whether another attempt may succeed where this one failed.
pub fn is_retryable(err: &GatewayError) -> bool {
    match err {
        GatewayError::Upstream(u) => u.failure().is_retryable(),
        _ => false,
    }
}

/// The provider's `Retry-After` (seconds, possibly fractional), when the error carries one.
pub fn retry_after(err: &GatewayError) -> Option<Duration> {
    let GatewayError::Upstream(u) = err else {
        return None;
    };
    let UpstreamErrorKind::Http {
        retry_after: Some(v),
        ..
    } = &u.kind
    else {
        return None;
    };
    parse_retry_after(v)
}

/// Reads a `Retry-After` value in seconds. HTTP dates are not honoured (providers send
/// seconds); an unreadable value counts as absent.
pub fn parse_retry_after(v: &HeaderValue) -> Option<Duration> {
    let secs: f64 = v.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

#[cfg(test)]
mod tests;
