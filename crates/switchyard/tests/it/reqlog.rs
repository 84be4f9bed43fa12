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
        config_for(mock).replace(
            "        model: mock-gpt\n",
            "        model: mock-gpt\n        price: {input: 2.5, output: 10}\n"
        ),
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

    let tally = std::mem::take(&mut *tally.lock());
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
    // Answered requests cost their usage at the configured price ($2.50 / $10 per million
    // tokens, i.e. 2,500 / 10,000 nano-dollars a token); the failed ones reported no usage.
    let answered = tally.by_status.get(&200).copied().unwrap_or(0);
    assert_eq!(total["cost_unknown"].as_i64(), Some(10_000 - answered));
    assert_eq!(
        total["cost_nanos"].as_i64(),
        Some(tally.prompt_tokens * 2_500 + tally.completion_tokens * 10_000)
    );
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

// === The admin API, body policies, attempts ===

/// A gateway with its own store dir, the admin API, and the given extra YAML.
async fn logged_gateway(mock: &str, models: &str) -> (Gateway, std::path::PathBuf) {
    let dir = temp_dir("admin");
    let yaml = format!(
        r#"
providers:
  mock:
    type: openai
    base_url: "{mock}/v1"
    api_key: ${{UPSTREAM_KEY}}
models:
{models}
store:
  sqlite: "{db}"
request_log:
  flush_interval: 10ms
  spill_dir: "{spill}"
admin:
  key: {ADMIN_KEY}
"#,
        db = dir.join("log.db").display(),
        spill = dir.join("spill").display(),
    );
    (Gateway::start(&yaml).await, dir)
}

