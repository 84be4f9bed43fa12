//! A mock LLM provider that speaks real provider wire formats, with latency and fault knobs.
//!
//! Switchyard's integration tests, its built-in demo provider and its load benchmark all need
//! an upstream that behaves like a real provider byte for byte (JSON shapes, SSE framing,
//! error bodies, rate-limit headers) yet is local, deterministic and much faster than the
//! gateway in front of it. This crate is that upstream.
//!
//! Layout: this file holds the configuration, the router and the headers every response
//! shares; each provider format has its own module (`openai` for OpenAI and Azure OpenAI,
//! `anthropic` for Anthropic's Messages API, `bedrock` for AWS Bedrock's Converse API with its
//! binary eventstream and SigV4 checks, `gemini` for Google's Gemini API on AI Studio and
//! Vertex AI); `knobs` parses the per-request `"mock"` object;
//! `sse` is the streaming body; `text` makes fake text, ids and token counts; `limits` tracks
//! the fake rate-limit budget and formats its reset times.
//!
//! Invariants: no per-request logging, no lock held across an await, no panics on any input.

#![forbid(unsafe_code)]

mod anthropic;
mod bedrock;
mod gemini;
mod knobs;
mod limits;
mod openai;
mod quota;
mod responses;
mod responses_sub;
mod sse;
mod stored_chat;
mod surface;
mod text;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

pub use bedrock::{BEDROCK_ACCESS_KEY_ID, BEDROCK_SECRET_ACCESS_KEY};
pub use quota::RequestQuota;

/// How the mock behaves when a request does not say otherwise (see the `"mock"` body knobs).
#[derive(Clone, Debug, Default)]
pub struct MockConfig {
    /// Delay before the response headers (non-stream: before the whole response).
    pub latency: Duration,
    /// Delay between streamed chunks.
    pub chunk_delay: Duration,
    /// When set, requests must present this key the way their provider expects, else 401 in
    /// that provider's shape: OpenAI routes take `Authorization: Bearer <key>` (or Azure's
    /// `api-key: <key>` header), Anthropic routes take `x-api-key: <key>`, Gemini's AI Studio
    /// routes take `x-goog-api-key: <key>` (or `?key=<key>`) and its Vertex AI routes
    /// `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// A request quota for this instance whose rate-limit headers count down to zero, then
    /// 429s until its window ends (see the `quota` module).
    pub quota: Option<RequestQuota>,
}

/// Builds the mock's routes, so callers can serve them or drive them in-process.
///
/// Serves OpenAI's `/v1/chat/completions` (and its stored completions: the list,
/// `/v1/chat/completions/{id}` and its `messages`, also under Azure's `/openai/v1/`),
/// `/v1/embeddings` and the Responses API
/// (`/v1/responses`, its stored-response routes and its `input_tokens` and `compact`
/// sub-resources, also under Azure's `/openai/v1/`); Bedrock's
/// `/model/{modelId}/converse` and `/model/{modelId}/converse-stream` (SigV4-signed); Azure's
/// `/openai/deployments/{deployment}/chat/completions` and
/// `/openai/deployments/{deployment}/embeddings`; Anthropic's `/v1/messages` and
/// `/v1/messages/count_tokens`; and `/v1/models` and `/v1/models/{id}`, which both OpenAI and
/// Anthropic define at the same path and which therefore answer in Anthropic's shape when the
/// request looks like an Anthropic client's (an `anthropic-version` header, or `x-api-key`
/// without `Authorization`) and in OpenAI's otherwise. Unknown paths get a 404 in OpenAI's
/// shape, except under `/v1/messages` or from Anthropic clients, which get Anthropic's.
/// Gemini's `generateContent`, `streamGenerateContent`, `countTokens`, `embedContent` and
/// `batchEmbedContents` are served under `/v1beta/models/` (AI Studio) and
/// `/v1/projects/{project}/locations/{location}/publishers/google/models/` (Vertex AI); unknown
/// paths there get Google's 404.
pub fn router(cfg: MockConfig) -> Router {
    let shared = Arc::new(Shared {
        cfg,
        window: limits::RateWindow::default(),
        schedules: parking_lot::Mutex::default(),
        quota: quota::QuotaState::default(),
        store: parking_lot::Mutex::default(),
        responses: parking_lot::Mutex::default(),
        chat_completions: parking_lot::Mutex::default(),
    });
    Router::new()
        .merge(openai::routes())
        .merge(responses::routes())
        .merge(responses_sub::routes())
        .merge(stored_chat::routes())
        .merge(anthropic::routes())
        .merge(bedrock::routes())
        .merge(gemini::routes())
        .merge(surface::routes())
        .route(
            "/v1/models",
            get(list_models).fallback(models_method_not_allowed),
        )
        .route(
            "/v1/models/{id}",
            get(get_model).fallback(models_method_not_allowed),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            common_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            knobs::schedule,
        ))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            quota::enforce,
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

