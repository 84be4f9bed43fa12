//! Anthropic's wire format: the Messages API (plain and SSE), token counting, models and
//! errors.
//!
//! Shapes follow Anthropic's public API reference, field order included, and so do the rules
//! a request must pass: the `anthropic-version` header, `x-api-key` authentication, required
//! fields, content block types, tool-use pairing, thinking budgets. A gateway translating
//! OpenAI requests into Anthropic's format is only as good as what the real API accepts, so
//! the mock rejects what the API rejects, with a message naming the field.
//!
//! Layout: this file holds the routes, the header checks, errors and knob handling;
//! `request` validates bodies; `reply` decides the answer; `schema` fakes tool inputs;
//! `render` writes Message objects and event streams; `models` answers the model listing.

mod models;
mod render;
mod reply;
mod request;
mod schema;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{post, MethodRouter};
use axum::Router;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde::Serialize;

use self::request::{Endpoint, Fields};
use crate::knobs::Knobs;
use crate::sse::Ending;
use crate::text;
use crate::{Accounting, AuthOutcome, Flavor, RequestId, Shared};

/// Value of the `anthropic-organization-id` header on every response.
pub(crate) const ORGANIZATION_ID: &str = "6f1c2b9e-3d4a-4e8f-9a7b-2c5d8e1f0a3b";

/// The API's request size limit; larger bodies get a 413 `request_too_large`.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
const SSE_CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";
const JSON_CONTENT_TYPE: &str = "application/json";
/// The context-length error the `prompt_too_long` knob answers with, in the API's wording.
const PROMPT_TOO_LONG: &str = "prompt is too long: 210000 tokens > 200000 maximum";

/// The Messages routes. `/v1/models` is shared with OpenAI, so the crate root routes it and
/// calls [`list_models`]/[`get_model`] for Anthropic clients.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/messages", only(post(messages)))
        .route("/v1/messages/count_tokens", only(post(count_tokens)))
}

/// Gives a route Anthropic's 405 body instead of axum's empty one.
fn only(router: MethodRouter<Arc<Shared>>) -> MethodRouter<Arc<Shared>> {
    router.fallback(method_not_allowed)
}

/// Whether `path` belongs to the Messages API, whose unknown sub-paths answer in Anthropic's
/// shape.
pub(crate) fn owns_path(path: &str) -> bool {
    path == "/v1/messages" || path.starts_with("/v1/messages/")
}

/// Whether a request looks like it comes from an Anthropic client: it sends
/// `anthropic-version`, or authenticates with `x-api-key` and not `Authorization`.
pub(crate) fn is_client(headers: &HeaderMap) -> bool {
    headers.contains_key("anthropic-version")
        || (headers.contains_key("x-api-key") && !headers.contains_key(header::AUTHORIZATION))
}

/// A fresh request id in the API's shape (`req_011C` and base62).
pub(crate) fn new_request_id() -> String {
    text::random_id("req_011C", 20)
}

// === errors ===

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorBody<'a>,
    request_id: &'a str,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// Marks a response as Anthropic's, so the header middleware adds Anthropic's headers.
fn mark(mut resp: Response) -> Response {
    resp.extensions_mut().insert(Flavor::Anthropic);
    resp
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    mark(resp)
}

/// An Anthropic-shaped error: `{"type":"error","error":{"type","message"},"request_id"}`,
/// with the same id in the `request-id` header.
fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    let request_id = new_request_id();
    let body = ErrorEnvelope {
        kind: "error",
        error: ErrorBody { kind, message },
        request_id: &request_id,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = json_response(status, bytes);
    resp.extensions_mut().insert(RequestId(request_id));
    resp
}

/// A 400 `invalid_request_error`, the most common rejection.
fn invalid_request(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

/// The error `type` the API uses for an HTTP status.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The 404 for paths the mock does not serve, in the API's wording.
pub(crate) async fn not_found(_method: Method, _uri: Uri) -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found_error", "Not Found")
}

/// The 405 for a known path called with the wrong method.
pub(crate) async fn method_not_allowed(_method: Method, _uri: Uri) -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "Method Not Allowed",
    )
}