/// Waits until the admin API lists `n` requests matching `query`.
async fn wait_listed(gw: &Gateway, query: &str, n: usize) -> Vec<Value> {
    for _ in 0..500 {
        let r = admin_get(gw, &format!("/admin/requests?{query}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let data = r.json()["data"].as_array().unwrap().clone();
        if data.len() >= n {
            return data;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} requests never listed for {query}");
}

#[tokio::test]
async fn the_admin_api_needs_its_key_and_is_absent_without_one() {
    let mock = keyed_mock().await;
    // No admin key configured: the admin surface does not exist.
    let gw = Gateway::for_upstream(&mock).await;
    let r = get(
        &format!("{}/admin/requests", gw.url),
        &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error()["code"], "unknown_url");

    let (gw, dir) = logged_gateway(
        &mock,
        "  demo:\n    deployments:\n      - provider: mock\n        model: mock-gpt\n",
    )
    .await;
    let url = format!("{}/admin/stats", gw.url);
    assert_eq!(get(&url, &[]).await.status, 401);
    let wrong = get(&url, &[("authorization", "Bearer not-the-admin-key")]).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.error()["code"], "invalid_api_key");
    let ok = get(&url, &[("x-api-key", ADMIN_KEY)]).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    // Bad parameters are a 400 naming the parameter.
    let bad = admin_get(&gw, "/admin/requests?status=abc").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error()["param"], "status");
    let bad = admin_get(&gw, "/admin/stats?by=colour").await;
    assert_eq!(bad.status, 400);
    assert!(bad.error()["message"].as_str().unwrap().contains("colour"));
    let missing = admin_get(&gw, "/admin/requests/nope").await;
    assert_eq!(missing.status, 404);
    drop(gw);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn records_keep_attempts_bodies_per_alias_and_stream_text() {
    // A scripted upstream: the first deployment fails with 500, the second answers.
    let up = scripted(|req: Request<axum::body::Body>| async move {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        if v["model"] == "broken" {
            return http::Response::builder()
                .status(500)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(r#"{"error":{"message":"boom","type":"server_error"}}"#))
                .unwrap();
        }
        if v["stream"] == true {
            let chunk = |t: &str| {
                format!(
                    "data: {}\n\n",
                    serde_json::json!({"id":"c","object":"chat.completion.chunk","model":"m",
                        "choices":[{"index":0,"delta":{"content":t},"finish_reason":null}]})
                )
            };
            let sse = format!("{}{}data: [DONE]\n\n", chunk("Hello "), chunk("mail me at x@y.io"));
            return http::Response::builder()
                .header("content-type", "text/event-stream")
                .body(axum::body::Body::from(sse))
                .unwrap();
        }
        http::Response::builder()
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                r#"{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Your card 4111 1111 1111 1111 is noted"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":9,"total_tokens":16,"prompt_tokens_details":{"cached_tokens":3}}}"#,
            ))
            .unwrap()
    })
    .await;
    let models = "  redacted:
    log_bodies: redacted
    deployments:
      - provider: mock
        model: broken
      - provider: mock
        model: good
  full:
    log_bodies: full
    deployments:
      - provider: mock
        model: good
  cut:
    log_bodies: {truncate: 20}
    deployments:
      - provider: mock
        model: good
  plain:
    deployments:
      - provider: mock
        model: good
";
    let (gw, dir) = logged_gateway(&up, models).await;
    let chat = |model: &str, extra: &str, id: &str| {
        let body = format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"I am ann@example.com"}}]{extra}}}"#
        );
        let url = format!("{}/v1/chat/completions", gw.url);
        let id = id.to_owned();
        async move { send(Method::POST, &url, &[("x-request-id", &id)], body).await }
    };
    // Weighted order is random: retry until the broken deployment went first once.
    let mut failover_id = None;
    for i in 0..40 {
        let id = format!("fo-{i}");
        let r = chat("redacted", "", &id).await;
        assert_eq!(r.status, 200, "{}", r.text());
        if r.header("x-switchyard-attempts") == Some("2") {
            failover_id = Some(id);
            break;
        }
    }
    let failover_id = failover_id.expect("the broken deployment never went first");
    assert_eq!(chat("full", "", "full-1").await.status, 200);
    assert_eq!(chat("cut", "", "cut-1").await.status, 200);
    assert_eq!(chat("plain", "", "plain-1").await.status, 200);
    let s = chat("full", r#","stream":true"#, "stream-1").await;
    assert_eq!(s.status, 200);

    wait_listed(&gw, "request_id=stream-1", 1).await;
    let one = |id: String| {
        let gw = &gw;
        async move {
            let r = admin_get(gw, &format!("/admin/requests/{id}")).await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()
        }
    };
    let fo = one(failover_id).await;
    let attempts = fo["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{fo}");
    assert_eq!(attempts[0]["deployment"], "mock/broken");
    assert_eq!(attempts[0]["status"], 500);
    assert_eq!(attempts[0]["error_kind"], "upstream_error");
    assert!(attempts[0]["latency_ms"].as_f64().is_some());
    assert_eq!(attempts[1]["deployment"], "mock/good");
    assert_eq!(attempts[1]["status"], 200);
    assert_eq!(fo["deployment"], "mock/good");
    assert_eq!(fo["attempt_count"], 2);
    assert_eq!(
        (
            fo["prompt_tokens"].as_i64(),
            fo["completion_tokens"].as_i64(),
            fo["cached_tokens"].as_i64()
        ),
        (Some(7), Some(9), Some(3))
    );
    assert_eq!(fo["body_policy"], "redacted");
    let req_body = fo["request_body"].as_str().unwrap();
    assert!(
        req_body.contains("I am [EMAIL]") && !req_body.contains("ann@"),
        "{req_body}"
    );
    let resp_body = fo["response_body"].as_str().unwrap();
    assert!(
        resp_body.contains("Your card [NUMBER] is noted"),
        "{resp_body}"
    );

    let full = one("full-1".into()).await;
    assert!(full["request_body"]
        .as_str()
        .unwrap()
        .contains("ann@example.com"));
    assert!(full["response_body"]
        .as_str()
        .unwrap()
        .contains("4111 1111"));
    let cut = one("cut-1".into()).await;
    assert_eq!(cut["request_body"].as_str().unwrap().len(), 20);
    assert_eq!(cut["bodies_truncated"], true);
    let plain = one("plain-1".into()).await;
    assert!(plain["request_body"].is_null() && plain["response_body"].is_null());
    assert_eq!(plain["body_policy"], "none");
    let stream = one("stream-1".into()).await;
    assert_eq!(stream["stream"], true);
    assert_eq!(stream["outcome"], "completed");
    assert_eq!(stream["response_body"], "Hello mail me at x@y.io");
    assert!(stream["ttft_ms"].as_f64().is_some());

    // Filters and aggregates over the admin API.
    let listed = wait_listed(&gw, "alias=full", 2).await;
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|r| r["request_body"].is_null()),
        "lists carry no bodies"
    );
    let stats = admin_get(&gw, "/admin/stats?by=alias&bucket=day")
        .await
        .json();
    let count = |alias: &str| {
        stats["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["alias"] == alias)
            .map_or(0, |g| g["count"].as_i64().unwrap())
    };
    assert_eq!((count("full"), count("cut"), count("plain")), (2, 1, 1));
    drop(gw);
    let _ = std::fs::remove_dir_all(dir);
}

