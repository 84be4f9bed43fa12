//! AWS Bedrock's wire format: the Converse API (`POST /model/{modelId}/converse`, JSON) and
//! ConverseStream (`POST /model/{modelId}/converse-stream`, binary
//! `application/vnd.amazon.eventstream`).
//!
//! Shapes follow AWS's public Bedrock API reference: the Converse request and response
//! members, the stream's events (`messageStart`, `contentBlockStart`, `contentBlockDelta`,
//! `contentBlockStop`, `messageStop`, `metadata`) framed as eventstream messages with the
//! `:event-type`, `:content-type` and `:message-type` headers, exceptions as
//! `:message-type: exception` messages, and errors as `{"message": ...}` bodies named by the
//! `x-amzn-ErrorType` header. Every request must be SigV4-signed for the `bedrock` service
//! ([`auth`]); requests the API would reject get its `ValidationException`.
//!
//! Layout: this file holds the routes, errors and knob handling; `auth` checks signatures;
//! `reply` validates bodies, decides the answer and renders it; `eventstream` writes the
//! binary framing with its own CRC.

mod auth;
mod eventstream;
mod reply;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::{post, MethodRouter};
use axum::Router;
use http::{header, HeaderValue, Method, StatusCode, Uri};

use crate::knobs::Knobs;
use crate::sse::Ending;
use crate::{Accounting, Flavor, Shared};

/// The access key id of the mock's published test credentials: requests signed with it have
/// their signature verified against [`BEDROCK_SECRET_ACCESS_KEY`].
pub const BEDROCK_ACCESS_KEY_ID: &str = "AKIDMOCKSWITCHYARD01";
/// The secret of the mock's published test credentials. It is not a secret: it opens nothing
/// but the mock, and is public so that tests and the built-in demo can sign with it.
pub const BEDROCK_SECRET_ACCESS_KEY: &str = "mockSecretKeyForSigV4/Checks+Switchyard01";

/// Requests larger than this are refused (the API's limit is far above any test's).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
const JSON_CONTENT_TYPE: &str = "application/json";
const EVENTSTREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";
/// The suffix AWS appends to the exception name in `x-amzn-ErrorType`.
const ERROR_TYPE_SUFFIX: &str = ":http://internal.amazon.com/coral/com.amazon.bedrock/";
/// The context-length error the `prompt_too_long` knob answers with, in the API's wording.
const INPUT_TOO_LONG: &str = "Input is too long for requested model.";

/// The Converse routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/model/{model_id}/converse", only(post(converse)))
        .route(
            "/model/{model_id}/converse-stream",
            only(post(converse_stream)),
        )
}

fn only(router: MethodRouter<Arc<Shared>>) -> MethodRouter<Arc<Shared>> {
    router.fallback(method_not_allowed)
}

/// Whether `path` belongs to the Bedrock runtime API, whose unknown paths answer in its shape.
pub(crate) fn owns_path(path: &str) -> bool {
    path.starts_with("/model/")
}

// === errors ===

/// Marks a response as Bedrock's, so the header middleware adds `x-amzn-RequestId`.
fn mark(mut resp: Response) -> Response {
    resp.extensions_mut().insert(Flavor::Bedrock);
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

/// A Bedrock error: `{"message": ...}` with the exception named in `x-amzn-ErrorType`.
pub(crate) fn error_response(status: StatusCode, exception: &str, message: &str) -> Response {
    let body = serde_json::to_vec(&serde_json::json!({ "message": message }))
        .unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = json_response(status, body);
    if let Ok(v) = HeaderValue::from_str(&format!("{exception}{ERROR_TYPE_SUFFIX}")) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

fn validation(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "ValidationException", message)
}

/// The exception and message Bedrock answers a status with.
fn exception_for(status: StatusCode, model_id: &str) -> (&'static str, String) {
    let (name, message) = match status.as_u16() {
        403 => (
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        404 => (
            "ResourceNotFoundException",
            "The requested model was not found.",
        ),
        408 => (
            "ModelTimeoutException",
            "Model has timed out in processing the request.",
        ),
        424 => (
            "ModelErrorException",
            "The model failed to process the request (mock).",
        ),
        429 => (
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        503 => (
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
        ),
        400..=499 => (
            "ValidationException",
            "The request was rejected by the mock (status knob).",
        ),
        _ => (
            "InternalServerException",
            "The server encountered an internal error (mock).",
        ),
    };
    let message = if status == StatusCode::NOT_FOUND {
        format!("{message} (model id: {model_id})")
    } else {
        message.to_owned()
    };
    (name, message)
}

/// The 404 for paths the mock does not serve under `/model/`.
pub(crate) async fn not_found(_method: Method, _uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        "Unknown operation",
    )
}

async fn method_not_allowed(_method: Method, _uri: Uri) -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "UnknownOperationException",
        "Method Not Allowed",
    )
}

