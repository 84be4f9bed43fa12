//! Rate limits per virtual key, team, user and tag: requests per minute (RPM) and tokens per
//! minute (TPM), both by GCRA (the generic cell rate algorithm), in memory.
//!
//! GCRA keeps one instant per limit, the *theoretical arrival time* (TAT): each admitted unit
//! pushes it forward by the emission interval `60s / limit`, and a request is admitted when the
//! TAT is not further ahead of now than the burst tolerance. It needs no timers, no per-request
//! history, and is exact under any arrival pattern.
//!
//! - **RPM** allows a burst of one second's worth (`ceil(rpm / 60)`, at least 1), then one
//!   request every `60s / rpm`: over any minute at most `rpm + burst - 1` requests pass, i.e.
//!   within 1/60 (≈1.7%) of the configured RPM.
//! - **TPM** allows a whole minute's worth at once. A request costs its prompt tokens at
//!   admission (counted by the model's tokenizer for OpenAI-family models, see
//!   `crate::tokenize`; else [`estimate_prompt_tokens`]); when it ends, the charge is replaced
//!   by the tokens the provider reported (prompt + completion), or refunded when it failed.
//!   A request larger than the whole TPM passes only when the bucket is full, so it is slowed
//!   down rather than refused forever.
//!
//! Every scope a request falls in (its key, its team, its user, each of its tags with a
//! configured limit) must admit it; nothing is charged unless all do. The response carries
//! OpenAI's `x-ratelimit-*` headers for the most constrained scope.
//!
//! Where the state lives ([`crate::resp::BackendKind`]): in this process ([`Limiter`], the
//! embedded default), or in Redis (`redis`), shared by every replica, with this process's
//! limiter as the fall-back when Redis cannot be asked (`limits.on_backend_error: allow`).
//! Both give the same answers and the same headers. Over a limit, a request may wait for room
//! in a queue with priority classes (`queue`) instead of getting its 429 at once.

pub mod config;
mod queue;
mod redis;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use parking_lot::Mutex;
use tokio::time::Instant;

pub use config::{Limit, LimitsConfig, OnBackendError, Priority};
use queue::Turn;

/// The request header that asks for a lower priority class than the key's (`low`, `normal`,
/// `high`; a higher one than the key's is ignored).
pub const PRIORITY_HEADER: &str = "x-switchyard-priority";
/// Least time between two warnings about an unavailable limiter backend.
const WARN_EVERY: Duration = Duration::from_secs(10);

const MINUTE: Duration = Duration::from_secs(60);
/// Scope states kept before idle (fully replenished) ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// One scope a request is limited in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `key:<name>`, `team:<name>`, `user:<name>` or `tag:<k>=<v>`.
    pub name: String,
    /// The limits of this scope.
    pub limit: Limit,
}

/// The state of one scope.
#[derive(Debug, Default, Clone, Copy)]
struct State {
    requests_tat: Option<Instant>,
    tokens_tat: Option<Instant>,
}

/// What the client is told about its limits (`x-ratelimit-*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateInfo {
    /// `(limit, remaining, reset)` for requests, of the most constrained scope.
    pub requests: Option<(u64, u64, Duration)>,
    /// `(limit, remaining, reset)` for tokens, of the most constrained scope.
    pub tokens: Option<(u64, u64, Duration)>,
}

impl RateInfo {
    /// Adds the `x-ratelimit-*` headers OpenAI sends.
    pub fn stamp(&self, h: &mut HeaderMap) {
        let mut put = |what: &str, (limit, remaining, reset): (u64, u64, Duration)| {
            for (name, value) in [
                (format!("x-ratelimit-limit-{what}"), limit.to_string()),
                (
                    format!("x-ratelimit-remaining-{what}"),
                    remaining.to_string(),
                ),
                (format!("x-ratelimit-reset-{what}"), format_reset(reset)),
            ] {
                if let (Ok(n), Ok(v)) = (
                    http::HeaderName::try_from(name),
                    HeaderValue::from_str(&value),
                ) {
                    h.insert(n, v);
                }
            }
        };
        if let Some(r) = self.requests {
            put("requests", r);
        }
        if let Some(t) = self.tokens {
            put("tokens", t);
        }
    }
}

