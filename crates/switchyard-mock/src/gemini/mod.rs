//! Google's Gemini API, through both of its front doors.
//!
//! - Google AI Studio: `POST /v1beta/models/{model}:{method}` (and `/v1beta/tunedModels/...`),
//!   authenticated by `x-goog-api-key` or the `key` query parameter;
//! - Vertex AI: `POST /v1/projects/{project}/locations/{location}/publishers/google/models/
//!   {model}:{method}` (and `/v1beta1/...`), authenticated by `Authorization: Bearer`.
//!
//! Methods: `generateContent`, `streamGenerateContent` (`?alt=sse` for server-sent events,
//! else a JSON array sent piecewise), `countTokens`, `embedContent`, and (AI Studio only)
//! `batchEmbedContents`. Bodies are validated as Google's front end does (see `request`),
//! answers are written as Google writes them (see `render`), errors are Google's
//! `{"error": {"code", "message", "status", "details"}}` pretty-printed.
//!
//! Credentials behave like Google's: on AI Studio a missing key is a 403 `PERMISSION_DENIED`
//! and a wrong one a 400 `INVALID_ARGUMENT` whose `ErrorInfo` reason is `API_KEY_INVALID`; on
//! Vertex AI both are 401 `UNAUTHENTICATED`.
//!
//! Knobs (body `"mock"` object or `x-mock-knobs` header): `latency_ms`, `chunk_delay_ms`,
//! `words`, `status` (Google's error for that status; 429 carries `RetryInfo` with
//! `retry_after` seconds, in the body only, as Google sends it), `raw_error_body`,
//! `malformed`, `disconnect_after_chunks`, `stall_after_chunks`,
//! `stream_error_after_chunks` (an `UNAVAILABLE` error event), `echo`, `tool_call`,
//! `parallel_tool_calls`, `cache_read_tokens`, `prompt_too_long` (Google's token-count
//! error), `safety_block` (`finishReason: SAFETY` with blocking `safetyRatings`) and
//! `prompt_blocked` (`promptFeedback.blockReason: SAFETY`, no candidates). Function calling
//! mode `ANY` forces function calls; models named `gemini-3...` sign their first function call
//! and require that signature back, as Gemini 3 does.

mod render;
mod reply;
mod request;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::{post, MethodRouter};
use axum::Router;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde::Serialize;
use serde_json::{json, Value};

use self::render::Framing;
use crate::knobs::Knobs;
use crate::openai::EchoHeaders;
use crate::sse::Ending;
use crate::text;
use crate::{Accounting, AuthOutcome, Flavor, Shared};

/// Google's request size limit for inline payloads.
const MAX_BODY_BYTES: usize = 100 * 1024 * 1024;
const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";
const SSE_CONTENT_TYPE: &str = "text/event-stream";
/// Vector size of embeddings when the request does not pick one.
const DEFAULT_DIMENSIONS: u64 = 768;
const PROMPT_TOO_LONG: &str =
    "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).";

/// The Gemini routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1beta/models/{call}", only(post(studio)))
        .route("/v1beta/tunedModels/{call}", only(post(studio_tuned)))
        .route(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{call}",
            only(post(vertex)),
        )
        .route(
            "/v1beta1/projects/{project}/locations/{location}/publishers/google/models/{call}",
            only(post(vertex)),
        )
}

fn only(router: MethodRouter<Arc<Shared>>) -> MethodRouter<Arc<Shared>> {
    router.fallback(method_not_allowed)
}

/// Whether `path` belongs to Gemini's API, whose unknown paths answer in Google's shape.
pub(crate) fn owns_path(path: &str) -> bool {
    path.starts_with("/v1beta/")
        || path.starts_with("/v1/projects/")
        || path.starts_with("/v1beta1/")
}

