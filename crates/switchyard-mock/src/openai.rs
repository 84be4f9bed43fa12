//! OpenAI's wire format: chat completions (plain and SSE), embeddings, models and errors,
//! plus the Azure OpenAI deployment routes that share it.
//!
//! Shapes follow OpenAI's public API reference, field order included, so that a client
//! comparing bytes sees what it would see from the real service. Request parsing borrows from
//! the body and skips everything the mock does not need; responses are written from borrowed
//! structs (or, for streams, straight into one buffer) to keep the per-request cost small.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::{post, MethodRouter};
use axum::Router;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::knobs::Knobs;
use crate::sse::{Ending, EventBuf};
use crate::text::{self, push_json_str};
use crate::{Accounting, AuthOutcome, Shared};

/// Largest request body the mock reads; generous, since tests may send big prompts.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// OpenAI's upper bound for `n`.
const MAX_CHOICES: u32 = 128;
/// OpenAI's default embedding size (text-embedding-3-small, ada-002).
const DEFAULT_DIMENSIONS: u32 = 1536;
/// Upper bound for `dimensions`, to keep a single request from allocating without limit.
const MAX_DIMENSIONS: u32 = 8192;
pub(crate) const FINGERPRINT: &str = "fp_mock0001";
pub(crate) const SSE_CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";
const JSON_CONTENT_TYPE: &str = "application/json";
const MISSING_KEY_MESSAGE: &str =
    "No API key was provided. Send it in the Authorization header as a bearer token.";

/// The OpenAI and Azure OpenAI routes. `/v1/models` is shared with Anthropic, so the crate
/// root routes it and calls [`list_models`]/[`get_model`] for OpenAI clients.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/v1/chat/completions",
            only(post(chat).get(crate::stored_chat::list)),
        )
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            only(post(azure_chat)),
        )
        .route("/v1/embeddings", only(post(embeddings)))
        .route(
            "/openai/deployments/{deployment}/embeddings",
            only(post(azure_embeddings)),
        )
}

/// Gives a route OpenAI's 405 body instead of axum's empty one.
fn only(router: MethodRouter<Arc<Shared>>) -> MethodRouter<Arc<Shared>> {
    router.fallback(method_not_allowed)
}

// === errors ===

/// OpenAI's error envelope: `{"error":{"message","type","param","code"}}`.
#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// An OpenAI-shaped error response.
pub(crate) fn error_response(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = ErrorEnvelope {
        error: ErrorBody {
            message,
            kind,
            param,
            code,
        },
    };
    json_response(status, to_json(&body))
}

/// A 400 `invalid_request_error`, the most common rejection.
pub(crate) fn invalid_request(message: &str, param: Option<&str>, code: Option<&str>) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        param,
        code,
    )
}

/// The 404 for paths the mock does not serve.
pub(crate) async fn not_found(method: Method, uri: Uri) -> Response {
    let message = format!("Unknown request URL: {method} {}.", uri.path());
    error_response(
        StatusCode::NOT_FOUND,
        &message,
        "invalid_request_error",
        None,
        None,
    )
}

/// The 405 for a known path called with the wrong method.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = format!("Method {method} is not allowed for {}.", uri.path());
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &message,
        "invalid_request_error",
        None,
        None,
    )
}

/// The 401 for a missing or wrong credential, or `None` when the request may proceed.
pub(crate) fn auth_failure(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let (message, code) = match shared.check_auth(headers) {
        AuthOutcome::Allowed => return None,
        AuthOutcome::Missing => (MISSING_KEY_MESSAGE, None),
        AuthOutcome::Wrong => ("Incorrect API key provided.", Some("invalid_api_key")),
    };
    Some(error_response(
        StatusCode::UNAUTHORIZED,
        message,
        "invalid_request_error",
        None,
        code,
    ))
}

