//! The one outbound HTTP client: pooled keep-alive HTTP/1.1 connections, TLS via rustls with the
//! Mozilla root set (no OpenSSL, no system dependency), connect timeout, TCP_NODELAY.
//!
//! Why its own HTTP/1.1 exchange (`conn`, `body`) rather than hyper's client: see `conn`. Each
//! worker thread builds its own client, so the pool's lock is never contended. The pool is a
//! plain list per upstream: a connection goes back to it the moment its response
//! body has been read to the end, and a body dropped early takes its connection with it (so a
//! cancelled stream also stops the generation upstream).

mod body;
mod conn;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::uri::{Authority, Scheme};
use http::{header, HeaderValue, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use parking_lot::Mutex;
use tokio::time::Instant;
use tower_service::Service as _;

pub use body::{BodyError, UpstreamBody};
use conn::{Conn, Io, Outgoing};

/// Idle connections older than this are closed instead of reused: upstreams and the load
/// balancers in front of them drop idle connections after a minute or two, and reusing one that
/// is being closed costs a failed request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Most idle connections kept per upstream host (each worker thread has a client of its own).
const MAX_IDLE_PER_HOST: usize = 512;

/// Why an upstream request could not be sent or answered.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL has no host, or a scheme other than http/https.
    #[error("unsupported upstream URL")]
    BadUrl,
    /// Opening the connection (TCP or TLS) failed.
    #[error("connect error: {0}")]
    Connect(String),
    /// The request was sent but the exchange failed.
    #[error("request failed: {0}")]
    Request(String),
    /// Opening the connection took longer than the deployment's connect timeout.
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
}

impl ClientError {
    /// Whether the request failed before a connection existed (nothing reached the upstream).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::ConnectTimeout(_))
    }
}

/// Pool key: where a connection goes.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    scheme: Scheme,
    authority: Authority,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

type Idles = Mutex<crate::FastMap<Key, Vec<Idle>>>;

/// The client type used for every upstream call. Cloning shares the pool.
#[derive(Clone)]
pub struct HttpClient {
    connector: HttpsConnector<HttpConnector>,
    idle: Arc<Idles>,
}

/// Builds a client with its own connection pool, trusting the Mozilla root set.
pub fn build(connect_timeout: Duration) -> HttpClient {
    with_tls(
        connect_timeout,
        hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots(),
    )
}

/// Builds a client whose TLS trusts only what `tls` says (the tests' own certificate
/// authority).
#[cfg(test)]
fn build_with_tls(
    connect_timeout: Duration,
    tls: tokio_rustls::rustls::ClientConfig,
) -> HttpClient {
    with_tls(
        connect_timeout,
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls),
    )
}

fn with_tls(
    connect_timeout: Duration,
    tls: hyper_rustls::HttpsConnectorBuilder<hyper_rustls::builderstates::WantsSchemes>,
) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let connector = tls.https_or_http().enable_http1().wrap_connector(http);
    HttpClient {
        connector,
        idle: Arc::default(),
    }
}