/// A request id the gateway generated is its record's id too (no second id, no entry in the
/// request-id index); a client's request id, sent twice, gives two records with ids of their
/// own. Both kinds are found by the request-id filter and by `/admin/requests/{id}`.
#[tokio::test]
async fn records_are_found_by_generated_and_client_request_ids() {
    let mock = mock(switchyard_mock::MockConfig::default()).await;
    let (gw, dir) = logged_gateway(
        &mock,
        "  demo:\n    deployments:\n      - provider: mock\n        model: mock-gpt\n",
    )
    .await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let r = send(Method::POST, &url, &[], chat_body("demo", "")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let generated = r.headers["x-request-id"].to_str().unwrap().to_owned();
    for _ in 0..2 {
        let r = send(
            Method::POST,
            &url,
            &[("x-request-id", "twice")],
            chat_body("demo", ""),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let rows = wait_listed(&gw, &format!("request_id={generated}"), 1).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], generated.as_str());
    let one = admin_get(&gw, &format!("/admin/requests/{generated}")).await;
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(one.json()["request_id"], generated.as_str());
    let rows = wait_listed(&gw, "request_id=twice", 2).await;
    assert_eq!(rows.len(), 2);
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids[0] != ids[1] && !ids.contains(&"twice"), "{ids:?}");
    // By request id: the newer of the two.
    let one = admin_get(&gw, "/admin/requests/twice").await;
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(one.json()["id"], ids[0]);
    // Looked up by a record's id, which is no request's id.
    assert!(wait_listed(&gw, &format!("request_id={}", ids[1]), 0)
        .await
        .is_empty());
    drop(gw);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_is_recorded_once_as_cancelled() {
    let mock = mock(switchyard_mock::MockConfig {
        chunk_delay: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    let (gw, dir) = logged_gateway(
        &mock,
        "  demo:\n    deployments:\n      - provider: mock\n        model: mock-gpt\n",
    )
    .await;
    let mut resp = open(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &[("x-request-id", "leaver")],
        chat_body("demo", r#""stream":true,"mock":{"words":50}"#),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let _ = resp.body_mut().frame().await;
    drop(resp);
    let rows = wait_listed(&gw, "request_id=leaver", 1).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["outcome"], "client_cancelled");
    // The status line had gone out.
    assert_eq!(rows[0]["status"], 200);
    assert_eq!(rows[0]["deployment"], "mock/mock-gpt");
    // Still exactly one, a while later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(wait_listed(&gw, "request_id=leaver", 1).await.len(), 1);
    drop(gw);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_admin_api_can_have_its_own_listener() {
    let mock = keyed_mock().await;
    let dir = temp_dir("admin-listen");
    let yaml = format!(
        "{}store:\n  sqlite: \"{}\"\nadmin:\n  key: {ADMIN_KEY}\n  listen: 127.0.0.1:0\n",
        config_for(&mock),
        dir.join("log.db").display()
    );
    let env: std::collections::HashMap<String, String> =
        [("UPSTREAM_KEY".to_owned(), UPSTREAM_KEY.to_owned())].into();
    let cfg = switchyard_core::config::from_yaml(&yaml, &env).unwrap();
    let prepared = switchyard_core::Prepared::new(cfg).await.unwrap();
    let admin = prepared.admin_addr().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let main = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(prepared.serve(listener, async move {
        let _ = rx.await;
    }));
    let auth = format!("Bearer {ADMIN_KEY}");
    let on_admin = get(
        &format!("http://{admin}/admin/stats"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(on_admin.status, 200, "{}", on_admin.text());
    let on_main = get(
        &format!("http://{main}/admin/stats"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(
        on_main.status, 404,
        "the admin API is not on the public listener"
    );
    let _ = tx.send(());
    task.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

// === The binary: CLI over the store, and the JSON log line ===

#[tokio::test]
async fn the_cli_lists_and_aggregates_from_the_store_and_logs_carry_no_body() {
    use crate::cli::{bin, free_port, write_temp, Proc};
    let mock = keyed_mock().await;
    let dir = temp_dir("cli");
    let port = free_port();
    let cfg = format!(
        "{}server:\n  listen: \"127.0.0.1:{port}\"\nstore:\n  sqlite: \"{}\"\nrequest_log:\n  flush_interval: 10ms\n",
        config_for(&mock),
        dir.join("log.db").display()
    );
    let path = write_temp("cli-log.yaml", &cfg);
    let mut cmd = bin();
    cmd.args(["serve", "--config"])
        .arg(&path)
        .env("UPSTREAM_KEY", UPSTREAM_KEY)
        .env("SWITCHYARD_LOG_FORMAT", "json");
    let mut gw = Proc::spawn(cmd, port).await;
    for i in 0..3 {
        let r = send(
            Method::POST,
            &format!("{}/v1/chat/completions", gw.url),
            &[("x-request-id", &format!("cli-{i}"))],
            chat_body("demo", ""),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    // A wrong type in a field whose value must not reach the log.
    let r = send(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &[("x-request-id", "cli-bad")],
        r#"{"model":"demo","messages":[],"temperature":"secret-body-value-123"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    gw.signal("TERM");
    assert!(gw.wait_exit(Duration::from_secs(20)).await.success());
    let lines = gw.lines.lock().clone();
    let bad = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["request_id"] == "cli-bad")
        .expect("a log line with the request id");
    assert_eq!(bad["status"], 400);
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("secret-body-value-123") && !l.contains("Say hello")),
        "a body reached the log: {lines:?}"
    );

    let run = |args: &[&str]| {
        let out = bin()
            .args(args)
            .arg("--config")
            .arg(&path)
            .env("UPSTREAM_KEY", UPSTREAM_KEY)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let csv = run(&["requests", "--format", "csv", "--status", "200"]);
    let mut rows = csv.lines();
    assert!(rows.next().unwrap().starts_with("started_at,request_id,"));
    let ids: Vec<&str> = rows.map(|l| l.split(',').nth(1).unwrap()).collect();
    assert_eq!(ids, ["cli-2", "cli-1", "cli-0"]);
    let table = run(&["requests", "--error-kind", "invalid_request"]);
    assert!(
        table.contains("cli-bad") && !table.contains("cli-0"),
        "{table}"
    );
    let stats: Value = serde_json::from_str(&run(&[
        "stats", "--by", "status", "--format", "json", "--since", "1h",
    ]))
    .unwrap();
    let data = stats["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{stats}");
    assert_eq!(
        (data[0]["status"].clone(), data[0]["count"].clone()),
        (200.into(), 3.into())
    );
    assert_eq!(
        (data[1]["status"].clone(), data[1]["count"].clone()),
        (400.into(), 1.into())
    );
    let shown: Value =
        serde_json::from_str(&run(&["requests", "show", "cli-1", "--format", "json"])).unwrap();
    assert_eq!(shown["request_id"], "cli-1");
    assert_eq!(shown["deployment"], "mock/mock-gpt");
    let _ = std::fs::remove_dir_all(dir);
}
