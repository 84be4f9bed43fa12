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
    listen(move |sock, heads| serve_conn(sock, heads, body, extra_header, close_after)).await
}

/// Listens on an ephemeral port and hands each connection to `serve`, counting them and
/// sharing one log of request heads.
async fn listen<F, Fut>(serve: F) -> Upstream
where
    F: Fn(TcpStream, Arc<Mutex<Vec<String>>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (a, h) = (Arc::clone(&accepted), Arc::clone(&heads));
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(sock, Arc::clone(&h)));
        }
    });
    Upstream {
        addr,
        accepted,
        heads,
    }
}

async fn serve_conn<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut sock: S,
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

/// Sends `times` requests to `url` one after the other, reads each answer to the end and
/// checks it is `want`; then checks the upstream saw `connections` connections in all.
async fn read_each(
    client: &HttpClient,
    up: &Upstream,
    url: &str,
    times: usize,
    want: &str,
    connections: usize,
) {
    for _ in 0..times {
        let req = Request::post(url)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(read_all(resp).await, want);
    }
    assert_eq!(up.accepted.load(Ordering::SeqCst), connections);
}

#[tokio::test]
async fn reuses_a_connection_once_its_body_was_read() {
    let up = upstream("hello", "", 0).await;
    let client = build(Duration::from_secs(1));
    let url = format!("http://{}/v1/x?a=1", up.addr);
    read_each(&client, &up, &url, 5, "hello", 1).await;
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
    read_each(&client, &up, &format!("http://{}/", up.addr), 3, "bye", 3).await;
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_replaced() {
    // The upstream silently hangs up after each response; the next request must not fail.
    let up = upstream("hi", "", 1).await;
    let client = build(Duration::from_secs(1));
    for _ in 0..3 {
        let resp = client.request(post(up.addr, "/")).await.unwrap();
        assert_eq!(read_all(resp).await, "hi");
        // Give the hang-up a moment to arrive, as happens between real requests; the request
        // must succeed whether or not it has.
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

/// An upstream that answers every request on a connection with the same raw response, written
/// in `pieces` with a pause between them (so the client sees them in separate reads), and
/// hangs up after it when `close` is set. Records each raw request, body included.
async fn scripted(pieces: &'static [&'static [u8]], close: bool) -> Upstream {
    listen(move |mut sock, heads| async move {
        loop {
            let Some(request) = read_request(&mut sock).await else {
                return;
            };
            heads.lock().push(request);
            for piece in pieces {
                if sock.write_all(piece).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            if close {
                return;
            }
        }
    })
    .await
}

/// Reads one request (head, then a content-length or chunked body) as text.
async fn read_request(sock: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let done = if head.contains("transfer-encoding: chunked") {
                buf.ends_with(b"0\r\n\r\n") && buf.len() > end + 4
            } else {
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                buf.len() >= end + 4 + len
            };
            if done {
                return Some(String::from_utf8_lossy(&buf).into_owned());
            }
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn chunked_bodies_are_decoded_across_reads_and_keep_the_connection() {
    let up = scripted(
        &[
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
            b"lo\r\n6;ext=1\r\n world\r\n0\r\n",
            b"x-trailer: t\r\n\r\n",
        ],
        false,
    )
    .await;
    let client = build(Duration::from_secs(1));
    let url = format!("http://{}/", up.addr);
    read_each(&client, &up, &url, 2, "hello world", 1).await;
}

#[tokio::test]
async fn chunked_frames_reach_the_reader_as_they_arrive() {
    let up = scripted(
        &[
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nfirst\n\r\n",
            b"7\r\nsecond\n\r\n0\r\n\r\n",
        ],
        false,
    )
    .await;
    let client = build(Duration::from_secs(1));
    let mut body = client
        .request(post(up.addr, "/"))
        .await
        .unwrap()
        .into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first\n");
    assert!(!body.is_end_stream());
    let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&second[..], b"second\n");
    assert!(body.frame().await.is_none());
    assert!(body.is_end_stream());
}

#[tokio::test]
async fn a_body_cut_short_is_an_error_and_the_connection_is_not_reused() {
    let up = scripted(
        &[b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabcd"],
        true,
    )
    .await;
    let client = build(Duration::from_secs(1));
    let resp = client.request(post(up.addr, "/")).await.unwrap();
    let err = resp.into_body().collect().await.err().unwrap();
    assert!(err.to_string().contains("closed before"), "{err}");

    let up = scripted(
        &[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"],
        false,
    )
    .await;
    let resp = client.request(post(up.addr, "/")).await.unwrap();
    let err = resp.into_body().collect().await.err().unwrap();
    assert!(err.to_string().contains("invalid chunk size"), "{err}");
}

#[tokio::test]
async fn a_body_delimited_by_the_close_is_read_to_the_end() {
    let up = scripted(&[b"HTTP/1.1 200 OK\r\n\r\nuntil ", b"the end"], true).await;
    let client = build(Duration::from_secs(1));
    let url = format!("http://{}/", up.addr);
    read_each(&client, &up, &url, 2, "until the end", 2).await;
}

#[tokio::test]
async fn bodiless_answers_free_the_connection_at_once() {
    let up = scripted(&[b"HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n"], false).await;
    let client = build(Duration::from_secs(1));
    for _ in 0..3 {
        let resp = client.request(post(up.addr, "/")).await.unwrap();
        assert_eq!(resp.status(), 204);
        assert_eq!(resp.headers()["x-a"], "1");
        assert!(resp.body().is_end_stream());
    }
    assert_eq!(up.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_malformed_head_is_a_request_error() {
    let up = scripted(&[b"HTTP/1.1 abc\r\n\r\n"], true).await;
    let client = build(Duration::from_secs(1));
    let err = client.request(post(up.addr, "/")).await.err().unwrap();
    assert!(!err.is_connect());
    assert!(err.to_string().contains("invalid response head"), "{err}");
}

/// A request body handed out in pieces, of unknown length.
struct Pieces(std::collections::VecDeque<Bytes>);

impl Body for Pieces {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test]
async fn streamed_uploads_of_unknown_length_are_sent_chunked() {
    let up = scripted(&[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"], false).await;
    let client = build(Duration::from_secs(1));
    let pieces = Pieces([Bytes::from_static(b"abc"), Bytes::from_static(b"de")].into());
    let mut req = Request::new(OutBody::Stream(pieces.boxed_unsync()));
    *req.method_mut() = http::Method::PUT;
    *req.uri_mut() = format!("http://{}/upload", up.addr).parse().unwrap();
    let resp = client.send(req, None).await.unwrap();
    assert_eq!(read_all(resp).await, "ok");
    let raw = up.heads.lock()[0].clone();
    assert!(raw.starts_with("PUT /upload HTTP/1.1\r\n"), "{raw}");
    assert!(raw.contains("transfer-encoding: chunked\r\n"), "{raw}");
    assert!(!raw.contains("content-length"), "{raw}");
    assert!(
        raw.ends_with("\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
        "{raw}"
    );
}

#[tokio::test]
async fn bodies_in_memory_carry_their_length_and_large_ones_arrive_whole() {
    let up = scripted(&[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"], false).await;
    let client = build(Duration::from_secs(1));
    let big = "x".repeat(100_000);
    let req = Request::post(format!("http://{}/big", up.addr))
        .header(header::CONTENT_LENGTH, "5")
        .body(Full::new(Bytes::from(big.clone())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(read_all(resp).await, "ok");
    let raw = up.heads.lock()[0].clone();
    assert!(raw.contains("content-length: 100000\r\n"), "{raw}");
    assert!(!raw.contains("content-length: 5"), "{raw}");
    assert!(raw.ends_with(&format!("\r\n\r\n{big}")), "bad body");
}

/// An HTTPS upstream with the tests' own certificate (for 127.0.0.1, signed by `testdata/ca.der`),
/// answering as [`upstream`] does.
async fn tls_upstream(body: &'static str, close_after: usize) -> Upstream {
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = CertificateDer::from(include_bytes!("testdata/leaf.der").to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        include_bytes!("testdata/leaf.key.der").to_vec(),
    ));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    listen(move |sock, heads| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(tls) = acceptor.accept(sock).await {
                serve_conn(tls, heads, body, "", close_after).await;
            }
        }
    })
    .await
}

fn test_ca_client() -> HttpClient {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(
            include_bytes!("testdata/ca.der").to_vec(),
        ))
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let tls = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    build_with_tls(Duration::from_secs(2), tls)
}

#[tokio::test]
async fn https_upstreams_are_served_and_their_connections_reused() {
    let up = tls_upstream("secure", 0).await;
    let client = test_ca_client();
    let url = format!("https://{}/v1/x", up.addr);
    read_each(&client, &up, &url, 3, "secure", 1).await;
    assert!(up.heads.lock()[0].starts_with("POST /v1/x HTTP/1.1\r\n"));
}

#[tokio::test]
async fn an_https_connection_the_upstream_closed_while_idle_is_replaced() {
    let up = tls_upstream("again", 1).await;
    let client = test_ca_client();
    for _ in 0..3 {
        let req = Request::post(format!("https://{}/", up.addr))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(read_all(resp).await, "again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(up.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_connect_error() {
    let up = tls_upstream("never", 0).await;
    // The Mozilla roots do not include the tests' authority.
    let client = build(Duration::from_secs(2));
    let req = Request::post(format!("https://{}/", up.addr))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let err = client.request(req).await.err().unwrap();
    assert!(err.is_connect(), "{err}");
}
