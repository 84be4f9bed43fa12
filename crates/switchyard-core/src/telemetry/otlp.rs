//! OpenTelemetry traces over OTLP/HTTP (JSON encoding), off unless configured.
//!
//! Each request becomes a server span, and each upstream attempt a client span under it, named
//! and attributed after the GenAI semantic conventions (`chat gpt-4o`, `gen_ai.request.model`,
//! `gen_ai.usage.input_tokens`, ...). A client's W3C `traceparent` makes the request span its
//! child; each attempt sends its own `traceparent` upstream, so a provider that traces sees the
//! gateway as the caller.
//!
//! Spans are assembled when the request is logged (they need its end), handed to a bounded
//! queue, and exported in batches by one background task: a slow or absent collector costs the
//! request path one `try_send`. Traces are sampled telemetry, not records: when the queue is
//! full a span is dropped and counted (the request log, not traces, is the lossless record).
//! The JSON encoding avoids a protobuf toolchain; every OTLP/HTTP receiver accepts it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

/// Spans waiting for export; beyond this, new spans are dropped (and counted).
const QUEUE: usize = 8192;
/// Spans per export request.
const BATCH: usize = 512;
/// Longest a span waits before its batch is sent.
const LINGER: Duration = Duration::from_millis(500);
/// Longest one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Validated `telemetry.otlp` settings.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// Full URL of the traces endpoint (`.../v1/traces`).
    pub traces_url: http::Uri,
    /// Extra headers sent with every export (e.g. a collector's auth token; values sensitive).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `service.name` of the resource.
    pub service_name: String,
}

/// A W3C trace context (`traceparent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace.
    pub trace_id: [u8; 16],
    /// The caller's span.
    pub span_id: [u8; 8],
    /// Whether the caller sampled this trace.
    pub sampled: bool,
}