/// The error a `status` knob asks for, shaped the way OpenAI reports that status.
fn knob_error(status: StatusCode, model: &str, knobs: &Knobs) -> Response {
    let model_message;
    let (message, kind, code): (&str, &str, Option<&str>) = match status.as_u16() {
        401 => (
            "Incorrect API key provided.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        403 => (
            "Your account is not permitted to use this resource.",
            "request_forbidden",
            Some("unsupported_country_region_territory"),
        ),
        404 => {
            model_message =
                format!("The model `{model}` does not exist or you do not have access to it.");
            (
                &model_message,
                "invalid_request_error",
                Some("model_not_found"),
            )
        }
        429 => (
            "Rate limit reached for requests. Please try again shortly.",
            "requests",
            Some("rate_limit_exceeded"),
        ),
        500 => (
            "The mock server had an error while processing your request.",
            "server_error",
            None,
        ),
        502 => ("Bad gateway.", "server_error", None),
        503 => (
            "The server is overloaded or not ready yet.",
            "server_error",
            None,
        ),
        504 => ("The upstream timed out.", "server_error", None),
        400..=499 => (
            "The request was rejected by the mock (status knob).",
            "invalid_request_error",
            None,
        ),
        _ => (
            "The mock server failed (status knob).",
            "server_error",
            None,
        ),
    };
    let mut resp = error_response(status, message, kind, None, code);
    knobs.add_retry_after(&mut resp);
    let exhausted = status == StatusCode::TOO_MANY_REQUESTS;
    if exhausted && !resp.headers().contains_key(header::RETRY_AFTER) {
        // Real 429s always say when to come back; clients' backoff depends on it.
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
    }
    resp.extensions_mut().insert(Accounting {
        tokens: 0,
        retry_after: knobs.retry_after,
        exhausted,
        ..Accounting::default()
    });
    resp
}

/// Applies the knobs that replace the whole response (`status`, `raw_error_body`). Runs
/// before validation so tests can send minimal bodies.
pub(crate) fn knob_override(knobs: &Knobs, model: &str) -> Option<Response> {
    match knobs.error_status() {
        Err(code) => Some(invalid_request(
            &format!("mock.status {code} is not an HTTP status code."),
            Some("mock"),
            None,
        )),
        Ok(status) => {
            if let Some(resp) = knobs.raw_error_response() {
                return Some(resp);
            }
            status.map(|status| knob_error(status, model, knobs))
        }
    }
}

/// Maps a body that failed to deserialize to OpenAI's 400.
pub(crate) fn parse_error(err: &serde_json::Error) -> Response {
    use serde_json::error::Category;
    let message = match err.classify() {
        Category::Data => format!("Invalid request body: {err}."),
        Category::Io | Category::Syntax | Category::Eof => {
            format!("The request body is not valid JSON ({err}). Send a JSON object.")
        }
    };
    invalid_request(&message, None, None)
}

// === shared request plumbing ===

/// Authenticates and reads the body. Errors come back as ready responses.
pub(crate) async fn read_request(
    shared: &Shared,
    req: Request,
) -> Result<(Parts, Bytes), Response> {
    let (parts, body) = req.into_parts();
    if let Some(resp) = auth_failure(shared, &parts.headers) {
        return Err(resp);
    }
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => Ok((parts, bytes)),
        Err(_) => Err(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body could not be read or is too large.",
            "invalid_request_error",
            None,
            None,
        )),
    }
}

/// Waits out the configured latency, then hands back the response.
pub(crate) async fn delayed(resp: Response, latency: Duration) -> Response {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    resp
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Our response types serialize infallibly (string keys, no non-finite floats); the
    // fallback only exists to avoid a panic path.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    resp
}

pub(crate) fn unix_secs() -> u64 {
    crate::unix_millis() / 1000
}

// === chat completions ===

#[derive(Deserialize)]
struct ChatRequest<'a> {
    model: Option<String>,
    #[serde(borrow)]
    messages: Option<Vec<ChatMessage<'a>>>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    n: Option<u32>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    #[serde(borrow)]
    tools: Option<Vec<Tool<'a>>>,
    tool_choice: Option<Value>,
    /// Keep the completion for the stored-completion routes (`stored_chat`).
    store: Option<bool>,
    mock: Option<Knobs>,
}

#[derive(Deserialize)]
struct ChatMessage<'a> {
    #[serde(borrow)]
    role: Option<Cow<'a, str>>,
    /// Kept raw: the mock only hashes it and estimates its size.
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow)]
    function: Option<ToolFunction<'a>>,
}

