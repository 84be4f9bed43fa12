//! A small Redis client: RESP2 over one multiplexed TCP connection per [`Client`], enough for
//! the state that scaled-out gateways share through Redis (rate limits today).
//!
//! Why not the `redis` crate: even with `default-features = false` and only `tokio-comp` and
//! `script`, it brings crates the gateway does not otherwise have: `url` (and with it `idna`
//! and its ICU crates), `combine`, `arcstr` and `sha1_smol`, to send a handful of commands
//! (`AUTH`, `SELECT`, `SCRIPT LOAD`, `EVALSHA`, `EVAL`) and read five reply types. RESP2 is a
//! few dozen lines; this module adds no dependency.
//!
//! The connection:
//! - is opened lazily by a driver task on the runtime of the first call (one client per
//!   worker, so each worker's runtime owns its socket), and re-opened after a failure with an
//!   exponential backoff (100 ms doubling to 5 s, jittered); while backing off, calls fail at
//!   once instead of waiting;
//! - is multiplexed: every call writes its command and gets the next reply in order (Redis
//!   answers in order on a connection), so concurrent calls share one socket, pipelined;
//! - is bounded: every call waits at most the client's timeout; a command whose caller gave
//!   up before it was written is never sent; a server that stops answering for
//!   `max(1s, 20 × timeout)` gets its connection closed and re-opened.
//!
//! The URL's password is a [`Secret`]: errors and [`RedisUrl::describe`] never contain it.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::Secret;

/// Commands queued per client before calls fail at once (while the connection is opening).
const QUEUE: usize = 4096;
/// Largest bulk reply accepted (the gateway's replies are tiny).
const MAX_BULK: usize = 16 << 20;
/// Deepest array nesting accepted.
const MAX_DEPTH: usize = 8;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Where a Redis server is and how to log in: `redis://[[user]:password@]host[:port][/db]`.
#[derive(Clone)]
pub struct RedisUrl {
    host: String,
    port: u16,
    db: u32,
    username: Option<String>,
    password: Option<Secret>,
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl RedisUrl {
    /// Parses a `redis://` URL. Messages never repeat the URL (it may hold a password).
    pub fn parse(url: &str) -> Result<Self, String> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err("must be a URL such as `redis://127.0.0.1:6379` or \
                        `redis://:password@host:6379/0`"
                .to_owned());
        };
        match scheme.to_ascii_lowercase().as_str() {
            "redis" => {}
            "rediss" => {
                return Err(
                    "TLS (`rediss://`) is not supported: reach Redis over a private \
                            network or a local TLS tunnel, with `redis://`"
                        .to_owned(),
                )
            }
            _ => return Err("the scheme must be `redis://`".to_owned()),
        }
        if rest.contains(['?', '#']) {
            return Err(
                "query parameters are not supported; put the database number in the \
                        path (`/0`)"
                    .to_owned(),
            );
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = match u.split_once(':') {
                    Some((user, pass)) => (user, Some(pass)),
                    None => (u, None),
                };
                let user = percent_decode(user).ok_or("the user name is not valid UTF-8")?;
                let pass = match pass {
                    Some(p) => Some(
                        percent_decode(p).ok_or("the password is not valid percent-encoding")?,
                    ),
                    None => None,
                };
                // `redis://user@host` names a user without a password: Redis 6 ACLs need both.
                match (user.is_empty(), pass) {
                    (true, None) => (None, None),
                    (true, Some(p)) => (None, Some(p)),
                    (false, Some(p)) => (Some(user), Some(p)),
                    (false, None) => {
                        return Err(
                            "a user name needs a password (`redis://user:pass@host`)".to_owned()
                        )
                    }
                }
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("unterminated `[` in the host")?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err("unexpected text after the host".to_owned()),
            };
            (h.to_owned(), port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err("the host is missing".to_owned());
        }
        let port = match port {
            None => 6379,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or("the port must be a number from 1 to 65535")?,
        };
        let db = match path.trim_end_matches('/') {
            "" => 0,
            d => d
                .parse::<u32>()
                .map_err(|_| "the path must be a database number (`/0`)".to_owned())?,
        };
        Ok(Self {
            host,
            port,
            db,
            username,
            password: password.map(Secret::new),
        })
    }

    /// `redis://host:port/db`, without credentials: what logs may show.
    pub fn describe(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("redis://{host}:{}/{}", self.port, self.db)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Where a config section's shared state lives (`limits.backend`, `cache.backend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// In this process's memory: one gateway, or each replica its own.
    #[default]
    Memory,
    /// In Redis, shared by every gateway using it.
    Redis,
}

