//! The shared limiter: every scope's GCRA state in Redis, so that any number of gateway
//! processes enforce one limit together.
//!
//! A scope's state is one hash at `<prefix>:<scope>` (`switchyard:rl:team:search`) with the
//! requests and tokens TATs in microseconds. Admission is one Lua script call
//! (`admit.lua`): it reads every scope of the request, checks them all, and
//! charges all of them or none, atomically (Redis runs a script alone). The clock is the
//! Redis server's (`TIME`), so replicas with skewed clocks agree. Each write sets a TTL that
//! ends when both TATs are in the past (plus a second), when the state equals no state, so
//! idle scopes disappear by themselves. The TPM correction after the request is a second
//! script (`reconcile.lua`).
//!
//! Scope names in keys are configured names (teams, users and tags under `limits:`) and key
//! names (never a key's secret), so they are bounded and carry nothing secret.
//!
//! Each call is bounded by `limits.redis_timeout`; a call that fails or times out is the
//! caller's to handle (`limits.on_backend_error`). A call that timed out after Redis ran it
//! still counts against the limit: the shared limit errs on the strict side.

use std::time::Duration;

use super::config::{OnBackendError, RedisSettings};
use super::{Denied, RateInfo, Scope};
use crate::resp::{self, Client, Script, Value};

static ADMIT: Script = Script::new(include_str!("admit.lua"));
static RECONCILE: Script = Script::new(include_str!("reconcile.lua"));

/// What the admission script decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The index (into the scopes) of the scope that refused, `None` when admitted.
    pub refused_by: Option<usize>,
    /// `requests` or `tokens` (when refused).
    pub what: &'static str,
    /// When a retry can pass (when refused).
    pub wait: Duration,
    /// Per scope, how far its requests and tokens TATs are ahead of now.
    pub aheads: Vec<(Duration, Duration)>,
}

impl Verdict {
    /// The verdict in the in-process limiter's terms: the `x-ratelimit-*` figures when
    /// admitted, the refusing scope and its limit when not.
    pub(crate) fn outcome(&self, scopes: &[Scope]) -> Result<RateInfo, Box<Denied>> {
        let info = super::rate_info(scopes, &self.aheads);
        match self.refused_by.and_then(|i| scopes.get(i)) {
            None => Ok(info),
            Some(s) => Err(Box::new(Denied {
                scope: s.name.clone(),
                what: self.what,
                limit: if self.what == "tokens" {
                    s.limit.tpm.unwrap_or_default()
                } else {
                    s.limit.rpm.unwrap_or_default()
                },
                retry_after: self.wait,
                info,
            })),
        }
    }
}

/// The shared limiter of one worker: the settings and the worker's own connection.
#[derive(Debug)]
pub(crate) struct RedisLimiter {
    client: Client,
    prefix: String,
    /// What a request meets when Redis cannot be asked.
    pub on_error: OnBackendError,
}

impl RedisLimiter {
    pub(crate) fn new(s: &RedisSettings) -> Self {
        Self {
            client: Client::new(s.url.clone(), s.timeout),
            prefix: s.prefix.clone(),
            on_error: s.on_error,
        }
    }

    /// The same limiter with a connection of its own (for another worker runtime).
    pub(crate) fn for_worker(&self) -> Self {
        Self {
            client: self.client.fresh(),
            prefix: self.prefix.clone(),
            on_error: self.on_error,
        }
    }

    /// The server, without credentials.
    pub(crate) fn describe(&self) -> String {
        self.client.describe()
    }

    fn key(&self, scope: &Scope) -> String {
        format!("{}:{}", self.prefix, scope.name)
    }

    /// Whether Redis answers (start-up check: within 2 s, not the per-request bound, so
    /// that a first connection on a busy host is not reported as a failure).
    pub(crate) async fn ping(&self) -> Result<(), resp::Error> {
        let within = self.client.timeout().max(Duration::from_secs(2));
        self.client
            .call_within(&[b"PING"], within)
            .await
            .map(|_| ())
    }

    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, resp::Error>>,
    ) -> Result<T, resp::Error> {
        let limit = self.client.timeout();
        tokio::time::timeout(limit, f)
            .await
            .unwrap_or(Err(resp::Error::Timeout(limit)))
    }

    /// Checks and charges one request costing `tokens` in every scope (see `admit.lua`).
    /// `now_us` replaces the server's clock (tests only).
    pub(crate) async fn admit(
        &self,
        scopes: &[Scope],
        tokens: u64,
        now_us: Option<u64>,
    ) -> Result<Verdict, resp::Error> {
        let keys: Vec<String> = scopes.iter().map(|s| self.key(s)).collect();
        let mut args: Vec<String> = Vec::with_capacity(2 + 2 * scopes.len());
        args.push(tokens.to_string());
        args.push(now_us.unwrap_or(0).to_string());
        for s in scopes {
            args.push(s.limit.rpm.unwrap_or(0).to_string());
            args.push(s.limit.tpm.unwrap_or(0).to_string());
        }
        let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let reply = self.bounded(ADMIT.run(&self.client, &keys, &args)).await?;
        parse_verdict(&reply, scopes.len())
    }

    /// Replaces an admitted request's token estimate with what it used (see
    /// `reconcile.lua`).
    pub(crate) async fn reconcile(
        &self,
        scopes: &[Scope],
        estimated: u64,
        actual: u64,
        now_us: Option<u64>,
    ) -> Result<(), resp::Error> {
        let with_tpm: Vec<&Scope> = scopes.iter().filter(|s| s.limit.tpm.is_some()).collect();
        if with_tpm.is_empty() || estimated == actual {
            return Ok(());
        }
        let keys: Vec<String> = with_tpm.iter().map(|s| self.key(s)).collect();
        let mut args = vec![
            estimated.to_string(),
            actual.to_string(),
            now_us.unwrap_or(0).to_string(),
        ];
        args.extend(
            with_tpm
                .iter()
                .map(|s| s.limit.tpm.unwrap_or(1).to_string()),
        );
        let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.bounded(RECONCILE.run(&self.client, &keys, &args))
            .await
            .map(|_| ())
    }

    #[cfg(test)]
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }
}

fn parse_verdict(reply: &Value, scopes: usize) -> Result<Verdict, resp::Error> {
    let bad = || resp::Error::Protocol("unexpected reply from the admission script".to_owned());
    let Value::Array(items) = reply else {
        return Err(bad());
    };
    if items.len() != 3 + 2 * scopes {
        return Err(bad());
    }
    let mut ints = Vec::with_capacity(items.len());
    for v in items {
        match v {
            Value::Int(i) => ints.push(u64::try_from(*i).map_err(|_| bad())?),
            _ => return Err(bad()),
        }
    }
    let us = Duration::from_micros;
    let who = usize::try_from(ints[0]).map_err(|_| bad())?;
    if who > scopes {
        return Err(bad());
    }
    Ok(Verdict {
        refused_by: who.checked_sub(1),
        what: if ints[1] == 2 { "tokens" } else { "requests" },
        wait: us(ints[2]),
        aheads: ints[3..]
            .chunks_exact(2)
            .map(|p| (us(p[0]), us(p[1])))
            .collect(),
    })
}

#[cfg(test)]
mod tests;