#[derive(Deserialize)]
struct ToolFunction<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    parameters: Option<&'a RawValue>,
}

/// What one choice says.
enum Output {
    /// The request description; streamed as one piece, since it is JSON for tests to parse.
    Echo { text: String, tokens: u64 },
    Text {
        text: String,
        finish: &'static str,
        tokens: u64,
    },
    Tool {
        id: String,
        name: String,
        arguments: String,
        tokens: u64,
    },
}

impl Output {
    fn tokens(&self) -> u64 {
        match self {
            Output::Echo { tokens, .. }
            | Output::Text { tokens, .. }
            | Output::Tool { tokens, .. } => *tokens,
        }
    }
}

async fn chat(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    chat_common(&shared, None, req).await
}

async fn azure_chat(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    req: Request,
) -> Response {
    chat_common(&shared, Some(&deployment), req).await
}

async fn chat_common(shared: &Shared, deployment: Option<&str>, req: Request) -> Response {
    let (parts, body) = match read_request(shared, req).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let (resp, latency) = chat_response(shared, deployment, &parts, &body);
    delayed(resp, latency).await
}

/// Everything about a chat request except waiting; synchronous so nothing borrowed from the
/// body lives across an await.
fn chat_response(
    shared: &Shared,
    deployment: Option<&str>,
    parts: &Parts,
    body: &[u8],
) -> (Response, Duration) {
    let req: ChatRequest<'_> = match serde_json::from_slice(body) {
        Ok(req) => req,
        Err(err) => return (parse_error(&err), shared.cfg.latency),
    };
    let knobs = match Knobs::resolve(&parts.headers, req.mock.clone()) {
        Ok(k) => k,
        Err(msg) => {
            return (
                invalid_request(&msg, Some("mock"), None),
                shared.cfg.latency,
            )
        }
    };
    let latency = knobs.latency(&shared.cfg);
    let model = req.model.as_deref().or(deployment);
    if let Some(resp) = knob_override(&knobs, model.unwrap_or("")) {
        return (resp, latency);
    }
    let Some(model) = model else {
        return (
            invalid_request("You must provide a model parameter.", Some("model"), None),
            latency,
        );
    };
    let Some(messages) = req.messages.as_deref() else {
        return (
            invalid_request(
                "Missing required parameter: 'messages'.",
                Some("messages"),
                None,
            ),
            latency,
        );
    };
    if messages.is_empty() {
        return (
            invalid_request(
                "Invalid 'messages': expected an array with at least one message.",
                Some("messages"),
                Some("empty_array"),
            ),
            latency,
        );
    }
    let n = req.n.unwrap_or(1);
    if !(1..=MAX_CHOICES).contains(&n) {
        return (
            invalid_request(
                &format!("Invalid 'n': expected a value between 1 and {MAX_CHOICES}."),
                Some("n"),
                None,
            ),
            latency,
        );
    }
    let id = text::random_id("chatcmpl-", 29);
    let stream = req.stream.unwrap_or(false);
    if knobs.malformed() && !stream {
        let mut broken = br#"{"id":"#.to_vec();
        push_json_str(&mut broken, &id);
        broken.extend_from_slice(
            br#","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"trunc"#,
        );
        return (json_response(StatusCode::OK, broken), latency);
    }

    let prompt_tokens = prompt_tokens(messages);
    let seed = text_seed(messages);
    let echo = knobs.echo().then(|| echo_json(parts, body));
    let tool = if echo.is_none() {
        forced_tool(&req, &knobs)
    } else {
        None
    };
    let limit = req.max_completion_tokens.or(req.max_tokens);
    let outputs: Vec<Output> = (0..n)
        .map(|i| {
            // Choice 0 uses the plain seed, so `n` does not change the first answer.
            let choice_seed = seed.wrapping_add(u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            if let Some(echo) = &echo {
                Output::Echo {
                    text: echo.clone(),
                    tokens: text::estimate_tokens(echo.len()),
                }
            } else if let Some((name, params)) = &tool {
                let arguments = fake_arguments(*params, choice_seed);
                Output::Tool {
                    id: text::random_id("call_", 24),
                    tokens: text::estimate_tokens(arguments.len()) + 5,
                    name: name.to_string(),
                    arguments,
                }
            } else {
                let mut words = knobs
                    .words
                    .unwrap_or_else(|| text::default_word_count(choice_seed));
                let mut finish = "stop";
                if let Some(limit) = limit {
                    if words > limit {
                        words = limit;
                        finish = "length";
                    }
                }
                Output::Text {
                    text: text::fake_text(choice_seed, words),
                    finish,
                    tokens: u64::from(words),
                }
            }
        })
        .collect();
    let completion_tokens = outputs.iter().map(Output::tokens).sum();
    let usage = Usage::new(prompt_tokens, completion_tokens);
    let created = unix_secs();
    if req.store == Some(true) {
        let completion = ChatCompletion::new(&id, created, model, &outputs, &usage);
        let value = serde_json::to_value(&completion).unwrap_or(Value::Null);
        crate::stored_chat::keep(shared, value, body);
    }

    let mut resp = if stream {
        let include_usage = req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let events = render_stream(
            &id,
            created,
            model,
            &outputs,
            include_usage.then_some(&usage),
            knobs.malformed(),
        );
        let (keep, ending) = match (knobs.disconnect_after_chunks, knobs.stall_after_chunks) {
            (Some(k), _) => (Some(k as usize), Ending::Abort),
            (None, Some(k)) => (Some(k as usize), Ending::Stall),
            (None, None) => (None, Ending::Finish),
        };
        let body = events.into_body(knobs.chunk_delay(&shared.cfg), keep, ending);
        let mut resp = Response::new(Body::new(body));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SSE_CONTENT_TYPE),
        );
        resp
    } else {
        let completion = ChatCompletion::new(&id, created, model, &outputs, &usage);
        json_response(StatusCode::OK, to_json(&completion))
    };
    resp.extensions_mut().insert(Accounting {
        tokens: usage.total_tokens,
        ..Accounting::default()
    });
    (resp, latency)
}

