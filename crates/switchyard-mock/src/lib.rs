//! A mock LLM provider that speaks real provider wire formats, with latency and fault knobs.
//!
//! Switchyard's integration tests, its built-in demo provider and its load benchmark all need
//! an upstream that behaves like a real provider byte for byte (JSON shapes, SSE framing,
//! error bodies, rate-limit headers) yet is local, deterministic and much faster than the
//! gateway in front of it. This crate is that upstream.
//!
//! Layout: this file holds the configuration, the router and the headers every response
//! shares; each provider format has its own module (`openai`); `knobs` parses the per-request
//! `"mock"` object; `sse` is the streaming body; `text` makes fake text, ids and token counts;
//! `limits` tracks the fake rate-limit budget.
//!
//! Invariants: no per-request logging, no lock held across an await, no panics on any input.

#![forbid(unsafe_code)]

mod knobs;
mod limits;
mod openai;
mod sse;
mod text;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use http::{HeaderMap, HeaderName, HeaderValue};

/// How the mock behaves when a request does not say otherwise (see the `"mock"` body knobs).
#[derive(Clone, Debug, Default)]
pub struct MockConfig {
    /// Delay before the response headers (non-stream: before the whole response).
    pub latency: Duration,
    /// Delay between streamed chunks.
    pub chunk_delay: Duration,
    /// When set, requests must carry `Authorization: Bearer <key>` (or `api-key: <key>` header, Azure style), else 401 in OpenAI's shape.
    pub api_key: Option<String>,
}

/// Builds the mock's routes, so callers can serve them or drive them in-process.
///
/// Serves OpenAI's `/v1/chat/completions`, `/v1/embeddings`, `/v1/models` and
/// `/v1/models/{id}`, plus Azure's `/openai/deployments/{deployment}/chat/completions` and
/// `/openai/deployments/{deployment}/embeddings`.
pub fn router(cfg: MockConfig) -> Router {
    let shared = Arc::new(Shared {
        cfg,
        window: limits::RateWindow::default(),
    });
    Router::new()
        .merge(openai::routes())
        .fallback(openai::not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            common_headers,
        ))
        .with_state(shared)
}

/// Serves until the listener's task is dropped/aborted.
///
/// Sets `TCP_NODELAY` on every connection: streamed events are small writes, and Nagle's
/// algorithm would otherwise hold them back and distort latency measurements.
pub async fn serve(listener: tokio::net::TcpListener, cfg: MockConfig) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    let listener = listener.tap_io(|tcp| {
        // Failing to set the option only costs latency, never correctness.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(cfg)).await
}

/// State shared by every handler.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: MockConfig,
    window: limits::RateWindow,
}

/// What a handler tells the header middleware about its response, via response extensions.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Accounting {
    /// Tokens to charge against the per-minute token budget.
    pub(crate) tokens: u64,
    /// A `retry_after` knob, which also drives `x-ratelimit-reset-requests`.
    pub(crate) retry_after: Option<u64>,
    /// Report the request budget as spent (a simulated 429).
    pub(crate) exhausted: bool,
}

/// Returns the wall clock as Unix milliseconds (zero if the clock is before 1970).
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The result of checking a request's credentials against [`MockConfig::api_key`].
pub(crate) enum AuthOutcome {
    /// No key configured, or the right key was presented.
    Allowed,
    /// No credential at all.
    Missing,
    /// A credential that does not match.
    Wrong,
}

impl Shared {
    /// Checks the configured API key. Accepts OpenAI's bearer token or Azure's `api-key`
    /// header, so one mock serves both the OpenAI and the Azure flavour of the gateway.
    pub(crate) fn check_auth(&self, headers: &HeaderMap) -> AuthOutcome {
        let Some(key) = self.cfg.api_key.as_deref() else {
            return AuthOutcome::Allowed;
        };
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v));
        let azure = headers.get("api-key").and_then(|v| v.to_str().ok());
        match (bearer, azure) {
            (None, None) => AuthOutcome::Missing,
            (b, a) if b == Some(key) || a == Some(key) => AuthOutcome::Allowed,
            _ => AuthOutcome::Wrong,
        }
    }
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static PROCESSING_MS: HeaderName = HeaderName::from_static("openai-processing-ms");
static OPENAI_VERSION: HeaderName = HeaderName::from_static("openai-version");
static LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
static LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
static REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
static REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
static RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
static RESET_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");

/// Adds the headers OpenAI puts on every response: request id, processing time, API version
/// and the rate-limit family. Done in one middleware so no response path can forget them.
async fn common_headers(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let start = tokio::time::Instant::now();
    let mut resp = next.run(req).await;
    let acct = resp
        .extensions_mut()
        .remove::<Accounting>()
        .unwrap_or_default();
    let snap = shared.window.record(unix_millis(), acct.tokens);
    let elapsed = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);

    let (remaining_requests, reset_requests_ms) = match (acct.exhausted, acct.retry_after) {
        (true, retry) => (
            0,
            retry.map_or(DEFAULT_RETRY_MS, |s| s.saturating_mul(1000)),
        ),
        (false, Some(s)) => (snap.remaining_requests, s.saturating_mul(1000)),
        (false, None) => (snap.remaining_requests, snap.reset_requests_ms),
    };

    let h = resp.headers_mut();
    h.insert(
        X_REQUEST_ID.clone(),
        header_str(text::random_hex_id("req_")),
    );
    h.insert(PROCESSING_MS.clone(), HeaderValue::from(elapsed));
    h.insert(
        OPENAI_VERSION.clone(),
        HeaderValue::from_static("2020-10-01"),
    );
    h.insert(
        LIMIT_REQUESTS.clone(),
        HeaderValue::from(limits::LIMIT_REQUESTS),
    );
    h.insert(
        LIMIT_TOKENS.clone(),
        HeaderValue::from(limits::LIMIT_TOKENS),
    );
    h.insert(
        REMAINING_REQUESTS.clone(),
        HeaderValue::from(remaining_requests),
    );
    h.insert(
        REMAINING_TOKENS.clone(),
        HeaderValue::from(snap.remaining_tokens),
    );
    h.insert(
        RESET_REQUESTS.clone(),
        header_str(limits::format_duration_ms(reset_requests_ms)),
    );
    h.insert(
        RESET_TOKENS.clone(),
        header_str(limits::format_duration_ms(snap.reset_tokens_ms)),
    );
    resp
}

/// Reset time reported for a simulated 429 without an explicit `retry_after`: one second,
/// matching the default `Retry-After`.
const DEFAULT_RETRY_MS: u64 = 1000;

/// Header value from text we generated ourselves (always visible ASCII).
fn header_str(s: String) -> HeaderValue {
    HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests;