/// Google's front-end headers, added by the crate's header middleware.
pub(crate) fn add_headers(h: &mut HeaderMap, elapsed_ms: u64) {
    h.insert(
        header::VARY,
        HeaderValue::from_static("Origin, X-Origin, Referer"),
    );
    h.insert(
        header::SERVER,
        HeaderValue::from_static("scaffolding on HTTPServer2"),
    );
    h.insert("x-xss-protection", HeaderValue::from_static("0"));
    h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::try_from(format!("gfet4t7; dur={elapsed_ms}")) {
        h.insert("server-timing", v);
    }
}

// === errors ===

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorOut<'a>,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    code: u16,
    message: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<Detail<'a>>,
}

/// The `google.rpc` error details the mock sends, fields in Google's order.
#[derive(Serialize)]
#[serde(untagged)]
enum Detail<'a> {
    ErrorInfo {
        #[serde(rename = "@type")]
        kind: &'static str,
        reason: &'a str,
        domain: &'static str,
        metadata: ServiceOut<'a>,
    },
    QuotaFailure {
        #[serde(rename = "@type")]
        kind: &'static str,
        violations: [ViolationOut<'a>; 1],
    },
    Help {
        #[serde(rename = "@type")]
        kind: &'static str,
        links: [LinkOut; 1],
    },
    RetryInfo {
        #[serde(rename = "@type")]
        kind: &'static str,
        #[serde(rename = "retryDelay")]
        retry_delay: String,
    },
}

#[derive(Serialize)]
struct ServiceOut<'a> {
    service: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ViolationOut<'a> {
    quota_metric: &'static str,
    quota_id: &'static str,
    quota_dimensions: QuotaDimensionsOut<'a>,
    quota_value: &'static str,
}

#[derive(Serialize)]
struct QuotaDimensionsOut<'a> {
    location: &'static str,
    model: &'a str,
}

#[derive(Serialize)]
struct LinkOut {
    description: &'static str,
    url: &'static str,
}

/// Google's canonical status name for an HTTP status.
fn canonical(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        402..=498 => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    }
}

fn error_json(status: StatusCode, message: &str) -> Value {
    json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "status": canonical(status),
    }})
}

/// A Google-shaped error response.
fn error_response(status: StatusCode, message: &str, details: Vec<Detail<'_>>) -> Response {
    let body = render::pretty(&ErrorEnvelope {
        error: ErrorOut {
            code: status.as_u16(),
            message,
            status: canonical(status),
            details,
        },
    });
    json_response(status, body)
}

fn invalid_argument(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, message, Vec::new())
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    resp.extensions_mut().insert(Flavor::Gemini);
    resp
}

/// Google's 404 for paths and methods it does not serve.
pub(crate) async fn not_found(_method: Method, uri: Uri) -> Response {
    let message = format!("Method not found: {}.", uri.path());
    error_response(StatusCode::NOT_FOUND, &message, Vec::new())
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = format!("Method {method} is not allowed for {}.", uri.path());
    error_response(StatusCode::METHOD_NOT_ALLOWED, &message, Vec::new())
}

fn error_info<'a>(reason: &'a str, service: &'a str) -> Detail<'a> {
    Detail::ErrorInfo {
        kind: "type.googleapis.com/google.rpc.ErrorInfo",
        reason,
        domain: "googleapis.com",
        metadata: ServiceOut { service },
    }
}

/// Which front door a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Front {
    Studio,
    Vertex,
}

impl Front {
    fn service(self) -> &'static str {
        match self {
            Front::Studio => "generativelanguage.googleapis.com",
            Front::Vertex => "aiplatform.googleapis.com",
        }
    }
}

