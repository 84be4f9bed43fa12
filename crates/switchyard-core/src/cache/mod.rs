//! The response cache: a complete answer to a request is kept for `cache.ttl` and served again
//! to the same tenant for the same request, without an upstream call or spend.
//!
//! What makes two requests "the same" is deliberately strict: the tenant (team, else key, else
//! principal: never anything the client sends), the API operation, the provider-facing request
//! headers that change an answer (`anthropic-version`, `anthropic-beta`), and the body byte for
//! byte. A false miss costs one upstream call; a false hit would hand one caller another's
//! answer, so nothing is normalised.
//!
//! Only answers that completed with status 200 are kept: a complete body, or a stream's bytes
//! as the client received them (replayed at once on a hit) when it ended normally. Never one
//! the request changed on the way (a budget downgrade, an `on_failure` answer, a resumed
//! stream), nor a `store: true` chat completion (its point is the stored side effect). Clients
//! steer it per request with `x-switchyard-cache`:
//! `refresh` (or `Cache-Control: no-cache`) skips the lookup but keeps the new answer, `off` (or
//! `Cache-Control: no-store`) skips both.
//!
//! The memory backend is one LRU shared by every worker, bounded in bytes; the Redis backend is
//! shared by every replica, and a slow or absent Redis makes a lookup a miss, never an error.

pub mod config;
mod memory;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderMap;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

pub use self::config::{CacheBackend, CacheConfig, RawCache};
use crate::error::GatewayError;
use crate::providers::Operation;

/// The response header that says what the cache did (`hit`, `miss`, `refresh`, `bypass`), and
/// the request header that steers it (`refresh`, `off`).
pub const HEADER: &str = "x-switchyard-cache";

/// A request's identity in the cache: a SHA-256 digest, so keys have one size and the body is
/// never kept as a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 32]);

impl Key {
    /// The key of a request of `tenant` for `op` with `body`. `headers` are the request's
    /// headers; those forwarded to providers that change the answer are part of the key.
    pub fn of(tenant: &str, op: Operation, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut h = Sha256::new();
        // Every part is length-prefixed, so no two different requests hash the same input.
        let mut part = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        part(b"switchyard-cache-v1");
        part(tenant.as_bytes());
        part(op.as_str().as_bytes());
        for name in ["anthropic-version", "anthropic-beta"] {
            for v in headers.get_all(name) {
                part(name.as_bytes());
                part(v.as_bytes());
            }
        }
        part(body);
        Self(h.finalize().into())
    }

    /// Lowercase hex, for the Redis key.
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            let _ = write!(s, "{b:02x}");
        }
        s
    }
}

/// A cached answer: its body and what the response headers said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `content-type` of the answer.
    pub content_type: String,
    /// The provider that made it.
    pub provider: Option<String>,
    /// The upstream model that made it.
    pub model: Option<String>,
    /// When it was stored, in Unix milliseconds (for the `age` header).
    pub stored_ms: u64,
    /// The answer as the client received it.
    pub body: Bytes,
}

/// Format tag of an encoded [`Entry`]; a value with another tag is ignored (a miss), so the
/// format can change without flushing Redis by hand.
const MAGIC: &[u8; 4] = b"SYC2";
/// Length written for an absent field.
const ABSENT: u32 = u32::MAX;

