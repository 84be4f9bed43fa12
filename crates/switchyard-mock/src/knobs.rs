//! Per-request knobs: the optional top-level `"mock"` object in a request body.
//!
//! Tests steer the mock through the request itself because the gateway forwards unknown body
//! fields untouched; no side channel or shared state between test and mock is needed. The
//! knobs are format-neutral; each provider module renders the resulting errors in its own wire
//! shape. Knob values are test data and are never logged.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
use serde::Deserialize;

use crate::MockConfig;

/// The `"mock"` object. Unknown fields are rejected so a typo in a test fails loudly instead
/// of silently testing nothing.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Knobs {
    /// Overrides [`MockConfig::latency`].
    pub(crate) latency_ms: Option<u64>,
    /// Overrides [`MockConfig::chunk_delay`].
    pub(crate) chunk_delay_ms: Option<u64>,
    /// Number of words in the generated reply.
    pub(crate) words: Option<u32>,
    /// Answer with this HTTP error status and a provider-shaped error body.
    pub(crate) status: Option<u16>,
    /// Seconds for the `Retry-After` header (and the request reset header).
    pub(crate) retry_after: Option<u64>,
    /// Answer with exactly this body as `text/html` (status from `status`, else 502).
    pub(crate) raw_error_body: Option<String>,
    /// Answer 200 with a body that is not valid JSON (streams: one broken data line).
    pub(crate) malformed: Option<bool>,
    /// Streams: send this many events, then abort the connection.
    pub(crate) disconnect_after_chunks: Option<u32>,
    /// Streams: send this many events, then go silent with the connection open.
    pub(crate) stall_after_chunks: Option<u32>,
    /// Reply with a JSON description of the request as received.
    pub(crate) echo: Option<bool>,
    /// Reply with a tool call even when `tool_choice` does not force one.
    pub(crate) tool_call: Option<bool>,
    /// Anthropic: reply with this many `tool_use` blocks (cycling through the declared tools),
    /// so gateways can be tested on parallel tool calls.
    pub(crate) parallel_tool_calls: Option<u32>,
    /// Anthropic: report this many `cache_read_input_tokens`, as a repeated request whose
    /// prefix is already cached would.
    pub(crate) cache_read_tokens: Option<u64>,
    /// Anthropic streams: send this many events, then an `error` event (`overloaded_error`),
    /// then end the stream, the way the real API reports failures after a 200.
    pub(crate) stream_error_after_chunks: Option<u32>,
    /// Anthropic, Bedrock and Gemini: reject the request with the API's context-length error, so
    /// gateways can be tested on detecting it.
    pub(crate) prompt_too_long: Option<bool>,
    /// Bedrock streams: send this many messages, then a `modelStreamErrorException` exception
    /// message, then end the stream, the way ConverseStream reports failures after a 200.
    pub(crate) stream_exception_after_chunks: Option<u32>,
    /// Bedrock: answer as if a guardrail intervened (`stopReason: guardrail_intervened`).
    pub(crate) guardrail: Option<bool>,
    /// Gemini: stop the answer with `finishReason: SAFETY` and blocking `safetyRatings`, as
    /// Google's filters do.
    pub(crate) safety_block: Option<bool>,
    /// Gemini: refuse the prompt itself (`promptFeedback.blockReason: SAFETY`, no candidates).
    pub(crate) prompt_blocked: Option<bool>,
}

/// Header that carries knobs as a JSON object, for requests whose body the mock does not
/// control: a gateway translating between formats drops the body's unknown `"mock"` field, but a
/// provider's configured extra headers reach the mock untouched.
pub(crate) const KNOBS_HEADER: &str = "x-mock-knobs";

impl Knobs {
    /// The knobs to use: those of the `x-mock-knobs` header when present (they win, being set
    /// per provider), else the body's. `Err` is the 400 message for malformed header knobs.
    pub(crate) fn resolve(headers: &http::HeaderMap, body: Option<Knobs>) -> Result<Knobs, String> {
        match headers.get(KNOBS_HEADER) {
            None => Ok(body.unwrap_or_default()),
            Some(v) => {
                serde_json::from_slice(v.as_bytes()).map_err(|e| format!("{KNOBS_HEADER}: {e}"))
            }
        }
    }

    /// Delay before the response headers.
    pub(crate) fn latency(&self, cfg: &MockConfig) -> Duration {
        self.latency_ms.map_or(cfg.latency, Duration::from_millis)
    }

    /// Delay between streamed events.
    pub(crate) fn chunk_delay(&self, cfg: &MockConfig) -> Duration {
        self.chunk_delay_ms
            .map_or(cfg.chunk_delay, Duration::from_millis)
    }

