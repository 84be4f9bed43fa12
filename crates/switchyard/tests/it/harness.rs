//! Test harness: start the mock, a scripted upstream and the gateway in-process; a tiny client.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use switchyard_core::config::from_yaml;
use switchyard_core::Prepared;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const UPSTREAM_KEY: &str = "sk-upstream-secret-123";

/// Starts the mock provider in-process; returns its base URL (`http://127.0.0.1:port`).
pub async fn mock(cfg: switchyard_mock::MockConfig) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(switchyard_mock::serve(listener, cfg));
    format!("http://{addr}")
}

/// A mock that requires the upstream key the default config sends.
pub async fn keyed_mock() -> String {
    mock(switchyard_mock::MockConfig {
        api_key: Some(UPSTREAM_KEY.into()),
        ..Default::default()
    })
    .await
}

/// Starts a scripted upstream: every request is answered by `f`.
pub async fn scripted<F, Fut>(f: F) -> String
where
    F: Fn(Request<Body>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let f = f.clone();
        async move { Ok::<_, Infallible>(f(req).await) }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// The usual config: one keyed provider `mock` at `base`, alias `demo`, an extra header.
pub fn config_for(base: &str) -> String {
    format!(
        r#"
providers:
  mock:
    type: openai
    base_url: "{base}/v1"
    api_key: ${{UPSTREAM_KEY}}
    headers:
      X-Extra: extra-value
models:
  demo:
    deployments:
      - provider: mock
        model: mock-gpt
"#
    )
}

/// A running in-process gateway.
pub struct Gateway {
    pub url: String,
    /// Dropping the sender would start a graceful shutdown, so it lives as long as the handle.
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The temporary directory of the gateway's default request log store, removed on drop.
    temp_store: Option<std::path::PathBuf>,
}

/// A fresh temporary directory.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!(
        "switchyard-it-{tag}-{}-{n}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Without a `store:` of its own, a test config gets a SQLite store in a temporary directory
/// (so tests never write into the source tree nor share a database).
fn with_temp_store(yaml: &str) -> (String, Option<std::path::PathBuf>) {
    if yaml.lines().any(|l| l.starts_with("store:")) {
        return (yaml.to_owned(), None);
    }
    let dir = temp_dir("store");
    let yaml = format!(
        "{yaml}\nstore:\n  sqlite: \"{}\"\n",
        dir.join("switchyard.db").display()
    );
    (yaml, Some(dir))
}

impl Gateway {
    /// Starts a gateway from YAML (the `listen` address is ignored: an ephemeral port is used).
    /// `${UPSTREAM_KEY}` resolves to [`UPSTREAM_KEY`].
    pub async fn start(yaml: &str) -> Self {
        let env: HashMap<String, String> =
            [("UPSTREAM_KEY".to_owned(), UPSTREAM_KEY.to_owned())].into();
        Self::start_with_env(yaml, env).await
    }

    /// Starts a gateway from YAML with `env` as the whole environment the config loader sees
    /// (for settings with an environment fallback, such as AWS credentials).
    pub async fn start_with_env(yaml: &str, env: HashMap<String, String>) -> Self {
        Self::start_inspecting(yaml, env, |_| {}).await
    }

    /// Starts a gateway from YAML after `inspect` has seen it prepared (to keep a handle on
    /// its parts, such as the budgets' test clock).
    pub async fn start_inspecting(
        yaml: &str,
        env: HashMap<String, String>,
        inspect: impl FnOnce(&Prepared),
    ) -> Self {
        let (yaml, temp_store) = with_temp_store(yaml);
        let cfg = from_yaml(&yaml, &env).unwrap_or_else(|e| panic!("test config invalid: {e}"));
        let prepared = Prepared::new(cfg).await.unwrap();
        inspect(&prepared);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let done = tokio::spawn(prepared.serve(listener, async move {
            let _ = rx.await;
        }));
        Self {
            url: format!("http://{addr}"),
            stop: Some(tx),
            done: Some(done),
            temp_store,
        }
    }

    /// Shuts the gateway down gracefully (drain, then the request log flush) and waits.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.unwrap().unwrap();
        }
    }

    /// Starts the usual gateway in front of `base`.
    pub async fn for_upstream(base: &str) -> Self {
        Self::start(&config_for(base)).await
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(done) = &self.done {
            done.abort();
        }
        if let Some(dir) = &self.temp_store {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A fully read response.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts an OpenAI-shaped error body and returns its `error` object.
    pub fn error(&self) -> Value {
        let v = self.json();
        let e = v
            .get("error")
            .unwrap_or_else(|| panic!("no error object: {v}"))
            .clone();
        assert!(e["message"].is_string(), "{v}");
        assert!(
            e.get("type").is_some() && e.get("param").is_some() && e.get("code").is_some(),
            "{v}"
        );
        e
    }
}

/// Opens a request and returns the response head and the unread body.
pub async fn open(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response<Incoming> {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(Full::new(body.into())).unwrap();
    tokio::time::timeout(Duration::from_secs(20), client().request(req))
        .await
        .expect("request timed out")
        .unwrap()
}

/// Sends a request and reads the whole response.
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Resp {
    let resp = open(method, url, headers, body).await;
    let (parts, body) = resp.into_parts();
    let body = tokio::time::timeout(Duration::from_secs(20), body.collect())
        .await
        .expect("body timed out")
        .unwrap()
        .to_bytes();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn post(url: &str, body: &str) -> Resp {
    send(Method::POST, url, &[], body.to_owned()).await
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Resp {
    send(Method::GET, url, headers, Bytes::new()).await
}

/// Reads a body frame by frame until it ends, returning the frames (an error ends it too).
pub async fn frames(body: &mut Incoming) -> (Vec<Bytes>, Option<String>) {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), body.frame())
            .await
            .expect("frame timed out")
        {
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    out.push(d);
                }
            }
            Some(Err(e)) => return (out, Some(e.to_string())),
            None => return (out, None),
        }
    }
}

/// Splits an SSE byte stream into its `data:` payloads.
pub fn sse_data(all: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(all);
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .flat_map(|e| {
            e.lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn concat(frames: &[Bytes]) -> Vec<u8> {
    frames.iter().flat_map(|f| f.iter().copied()).collect()
}

pub fn chat_body(model: &str, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(",{extra}")
    };
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"Say hello"}}]{extra}}}"#)
}

/// A response body fed from a channel, so a test controls exactly when each byte goes out.
pub struct ChanBody(pub tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl http_body::Body for ChanBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(http_body::Frame::data)))
    }
}

/// An SSE response whose body the test writes through the returned sender.
pub fn sse_response() -> (
    tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    Response<Body>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let resp = Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .body(Body::new(ChanBody(rx)))
        .unwrap();
    (tx, resp)
}