/// Prompt-token estimate: three tokens of framing per message plus about one token per four
/// characters of its (raw JSON) content, plus three for priming the reply; the same shape as
/// OpenAI's published counting recipe, with characters standing in for a tokenizer.
fn prompt_tokens(messages: &[ChatMessage<'_>]) -> u64 {
    let body: u64 = messages
        .iter()
        .map(|m| {
            3 + m
                .content
                .map_or(0, |c| text::estimate_tokens(c.get().len()))
        })
        .sum();
    body + 3
}

/// The reply's seed: a hash of the last user message, so the same question always gets the
/// same answer.
fn text_seed(messages: &[ChatMessage<'_>]) -> u64 {
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.role.as_deref() == Some("user"));
    let content = last_user.or(messages.last()).and_then(|m| m.content);
    text::fnv1a(content.map_or("", |c| c.get()).as_bytes())
}

/// The tool to call, if any: forced by `tool_choice` (a named function, or `"required"`,
/// which takes the first tool) or by the `tool_call` knob.
fn forced_tool<'r>(
    req: &'r ChatRequest<'_>,
    knobs: &Knobs,
) -> Option<(Cow<'r, str>, Option<&'r RawValue>)> {
    let tools = req.tools.as_deref().unwrap_or_default();
    let named = req
        .tool_choice
        .as_ref()
        .and_then(|c| c.get("function"))
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str);
    let required = req.tool_choice.as_ref().and_then(Value::as_str) == Some("required");
    if named.is_none() && !required && !knobs.tool_call() {
        return None;
    }
    let find = |name: &str| {
        tools
            .iter()
            .filter_map(|t| t.function.as_ref())
            .find(|f| f.name == name)
    };
    match named {
        Some(name) => Some((Cow::Borrowed(name), find(name).and_then(|f| f.parameters))),
        None => match tools.iter().find_map(|t| t.function.as_ref()) {
            Some(f) => Some((Cow::Borrowed(&*f.name), f.parameters)),
            None if knobs.tool_call() => Some((Cow::Borrowed("mock_tool"), None)),
            None => None,
        },
    }
}

