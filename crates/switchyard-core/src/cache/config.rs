//! `cache:`: the response cache's settings, as written and after validation.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use crate::config::raw::{DurationStr, EnvString, Size};
use crate::resp::{BackendKind, RedisUrl};

/// How long an answer is served from the cache when `ttl` is not set.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Longest configurable `ttl`: a cached answer is a snapshot, not an archive.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Memory the in-process cache may use when `max_size` is not set.
pub const DEFAULT_MAX_SIZE: u64 = 64 * 1024 * 1024;
/// Largest answer kept when `max_entry_size` is not set (large embedding batches are not worth
/// holding).
pub const DEFAULT_MAX_ENTRY_SIZE: u64 = 1024 * 1024;
/// Default bound on each Redis call: a slow cache must cost less than the upstream call.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);
/// Default key prefix in Redis.
pub const DEFAULT_REDIS_PREFIX: &str = "switchyard:cache";

/// `cache:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// Whether answers are cached (default false: a cache changes what clients get).
    pub enabled: Option<bool>,
    /// How long an answer is served (default 10m).
    pub ttl: Option<DurationStr>,
    /// Memory the in-process cache may use (default 64MiB; backend `memory`).
    pub max_size: Option<Size>,
    /// Largest answer kept (default 1MiB).
    pub max_entry_size: Option<Size>,
    /// Client model names (aliases) whose answers are cached; absent means all.
    pub models: Option<Vec<String>>,
    /// `memory` (default) or `redis`.
    pub backend: Option<BackendKind>,
    /// `redis://[[user]:password@]host[:port][/db]` (backend `redis`).
    pub redis_url: Option<EnvString>,
    /// Bound on each Redis call (default 50ms); a lookup that takes longer is a miss.
    pub redis_timeout: Option<DurationStr>,
    /// Prefix of the cache's keys in Redis (default `switchyard:cache`).
    pub redis_prefix: Option<String>,
}

/// Where cached answers live.
#[derive(Debug, Clone)]
pub enum CacheBackend {
    /// In memory, up to `max_size` bytes.
    Memory {
        /// Bytes of answers kept before the least recently used are evicted.
        max_size: usize,
    },
    /// In Redis.
    Redis {
        /// The server (its password never printed).
        url: RedisUrl,
        /// Bound on each call.
        timeout: Duration,
        /// Key prefix: an answer is at `<prefix>:<hex digest>`.
        prefix: String,
    },
}

/// `cache:` after validation.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// See [`RawCache::enabled`].
    pub enabled: bool,
    /// See [`RawCache::ttl`].
    pub ttl: Duration,
    /// See [`RawCache::max_entry_size`].
    pub max_entry_size: usize,
    /// See [`RawCache::models`]; `None` is every model.
    pub models: Option<BTreeSet<String>>,
    /// Where answers live.
    pub backend: CacheBackend,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            ttl: DEFAULT_TTL,
            max_entry_size: DEFAULT_MAX_ENTRY_SIZE as usize,
            models: None,
            backend: CacheBackend::Memory {
                max_size: DEFAULT_MAX_SIZE as usize,
            },
        }
    }
}

type Problems = Vec<(String, String)>;

impl CacheConfig {
    /// Validates `raw`; problems are `(key under cache, message)`.
    pub fn from_raw(raw: &RawCache) -> Result<Self, Problems> {
        let mut problems: Problems = Vec::new();
        let mut problem = |key: &str, msg: String| problems.push((key.to_owned(), msg));
        let ttl = raw.ttl.map_or(DEFAULT_TTL, |d| d.0);
        if ttl < Duration::from_secs(1) || ttl > MAX_TTL {
            problem("ttl", "must be from 1s to 30d".to_owned());
        }
        let max_entry_size = raw.max_entry_size.map_or(DEFAULT_MAX_ENTRY_SIZE, |s| s.0);
        if max_entry_size == 0 || max_entry_size > 64 * 1024 * 1024 {
            problem(
                "max_entry_size",
                "must be greater than 0 and at most 64MiB".to_owned(),
            );
        }
        let max_size = raw.max_size.map_or(DEFAULT_MAX_SIZE, |s| s.0);
        if max_size < max_entry_size {
            problem(
                "max_size",
                "must be at least `max_entry_size` (default 1MiB)".to_owned(),
            );
        }
        let models = raw.models.as_ref().map(|m| {
            for (i, name) in m.iter().enumerate() {
                if name.trim().is_empty() {
                    problem(&format!("models[{i}]"), "must not be empty".to_owned());
                }
            }
            m.iter()
                .map(|s| s.trim().to_owned())
                .collect::<BTreeSet<_>>()
        });
        let kind = raw.backend.unwrap_or_default();
        let redis = crate::resp::settings(
            kind,
            raw.redis_url.as_ref().map(|u| u.0.as_str()),
            raw.redis_timeout.map(|d| d.0),
            raw.redis_prefix.as_deref(),
            (DEFAULT_REDIS_TIMEOUT, DEFAULT_REDIS_PREFIX),
            &mut problem,
        );
        let backend = match kind {
            BackendKind::Memory => Some(CacheBackend::Memory {
                max_size: usize::try_from(max_size).unwrap_or(usize::MAX),
            }),
            BackendKind::Redis => {
                if raw.max_size.is_some() {
                    problem(
                        "max_size",
                        "applies only with `backend: memory` (Redis evicts by its own \
                         `maxmemory` policy)"
                            .to_owned(),
                    );
                }
                redis.map(|(url, timeout, prefix)| CacheBackend::Redis {
                    url,
                    timeout,
                    prefix,
                })
            }
        };
        match backend {
            Some(backend) if problems.is_empty() => Ok(Self {
                enabled: raw.enabled.unwrap_or(false),
                ttl,
                max_entry_size: usize::try_from(max_entry_size).unwrap_or(usize::MAX),
                models,
                backend,
            }),
            _ => Err(problems),
        }
    }
}
