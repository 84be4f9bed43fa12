//! The request log end to end: a record per request in SQLite and PostgreSQL, kept through a
//! store outage and a gateway restart; the admin API and the CLI over it; body policies;
//! attempts; the JSON log line without bodies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use serde_json::Value;
use switchyard_core::reqlog::query::{self, Query};
use switchyard_core::store::{Store, StoreConfig};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::*;

const ADMIN_KEY: &str = "admin-key-for-the-tests-0123";

// === PostgreSQL helpers ===

/// A schema of its own in the machine's PostgreSQL `test` database, dropped at the end.
pub struct PgSchema {
    pub name: String,
}

const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

async fn pg_admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(PG_ADMIN, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (user postgres, database test)");
    tokio::spawn(conn);
    client
}

impl PgSchema {
    pub async fn new(tag: &str) -> Self {
        let name = format!(
            "it_{tag}_{}_{}",
            std::process::id(),
            temp_dir("pg")
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace('-', "_")
        )
        .to_ascii_lowercase();
        pg_admin()
            .await
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        Self { name }
    }

    /// A URL through `port` (the server's, or a proxy's) whose search path is this schema.
    pub fn url(&self, port: u16) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{port}/test?options=-c%20search_path%3D{}",
            self.name
        )
    }

    pub async fn drop_schema(self) {
        pg_admin()
            .await
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name))
            .await
            .unwrap();
    }
}

/// A TCP proxy to PostgreSQL that a test can cut (every connection closed, new ones refused)
/// and restore, so the store goes away without touching the machine's server.
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub async fn start(target_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, conns2) = (Arc::clone(&up), Arc::clone(&conns));
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(("127.0.0.1", target_port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().push(task.abort_handle());
            }
        });
        Self { port, up, conns }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

// === The 10,000-request run ===

/// How a test takes the store away and brings it back.
enum Outage {
    /// Another connection holds SQLite's write lock.
    Sqlite(std::path::PathBuf, Option<rusqlite::Connection>),
    /// The proxy between the gateway and PostgreSQL is cut.
    Pg(Proxy),
}

impl Outage {
    fn down(&mut self) {
        match self {
            Self::Sqlite(path, held) => {
                let c = rusqlite::Connection::open(path).unwrap();
                c.busy_timeout(Duration::from_secs(10)).unwrap();
                c.execute_batch("BEGIN EXCLUSIVE").unwrap();
                *held = Some(c);
            }
            Self::Pg(p) => p.cut(),
        }
    }

    fn up(&mut self) {
        match self {
            Self::Sqlite(_, held) => {
                if let Some(c) = held.take() {
                    c.execute_batch("COMMIT").unwrap();
                }
            }
            Self::Pg(p) => p.restore(),
        }
    }
}

/// What the clients saw.
#[derive(Default, Debug)]
struct Tally {
    by_status: BTreeMap<u16, i64>,
    prompt_tokens: i64,
    completion_tokens: i64,
    ids: Vec<String>,
}

