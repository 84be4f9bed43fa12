//! PostgreSQL through `tokio-postgres`: one connection for writes (transactions need it to
//! themselves) and one shared by reads. A broken connection is dropped and re-opened on the next
//! call, so the store comes back by itself when the server does.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

use super::{Args, Migration, Statement, StoreError, Value, ValueRef};

/// The PostgreSQL backend.
pub(super) struct Pg {
    config: tokio_postgres::Config,
    timeout: Duration,
    writer: Mutex<Option<Client>>,
    reader: Mutex<Option<Arc<Client>>>,
}

fn pg_err(e: tokio_postgres::Error) -> StoreError {
    // A server-side error with an SQLSTATE is a statement problem, except the classes that
    // mean the server cannot serve now (connection exceptions, shutdown, too many connections).
    match e.code() {
        Some(code) => {
            let c = code.code();
            if c.starts_with("08") || c.starts_with("57") || c.starts_with("53") {
                StoreError::Unavailable(e.to_string())
            } else {
                StoreError::Sql(e.to_string())
            }
        }
        None => StoreError::Unavailable(e.to_string()),
    }
}

impl Pg {
    pub(super) fn new(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        config.connect_timeout(timeout);
        config.application_name("switchyard");
        Ok(Self {
            config,
            timeout,
            writer: Mutex::new(None),
            reader: Mutex::new(None),
        })
    }

    async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = tokio::time::timeout(self.timeout, self.config.connect(NoTls))
            .await
            .map_err(|_| StoreError::Unavailable("timed out connecting to PostgreSQL".into()))?
            .map_err(pg_err)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    /// Runs `f` within the store timeout; on any failure that is not a statement error the
    /// connection is dropped so the next call opens a fresh one.
    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL did not answer within {:?}",
                self.timeout
            ))),
        }
    }

    async fn reader(&self) -> Result<Arc<Client>, StoreError> {
        let mut slot = self.reader.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(self.connect().await?);
        *slot = Some(Arc::clone(&c));
        Ok(c)
    }

    pub(super) async fn query(
        &self,
        sql: String,
        params: Vec<Value>,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        let r = self
            .bounded(async {
                let client = self.reader().await?;
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                let rows = client.query(sql.as_str(), &refs).await.map_err(pg_err)?;
                rows.iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| Value::from_pg(row, i).map_err(pg_err))
                            .collect()
                    })
                    .collect()
            })
            .await;
        if matches!(r, Err(StoreError::Unavailable(_))) {
            *self.reader.lock().await = None;
        }
        r
    }

    pub(super) async fn transaction(&self, stmts: Vec<Statement>) -> Result<Vec<u64>, StoreError> {
        let mut slot = self.writer.lock().await;
        let r = self
            .bounded(async {
                if slot.as_ref().is_none_or(Client::is_closed) {
                    *slot = Some(self.connect().await?);
                }
                let Some(client) = slot.as_mut() else {
                    return Err(StoreError::Closed);
                };
                let tx = client.transaction().await.map_err(pg_err)?;
                let mut counts = Vec::with_capacity(stmts.len());
                for s in &stmts {
                    let shared: Vec<Value>;
                    let values = match &s.params {
                        Args::Values(values) => values,
                        Args::Shared(source) => {
                            let mut refs = Vec::new();
                            source.values(&mut refs);
                            shared = refs.into_iter().map(ValueRef::to_value).collect();
                            &shared
                        }
                    };
                    let refs: Vec<&(dyn ToSql + Sync)> =
                        values.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                    counts.push(tx.execute(s.sql.as_ref(), &refs).await.map_err(pg_err)?);
                }
                tx.commit().await.map_err(pg_err)?;
                Ok(counts)
            })
            .await;
        if r.is_err() {
            // A failure mid-transaction (or a timeout) leaves the connection in an unknown
            // state; a fresh one is cheap.
            *slot = None;
        }
        r
    }

    pub(super) async fn migrate(
        &self,
        migrations: &'static [Migration],
    ) -> Result<usize, StoreError> {
        let mut slot = self.writer.lock().await;
        let r = self
            .bounded(async {
                if slot.as_ref().is_none_or(Client::is_closed) {
                    *slot = Some(self.connect().await?);
                }
                let Some(client) = slot.as_mut() else {
                    return Err(StoreError::Closed);
                };
                client
                    .batch_execute(super::MIGRATIONS_TABLE)
                    .await
                    .map_err(pg_err)?;
                let tx = client.transaction().await.map_err(pg_err)?;
                // Two gateways starting together: the second waits, then sees the work done.
                tx.batch_execute("LOCK TABLE switchyard_migrations IN EXCLUSIVE MODE")
                    .await
                    .map_err(pg_err)?;
                let applied: Vec<i64> = tx
                    .query("SELECT version FROM switchyard_migrations", &[])
                    .await
                    .map_err(pg_err)?
                    .iter()
                    .map(|r| r.try_get::<_, i64>(0))
                    .collect::<Result<_, _>>()
                    .map_err(pg_err)?;
                let todo = super::pending(migrations, &applied)?;
                for m in &todo {
                    tx.batch_execute(m.postgres).await.map_err(|e| {
                        StoreError::Schema(format!(
                            "migration {} ({}) failed: {e}",
                            m.version, m.name
                        ))
                    })?;
                    tx.execute(
                        "INSERT INTO switchyard_migrations (version, name, applied_at) \
                         VALUES ($1, $2, $3)",
                        &[&i64::from(m.version), &m.name, &super::unix_millis()],
                    )
                    .await
                    .map_err(pg_err)?;
                }
                tx.commit().await.map_err(pg_err)?;
                Ok(todo.len())
            })
            .await;
        if r.is_err() {
            *slot = None;
        }
        r
    }
}
