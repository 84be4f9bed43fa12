//! Virtual keys kept in the store: created, listed, updated, rotated and revoked through the
//! admin API and the CLI, checked on every request from an in-memory cache.
//!
//! A key is shown once, when it is created or rotated; the store keeps only its SHA-256 digest
//! (hex), so a leaked database does not leak usable keys. The hot path never waits on the
//! store: [`KeyCache`] holds every key's digest and record, and is reloaded every
//! `keys.refresh` (and at once after an admin change on this instance), so several replicas
//! sharing one PostgreSQL database converge within one refresh interval.
//!
//! Rotation gives a key a new secret and keeps the previous digest valid until a grace
//! deadline, so clients can be redeployed without an outage. Revocation is immediate on the
//! instance that revokes and within one refresh elsewhere; an expired or revoked key is
//! refused with 401 whatever else is configured.

pub mod config;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::config::sha256;
use crate::store::{unix_millis, Params, Store, StoreError, Value};

pub use config::KeysConfig;

/// Prefix of every generated key, so secret scanners and humans recognise one.
pub const KEY_PREFIX: &str = "sk-sy-";

/// Default grace period of the previous secret after a rotation.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(3600);

/// One virtual key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KeyRecord {
    /// Stable identifier (`vk_...`), used in admin URLs.
    pub id: String,
    /// Unique human name; what logs, records and limits call the key.
    pub name: String,
    /// Owner team (attribution, limits, budgets).
    pub team: Option<String>,
    /// Owner user.
    pub user: Option<String>,
    /// Aliases the key may call; `None` means any.
    pub allowed_aliases: Option<Vec<String>>,
    /// Requests per minute allowed to this key.
    pub rpm: Option<u64>,
    /// Tokens per minute allowed to this key.
    pub tpm: Option<u64>,
    /// Budget in USD per `budget_period` (stored here, enforced by the budget module).
    pub budget_usd: Option<f64>,
    /// `day`, `week` or `month`.
    pub budget_period: Option<String>,
    /// Unix milliseconds after which the key stops working.
    pub expires_at: Option<i64>,
    /// When it was revoked (Unix milliseconds).
    pub revoked_at: Option<i64>,
    /// Until when the secret before the last rotation still works (Unix milliseconds).
    pub previous_valid_until: Option<i64>,
    /// Metadata tags, added to the attribution of the key's requests.
    pub tags: BTreeMap<String, String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

impl KeyRecord {
    /// Whether the key may be used at `now` (Unix milliseconds) with its current secret.
    pub fn active_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }

    /// Whether `alias` is one the key may call.
    pub fn allows(&self, alias: &str) -> bool {
        self.allowed_aliases
            .as_ref()
            .is_none_or(|list| list.iter().any(|a| a == alias))
    }
}

/// Fields of a new key or of an update; absent fields are left alone on update.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFields {
    /// Unique name (required on create).
    pub name: Option<String>,
    /// Owner team; `null` clears it on update.
    #[serde(default, deserialize_with = "double_option")]
    pub team: Option<Option<String>>,
    /// Owner user.
    #[serde(default, deserialize_with = "double_option")]
    pub user: Option<Option<String>>,
    /// Aliases the key may call.
    #[serde(default, deserialize_with = "double_option")]
    pub allowed_aliases: Option<Option<Vec<String>>>,
    /// Requests per minute.
    #[serde(default, deserialize_with = "double_option")]
    pub rpm: Option<Option<u64>>,
    /// Tokens per minute.
    #[serde(default, deserialize_with = "double_option")]
    pub tpm: Option<Option<u64>>,
    /// Budget in USD.
    #[serde(default, deserialize_with = "double_option")]
    pub budget_usd: Option<Option<f64>>,
    /// `day`, `week` or `month`.
    #[serde(default, deserialize_with = "double_option")]
    pub budget_period: Option<Option<String>>,
    /// Expiry as Unix milliseconds.
    #[serde(default, deserialize_with = "double_option")]
    pub expires_at: Option<Option<i64>>,
    /// Lifetime from now, e.g. `30d` (alternative to `expires_at`).
    pub expires_in: Option<String>,
    /// Metadata tags.
    pub tags: Option<BTreeMap<String, String>>,
}

fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The request is invalid; the message says which field.
    #[error("{0}")]
    Invalid(String),
    /// No key with that id or name.
    #[error("no virtual key `{0}`")]
    NotFound(String),
    /// The name is taken.
    #[error("a virtual key named `{0}` already exists")]
    Duplicate(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Generates a new key: `sk-sy-` and 32 bytes from the OS CSPRNG, in hex.
pub fn generate_key() -> Result<String, KeyError> {
    let mut buf = [0u8; 32];
    getrandom::getrandom(&mut buf)
        .map_err(|e| KeyError::Invalid(format!("no randomness available: {e}")))?;
    Ok(format!("{KEY_PREFIX}{}", hex(&buf)))
}

fn new_id() -> Result<String, KeyError> {
    let mut buf = [0u8; 12];
    getrandom::getrandom(&mut buf)
        .map_err(|e| KeyError::Invalid(format!("no randomness available: {e}")))?;
    Ok(format!("vk_{}", hex(&buf)))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn digest_hex(key: &str) -> String {
    hex(&sha256(key.as_bytes()))
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

const COLUMNS: &str = "id, name, team, user_id, allowed_aliases, rpm, tpm, budget_usd, \
    budget_period, expires_at, revoked_at, previous_valid_until, tags, created_at, updated_at, \
    key_sha256, previous_sha256";

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn opt_u64(v: &Value) -> Option<u64> {
    v.as_i64().and_then(|i| u64::try_from(i).ok())
}

/// A row and its digests.
fn read_row(row: &[Value]) -> Option<(KeyRecord, String, Option<String>)> {
    let get = |i: usize| row.get(i).unwrap_or(&Value::Null);
    let rec = KeyRecord {
        id: opt_str(get(0))?,
        name: opt_str(get(1))?,
        team: opt_str(get(2)),
        user: opt_str(get(3)),
        allowed_aliases: get(4).as_str().and_then(|s| serde_json::from_str(s).ok()),
        rpm: opt_u64(get(5)),
        tpm: opt_u64(get(6)),
        budget_usd: get(7).as_f64(),
        budget_period: opt_str(get(8)),
        expires_at: get(9).as_i64(),
        revoked_at: get(10).as_i64(),
        previous_valid_until: get(11).as_i64(),
        tags: get(12)
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default(),
        created_at: get(13).as_i64().unwrap_or(0),
        updated_at: get(14).as_i64().unwrap_or(0),
    };
    Some((rec, opt_str(get(15))?, opt_str(get(16))))
}

fn check_fields(f: &KeyFields) -> Result<(), KeyError> {
    let bad = |m: &str| Err(KeyError::Invalid(m.to_owned()));
    if let Some(name) = &f.name {
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c))
        {
            return bad("`name` must be 1-64 characters of letters, digits and -_.:@");
        }
    }
    if let Some(Some(p)) = &f.budget_period {
        if !matches!(p.as_str(), "day" | "week" | "month") {
            return bad("`budget_period` must be `day`, `week` or `month`");
        }
    }
    if let Some(Some(b)) = f.budget_usd {
        if !(b.is_finite() && b >= 0.0) {
            return bad("`budget_usd` must be a non-negative number");
        }
    }
    if matches!(f.rpm, Some(Some(0))) || matches!(f.tpm, Some(Some(0))) {
        return bad("`rpm` and `tpm` must be at least 1 (omit them for no limit)");
    }
    if f.expires_at.is_some() && f.expires_in.is_some() {
        return bad("set at most one of `expires_at` and `expires_in`");
    }
    if let Some(tags) = &f.tags {
        if tags.len() > 16
            || tags
                .iter()
                .any(|(k, v)| k.is_empty() || k.len() > 64 || v.len() > 128)
        {
            return bad("`tags`: at most 16, keys 1-64 and values up to 128 characters");
        }
    }
    Ok(())
}

fn expiry(f: &KeyFields, now: i64) -> Result<Option<Option<i64>>, KeyError> {
    if let Some(d) = &f.expires_in {
        let d = crate::config::units::parse_duration(d)
            .map_err(|e| KeyError::Invalid(format!("`expires_in`: {e}")))?;
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        return Ok(Some(Some(now.saturating_add(ms))));
    }
    Ok(f.expires_at)
}

/// The `virtual_keys` table, over any store.
#[derive(Debug, Clone)]
pub struct KeyStore {
    store: Store,
}

impl KeyStore {
    /// Keys in `store` (whose schema is migrated).
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Every key, newest first.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, KeyError> {
        Ok(self.rows().await?.into_iter().map(|(r, ..)| r).collect())
    }

    async fn rows(&self) -> Result<Vec<(KeyRecord, String, Option<String>)>, KeyError> {
        let rows = self
            .store
            .query(
                format!("SELECT {COLUMNS} FROM virtual_keys ORDER BY created_at DESC, id"),
                Vec::new(),
            )
            .await?;
        Ok(rows.iter().filter_map(|r| read_row(r)).collect())
    }

    /// One key, by id or by name.
    pub async fn get(&self, id_or_name: &str) -> Result<KeyRecord, KeyError> {
        let mut p = Params::new(self.store.dialect());
        let a = p.push(id_or_name.to_owned());
        let b = p.push(id_or_name.to_owned());
        let rows = self
            .store
            .query(
                format!("SELECT {COLUMNS} FROM virtual_keys WHERE id = {a} OR name = {b}"),
                p.values,
            )
            .await?;
        rows.first()
            .and_then(|r| read_row(r))
            .map(|(r, ..)| r)
            .ok_or_else(|| KeyError::NotFound(id_or_name.to_owned()))
    }

    /// Creates a key; returns its record and the key, which is never available again.
    pub async fn create(&self, fields: KeyFields) -> Result<(KeyRecord, String), KeyError> {
        check_fields(&fields)?;
        let name = fields
            .name
            .clone()
            .ok_or_else(|| KeyError::Invalid("`name` is required".into()))?;
        if self.get(&name).await.is_ok() {
            return Err(KeyError::Duplicate(name));
        }
        let now = unix_millis();
        let key = generate_key()?;
        let rec = KeyRecord {
            id: new_id()?,
            name,
            team: fields.team.clone().flatten(),
            user: fields.user.clone().flatten(),
            allowed_aliases: fields.allowed_aliases.clone().flatten(),
            rpm: fields.rpm.flatten(),
            tpm: fields.tpm.flatten(),
            budget_usd: fields.budget_usd.flatten(),
            budget_period: fields.budget_period.clone().flatten(),
            expires_at: expiry(&fields, now)?.flatten(),
            revoked_at: None,
            previous_valid_until: None,
            tags: fields.tags.clone().unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        let mut p = Params::new(self.store.dialect());
        let values = [
            p.push(rec.id.clone()),
            p.push(rec.name.clone()),
            p.push(rec.team.clone()),
            p.push(rec.user.clone()),
            p.push(json_opt(rec.allowed_aliases.as_ref())),
            p.push(rec.rpm.and_then(|v| i64::try_from(v).ok())),
            p.push(rec.tpm.and_then(|v| i64::try_from(v).ok())),
            p.push(rec.budget_usd),
            p.push(rec.budget_period.clone()),
            p.push(rec.expires_at),
            p.push(Value::Null),
            p.push(Value::Null),
            p.push(serde_json::to_string(&rec.tags).unwrap_or_default()),
            p.push(now),
            p.push(now),
            p.push(digest_hex(&key)),
            p.push(Value::Null),
        ];
        self.store
            .execute(
                format!(
                    "INSERT INTO virtual_keys ({COLUMNS}) VALUES ({})",
                    values.join(", ")
                ),
                p.values,
            )
            .await
            .map_err(|e| match e {
                // The unique index lost a race with another creator of the same name.
                StoreError::Sql(m) if m.to_lowercase().contains("unique") => {
                    KeyError::Duplicate(rec.name.clone())
                }
                other => KeyError::Store(other),
            })?;
        Ok((rec, key))
    }

    /// Changes the fields `fields` sets (not the secret; see [`KeyStore::rotate`]).
    pub async fn update(&self, id_or_name: &str, fields: KeyFields) -> Result<KeyRecord, KeyError> {
        check_fields(&fields)?;
        let cur = self.get(id_or_name).await?;
        let mut p = Params::new(self.store.dialect());
        let mut sets = Vec::new();
        if let Some(name) = &fields.name {
            if *name != cur.name && self.get(name).await.is_ok() {
                return Err(KeyError::Duplicate(name.clone()));
            }
            sets.push(format!("name = {}", p.push(name.clone())));
        }
        if let Some(v) = &fields.team {
            sets.push(format!("team = {}", p.push(v.clone())));
        }
        if let Some(v) = &fields.user {
            sets.push(format!("user_id = {}", p.push(v.clone())));
        }
        if let Some(v) = &fields.allowed_aliases {
            sets.push(format!(
                "allowed_aliases = {}",
                p.push(json_opt(v.as_ref()))
            ));
        }
        if let Some(v) = fields.rpm {
            sets.push(format!(
                "rpm = {}",
                p.push(v.and_then(|v| i64::try_from(v).ok()))
            ));
        }
        if let Some(v) = fields.tpm {
            sets.push(format!(
                "tpm = {}",
                p.push(v.and_then(|v| i64::try_from(v).ok()))
            ));
        }
        if let Some(v) = fields.budget_usd {
            sets.push(format!("budget_usd = {}", p.push(v)));
        }
        if let Some(v) = &fields.budget_period {
            sets.push(format!("budget_period = {}", p.push(v.clone())));
        }
        if let Some(v) = expiry(&fields, unix_millis())? {
            sets.push(format!("expires_at = {}", p.push(v)));
        }
        if let Some(v) = &fields.tags {
            sets.push(format!(
                "tags = {}",
                p.push(serde_json::to_string(v).unwrap_or_default())
            ));
        }
        sets.push(format!("updated_at = {}", p.push(unix_millis())));
        let id = p.push(cur.id.clone());
        self.store
            .execute(
                format!(
                    "UPDATE virtual_keys SET {} WHERE id = {id}",
                    sets.join(", ")
                ),
                p.values,
            )
            .await?;
        self.get(&cur.id).await
    }

    /// Gives the key a new secret; the current one keeps working for `grace`. Returns the
    /// record and the new key, shown only now.
    pub async fn rotate(
        &self,
        id_or_name: &str,
        grace: Duration,
    ) -> Result<(KeyRecord, String), KeyError> {
        let cur = self.get(id_or_name).await?;
        if cur.revoked_at.is_some() {
            return Err(KeyError::Invalid(format!(
                "virtual key `{}` is revoked and cannot be rotated",
                cur.name
            )));
        }
        let key = generate_key()?;
        let now = unix_millis();
        let until = now.saturating_add(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
        let mut p = Params::new(self.store.dialect());
        let sql = format!(
            "UPDATE virtual_keys SET previous_sha256 = key_sha256, key_sha256 = {}, \
             previous_valid_until = {}, updated_at = {} WHERE id = {}",
            p.push(digest_hex(&key)),
            p.push(until),
            p.push(now),
            p.push(cur.id.clone()),
        );
        self.store.execute(sql, p.values).await?;
        Ok((self.get(&cur.id).await?, key))
    }

    /// Revokes the key now (idempotent: a revoked key keeps its first revocation time).
    pub async fn revoke(&self, id_or_name: &str) -> Result<KeyRecord, KeyError> {
        let cur = self.get(id_or_name).await?;
        let now = unix_millis();
        let mut p = Params::new(self.store.dialect());
        let sql = format!(
            "UPDATE virtual_keys SET revoked_at = {}, updated_at = {} \
             WHERE id = {} AND revoked_at IS NULL",
            p.push(now),
            p.push(now),
            p.push(cur.id.clone()),
        );
        self.store.execute(sql, p.values).await?;
        self.get(&cur.id).await
    }
}

fn json_opt(v: Option<&Vec<String>>) -> Option<String> {
    v.map(|l| serde_json::to_string(l).unwrap_or_default())
}

/// Completes a request's attribution from its key's record: the key's team and user when the
/// request names none, and the key's tags under any the request set itself.
pub fn attribute(rec: &KeyRecord, a: &mut crate::attribution::Attribution) {
    // The key's team is authoritative: a client cannot move its spend to another team.
    if rec.team.is_some() {
        a.team = rec.team.as_deref().map(Arc::from);
    }
    if a.user.is_none() {
        a.user = rec.user.as_deref().map(Arc::from);
    }
    for (k, v) in &rec.tags {
        if !a.tags.iter().any(|(have, _)| **have == **k) {
            a.tags.push((Arc::from(k.as_str()), Arc::from(v.as_str())));
        }
    }
    a.tags.sort_by(|x, y| x.0.cmp(&y.0));
}

/// One cached key: its digests and record.
#[derive(Debug)]
struct Entry {
    digest: [u8; 32],
    previous: Option<[u8; 32]>,
    record: Arc<KeyRecord>,
}

/// What a presented key is, according to the store.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A usable key.
    Valid(Arc<KeyRecord>),
    /// A known key that is revoked, expired, or a rotated secret past its grace.
    Refused,
    /// Not a store key.
    Unknown,
}

/// Called with every key record after each reload of the [`KeyCache`] (the budget module keeps
/// the keys' own budgets in step this way).
pub type RefreshHook = Box<dyn Fn(&[Arc<KeyRecord>]) + Send + Sync>;

/// The hooks of a cache.
#[derive(Default)]
struct Hooks(RwLock<Vec<RefreshHook>>);

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} hooks", self.0.read().len())
    }
}