/// Checks the `anthropic-version` header and the API key, in that order; `Some` is the
/// rejection.
fn gate(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    match headers.get("anthropic-version") {
        None => return Some(invalid_request("anthropic-version: header is required")),
        Some(v) if !request::is_api_version(v.as_bytes()) => {
            let shown = String::from_utf8_lossy(v.as_bytes());
            return Some(invalid_request(&format!(
                "anthropic-version: {shown:?} is not a valid version"
            )));
        }
        Some(_) => {}
    }
    let message = match shared.check_x_api_key(headers) {
        AuthOutcome::Allowed => return None,
        AuthOutcome::Missing => "x-api-key header is required",
        AuthOutcome::Wrong => "invalid x-api-key",
    };
    Some(error_response(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        message,
    ))
}

/// The error a `status` knob asks for, shaped the way Anthropic reports that status.
fn knob_error(status: StatusCode, model: &str, knobs: &Knobs) -> Response {
    let model_message;
    let kind = error_type(status);
    let message: &str = match status.as_u16() {
        401 => "invalid x-api-key",
        402 => "Your credit balance is too low to access the API.",
        403 => "Your API key does not have permission to use the specified resource.",
        404 => {
            model_message = format!("model: {model}");
            &model_message
        }
        413 => "Request exceeds the maximum allowed number of bytes.",
        429 => {
            "This request would exceed the mock's rate limit for your organization. Please \
                try again later."
        }
        500 => "Internal server error",
        503 | 529 => "Overloaded",
        504 => "Request timed out",
        400..=499 => "The request was rejected by the mock (status knob).",
        _ => "The mock server failed (status knob).",
    };
    let mut resp = error_response(status, kind, message);
    knobs.add_retry_after(&mut resp);
    let exhausted = status == StatusCode::TOO_MANY_REQUESTS;
    if exhausted && !resp.headers().contains_key(header::RETRY_AFTER) {
        // Real 429s always say when to come back; clients' backoff depends on it.
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
    }
    resp.extensions_mut().insert(Accounting {
        retry_after: knobs.retry_after,
        exhausted,
        ..Accounting::default()
    });
    resp
}

/// Applies the knobs that replace the whole response (`raw_error_body`, `status`,
/// `prompt_too_long`). Runs before validation so tests can send minimal bodies.
fn knob_override(knobs: &Knobs, model: &str) -> Option<Response> {
    match knobs.error_status() {
        Err(code) => Some(invalid_request(&format!(
            "mock.status: {code} is not an HTTP status code"
        ))),
        Ok(status) => {
            if let Some(resp) = knobs.raw_error_response() {
                return Some(mark(resp));
            }
            if let Some(status) = status {
                return Some(knob_error(status, model, knobs));
            }
            knobs
                .prompt_too_long()
                .then(|| invalid_request(PROMPT_TOO_LONG))
        }
    }
}

// === shared request plumbing ===

/// Checks the headers and reads the body. Errors come back as ready responses.
async fn read_request(shared: &Shared, req: Request) -> Result<(Parts, Bytes), Response> {
    let (parts, body) = req.into_parts();
    if let Some(resp) = gate(shared, &parts.headers) {
        return Err(resp);
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map(|bytes| (parts, bytes))
        .map_err(|_| {
            error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                "Request exceeds the maximum allowed number of bytes.",
            )
        })
}

/// Waits out the configured latency, then hands back the response.
async fn delayed(resp: Response, latency: Duration) -> Response {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    resp
}

/// A response that ends a request early, with the latency to wait before sending it; boxed
/// because it is the rare path.
type Rejected = Box<(Response, Duration)>;

/// The top-level fields and knobs of a body, or the response that rejects it.
fn prepare<'a>(
    shared: &Shared,
    headers: &HeaderMap,
    body: &'a [u8],
) -> Result<(Fields<'a>, Knobs, Duration), Rejected> {
    let early = |msg: String| Box::new((invalid_request(&msg), shared.cfg.latency));
    let fields = Fields::parse(body).map_err(early)?;
    let knobs = Knobs::resolve(headers, Some(fields.knobs().map_err(early)?)).map_err(early)?;
    let latency = knobs.latency(&shared.cfg);
    if let Some(resp) = knob_override(&knobs, &fields.model_hint()) {
        return Err(Box::new((resp, latency)));
    }
    Ok((fields, knobs, latency))
}

// === messages ===

async fn messages(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = match read_request(&shared, req).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let (resp, latency) = messages_response(&shared, &parts, &body);
    delayed(resp, latency).await
}

