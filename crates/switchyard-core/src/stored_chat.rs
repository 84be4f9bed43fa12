//! Stored chat completions, per tenant: the gateway's own record of each chat completion a
//! client created with `store: true`, so that `GET`/`POST`/`DELETE /v1/chat/completions/{id}`,
//! its `messages` and the list go to the deployment that made it, for the tenant that made it
//! and nobody else.
//!
//! The completion itself is kept by the OpenAI-type upstream that served it; the gateway keeps
//! which deployment that was, the model names, the completion's metadata as last set through
//! the gateway (the list filters on it) and when it was made (the list's order). A completion
//! made by a translated deployment (Anthropic, Gemini, Bedrock) is recorded too, as not kept
//! upstream, so that asking for it gets an error naming the deployment instead of a bare
//! "not found".
//!
//! Records live in the gateway's [`Store`] (table `chat_completions`, migration 5). Writes go
//! through one ordered queue (a task per store), batched into transactions; every read first
//! waits for the writes queued before it ([`ChatCompletionStore::flush`]), so a completion is
//! visible to the next request of any worker of this process as soon as its id has reached the
//! client (read your writes), without a cache that could go stale behind another gateway on the
//! same PostgreSQL. A deleted record stays as a tombstone until it expires, so a list cursor
//! naming it still resolves (clients delete what they page through). Records live
//! [`ChatCompletionStore::DEFAULT_TTL`]; expired rows are never returned and are purged as writes
//! go by.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json};
use tokio::sync::{mpsc, oneshot};

pub use crate::responses_state::Tenant;
use crate::store::{unix_millis, Params, Statement, Store, Value};

/// One recorded chat completion.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRecord {
    /// The completion id (`chatcmpl-...`).
    pub id: String,
    /// The provider (configured name) of the deployment that made it.
    pub provider: Arc<str>,
    /// The deployment's model.
    pub model: Arc<str>,
    /// The model name the client asked for (answers carry it back; `model` filters on it).
    pub client_model: Arc<str>,
    /// Whether the upstream keeps it (an OpenAI-type deployment); `false` for a translated one.
    pub kept_upstream: bool,
    /// Its metadata (string values), as created or last updated through the gateway.
    pub metadata: Option<Map<String, Json>>,
    /// When it was recorded, in Unix microseconds; set by [`ChatCompletionStore::put`].
    pub created_us: i64,
}

/// Which page of a tenant's completions to list (only those kept upstream are listed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only completions made for this model name (as the client asked for it).
    pub model: Option<String>,
    /// Only completions made for one of these model names (a key restricted to aliases).
    pub aliases: Option<Vec<String>>,
    /// Only completions whose metadata has every one of these pairs.
    pub metadata: Vec<(String, String)>,
    /// Completions after this one, in the listing order.
    pub after: Option<String>,
    /// Most completions to return.
    pub limit: usize,
    /// Newest first; OpenAI's default for this list is oldest first.
    pub descending: bool,
}

/// A page of completions.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The records, in the listing order.
    pub records: Vec<ChatRecord>,
    /// Whether more follow.
    pub has_more: bool,
}

/// A store failure, or a list cursor that names no completion of the tenant.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("stored chat completions: {0}")]
    Store(String),
    /// `after` names no completion of this tenant.
    #[error("no stored chat completion '{0}' to list after")]
    UnknownCursor(String),
}

fn store_err(e: crate::store::StoreError) -> StoreError {
    StoreError::Store(e.to_string())
}