impl Entry {
    /// Seconds since the answer was stored (the `age` header), as of `now_ms`.
    pub fn age_secs(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_ms) / 1000
    }

    /// Bytes this entry holds, as counted against `max_size`.
    fn weight(&self) -> usize {
        // The fixed part approximates the map slot, the LRU entry and the strings' headers.
        256 + self.body.len()
            + self.content_type.len()
            + [&self.provider, &self.model]
                .iter()
                .map(|s| s.as_ref().map_or(0, String::len))
                .sum::<usize>()
    }

    /// The value stored in Redis: the tag, the time, three length-prefixed strings, the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.weight());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.stored_ms.to_le_bytes());
        let fields = [
            Some(&self.content_type),
            self.provider.as_ref(),
            self.model.as_ref(),
        ];
        for f in fields {
            match f {
                Some(s) => {
                    let len = u32::try_from(s.len()).unwrap_or(0);
                    out.extend_from_slice(&len.to_le_bytes());
                    out.extend_from_slice(&s.as_bytes()[..len as usize]);
                }
                None => out.extend_from_slice(&ABSENT.to_le_bytes()),
            }
        }
        out.extend_from_slice(&self.body);
        out
    }

    /// Reads what [`Entry::encode`] wrote; `None` for anything else (another format, a
    /// truncated value, text that is not UTF-8).
    pub fn decode(raw: &[u8]) -> Option<Self> {
        let rest = raw.strip_prefix(MAGIC)?;
        let (stored, mut rest) = rest.split_at_checked(8)?;
        let stored_ms = u64::from_le_bytes(stored.try_into().ok()?);
        let mut field = || -> Option<Option<String>> {
            let (len, after) = rest.split_at_checked(4)?;
            let len = u32::from_le_bytes(len.try_into().ok()?);
            if len == ABSENT {
                rest = after;
                return Some(None);
            }
            let (text, after) = after.split_at_checked(len as usize)?;
            rest = after;
            Some(Some(std::str::from_utf8(text).ok()?.to_owned()))
        };
        let content_type = field()??;
        let provider = field()?;
        let model = field()?;
        Some(Self {
            content_type,
            provider,
            model,
            stored_ms,
            body: Bytes::copy_from_slice(rest),
        })
    }
}

/// What a client asked of the cache for one request (`x-switchyard-cache`, `Cache-Control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Look up, and keep a new answer.
    Normal,
    /// Do not look up, but keep the new answer (`refresh`, `Cache-Control: no-cache`).
    Refresh,
    /// Neither look up nor keep (`off`, `Cache-Control: no-store`).
    Off,
}

impl Control {
    /// Reads the request's headers. `x-switchyard-cache` wins over `Cache-Control`; a value it
    /// does not know is a 400, so a typo never silently serves a stale answer.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, GatewayError> {
        if let Some(v) = headers.get(HEADER) {
            let v = v.to_str().unwrap_or_default().trim();
            return match v.to_ascii_lowercase().as_str() {
                "on" | "default" => Ok(Self::Normal),
                "refresh" | "no-cache" => Ok(Self::Refresh),
                "off" | "no-store" => Ok(Self::Off),
                _ => Err(GatewayError::InvalidField {
                    param: HEADER.to_owned(),
                    message: format!(
                        "Invalid `{HEADER}` header: expected `on`, `refresh` or `off`."
                    ),
                }),
            };
        }
        let mut control = Self::Normal;
        for v in headers.get_all(http::header::CACHE_CONTROL) {
            for directive in v.to_str().unwrap_or_default().split(',') {
                match directive.trim().to_ascii_lowercase().as_str() {
                    "no-store" => return Ok(Self::Off),
                    "no-cache" => control = Self::Refresh,
                    _ => {}
                }
            }
        }
        Ok(control)
    }
}

/// What the cache did for a request: the record's `cache_outcome`, the response header and the
/// metric's `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served from the cache.
    Hit,
    /// Looked up, not found: served upstream (and kept, when it qualifies).
    Miss,
    /// The client asked for a fresh answer: served upstream, and kept.
    Refresh,
    /// The client turned the cache off for this request.
    Bypass,
    /// The request cannot be cached (`store: true`).
    Uncacheable,
}

impl Outcome {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Refresh => "refresh",
            Self::Bypass => "bypass",
            Self::Uncacheable => "uncacheable",
        }
    }
}