/// Fake arguments that fit the tool's JSON schema well enough for a client to parse: every
/// declared property gets a value of its declared type (or the first `enum` value).
pub(crate) fn fake_arguments(parameters: Option<&RawValue>, seed: u64) -> String {
    let schema: Value = parameters
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or(Value::Null);
    let mut args = serde_json::Map::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (i, (name, prop)) in props.iter().enumerate() {
            let value = if let Some(first) = prop.get("enum").and_then(|e| e.get(0)) {
                first.clone()
            } else {
                match prop.get("type").and_then(Value::as_str) {
                    Some("integer") => Value::from(42),
                    Some("number") => Value::from(2.5),
                    Some("boolean") => Value::Bool(true),
                    Some("array") => Value::Array(Vec::new()),
                    Some("object") => Value::Object(serde_json::Map::new()),
                    Some("null") => Value::Null,
                    _ => Value::from(text::fake_word(seed.wrapping_add(i as u64))),
                }
            };
            args.insert(name.clone(), value);
        }
    }
    serde_json::to_string(&Value::Object(args)).unwrap_or_else(|_| "{}".to_owned())
}

// --- echo ---

#[derive(Serialize)]
struct Echo<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: EchoHeaders<'a>,
    body: Value,
}

/// Every request header, lower-case name to value; repeated headers are joined with `, `.
/// Shared with the Anthropic echo, which reports headers the same way.
pub(crate) struct EchoHeaders<'a>(pub(crate) &'a HeaderMap);

impl Serialize for EchoHeaders<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.keys_len()))?;
        for name in self.0.keys() {
            let mut joined = String::new();
            for (i, value) in self.0.get_all(name).iter().enumerate() {
                if i > 0 {
                    joined.push_str(", ");
                }
                joined.push_str(&String::from_utf8_lossy(value.as_bytes()));
            }
            map.serialize_entry(name.as_str(), &joined)?;
        }
        map.end()
    }
}

/// The compact JSON description of the request that `echo` replies with.
pub(crate) fn echo_json(parts: &Parts, body: &[u8]) -> String {
    let echo = Echo {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: EchoHeaders(&parts.headers),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    };
    serde_json::to_string(&echo).unwrap_or_default()
}

// --- non-stream response ---

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<Choice<'a>>,
    usage: &'a Usage,
    service_tier: &'static str,
    system_fingerprint: &'static str,
}

impl<'a> ChatCompletion<'a> {
    fn new(
        id: &'a str,
        created: u64,
        model: &'a str,
        outputs: &'a [Output],
        usage: &'a Usage,
    ) -> Self {
        Self {
            id,
            object: "chat.completion",
            created,
            model,
            choices: outputs
                .iter()
                .enumerate()
                .map(|(i, o)| Choice::new(i, o))
                .collect(),
            usage,
            service_tier: "default",
            system_fingerprint: FINGERPRINT,
        }
    }
}

#[derive(Serialize)]
struct Choice<'a> {
    index: usize,
    message: AssistantMessage<'a>,
    logprobs: (),
    finish_reason: &'static str,
}

impl<'a> Choice<'a> {
    fn new(index: usize, output: &'a Output) -> Self {
        let (content, tool_calls, finish_reason) = match output {
            Output::Echo { text, .. } => (Some(text.as_str()), None, "stop"),
            Output::Text { text, finish, .. } => (Some(text.as_str()), None, *finish),
            Output::Tool {
                id,
                name,
                arguments,
                ..
            } => (
                None,
                Some([ToolCall {
                    id,
                    kind: "function",
                    function: FunctionCall { name, arguments },
                }]),
                "tool_calls",
            ),
        };
        Choice {
            index,
            message: AssistantMessage {
                role: "assistant",
                content,
                tool_calls,
                refusal: (),
                annotations: [],
            },
            logprobs: (),
            finish_reason,
        }
    }
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCall<'a>; 1]>,
    refusal: (),
    annotations: [(); 0],
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCall<'a>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
}

impl Usage {
    fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: PromptDetails {
                cached_tokens: 0,
                audio_tokens: 0,
            },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: 0,
                audio_tokens: 0,
                accepted_prediction_tokens: 0,
                rejected_prediction_tokens: 0,
            },
        }
    }
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u64,
    audio_tokens: u64,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
    audio_tokens: u64,
    accepted_prediction_tokens: u64,
    rejected_prediction_tokens: u64,
}

