//! Stored responses in the gateway's own [`Store`] (SQLite or PostgreSQL), so a conversation
//! continued with `previous_response_id` survives a restart and is shared by every gateway
//! on the same PostgreSQL.
//!
//! Writes go through one ordered queue (a task per store): a put and a later delete of the
//! same record reach the database in that order, even when the put was detached from a
//! stream. A small in-memory cache in front gives read-your-writes before the queued write
//! has landed; it keeps records briefly only, since another gateway on the same database may
//! delete them (a deleted record can be served by a gateway that cached it for at most
//! [`PersistentResponseStore::CACHE_TTL`]). Records live [`PersistentResponseStore::DEFAULT_TTL`]
//! (OpenAI's retention for stored responses); expired rows are never returned and are
//! purged as writes go by.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};

use super::{
    page_of, BoxFuture, ItemList, ItemsPage, Kept, MemoryResponseStore, ResponseStore, StoreError,
    StoredResponse, Tenant,
};
use crate::store::{unix_millis, Params, Statement, Store, Value};

/// One queued write.
enum Op {
    Put {
        tenant: Tenant,
        record: StoredResponse,
        done: Option<oneshot::Sender<Result<(), StoreError>>>,
    },
    Delete {
        tenant: Tenant,
        id: String,
        done: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Answered once every earlier write is done.
    Flush(oneshot::Sender<()>),
}

/// The [`ResponseStore`] on the gateway's persistent store (table `responses`, migration 4).
pub struct PersistentResponseStore {
    store: Store,
    ttl: Duration,
    cache: MemoryResponseStore,
    writes: mpsc::UnboundedSender<Op>,
}

impl std::fmt::Debug for PersistentResponseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentResponseStore")
            .field("store", &self.store)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Purge expired rows once per this many writes.
const PURGE_EVERY: u64 = 256;

impl PersistentResponseStore {
    /// How long a record is kept: 30 days, as OpenAI keeps stored responses.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
    /// How long the read-your-writes cache keeps a record.
    pub const CACHE_TTL: Duration = Duration::from_secs(60);
    /// Most records in the read-your-writes cache.
    pub const CACHE_CAPACITY: usize = 10_000;

    /// A store on `store` (already migrated) whose records live `ttl`. Starts the write
    /// queue's task on the current runtime; it ends when the store is dropped.
    pub fn new(store: Store, ttl: Duration) -> Self {
        let (writes, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(store.clone(), ttl, rx));
        Self {
            store,
            ttl,
            cache: MemoryResponseStore::new(Self::CACHE_CAPACITY, Self::CACHE_TTL.min(ttl)),
            writes,
        }
    }

    fn enqueue(&self, op: Op) -> Result<(), StoreError> {
        self.writes
            .send(op)
            .map_err(|_| StoreError("the response store's writer stopped".into()))
    }