/// A request's place in the cache, on its context: what happened, and where a new answer goes.
#[derive(Debug, Clone)]
pub struct Note {
    /// What the cache did.
    pub outcome: Outcome,
    /// Where the answer is kept, when it may be (a miss or a refresh), and the cache that
    /// keeps it.
    pub key: Option<(Key, Arc<Cache>)>,
    /// The answer to keep, set when an upstream answered in full; kept when the request
    /// completes with it unchanged.
    pub fill: Option<Entry>,
    /// A stream's output as the client receives it, while it fits in `max_entry_size`.
    pub collector: Option<Arc<Mutex<Collected>>>,
}

impl Note {
    /// Called once, when the request is logged: keeps the answer if the request completed
    /// (`ok`) with status 200.
    pub fn settle(&mut self, status: u16, ok: bool) {
        let Some((key, cache)) = self.key.take() else {
            return;
        };
        if !ok || status != 200 {
            return;
        }
        let collected = || self.collector.take().and_then(|c| c.lock().take());
        if let Some(entry) = self.fill.take().or_else(collected) {
            cache.put(key, entry);
        }
    }
}

/// The bytes of a stream, collected for the cache as the client gets them.
#[derive(Debug)]
pub struct Collected {
    entry: Entry,
    body: bytes::BytesMut,
    limit: usize,
    /// Past the limit: nothing more is collected and nothing is kept.
    over: bool,
}

impl Collected {
    /// Collects up to `limit` bytes into an entry that starts as `entry` (its body replaced).
    pub fn new(entry: Entry, limit: usize) -> Self {
        Self {
            entry,
            body: bytes::BytesMut::new(),
            limit,
            over: false,
        }
    }

    /// Whether more bytes are wanted.
    pub fn wants(&self) -> bool {
        !self.over
    }

    /// Appends what the client was sent; past the limit, gives up and frees what it held.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.over {
            return;
        }
        if self.body.len() + bytes.len() > self.limit {
            self.over = true;
            self.body = bytes::BytesMut::new();
            return;
        }
        self.body.extend_from_slice(bytes);
    }

    /// The entry to keep, unless the stream outgrew the limit.
    fn take(&mut self) -> Option<Entry> {
        if self.over {
            return None;
        }
        let mut entry = self.entry.clone();
        entry.body = std::mem::take(&mut self.body).freeze();
        Some(entry)
    }
}

/// Counts the backend's own trouble, for `/metrics`.
#[derive(Debug, Default)]
struct Stats {
    errors: AtomicU64,
    stores: AtomicU64,
    too_large: AtomicU64,
}

#[derive(Debug)]
enum Backend {
    Memory(Arc<Mutex<memory::Lru>>),
    Redis {
        client: Arc<crate::resp::Client>,
        prefix: Arc<str>,
    },
}

/// The response cache of one gateway. [`Cache::for_worker`] gives each worker runtime its own
/// Redis connection; the memory LRU is shared.
#[derive(Debug)]
pub struct Cache {
    config: Arc<CacheConfig>,
    backend: Backend,
    stats: Arc<Stats>,
}

impl Cache {
    /// The cache `config` describes, or `None` when it is off.
    pub fn new(config: &CacheConfig) -> Option<Self> {
        if !config.enabled {
            return None;
        }
        let backend = match &config.backend {
            CacheBackend::Memory { max_size } => {
                Backend::Memory(Arc::new(Mutex::new(memory::Lru::new(*max_size))))
            }
            CacheBackend::Redis {
                url,
                timeout,
                prefix,
            } => Backend::Redis {
                client: Arc::new(crate::resp::Client::new(url.clone(), *timeout)),
                prefix: Arc::from(prefix.as_str()),
            },
        };
        Some(Self {
            config: Arc::new(config.clone()),
            backend,
            stats: Arc::default(),
        })
    }

    /// The same cache with a Redis connection of its own, for another worker runtime.
    pub fn for_worker(&self) -> Self {
        let backend = match &self.backend {
            Backend::Memory(lru) => Backend::Memory(Arc::clone(lru)),
            Backend::Redis { client, prefix } => Backend::Redis {
                client: Arc::new(client.fresh()),
                prefix: Arc::clone(prefix),
            },
        };
        Self {
            config: Arc::clone(&self.config),
            backend,
            stats: Arc::clone(&self.stats),
        }
    }

