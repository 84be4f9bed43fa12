//! Provider adapters: how each upstream API is spoken.
//!
//! Adapters are sans-IO: they build the upstream request, rewrite or translate what comes back
//! and classify errors, but never touch the network, tenants, limits or caches. That keeps them
//! testable with fixtures alone. Adding a provider means one file here and one arm in
//! [`build`].

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod openai;
pub(crate) mod responses;

use std::sync::Arc;

pub use switchyard_types::sse;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use switchyard_types::json;
use switchyard_types::openai::Usage;

use crate::config::{Endpoint, ProviderConfig, ProviderKind};
use crate::error::{FailureKind, GatewayError, UpstreamErrorKind};
use switchyard_types::anthropic::TranslateError;

/// Which client API operation is being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /v1/chat/completions` (OpenAI format).
    ChatCompletions,
    /// `POST /v1/embeddings` (OpenAI format).
    Embeddings,
    /// `POST /v1/messages` (Anthropic format).
    Messages,
    /// `POST /v1/completions`, OpenAI's legacy completions (OpenAI format; only OpenAI-type
    /// deployments offer it).
    Completions,
    /// A request forwarded as it is to a provider's path (`passthrough:`); it never reaches an
    /// adapter's `build_request`.
    Passthrough,
    /// `POST /v1/responses` (OpenAI's Responses API).
    Responses,
    /// `GET`/`DELETE /v1/responses/{id}`, `POST /v1/responses/{id}/cancel`,
    /// `GET /v1/responses/{id}/input_items`: a stored response, served by the gateway's store
    /// or forwarded to the deployment that created it (never built by an adapter's
    /// `build_request`).
    ResponsesResource,
    /// `GET /v1/chat/completions` (the list), `GET`/`POST`/`DELETE
    /// /v1/chat/completions/{id}`, `GET /v1/chat/completions/{id}/messages`: a stored chat
    /// completion, forwarded to the deployment that created it (never built by an adapter's
    /// `build_request`).
    ChatCompletionsResource,
}

impl Operation {
    /// Stable name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat.completions",
            Self::Embeddings => "embeddings",
            Self::Messages => "messages",
            Self::Responses => "responses",
            Self::ResponsesResource => "responses.resource",
            Self::ChatCompletionsResource => "chat.completions.resource",
            Self::Completions => "completions",
            Self::Passthrough => "passthrough",
        }
    }

    /// The endpoint, for messages that name it.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/v1/chat/completions",
            Self::Embeddings => "/v1/embeddings",
            Self::Messages => "/v1/messages",
            Self::Completions => "/v1/completions",
            Self::Passthrough => "a pass-through endpoint",
            Self::Responses => "/v1/responses",
            Self::ResponsesResource => "/v1/responses/{id}",
            Self::ChatCompletionsResource => "/v1/chat/completions/{id}",
        }
    }

    /// The GenAI semantic-convention operation name (`gen_ai.operation.name`), for traces.
    pub fn genai_name(self) -> &'static str {
        match self {
            Self::ChatCompletions
            | Self::Messages
            | Self::Responses
            | Self::ChatCompletionsResource => "chat",
            Self::Embeddings => "embeddings",
            Self::Completions => "text_completion",
            Self::Passthrough => "passthrough",
            Self::ResponsesResource => "responses",
        }
    }

    /// The wire format the client speaks, which decides the shape of every answer, errors
    /// included.
    pub fn client_api(self) -> ClientApi {
        match self {
            Self::ChatCompletions
            | Self::Embeddings
            | Self::Completions
            | Self::Passthrough
            | Self::Responses
            | Self::ResponsesResource
            | Self::ChatCompletionsResource => ClientApi::OpenAi,
            Self::Messages => ClientApi::Anthropic,
        }
    }
}

/// The API dialect a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientApi {
    /// OpenAI's: errors as `{"error": {...}}`, streams as `data:` lines ending in `[DONE]`.
    OpenAi,
    /// Anthropic's Messages API: errors as `{"type": "error", ...}`, named stream events.
    Anthropic,
}

/// What an adapter needs to build one upstream request.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The operation the client called.
    pub op: Operation,
    /// The client's body, already validated by the pipeline's `parse` stage.
    pub body: &'a [u8],
    /// The client's headers (an adapter may forward protocol headers such as
    /// `anthropic-beta`; credentials are never forwarded).
    pub headers: &'a HeaderMap,
    /// The deployment's model name.
    pub model: &'a str,
    /// The model name the client asked for, which answers carry back.
    pub client_model: &'a Arc<str>,
}