/// The `redis_url`, `redis_timeout` and `redis_prefix` keys of a config section whose state
/// may live in Redis (`limits:`, `cache:`), validated the same way everywhere: each problem goes
/// to `problem` as (key, message). With the `memory` backend, any of them set is a problem.
/// `None` for the `memory` backend, or when the URL is missing or invalid.
pub(crate) fn settings(
    backend: BackendKind,
    url: Option<&str>,
    timeout: Option<Duration>,
    prefix: Option<&str>,
    defaults: (Duration, &str),
    problem: &mut dyn FnMut(&str, String),
) -> Option<(RedisUrl, Duration, String)> {
    if backend == BackendKind::Memory {
        for (key, set) in [
            ("redis_url", url.is_some()),
            ("redis_timeout", timeout.is_some()),
            ("redis_prefix", prefix.is_some()),
        ] {
            if set {
                problem(key, "applies only with `backend: redis`".to_owned());
            }
        }
        return None;
    }
    let url = match url {
        None => {
            problem(
                "redis_url",
                "is required with `backend: redis` (e.g. `redis://127.0.0.1:6379`)".to_owned(),
            );
            None
        }
        Some(u) => RedisUrl::parse(u.trim())
            .map_err(|e| problem("redis_url", e))
            .ok(),
    };
    let timeout = timeout.unwrap_or(defaults.0);
    if timeout.is_zero() || timeout > Duration::from_secs(5) {
        problem(
            "redis_timeout",
            "must be greater than 0 and at most 5s".to_owned(),
        );
    }
    let prefix = prefix.unwrap_or(defaults.1).to_owned();
    if prefix.is_empty() || prefix.len() > 64 || !prefix.chars().all(|c| c.is_ascii_graphic()) {
        problem(
            "redis_prefix",
            "must be 1-64 printable ASCII characters without spaces".to_owned(),
        );
    }
    Some((url?, timeout, prefix))
}

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A null bulk string or array.
    Nil,
    /// A simple string (`OK`).
    Status(String),
    /// An integer.
    Int(i64),
    /// A bulk string.
    Data(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// An error inside an array (a top-level error is [`Error::Server`]).
    Error(String),
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No connection: connecting failed recently, or too many calls are queued.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// No reply within the client's timeout.
    #[error("no reply from redis within {}ms", .0.as_millis())]
    Timeout(Duration),
    /// The connection failed while the call was in flight.
    #[error("redis connection failed: {0}")]
    Io(String),
    /// The server sent something that is not RESP.
    #[error("redis protocol error: {0}")]
    Protocol(String),
    /// The server answered with an error.
    #[error("redis error: {0}")]
    Server(String),
}

/// Appends one command in RESP (an array of bulk strings).
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses one reply from the start of `buf`: the value and the bytes it took, `None` when
/// more bytes are needed.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, String> {
    parse_at(buf, 0, 0)
}

fn line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(from..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], from + end + 2))
}

fn int(bytes: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "bad integer".to_owned())
}

fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Value, usize)>, String> {
    if depth > MAX_DEPTH {
        return Err("replies nested too deep".to_owned());
    }
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some((head, next)) = line(buf, pos + 1) else {
        return Ok(None);
    };
    let text = || String::from_utf8_lossy(head).into_owned();
    Ok(Some(match kind {
        b'+' => (Value::Status(text()), next),
        b'-' => (Value::Error(text()), next),
        b':' => (Value::Int(int(head)?), next),
        b'$' => {
            let n = int(head)?;
            if n < 0 {
                return Ok(Some((Value::Nil, next)));
            }
            let n = usize::try_from(n).map_err(|_| "bad length".to_owned())?;
            if n > MAX_BULK {
                return Err(format!("bulk reply of {n} bytes is too large"));
            }
            let Some(data) = buf.get(next..next + n) else {
                return Ok(None);
            };
            match buf.get(next + n..next + n + 2) {
                None | Some([_]) => return Ok(None),
                Some(b"\r\n") => (Value::Data(data.to_vec()), next + n + 2),
                Some(_) => return Err("bulk reply not terminated by CRLF".to_owned()),
            }
        }
        b'*' => {
            let n = int(head)?;
            if n < 0 {
                return Ok(Some((Value::Nil, next)));
            }
            let n = usize::try_from(n).map_err(|_| "bad length".to_owned())?;
            let mut items = Vec::with_capacity(n.min(64));
            let mut at = next;
            for _ in 0..n {
                match parse_at(buf, at, depth + 1)? {
                    Some((v, used)) => {
                        items.push(v);
                        at = used;
                    }
                    None => return Ok(None),
                }
            }
            (Value::Array(items), at)
        }
        other => return Err(format!("unexpected reply type byte 0x{other:02x}")),
    }))
}

struct Job {
    frame: Vec<u8>,
    reply: oneshot::Sender<Result<Value, Error>>,
}

struct Shared {
    url: RedisUrl,
    timeout: Duration,
}

/// A multiplexed connection to one Redis server, opened on first use. Cheap to create; give
/// each worker runtime its own (see the module docs).
pub struct Client {
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.shared.url)
            .field("timeout", &self.shared.timeout)
            .finish()
    }
}

impl Client {
    /// A client of `url` whose calls wait at most `timeout`; nothing is connected yet.
    pub fn new(url: RedisUrl, timeout: Duration) -> Self {
        Self {
            shared: Arc::new(Shared { url, timeout }),
            tx: Mutex::new(None),
        }
    }

    /// Another client of the same server with its own connection (for another runtime).
    pub fn fresh(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            tx: Mutex::new(None),
        }
    }

    /// The server, without credentials.
    pub fn describe(&self) -> String {
        self.shared.url.describe()
    }

    /// The bound on each call.
    pub fn timeout(&self) -> Duration {
        self.shared.timeout
    }

    /// Sends one command and waits (at most the client's timeout) for its reply.
    pub async fn call(&self, args: &[&[u8]]) -> Result<Value, Error> {
        self.call_within(args, self.shared.timeout).await
    }

    /// Sends one command and waits at most `timeout` for its reply.
    pub async fn call_within(&self, args: &[&[u8]], timeout: Duration) -> Result<Value, Error> {
        let mut frame = Vec::with_capacity(64);
        encode(&mut frame, args);
        let (reply, rx) = oneshot::channel();
        self.sender()
            .try_send(Job { frame, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    Error::Unavailable("too many commands queued".to_owned())
                }
                mpsc::error::TrySendError::Closed(_) => {
                    Error::Unavailable("connection task stopped".to_owned())
                }
            })?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(Value::Error(e)))) => Err(Error::Server(e)),
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::Io("connection closed".to_owned())),
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// The driver's queue, starting a driver on the current runtime when there is none (or
    /// the last one's runtime went away).
    fn sender(&self) -> mpsc::Sender<Job> {
        let mut tx = self.tx.lock();
        if let Some(t) = tx.as_ref().filter(|t| !t.is_closed()) {
            return t.clone();
        }
        let (t, rx) = mpsc::channel(QUEUE);
        // The driver ends when the client (every sender) is dropped.
        tokio::spawn(drive(Arc::clone(&self.shared), rx));
        *tx = Some(t.clone());
        t
    }
}