    /// Whether requests for `model` through `op` are cached at all (`None` outcome otherwise).
    pub fn applies(&self, op: Operation, model: &str) -> bool {
        matches!(
            op,
            Operation::ChatCompletions
                | Operation::Embeddings
                | Operation::Completions
                | Operation::Messages
        ) && self
            .config
            .models
            .as_ref()
            .is_none_or(|m| m.contains(model))
    }

    /// The answer kept under `key`, if it is there and fresh. A backend failure is a miss.
    pub async fn get(&self, key: &Key) -> Option<Entry> {
        match &self.backend {
            Backend::Memory(lru) => lru.lock().get(key, tokio::time::Instant::now()),
            Backend::Redis { client, prefix } => {
                let name = redis_key(prefix, key);
                match client.call(&[b"GET", name.as_bytes()]).await {
                    Ok(crate::resp::Value::Data(raw)) => Entry::decode(&raw),
                    Ok(_) => None,
                    Err(e) => {
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "cache lookup failed; served upstream");
                        None
                    }
                }
            }
        }
    }

    /// Keeps `entry` under `key` for the configured TTL. Too large an answer is not kept. Redis
    /// writes are sent in the background: the response does not wait for them.
    pub fn put(&self, key: Key, entry: Entry) {
        if entry.body.len() > self.config.max_entry_size {
            self.stats.too_large.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stats.stores.fetch_add(1, Ordering::Relaxed);
        match &self.backend {
            Backend::Memory(lru) => {
                let expires = tokio::time::Instant::now() + self.config.ttl;
                lru.lock().put(key, entry, expires);
            }
            Backend::Redis { client, prefix } => {
                let client = Arc::clone(client);
                let name = redis_key(prefix, &key);
                let ttl_ms = self.config.ttl.as_millis().to_string();
                let stats = Arc::clone(&self.stats);
                tokio::spawn(async move {
                    let value = entry.encode();
                    let args: [&[u8]; 5] =
                        [b"SET", name.as_bytes(), &value, b"PX", ttl_ms.as_bytes()];
                    if let Err(e) = client.call(&args).await {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "cache store failed; the answer was not kept");
                    }
                });
            }
        }
    }

    /// The largest answer kept, in bytes.
    pub fn max_entry_size(&self) -> usize {
        self.config.max_entry_size
    }

    /// Appends the cache's own series (size, stores, backend errors) in Prometheus' format.
    pub fn render(&self, out: &mut String) {
        use crate::telemetry::single;
        if let Backend::Memory(lru) = &self.backend {
            let (entries, bytes) = {
                let lru = lru.lock();
                (lru.len() as u64, lru.bytes() as u64)
            };
            single(
                out,
                "switchyard_cache_entries",
                "gauge",
                "Answers held by the in-memory response cache.",
                entries,
            );
            single(
                out,
                "switchyard_cache_bytes",
                "gauge",
                "Bytes held by the in-memory response cache.",
                bytes,
            );
        }
        single(
            out,
            "switchyard_cache_stores_total",
            "counter",
            "Answers handed to the response cache to keep.",
            self.stats.stores.load(Ordering::Relaxed),
        );
        single(
            out,
            "switchyard_cache_too_large_total",
            "counter",
            "Answers not kept because they exceed cache.max_entry_size.",
            self.stats.too_large.load(Ordering::Relaxed),
        );
        single(
            out,
            "switchyard_cache_backend_errors_total",
            "counter",
            "Cache lookups and stores that failed at the backend (served upstream instead).",
            self.stats.errors.load(Ordering::Relaxed),
        );
    }
}

fn redis_key(prefix: &str, key: &Key) -> String {
    format!("{prefix}:{}", key.hex())
}

/// Now, in Unix milliseconds (for an entry's `stored_ms`).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