/// A duration as OpenAI writes resets: `1s`, `6m0s`, `120ms`, `1.5s`.
pub fn format_reset(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        let s = format!("{:.3}", secs);
        let s = s.trim_end_matches('0').trim_end_matches('.');
        return format!("{s}s");
    }
    let whole = d.as_secs();
    format!("{}m{}s", whole / 60, whole % 60)
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The scope that refused (`team:search`).
    pub scope: String,
    /// `requests` or `tokens`.
    pub what: &'static str,
    /// The limit per minute.
    pub limit: u64,
    /// When a retry can pass.
    pub retry_after: Duration,
    /// The headers to send.
    pub info: RateInfo,
}

/// Why a request was not admitted.
#[derive(Debug)]
pub enum Refusal {
    /// Over a limit (429).
    Limited(Box<Denied>),
    /// The shared backend cannot be asked and `limits.on_backend_error` is `deny` (503).
    Unavailable,
}

/// GCRA state for every scope, in this process.
#[derive(Debug, Default)]
pub struct Limiter {
    states: Mutex<HashMap<String, State>>,
}

fn interval(per_minute: u64) -> Duration {
    MINUTE.div_f64(per_minute.max(1) as f64)
}

fn burst(rpm: u64) -> u64 {
    rpm.div_ceil(60).max(1)
}

/// How long one more request must wait when the requests TAT is `ahead` of now, or `None`
/// when it may pass now.
fn requests_wait(ahead: Duration, rpm: u64) -> Option<Duration> {
    let tau = interval(rpm) * u32::try_from(burst(rpm) - 1).unwrap_or(u32::MAX);
    (ahead > tau).then(|| ahead - tau)
}

/// How long `cost` more tokens must wait when the tokens TAT is `ahead` of now, or `None`
/// when they may pass now.
fn tokens_wait(ahead: Duration, tpm: u64, cost: u64) -> Option<Duration> {
    if ahead.is_zero() {
        return None; // a full bucket admits anything, even a request over the whole TPM
    }
    let need = interval(tpm).mul_f64(cost as f64);
    (ahead + need > MINUTE).then(|| ahead + need.min(MINUTE) - MINUTE)
}

/// The headers' view of `scopes` whose TATs are `aheads` (requests, tokens) past now: for
/// requests and tokens, the scope with the fewest remaining.
fn rate_info(scopes: &[Scope], aheads: &[(Duration, Duration)]) -> RateInfo {
    let mut out = RateInfo::default();
    for (s, &(r_ahead, t_ahead)) in scopes.iter().zip(aheads) {
        if let Some(rpm) = s.limit.rpm {
            let t = interval(rpm);
            let capacity = t * u32::try_from(burst(rpm)).unwrap_or(u32::MAX);
            let remaining = capacity.saturating_sub(r_ahead).as_nanos() / t.as_nanos().max(1);
            let r = (rpm, u64::try_from(remaining).unwrap_or(0), r_ahead);
            if out.requests.is_none_or(|o| r.1 < o.1) {
                out.requests = Some(r);
            }
        }
        if let Some(tpm) = s.limit.tpm {
            let t = interval(tpm);
            let remaining = MINUTE.saturating_sub(t_ahead).as_nanos() / t.as_nanos().max(1);
            let r = (tpm, u64::try_from(remaining).unwrap_or(0).min(tpm), t_ahead);
            if out.tokens.is_none_or(|o| r.1 < o.1) {
                out.tokens = Some(r);
            }
        }
    }
    out
}

