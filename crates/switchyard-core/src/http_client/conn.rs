//! One HTTP/1.1 connection, driven by the task of the request that uses it.
//!
//! Why not hyper's client connection: it runs each connection as a task of its own, so every
//! upstream call crosses two channels (request in, response head and body frames out) and wakes
//! a second task for each step. At gateway rates that hand-off, and building every custom
//! response header's name afresh, were a fifth of the proxy's CPU. Here the request's own
//! future writes the request and parses the head, its body reads the socket directly, and a
//! connection remembers the header names of its last response, since an upstream sends the
//! same ones in the same order.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;

/// The most headers a response head may have.
const MAX_HEADERS: usize = 100;
/// The largest response head accepted (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// How much the read buffer grows by before a read.
pub(super) const READ_CHUNK: usize = 8 * 1024;
/// Request bodies up to this size are copied behind the head so both leave in one write.
const COALESCE_BODY: usize = 16 * 1024;

/// The transport under a connection: plain TCP (read without zeroing buffers first) or TLS.
pub(super) enum Io {
    Plain(TcpStream),
    Tls(Box<TokioIo<MaybeHttpsStream<TokioIo<TcpStream>>>>),
}

impl Io {
    /// Wraps what the connector opened, unwrapping plain TCP so reads can go straight into
    /// the buffer's spare capacity.
    pub(super) fn new(stream: MaybeHttpsStream<TokioIo<TcpStream>>) -> Self {
        match stream {
            MaybeHttpsStream::Http(tcp) => Self::Plain(tcp.into_inner()),
            tls => Self::Tls(Box::new(TokioIo::new(tls))),
        }
    }

    /// Reads what is available into `buf`'s spare room; `Ok(0)` is the peer closing.
    pub(super) fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        buf.reserve(READ_CHUNK);
        match self {
            Self::Plain(tcp) => loop {
                match tcp.poll_read_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
                match tcp.try_read_buf(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    done => return Poll::Ready(done),
                }
            },
            Self::Tls(tls) => {
                // rustls hands out plaintext from its own buffer; zeroing the room first is
                // the safe way to lend it an uninitialised tail.
                let start = buf.len();
                buf.resize(start + READ_CHUNK, 0);
                let mut rb = ReadBuf::new(&mut buf[start..]);
                let polled = Pin::new(tls.as_mut()).poll_read(cx, &mut rb);
                let n = rb.filled().len();
                buf.truncate(start + n);
                polled.map_ok(|()| n)
            }
        }
    }

    /// Whether an idle connection is still usable: the peer has neither closed it nor sent
    /// anything unasked. Never waits; costs at most one non-blocking read.
    pub(super) fn is_idle_usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0u8; 1];
        let mut rb = ReadBuf::new(&mut probe);
        let polled = match self {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(&mut cx, &mut rb),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(&mut cx, &mut rb),
        };
        // Pending: nothing to read, the connection is open. Ready(0 bytes): closed. Ready with
        // data: the peer said something out of turn, so the connection's framing is unknown.
        polled.is_pending()
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open connection and what it remembers between requests.
pub(super) struct Conn {
    pub(super) io: Io,
    /// The header names of the last response, in order: the next response from the same
    /// upstream almost always repeats them, and reusing one skips validating, lower-casing and
    /// allocating a custom name again.
    names: Vec<HeaderName>,
}

impl Conn {
    pub(super) fn new(io: Io) -> Self {
        Self {
            io,
            names: Vec::new(),
        }
    }
}

/// How a response body is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body: a HEAD request, or a 204 or 304 status.
    Empty,
    /// `content-length` bytes.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// A parsed response head and how to read what follows it.
pub(super) struct Head {
    pub(super) status: StatusCode,
    pub(super) version: Version,
    pub(super) headers: HeaderMap,
    pub(super) framing: Framing,
    /// Whether the connection can carry another request once the body is read.
    pub(super) keep_alive: bool,
}

/// Why an exchange failed, and whether the request may be sent again on another connection.
#[derive(Debug)]
pub(super) struct Failed {
    pub(super) message: String,
    /// The request did not reach the upstream whole, so nothing can have acted on it.
    pub(super) unsent: bool,
    /// Writing to the connection failed (rather than reading the request body's source): the
    /// upstream may have answered already and stopped reading.
    write_broke: bool,
}

impl Failed {
    fn write(what: &str, e: &io::Error, unsent: bool) -> Self {
        Self {
            message: format!("{what}: {e}"),
            unsent,
            write_broke: true,
        }
    }