impl TraceParent {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; anything else (or all-zero ids, which the spec
    /// declares invalid) is `None`, and the request starts a trace of its own.
    pub fn parse(v: &str) -> Option<Self> {
        let mut parts = v.trim().split('-');
        let version = parts.next()?;
        let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
        // Version 00 has exactly four fields; later versions may append more.
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id: [u8; 16] = hex_decode(trace)?;
        let span_id: [u8; 8] = hex_decode(span)?;
        let [flags]: [u8; 1] = hex_decode(flags)?;
        hex_decode::<1>(version)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The header value naming `span_id` as the caller within this trace.
    pub fn header(trace_id: &[u8; 16], span_id: &[u8; 8]) -> HeaderValue {
        let v = format!("00-{}-{}-01", hex(trace_id), hex(span_id));
        HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn hex_decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2
        || !s
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Fresh random ids (uuid v7's random bits; ids need uniqueness, not secrecy).
fn random_bytes<const N: usize>() -> [u8; N] {
    let a = uuid::Uuid::now_v7().into_bytes();
    let b = uuid::Uuid::now_v7().into_bytes();
    let mut out = [0u8; N];
    // The last 8 bytes of a v7 uuid are (almost all) random; use two of them.
    for (i, o) in out.iter_mut().enumerate() {
        *o = if i < 8 { a[8 + i] } else { b[i] };
    }
    out
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

/// One finished span, ready for export.
#[derive(Debug, Clone)]
pub struct SpanData {
    /// The trace it belongs to.
    pub trace_id: [u8; 16],
    /// Its id.
    pub span_id: [u8; 8],
    /// Its parent's id, if any.
    pub parent: Option<[u8; 8]>,
    /// Span name.
    pub name: String,
    /// Server (the request) or client (an upstream attempt).
    pub kind: SpanKind,
    /// Start, ns since the epoch.
    pub start_ns: u64,
    /// End, ns since the epoch.
    pub end_ns: u64,
    /// Attributes.
    pub attrs: Vec<(&'static str, Attr)>,
    /// The error, when the span failed.
    pub error: Option<String>,
}

/// The span kinds the gateway emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// The request as received from the client.
    Server,
    /// A request to an upstream provider.
    Client,
}

/// The exporter handle shared by every worker.
#[derive(Debug)]
pub struct Tracer {
    tx: mpsc::Sender<Msg>,
    dropped: AtomicU64,
    exported: Arc<AtomicU64>,
}

enum Msg {
    Spans(Vec<SpanData>),
    Flush(oneshot::Sender<()>),
}

impl Tracer {
    /// Starts the exporter task on the current runtime.
    pub fn start(cfg: OtlpConfig, connect_timeout: Duration) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let exported = Arc::new(AtomicU64::new(0));
        let client = crate::http_client::build(connect_timeout);
        tokio::spawn(export_loop(cfg, client, rx, Arc::clone(&exported)));
        Arc::new(Self {
            tx,
            dropped: AtomicU64::new(0),
            exported,
        })
    }

    /// Queues a request's spans; drops them (counted) when the exporter is behind.
    pub fn submit(&self, spans: Vec<SpanData>) {
        let n = spans.len() as u64;
        if self.tx.try_send(Msg::Spans(spans)).is_err() {
            let before = self.dropped.fetch_add(n, Ordering::Relaxed);
            // One warning per thousand dropped spans, not one per request.
            if before / 1000 != (before + n) / 1000 || before == 0 {
                tracing::warn!(
                    dropped = before + n,
                    "trace export queue full; spans dropped"
                );
            }
        }
    }

    /// Sends everything queued so far, waiting up to `within` (graceful shutdown).
    pub async fn flush(&self, within: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = tokio::time::timeout(within, rx).await;
        }
    }

    /// Spans dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Spans accepted by the collector.
    pub fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }
}

async fn export_loop(
    cfg: OtlpConfig,
    client: crate::http_client::HttpClient,
    mut rx: mpsc::Receiver<Msg>,
    exported: Arc<AtomicU64>,
) {
    let mut batch: Vec<SpanData> = Vec::new();
    loop {
        let msg = if batch.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(LINGER, rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    send_batch(&cfg, &client, std::mem::take(&mut batch), &exported).await;
                    continue;
                }
            }
        };
        match msg {
            None => {
                send_batch(&cfg, &client, batch, &exported).await;
                return;
            }
            Some(Msg::Spans(spans)) => {
                batch.extend(spans);
                if batch.len() >= BATCH {
                    send_batch(&cfg, &client, std::mem::take(&mut batch), &exported).await;
                }
            }
            Some(Msg::Flush(done)) => {
                send_batch(&cfg, &client, std::mem::take(&mut batch), &exported).await;
                let _ = done.send(());
            }
        }
    }
}

async fn send_batch(
    cfg: &OtlpConfig,
    client: &crate::http_client::HttpClient,
    batch: Vec<SpanData>,
    exported: &AtomicU64,
) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len() as u64;
    let body = encode(&cfg.service_name, &batch);
    let mut req = match Request::post(cfg.traces_url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "trace export request could not be built");
            return;
        }
    };
    for (k, v) in &cfg.headers {
        req.headers_mut().insert(k.clone(), v.clone());
    }
    let result = tokio::time::timeout(EXPORT_TIMEOUT, async {
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        // Read the body so the connection goes back to the pool.
        let _ = resp.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("collector answered {status}"))
        }
    })
    .await;
    match result {
        Ok(Ok(())) => {
            exported.fetch_add(n, Ordering::Relaxed);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, spans = n, "trace export failed"),
        Err(_) => tracing::warn!(spans = n, "trace export timed out"),
    }
}

/// Encodes spans as an OTLP `ExportTraceServiceRequest` in its JSON mapping (ids as hex,
/// 64-bit integers as strings, enums as numbers).
pub fn encode(service_name: &str, spans: &[SpanData]) -> Vec<u8> {
    let spans: Vec<Value> = spans.iter().map(span_json).collect();
    let doc = json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                attr_json("service.name", &Attr::Str(service_name.to_owned())),
                attr_json("service.version", &Attr::Str(env!("CARGO_PKG_VERSION").to_owned())),
            ]},
            "scopeSpans": [{
                "scope": {"name": "switchyard", "version": env!("CARGO_PKG_VERSION")},
                "spans": spans,
            }],
        }],
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