/// Everything about a Messages request except waiting; synchronous so nothing borrowed from
/// the body lives across an await.
fn messages_response(shared: &Shared, parts: &Parts, body: &[u8]) -> (Response, Duration) {
    let (fields, knobs, latency) = match prepare(shared, &parts.headers, body) {
        Ok(prepared) => prepared,
        Err(rejected) => return *rejected,
    };
    let req = match fields.validate(Endpoint::Messages) {
        Ok(req) => req,
        Err(msg) => return (invalid_request(&msg), latency),
    };
    let id = text::random_id("msg_01", 22);
    if knobs.malformed() && !req.stream {
        let broken = render::broken_message(&id, &req.model);
        return (json_response(StatusCode::OK, broken), latency);
    }
    let echo = knobs
        .echo()
        .then(|| reply::echo_json(parts, body, &req, &fields.echoed()));
    let reply = reply::generate(&req, &knobs, echo);
    let usage = reply::Usage::new(&req, &knobs, reply.output_tokens);

    let mut resp = if req.stream {
        let mut events = render::stream(&id, &req.model, &reply, usage, knobs.malformed());
        let (keep, ending) = match (
            knobs.disconnect_after_chunks,
            knobs.stall_after_chunks,
            knobs.stream_error_after_chunks,
        ) {
            (Some(k), _, _) => (Some(k as usize), Ending::Abort),
            (None, Some(k), _) => (Some(k as usize), Ending::Stall),
            (None, None, Some(k)) => {
                events.truncate(k as usize);
                render::push_error_event(&mut events, "overloaded_error", "Overloaded");
                (None, Ending::Finish)
            }
            (None, None, None) => (None, Ending::Finish),
        };
        let body = events.into_body(knobs.chunk_delay(&shared.cfg), keep, ending);
        let mut resp = Response::new(Body::new(body));
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SSE_CONTENT_TYPE),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        mark(resp)
    } else {
        json_response(
            StatusCode::OK,
            render::message(&id, &req.model, &reply, usage),
        )
    };
    resp.extensions_mut().insert(Accounting {
        tokens: usage.total(),
        output_tokens: usage.output_tokens,
        ..Accounting::default()
    });
    (resp, latency)
}

// === token counting ===

#[derive(Serialize)]
struct TokenCount {
    input_tokens: u64,
}

async fn count_tokens(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (_parts, body) = match read_request(&shared, req).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let (resp, latency) = count_tokens_response(&shared, &body);
    delayed(resp, latency).await
}

/// The prompt estimate `/v1/messages` would use, as `{"input_tokens": N}`.
fn count_tokens_response(shared: &Shared, body: &[u8]) -> (Response, Duration) {
    let (fields, _knobs, latency) = match prepare(shared, &HeaderMap::new(), body) {
        Ok(prepared) => prepared,
        Err(rejected) => return *rejected,
    };
    let req = match fields.validate(Endpoint::CountTokens) {
        Ok(req) => req,
        Err(msg) => return (invalid_request(&msg), latency),
    };
    let count = TokenCount {
        input_tokens: req.prompt_tokens().total,
    };
    let bytes = serde_json::to_vec(&count).unwrap_or_else(|_| b"{}".to_vec());
    (json_response(StatusCode::OK, bytes), latency)
}

// === models ===

/// `GET /v1/models` in Anthropic's shape.
pub(crate) fn list_models(shared: &Shared, headers: &HeaderMap, uri: &Uri) -> Response {
    if let Some(resp) = gate(shared, headers) {
        return resp;
    }
    match models::list(uri.query()) {
        Ok(bytes) => json_response(StatusCode::OK, bytes),
        Err(msg) => invalid_request(&msg),
    }
}

/// `GET /v1/models/{id}` in Anthropic's shape.
pub(crate) fn get_model(shared: &Shared, id: &str, headers: &HeaderMap) -> Response {
    if let Some(resp) = gate(shared, headers) {
        return resp;
    }
    match models::lookup(id) {
        Some(model) => json_response(
            StatusCode::OK,
            serde_json::to_vec(&model).unwrap_or_else(|_| b"{}".to_vec()),
        ),
        None => error_response(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("model: {id}"),
        ),
    }
}

#[cfg(test)]
mod tests;
