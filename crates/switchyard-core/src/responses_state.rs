//! Stored Responses API responses, per tenant: what `previous_response_id`, `GET`/`DELETE
//! /v1/responses/{id}` and `input_items` need.
//!
//! Two kinds of record. A response created by an OpenAI-type deployment is kept by that
//! upstream; the gateway records only which deployment created it (and for whom), so later
//! calls go there and nowhere else ([`Kept::Upstream`]). A response the gateway produced by
//! translation (Anthropic, Gemini, Bedrock) exists nowhere else, so the gateway keeps the whole
//! object and its input items ([`Kept::Gateway`]), and replays the conversation when a later
//! request continues it.
//!
//! Every record is keyed by ([`Tenant`], response id): a tenant asking for another tenant's
//! id gets "not found", exactly as for an id that never existed. [`ResponseStore`] is the seam
//! for the store; [`PersistentResponseStore`] keeps records in the gateway's SQLite or
//! PostgreSQL store (the default), [`MemoryResponseStore`] is the bounded in-process
//! implementation, whose records are lost on restart.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

/// A boxed future, so the store trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Whose responses these are: the calling key (a virtual key by name, the master key, or
/// anonymous access when auth is off). Never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant(Arc<str>);

impl Tenant {
    /// The tenant of a virtual key.
    pub fn key(name: &str) -> Self {
        Self(Arc::from(format!("key:{name}")))
    }

    /// The tenant of a team (stored chat completions belong to the calling key's team, when
    /// it has one).
    pub fn team(name: &str) -> Self {
        Self(Arc::from(format!("team:{name}")))
    }

    /// The tenant for a principal named `principal` (`master`, `anonymous`) without a key
    /// name.
    pub fn principal(principal: &str) -> Self {
        Self(Arc::from(principal))
    }

    /// The stable name to key records by.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a response's content lives.
#[derive(Debug, Clone, PartialEq)]
pub enum Kept {
    /// At the OpenAI-type upstream that created it; the gateway forwards to it.
    Upstream,
    /// In the gateway, which produced it by translation.
    Gateway {
        /// The response object as the client received it.
        response: Value,
        /// This response's own input items (with ids), oldest first.
        input_items: Vec<Value>,
        /// The response it continued, whose conversation comes before its input.
        previous_response_id: Option<String>,
    },
}

/// One stored response.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    /// The response id.
    pub id: String,
    /// The provider (configured name) of the deployment that created it.
    pub provider: Arc<str>,
    /// The deployment's model.
    pub model: Arc<str>,
    /// The model name the client asked for (answers carry it back).
    pub client_model: Arc<str>,
    /// Where its content lives.
    pub kept: Kept,
}

/// Which page of input items to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemsPage {
    /// List items after this item id (in the listing order).
    pub after: Option<String>,
    /// Most items to return.
    pub limit: usize,
    /// Newest first (OpenAI's default) or oldest first.
    pub descending: bool,
}

/// A page of input items.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemList {
    /// The items, in the requested order.
    pub data: Vec<Value>,
    /// Whether more follow.
    pub has_more: bool,
}

/// A store failure (the in-memory store has none; persistent ones do).
#[derive(Debug, thiserror::Error)]
#[error("response store: {0}")]
pub struct StoreError(pub String);

/// Stored responses, keyed by (tenant, response id).
///
/// Implementations must never return a record to a tenant other than the one that put it. A
/// record put is visible to every later `get` on any worker of the process (read your
/// writes): a client typically continues a response as soon as it has read it.
pub trait ResponseStore: Send + Sync + 'static {
    /// Stores (or replaces) `record` for `tenant`.
    fn put<'a>(
        &'a self,
        tenant: &'a Tenant,
        record: StoredResponse,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The record `id` of `tenant`, if there is one.
    fn get<'a>(
        &'a self,
        tenant: &'a Tenant,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredResponse>, StoreError>>;

    /// Removes the record `id` of `tenant`; whether there was one.
    fn delete<'a>(
        &'a self,
        tenant: &'a Tenant,
        id: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// A page of the input items of `tenant`'s gateway-kept response `id`; `None` when there
    /// is no such record (or it is kept upstream).
    fn list_input_items<'a>(
        &'a self,
        tenant: &'a Tenant,
        id: &'a str,
        page: &'a ItemsPage,
    ) -> BoxFuture<'a, Result<Option<ItemList>, StoreError>>;

    /// Waits until every write accepted so far is stored (at shutdown, so detached writes
    /// are not lost with the process).
    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }

    /// Stores `record` for `tenant` in the background (a stream's reply cannot wait for it);
    /// the record is visible to `get` as soon as this returns. Failures are logged.
    fn put_detached(self: Arc<Self>, tenant: Tenant, record: StoredResponse) {
        tokio::spawn(async move {
            if let Err(e) = self.put(&tenant, record).await {
                tracing::warn!(error = %e, "could not store a streamed response");
            }
        });
    }
}