// --- stream ---

/// One `delta` in a streamed choice.
enum Delta<'a> {
    Role,
    Content(&'a str),
    ToolStart { id: &'a str, name: &'a str },
    ToolArgs(&'a str),
    Finish(&'static str),
}

/// The bytes that close a chunk's `choices` array and the chunk itself.
const CHOICES_KEY: &[u8] = b",\"choices\":[";

/// Renders the whole stream: per choice a role delta, content (or tool-call) deltas and a
/// finish delta, interleaved across choices as OpenAI does for `n > 1`; then the usage chunk
/// when asked for, then `[DONE]`.
fn render_stream(
    id: &str,
    created: u64,
    model: &str,
    outputs: &[Output],
    usage: Option<&Usage>,
    malformed: bool,
) -> EventBuf {
    let mut prefix = Vec::with_capacity(192);
    prefix.extend_from_slice(b"data: {\"id\":");
    push_json_str(&mut prefix, id);
    prefix.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
    prefix.extend_from_slice(created.to_string().as_bytes());
    prefix.extend_from_slice(b",\"model\":");
    push_json_str(&mut prefix, model);
    prefix.extend_from_slice(b",\"service_tier\":\"default\",\"system_fingerprint\":\"");
    prefix.extend_from_slice(FINGERPRINT.as_bytes());
    prefix.push(b'"');
    let head_len = prefix.len();
    prefix.extend_from_slice(CHOICES_KEY);
    let suffix: &[u8] = if usage.is_some() {
        b"],\"usage\":null}\n\n"
    } else {
        b"]}\n\n"
    };

    let lists: Vec<Vec<Delta<'_>>> = outputs.iter().map(deltas).collect();
    let rounds = lists.iter().map(Vec::len).max().unwrap_or(0);
    let total: usize = lists.iter().map(Vec::len).sum();
    let mut out = EventBuf::with_capacity(total + 3, prefix.len() + 96);
    for round in 0..rounds {
        for (index, list) in lists.iter().enumerate() {
            let Some(delta) = list.get(round) else {
                continue;
            };
            let buf = out.buf();
            buf.extend_from_slice(&prefix);
            write_choice(buf, index, delta);
            buf.extend_from_slice(suffix);
            out.end_event();
            if malformed && out.len() == 1 {
                // A data line whose JSON never closes, as a truncated upstream would send.
                let buf = out.buf();
                buf.extend_from_slice(&prefix[..head_len]);
                buf.extend_from_slice(
                    b",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"unterminated\n\n",
                );
                out.end_event();
            }
        }
    }
    if let Some(usage) = usage {
        let buf = out.buf();
        buf.extend_from_slice(&prefix);
        buf.extend_from_slice(b"],\"usage\":");
        buf.extend_from_slice(&to_json(usage));
        buf.extend_from_slice(b"}\n\n");
        out.end_event();
    }
    out.buf().extend_from_slice(b"data: [DONE]\n\n");
    out.end_event();
    out
}

/// Size of each streamed fragment of tool-call arguments, in characters.
const ARGUMENT_FRAGMENT_CHARS: usize = 8;

fn deltas(output: &Output) -> Vec<Delta<'_>> {
    match output {
        Output::Echo { text, .. } => {
            vec![Delta::Role, Delta::Content(text), Delta::Finish("stop")]
        }
        Output::Text { text, finish, .. } => {
            let mut list = Vec::with_capacity(text.len() / 5 + 2);
            list.push(Delta::Role);
            // Pieces keep their trailing space, so joining the deltas gives back the text.
            list.extend(text.split_inclusive(' ').map(Delta::Content));
            list.push(Delta::Finish(finish));
            list
        }
        Output::Tool {
            id,
            name,
            arguments,
            ..
        } => {
            let mut list = vec![Delta::ToolStart { id, name }];
            let mut rest = arguments.as_str();
            while !rest.is_empty() {
                let cut = rest
                    .char_indices()
                    .nth(ARGUMENT_FRAGMENT_CHARS)
                    .map_or(rest.len(), |(i, _)| i);
                let (piece, tail) = rest.split_at(cut);
                list.push(Delta::ToolArgs(piece));
                rest = tail;
            }
            list.push(Delta::Finish("tool_calls"));
            list
        }
    }
}

fn write_choice(buf: &mut Vec<u8>, index: usize, delta: &Delta<'_>) {
    buf.extend_from_slice(b"{\"index\":");
    buf.extend_from_slice(index.to_string().as_bytes());
    buf.extend_from_slice(b",\"delta\":");
    let mut finish = None;
    match delta {
        Delta::Role => {
            buf.extend_from_slice(br#"{"role":"assistant","content":"","refusal":null}"#);
        }
        Delta::Content(piece) => {
            buf.extend_from_slice(br#"{"content":"#);
            push_json_str(buf, piece);
            buf.push(b'}');
        }
        Delta::ToolStart { id, name } => {
            buf.extend_from_slice(
                br#"{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"#,
            );
            push_json_str(buf, id);
            buf.extend_from_slice(br#","type":"function","function":{"name":"#);
            push_json_str(buf, name);
            buf.extend_from_slice(br#","arguments":""}}],"refusal":null}"#);
        }
        Delta::ToolArgs(piece) => {
            buf.extend_from_slice(br#"{"tool_calls":[{"index":0,"function":{"arguments":"#);
            push_json_str(buf, piece);
            buf.extend_from_slice(b"}}]}");
        }
        Delta::Finish(reason) => {
            buf.extend_from_slice(b"{}");
            finish = Some(*reason);
        }
    }
    buf.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
    match finish {
        Some(reason) => push_json_str(buf, reason),
        None => buf.extend_from_slice(b"null"),
    }
    buf.push(b'}');
}

// === embeddings ===

#[derive(Deserialize)]
struct EmbeddingsRequest {
    model: Option<String>,
    input: Option<Value>,
    encoding_format: Option<String>,
    dimensions: Option<u32>,
    mock: Option<Knobs>,
}

/// One input to embed: text or pre-tokenized ids.
enum EmbedInput<'a> {
    Text(&'a str),
    Tokens(&'a [Value]),
}

impl EmbedInput<'_> {
    /// The vector's seed: a function of the input alone, so an input embeds the same way
    /// whatever batch it arrives in.
    fn seed(&self) -> u64 {
        match self {
            EmbedInput::Text(s) => text::fnv1a(s.as_bytes()),
            EmbedInput::Tokens(ids) => {
                let mut bytes = Vec::with_capacity(ids.len() * 8);
                for id in *ids {
                    bytes.extend_from_slice(&id.as_u64().unwrap_or(0).to_le_bytes());
                }
                // Keeps token inputs apart from text inputs with the same bytes.
                text::fnv1a(&bytes) ^ 0x746f_6b65_6e73
            }
        }
    }

    fn tokens(&self) -> u64 {
        match self {
            EmbedInput::Text(s) => text::estimate_tokens(s.chars().count()),
            EmbedInput::Tokens(ids) => ids.len() as u64,
        }
    }
}

/// Splits `input` into the four shapes OpenAI accepts; `None` if it is none of them or empty.
fn embed_inputs(input: &Value) -> Option<Vec<EmbedInput<'_>>> {
    let is_token = |v: &Value| v.as_u64().is_some();
    match input {
        Value::String(s) if !s.is_empty() => Some(vec![EmbedInput::Text(s)]),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) if items.iter().all(is_token) => Some(vec![EmbedInput::Tokens(items)]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) if !s.is_empty() => Some(EmbedInput::Text(s)),
                Value::Array(ids) if !ids.is_empty() && ids.iter().all(is_token) => {
                    Some(EmbedInput::Tokens(ids))
                }
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<Embedding>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// A deterministic unit vector for `seed`.
fn fake_vector(seed: u64, dims: u32) -> Vec<f32> {
    let mut rng = text::Rng::new(seed);
    let mut v: Vec<f32> = (0..dims).map(|_| rng.unit_f32()).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x /= norm;
        }
    }
    v
}

async fn embeddings(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    embeddings_common(&shared, None, req).await
}

async fn azure_embeddings(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    req: Request,
) -> Response {
    embeddings_common(&shared, Some(&deployment), req).await
}

async fn embeddings_common(shared: &Shared, deployment: Option<&str>, req: Request) -> Response {
    let (_parts, body) = match read_request(shared, req).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let (resp, latency) = embeddings_response(shared, deployment, &body);
    delayed(resp, latency).await
}

fn embeddings_response(
    shared: &Shared,
    deployment: Option<&str>,
    body: &[u8],
) -> (Response, Duration) {
    let req: EmbeddingsRequest = match serde_json::from_slice(body) {
        Ok(req) => req,
        Err(err) => return (parse_error(&err), shared.cfg.latency),
    };
    let knobs = req.mock.unwrap_or_default();
    let latency = knobs.latency(&shared.cfg);
    let model = req.model.as_deref().or(deployment);
    if let Some(resp) = knob_override(&knobs, model.unwrap_or("")) {
        return (resp, latency);
    }
    let Some(model) = model else {
        return (
            invalid_request("You must provide a model parameter.", Some("model"), None),
            latency,
        );
    };
    let Some(inputs) = req.input.as_ref().and_then(embed_inputs) else {
        return (
            invalid_request(
                "Invalid 'input': expected a non-empty string, array of strings, array of token \
                 ids or array of token id arrays.",
                Some("input"),
                None,
            ),
            latency,
        );
    };
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return (
                invalid_request(
                    "Invalid 'encoding_format': expected 'float' or 'base64'.",
                    Some("encoding_format"),
                    None,
                ),
                latency,
            )
        }
    };
    let dims = req.dimensions.unwrap_or(DEFAULT_DIMENSIONS);
    if !(1..=MAX_DIMENSIONS).contains(&dims) {
        return (
            invalid_request(
                &format!("Invalid 'dimensions': expected a value between 1 and {MAX_DIMENSIONS}."),
                Some("dimensions"),
                None,
            ),
            latency,
        );
    }
    if knobs.malformed() {
        let broken = br#"{"object":"list","data":[{"object":"embedding","#.to_vec();
        return (json_response(StatusCode::OK, broken), latency);
    }
    let tokens: u64 = inputs.iter().map(EmbedInput::tokens).sum();
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let v = fake_vector(input.seed(), dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Vector::Base64(text::base64(&bytes))
            } else {
                Vector::Float(v)
            };
            Embedding {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    let list = EmbeddingList {
        object: "list",
        data,
        model,
        usage: EmbeddingUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    };
    let mut resp = json_response(StatusCode::OK, to_json(&list));
    resp.extensions_mut().insert(Accounting {
        tokens,
        ..Accounting::default()
    });
    (resp, latency)
}

// === models ===

/// Fixed creation time for every mock model, so listings are stable.
const MODEL_CREATED: u64 = 1_700_000_000;
/// The models `GET /v1/models` lists: one chat model, one embedding model.
const LISTED_MODELS: [&str; 2] = ["mock-gpt", "mock-embed"];

#[derive(Serialize)]
struct Model<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

impl<'a> Model<'a> {
    fn new(id: &'a str) -> Self {
        Self {
            id,
            object: "model",
            created: MODEL_CREATED,
            owned_by: "switchyard-mock",
        }
    }
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<Model<'a>>,
}

/// `GET /v1/models` in OpenAI's shape.
pub(crate) async fn list_models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(resp) = auth_failure(&shared, &headers) {
        return resp;
    }
    let list = ModelList {
        object: "list",
        data: LISTED_MODELS.iter().map(|id| Model::new(id)).collect(),
    };
    json_response(StatusCode::OK, to_json(&list))
}

/// `GET /v1/models/{id}` in OpenAI's shape. Any id exists except those starting with
/// `missing`, which lets tests provoke a 404.
pub(crate) async fn get_model(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(resp) = auth_failure(&shared, &headers) {
        return resp;
    }
    if id.starts_with("missing") {
        let message = format!("The model `{id}` does not exist or you do not have access to it.");
        return error_response(
            StatusCode::NOT_FOUND,
            &message,
            "invalid_request_error",
            Some("model"),
            Some("model_not_found"),
        );
    }
    json_response(StatusCode::OK, to_json(&Model::new(&id)))
}