impl Limiter {
    /// Admits a request costing `tokens` in every scope, or says which refused and for how
    /// long. Nothing is charged unless every scope admits.
    pub fn admit(
        &self,
        scopes: &[Scope],
        tokens: u64,
        now: Instant,
    ) -> Result<RateInfo, Box<Denied>> {
        let mut states = self.states.lock();
        let ahead =
            |tat: Option<Instant>| tat.map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        let mut worst: Option<Denied> = None;
        for s in scopes {
            let st = states.get(&s.name).copied().unwrap_or_default();
            let mut deny = |what: &'static str, limit: u64, wait: Duration| {
                if worst.as_ref().is_none_or(|w| wait > w.retry_after) {
                    worst = Some(Denied {
                        scope: s.name.clone(),
                        what,
                        limit,
                        retry_after: wait,
                        info: RateInfo::default(),
                    });
                }
            };
            if let Some(rpm) = s.limit.rpm {
                if let Some(wait) = requests_wait(ahead(st.requests_tat), rpm) {
                    deny("requests", rpm, wait);
                }
            }
            if let Some(tpm) = s.limit.tpm {
                if let Some(wait) = tokens_wait(ahead(st.tokens_tat), tpm, tokens) {
                    deny("tokens", tpm, wait);
                }
            }
        }
        if let Some(mut d) = worst {
            d.info = Self::info(&states, scopes, now);
            return Err(Box::new(d));
        }
        for s in scopes {
            let st = states.entry(s.name.clone()).or_default();
            if let Some(rpm) = s.limit.rpm {
                let base = st.requests_tat.map_or(now, |t| t.max(now));
                st.requests_tat = Some(base + interval(rpm));
            }
            if let Some(tpm) = s.limit.tpm {
                let base = st.tokens_tat.map_or(now, |t| t.max(now));
                st.tokens_tat = Some(base + interval(tpm).mul_f64(tokens as f64));
            }
        }
        let info = Self::info(&states, scopes, now);
        if states.len() > PRUNE_ABOVE {
            states.retain(|_, st| {
                st.requests_tat.is_some_and(|t| t > now) || st.tokens_tat.is_some_and(|t| t > now)
            });
        }
        Ok(info)
    }

    /// Replaces an admitted request's token estimate with what it really used.
    pub fn reconcile(&self, scopes: &[Scope], estimated: u64, actual: u64, now: Instant) {
        if estimated == actual {
            return;
        }
        let mut states = self.states.lock();
        for s in scopes {
            let (Some(tpm), Some(st)) = (s.limit.tpm, states.get_mut(&s.name)) else {
                continue;
            };
            let Some(tat) = st.tokens_tat else { continue };
            let t = interval(tpm);
            st.tokens_tat = Some(if actual > estimated {
                tat.max(now) + t.mul_f64((actual - estimated) as f64)
            } else {
                let refund = t.mul_f64((estimated - actual) as f64);
                // A refund cannot make the bucket fuller than full.
                tat.checked_sub(refund).map_or(now, |t| t.max(now))
            });
        }
    }

    fn info(states: &HashMap<String, State>, scopes: &[Scope], now: Instant) -> RateInfo {
        let ahead =
            |tat: Option<Instant>| tat.map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        let aheads: Vec<_> = scopes
            .iter()
            .map(|s| {
                let st = states.get(&s.name).copied().unwrap_or_default();
                (ahead(st.requests_tat), ahead(st.tokens_tat))
            })
            .collect();
        rate_info(scopes, &aheads)
    }
}

/// Which limiter charged an admitted request (and so takes its correction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charged {
    /// This process's limiter.
    Local,
    /// Redis.
    Shared,
}

/// Counters of the shared backend's failures, and the throttle of their warning line.
#[derive(Debug, Default)]
struct BackendStats {
    /// Failed or timed-out admission calls.
    admit_errors: AtomicU64,
    /// Failed or timed-out corrections.
    reconcile_errors: AtomicU64,
    /// When the last warning was logged.
    last_warning: Mutex<Option<Instant>>,
    /// Failures not warned about since.
    unwarned: AtomicU64,
}

/// The limits of a gateway: config and state. Workers share the state; each has its own
/// Redis connection ([`Limits::for_worker`]).
#[derive(Debug)]
pub struct Limits {
    /// `limits:` as configured.
    pub config: Arc<LimitsConfig>,
    /// This process's GCRA state: the limiter in embedded mode, the fall-back with Redis.
    pub limiter: Arc<Limiter>,
    queues: Arc<queue::WaitQueues>,
    shared: Option<redis::RedisLimiter>,
    stats: Arc<BackendStats>,
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(LimitsConfig::default())
    }
}

/// What an admitted request must give back when it ends.
#[derive(Debug)]
pub struct Admission {
    limits: Arc<Limits>,
    scopes: Vec<Scope>,
    estimated: u64,
    charged: Charged,
}

