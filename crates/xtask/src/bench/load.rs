//! Load generators (open loop at a fixed rate, closed loop at a fixed concurrency) and the
//! statistics computed from their samples.
//!
//! The generator shares two cores with the mock, the gateway and nginx, so whatever it spends
//! per request is taken from the systems under test. Per request it clones one shared body,
//! reuses a pooled keep-alive connection, and pushes one `u32` (microseconds) per sample.
//! Nothing is parsed beyond what the checks need.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

/// A request that has not finished after this long counts as a timeout error. Every run
/// is bounded by its duration plus this.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The open loop stops sending (and counts the sends as `not_sent` errors) once this many
/// requests are outstanding. A stalled target then cannot make the generator grow without
/// bound or run out of file descriptors.
const MAX_IN_FLIGHT: usize = 4096;

/// The tick on which the open loop sends. Requests due between two ticks leave together,
/// but their latency is still measured from their own scheduled time.
const TICK: Duration = Duration::from_millis(1);

/// The HTTP/1.1 client used for one target; each target gets its own connection pool.
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Builds a keep-alive, pooled HTTP/1.1 client. `TCP_NODELAY` is on because small requests
/// and responses would otherwise wait for Nagle, which would dwarf the gateway's overhead.
pub(crate) fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// One kind of request sent to one target, shared by all the tasks of a run.
pub(crate) struct Job {
    pub(crate) client: HttpClient,
    pub(crate) uri: Uri,
    pub(crate) body: Bytes,
    /// Whether the response is an SSE stream, which is then checked and timed to its first
    /// event.
    pub(crate) stream: bool,
}

/// How long a run warms up (sent, not recorded) and then measures.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Phase {
    pub(crate) warmup: Duration,
    pub(crate) measure: Duration,
}

/// What the run recorded: latencies in microseconds, and the errors by kind.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    /// Time to the end of the response body.
    pub(crate) total_us: Vec<u32>,
    /// Time to the first body chunk holding an SSE `data:` field (streams only).
    pub(crate) ttft_us: Vec<u32>,
    pub(crate) errors: ErrorCounts,
}

impl Samples {
    /// Adds another round's samples to these.
    pub(crate) fn absorb(&mut self, other: Samples) {
        self.total_us.extend(other.total_us);
        self.ttft_us.extend(other.ttft_us);
        let (a, b) = (&mut self.errors, other.errors);
        a.status += b.status;
        a.transport += b.transport;
        a.timeout += b.timeout;
        a.bad_stream += b.bad_stream;
        a.not_sent += b.not_sent;
        if a.first.is_none() {
            a.first = b.first;
        }
    }

    fn with_capacity(n: usize, stream: bool) -> Self {
        Self {
            total_us: Vec::with_capacity(n),
            ttft_us: Vec::with_capacity(if stream { n } else { 0 }),
            errors: ErrorCounts::default(),
        }
    }

    /// Records the result of one request whose latency counts from `t0`.
    fn record(&mut self, t0: Instant, result: Result<Timing, Failure>) {
        match result {
            Ok(t) => {
                self.total_us
                    .push(micros(t.end.saturating_duration_since(t0)));
                if let Some(first) = t.first_event {
                    self.ttft_us
                        .push(micros(first.saturating_duration_since(t0)));
                }
            }
            Err(f) => self.errors.add(f),
        }
    }

    fn merge(&mut self, other: Samples) {
        self.total_us.extend(other.total_us);
        self.ttft_us.extend(other.ttft_us);
        self.errors.merge(other.errors);
    }
}

/// Errors, counted apart from the latencies so that a fast failure never improves a
/// percentile.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct ErrorCounts {
    /// Responses with a status other than 200.
    pub(crate) status: u64,
    /// Connect, write or read errors.
    pub(crate) transport: u64,
    /// Requests that did not finish within `REQUEST_TIMEOUT`.
    pub(crate) timeout: u64,
    /// Streams without a `data:` event or not ending with `data: [DONE]`.
    pub(crate) bad_stream: u64,
    /// Open-loop sends skipped because `MAX_IN_FLIGHT` requests were outstanding.
    pub(crate) not_sent: u64,
    /// The first error seen, to make the cause of a failing run visible in the report.
    pub(crate) first: Option<String>,
}

impl ErrorCounts {
    pub(crate) fn total(&self) -> u64 {
        self.status + self.transport + self.timeout + self.bad_stream + self.not_sent
    }

    fn add(&mut self, f: Failure) {
        let slot = match f.kind {
            FailureKind::Status => &mut self.status,
            FailureKind::Transport => &mut self.transport,
            FailureKind::Timeout => &mut self.timeout,
            FailureKind::BadStream => &mut self.bad_stream,
            FailureKind::NotSent => &mut self.not_sent,
        };
        *slot += 1;
        if self.first.is_none() {
            self.first = Some(f.detail);
        }
    }