fn span_json(s: &SpanData) -> Value {
    let mut v = json!({
        "traceId": hex(&s.trace_id),
        "spanId": hex(&s.span_id),
        "name": s.name,
        "kind": match s.kind { SpanKind::Server => 2, SpanKind::Client => 3 },
        "startTimeUnixNano": s.start_ns.to_string(),
        "endTimeUnixNano": s.end_ns.max(s.start_ns).to_string(),
        "attributes": s.attrs.iter().map(|(k, a)| attr_json(k, a)).collect::<Vec<_>>(),
        "status": match &s.error {
            None => json!({"code": 1}),
            Some(msg) => json!({"code": 2, "message": msg}),
        },
    });
    if let (Some(p), Some(obj)) = (s.parent, v.as_object_mut()) {
        obj.insert("parentSpanId".into(), Value::String(hex(&p)));
    }
    v
}

fn attr_json(key: &str, a: &Attr) -> Value {
    let value = match a {
        Attr::Str(s) => json!({"stringValue": s}),
        Attr::Int(i) => json!({"intValue": i.to_string()}),
        Attr::Float(f) => json!({"doubleValue": f}),
        Attr::Bool(b) => json!({"boolValue": b}),
    };
    json!({"key": key, "value": value})
}

/// An upstream attempt being traced.
#[derive(Debug, Clone)]
struct AttemptSpan {
    span_id: [u8; 8],
    start_ns: u64,
    end_ns: Option<u64>,
    provider_kind: &'static str,
    provider: Arc<str>,
    model: Arc<str>,
    error: Option<(&'static str, String)>,
}

/// The trace of one request: its ids, and the attempts made so far.
#[derive(Debug, Clone)]
pub struct RequestTrace {
    tracer: Arc<Tracer>,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    /// The client's `traceparent`, when it asked not to sample: relayed, nothing recorded.
    unsampled: Option<HeaderValue>,
    start_ns: u64,
    attempts: Vec<AttemptSpan>,
}

/// What the finished request adds to its span.
#[derive(Debug)]
pub struct Finished<'a> {
    /// `chat`, `embeddings`, ... (GenAI operation name).
    pub operation: &'static str,
    /// The request id.
    pub request_id: &'a str,
    /// The model the client asked for.
    pub request_model: Option<&'a str>,
    /// The upstream model that answered.
    pub response_model: Option<&'a str>,
    /// The provider that answered (its GenAI name, e.g. `openai`).
    pub provider_kind: Option<&'static str>,
    /// HTTP status returned to the client.
    pub status: u16,
    /// How the request ended.
    pub outcome: &'static str,
    /// Error kind and message, when it failed.
    pub error: Option<(&'static str, String)>,
    /// Usage: input, output tokens.
    pub tokens: Option<(u64, u64)>,
    /// Whether it streamed.
    pub stream: bool,
    /// The routing rule.
    pub route: Option<&'a str>,
}

impl RequestTrace {
    /// Starts the trace of a request, continuing the client's trace when it sent a valid
    /// `traceparent`. A trace the client did not sample records nothing, but its
    /// `traceparent` still travels upstream unchanged, as W3C asks of intermediaries.
    pub fn start(tracer: &Arc<Tracer>, traceparent: Option<&HeaderValue>) -> Self {
        let parent = traceparent
            .and_then(|v| v.to_str().ok())
            .and_then(TraceParent::parse);
        Self {
            tracer: Arc::clone(tracer),
            trace_id: parent.map_or_else(random_bytes, |p| p.trace_id),
            span_id: random_bytes(),
            parent: parent.map(|p| p.span_id),
            unsampled: parent
                .filter(|p| !p.sampled)
                .and_then(|_| traceparent.cloned()),
            start_ns: now_ns(),
            attempts: Vec::new(),
        }
    }

    /// Opens an attempt span and returns the `traceparent` to send upstream with it.
    pub fn begin_attempt(
        &mut self,
        provider_kind: &'static str,
        provider: &Arc<str>,
        model: &Arc<str>,
    ) -> HeaderValue {
        if let Some(v) = &self.unsampled {
            return v.clone();
        }
        let span_id = random_bytes();
        self.attempts.push(AttemptSpan {
            span_id,
            start_ns: now_ns(),
            end_ns: None,
            provider_kind,
            provider: Arc::clone(provider),
            model: Arc::clone(model),
            error: None,
        });
        TraceParent::header(&self.trace_id, &span_id)
    }