impl Admission {
    /// Settles the request's tokens: `used` when the provider reported usage, nothing (a
    /// refund) when it failed without any, the estimate otherwise. With Redis the correction
    /// is sent in the background.
    pub fn settle(self, used: Option<u64>, failed: bool) {
        let actual = used.unwrap_or(if failed { 0 } else { self.estimated });
        if actual == self.estimated || self.scopes.iter().all(|s| s.limit.tpm.is_none()) {
            return;
        }
        let limits = self.limits;
        match (self.charged, &limits.shared) {
            (Charged::Shared, Some(_)) => {
                let Ok(rt) = tokio::runtime::Handle::try_current() else {
                    return;
                };
                let (scopes, estimated) = (self.scopes, self.estimated);
                rt.spawn(async move {
                    let Some(shared) = &limits.shared else { return };
                    match shared.reconcile(&scopes, estimated, actual, None).await {
                        Ok(()) => limits.refunded(&scopes, estimated, actual),
                        Err(e) => {
                            limits
                                .stats
                                .reconcile_errors
                                .fetch_add(1, Ordering::Relaxed);
                            limits.warn_backend(&e, shared);
                        }
                    }
                });
            }
            _ => {
                limits
                    .limiter
                    .reconcile(&self.scopes, self.estimated, actual, Instant::now());
                limits.refunded(&self.scopes, self.estimated, actual);
            }
        }
    }
}

/// Who a request is, for limits.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The virtual key's name.
    pub key: Option<&'a str>,
    /// The key's own limits (from its store record).
    pub key_limit: Limit,
    /// The team.
    pub team: Option<&'a str>,
    /// The user.
    pub user: Option<&'a str>,
    /// The tags.
    pub tags: &'a [(Arc<str>, Arc<str>)],
    /// The class the request asked for ([`PRIORITY_HEADER`]); it can only lower the
    /// configured one.
    pub priority: Option<Priority>,
}

impl Limits {
    /// Limits from validated config, with empty state. With the Redis backend nothing is
    /// connected until the first request (see [`Limits::start`]).
    pub fn new(config: LimitsConfig) -> Self {
        let shared = config.redis.as_ref().map(redis::RedisLimiter::new);
        Self {
            config: Arc::new(config),
            limiter: Arc::default(),
            queues: Arc::default(),
            shared,
            stats: Arc::default(),
        }
    }

    /// [`Limits::new`], then, with the Redis backend, one `PING` to say in the log whether
    /// Redis answers (the gateway starts either way: `on_backend_error` applies meanwhile).
    pub async fn start(config: LimitsConfig) -> Self {
        let limits = Self::new(config);
        if let Some(shared) = &limits.shared {
            match shared.ping().await {
                Ok(()) => tracing::info!(
                    target: "switchyard::limits",
                    server = %shared.describe(),
                    "rate limits shared through redis"
                ),
                Err(e) => tracing::warn!(
                    target: "switchyard::limits",
                    server = %shared.describe(),
                    error = %e,
                    on_backend_error = shared.on_error.as_str(),
                    "rate-limit backend unavailable at start-up"
                ),
            }
        }
        limits
    }