    fn read(what: &str, e: &io::Error) -> Self {
        Self::protocol(format!("{what}: {e}"))
    }

    fn protocol(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            unsent: false,
            write_broke: false,
        }
    }
}

/// The encoded request head, and the body still to send after it.
pub(super) struct Outgoing {
    pub(super) method: Method,
    head: Vec<u8>,
    body: Payload,
}

/// A request body as this client sends it.
enum Payload {
    /// Bytes in memory (empty when they were copied behind the head); kept, so a request that
    /// never reached the upstream can be written again on another connection.
    Bytes(Bytes),
    /// A stream read once as it is sent, chunked when its length is unknown.
    Stream {
        body: http_body_util::combinators::UnsyncBoxBody<Bytes, super::BoxError>,
        chunked: bool,
    },
}

impl Outgoing {
    /// Encodes `parts` as an HTTP/1.1 request head. A body in memory gets its exact
    /// `content-length`; a stream keeps the length its sender declared, else goes chunked.
    pub(super) fn new(parts: &http::request::Parts, body: super::OutBody) -> Self {
        use http_body::Body as _;
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        let mut head = Vec::with_capacity(256 + parts.headers.len() * 48);
        head.extend_from_slice(parts.method.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(path.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        let in_memory = matches!(body, super::OutBody::Full(_));
        for (name, value) in &parts.headers {
            // The framing is this client's to decide, and the connection is kept alive.
            if (name == header::CONTENT_LENGTH && in_memory)
                || name == header::TRANSFER_ENCODING
                || name == header::CONNECTION
            {
                continue;
            }
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        let body = match body {
            super::OutBody::Full(mut full) => {
                let bytes = take_full(&mut full).unwrap_or_default();
                let bodyless = matches!(
                    parts.method,
                    Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
                );
                if !bytes.is_empty() || !bodyless {
                    content_length(&mut head, bytes.len() as u64);
                }
                head.extend_from_slice(b"\r\n");
                if bytes.len() <= COALESCE_BODY {
                    head.extend_from_slice(&bytes);
                    Payload::Bytes(Bytes::new())
                } else {
                    Payload::Bytes(bytes)
                }
            }
            super::OutBody::Stream(stream) => {
                let mut chunked = false;
                if !parts.headers.contains_key(header::CONTENT_LENGTH) {
                    match stream.size_hint().exact() {
                        Some(len) => content_length(&mut head, len),
                        None => {
                            head.extend_from_slice(b"transfer-encoding: chunked\r\n");
                            chunked = true;
                        }
                    }
                }
                head.extend_from_slice(b"\r\n");
                Payload::Stream {
                    body: stream,
                    chunked,
                }
            }
        };
        Self {
            method: parts.method.clone(),
            head,
            body,
        }
    }
}

fn content_length(head: &mut Vec<u8>, len: u64) {
    head.extend_from_slice(b"content-length: ");
    head.extend_from_slice(len.to_string().as_bytes());
    head.extend_from_slice(b"\r\n");
}

/// The bytes of an in-memory body (a `Full` yields them at once, on first poll).
fn take_full(full: &mut http_body_util::Full<Bytes>) -> Option<Bytes> {
    use http_body::Body as _;
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(full).poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().ok(),
        _ => None,
    }
}

/// Writes the request and reads the response head. On success the buffer holds whatever of
/// the body arrived with the head.
pub(super) async fn exchange(
    conn: &mut Conn,
    out: &mut Outgoing,
    buf: &mut BytesMut,
) -> Result<Head, Failed> {
    if let Err(failed) = write_request(&mut conn.io, out).await {
        // An upstream may answer (say, 413) and stop reading before the body is in; its
        // answer is worth more than the broken pipe.
        if !failed.write_broke {
            return Err(failed);
        }
        return match read_head(conn, &out.method, buf).await {
            Ok(mut head) => {
                head.keep_alive = false;
                Ok(head)
            }
            Err(_) => Err(failed),
        };
    }
    read_head(conn, &out.method, buf).await
}

async fn write_request(io: &mut Io, out: &mut Outgoing) -> Result<(), Failed> {
    io.write_all(&out.head)
        .await
        .map_err(|e| Failed::write("writing the request", &e, true))?;
    match &mut out.body {
        Payload::Bytes(bytes) => {
            if !bytes.is_empty() {
                io.write_all(bytes)
                    .await
                    .map_err(|e| Failed::write("writing the request body", &e, true))?;
            }
        }
        Payload::Stream { body, chunked } => write_stream(io, body, *chunked).await?,
    }
    // A stream is spent by now, so a failed flush cannot be made good by sending again.
    let replayable = matches!(out.body, Payload::Bytes(_));
    io.flush()
        .await
        .map_err(|e| Failed::write("writing the request", &e, replayable))
}

/// Sends a streamed body as it is produced. A failure here is final: the stream cannot be
/// read twice.
async fn write_stream(
    io: &mut Io,
    stream: &mut http_body_util::combinators::UnsyncBoxBody<Bytes, super::BoxError>,
    chunked: bool,
) -> Result<(), Failed> {
    use http_body_util::BodyExt as _;
    let broke = |e: io::Error| Failed::write("writing the request body", &e, false);
    while let Some(frame) = stream.frame().await {
        let frame =
            frame.map_err(|e| Failed::protocol(format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if chunked {
            let size = format!("{:x}\r\n", data.len());
            io.write_all(size.as_bytes()).await.map_err(broke)?;
        }
        io.write_all(&data).await.map_err(broke)?;
        if chunked {
            io.write_all(b"\r\n").await.map_err(broke)?;
        }
    }
    if chunked {
        io.write_all(b"0\r\n\r\n").await.map_err(broke)?;
    }
    Ok(())
}

/// Reads until a whole final response head is in `buf`, skips interim (1xx) responses, and
/// leaves the bytes after the head in `buf`.
async fn read_head(conn: &mut Conn, method: &Method, buf: &mut BytesMut) -> Result<Head, Failed> {
    loop {
        if !buf.is_empty() {
            if let Some(head) = parse_head(conn, method, buf)? {
                return Ok(head);
            }
            if buf.len() > MAX_HEAD {
                return Err(Failed::protocol(format!(
                    "response head larger than {MAX_HEAD} bytes"
                )));
            }
        }
        buf.reserve(READ_CHUNK);
        let n = match &mut conn.io {
            Io::Plain(tcp) => tcp.read_buf(buf).await,
            Io::Tls(tls) => tls.read_buf(buf).await,
        }
        .map_err(|e| Failed::read("reading the response", &e))?;
        if n == 0 {
            return Err(Failed::protocol(
                "connection closed before a response head arrived",
            ));
        }
    }
}

/// One header's place in the head: name and value as byte ranges.
struct Span {
    name: (usize, usize),
    value: (usize, usize),
}

/// Parses the head at the start of `buf`, if it is all there. Interim responses are consumed
/// and parsing goes on with what follows them.
fn parse_head(
    conn: &mut Conn,
    method: &Method,
    buf: &mut BytesMut,
) -> Result<Option<Head>, Failed> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut slots);
        let len = match resp.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => {
                return Err(Failed::protocol(format!(
                    "invalid response head from upstream: {e}"
                )))
            }
        };
        let code = resp.code.unwrap_or(0);
        let status = StatusCode::from_u16(code)
            .map_err(|_| Failed::protocol(format!("invalid status {code} from upstream")))?;
        let version = if resp.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            let _ = buf.split_to(len);
            if buf.is_empty() {
                return Ok(None);
            }
            continue;
        }
        let spans = header_spans(buf, resp.headers);
        let raw = buf.split_to(len).freeze();
        let headers = build_headers(&mut conn.names, &raw, &spans)?;
        let (framing, keep_alive) = framing(method, status, version, &headers)?;
        return Ok(Some(Head {
            status,
            version,
            headers,
            framing,
            keep_alive,
        }));
    }
}