    fn merge(&mut self, other: ErrorCounts) {
        self.status += other.status;
        self.transport += other.transport;
        self.timeout += other.timeout;
        self.bad_stream += other.bad_stream;
        self.not_sent += other.not_sent;
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum FailureKind {
    Status,
    Transport,
    Timeout,
    BadStream,
    NotSent,
}

/// A failed request. The detail is only formatted on failure, never on the happy path.
#[derive(Debug)]
struct Failure {
    kind: FailureKind,
    detail: String,
}

impl Failure {
    fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    fn transport(e: impl Into<anyhow::Error>) -> Self {
        Self::new(FailureKind::Transport, format!("{:#}", e.into()))
    }

    fn joined(e: JoinError) -> Self {
        Self::new(FailureKind::Transport, format!("request task failed: {e}"))
    }
}

/// When a successful response ended and, for a stream, when its first event arrived.
#[derive(Clone, Copy, Debug)]
struct Timing {
    end: Instant,
    first_event: Option<Instant>,
}

/// Sends one request and reads the whole response, so the connection goes back to the pool
/// ready for reuse.
async fn exchange(job: &Job) -> Result<Timing, Failure> {
    let req = Request::post(job.uri.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(job.body.clone()))
        .map_err(Failure::transport)?;
    let resp = job.client.request(req).await.map_err(Failure::transport)?;
    let status = resp.status();
    let mut body = resp.into_body();
    if status != StatusCode::OK {
        // Error bodies are small; keep the start of one so the report says what went wrong.
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        return Err(Failure::new(
            FailureKind::Status,
            format!("HTTP {status}: {text}"),
        ));
    }
    let mut check = job.stream.then(StreamCheck::default);
    let mut first_event = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Failure::transport)?;
        if let (Some(check), Some(data)) = (check.as_mut(), frame.data_ref()) {
            if check.feed(data) {
                first_event = Some(Instant::now());
            }
        }
    }
    let end = Instant::now();
    if let Some(check) = check {
        if first_event.is_none() {
            return Err(Failure::new(
                FailureKind::BadStream,
                "stream had no `data:` event",
            ));
        }
        if !check.ended_with_done() {
            return Err(Failure::new(
                FailureKind::BadStream,
                "stream did not end with `data: [DONE]`",
            ));
        }
    }
    Ok(Timing { end, first_event })
}

/// Sends one request with the timeout applied.
async fn timed_exchange(job: &Job) -> Result<Timing, Failure> {
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange(job)).await {
        Ok(r) => r,
        Err(_) => Err(Failure::new(
            FailureKind::Timeout,
            format!("no complete response within {REQUEST_TIMEOUT:?}"),
        )),
    }
}

/// Watches an SSE body as it arrives: spots the first `data:` field and remembers the tail
/// to check the terminating `data: [DONE]`. It looks across chunk boundaries, since
/// neither the gateway nor nginx promises to keep an event in one chunk.
#[derive(Debug, Default)]
pub(crate) struct StreamCheck {
    seen_data: bool,
    /// The last `TAIL` bytes seen.
    tail: Vec<u8>,
}

impl StreamCheck {
    /// Long enough for `data: [DONE]` followed by `\r\n\r\n`, with room to spare.
    const TAIL: usize = 32;

    /// Feeds one body chunk. Returns true if this chunk completes the stream's first
    /// `data:` field.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> bool {
        let mut first_now = false;
        if !self.seen_data {
            // A field split over two chunks shows up in the old tail plus the new head.
            let head = &chunk[..chunk.len().min(4)];
            let mut seam = self.tail[self.tail.len().saturating_sub(4)..].to_vec();
            seam.extend_from_slice(head);
            if contains(&seam, b"data:") || contains(chunk, b"data:") {
                self.seen_data = true;
                first_now = true;
            }
        }
        if chunk.len() >= Self::TAIL {
            self.tail.clear();
            self.tail
                .extend_from_slice(&chunk[chunk.len() - Self::TAIL..]);
        } else {
            self.tail.extend_from_slice(chunk);
            let excess = self.tail.len().saturating_sub(Self::TAIL);
            self.tail.drain(..excess);
        }
        first_now
    }

    /// True if the stream's last event was `data: [DONE]`.
    pub(crate) fn ended_with_done(&self) -> bool {
        let trimmed = self.tail.trim_ascii_end();
        trimmed.ends_with(b"data: [DONE]") || trimmed.ends_with(b"data:[DONE]")
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whole microseconds, saturating: a sample longer than 71 minutes cannot occur here.
fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Open loop: sends `rate` requests a second whatever the target does, for the warm-up and
/// then the measured phase, and records only requests scheduled in the measured phase.
///
/// Latency counts from each request's *scheduled* send time, not from when it actually left,
/// so a target (or a generator) that stalls is charged for the requests queued behind the
/// stall instead of hiding them (coordinated omission).
pub(crate) async fn open_loop(job: Arc<Job>, rate: u32, phase: Phase) -> Samples {
    let start = Instant::now();
    let warm_end = start + phase.warmup;
    let rate = u64::from(rate.max(1));
    let total = scheduled_count(rate, phase.warmup + phase.measure);
    let measured = scheduled_count(rate, phase.measure);
    let mut samples = Samples::with_capacity(to_usize(measured), job.stream);
    let mut in_flight: JoinSet<(Instant, bool, Result<Timing, Failure>)> = JoinSet::new();
    let mut tick = tokio::time::interval(TICK);
    // Missed ticks need no catching up: each tick sends everything that has fallen due.
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);

    let mut next = 0u64;
    while next < total {
        tick.tick().await;
        let now = Instant::now();
        while next < total {
            let at = start + schedule_offset(next, rate);
            if at > now {
                break;
            }
            next += 1;
            let record = at >= warm_end;
            if in_flight.len() >= MAX_IN_FLIGHT {
                if record {
                    samples.errors.add(Failure::new(
                        FailureKind::NotSent,
                        format!("{MAX_IN_FLIGHT} requests outstanding; send skipped"),
                    ));
                }
                continue;
            }
            let job = Arc::clone(&job);
            in_flight.spawn(async move { (at, record, timed_exchange(&job).await) });
        }
        while let Some(done) = in_flight.try_join_next() {
            absorb(&mut samples, done);
        }
    }
    // Every task carries its own timeout; the deadline only guards against a hung runtime.
    let deadline = Instant::now() + REQUEST_TIMEOUT + Duration::from_secs(1);
    loop {
        match tokio::time::timeout_at(deadline, in_flight.join_next()).await {
            Ok(Some(done)) => absorb(&mut samples, done),
            Ok(None) => break,
            Err(_) => {
                in_flight.abort_all();
                break;
            }
        }
    }
    samples
}