/// One queued write.
enum Op {
    Put {
        tenant: Tenant,
        record: ChatRecord,
    },
    Metadata {
        tenant: Tenant,
        id: String,
        metadata: Option<Map<String, Json>>,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Delete {
        tenant: Tenant,
        id: String,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Answered once every earlier write is done.
    Flush(oneshot::Sender<()>),
}

/// The tenants' chat completion records on the gateway's persistent store.
pub struct ChatCompletionStore {
    store: Store,
    ttl: Duration,
    writes: mpsc::UnboundedSender<Op>,
    /// The last `created_us` handed out, so records of this gateway are strictly ordered.
    last_created: AtomicI64,
}

impl std::fmt::Debug for ChatCompletionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatCompletionStore")
            .field("store", &self.store)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Most queued writes applied in one transaction.
const MAX_BATCH: usize = 256;
/// Purge expired rows once per this many batches.
const PURGE_EVERY: u64 = 256;
/// Rows read per query while a metadata filter skips some.
const FILTER_BATCH: usize = 200;

impl ChatCompletionStore {
    /// How long a record is kept: 30 days, as OpenAI keeps stored chat completions.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

    /// A store on `store` (already migrated) whose records live `ttl`. Starts the write
    /// queue's task on the current runtime; it ends when the store is dropped.
    pub fn new(store: Store, ttl: Duration) -> Self {
        let (writes, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(store.clone(), ttl, rx));
        Self {
            store,
            ttl,
            writes,
            last_created: AtomicI64::new(0),
        }
    }

    fn enqueue(&self, op: Op) -> Result<(), StoreError> {
        self.writes.send(op).map_err(|_| stopped())
    }

    /// A `created_us` later than every one this store handed out before.
    fn next_created(&self) -> i64 {
        let now = unix_micros();
        let mut last = self.last_created.load(Ordering::Relaxed);
        loop {
            let next = now.max(last.saturating_add(1));
            match self.last_created.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Records `record` for `tenant` (its `created_us` is set now). Queued, never waited for:
    /// the next read sees it. A failed write is logged.
    pub fn put(&self, tenant: Tenant, mut record: ChatRecord) {
        record.created_us = self.next_created();
        if let Err(e) = self.enqueue(Op::Put { tenant, record }) {
            tracing::warn!(error = %e, "could not record a stored chat completion");
        }
    }

    /// Waits until every write queued so far is stored.
    pub async fn flush(&self) {
        let (done, rx) = oneshot::channel();
        if self.enqueue(Op::Flush(done)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The live record `id` of `tenant`, if there is one.
    pub async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<ChatRecord>, StoreError> {
        self.flush().await;
        let mut p = Params::new(self.store.dialect());
        let sql = format!(
            "SELECT {COLUMNS} FROM chat_completions WHERE tenant = {} AND id = {} \
             AND deleted_at IS NULL AND expires_at > {}",
            p.push(tenant.as_str()),
            p.push(id),
            p.push(unix_millis()),
        );
        let rows = self.store.query(sql, p.values).await.map_err(store_err)?;
        rows.into_iter().next().map(from_row).transpose()
    }

    /// Sets the metadata of `tenant`'s record `id`.
    pub async fn set_metadata(
        &self,
        tenant: &Tenant,
        id: &str,
        metadata: Option<Map<String, Json>>,
    ) -> Result<(), StoreError> {
        let (done, rx) = oneshot::channel();
        self.enqueue(Op::Metadata {
            tenant: tenant.clone(),
            id: id.to_owned(),
            metadata,
            done,
        })?;
        rx.await.map_err(|_| stopped())?
    }

    /// Deletes `tenant`'s record `id` (it stays a tombstone for list cursors until it expires).
    pub async fn delete(&self, tenant: &Tenant, id: &str) -> Result<(), StoreError> {
        let (done, rx) = oneshot::channel();
        self.enqueue(Op::Delete {
            tenant: tenant.clone(),
            id: id.to_owned(),
            done,
        })?;
        rx.await.map_err(|_| stopped())?
    }

    /// A page of `tenant`'s completions kept upstream, by `q`.
    pub async fn list(&self, tenant: &Tenant, q: &ListQuery) -> Result<Page, StoreError> {
        self.flush().await;
        let now = unix_millis();
        let mut cursor = match &q.after {
            None => None,
            Some(after) => {
                let mut p = Params::new(self.store.dialect());
                let sql = format!(
                    "SELECT created_at FROM chat_completions WHERE tenant = {} AND id = {} \
                     AND expires_at > {}",
                    p.push(tenant.as_str()),
                    p.push(after.as_str()),
                    p.push(now),
                );
                let rows = self.store.query(sql, p.values).await.map_err(store_err)?;
                let created = rows
                    .into_iter()
                    .next()
                    .and_then(|row| row.into_iter().next())
                    .and_then(|v| v.as_i64())
                    .ok_or_else(|| StoreError::UnknownCursor(after.clone()))?;
                Some((created, after.clone()))
            }
        };
        let limit = q.limit.max(1);
        // One more than asked says whether more follow.
        let want = limit + 1;
        let batch = if q.metadata.is_empty() {
            want
        } else {
            want.max(FILTER_BATCH)
        };
        let mut found: Vec<ChatRecord> = Vec::with_capacity(want.min(128));
        loop {
            let (sql, params) = self.page_sql(tenant, q, cursor.as_ref(), batch, now);
            let rows = self.store.query(sql, params).await.map_err(store_err)?;
            let read = rows.len();
            for row in rows {
                let record = from_row(row)?;
                cursor = Some((record.created_us, record.id.clone()));
                if matches_metadata(&record, &q.metadata) {
                    found.push(record);
                    if found.len() == want {
                        break;
                    }
                }
            }
            if found.len() == want || read < batch {
                break;
            }
        }
        let has_more = found.len() > limit;
        found.truncate(limit);
        Ok(Page {
            records: found,
            has_more,
        })
    }

    fn page_sql(
        &self,
        tenant: &Tenant,
        q: &ListQuery,
        cursor: Option<&(i64, String)>,
        batch: usize,
        now: i64,
    ) -> (String, Vec<Value>) {
        let mut p = Params::new(self.store.dialect());
        let mut sql = format!(
            "SELECT {COLUMNS} FROM chat_completions WHERE tenant = {} AND kept_upstream = {} \
             AND deleted_at IS NULL AND expires_at > {}",
            p.push(tenant.as_str()),
            p.push(true),
            p.push(now),
        );
        if let Some(model) = &q.model {
            sql.push_str(&format!(" AND client_model = {}", p.push(model.as_str())));
        }
        if let Some(aliases) = &q.aliases {
            if aliases.is_empty() {
                sql.push_str(" AND 1 = 0");
            } else {
                let list: Vec<String> = aliases.iter().map(|a| p.push(a.as_str())).collect();
                sql.push_str(&format!(" AND client_model IN ({})", list.join(", ")));
            }
        }
        let (cmp, dir) = if q.descending {
            ('<', "DESC")
        } else {
            ('>', "ASC")
        };
        if let Some((created, id)) = cursor {
            let c1 = p.push(*created);
            let c2 = p.push(*created);
            let i = p.push(id.as_str());
            sql.push_str(&format!(
                " AND (created_at {cmp} {c1} OR (created_at = {c2} AND id {cmp} {i}))"
            ));
        }
        sql.push_str(&format!(
            " ORDER BY created_at {dir}, id {dir} LIMIT {}",
            p.push(i64::try_from(batch).unwrap_or(i64::MAX))
        ));
        (sql, p.values)
    }
}

const COLUMNS: &str = "id, provider, model, client_model, kept_upstream, metadata, created_at";

fn stopped() -> StoreError {
    StoreError::Store("the chat completion store's writer stopped".into())
}

/// Microseconds since the Unix epoch.
fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn matches_metadata(record: &ChatRecord, wanted: &[(String, String)]) -> bool {
    wanted.iter().all(|(k, v)| {
        record
            .metadata
            .as_ref()
            .and_then(|m| m.get(k))
            .and_then(Json::as_str)
            == Some(v.as_str())
    })
}

fn from_row(row: Vec<Value>) -> Result<ChatRecord, StoreError> {
    let mut cols = row.into_iter();
    let mut next = |name: &str| {
        cols.next()
            .ok_or_else(|| StoreError::Store(format!("column `{name}` missing")))
    };
    let text = |v: Value, name: &str| {
        v.into_string()
            .ok_or_else(|| StoreError::Store(format!("column `{name}` is not text")))
    };
    let id = text(next("id")?, "id")?;
    let provider = text(next("provider")?, "provider")?;
    let model = text(next("model")?, "model")?;
    let client_model = text(next("client_model")?, "client_model")?;
    let kept_upstream = next("kept_upstream")?
        .as_bool()
        .ok_or_else(|| StoreError::Store("column `kept_upstream` is not a boolean".into()))?;
    let metadata = match next("metadata")? {
        Value::Null => None,
        v => {
            let s = text(v, "metadata")?;
            match serde_json::from_str(&s) {
                Ok(Json::Object(m)) => Some(m),
                _ => {
                    return Err(StoreError::Store(
                        "column `metadata` is not an object".into(),
                    ))
                }
            }
        }
    };
    let created_us = next("created_at")?
        .as_i64()
        .ok_or_else(|| StoreError::Store("column `created_at` is not an integer".into()))?;
    Ok(ChatRecord {
        id,
        provider: Arc::from(provider),
        model: Arc::from(model),
        client_model: Arc::from(client_model),
        kept_upstream,
        metadata,
        created_us,
    })
}

fn metadata_text(metadata: Option<&Map<String, Json>>) -> Option<String> {
    metadata.map(|m| Json::Object(m.clone()).to_string())
}

/// The statement for one queued write; `None` for a flush.
fn statement(store: &Store, ttl: Duration, op: &Op) -> Option<Statement> {
    let mut p = Params::new(store.dialect());
    let sql = match op {
        Op::Put { tenant, record } => {
            let expires =
                unix_millis().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
            format!(
                "INSERT INTO chat_completions (tenant, id, provider, model, client_model, \
                 kept_upstream, metadata, created_at, deleted_at, expires_at) \
                 VALUES ({}, {}, {}, {}, {}, {}, {}, {}, NULL, {}) \
                 ON CONFLICT (tenant, id) DO UPDATE SET provider = excluded.provider, \
                 model = excluded.model, client_model = excluded.client_model, \
                 kept_upstream = excluded.kept_upstream, metadata = excluded.metadata, \
                 created_at = excluded.created_at, deleted_at = NULL, \
                 expires_at = excluded.expires_at",
                p.push(tenant.as_str()),
                p.push(record.id.as_str()),
                p.push(&*record.provider),
                p.push(&*record.model),
                p.push(&*record.client_model),
                p.push(record.kept_upstream),
                p.push(metadata_text(record.metadata.as_ref())),
                p.push(record.created_us),
                p.push(expires),
            )
        }
        Op::Metadata {
            tenant,
            id,
            metadata,
            ..
        } => format!(
            "UPDATE chat_completions SET metadata = {} WHERE tenant = {} AND id = {}",
            p.push(metadata_text(metadata.as_ref())),
            p.push(tenant.as_str()),
            p.push(id.as_str()),
        ),
        Op::Delete { tenant, id, .. } => format!(
            "UPDATE chat_completions SET deleted_at = {} WHERE tenant = {} AND id = {} \
             AND deleted_at IS NULL",
            p.push(unix_millis()),
            p.push(tenant.as_str()),
            p.push(id.as_str()),
        ),
        Op::Flush(_) => return None,
    };
    Some(Statement {
        sql: sql.into(),
        params: p.values.into(),
    })
}

/// Applies queued writes in order, a batch per transaction, until the store is dropped.
async fn write_loop(store: Store, ttl: Duration, mut rx: mpsc::UnboundedReceiver<Op>) {
    let mut batches: u64 = 0;
    purge(&store).await;
    while let Some(first) = rx.recv().await {
        let mut ops = vec![first];
        while ops.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let stmts: Vec<Statement> = ops
            .iter()
            .filter_map(|op| statement(&store, ttl, op))
            .collect();
        let wrote = !stmts.is_empty();
        let result = if wrote {
            store.transaction(stmts).await.map(drop).map_err(store_err)
        } else {
            Ok(())
        };
        if let Err(e) = &result {
            tracing::warn!(error = %e, writes = ops.len(), "could not store chat completion records");
        }
        for op in ops {
            let reply = || match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Store(e.to_string())),
            };
            match op {
                Op::Put { .. } => {}
                Op::Metadata { done, .. } | Op::Delete { done, .. } => {
                    let _ = done.send(reply());
                }
                Op::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
        if wrote {
            batches += 1;
            if batches.is_multiple_of(PURGE_EVERY) {
                purge(&store).await;
            }
        }
    }
}

/// Deletes expired rows (retention).
pub(crate) async fn purge(store: &Store) {
    store.purge_expired("chat_completions").await;
}

#[cfg(test)]
mod tests;