// === routes shared by two formats ===

async fn list_models(State(shared): State<Arc<Shared>>, headers: HeaderMap, uri: Uri) -> Response {
    if anthropic::is_client(&headers) {
        anthropic::list_models(&shared, &headers, &uri)
    } else {
        openai::list_models(State(shared), headers).await
    }
}

async fn get_model(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if anthropic::is_client(&headers) {
        anthropic::get_model(&shared, &id, &headers)
    } else {
        openai::get_model(State(shared), Path(id), headers).await
    }
}

async fn models_method_not_allowed(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if anthropic::is_client(&headers) {
        anthropic::method_not_allowed(method, uri).await
    } else {
        openai::method_not_allowed(method, uri).await
    }
}

async fn not_found(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if bedrock::owns_path(uri.path()) {
        return bedrock::not_found(method, uri).await;
    }
    if gemini::owns_path(uri.path()) {
        return gemini::not_found(method, uri).await;
    }
    if anthropic::owns_path(uri.path()) || anthropic::is_client(&headers) {
        anthropic::not_found(method, uri).await
    } else {
        openai::not_found(method, uri).await
    }
}

/// State shared by every handler.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: MockConfig,
    window: limits::RateWindow,
    /// Requests seen per `x-mock-schedule` value, to pick each one's step.
    schedules: parking_lot::Mutex<std::collections::HashMap<String, usize>>,
    /// The request quota's state, when one is configured.
    quota: quota::QuotaState,
    /// Files and batches (see `surface`).
    store: parking_lot::Mutex<surface::Store>,
    /// Responses API responses, for its stored-response routes.
    pub(crate) responses: parking_lot::Mutex<responses::Stored>,
    /// Chat completions made with `store: true`, for the stored-completion routes.
    pub(crate) chat_completions: parking_lot::Mutex<stored_chat::Stored>,
}

/// What a handler tells the header middleware about its response, via response extensions.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Accounting {
    /// Tokens to charge against the per-minute token budget.
    pub(crate) tokens: u64,
    /// Of `tokens`, how many were generated; Anthropic reports input and output budgets
    /// separately, so the window needs the split.
    pub(crate) output_tokens: u64,
    /// A `retry_after` knob, which also drives `x-ratelimit-reset-requests`.
    pub(crate) retry_after: Option<u64>,
    /// Report the request budget as spent (a simulated 429).
    pub(crate) exhausted: bool,
}

/// Which provider's header family a response gets; handlers put it in the response's
/// extensions, and a response without one is OpenAI's (the mock's original format).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `x-request-id`, `openai-*` and `x-ratelimit-*` headers.
    #[default]
    OpenAi,
    /// `request-id`, `anthropic-organization-id` and `anthropic-ratelimit-*` headers.
    Anthropic,
    /// `x-amzn-RequestId` (Bedrock reports no rate-limit headers).
    Bedrock,
    /// Google's front-end headers (`server`, `vary`, `server-timing`, ...); Google sends no
    /// request id or rate-limit headers.
    Gemini,
}