fn absorb(
    samples: &mut Samples,
    done: Result<(Instant, bool, Result<Timing, Failure>), JoinError>,
) {
    match done {
        Ok((at, true, result)) => samples.record(at, result),
        Ok((_, false, _)) => {}
        Err(e) => samples.errors.add(Failure::joined(e)),
    }
}

/// How many requests fall due in `d` at `rate` per second.
pub(crate) fn scheduled_count(rate: u64, d: Duration) -> u64 {
    u64::try_from(d.as_nanos().saturating_mul(u128::from(rate)) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// When request `i` is due, counted from the start; exact integer arithmetic so the
/// schedule does not drift over a long run.
pub(crate) fn schedule_offset(i: u64, rate: u64) -> Duration {
    let nanos = u128::from(i) * 1_000_000_000 / u128::from(rate.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Closed loop: `concurrency` workers each send a request as soon as their previous one
/// finishes. Records requests that complete inside the measured phase; the throughput is
/// their number over the phase's length.
pub(crate) async fn closed_loop(job: Arc<Job>, concurrency: usize, phase: Phase) -> Samples {
    let start = Instant::now();
    let warm_end = start + phase.warmup;
    let end = warm_end + phase.measure;
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let job = Arc::clone(&job);
        workers.spawn(async move {
            let mut local = Samples::default();
            while Instant::now() < end {
                let t0 = Instant::now();
                let result = timed_exchange(&job).await;
                let done = Instant::now();
                let failed = result.is_err();
                if done >= warm_end && done <= end {
                    local.record(t0, result);
                }
                if failed {
                    // A target that refuses connections would otherwise be hammered in a
                    // hot loop that starves the processes sharing the cores.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            local
        });
    }
    let mut samples = Samples::default();
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(local) => samples.merge(local),
            Err(e) => samples.errors.add(Failure::joined(e)),
        }
    }
    samples
}

/// Latency percentiles of one sample set, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct LatencyStats {
    pub(crate) count: usize,
    pub(crate) p50_us: u32,
    pub(crate) p90_us: u32,
    pub(crate) p99_us: u32,
    pub(crate) max_us: u32,
}

impl LatencyStats {
    /// Sorts `samples` in place and summarises them; `None` if there are none.
    pub(crate) fn from_samples(samples: &mut [u32]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        Some(Self {
            count: samples.len(),
            p50_us: percentile(samples, 50.0),
            p90_us: percentile(samples, 90.0),
            p99_us: percentile(samples, 99.0),
            max_us: samples.last().copied().unwrap_or(0),
        })
    }
}

/// The nearest-rank percentile of sorted samples: the smallest sample such that at least
/// `p` percent of all samples are at or below it. It is always an observed value, which
/// keeps a p99 over few samples honest instead of interpolating it downwards.
pub(crate) fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    // `n as f64` is exact for any sample count this benchmark can produce.
    let rank = ((p / 100.0) * n as f64).ceil();
    let rank = if rank.is_finite() && rank >= 1.0 {
        (rank as usize).min(n)
    } else {
        1
    };
    sorted.get(rank - 1).copied().unwrap_or(0)
}

/// Sends a single request and says why it failed, if it did: the readiness check run on
/// each target before its load.
pub(crate) async fn probe(job: &Job) -> Result<(), String> {
    timed_exchange(job).await.map(|_| ()).map_err(|f| f.detail)
}
