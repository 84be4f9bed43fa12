use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::BodyExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// A bare HTTP/1.1 upstream that counts connections and records request heads. Each response
/// is `body` with a content length; `close_after` makes it hang up after that many responses
/// on a connection (without saying so, as a server whose keep-alive timer fires does).
struct Upstream {
    addr: std::net::SocketAddr,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

async fn upstream(body: &'static str, extra_header: &'static str, close_after: usize) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (a, h) = (Arc::clone(&accepted), Arc::clone(&heads));
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve_conn(
                sock,
                Arc::clone(&h),
                body,
                extra_header,
                close_after,
            ));
        }
    });
    Upstream {
        addr,
        accepted,
        heads,
    }
}

async fn serve_conn(
    mut sock: TcpStream,
    heads: Arc<Mutex<Vec<String>>>,
    body: &'static str,
    extra_header: &'static str,
    close_after: usize,
) {
    let mut buf = Vec::new();
    let mut served = 0;
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let len = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while buf.len() < end + len {
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + len);
        heads.lock().push(head);
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n{extra_header}\r\n{body}",
            body.len()
        );
        if sock.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
        served += 1;
        if served == close_after {
            return;
        }
    }
}

fn post(addr: std::net::SocketAddr, path: &str) -> Request<Full<Bytes>> {
    Request::post(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

async fn read_all(resp: Response<UpstreamBody>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn reuses_a_connection_once_its_body_was_read() {
    let up = upstream("hello", "", 0).await;
    let client = build(Duration::from_secs(1));
    for _ in 0..5 {
        let resp = client.request(post(up.addr, "/v1/x?a=1")).await.unwrap();
        assert_eq!(read_all(resp).await, "hello");
    }
    assert_eq!(up.accepted.load(Ordering::SeqCst), 1);
    let heads = up.heads.lock();
    assert!(
        heads[0].starts_with("POST /v1/x?a=1 HTTP/1.1\r\n"),
        "{}",
        heads[0]
    );
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains(&format!("host: {}\r\n", up.addr)),
        "{}",
        heads[0]
    );
}

#[tokio::test]
async fn concurrent_requests_get_their_own_connections() {
    let up = upstream("hello", "", 0).await;
    let client = build(Duration::from_secs(1));
    let a = client.request(post(up.addr, "/")).await.unwrap();
    let b = client.request(post(up.addr, "/")).await.unwrap();
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(read_all(a).await, "hello");
    assert_eq!(read_all(b).await, "hello");
    let c = client.request(post(up.addr, "/")).await.unwrap();
    assert_eq!(read_all(c).await, "hello");
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_dropped_unread_does_not_go_back_to_the_pool() {
    let up = upstream("hello", "", 0).await;
    let client = build(Duration::from_secs(1));
    let resp = client.request(post(up.addr, "/")).await.unwrap();
    drop(resp);
    let resp = client.request(post(up.addr, "/")).await.unwrap();
    assert_eq!(read_all(resp).await, "hello");
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let up = upstream("bye", "connection: close\r\n", 1).await;
    let client = build(Duration::from_secs(1));
    for _ in 0..3 {
        let resp = client.request(post(up.addr, "/")).await.unwrap();
        assert_eq!(read_all(resp).await, "bye");
    }
    assert_eq!(up.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_replaced() {
    // The upstream silently hangs up after each response; the next request must not fail.
    let up = upstream("hi", "", 1).await;
    let client = build(Duration::from_secs(1));
    for _ in 0..3 {
        let resp = client.request(post(up.addr, "/")).await.unwrap();
        assert_eq!(read_all(resp).await, "hi");
        // Give the connection task a moment to notice the hang-up, as happens between real
        // requests; the request must succeed whether or not it has.
        tokio::task::yield_now().await;
    }
    assert_eq!(up.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn connect_failures_are_connect_errors_without_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = build(Duration::from_secs(1));
    let err = client
        .request(post(addr, "/secret-path?key=sk-123"))
        .await
        .err()
        .unwrap();
    assert!(err.is_connect(), "{err}");
    let text = err.to_string();
    assert!(
        !text.contains("sk-123") && !text.contains("secret-path"),
        "{text}"
    );
}

#[test]
fn origin_form_sets_host_and_strips_the_authority() {
    let req = Request::post("https://api.example.com/v1/chat?x=1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (key, req) = origin_form(req).unwrap();
    assert_eq!(key.scheme, Scheme::HTTPS);
    assert_eq!(req.uri().to_string(), "/v1/chat?x=1");
    assert_eq!(req.headers()[header::HOST], "api.example.com");

    let req = Request::post("http://127.0.0.1:8080/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (_, req) = origin_form(req).unwrap();
    assert_eq!(req.headers()[header::HOST], "127.0.0.1:8080");

    let req = Request::post("/relative")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert!(matches!(origin_form(req), Err(ClientError::BadUrl)));
}