/// The request id a handler already put in the body (Anthropic error bodies carry one), so
/// the `request-id` header the middleware adds can match it.
#[derive(Clone, Debug)]
pub(crate) struct RequestId(pub(crate) String);

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
    /// Anthropic routes use [`Shared::check_x_api_key`] instead.
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

    /// Checks the configured API key the way Anthropic does: only the `x-api-key` header
    /// counts, so a gateway that forwards an OpenAI-style bearer token to Anthropic fails here
    /// as it would against the real API.
    pub(crate) fn check_x_api_key(&self, headers: &HeaderMap) -> AuthOutcome {
        let Some(key) = self.cfg.api_key.as_deref() else {
            return AuthOutcome::Allowed;
        };
        match headers.get("x-api-key") {
            None => AuthOutcome::Missing,
            Some(v) if v.as_bytes() == key.as_bytes() => AuthOutcome::Allowed,
            Some(_) => AuthOutcome::Wrong,
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
static AMZN_REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
static REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
static ORGANIZATION_ID: HeaderName = HeaderName::from_static("anthropic-organization-id");
/// Anthropic's rate-limit headers, one `[limit, remaining, reset]` triple per budget.
static ANTHROPIC_REQUESTS: [HeaderName; 3] = [
    HeaderName::from_static("anthropic-ratelimit-requests-limit"),
    HeaderName::from_static("anthropic-ratelimit-requests-remaining"),
    HeaderName::from_static("anthropic-ratelimit-requests-reset"),
];
static ANTHROPIC_TOKENS: [HeaderName; 3] = [
    HeaderName::from_static("anthropic-ratelimit-tokens-limit"),
    HeaderName::from_static("anthropic-ratelimit-tokens-remaining"),
    HeaderName::from_static("anthropic-ratelimit-tokens-reset"),
];
static ANTHROPIC_INPUT_TOKENS: [HeaderName; 3] = [
    HeaderName::from_static("anthropic-ratelimit-input-tokens-limit"),
    HeaderName::from_static("anthropic-ratelimit-input-tokens-remaining"),
    HeaderName::from_static("anthropic-ratelimit-input-tokens-reset"),
];
static ANTHROPIC_OUTPUT_TOKENS: [HeaderName; 3] = [
    HeaderName::from_static("anthropic-ratelimit-output-tokens-limit"),
    HeaderName::from_static("anthropic-ratelimit-output-tokens-remaining"),
    HeaderName::from_static("anthropic-ratelimit-output-tokens-reset"),
];

/// Adds the headers the provider puts on every response: request id and the rate-limit
/// family, plus OpenAI's processing time and API version. Done in one middleware so no
/// response path can forget them; the handler's [`Flavor`] picks the provider's dialect.
async fn common_headers(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let start = tokio::time::Instant::now();
    let mut resp = next.run(req).await;
    let acct = resp
        .extensions_mut()
        .remove::<Accounting>()
        .unwrap_or_default();
    let flavor = resp.extensions_mut().remove::<Flavor>().unwrap_or_default();
    let request_id = resp.extensions_mut().remove::<RequestId>();
    let now = unix_millis();
    let snap = shared.window.record(now, acct.tokens, acct.output_tokens);
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
    match flavor {
        Flavor::OpenAi => {
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
        }
        Flavor::Bedrock => {
            let hex = text::random_hex_id("");
            let id = format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            h.insert(AMZN_REQUEST_ID.clone(), header_str(id));
        }
        Flavor::Anthropic => {
            let id = request_id.map_or_else(anthropic::new_request_id, |id| id.0);
            h.insert(REQUEST_ID.clone(), header_str(id));
            h.insert(
                ORGANIZATION_ID.clone(),
                HeaderValue::from_static(anthropic::ORGANIZATION_ID),
            );
            let at = |ms: u64| header_str(limits::format_rfc3339(now.saturating_add(ms)));
            let families = [
                (
                    &ANTHROPIC_REQUESTS,
                    limits::LIMIT_REQUESTS,
                    remaining_requests,
                    reset_requests_ms,
                ),
                (
                    &ANTHROPIC_TOKENS,
                    limits::LIMIT_TOKENS,
                    snap.remaining_tokens,
                    snap.reset_tokens_ms,
                ),
                (
                    &ANTHROPIC_INPUT_TOKENS,
                    limits::LIMIT_INPUT_TOKENS,
                    snap.remaining_input_tokens,
                    snap.reset_input_ms,
                ),
                (
                    &ANTHROPIC_OUTPUT_TOKENS,
                    limits::LIMIT_OUTPUT_TOKENS,
                    snap.remaining_output_tokens,
                    snap.reset_output_ms,
                ),
            ];
            for ([limit, remaining, reset], limit_value, remaining_value, reset_ms) in families {
                h.insert(limit.clone(), HeaderValue::from(limit_value));
                h.insert(remaining.clone(), HeaderValue::from(remaining_value));
                h.insert(reset.clone(), at(reset_ms));
            }
        }
        Flavor::Gemini => gemini::add_headers(h, elapsed),
    }
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