/// A request ready to be sent upstream, with the translator for whatever comes back.
pub struct UpstreamRequest {
    /// Full URL.
    pub uri: http::Uri,
    /// Headers, credentials included (marked sensitive).
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
    /// Turns the upstream's success answer into the client's.
    pub reply: Box<dyn Reply>,
}

impl std::fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamRequest")
            .field("uri", &self.uri)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A non-streaming response for the client, and the usage the provider reported in it.
#[derive(Debug)]
pub struct ResponseBody {
    /// The body to send.
    pub body: Bytes,
    /// Usage, when the provider reported it.
    pub usage: Option<Usage>,
}

/// Where a stream stands after one upstream event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    /// More events are expected.
    Continue,
    /// The upstream's end marker arrived (`[DONE]`, `message_stop`); the stream is complete.
    Done,
    /// The upstream reported an error inside the stream; it was forwarded as the last event.
    UpstreamError,
}

/// How an upstream stream body is cut into the events handed to [`Reply::event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events: an event ends at a blank line; it is handed over without it.
    Sse,
    /// AWS's binary `application/vnd.amazon.eventstream`: each message starts with its own
    /// big-endian `u32` total length; it is handed over whole (prelude and CRCs included), so
    /// the adapter can verify it.
    EventStream,
}

/// The per-request translator of a successful upstream answer into the client's format.
///
/// It is stateful because streamed translations are: tool-call indexes, the message id and
/// usage arrive in one event and are needed in later ones.
pub trait Reply: Send + 'static {
    /// Turns a complete (non-streaming) upstream body into the client's body.
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError>;

    /// Turns one complete upstream server-sent event (its lines, without the blank line that
    /// ends it) into zero or more client events appended to `out`, each with its own blank
    /// line. On error nothing may have been appended.
    fn event(&mut self, event: &[u8], out: &mut BytesMut) -> Result<StreamStatus, GatewayError>;

    /// Usage seen in the stream so far (the final count once it ended).
    fn usage(&self) -> Option<Usage>;

    /// How the upstream's stream is framed; server-sent events unless the provider says
    /// otherwise.
    fn framing(&self) -> Framing {
        Framing::Sse
    }

    /// Called once when the upstream body ended cleanly before any event returned
    /// [`StreamStatus::Done`] or [`StreamStatus::UpstreamError`], for formats whose end is the
    /// end of the body rather than a marker (Bedrock's usage `metadata` may be missing after
    /// `messageStop`). The adapter may append closing events to `out` and report `Done`; the
    /// default reports `Continue`, which the relay treats as a stream that broke off.
    fn end_of_stream(&mut self, _out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        Ok(StreamStatus::Continue)
    }
}

/// A provider adapter.
pub trait Provider: Send + Sync + 'static {
    /// The provider's configured name.
    fn name(&self) -> &Arc<str>;

    /// Builds the upstream request for a client request, translating formats when the client's
    /// and the provider's differ.
    fn build_request(&self, x: &Exchange<'_>) -> Result<UpstreamRequest, GatewayError>;

    /// Classifies a non-success upstream response.
    fn classify_error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> GatewayError;

    /// Whether the upstream serves the Responses API itself (and so keeps the responses it
    /// creates), rather than the gateway translating to chat and keeping them.
    fn serves_responses(&self) -> bool {
        false
    }

    /// Builds a request for a stored response's sub-resource at an upstream that
    /// [serves the Responses API](Provider::serves_responses): `tail` is the path below
    /// `responses/` with its query (`resp_1`, `resp_1/cancel`, `resp_1/input_items?limit=2`).
    fn responses_resource(
        &self,
        _method: &http::Method,
        _tail: &str,
    ) -> Result<ResourceRequest, GatewayError> {
        Err(GatewayError::Internal(format!(
            "provider `{}` does not serve the Responses API",
            self.name()
        )))
    }

    /// Builds the request counting the input tokens of a Responses request (`POST
    /// /v1/responses/input_tokens`, whose body `x` carries) at an upstream that does not
    /// [serve the Responses API](Provider::serves_responses) but counts tokens itself; its
    /// reply answers OpenAI's `response.input_tokens` object. `None` when the provider has no
    /// way to count.
    fn responses_input_tokens(
        &self,
        _x: &Exchange<'_>,
    ) -> Option<Result<UpstreamRequest, GatewayError>> {
        None
    }

    /// Whether the upstream keeps the chat completions it makes with `store: true` (OpenAI's
    /// stored completions), so the gateway can forward the stored-completion endpoints to it.
    fn keeps_chat_completions(&self) -> bool {
        false
    }

    /// Builds a request for a stored chat completion at an upstream that
    /// [keeps them](Provider::keeps_chat_completions): `tail` is the path below
    /// `chat/completions/` with its query (`chatcmpl-1`, `chatcmpl-1/messages?limit=2`).
    fn chat_completions_resource(
        &self,
        _method: &http::Method,
        _tail: &str,
    ) -> Result<ResourceRequest, GatewayError> {
        Err(GatewayError::Internal(format!(
            "provider `{}` does not keep chat completions",
            self.name()
        )))
    }
}