    /// A view sharing all state, with a Redis connection of its own (for a worker runtime).
    pub fn for_worker(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            limiter: Arc::clone(&self.limiter),
            queues: Arc::clone(&self.queues),
            shared: self.shared.as_ref().map(redis::RedisLimiter::for_worker),
            stats: Arc::clone(&self.stats),
        }
    }

    /// The scopes `subject` falls in that have a limit.
    pub fn scopes(&self, subject: &Subject<'_>) -> Vec<Scope> {
        let c = &self.config;
        let mut out = Vec::new();
        let mut add = |name: String, limit: Limit| {
            if limit.rpm.is_some() || limit.tpm.is_some() {
                out.push(Scope { name, limit });
            }
        };
        if let Some(k) = subject.key {
            let named = c.keys.get(k).copied().unwrap_or_default();
            let limit = Limit {
                rpm: subject.key_limit.rpm.or(named.rpm).or(c.default_key.rpm),
                tpm: subject.key_limit.tpm.or(named.tpm).or(c.default_key.tpm),
            };
            add(format!("key:{k}"), limit);
        }
        if let Some(l) = subject.team.and_then(|t| c.teams.get(t)) {
            add(format!("team:{}", subject.team.unwrap_or_default()), *l);
        }
        if let Some(l) = subject.user.and_then(|u| c.users.get(u)) {
            add(format!("user:{}", subject.user.unwrap_or_default()), *l);
        }
        for (k, v) in subject.tags {
            if let Some(l) = c.tags.get(&format!("{k}={v}")) {
                add(format!("tag:{k}={v}"), *l);
            }
        }
        out
    }

    /// The request's class: its key's (`limits.keys.<name>`), else its team's, else
    /// `default_key`'s; lowered, never raised, by what the request asked for.
    pub fn priority(&self, subject: &Subject<'_>) -> Priority {
        let c = &self.config;
        let configured = subject
            .key
            .and_then(|k| c.key_priority.get(k))
            .or_else(|| subject.team.and_then(|t| c.team_priority.get(t)))
            .copied()
            .unwrap_or(c.default_priority);
        subject.priority.map_or(configured, |p| p.min(configured))
    }

    /// One admission attempt: the shared backend (or, when it fails and may, this process's
    /// limiter), no waiting.
    async fn try_admit(
        &self,
        scopes: &[Scope],
        tokens: u64,
    ) -> Result<(Charged, RateInfo), Refusal> {
        if let Some(shared) = &self.shared {
            match shared.admit(scopes, tokens, None).await {
                Ok(v) => {
                    return v
                        .outcome(scopes)
                        .map(|info| (Charged::Shared, info))
                        .map_err(Refusal::Limited);
                }
                Err(e) => {
                    self.stats.admit_errors.fetch_add(1, Ordering::Relaxed);
                    self.warn_backend(&e, shared);
                    if shared.on_error == OnBackendError::Deny {
                        return Err(Refusal::Unavailable);
                    }
                }
            }
        }
        self.limiter
            .admit(scopes, tokens, Instant::now())
            .map(|info| (Charged::Local, info))
            .map_err(Refusal::Limited)
    }

    /// Logs that the backend failed, at most once per [`WARN_EVERY`], with the number of
    /// failures since the last line.
    fn warn_backend(&self, e: &crate::resp::Error, shared: &redis::RedisLimiter) {
        let now = Instant::now();
        {
            let mut last = self.stats.last_warning.lock();
            if last.is_some_and(|t| now < t + WARN_EVERY) {
                self.stats.unwarned.fetch_add(1, Ordering::Relaxed);
                return;
            }
            *last = Some(now);
        }
        let since = self.stats.unwarned.swap(0, Ordering::Relaxed);
        tracing::warn!(
            target: "switchyard::limits",
            server = %shared.describe(),
            error = %e,
            on_backend_error = shared.on_error.as_str(),
            failures_not_logged = since,
            "rate-limit backend unavailable: {}",
            match shared.on_error {
                OnBackendError::Allow => "limiting in this process only",
                OnBackendError::Deny => "refusing limited requests",
            }
        );
    }

    /// Tokens came back to `scopes`: their queues' heads may pass now.
    fn refunded(&self, scopes: &[Scope], estimated: u64, actual: u64) {
        if actual < estimated {
            for s in scopes.iter().filter(|s| s.limit.tpm.is_some()) {
                self.queues.poke(&s.name);
            }
        }
    }

    fn admission(self: &Arc<Self>, scopes: Vec<Scope>, tokens: u64, charged: Charged) -> Admission {
        Admission {
            limits: Arc::clone(self),
            scopes,
            estimated: tokens,
            charged,
        }
    }

    /// Admits a request, waiting up to `limits.max_wait` for room when configured, in the
    /// queue of the scope that refused it, by priority class (see `queue`). A request that
    /// cannot pass within the bound gets its refusal at once.
    pub async fn admit(
        self: &Arc<Self>,
        subject: &Subject<'_>,
        tokens: u64,
    ) -> Result<(Option<Admission>, RateInfo), Refusal> {
        self.admit_in(subject, self.scopes(subject), tokens).await
    }

    /// [`Self::admit`] in `scopes`, already derived from `subject` by [`Self::scopes`] (the
    /// pipeline derives them first, to know whether the prompt must be counted at all).
    pub async fn admit_in(
        self: &Arc<Self>,
        subject: &Subject<'_>,
        scopes: Vec<Scope>,
        tokens: u64,
    ) -> Result<(Option<Admission>, RateInfo), Refusal> {
        if scopes.is_empty() {
            return Ok((None, RateInfo::default()));
        }
        let max_wait = self.config.max_wait;
        let start = Instant::now();
        let deadline = start + max_wait;
        let waiting = if max_wait.is_zero() {
            None
        } else {
            self.queues
                .busy(scopes.iter().map(|s| s.name.as_str()))
                .map(str::to_owned)
        };
        // Nobody waits in these scopes: ask at once.
        let (scope, next_try, mut denied) = match waiting {
            Some(scope) => (scope, start, None),
            None => match self.try_admit(&scopes, tokens).await {
                Ok((charged, info)) => {
                    return Ok((Some(self.admission(scopes, tokens, charged)), info))
                }
                Err(Refusal::Limited(d))
                    if !max_wait.is_zero() && Instant::now() + d.retry_after <= deadline =>
                {
                    (d.scope.clone(), Instant::now() + d.retry_after, Some(d))
                }
                Err(e) => return Err(e),
            },
        };
        let class = self.priority(subject);
        let ticket = match self.queues.join(
            &scope,
            class,
            self.config.max_queue,
            next_try,
            denied.as_deref(),
        ) {
            Ok(t) => t,
            Err(last) => return self.give_up(denied.or(last), &scopes, tokens).await,
        };
        loop {
            match ticket.turn(deadline).await {
                Turn::Go => {}
                end => {
                    let last = denied.or_else(|| ticket.last_refusal());
                    ticket.finish(Err(end));
                    return self.give_up(last, &scopes, tokens).await;
                }
            }
            match self.try_admit(&scopes, tokens).await {
                Ok((charged, info)) => {
                    ticket.finish(Ok(()));
                    return Ok((Some(self.admission(scopes, tokens, charged)), info));
                }
                Err(Refusal::Limited(d)) => {
                    let now = Instant::now();
                    if now + d.retry_after > deadline {
                        ticket.finish(Err(Turn::TimedOut));
                        return Err(Refusal::Limited(d));
                    }
                    ticket.retry_at(now + d.retry_after, &d);
                    denied = Some(d);
                }
                Err(e) => {
                    ticket.finish(Err(Turn::TimedOut));
                    return Err(e);
                }
            }
        }
    }

    /// The answer for a request that stops waiting: the latest refusal in its scope, or, if
    /// it never met one (it queued behind others), one last attempt.
    async fn give_up(
        self: &Arc<Self>,
        last: Option<Box<Denied>>,
        scopes: &[Scope],
        tokens: u64,
    ) -> Result<(Option<Admission>, RateInfo), Refusal> {
        if let Some(d) = last {
            return Err(Refusal::Limited(d));
        }
        let (charged, info) = self.try_admit(scopes, tokens).await?;
        Ok((Some(self.admission(scopes.to_vec(), tokens, charged)), info))
    }

    /// Appends the limiter's series to `/metrics`: backend failures (with Redis) and the wait
    /// queue (with `max_wait`).
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        if let Some(shared) = &self.shared {
            let _ = writeln!(
                out,
                "# HELP switchyard_ratelimit_backend_errors_total Rate-limiter calls to Redis \
                 that failed or timed out, by call; requests then met on_backend_error.\n\
                 # TYPE switchyard_ratelimit_backend_errors_total counter"
            );
            for (call, c) in [
                ("admit", &self.stats.admit_errors),
                ("reconcile", &self.stats.reconcile_errors),
            ] {
                let _ = writeln!(
                    out,
                    "switchyard_ratelimit_backend_errors_total{{backend=\"redis\",call=\"{call}\",on_error=\"{}\"}} {}",
                    shared.on_error.as_str(),
                    load(c)
                );
            }
        }
        if self.config.max_wait.is_zero() {
            return;
        }
        let s = &self.queues.stats;
        let _ = writeln!(
            out,
            "# HELP switchyard_ratelimit_waiting Requests waiting for room under a rate limit, \
             by priority class.\n# TYPE switchyard_ratelimit_waiting gauge"
        );
        for p in Priority::ALL {
            let _ = writeln!(
                out,
                "switchyard_ratelimit_waiting{{priority=\"{}\"}} {}",
                p.as_str(),
                load(&s.waiting[p as usize])
            );
        }
        let _ = writeln!(
            out,
            "# HELP switchyard_ratelimit_waits_total Waits under a rate limit by priority class \
             and how they ended.\n# TYPE switchyard_ratelimit_waits_total counter"
        );
        for p in Priority::ALL {
            for (result, c) in [
                ("admitted", &s.admitted),
                ("timed_out", &s.timed_out),
                ("queue_full", &s.queue_full),
                ("evicted", &s.evicted),
            ] {
                let _ = writeln!(
                    out,
                    "switchyard_ratelimit_waits_total{{priority=\"{}\",result=\"{result}\"}} {}",
                    p.as_str(),
                    load(&c[p as usize])
                );
            }
        }
    }
}