/// Where each header httparse found in `buf` lies in it.
fn header_spans(buf: &[u8], headers: &[httparse::Header<'_>]) -> Vec<Span> {
    let base = buf.as_ptr() as usize;
    let offset = |s: &[u8]| (s.as_ptr() as usize - base, s.len());
    headers
        .iter()
        .map(|h| Span {
            name: offset(h.name.as_bytes()),
            value: offset(h.value),
        })
        .collect()
}

/// Builds the header map, its values sharing `raw`'s memory and its names taken from the last
/// response where they repeat.
fn build_headers(
    names: &mut Vec<HeaderName>,
    raw: &Bytes,
    spans: &[Span],
) -> Result<HeaderMap, Failed> {
    let mut map = HeaderMap::with_capacity(spans.len());
    for (i, span) in spans.iter().enumerate() {
        let name_bytes = &raw[span.name.0..span.name.0 + span.name.1];
        let name = match names.get(i) {
            // Upstreams send lower-case names, so the exact comparison nearly always decides.
            Some(known)
                if known.as_str().as_bytes() == name_bytes
                    || known.as_str().as_bytes().eq_ignore_ascii_case(name_bytes) =>
            {
                known.clone()
            }
            _ => {
                let parsed = HeaderName::from_bytes(name_bytes).map_err(|_| {
                    Failed::protocol("invalid header name in the upstream's response")
                })?;
                names.truncate(i);
                names.push(parsed.clone());
                parsed
            }
        };
        let value =
            HeaderValue::from_maybe_shared(raw.slice(span.value.0..span.value.0 + span.value.1))
                .map_err(|_| Failed::protocol("invalid header value in the upstream's response"))?;
        map.append(name, value);
    }
    names.truncate(spans.len());
    Ok(map)
}

/// How the body is delimited and whether the connection survives it.
fn framing(
    method: &Method,
    status: StatusCode,
    version: Version,
    headers: &HeaderMap,
) -> Result<(Framing, bool), Failed> {
    let mut keep_alive = version == Version::HTTP_11;
    for value in headers.get_all(header::CONNECTION) {
        let Ok(text) = value.to_str() else { continue };
        for token in text.split(',').map(str::trim) {
            if token.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if token.eq_ignore_ascii_case("keep-alive") && version == Version::HTTP_10 {
                keep_alive = true;
            }
        }
    }
    if method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok((Framing::Empty, keep_alive));
    }
    let mut encodings = headers.get_all(header::TRANSFER_ENCODING).iter().peekable();
    if encodings.peek().is_some() {
        let last = encodings
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .last();
        return Ok(match last {
            Some(t) if t.eq_ignore_ascii_case("chunked") => (Framing::Chunked, keep_alive),
            // Any other final coding is delimited by the connection's end.
            _ => (Framing::UntilClose, false),
        });
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|b| *b == b',') {
            let parsed = std::str::from_utf8(part)
                .ok()
                .map(str::trim)
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| Failed::protocol("invalid content-length from upstream"))?;
            if length.is_some_and(|l| l != parsed) {
                return Err(Failed::protocol("conflicting content-length from upstream"));
            }
            length = Some(parsed);
        }
    }
    Ok(match length {
        Some(0) => (Framing::Empty, keep_alive),
        Some(n) => (Framing::Length(n), keep_alive),
        None => (Framing::UntilClose, false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, Failed> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut conn = Conn::new(Io::Plain(tcp));
            let mut buf = BytesMut::from(text.as_bytes());
            parse_head(&mut conn, &Method::POST, &mut buf)
        })
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(5), true));
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = head("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = head("HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = head("HTTP/1.1 204 No Content\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.framing, Framing::Empty);
        let h =
            head("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 1\r\n\r\n")
                .unwrap()
                .unwrap();
        assert!(!h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(3));
        assert!(head("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 200 OK\r\ncontent-length: -3\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n")
            .unwrap()
            .is_none());
        assert!(head("HTTP/1.1 2000 OK\r\n\r\n").is_err());
        assert!(head("garbage\r\n\r\n").is_err());
    }

    #[test]
    fn interim_responses_are_skipped() {
        let h = head("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: x\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.status, StatusCode::CREATED);
        assert!(h.headers.get("link").is_none());
    }

    #[test]
    fn header_names_are_reused_only_where_they_repeat() {
        // A header block as httparse reads it, and where its headers lie.
        let parsed = |text: &'static [u8]| {
            let mut slots = [httparse::EMPTY_HEADER; 4];
            let (_, headers) = httparse::parse_headers(text, &mut slots).unwrap().unwrap();
            (Bytes::from_static(text), header_spans(text, headers))
        };
        let mut names = Vec::new();
        let (raw, spans) = parsed(b"X-Ratelimit-Limit: 1\r\nx-other: 2\r\n\r\n");
        let map = build_headers(&mut names, &raw, &spans).unwrap();
        assert_eq!(map["x-ratelimit-limit"], "1");
        assert_eq!(map["x-other"], "2");
        assert_eq!(names.len(), 2);
        // The same names in another order: each is matched by position, so both are parsed.
        let (raw2, spans2) = parsed(b"x-other: 3\r\nx-ratelimit-limit: 4\r\n\r\n");
        let map = build_headers(&mut names, &raw2, &spans2).unwrap();
        assert_eq!(map["x-other"], "3");
        assert_eq!(map["x-ratelimit-limit"], "4");
        assert_eq!(names[0].as_str(), "x-other");
        // Fewer headers than before: the remembered list shrinks with them.
        let map = build_headers(&mut names, &raw2, &spans2[..1]).unwrap();
        assert_eq!(map.len(), 1);
        assert_eq!(names.len(), 1);
    }
}