/// A body-less request for an upstream resource (no reply translator: the answer is relayed).
#[derive(Debug)]
pub struct ResourceRequest {
    /// The method.
    pub method: http::Method,
    /// Full URL.
    pub uri: http::Uri,
    /// Headers, credentials included (marked sensitive).
    pub headers: HeaderMap,
}

/// Builds the adapter for a provider; `mock_url` is where the embedded mock listens, if running.
pub fn build(
    cfg: &ProviderConfig,
    mock_url: Option<&str>,
) -> Result<Arc<dyn Provider>, GatewayError> {
    let base = match &cfg.endpoint {
        Endpoint::Url(u) => u.clone(),
        // Bedrock's paths (`/model/{id}/converse`) start at the root, as on AWS.
        Endpoint::EmbeddedMock if matches!(cfg.kind, ProviderKind::Bedrock { .. }) => mock_url
            .map(str::to_owned)
            .ok_or_else(|| GatewayError::Internal("embedded mock is not running".into()))?,
        Endpoint::EmbeddedMock => mock_url
            .map(|m| match cfg.kind {
                ProviderKind::Gemini => format!("{m}/v1beta"),
                ProviderKind::Vertex => format!("{m}/{}", gemini::MOCK_VERTEX_PATH),
                _ => format!("{m}/v1"),
            })
            .ok_or_else(|| GatewayError::Internal("embedded mock is not running".into()))?,
    };
    Ok(match &cfg.kind {
        ProviderKind::OpenAi => Arc::new(openai::OpenAi::new(cfg, base, None)?),
        ProviderKind::Azure { api_version } => {
            Arc::new(openai::OpenAi::new(cfg, base, Some(api_version.clone()))?)
        }
        ProviderKind::Anthropic { api_version } => Arc::new(anthropic::Anthropic::new(
            cfg,
            &base,
            api_version.as_deref(),
        )?),
        ProviderKind::Bedrock {
            region,
            credentials,
        } => Arc::new(bedrock::Bedrock::new(cfg, &base, region, credentials)?),
        ProviderKind::Gemini => {
            Arc::new(gemini::Gemini::new(cfg, &base, gemini::Flavor::AiStudio)?)
        }
        ProviderKind::Vertex => Arc::new(gemini::Gemini::new(cfg, &base, gemini::Flavor::Vertex)?),
    })
}

/// A client request an adapter cannot express upstream: the client's fault, so a 400 naming
/// the field.
pub(crate) fn untranslatable(e: TranslateError) -> GatewayError {
    GatewayError::InvalidField {
        param: e.param.unwrap_or_default(),
        message: e.message,
    }
}

/// The 400 for an endpoint a provider type does not offer (legacy completions at Anthropic,
/// Gemini or Bedrock): never answered by a silently different API.
pub(crate) fn not_offered(
    op: Operation,
    x: &Exchange<'_>,
    provider: &str,
    kind: &str,
) -> GatewayError {
    GatewayError::Unsupported {
        param: "model".into(),
        message: format!(
            "The endpoint `{}` is not offered by the deployment `{provider}/{}` (provider type \
             `{kind}`) that serves the model `{}`; only OpenAI-type deployments offer it.",
            op.endpoint(),
            x.model,
            x.client_model
        ),
        code: "unsupported_endpoint",
    }
}

/// The error for an operation that adapters never build a request for (stored-response
/// sub-resources go through [`Provider::responses_resource`], stored chat completions through
/// [`Provider::chat_completions_resource`]).
pub(crate) fn not_built(op: Operation) -> GatewayError {
    GatewayError::Internal(format!("`{}` is not built by adapters", op.as_str()))
}