/// Admission of an authenticated, attributed request, before routing: the store key's owner
/// and tags complete the attribution, its allowed aliases are enforced (403 naming the alias),
/// then every rate limit the request falls in must admit it (429 otherwise, or 503 when the
/// shared backend is down and configured to refuse). The admission is kept on the context and
/// settled with the real usage when the request is logged.
pub(crate) async fn admit_request(
    gw: &crate::pipeline::Gateway,
    ctx: &mut crate::pipeline::ctx::RequestCtx,
    model: Option<&str>,
    prompt: &mut crate::tokenize::Prompt<'_>,
    headers: &HeaderMap,
) -> Result<(), crate::error::GatewayError> {
    let record = ctx.virtual_key.clone();
    if let Some(rec) = &record {
        crate::keys::attribute(rec, &mut ctx.attribution);
        if let Some(model) = model.filter(|m| !rec.allows(m)) {
            return Err(crate::error::GatewayError::AliasNotAllowed {
                alias: model.to_owned(),
            });
        }
    }
    let priority = match headers.get(PRIORITY_HEADER) {
        None => None,
        Some(v) => Some(v.to_str().ok().and_then(Priority::parse).ok_or_else(|| {
            crate::error::GatewayError::InvalidField {
                param: PRIORITY_HEADER.to_owned(),
                message: format!(
                    "The `{PRIORITY_HEADER}` header must be `low`, `normal` or `high`."
                ),
            }
        })?),
    };
    let a = &ctx.attribution;
    let subject = Subject {
        key: ctx.key_name.as_deref(),
        key_limit: record.as_ref().map_or_else(Limit::default, |r| Limit {
            rpm: r.rpm,
            tpm: r.tpm,
        }),
        team: a.team.as_deref(),
        user: a.user.as_deref(),
        tags: &a.tags,
        priority,
    };
    let scopes = gw.limits.scopes(&subject);
    // The real count only when a TPM limit will be charged with it (see `tokenize`).
    let counted = if scopes.iter().any(|s| s.limit.tpm.is_some()) {
        prompt.count(&gw.router, model.unwrap_or_default()).await
    } else {
        None
    };
    let tokens = counted.unwrap_or_else(|| estimate_prompt_tokens(prompt.body()));
    match gw.limits.admit_in(&subject, scopes, tokens).await {
        Ok((admission, info)) => {
            ctx.admission = admission;
            ctx.rate_info = Some(info).filter(|i| *i != RateInfo::default());
            Ok(())
        }
        Err(Refusal::Limited(d)) => {
            let d = *d;
            ctx.rate_info = Some(d.info);
            Err(crate::error::GatewayError::RateLimited {
                scope: d.scope,
                what: d.what,
                limit: d.limit,
                retry_after: d.retry_after,
            })
        }
        Err(Refusal::Unavailable) => Err(crate::error::GatewayError::LimiterUnavailable),
    }
}

/// The documented estimate of a request's prompt tokens at admission, for models without a
/// known tokenizer (OpenAI-family models are counted exactly, see `tokenize`): a quarter of its
/// body's bytes ([`crate::routing::estimate::BYTES_PER_TOKEN`]), JSON framing included, so it
/// leans high; the real count replaces it when the request ends.
pub fn estimate_prompt_tokens(body: &[u8]) -> u64 {
    crate::routing::estimate::text_tokens(body.len() as u64)
}

#[cfg(test)]
mod tests;