/// Checks the configured key the way each front door does; `Some` is the rejection.
fn gate(shared: &Shared, front: Front, parts: &Parts) -> Option<Response> {
    let key = shared.cfg.api_key.as_deref()?;
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match front {
        Front::Studio => {
            let given = parts
                .headers
                .get("x-goog-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| query_param(&parts.uri, "key"));
            let outcome = match (&given, bearer) {
                (Some(k), _) if k == key => AuthOutcome::Allowed,
                (Some(_), _) => AuthOutcome::Wrong,
                (None, Some(_)) => {
                    return Some(error_response(
                        StatusCode::UNAUTHORIZED,
                        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
                        vec![error_info("ACCESS_TOKEN_TYPE_UNSUPPORTED", front.service())],
                    ))
                }
                (None, None) => AuthOutcome::Missing,
            };
            match outcome {
                AuthOutcome::Allowed => None,
                AuthOutcome::Missing => Some(error_response(
                    StatusCode::FORBIDDEN,
                    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                    Vec::new(),
                )),
                AuthOutcome::Wrong => Some(error_response(
                    StatusCode::BAD_REQUEST,
                    "API key not valid. Please pass a valid API key.",
                    vec![error_info("API_KEY_INVALID", front.service())],
                )),
            }
        }
        Front::Vertex => match bearer {
            Some(token) if token == key => None,
            Some(_) => Some(error_response(
                StatusCode::UNAUTHORIZED,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
                vec![error_info("ACCESS_TOKEN_TYPE_UNSUPPORTED", front.service())],
            )),
            None => Some(error_response(
                StatusCode::UNAUTHORIZED,
                "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
                vec![error_info("CREDENTIALS_MISSING", front.service())],
            )),
        },
    }
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The error a `status` knob asks for, worded as Google words it.
fn knob_error(status: StatusCode, model: &str, knobs: &Knobs) -> Response {
    let not_found;
    let (message, details): (&str, Vec<Detail<'_>>) = match status.as_u16() {
        400 => ("Request contains an invalid argument.", Vec::new()),
        401 => (
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            Vec::new(),
        ),
        403 => ("The caller does not have permission", Vec::new()),
        404 => {
            not_found = format!("models/{model} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.");
            (&not_found, Vec::new())
        }
        429 => (
            "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
            vec![
                Detail::QuotaFailure {
                    kind: "type.googleapis.com/google.rpc.QuotaFailure",
                    violations: [ViolationOut {
                        quota_metric: "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        quota_id: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        quota_dimensions: QuotaDimensionsOut {
                            location: "global",
                            model,
                        },
                        quota_value: "15",
                    }],
                },
                Detail::Help {
                    kind: "type.googleapis.com/google.rpc.Help",
                    links: [LinkOut {
                        description: "Learn more about Gemini API quotas",
                        url: "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }],
                },
                Detail::RetryInfo {
                    kind: "type.googleapis.com/google.rpc.RetryInfo",
                    retry_delay: format!("{}s", knobs.retry_after.unwrap_or(1)),
                },
            ],
        ),
        500 => (
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
            Vec::new(),
        ),
        503 => ("The model is overloaded. Please try again later.", Vec::new()),
        504 => ("Deadline expired before operation could complete.", Vec::new()),
        402..=499 => ("The request was rejected by the mock (status knob).", Vec::new()),
        _ => ("The mock server failed (status knob).", Vec::new()),
    };
    let mut resp = error_response(status, message, details);
    resp.extensions_mut().insert(Accounting {
        retry_after: knobs.retry_after,
        exhausted: status == StatusCode::TOO_MANY_REQUESTS,
        ..Accounting::default()
    });
    resp
}

/// Applies the knobs that replace the whole response.
fn knob_override(knobs: &Knobs, model: &str) -> Option<Response> {
    match knobs.error_status() {
        Err(code) => Some(invalid_argument(&format!(
            "mock.status: {code} is not an HTTP status code"
        ))),
        Ok(status) => {
            if let Some(mut resp) = knobs.raw_error_response() {
                resp.extensions_mut().insert(Flavor::Gemini);
                return Some(resp);
            }
            if let Some(status) = status {
                return Some(knob_error(status, model, knobs));
            }
            knobs
                .prompt_too_long()
                .then(|| invalid_argument(PROMPT_TOO_LONG))
        }
    }
}

// === handlers ===

async fn studio(
    State(shared): State<Arc<Shared>>,
    Path(call): Path<String>,
    req: Request,
) -> Response {
    handle(&shared, Front::Studio, &call, req).await
}

async fn studio_tuned(
    State(shared): State<Arc<Shared>>,
    Path(call): Path<String>,
    req: Request,
) -> Response {
    handle(&shared, Front::Studio, &format!("tunedModels/{call}"), req).await
}

async fn vertex(
    State(shared): State<Arc<Shared>>,
    Path((_project, _location, call)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    handle(&shared, Front::Vertex, &call, req).await
}

async fn handle(shared: &Shared, front: Front, call: &str, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some((model, method)) = call.rsplit_once(':') else {
        return not_found(parts.method.clone(), parts.uri.clone()).await;
    };
    if let Some(resp) = gate(shared, front, &parts) {
        return resp;
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return invalid_argument(&format!(
                "Request payload size exceeds the limit: {MAX_BODY_BYTES} bytes."
            ))
        }
    };
    let (resp, latency) = respond(shared, front, model, method, &parts, &body);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    resp
}

/// Everything about a request except waiting; synchronous so nothing borrowed from the body
/// lives across an await.
fn respond(
    shared: &Shared,
    front: Front,
    model: &str,
    method: &str,
    parts: &Parts,
    body: &Bytes,
) -> (Response, Duration) {
    let latency = shared.cfg.latency;
    let o = match request::parse(body) {
        Ok(o) => o,
        Err(msg) => return (invalid_argument(&msg), latency),
    };
    let knobs = match request::knobs(&o, &parts.headers) {
        Ok(k) => k,
        Err(msg) => return (invalid_argument(&msg), latency),
    };
    let latency = knobs.latency(&shared.cfg);
    if let Some(resp) = knob_override(&knobs, model) {
        return (resp, latency);
    }
    let resp = match method {
        "generateContent" => generate(shared, model, parts, body, o, knobs, None),
        "streamGenerateContent" => {
            let framing = if query_param(&parts.uri, "alt").as_deref() == Some("sse") {
                Framing::Sse
            } else {
                Framing::JsonArray
            };
            generate(shared, model, parts, body, o, knobs, Some(framing))
        }
        "countTokens" => count_tokens(model, o),
        "embedContent" => embed(front, model, &o, false),
        "batchEmbedContents" if front == Front::Studio => embed(front, model, &o, true),
        _ => {
            let message = format!("Method not found: {method}.");
            error_response(StatusCode::NOT_FOUND, &message, Vec::new())
        }
    };
    (resp, latency)
}

#[derive(Serialize)]
struct Echo<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: EchoHeaders<'a>,
    model: &'a str,
    body: Value,
}

fn generate(
    shared: &Shared,
    model: &str,
    parts: &Parts,
    raw: &[u8],
    o: serde_json::Map<String, Value>,
    knobs: Knobs,
    stream: Option<Framing>,
) -> Response {
    let req = match request::generate(o, knobs, model) {
        Ok(r) => r,
        Err(msg) => return invalid_argument(&msg),
    };
    if req.knobs.malformed() && stream.is_none() {
        return json_response(StatusCode::OK, render::broken());
    }
    let echo = req.knobs.echo().then(|| {
        serde_json::to_string(&Echo {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: EchoHeaders(&parts.headers),
            model,
            body: serde_json::from_slice(raw).unwrap_or(Value::Null),
        })
        .unwrap_or_default()
    });
    let answer = reply::generate(&req, model, echo);
    let response_id = text::random_id("", 22);
    let accounting = Accounting {
        tokens: answer.total_tokens(),
        output_tokens: answer.candidates_tokens(),
        ..Accounting::default()
    };
    let mut resp = match stream {
        None => json_response(StatusCode::OK, render::whole(&answer, model, &response_id)),
        Some(framing) => {
            let knobs = &req.knobs;
            let mut events =
                render::stream(&answer, model, &response_id, framing, knobs.malformed());
            let (keep, ending) = match (
                knobs.disconnect_after_chunks,
                knobs.stall_after_chunks,
                knobs.stream_error_after_chunks,
            ) {
                (Some(k), _, _) => (Some(k as usize), Ending::Abort),
                (None, Some(k), _) => (Some(k as usize), Ending::Stall),
                (None, None, Some(k)) => {
                    events.truncate(k as usize);
                    let e = error_json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The model is overloaded. Please try again later.",
                    );
                    render::push_error_event(&mut events, &e);
                    (None, Ending::Finish)
                }
                (None, None, None) => (None, Ending::Finish),
            };
            let body = events.into_body(knobs.chunk_delay(&shared.cfg), keep, ending);
            let mut resp = Response::new(Body::new(body));
            let content_type = match framing {
                Framing::Sse => SSE_CONTENT_TYPE,
                Framing::JsonArray => JSON_CONTENT_TYPE,
            };
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            resp.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment"),
            );
            resp.extensions_mut().insert(Flavor::Gemini);
            resp
        }
    };
    resp.extensions_mut().insert(accounting);
    resp
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenCount {
    total_tokens: u64,
    prompt_tokens_details: [Value; 1],
}

/// `countTokens`: `{"contents": [...]}` or `{"generateContentRequest": {...}}`.
fn count_tokens(model: &str, mut o: serde_json::Map<String, Value>) -> Response {
    let inner = match o.remove("generateContentRequest") {
        Some(Value::Object(g)) => g,
        Some(_) => {
            return invalid_argument(
                "* CountTokensRequest.generate_content_request: must be an object\n",
            )
        }
        None => o,
    };
    match request::generate(inner, Knobs::default(), model) {
        Ok(req) => json_response(
            StatusCode::OK,
            render::pretty(&TokenCount {
                total_tokens: req.prompt_tokens,
                prompt_tokens_details: [
                    json!({"modality": "TEXT", "tokenCount": req.prompt_tokens}),
                ],
            }),
        ),
        Err(msg) => invalid_argument(&msg),
    }
}

#[derive(Serialize)]
struct EmbeddingOut {
    values: Vec<f32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedOut {
    embedding: EmbeddingOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_metadata: Option<Value>,
}

#[derive(Serialize)]
struct BatchOut {
    embeddings: Vec<EmbeddingOut>,
}

fn vector(text_in: &str, dims: u64) -> EmbeddingOut {
    let mut rng = text::Rng::new(text::fnv1a(text_in.as_bytes()));
    let dims = usize::try_from(dims).unwrap_or(768);
    EmbeddingOut {
        values: (0..dims).map(|_| rng.unit_f32() / 16.0).collect(),
    }
}

fn embed(front: Front, model: &str, o: &serde_json::Map<String, Value>, batch: bool) -> Response {
    if !batch {
        return match request::embed(o, "", None) {
            Ok(e) => {
                let tokens = text::estimate_tokens(e.text.len());
                json_response(
                    StatusCode::OK,
                    render::pretty(&EmbedOut {
                        embedding: vector(&e.text, e.dimensions.unwrap_or(DEFAULT_DIMENSIONS)),
                        usage_metadata: (front == Front::Vertex)
                            .then(|| json!({"promptTokenCount": tokens})),
                    }),
                )
            }
            Err(msg) => invalid_argument(&msg),
        };
    }
    let Some(requests) = o.get("requests").and_then(Value::as_array) else {
        return invalid_argument(
            "* BatchEmbedContentsRequest.requests: requests is not specified\n",
        );
    };
    if requests.is_empty() || requests.len() > 100 {
        return invalid_argument(
            "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n",
        );
    }
    if let Some(k) = o.keys().find(|k| *k != "requests" && *k != "mock") {
        return invalid_argument(&format!(
            "Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."
        ));
    }
    let want = format!("models/{model}");
    let mut embeddings = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let Some(r) = r.as_object() else {
            return invalid_argument("* BatchEmbedContentsRequest.requests: must be objects\n");
        };
        match request::embed(r, &format!("requests[{i}]."), Some(&want)) {
            Ok(e) => embeddings.push(vector(&e.text, e.dimensions.unwrap_or(DEFAULT_DIMENSIONS))),
            Err(msg) => return invalid_argument(&msg),
        }
    }
    json_response(StatusCode::OK, render::pretty(&BatchOut { embeddings }))
}

#[cfg(test)]
mod tests;