/// The response a `status` knob asks for.
fn knob_error(status: StatusCode, model_id: &str, knobs: &Knobs) -> Response {
    let (exception, message) = exception_for(status, model_id);
    let mut resp = error_response(status, exception, &message);
    knobs.add_retry_after(&mut resp);
    resp.extensions_mut().insert(Accounting {
        retry_after: knobs.retry_after,
        exhausted: status == StatusCode::TOO_MANY_REQUESTS,
        ..Accounting::default()
    });
    resp
}

// === handlers ===

async fn converse(
    State(shared): State<Arc<Shared>>,
    Path(model_id): Path<String>,
    req: Request,
) -> Response {
    handle(&shared, &model_id, req, false).await
}

async fn converse_stream(
    State(shared): State<Arc<Shared>>,
    Path(model_id): Path<String>,
    req: Request,
) -> Response {
    handle(&shared, &model_id, req, true).await
}

async fn handle(shared: &Shared, model_id: &str, req: Request, stream: bool) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return validation("Request body is too large.");
    };
    let (resp, latency) = respond(shared, model_id, &parts, &body, stream);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    resp
}

/// Everything but waiting; synchronous so nothing borrowed from the body lives across an
/// await.
fn respond(
    shared: &Shared,
    model_id: &str,
    parts: &http::request::Parts,
    body: &[u8],
    stream: bool,
) -> (Response, Duration) {
    let now = crate::unix_millis() / 1000;
    if let Err(refusal) = auth::check(parts, body, now) {
        let resp = error_response(StatusCode::FORBIDDEN, refusal.exception, &refusal.message);
        return (resp, shared.cfg.latency);
    }
    let doc: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            return (
                validation("Malformed input request, please reformat your input and try again."),
                shared.cfg.latency,
            )
        }
    };
    let body_knobs = match doc.get("mock") {
        None => None,
        Some(k) => match serde_json::from_value::<Knobs>(k.clone()) {
            Ok(k) => Some(k),
            Err(e) => return (validation(&format!("mock: {e}")), shared.cfg.latency),
        },
    };
    let knobs = match Knobs::resolve(&parts.headers, body_knobs) {
        Ok(k) => k,
        Err(e) => return (validation(&e), shared.cfg.latency),
    };
    let latency = knobs.latency(&shared.cfg);
    match knobs.error_status() {
        Err(code) => {
            return (
                validation(&format!("mock.status: {code} is not an HTTP status code")),
                latency,
            )
        }
        Ok(status) => {
            if let Some(resp) = knobs.raw_error_response() {
                return (mark(resp), latency);
            }
            if let Some(status) = status {
                return (knob_error(status, model_id, &knobs), latency);
            }
        }
    }
    if knobs.prompt_too_long() {
        return (validation(INPUT_TOO_LONG), latency);
    }
    let req = match reply::Request::parse(&doc, body) {
        Ok(req) => req,
        Err(message) => return (validation(&message), latency),
    };
    if knobs.malformed() && !stream {
        let resp = json_response(StatusCode::OK, b"{\"output\":{\"message\":".to_vec());
        return (resp, latency);
    }
    let echo = knobs
        .echo()
        .then(|| reply::echo_json(parts, model_id, &doc));
    let answer = reply::generate(&req, &knobs, echo);
    let mut resp = if stream {
        let mut events = reply::stream(&answer, knobs.malformed());
        let (keep, ending) = match (
            knobs.disconnect_after_chunks,
            knobs.stall_after_chunks,
            knobs.stream_exception_after_chunks,
        ) {
            (Some(k), _, _) => (Some(k as usize), Ending::Abort),
            (None, Some(k), _) => (Some(k as usize), Ending::Stall),
            (None, None, Some(k)) => {
                events.truncate(k as usize);
                reply::push_exception(
                    &mut events,
                    "modelStreamErrorException",
                    "The model stream failed (mock).",
                );
                (None, Ending::Finish)
            }
            (None, None, None) => (None, Ending::Finish),
        };
        let body = events.into_body(knobs.chunk_delay(&shared.cfg), keep, ending);
        let mut resp = Response::new(Body::new(body));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(EVENTSTREAM_CONTENT_TYPE),
        );
        mark(resp)
    } else {
        json_response(StatusCode::OK, reply::converse_json(&answer))
    };
    resp.extensions_mut().insert(Accounting {
        tokens: answer.usage.total(),
        output_tokens: answer.usage.output,
        ..Accounting::default()
    });
    (resp, latency)
}

#[cfg(test)]
mod tests;