/// Opens the connection and logs in.
async fn connect(url: &RedisUrl) -> Result<TcpStream, Error> {
    let mut stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| Error::Io(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let mut frame = Vec::new();
    let mut expected = 0;
    if let Some(pass) = &url.password {
        match &url.username {
            Some(user) => encode(
                &mut frame,
                &[b"AUTH", user.as_bytes(), pass.expose().as_bytes()],
            ),
            None => encode(&mut frame, &[b"AUTH", pass.expose().as_bytes()]),
        }
        expected += 1;
    }
    if url.db != 0 {
        encode(&mut frame, &[b"SELECT", url.db.to_string().as_bytes()]);
        expected += 1;
    }
    if expected == 0 {
        return Ok(stream);
    }
    stream
        .write_all(&frame)
        .await
        .map_err(|e| Error::Io(e.to_string()))?;
    let mut buf = BytesMut::with_capacity(256);
    let mut auth_pending = url.password.is_some();
    while expected > 0 {
        match parse(&buf).map_err(Error::Protocol)? {
            Some((v, used)) => {
                buf.advance(used);
                expected -= 1;
                if let Value::Error(e) = v {
                    // Only the error's code: a server's message is not worth the risk of
                    // quoting what was sent.
                    let code = e.split_whitespace().next().unwrap_or("ERR").to_owned();
                    return Err(Error::Server(if auth_pending {
                        format!("{code}: authentication failed")
                    } else {
                        format!("{code}: SELECT {} failed", url.db)
                    }));
                }
                auth_pending = false;
            }
            None => {
                if stream
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| Error::Io(e.to_string()))?
                    == 0
                {
                    return Err(Error::Io(
                        "closed by the server while logging in".to_owned(),
                    ));
                }
            }
        }
    }
    Ok(stream)
}

fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = getrandom::getrandom(&mut b).map_or(0, |()| u16::from_le_bytes(b));
    // 75% to 125% of `d`.
    d.mul_f64(0.75 + f64::from(r) / f64::from(u16::MAX) / 2.0)
}

