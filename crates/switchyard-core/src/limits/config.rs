//! `limits:`: rate limits per key, team, user and tag, the default for virtual keys, priority
//! classes, the optional bounded wait before a 429, and where limiter state lives (in memory,
//! or in Redis shared by every replica).

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::raw::{DurationStr, EnvString};
use crate::resp::{BackendKind, RedisUrl};

/// Longest configurable wait for room before answering 429.
pub const MAX_WAIT_CAP: Duration = Duration::from_secs(30);
/// Default bound on each Redis call.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);
/// Default key prefix in Redis.
pub const DEFAULT_REDIS_PREFIX: &str = "switchyard:rl";
/// Default number of requests that may wait per scope.
pub const DEFAULT_MAX_QUEUE: usize = 100;

/// Requests and tokens per minute; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute (prompt + completion).
    pub tpm: Option<u64>,
}

/// A request's class in the wait queue: when room frees up, waiting requests of a higher class
/// are admitted first (first come, first served within a class).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Batch work: waits behind everything else.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Interactive or critical traffic.
    High,
}

impl Priority {
    /// Every class, lowest first.
    pub const ALL: [Priority; 3] = [Priority::Low, Priority::Normal, Priority::High];

    /// `low`, `normal` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
        }
    }

    /// Parses `low`, `normal` or `high` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// One entry of `limits:` as written: a limit and, for keys and teams, a priority class.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// Priority class in the wait queue (keys and teams only).
    pub priority: Option<Priority>,
}

impl RawLimit {
    fn limit(&self) -> Limit {
        Limit {
            rpm: self.rpm,
            tpm: self.tpm,
        }
    }
}

/// `limits.on_backend_error`: what a request meets when Redis cannot be asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBackendError {
    /// Fail open to this process's own limiter (limits then hold per replica).
    #[default]
    Allow,
    /// Refuse limited requests (503) until Redis answers again.
    Deny,
}

impl OnBackendError {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// `limits:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Limits (and class) of every virtual key that sets none of its own.
    #[serde(default)]
    pub default_key: RawLimit,
    /// Limits and class per virtual key name (over `default_key`; a store key's own
    /// `rpm`/`tpm` win over these).
    #[serde(default)]
    pub keys: HashMap<String, RawLimit>,
    /// Limits and class per team name.
    #[serde(default)]
    pub teams: HashMap<String, RawLimit>,
    /// Limits per user.
    #[serde(default)]
    pub users: HashMap<String, RawLimit>,
    /// Limits per tag, keyed `key=value`.
    #[serde(default)]
    pub tags: HashMap<String, RawLimit>,
    /// Wait up to this long for room instead of answering 429 at once (default 0).
    pub max_wait: Option<DurationStr>,
    /// Most requests waiting per scope (default 100).
    pub max_queue: Option<usize>,
    /// `memory` (default) or `redis`.
    pub backend: Option<BackendKind>,
    /// `redis://[[user]:password@]host[:port][/db]` (backend `redis`).
    pub redis_url: Option<EnvString>,
    /// Bound on each Redis call (default 50ms).
    pub redis_timeout: Option<DurationStr>,
    /// Prefix of the limiter's keys in Redis (default `switchyard:rl`).
    pub redis_prefix: Option<String>,
    /// `allow` (default: fail open to the in-process limiter) or `deny`.
    pub on_backend_error: Option<OnBackendError>,
}

/// The shared backend's settings.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// The server (its password never printed).
    pub url: RedisUrl,
    /// Bound on each call.
    pub timeout: Duration,
    /// Key prefix: a scope's state is at `<prefix>:<scope>`.
    pub prefix: String,
    /// What happens when Redis cannot be asked.
    pub on_error: OnBackendError,
}

/// `limits:` after validation.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// See [`RawLimits::default_key`].
    pub default_key: Limit,
    /// See [`RawLimits::keys`].
    pub keys: HashMap<String, Limit>,
    /// See [`RawLimits::teams`].
    pub teams: HashMap<String, Limit>,
    /// See [`RawLimits::users`].
    pub users: HashMap<String, Limit>,
    /// See [`RawLimits::tags`].
    pub tags: HashMap<String, Limit>,
    /// Classes by key name (`limits.keys.<name>.priority`).
    pub key_priority: HashMap<String, Priority>,
    /// Classes by team (`limits.teams.<team>.priority`).
    pub team_priority: HashMap<String, Priority>,
    /// The class of keys with none of their own or their team's (`default_key.priority`).
    pub default_priority: Priority,
    /// See [`RawLimits::max_wait`].
    pub max_wait: Duration,
    /// See [`RawLimits::max_queue`].
    pub max_queue: usize,
    /// The shared backend, when `backend: redis`.
    pub redis: Option<RedisSettings>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            default_key: Limit::default(),
            keys: HashMap::new(),
            teams: HashMap::new(),
            users: HashMap::new(),
            tags: HashMap::new(),
            key_priority: HashMap::new(),
            team_priority: HashMap::new(),
            default_priority: Priority::Normal,
            max_wait: Duration::ZERO,
            max_queue: DEFAULT_MAX_QUEUE,
            redis: None,
        }
    }
}