    /// Closes the latest attempt span, with its error if it failed. A successful stream's
    /// attempt stays open and ends with the request.
    pub fn end_attempt(&mut self, error: Option<(&'static str, String)>) {
        if let Some(a) = self.attempts.last_mut().filter(|a| a.end_ns.is_none()) {
            a.end_ns = Some(now_ns());
            a.error = error;
        }
    }

    /// The trace id, hex (for logs).
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// Builds the request's spans and hands them to the exporter.
    pub fn finish(self, f: Finished<'_>) {
        if self.unsampled.is_some() {
            return;
        }
        let end = now_ns();
        let mut spans = Vec::with_capacity(1 + self.attempts.len());
        let mut attrs = vec![
            ("gen_ai.operation.name", Attr::Str(f.operation.to_owned())),
            ("switchyard.request_id", Attr::Str(f.request_id.to_owned())),
            ("http.response.status_code", Attr::Int(i64::from(f.status))),
            ("switchyard.outcome", Attr::Str(f.outcome.to_owned())),
            ("gen_ai.request.stream", Attr::Bool(f.stream)),
        ];
        if let Some(m) = f.request_model {
            attrs.push(("gen_ai.request.model", Attr::Str(m.to_owned())));
        }
        if let Some(m) = f.response_model {
            attrs.push(("gen_ai.response.model", Attr::Str(m.to_owned())));
        }
        if let Some(p) = f.provider_kind {
            attrs.push(("gen_ai.provider.name", Attr::Str(p.to_owned())));
        }
        if let Some((input, output)) = f.tokens {
            attrs.push(("gen_ai.usage.input_tokens", Attr::Int(input as i64)));
            attrs.push(("gen_ai.usage.output_tokens", Attr::Int(output as i64)));
        }
        if let Some(r) = f.route {
            attrs.push(("switchyard.route", Attr::Str(r.to_owned())));
        }
        attrs.push(("switchyard.attempts", Attr::Int(self.attempts.len() as i64)));
        if let Some((kind, _)) = &f.error {
            attrs.push(("error.type", Attr::Str((*kind).to_owned())));
        }
        spans.push(SpanData {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent: self.parent,
            name: span_name(f.operation, f.request_model),
            kind: SpanKind::Server,
            start_ns: self.start_ns,
            end_ns: end,
            attrs,
            error: f.error.as_ref().map(|(_, msg)| msg.clone()),
        });
        let last = self.attempts.len().saturating_sub(1);
        for (i, a) in self.attempts.into_iter().enumerate() {
            let mut attrs = vec![
                ("gen_ai.operation.name", Attr::Str(f.operation.to_owned())),
                (
                    "gen_ai.provider.name",
                    Attr::Str(a.provider_kind.to_owned()),
                ),
                ("gen_ai.request.model", Attr::Str(a.model.to_string())),
                ("switchyard.provider", Attr::Str(a.provider.to_string())),
            ];
            // The last attempt is the one that answered, when the request succeeded.
            if i == last && f.error.is_none() && a.error.is_none() {
                if let Some((input, output)) = f.tokens {
                    attrs.push(("gen_ai.usage.input_tokens", Attr::Int(input as i64)));
                    attrs.push(("gen_ai.usage.output_tokens", Attr::Int(output as i64)));
                }
            }
            if let Some((kind, _)) = &a.error {
                attrs.push(("error.type", Attr::Str((*kind).to_owned())));
            }
            spans.push(SpanData {
                trace_id: self.trace_id,
                span_id: a.span_id,
                parent: Some(self.span_id),
                name: span_name(f.operation, Some(&a.model)),
                kind: SpanKind::Client,
                start_ns: a.start_ns,
                end_ns: a.end_ns.unwrap_or(end),
                attrs,
                error: a.error.map(|(_, msg)| msg),
            });
        }
        self.tracer.submit(spans);
    }
}

/// `{operation} {model}`, as the GenAI conventions name spans.
fn span_name(operation: &str, model: Option<&str>) -> String {
    match model {
        Some(m) => format!("{operation} {m}"),
        None => operation.to_owned(),
    }
}

#[cfg(test)]
mod tests;