/// Every store key in memory, refreshed in the background.
#[derive(Debug)]
pub struct KeyCache {
    keys: KeyStore,
    entries: RwLock<Arc<Vec<Entry>>>,
    hooks: Hooks,
    /// One reload at a time, so a slow one cannot overwrite the result of a newer one.
    reloading: tokio::sync::Mutex<()>,
}

impl KeyCache {
    /// Loads every key now (so a restarted gateway accepts its keys from the first request)
    /// and keeps them fresh every `refresh` on a background task.
    pub async fn start(keys: KeyStore, refresh: Duration) -> Result<Arc<Self>, KeyError> {
        let cache = Arc::new(Self {
            keys,
            entries: RwLock::new(Arc::new(Vec::new())),
            hooks: Hooks::default(),
            reloading: tokio::sync::Mutex::new(()),
        });
        cache.refresh().await?;
        let weak = Arc::downgrade(&cache);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(refresh);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(cache) = weak.upgrade() else { return };
                if let Err(e) = cache.refresh().await {
                    // Keep serving the last good set: a store hiccup must not lock clients out.
                    tracing::warn!(error = %e, "could not refresh virtual keys from the store");
                }
            }
        });
        Ok(cache)
    }

    /// The store the keys live in.
    pub fn store(&self) -> &KeyStore {
        &self.keys
    }

    /// Reloads every key from the store, then runs the refresh hooks.
    pub async fn refresh(&self) -> Result<(), KeyError> {
        let _one_at_a_time = self.reloading.lock().await;
        let rows = self.keys.rows().await?;
        let entries: Vec<Entry> = rows
            .into_iter()
            .filter_map(|(rec, digest, previous)| {
                Some(Entry {
                    digest: parse_hex32(&digest)?,
                    previous: previous.as_deref().and_then(parse_hex32),
                    record: Arc::new(rec),
                })
            })
            .collect();
        let records: Vec<Arc<KeyRecord>> = entries.iter().map(|e| Arc::clone(&e.record)).collect();
        *self.entries.write() = Arc::new(entries);
        for hook in self.hooks.0.read().iter() {
            hook(&records);
        }
        Ok(())
    }

    /// Runs `hook` with the current keys now and after every reload.
    pub fn on_refresh(&self, hook: RefreshHook) {
        // Held across the first call, so a reload finishing meanwhile runs the hook after it.
        let mut hooks = self.hooks.0.write();
        let records: Vec<Arc<KeyRecord>> = self
            .entries
            .read()
            .iter()
            .map(|e| Arc::clone(&e.record))
            .collect();
        hook(&records);
        hooks.push(hook);
    }

    /// Looks a presented key up, comparing its digest with every cached digest in constant
    /// time (no early exit, so timing says nothing about which or whether one matched).
    pub fn lookup(&self, presented: &str) -> Lookup {
        let digest = sha256(presented.as_bytes());
        let now = unix_millis();
        let entries = Arc::clone(&self.entries.read());
        let mut found = Lookup::Unknown;
        for e in entries.iter() {
            let current = crate::auth::ct_eq(&e.digest, &digest);
            let previous = e.previous.is_some_and(|p| crate::auth::ct_eq(&p, &digest));
            if !(current || previous) || !matches!(found, Lookup::Unknown) {
                continue;
            }
            let in_grace = e.record.previous_valid_until.is_some_and(|u| now < u);
            found = if e.record.active_at(now) && (current || in_grace) {
                Lookup::Valid(Arc::clone(&e.record))
            } else {
                Lookup::Refused
            };
        }
        found
    }

    /// The current record of the key named `name`.
    pub fn by_name(&self, name: &str) -> Option<Arc<KeyRecord>> {
        let entries = Arc::clone(&self.entries.read());
        entries
            .iter()
            .find(|e| e.record.name == name)
            .map(|e| Arc::clone(&e.record))
    }
}

#[cfg(test)]
mod tests;