    async fn load(&self, tenant: &Tenant, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        let mut p = Params::new(self.store.dialect());
        let sql = format!(
            "SELECT provider, model, client_model, kept, response, input_items, \
             previous_response_id FROM responses WHERE tenant = {} AND id = {} AND expires_at > {}",
            p.push(tenant.as_str()),
            p.push(id),
            p.push(unix_millis()),
        );
        let rows = self.store.query(sql, p.values).await.map_err(store_err)?;
        rows.into_iter()
            .next()
            .map(|row| from_row(id, row))
            .transpose()
    }
}

fn store_err(e: crate::store::StoreError) -> StoreError {
    StoreError(e.to_string())
}

fn from_row(id: &str, row: Vec<Value>) -> Result<StoredResponse, StoreError> {
    let mut cols = row.into_iter();
    let mut text = |name: &str| -> Result<Option<String>, StoreError> {
        match cols.next() {
            Some(Value::Null) => Ok(None),
            Some(v) => v
                .into_string()
                .map(Some)
                .ok_or_else(|| StoreError(format!("column `{name}` is not text"))),
            None => Err(StoreError(format!("column `{name}` missing"))),
        }
    };
    let required = |v: Option<String>, name: &str| {
        v.ok_or_else(|| StoreError(format!("column `{name}` is null")))
    };
    let provider = required(text("provider")?, "provider")?;
    let model = required(text("model")?, "model")?;
    let client_model = required(text("client_model")?, "client_model")?;
    let kind = required(text("kept")?, "kept")?;
    let response = text("response")?;
    let input_items = text("input_items")?;
    let previous_response_id = text("previous_response_id")?;
    let kept = match kind.as_str() {
        "upstream" => Kept::Upstream,
        "gateway" => {
            let parse = |s: Option<String>, name: &str| -> Result<Json, StoreError> {
                serde_json::from_str(&required(s, name)?)
                    .map_err(|e| StoreError(format!("column `{name}`: {e}")))
            };
            let items = match parse(input_items, "input_items")? {
                Json::Array(items) => items,
                _ => return Err(StoreError("column `input_items` is not an array".into())),
            };
            Kept::Gateway {
                response: parse(response, "response")?,
                input_items: items,
                previous_response_id,
            }
        }
        other => return Err(StoreError(format!("unknown record kind `{other}`"))),
    };
    Ok(StoredResponse {
        id: id.to_owned(),
        provider: Arc::from(provider),
        model: Arc::from(model),
        client_model: Arc::from(client_model),
        kept,
    })
}

/// The upsert of one record, expiring `ttl` from now.
fn put_statement(store: &Store, ttl: Duration, tenant: &Tenant, r: &StoredResponse) -> Statement {
    let now = unix_millis();
    let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let (kind, response, items, previous) = match &r.kept {
        Kept::Upstream => ("upstream", None, None, None),
        Kept::Gateway {
            response,
            input_items,
            previous_response_id,
        } => (
            "gateway",
            Some(response.to_string()),
            Some(Json::Array(input_items.clone()).to_string()),
            previous_response_id.clone(),
        ),
    };
    let mut p = Params::new(store.dialect());
    let sql = format!(
        "INSERT INTO responses (tenant, id, provider, model, client_model, kept, response, \
         input_items, previous_response_id, created_at, expires_at) \
         VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}) \
         ON CONFLICT (tenant, id) DO UPDATE SET provider = excluded.provider, \
         model = excluded.model, client_model = excluded.client_model, kept = excluded.kept, \
         response = excluded.response, input_items = excluded.input_items, \
         previous_response_id = excluded.previous_response_id, \
         created_at = excluded.created_at, expires_at = excluded.expires_at",
        p.push(tenant.as_str()),
        p.push(r.id.as_str()),
        p.push(&*r.provider),
        p.push(&*r.model),
        p.push(&*r.client_model),
        p.push(kind),
        p.push(response),
        p.push(items),
        p.push(previous),
        p.push(now),
        p.push(expires),
    );
    Statement {
        sql: sql.into(),
        params: p.values.into(),
    }
}

/// Applies queued writes in order until the store is dropped.
async fn write_loop(store: Store, ttl: Duration, mut rx: mpsc::UnboundedReceiver<Op>) {
    let mut writes: u64 = 0;
    purge(&store).await;
    while let Some(op) = rx.recv().await {
        match op {
            Op::Put {
                tenant,
                record,
                done,
            } => {
                let stmt = put_statement(&store, ttl, &tenant, &record);
                let res = store
                    .transaction(vec![stmt])
                    .await
                    .map(drop)
                    .map_err(store_err);
                match done {
                    Some(done) => {
                        let _ = done.send(res);
                    }
                    None => {
                        if let Err(e) = res {
                            tracing::warn!(error = %e, "could not store a streamed response");
                        }
                    }
                }
            }
            Op::Delete { tenant, id, done } => {
                let mut p = Params::new(store.dialect());
                let sql = format!(
                    "DELETE FROM responses WHERE tenant = {} AND id = {}",
                    p.push(tenant.as_str()),
                    p.push(id),
                );
                let res = store.execute(sql, p.values).await.map_err(store_err);
                let _ = done.send(res.map(|n| n > 0));
            }
            Op::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        }
        writes += 1;
        if writes.is_multiple_of(PURGE_EVERY) {
            purge(&store).await;
        }
    }
}

/// Deletes expired rows (retention).
pub(crate) async fn purge(store: &Store) {
    store.purge_expired("responses").await;
}

impl ResponseStore for PersistentResponseStore {
    fn put<'a>(
        &'a self,
        tenant: &'a Tenant,
        record: StoredResponse,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let (done, rx) = oneshot::channel();
            // Cached before the write is queued: visible at once.
            self.cache.put_now(tenant, record.clone());
            self.enqueue(Op::Put {
                tenant: tenant.clone(),
                record,
                done: Some(done),
            })?;
            rx.await
                .map_err(|_| StoreError("the response store's writer stopped".into()))?
        })
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let (done, rx) = oneshot::channel();
            if self.enqueue(Op::Flush(done)).is_ok() {
                let _ = rx.await;
            }
        })
    }

    fn put_detached(self: Arc<Self>, tenant: Tenant, record: StoredResponse) {
        self.cache.put_now(&tenant, record.clone());
        if let Err(e) = self.enqueue(Op::Put {
            tenant,
            record,
            done: None,
        }) {
            tracing::warn!(error = %e, "could not store a streamed response");
        }
    }

    fn get<'a>(
        &'a self,
        tenant: &'a Tenant,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredResponse>, StoreError>> {
        Box::pin(async move {
            if let Some(r) = self.cache.get_now(tenant, id) {
                return Ok(Some(r));
            }
            self.load(tenant, id).await
        })
    }

    fn delete<'a>(
        &'a self,
        tenant: &'a Tenant,
        id: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let cached = self.cache.remove(tenant, id);
            let (done, rx) = oneshot::channel();
            self.enqueue(Op::Delete {
                tenant: tenant.clone(),
                id: id.to_owned(),
                done,
            })?;
            let stored = rx
                .await
                .map_err(|_| StoreError("the response store's writer stopped".into()))??;
            Ok(cached || stored)
        })
    }

    fn list_input_items<'a>(
        &'a self,
        tenant: &'a Tenant,
        id: &'a str,
        page: &'a ItemsPage,
    ) -> BoxFuture<'a, Result<Option<ItemList>, StoreError>> {
        Box::pin(async move {
            Ok(match self.get(tenant, id).await? {
                Some(StoredResponse {
                    kept: Kept::Gateway { input_items, .. },
                    ..
                }) => Some(page_of(&input_items, page)),
                _ => None,
            })
        })
    }
}