/// Cuts one page out of `items` (oldest first), for stores that load a record's items whole.
pub fn page_of(items: &[Value], page: &ItemsPage) -> ItemList {
    let ordered: Vec<&Value> = if page.descending {
        items.iter().rev().collect()
    } else {
        items.iter().collect()
    };
    let start = match &page.after {
        Some(after) => ordered
            .iter()
            .position(|v| v.get("id").and_then(Value::as_str) == Some(after.as_str()))
            .map_or(ordered.len(), |i| i + 1),
        None => 0,
    };
    let rest = ordered.get(start..).unwrap_or_default();
    let data: Vec<Value> = rest.iter().take(page.limit).map(|v| (*v).clone()).collect();
    ItemList {
        has_more: rest.len() > data.len(),
        data,
    }
}

/// The bounded in-process store: at most `capacity` records, each for at most `ttl`; the
/// oldest go first. Everything is lost on restart.
#[derive(Debug)]
pub struct MemoryResponseStore {
    capacity: usize,
    ttl: Duration,
    inner: parking_lot::Mutex<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    records: HashMap<(Tenant, String), (u64, Instant, StoredResponse)>,
    /// Insertion order, for eviction; entries whose sequence number no longer matches were
    /// replaced or deleted.
    order: VecDeque<(u64, Tenant, String)>,
    next: u64,
}

impl MemoryResponseStore {
    /// Default number of records kept.
    pub const DEFAULT_CAPACITY: usize = 10_000;
    /// Default lifetime of a record (OpenAI keeps responses for 30 days; an in-memory store
    /// keeps them for a day at most).
    pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

    /// A store of at most `capacity` records living at most `ttl` each.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            ttl,
            inner: parking_lot::Mutex::default(),
        }
    }

    pub(crate) fn put_now(&self, tenant: &Tenant, record: StoredResponse) {
        let mut m = self.inner.lock();
        let seq = m.next;
        m.next += 1;
        let key = (tenant.clone(), record.id.clone());
        m.order.push_back((seq, tenant.clone(), record.id.clone()));
        m.records.insert(key, (seq, Instant::now(), record));
        while m.records.len() > self.capacity {
            let Some((seq, tenant, id)) = m.order.pop_front() else {
                break;
            };
            let key = (tenant, id);
            if m.records.get(&key).is_some_and(|(s, _, _)| *s == seq) {
                m.records.remove(&key);
            }
        }
        // Keep the order queue from growing with replaced or deleted entries.
        if m.order.len() > 2 * self.capacity {
            let Memory { records, order, .. } = &mut *m;
            order.retain(|(seq, tenant, id)| {
                records
                    .get(&(tenant.clone(), id.clone()))
                    .is_some_and(|(s, _, _)| s == seq)
            });
        }
    }

    pub(crate) fn get_now(&self, tenant: &Tenant, id: &str) -> Option<StoredResponse> {
        let key = (tenant.clone(), id.to_owned());
        let mut m = self.inner.lock();
        let expired = match m.records.get(&key) {
            None => return None,
            Some((_, at, _)) => at.elapsed() > self.ttl,
        };
        if expired {
            m.records.remove(&key);
            return None;
        }
        m.records.get(&key).map(|(_, _, r)| r.clone())
    }

    /// Removes a record; whether there was one.
    pub(crate) fn remove(&self, tenant: &Tenant, id: &str) -> bool {
        let key = (tenant.clone(), id.to_owned());
        self.inner.lock().records.remove(&key).is_some()
    }
}

impl Default for MemoryResponseStore {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY, Self::DEFAULT_TTL)
    }
}

impl ResponseStore for MemoryResponseStore {
    fn put_detached(self: Arc<Self>, tenant: Tenant, record: StoredResponse) {
        self.put_now(&tenant, record);
    }

    fn put<'a>(
        &'a self,
        tenant: &'a Tenant,
        record: StoredResponse,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        // Done before the future is polled, so a record put from a stream is visible at once.
        self.put_now(tenant, record);
        Box::pin(std::future::ready(Ok(())))
    }

    fn get<'a>(
        &'a self,
        tenant: &'a Tenant,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredResponse>, StoreError>> {
        Box::pin(std::future::ready(Ok(self.get_now(tenant, id))))
    }

    fn delete<'a>(
        &'a self,
        tenant: &'a Tenant,
        id: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(std::future::ready(Ok(self.remove(tenant, id))))
    }

    fn list_input_items<'a>(
        &'a self,
        tenant: &'a Tenant,
        id: &'a str,
        page: &'a ItemsPage,
    ) -> BoxFuture<'a, Result<Option<ItemList>, StoreError>> {
        let list = match self.get_now(tenant, id) {
            Some(StoredResponse {
                kept: Kept::Gateway { input_items, .. },
                ..
            }) => Some(page_of(&input_items, page)),
            _ => None,
        };
        Box::pin(std::future::ready(Ok(list)))
    }
}

mod persistent;
pub use persistent::PersistentResponseStore;

#[cfg(test)]
pub(crate) mod tests;
