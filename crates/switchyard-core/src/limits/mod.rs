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
//! - **TPM** allows a whole minute's worth at once. A request costs its estimated prompt tokens
//!   at admission ([`estimate_prompt_tokens`]); when it ends, the estimate is replaced by the
//!   tokens the provider reported (prompt + completion), or refunded when the request failed.
//!   A request larger than the whole TPM passes only when the bucket is full, so it is slowed
//!   down rather than refused forever.
//!
//! Every scope a request falls in (its key, its team, its user, each of its tags with a
//! configured limit) must admit it; nothing is charged unless all do. The response carries
//! OpenAI's `x-ratelimit-*` headers for the most constrained scope.

pub mod config;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use parking_lot::Mutex;
use tokio::time::Instant;

pub use config::{Limit, LimitsConfig};

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

/// GCRA state for every scope.
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

/// The earliest instant `tat` may have to admit `cost` more units, or `None` when it may now.
fn tokens_wait(tat: Instant, now: Instant, tpm: u64, cost: u64) -> Option<Duration> {
    let ahead = tat.saturating_duration_since(now);
    if ahead.is_zero() {
        return None; // a full bucket admits anything, even a request over the whole TPM
    }
    let need = interval(tpm).mul_f64(cost as f64);
    (ahead + need > MINUTE).then(|| ahead + need.min(MINUTE) - MINUTE)
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
                let t = interval(rpm);
                let tau = t * u32::try_from(burst(rpm) - 1).unwrap_or(u32::MAX);
                let ahead = st
                    .requests_tat
                    .map_or(Duration::ZERO, |tat| tat.saturating_duration_since(now));
                if ahead > tau {
                    deny("requests", rpm, ahead - tau);
                }
            }
            if let (Some(tpm), Some(tat)) = (s.limit.tpm, st.tokens_tat) {
                if let Some(wait) = tokens_wait(tat, now, tpm, tokens) {
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

    /// The headers' view: for requests and tokens, the scope with the fewest remaining.
    fn info(states: &HashMap<String, State>, scopes: &[Scope], now: Instant) -> RateInfo {
        let mut out = RateInfo::default();
        for s in scopes {
            let st = states.get(&s.name).copied().unwrap_or_default();
            if let Some(rpm) = s.limit.rpm {
                let t = interval(rpm);
                let ahead = st
                    .requests_tat
                    .map_or(Duration::ZERO, |tat| tat.saturating_duration_since(now));
                let capacity = t * u32::try_from(burst(rpm)).unwrap_or(u32::MAX);
                let remaining = capacity.saturating_sub(ahead).as_nanos() / t.as_nanos().max(1);
                let r = (rpm, u64::try_from(remaining).unwrap_or(0), ahead);
                if out.requests.is_none_or(|o| r.1 < o.1) {
                    out.requests = Some(r);
                }
            }
            if let Some(tpm) = s.limit.tpm {
                let t = interval(tpm);
                let ahead = st
                    .tokens_tat
                    .map_or(Duration::ZERO, |tat| tat.saturating_duration_since(now));
                let remaining = MINUTE.saturating_sub(ahead).as_nanos() / t.as_nanos().max(1);
                let r = (tpm, u64::try_from(remaining).unwrap_or(0).min(tpm), ahead);
                if out.tokens.is_none_or(|o| r.1 < o.1) {
                    out.tokens = Some(r);
                }
            }
        }
        out
    }
}

/// The limits of a gateway: config and state.
#[derive(Debug, Default)]
pub struct Limits {
    /// `limits:` as configured.
    pub config: LimitsConfig,
    /// The GCRA state.
    pub limiter: Limiter,
}

/// What an admitted request must give back when it ends.
#[derive(Debug)]
pub struct Admission {
    limits: Arc<Limits>,
    scopes: Vec<Scope>,
    estimated: u64,
}

impl Admission {
    /// Settles the request's tokens: `used` when the provider reported usage, nothing (a
    /// refund) when it failed without any, the estimate otherwise.
    pub fn settle(self, used: Option<u64>, failed: bool) {
        let actual = used.unwrap_or(if failed { 0 } else { self.estimated });
        self.limits
            .limiter
            .reconcile(&self.scopes, self.estimated, actual, Instant::now());
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
}

impl Limits {
    /// Limits from validated config, with empty state.
    pub fn new(config: LimitsConfig) -> Self {
        Self {
            config,
            limiter: Limiter::default(),
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
            let limit = Limit {
                rpm: subject.key_limit.rpm.or(c.default_key.rpm),
                tpm: subject.key_limit.tpm.or(c.default_key.tpm),
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

    /// Admits a request, waiting up to `limits.max_wait` for room when configured: a waiter
    /// sleeps until the moment the limiter named and tries again (no strict ordering between
    /// waiters; one that cannot pass within the bound gets its 429 at once).
    pub async fn admit(
        self: &Arc<Self>,
        subject: &Subject<'_>,
        tokens: u64,
    ) -> Result<(Option<Admission>, RateInfo), Box<Denied>> {
        let scopes = self.scopes(subject);
        if scopes.is_empty() {
            return Ok((None, RateInfo::default()));
        }
        let deadline = Instant::now() + self.config.max_wait;
        loop {
            let now = Instant::now();
            match self.limiter.admit(&scopes, tokens, now) {
                Ok(info) => {
                    let admission = Admission {
                        limits: Arc::clone(self),
                        scopes,
                        estimated: tokens,
                    };
                    return Ok((Some(admission), info));
                }
                Err(d) if now + d.retry_after <= deadline => {
                    tokio::time::sleep(d.retry_after).await;
                }
                Err(d) => return Err(d),
            }
        }
    }
}

/// Admission of an authenticated, attributed request, before routing: the store key's owner
/// and tags complete the attribution, its allowed aliases are enforced (403 naming the alias),
/// then every rate limit the request falls in must admit it (429 otherwise). The admission is
/// kept on the context and settled with the real usage when the request is logged.
pub(crate) async fn admit_request(
    gw: &crate::pipeline::Gateway,
    ctx: &mut crate::pipeline::ctx::RequestCtx,
    model: &str,
    body: &[u8],
) -> Result<(), crate::error::GatewayError> {
    let record = ctx.virtual_key.clone();
    if let Some(rec) = &record {
        crate::keys::attribute(rec, &mut ctx.attribution);
        if !rec.allows(model) {
            return Err(crate::error::GatewayError::AliasNotAllowed {
                alias: model.to_owned(),
            });
        }
    }
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
    };
    match gw
        .limits
        .admit(&subject, estimate_prompt_tokens(body))
        .await
    {
        Ok((admission, info)) => {
            ctx.admission = admission;
            ctx.rate_info = Some(info).filter(|i| *i != RateInfo::default());
            Ok(())
        }
        Err(d) => {
            let d = *d;
            ctx.rate_info = Some(d.info);
            Err(crate::error::GatewayError::RateLimited {
                scope: d.scope,
                what: d.what,
                limit: d.limit,
                retry_after: d.retry_after,
            })
        }
    }
}

/// The documented estimate of a request's prompt tokens at admission: a quarter of its body's
/// bytes ([`crate::routing::estimate::BYTES_PER_TOKEN`]), JSON framing included, so it leans
/// high; the real count replaces it when the request ends.
pub fn estimate_prompt_tokens(body: &[u8]) -> u64 {
    crate::routing::estimate::text_tokens(body.len() as u64)
}

#[cfg(test)]
mod tests;