fn shared_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Request `i` of the run: a mix of plain and streamed chats and four kinds of failure.
fn request_for(i: usize) -> (String, bool) {
    match i % 10 {
        0 => (
            chat_body(
                "demo",
                r#""stream":true,"stream_options":{"include_usage":true}"#,
            ),
            true,
        ),
        1 => (chat_body("no-such-model", ""), false),
        2 => ("{not json".to_owned(), false),
        3 => (chat_body("demo", r#""mock":{"status":400}"#), false),
        _ => (chat_body("demo", ""), false),
    }
}

/// Sends requests `range` with 64 concurrent clients and adds what they saw to `tally`.
async fn run_batch(url: &str, range: std::ops::Range<usize>, tally: &Arc<Mutex<Tally>>) {
    let next = Arc::new(AtomicUsize::new(range.start));
    let client = shared_client();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (next, client, tally, end) = (
            Arc::clone(&next),
            client.clone(),
            Arc::clone(tally),
            range.end,
        );
        let url = format!("{url}/v1/chat/completions");
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= end {
                    return;
                }
                let id = format!("it-10k-{i}");
                let (body, stream) = request_for(i);
                let req = Request::builder()
                    .method(Method::POST)
                    .uri(&url)
                    .header("content-type", "application/json")
                    .header("x-request-id", &id)
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
                    .await
                    .unwrap()
                    .unwrap();
                let status = resp.status().as_u16();
                let bytes = resp.into_body().collect().await.unwrap().to_bytes();
                let (mut p, mut c) = (0, 0);
                if status == 200 {
                    let usage = if stream {
                        sse_data(&bytes)
                            .iter()
                            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                            .find(|v| v["usage"].is_object())
                            .map(|v| v["usage"].clone())
                            .unwrap()
                    } else {
                        serde_json::from_slice::<Value>(&bytes).unwrap()["usage"].clone()
                    };
                    p = usage["prompt_tokens"].as_i64().unwrap();
                    c = usage["completion_tokens"].as_i64().unwrap();
                }
                let mut t = tally.lock();
                *t.by_status.entry(status).or_default() += 1;
                t.prompt_tokens += p;
                t.completion_tokens += c;
                t.ids.push(id);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn log_yaml(mock: &str, store: &str, spill: &std::path::Path) -> String {
    format!(
        "{}{store}request_log:\n  flush_interval: 20ms\n  retry_interval: 50ms\n  spill_dir: \"{}\"\nadmin:\n  key: {ADMIN_KEY}\n",
        config_for(mock),
        spill.display()
    )
}

async fn admin_get(gw: &Gateway, path: &str) -> Resp {
    get(
        &format!("{}{path}", gw.url),
        &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
    )
    .await
}

/// The proof of the issue: 10,000 requests under concurrency, the store taken away mid-run
/// and kept away across a gateway restart, then brought back: every request is stored exactly
/// once and the aggregates match what the clients counted.
async fn ten_thousand(store_yaml: String, store_cfg: StoreConfig, mut outage: Outage) {
    let mock = mock(switchyard_mock::MockConfig::default()).await;
    let spill = temp_dir("spill");
    let yaml = log_yaml(&mock, &store_yaml, &spill);
    let tally = Arc::new(Mutex::new(Tally::default()));

    let gw = Gateway::start(&yaml).await;
    run_batch(&gw.url, 0..2500, &tally).await;
    outage.down();
    run_batch(&gw.url, 2500..5000, &tally).await;
    let counters = admin_get(&gw, "/admin/request-log").await.json();
    assert!(
        counters["counters"]["spilled"].as_u64().unwrap() > 0,
        "the outage did not reach the writer: {counters}"
    );
    // Shut down with the store still away: what is queued goes to the spill file.
    gw.shutdown().await;

    let gw = Gateway::start(&yaml).await;
    run_batch(&gw.url, 5000..7500, &tally).await;
    outage.up();
    run_batch(&gw.url, 7500..10_000, &tally).await;
    let counters = admin_get(&gw, "/admin/request-log").await.json();
    assert_eq!(counters["counters"]["dropped"], 0, "{counters}");
    gw.shutdown().await;
    assert!(
        std::fs::read_dir(&spill).map_or(true, |d| d.count() == 0),
        "spill files left after the store came back"
    );

    let tally = tally.lock();
    assert_eq!(tally.ids.len(), 10_000);
    let store = Store::open(&store_cfg).await.unwrap();
    let rows = store
        .query(
            "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM requests".into(),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(rows[0][0].as_i64(), Some(10_000), "records stored");
    assert_eq!(
        rows[0][1].as_i64(),
        Some(10_000),
        "each request exactly once"
    );

    let now = switchyard_core::store::unix_millis();
    let q = Query::parse([("by", "status")], now).unwrap();
    let by_status: BTreeMap<u16, i64> = query::stats(&store, &q)
        .await
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["status"].as_u64().unwrap() as u16,
                g["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_status, tally.by_status);
    let q = Query::parse([], now).unwrap();
    let total = &query::stats(&store, &q).await.unwrap()[0];
    assert_eq!(total["count"], 10_000);
    assert_eq!(total["prompt_tokens"].as_i64(), Some(tally.prompt_tokens));
    assert_eq!(
        total["completion_tokens"].as_i64(),
        Some(tally.completion_tokens)
    );
    // No deployment here has prices: the costs are all unknown, and sum to zero.
    assert_eq!(total["cost_unknown"], 10_000);
    assert_eq!(total["cost_nanos"], 0);
    let errors: i64 = tally
        .by_status
        .iter()
        .filter(|(s, _)| **s >= 400)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(total["errors"].as_i64(), Some(errors));
    let _ = std::fs::remove_dir_all(&spill);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ten_thousand_requests_survive_a_store_outage_and_a_restart() {
    let dir = temp_dir("sqlite-10k");
    let path = dir.join("log.db");
    let store_yaml = format!(
        "store:\n  sqlite: \"{}\"\n  timeout: 100ms\n",
        path.display()
    );
    let cfg = StoreConfig::Sqlite {
        path: path.clone(),
        timeout: Duration::from_secs(5),
    };
    ten_thousand(store_yaml, cfg, Outage::Sqlite(path, None)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ten_thousand_requests_survive_a_store_outage_and_a_restart() {
    let schema = PgSchema::new("tenk").await;
    let proxy = Proxy::start(5432).await;
    let store_yaml = format!(
        "store:\n  postgres: \"{}\"\n  timeout: 500ms\n",
        schema.url(proxy.port)
    );
    let cfg = StoreConfig::Postgres {
        url: switchyard_core::config::Secret::new(schema.url(5432)),
        timeout: Duration::from_secs(5),
    };
    ten_thousand(store_yaml, cfg, Outage::Pg(proxy)).await;
    schema.drop_schema().await;
}
