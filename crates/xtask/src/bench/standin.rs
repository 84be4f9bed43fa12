//! A stand-in provider on 127.0.0.1 for exercising the load generators without the real
//! mock: just enough of `POST /v1/chat/completions` (plain and SSE) and `GET /v1/models`.
//!
//! Streams are sent as deliberately awkward chunks (a `data:` field split in two, `[DONE]`
//! in its own chunk) so the stream check's handling of chunk boundaries is exercised for
//! real. The model name picks a fault: `fail` answers 500, `nodone` ends a stream without
//! `data: [DONE]`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::load::{self, Job, Phase};

/// A body sent as the given chunks, one frame each.
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

fn chunks<const N: usize>(parts: [&'static str; N]) -> Chunks {
    Chunks(
        parts
            .into_iter()
            .map(|p| Bytes::from_static(p.as_bytes()))
            .collect(),
    )
}

async fn handle(req: Request<Incoming>) -> Result<Response<Chunks>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let respond = |status: StatusCode, ctype: &'static str, body: Chunks| {
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(ctype),
        );
        Ok(resp)
    };
    match (parts.method, parts.uri.path()) {
        (Method::GET, "/v1/models") => respond(
            StatusCode::OK,
            "application/json",
            chunks([r#"{"object":"list","data":[{"id":"mock-gpt","object":"model"}]}"#]),
        ),
        (Method::POST, "/v1/chat/completions") if text.contains(r#""model":"fail""#) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            chunks([r#"{"error":{"message":"stand-in failure","type":"server_error"}}"#]),
        ),
        (Method::POST, "/v1/chat/completions") if text.contains(r#""stream":true"#) => {
            let done = !text.contains(r#""model":"nodone""#);
            let mut body = chunks([
                ": keep-alive comment\n\n",
                "da",
                "ta: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n",
                "data: {\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\n",
                "data: {\"choices\":[],\"usage\":{\"total_tokens\":12}}\n\n",
            ]);
            if done {
                body.0.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
            }
            respond(StatusCode::OK, "text/event-stream", body)
        }
        (Method::POST, "/v1/chat/completions") => respond(
            StatusCode::OK,
            "application/json",
            chunks([
                r#"{"id":"x","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"Hello there"}}]}"#,
            ]),
        ),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", chunks(["not found"])),
    }
}

/// Starts the stand-in on an ephemeral port; it lives as long as the test's runtime.
pub(crate) async fn spawn() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let _ = sock.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(sock), service_fn(handle))
                    .await;
            });
        }
    });
    addr
}

fn job(addr: SocketAddr, model: &str, stream: bool) -> Arc<Job> {
    Arc::new(Job {
        client: load::http_client(),
        uri: format!("http://{addr}/v1/chat/completions")
            .parse()
            .unwrap(),
        body: super::chat_body(model, stream),
        stream,
    })
}

const PHASE: Phase = Phase {
    warmup: Duration::from_millis(100),
    measure: Duration::from_millis(400),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_records_only_the_measured_phase() {
    let addr = spawn().await;
    let s = load::open_loop(job(addr, "mock-gpt", false), 200, PHASE).await;
    assert_eq!(s.errors.total(), 0, "{:?}", s.errors);
    // 200 req/s for 0.4 s: exactly 80 requests are scheduled in the measured phase.
    assert_eq!(s.total_us.len(), 80);
    assert!(s.ttft_us.is_empty());
    assert!(s.total_us.iter().all(|&us| us > 0 && us < 1_000_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_streams_record_ttft_and_check_done() {
    let addr = spawn().await;
    let s = load::open_loop(job(addr, "mock-gpt", true), 200, PHASE).await;
    assert_eq!(s.errors.total(), 0, "{:?}", s.errors);
    assert_eq!(s.total_us.len(), 80);
    assert_eq!(s.ttft_us.len(), 80);

    let s = load::open_loop(job(addr, "nodone", true), 200, PHASE).await;
    assert!(s.total_us.is_empty());
    assert_eq!(s.errors.bad_stream, 80);
    assert!(s.errors.first.as_deref().unwrap().contains("[DONE]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_counted_apart_from_latencies() {
    let addr = spawn().await;
    let s = load::open_loop(job(addr, "fail", false), 200, PHASE).await;
    assert!(s.total_us.is_empty());
    assert_eq!(s.errors.status, 80);
    assert!(s.errors.first.as_deref().unwrap().contains("500"));

    // Nothing listens on a port just released: every request is a transport error.
    let closed = SocketAddr::from(([127, 0, 0, 1], super::procs::free_port().unwrap()));
    let s = load::open_loop(job(closed, "mock-gpt", false), 100, PHASE).await;
    assert!(s.total_us.is_empty());
    assert_eq!(s.errors.transport, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_measures_throughput() {
    let addr = spawn().await;
    let s = load::closed_loop(job(addr, "mock-gpt", false), 4, PHASE).await;
    assert_eq!(s.errors.total(), 0, "{:?}", s.errors);
    let r = super::RunResult::from_samples(s, PHASE.measure, true);
    assert!(r.ok > 10, "only {} requests in 0.4 s", r.ok);
    let rps = r.throughput_rps.unwrap();
    assert!((rps - r.ok as f64 / 0.4).abs() < 1e-6);
    assert!(r.latency.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_the_failure() {
    let addr = spawn().await;
    assert_eq!(load::probe(&job(addr, "mock-gpt", false)).await, Ok(()));
    assert_eq!(load::probe(&job(addr, "mock-gpt", true)).await, Ok(()));
    let err = load::probe(&job(addr, "fail", false)).await.unwrap_err();
    assert!(err.contains("HTTP 500"), "{err}");
}