    /// Whether the reply should be an invalid body.
    pub(crate) fn malformed(&self) -> bool {
        self.malformed.unwrap_or(false)
    }

    /// Whether the reply should describe the request.
    pub(crate) fn echo(&self) -> bool {
        self.echo.unwrap_or(false)
    }

    /// Whether a tool call is forced by the knob.
    pub(crate) fn tool_call(&self) -> bool {
        self.tool_call.unwrap_or(false)
    }

    /// Whether the context-length error is requested.
    pub(crate) fn prompt_too_long(&self) -> bool {
        self.prompt_too_long.unwrap_or(false)
    }

    /// The error status to answer with, if the knobs ask for an error. Statuses below 400 do
    /// not describe an error and are ignored; values that are not HTTP statuses are reported
    /// back as `Err` so the caller can reject the request.
    pub(crate) fn error_status(&self) -> Result<Option<StatusCode>, u16> {
        match self.status {
            None => Ok(None),
            Some(code) => match StatusCode::from_u16(code) {
                Ok(status) if status.as_u16() >= 400 => Ok(Some(status)),
                Ok(_) => Ok(None),
                Err(_) => Err(code),
            },
        }
    }

    /// The `raw_error_body` response, if requested: the body verbatim, as `text/html`, the
    /// way a misbehaving proxy in front of a provider answers.
    pub(crate) fn raw_error_response(&self) -> Option<Response> {
        let body = self.raw_error_body.as_ref()?;
        let status = self
            .error_status()
            .ok()
            .flatten()
            .unwrap_or(StatusCode::BAD_GATEWAY);
        let mut resp = Response::new(Body::from(body.clone()));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        self.add_retry_after(&mut resp);
        Some(resp)
    }

    /// Adds `Retry-After` when the knob is set; callers use it on error responses only.
    pub(crate) fn add_retry_after(&self, resp: &mut Response) {
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }
}

/// Header that scripts faults over successive requests: a comma-separated list of steps, the
/// n-th request carrying the same header value taking step n (cycling). A step is `ok`, an
/// error status (`503`), a status with a `Retry-After` in seconds (`429/7`), `slow=<ms>`
/// (latency before the response headers) or `drop=<n>` (disconnect a stream after n events).
/// So a provider configured with `x-mock-schedule: 503,ok` fails every other request.
pub(crate) const SCHEDULE_HEADER: &str = "x-mock-schedule";

/// Middleware: turns the request's `x-mock-schedule` step into `x-mock-knobs` (merged over any
/// knobs already in that header). A malformed schedule is answered with a 400.
pub(crate) async fn schedule(
    axum::extract::State(shared): axum::extract::State<std::sync::Arc<crate::Shared>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(plan) = req
        .headers()
        .get(SCHEDULE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(req).await;
    };
    let steps: Vec<&str> = plan.split(',').map(str::trim).collect();
    let n = {
        let mut seen = shared.schedules.lock();
        let count = seen.entry(plan.clone()).or_insert(0);
        let n = *count;
        *count += 1;
        n
    };
    let step = steps[n % steps.len()];
    let extra = match step_knobs(step) {
        Ok(extra) => extra,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    if let Some(extra) = extra {
        let mut knobs = req
            .headers()
            .get(KNOBS_HEADER)
            .and_then(|v| serde_json::from_slice::<serde_json::Value>(v.as_bytes()).ok())
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({}));
        if let (Some(k), serde_json::Value::Object(e)) = (knobs.as_object_mut(), extra) {
            k.extend(e);
        }
        if let Ok(v) = http::HeaderValue::from_str(&knobs.to_string()) {
            req.headers_mut().insert(KNOBS_HEADER, v);
        }
    }
    next.run(req).await
}

/// The knobs one schedule step stands for; `None` for `ok`.
fn step_knobs(step: &str) -> Result<Option<serde_json::Value>, String> {
    let bad = || format!("{SCHEDULE_HEADER}: cannot read the step `{step}`");
    let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
    Ok(Some(match step {
        "ok" => return Ok(None),
        s if s.starts_with("slow=") => serde_json::json!({"latency_ms": num(&s[5..])?}),
        s if s.starts_with("drop=") => {
            serde_json::json!({"disconnect_after_chunks": num(&s[5..])?})
        }
        s => match s.split_once('/') {
            Some((status, retry)) => {
                serde_json::json!({"status": num(status)?, "retry_after": num(retry)?})
            }
            None => serde_json::json!({"status": num(s)?}),
        },
    }))
}