type Problems = Vec<(Vec<String>, String)>;

impl LimitsConfig {
    /// Validates `raw`; problems are `(path under limits, message)`.
    pub fn from_raw(raw: &RawLimits) -> Result<Self, Problems> {
        let mut problems = Vec::new();
        let mut check = |path: Vec<String>, l: &RawLimit, priority_allowed: bool| {
            for (name, v) in [("rpm", l.rpm), ("tpm", l.tpm)] {
                if v == Some(0) {
                    let mut p = path.clone();
                    p.push(name.to_owned());
                    problems.push((p, "must be at least 1 (omit it for no limit)".to_owned()));
                }
            }
            if l.priority.is_some() && !priority_allowed {
                let mut p = path.clone();
                p.push("priority".to_owned());
                problems.push((
                    p,
                    "a priority class is set per key (`default_key`, `keys`) or team".to_owned(),
                ));
            }
        };
        check(vec!["default_key".into()], &raw.default_key, true);
        for (section, map, priority) in [
            ("keys", &raw.keys, true),
            ("teams", &raw.teams, true),
            ("users", &raw.users, false),
            ("tags", &raw.tags, false),
        ] {
            for (name, l) in map {
                check(vec![section.into(), name.clone()], l, priority);
            }
        }
        for tag in raw.tags.keys() {
            let ok = tag
                .split_once('=')
                .is_some_and(|(k, v)| !k.is_empty() && !v.is_empty());
            if !ok {
                problems.push((
                    vec!["tags".into(), tag.clone()],
                    "must be written `key=value`, e.g. `feature=search`".to_owned(),
                ));
            }
        }
        let max_wait = raw.max_wait.map_or(Duration::ZERO, |d| d.0);
        if max_wait > MAX_WAIT_CAP {
            problems.push((
                vec!["max_wait".into()],
                format!("must be at most {}s", MAX_WAIT_CAP.as_secs()),
            ));
        }
        let max_queue = raw.max_queue.unwrap_or(DEFAULT_MAX_QUEUE);
        if !(1..=100_000).contains(&max_queue) {
            problems.push((
                vec!["max_queue".into()],
                "must be from 1 to 100000".to_owned(),
            ));
        }
        let redis = redis_settings(raw, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        let limits = |m: &HashMap<String, RawLimit>| -> HashMap<String, Limit> {
            m.iter().map(|(k, v)| (k.clone(), v.limit())).collect()
        };
        let classes = |m: &HashMap<String, RawLimit>| -> HashMap<String, Priority> {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.priority?)))
                .collect()
        };
        Ok(Self {
            default_key: raw.default_key.limit(),
            keys: limits(&raw.keys),
            teams: limits(&raw.teams),
            users: limits(&raw.users),
            tags: limits(&raw.tags),
            key_priority: classes(&raw.keys),
            team_priority: classes(&raw.teams),
            default_priority: raw.default_key.priority.unwrap_or_default(),
            max_wait,
            max_queue,
            redis,
        })
    }
}

fn redis_settings(raw: &RawLimits, problems: &mut Problems) -> Option<RedisSettings> {
    let mut problem = |key: &str, msg: &str| problems.push((vec![key.to_owned()], msg.to_owned()));
    let backend = raw.backend.unwrap_or_default();
    let settings = crate::resp::settings(
        backend,
        raw.redis_url.as_ref().map(|u| u.0.as_str()),
        raw.redis_timeout.map(|d| d.0),
        raw.redis_prefix.as_deref(),
        (DEFAULT_REDIS_TIMEOUT, DEFAULT_REDIS_PREFIX),
        &mut |key, msg| problem(key, &msg),
    );
    if backend == BackendKind::Memory && raw.on_backend_error.is_some() {
        problem("on_backend_error", "applies only with `backend: redis`");
    }
    let (url, timeout, prefix) = settings?;
    Some(RedisSettings {
        url,
        timeout,
        prefix,
        on_error: raw.on_backend_error.unwrap_or_default(),
    })
}
