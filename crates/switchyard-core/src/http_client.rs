//! The one outbound HTTP client: pooled keep-alive HTTP/1.1 connections, TLS via rustls with the
//! Mozilla root set (no OpenSSL, no system dependency), connect timeout, TCP_NODELAY.
//!
//! Why not hyper-util's pooled client: every request through it pays a checkout future, a
//! pool-wide lock round trip and, for HTTP/1, a task spawned only to wait until the connection
//! is ready again. At gateway request rates that is a measurable share of the proxy's CPU. This
//! pool is smaller: each worker thread owns one (so its lock is never contended), a connection
//! goes back to it the moment its response body has been read to the end, and a body dropped
//! early takes its connection with it (so a cancelled stream also stops the generation
//! upstream).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{header, HeaderValue, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use parking_lot::Mutex;
use tokio::time::Instant;
use tower_service::Service as _;

/// Idle connections older than this are closed instead of reused: upstreams and the load
/// balancers in front of them drop idle connections after a minute or two, and reusing one that
/// is being closed costs a failed request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Most idle connections kept per upstream host and worker.
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
    sender: SendRequest<OutBody>,
    since: Instant,
}

type Idles = Mutex<crate::FastMap<Key, Vec<Idle>>>;

/// The client type used for every upstream call. Cloning shares the pool.
#[derive(Clone)]
pub struct HttpClient {
    connector: HttpsConnector<HttpConnector>,
    idle: Arc<Idles>,
}

/// Builds a client with its own connection pool.
pub fn build(connect_timeout: Duration) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    HttpClient {
        connector,
        idle: Arc::default(),
    }
}

impl HttpClient {
    /// Sends `req` (absolute URI) on a pooled connection, opening one if none is idle.
    ///
    /// A reused connection that the upstream closed just before the request was written is
    /// replaced by a fresh one, once: that request never reached the upstream, so sending it
    /// again cannot duplicate work.
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
    /// stale pooled connection is replaced only when the request was not written at all, so
    /// even a body that can be read once is never sent twice.
    pub async fn send(
        &self,
        req: Request<OutBody>,
        connect_timeout: Option<Duration>,
    ) -> Result<Response<UpstreamBody>, ClientError> {
        let (key, mut req) = origin_form(req)?;
        while let Some(mut sender) = self.checkout(&key) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(self.wrap(key, sender, resp)),
                Err(mut e) => match e.take_message() {
                    // Not written: the connection went away between checkout and send.
                    Some(unsent) => req = unsent,
                    None => return Err(ClientError::Request(describe(e.error()))),
                },
            }
        }
        // Boxed: a connection's set-up (TCP, TLS, handshake) is the largest state in the
        // request's future, and every request would otherwise carry (and copy) room for it
        // although most reuse a pooled connection.
        let mut sender = match connect_timeout {
            None => Box::pin(self.connect(&key)).await?,
            Some(limit) => tokio::time::timeout(limit, Box::pin(self.connect(&key)))
                .await
                .map_err(|_| ClientError::ConnectTimeout(limit))??,
        };
        sender
            .ready()
            .await
            .map_err(|e| ClientError::Connect(describe(&e)))?;
        match sender.send_request(req).await {
            Ok(resp) => Ok(self.wrap(key, sender, resp)),
            Err(e) => Err(ClientError::Request(describe(&e))),
        }
    }

    /// Takes the most recently used idle connection for `key`, dropping stale ones.
    fn checkout(&self, key: &Key) -> Option<SendRequest<OutBody>> {
        let mut idle = self.idle.lock();
        let list = idle.get_mut(key)?;
        while let Some(entry) = list.pop() {
            if !entry.sender.is_closed() && entry.since.elapsed() < IDLE_TIMEOUT {
                return Some(entry.sender);
            }
        }
        None
    }

    async fn connect(&self, key: &Key) -> Result<SendRequest<OutBody>, ClientError> {
        let uri = Uri::builder()
            .scheme(key.scheme.clone())
            .authority(key.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| ClientError::BadUrl)?;
        let io = self
            .connector
            .clone()
            .call(uri)
            .await
            .map_err(|e| ClientError::Connect(describe(e.as_ref())))?;
        let (sender, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| ClientError::Connect(describe(&e)))?;
        // The connection task ends by itself when its sender is dropped or the peer closes.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn wrap(
        &self,
        key: Key,
        sender: SendRequest<OutBody>,
        resp: Response<Incoming>,
    ) -> Response<UpstreamBody> {
        let reusable = !connection_close(resp.headers());
        resp.map(|inner| UpstreamBody {
            inner,
            checkin: reusable.then(|| Checkin {
                idle: Arc::clone(&self.idle),
                key,
                sender,
            }),
        })
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

/// A connection waiting for its response body to end before it can be reused.
struct Checkin {
    idle: Arc<Idles>,
    key: Key,
    sender: SendRequest<OutBody>,
}

impl Checkin {
    fn put_back(self) {
        let mut idle = self.idle.lock();
        let list = idle.entry(self.key).or_default();
        if list.len() < MAX_IDLE_PER_HOST {
            list.push(Idle {
                sender: self.sender,
                since: Instant::now(),
            });
        }
    }
}

/// An upstream response body. Reading it to the end returns its connection to the pool;
/// dropping it earlier closes the connection.
pub struct UpstreamBody {
    inner: Incoming,
    checkin: Option<Checkin>,
}

impl UpstreamBody {
    fn done(&mut self) {
        if let Some(c) = self.checkin.take() {
            c.put_back();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.done(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.done(),
            Poll::Ready(Some(Err(_))) => this.checkin = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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

/// Whether the upstream announced it will close the connection after this response.
fn connection_close(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
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