/// Owns the connection: opens it when a command arrives, re-opens it after a failure (failing
/// calls at once while backing off), ends when every sender is gone.
async fn drive(shared: Arc<Shared>, mut rx: mpsc::Receiver<Job>) {
    let connect_timeout = shared.timeout.max(Duration::from_secs(1));
    let stuck_after = (shared.timeout * 20).max(Duration::from_secs(1));
    let mut backoff = BACKOFF_MIN;
    let mut retry_at: Option<Instant> = None;
    while let Some(job) = rx.recv().await {
        if job.reply.is_closed() {
            continue;
        }
        if retry_at.is_some_and(|t| Instant::now() < t) {
            let _ = job.reply.send(Err(Error::Unavailable(
                "reconnecting after a connection failure".to_owned(),
            )));
            continue;
        }
        let failure = match tokio::time::timeout(connect_timeout, connect(&shared.url)).await {
            Ok(Ok(stream)) => {
                backoff = BACKOFF_MIN;
                retry_at = None;
                match serve(stream, job, &mut rx, stuck_after).await {
                    Ended::Closed => return,
                    Ended::Broken(e) => {
                        tracing::debug!(target: "switchyard::redis", server = %shared.url.describe(), error = %e, "redis connection lost");
                        // Reconnect on the next command, once; back off if that fails.
                        continue;
                    }
                }
            }
            Ok(Err(e)) => (job, e),
            Err(_) => (
                job,
                Error::Io(format!(
                    "connect timed out after {}ms",
                    connect_timeout.as_millis()
                )),
            ),
        };
        let (job, e) = failure;
        tracing::debug!(target: "switchyard::redis", server = %shared.url.describe(), error = %e, backoff_ms = backoff.as_millis() as u64, "cannot connect to redis");
        let _ = job.reply.send(Err(Error::Unavailable(e.to_string())));
        while let Ok(queued) = rx.try_recv() {
            let _ = queued.reply.send(Err(Error::Unavailable(e.to_string())));
        }
        retry_at = Some(Instant::now() + jitter(backoff));
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

enum Ended {
    /// Every sender is gone.
    Closed,
    /// The connection failed; calls in flight were failed.
    Broken(Error),
}

/// Writes commands as they come and hands replies back in order until the connection fails.
async fn serve(
    stream: TcpStream,
    first: Job,
    rx: &mut mpsc::Receiver<Job>,
    stuck_after: Duration,
) -> Ended {
    let (mut rd, mut wr) = stream.into_split();
    let mut pending: VecDeque<(oneshot::Sender<Result<Value, Error>>, Instant)> = VecDeque::new();
    let mut rbuf = BytesMut::with_capacity(4096);
    let mut wbuf = Vec::with_capacity(4096);
    let mut next = Some(first);
    let broken = |pending: &mut VecDeque<(oneshot::Sender<Result<Value, Error>>, Instant)>,
                  e: Error| {
        for (reply, _) in pending.drain(..) {
            let _ = reply.send(Err(e.clone()));
        }
        Ended::Broken(e)
    };
    loop {
        let mut batch = 0;
        while let Some(job) = next
            .take()
            .or_else(|| (batch < 256).then(|| rx.try_recv().ok()).flatten())
        {
            batch += 1;
            // A caller that already gave up: never run its command.
            if job.reply.is_closed() {
                continue;
            }
            wbuf.extend_from_slice(&job.frame);
            pending.push_back((job.reply, Instant::now()));
        }
        if !wbuf.is_empty() {
            let written = tokio::time::timeout(stuck_after, wr.write_all(&wbuf)).await;
            wbuf.clear();
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return broken(&mut pending, Error::Io(e.to_string())),
                Err(_) => {
                    return broken(&mut pending, Error::Io("write timed out".to_owned()));
                }
            }
        }
        let stuck_at = pending.front().map(|p| p.1 + stuck_after);
        tokio::select! {
            read = rd.read_buf(&mut rbuf) => match read {
                Ok(0) => return broken(&mut pending, Error::Io("closed by the server".to_owned())),
                Err(e) => return broken(&mut pending, Error::Io(e.to_string())),
                Ok(_) => loop {
                    match parse(&rbuf) {
                        Ok(Some((v, used))) => {
                            rbuf.advance(used);
                            let Some((reply, _)) = pending.pop_front() else {
                                return broken(&mut pending, Error::Protocol("a reply nobody asked for".to_owned()));
                            };
                            let _ = reply.send(Ok(v));
                        }
                        Ok(None) => break,
                        Err(e) => return broken(&mut pending, Error::Protocol(e)),
                    }
                },
            },
            job = rx.recv() => match job {
                Some(job) => next = Some(job),
                None => {
                    for (reply, _) in pending.drain(..) {
                        let _ = reply.send(Err(Error::Io("client closed".to_owned())));
                    }
                    return Ended::Closed;
                }
            },
            () = async {
                match stuck_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => return broken(&mut pending, Error::Io("the server stopped answering".to_owned())),
        }
    }
}

/// A Lua script run by `EVALSHA`, loaded on first use (`SCRIPT LOAD`) and sent whole by
/// `EVAL` when the server does not know it (`NOSCRIPT`: a restart, `SCRIPT FLUSH`, a
/// fail-over to a replica that never saw it).
#[derive(Debug)]
pub struct Script {
    body: &'static str,
    sha: Mutex<Option<Arc<str>>>,
}

impl Script {
    /// A script; nothing is sent yet.
    pub const fn new(body: &'static str) -> Self {
        Self {
            body,
            sha: parking_lot::const_mutex(None),
        }
    }

    /// Runs the script with `keys` and `args`.
    pub async fn run(
        &self,
        client: &Client,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<Value, Error> {
        let sha = self.sha.lock().clone();
        let sha = match sha {
            Some(s) => s,
            None => {
                let loaded = client
                    .call(&[b"SCRIPT", b"LOAD", self.body.as_bytes()])
                    .await?;
                let Value::Data(d) = loaded else {
                    return Err(Error::Protocol(
                        "SCRIPT LOAD did not return a digest".into(),
                    ));
                };
                let s: Arc<str> = Arc::from(String::from_utf8_lossy(&d).as_ref());
                *self.sha.lock() = Some(Arc::clone(&s));
                s
            }
        };
        let numkeys = keys.len().to_string();
        let mut argv: Vec<&[u8]> = Vec::with_capacity(3 + keys.len() + args.len());
        argv.extend_from_slice(&[b"EVALSHA", sha.as_bytes(), numkeys.as_bytes()]);
        argv.extend_from_slice(keys);
        argv.extend_from_slice(args);
        match client.call(&argv).await {
            Err(Error::Server(e)) if e.starts_with("NOSCRIPT") => {
                argv[0] = b"EVAL";
                argv[1] = self.body.as_bytes();
                client.call(&argv).await
            }
            other => other,
        }
    }

    /// Makes the next run believe the server lost the script (tests of the fall-back).
    #[cfg(test)]
    pub(crate) fn forget_on_server(&self) {
        *self.sha.lock() = Some(Arc::from("0000000000000000000000000000000000000000"));
    }
}

#[cfg(test)]
pub(crate) mod tests;