impl HttpClient {
    /// Sends `req` (absolute URI) on a pooled connection, opening one if none is idle.
    ///
    /// A reused connection that turns out broken before the request was written whole is
    /// replaced by a fresh one: that request never reached the upstream complete, so sending
    /// it again cannot duplicate work.
    pub async fn request(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, ClientError> {
        self.request_within(req, None).await
    }

    /// Like [`HttpClient::request`], with a connect timeout of its own (a deployment's) when a
    /// new connection is needed, over the client's default.
    pub async fn request_within(
        &self,
        req: Request<Full<Bytes>>,
        connect_timeout: Option<Duration>,
    ) -> Result<Response<UpstreamBody>, ClientError> {
        self.send(req.map(OutBody::Full), connect_timeout).await
    }

    /// Like [`HttpClient::request_within`] for any [`OutBody`], so a streamed request body (a
    /// pass-through upload) goes upstream as it arrives instead of being buffered first. A
    /// broken pooled connection is replaced only when the request was not written whole, and a
    /// stream only before any of it was read, so even a body that can be read once is never
    /// sent twice.
    pub async fn send(
        &self,
        req: Request<OutBody>,
        connect_timeout: Option<Duration>,
    ) -> Result<Response<UpstreamBody>, ClientError> {
        let (key, req) = origin_form(req)?;
        let (parts, body) = req.into_parts();
        let mut out = Outgoing::new(&parts, body);
        drop(parts);
        while let Some(mut conn) = self.checkout(&key) {
            let mut buf = BytesMut::new();
            match conn::exchange(&mut conn, &mut out, &mut buf).await {
                Ok(head) => return Ok(self.respond(key, conn, buf, head)),
                // Not written whole: the connection went away while idle.
                Err(failed) if failed.unsent => continue,
                Err(failed) => return Err(ClientError::Request(failed.message)),
            }
        }
        // Boxed: a connection's set-up (TCP, TLS) is the largest state in the request's
        // future, and every request would otherwise carry (and copy) room for it although most
        // reuse a pooled connection.
        let mut conn = match connect_timeout {
            None => Box::pin(self.connect(&key)).await?,
            Some(limit) => tokio::time::timeout(limit, Box::pin(self.connect(&key)))
                .await
                .map_err(|_| ClientError::ConnectTimeout(limit))??,
        };
        let mut buf = BytesMut::new();
        match conn::exchange(&mut conn, &mut out, &mut buf).await {
            Ok(head) => Ok(self.respond(key, conn, buf, head)),
            Err(failed) => Err(ClientError::Request(failed.message)),
        }
    }

    /// Takes the most recently used idle connection for `key` that is still open, closing
    /// stale ones.
    fn checkout(&self, key: &Key) -> Option<Conn> {
        let mut idle = self.idle.lock();
        let list = idle.get_mut(key)?;
        while let Some(mut entry) = list.pop() {
            if entry.since.elapsed() < IDLE_TIMEOUT && entry.conn.io.is_idle_usable() {
                return Some(entry.conn);
            }
        }
        None
    }

    async fn connect(&self, key: &Key) -> Result<Conn, ClientError> {
        let uri = Uri::builder()
            .scheme(key.scheme.clone())
            .authority(key.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| ClientError::BadUrl)?;
        let stream = self
            .connector
            .clone()
            .call(uri)
            .await
            .map_err(|e| ClientError::Connect(describe(e.as_ref())))?;
        Ok(Conn::new(Io::new(stream)))
    }

    fn respond(
        &self,
        key: Key,
        conn: Conn,
        buf: BytesMut,
        head: conn::Head,
    ) -> Response<UpstreamBody> {
        let checkin = head.keep_alive.then(|| Checkin {
            idle: Arc::clone(&self.idle),
            key,
        });
        let body = UpstreamBody::new(conn, buf, head.framing, checkin);
        let mut resp = Response::new(body);
        *resp.status_mut() = head.status;
        *resp.version_mut() = head.version;
        *resp.headers_mut() = head.headers;
        resp
    }
}

/// Boxed error of a streamed request body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An outbound request body: whole bytes (every pipeline request, which may be re-sent on
/// failover) or a stream read once from the client (pass-through uploads, never buffered).
pub enum OutBody {
    /// A body in memory.
    Full(Full<Bytes>),
    /// A body produced as it is sent.
    Stream(http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>),
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Full(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|never| match never {}))),
            Self::Stream(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(b) => b.is_end_stream(),
            Self::Stream(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(b) => b.size_hint(),
            Self::Stream(b) => b.size_hint(),
        }
    }
}

/// Where a connection goes back to once its response body has been read to the end.
struct Checkin {
    idle: Arc<Idles>,
    key: Key,
}

impl Checkin {
    fn put_back(self, conn: Conn) {
        let now = Instant::now();
        let mut idle = self.idle.lock();
        let list = idle.entry(self.key).or_default();
        // The oldest are at the front; close those past their time rather than keep their
        // sockets until a checkout reaches them.
        let expired = list
            .iter()
            .take_while(|e| now.saturating_duration_since(e.since) >= IDLE_TIMEOUT)
            .count();
        list.drain(..expired);
        if list.len() < MAX_IDLE_PER_HOST {
            list.push(Idle { conn, since: now });
        }
    }
}

/// Splits an absolute-URI request into its pool key and the origin-form request HTTP/1.1
/// sends (path only, with a `Host` header).
fn origin_form<B>(req: Request<B>) -> Result<(Key, Request<B>), ClientError> {
    let (mut parts, body) = req.into_parts();
    let scheme = parts.uri.scheme().cloned().ok_or(ClientError::BadUrl)?;
    if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
        return Err(ClientError::BadUrl);
    }
    let authority = parts.uri.authority().cloned().ok_or(ClientError::BadUrl)?;
    if !parts.headers.contains_key(header::HOST) {
        let default_port = if scheme == Scheme::HTTPS { 443 } else { 80 };
        let host = match authority.port_u16() {
            Some(p) if p != default_port => authority.as_str(),
            _ => authority.host(),
        };
        let value = HeaderValue::from_str(host).map_err(|_| ClientError::BadUrl)?;
        parts.headers.insert(header::HOST, value);
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    parts.uri = Uri::try_from(path).map_err(|_| ClientError::BadUrl)?;
    Ok((Key { scheme, authority }, Request::from_parts(parts, body)))
}

/// A short, secret-free description of an error and its causes (such as "connection refused"
/// or a TLS failure); URLs and headers never appear in it.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests;