/// An upstream answer that cannot be read or translated.
pub(crate) fn malformed(
    provider: &Arc<str>,
    what: &str,
    e: impl std::fmt::Display,
) -> GatewayError {
    GatewayError::upstream(
        provider,
        UpstreamErrorKind::Malformed(format!("{what} ({e})")),
    )
}

/// Fails unless `doc` is valid JSON: malformed upstream bytes must never be relayed to a client
/// as a success. The check is the allocation-free scanner of `switchyard_types::json`; only a
/// failure pays for `serde_json`'s error, which says where the bytes went wrong.
pub(crate) fn check_json(provider: &Arc<str>, doc: &[u8], what: &str) -> Result<(), GatewayError> {
    if json::is_valid(doc) {
        return Ok(());
    }
    Err(not_json(provider, doc, what))
}

/// The error for upstream bytes the JSON scanner refused.
pub(crate) fn not_json(provider: &Arc<str>, doc: &[u8], what: &str) -> GatewayError {
    let why = match serde_json::from_slice::<serde::de::IgnoredAny>(doc) {
        Err(e) => e.to_string(),
        // Only nesting deeper than the scanner's limit gets here.
        Ok(_) => format!("nested deeper than {} levels", json::MAX_DEPTH),
    };
    malformed(provider, &format!("{what} is not JSON"), why)
}

/// Builds the error for a non-success upstream answer, normalising its kind.
///
/// `openai_body` is the provider's error already in OpenAI's shape (what an OpenAI client is
/// shown; `None` when the body must not be relayed, e.g. credential errors, or could not be
/// read). `hint` is the kind the adapter read from its provider's own error codes, when those
/// say more than the status (Anthropic's `overloaded_error`, Bedrock's `ThrottlingException`).
/// Without a hint the kind comes from the status, refined by cues in the OpenAI-shaped body.
pub(crate) fn http_failure(
    provider: &Arc<str>,
    status: StatusCode,
    headers: &HeaderMap,
    openai_body: Option<Bytes>,
    hint: Option<FailureKind>,
) -> GatewayError {
    let failure = hint.unwrap_or_else(|| {
        let by_status = FailureKind::from_status(status);
        openai_body
            .as_deref()
            .and_then(|b| serde_json::from_slice::<switchyard_types::openai::ErrorBody>(b).ok())
            .and_then(|b| failure_from_cues(by_status, &b.error))
            .unwrap_or(by_status)
    });
    GatewayError::upstream(
        provider,
        UpstreamErrorKind::Http {
            status,
            failure,
            openai_body,
            retry_after: crate::resilience::reset::retry_after_header(
                headers,
                std::time::SystemTime::now(),
            ),
        },
    )
}

/// Refines a status-derived kind from an OpenAI-shaped error's type, code and message. Only
/// request errors are refined into context-length or content-filter kinds: a 5xx whose
/// message mentions tokens is still a provider failure.
fn failure_from_cues(
    by_status: FailureKind,
    e: &switchyard_types::openai::ErrorObject,
) -> Option<FailureKind> {
    let code = e.code.as_deref().unwrap_or_default();
    match (e.kind.as_str(), code) {
        ("overloaded_error", _) => return Some(FailureKind::Overloaded),
        ("rate_limit_error", _) | (_, "rate_limit_exceeded") => {
            return Some(FailureKind::RateLimited)
        }
        _ => {}
    }
    if by_status != FailureKind::InvalidRequest {
        return None;
    }
    if matches!(code, "context_length_exceeded" | "string_above_max_length") {
        return Some(FailureKind::ContextLengthExceeded);
    }
    if matches!(code, "content_filter" | "content_policy_violation") {
        return Some(FailureKind::ContentFiltered);
    }
    let msg = e.message.to_ascii_lowercase();
    const CONTEXT_CUES: [&str; 6] = [
        "context length",
        "context window",
        "prompt is too long",
        "input is too long",
        "too many tokens",
        "maximum number of tokens",
    ];
    if CONTEXT_CUES.iter().any(|c| msg.contains(c)) {
        return Some(FailureKind::ContextLengthExceeded);
    }
    (msg.contains("content management policy") || msg.contains("content policy"))
        .then_some(FailureKind::ContentFiltered)
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
