//! The gateway's one error type. Every failure on the request path becomes a [`GatewayError`];
//! `server::error` turns it into an HTTP response in exactly one place.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No credential was presented while auth is enabled.
    #[error("missing API key")]
    MissingKey,
    /// The presented credential matches no key.
    #[error("invalid API key")]
    InvalidKey,
    /// The body is not JSON; the message says where parsing stopped.
    #[error("{0}")]
    InvalidJson(String),
    /// A field has the wrong type or an invalid value.
    #[error("{message}")]
    InvalidField {
        /// Path of the field, e.g. `messages[0].role`.
        param: String,
        /// What is wrong.
        message: String,
    },
    /// The target model lacks a capability the request needs (tools, images, a long enough
    /// context...), found before any upstream call.
    #[error("{message}")]
    Unsupported {
        /// The request field that needs the capability.
        param: String,
        /// What is missing, naming the model.
        message: String,
        /// OpenAI-style error code (`context_length_exceeded` where OpenAI uses it).
        code: &'static str,
    },
    /// The body is larger than `server.max_body_size`.
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The client's body could not be read (connection dropped mid-upload).
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// The requested model is neither an alias nor a `provider/model` route.
    #[error("the model `{model}` does not exist")]
    ModelNotFound {
        /// What the client asked for.
        model: String,
        /// Aliases the client could use instead.
        available: Vec<String>,
    },
    /// No route for this path.
    #[error("unknown request URL: {method} {path}")]
    RouteNotFound {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
    },
    /// The path exists but not for this method.
    #[error("method {method} is not allowed for {path}")]
    MethodNotAllowed {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
    },
    /// A resource the client named (a stored response) does not exist for it.
    #[error("{message}")]
    ResourceNotFound {
        /// The request field that named it, if one did.
        param: Option<&'static str>,
        /// What was not found.
        message: String,
        /// OpenAI-style error code.
        code: Option<&'static str>,
    },
    /// The virtual key may not call this alias (`allowed_aliases`).
    #[error("this API key is not allowed to use the model `{alias}`")]
    AliasNotAllowed {
        /// The alias asked for (never the key).
        alias: String,
    },
    /// A gateway rate limit refused the request.
    #[error("rate limit reached for {what} per minute on {scope} (limit {limit}); retry in {}ms", retry_after.as_millis())]
    RateLimited {
        /// The limited scope, e.g. `team:search` (names only, never a secret).
        scope: String,
        /// `requests` or `tokens`.
        what: &'static str,
        /// The limit per minute.
        limit: u64,
        /// When a retry can pass.
        retry_after: Duration,
    },
    /// The shared rate-limit backend (Redis) cannot be asked and `limits.on_backend_error` is
    /// `deny`.
    #[error("the rate limiter is unavailable")]
    LimiterUnavailable,
    /// A spend budget is used up for its period (the message names its scope and period).
    #[error("{message}")]
    BudgetExceeded {
        /// Names the budget (scope, period, limit), never a key.
        message: String,
    },
    /// A guardrail rule refused the request, or the answer made for it (`guardrails:`).
    #[error("{message}")]
    GuardrailBlocked {
        /// Names the rule and what it found, never the text that matched.
        message: String,
    },
    /// The upstream provider failed.
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    /// A bug or an impossible state; the details are logged, the client gets a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

/// An upstream failure, normalised across providers.
#[derive(Debug, thiserror::Error)]
#[error("upstream `{provider}`: {kind}")]
pub struct UpstreamError {
    /// The provider's configured name.
    pub provider: Arc<str>,
    /// What happened.
    pub kind: UpstreamErrorKind,
}

/// The ways an upstream exchange fails.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamErrorKind {
    /// The provider answered with a non-success status.
    #[error("returned HTTP {status} ({failure})")]
    Http {
        /// The provider's status.
        status: StatusCode,
        /// What the failure means, as the adapter read it from the status and the body.
        failure: FailureKind,
        /// The provider's body, kept only when it is an OpenAI-shaped error that is safe to relay.
        openai_body: Option<Bytes>,
        /// `Retry-After`, when the provider sent one.
        retry_after: Option<HeaderValue>,
    },
    /// TCP/TLS connection failed or was reset before a response.
    #[error("connection failed: {0}")]
    Connect(String),
    /// A timeout expired.
    #[error("timed out waiting for {phase} after {after:?}")]
    Timeout {
        /// Which timeout.
        phase: TimeoutPhase,
        /// Its configured value.
        after: Duration,
    },
    /// The provider's success response could not be understood.
    #[error("returned a malformed response: {0}")]
    Malformed(String),
    /// The response body broke off.
    #[error("response body failed: {0}")]
    Body(String),
    /// Every deployment that could serve the request has its circuit breaker open.
    #[error("every deployment is unavailable (circuit breaker open)")]
    CircuitOpen,
}

/// Which timeout expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Opening the connection.
    Connect,
    /// Response headers.
    FirstByte,
    /// A gap between stream chunks.
    StreamIdle,
    /// The whole exchange.
    Total,
}

impl std::fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Connect => "a connection",
            Self::FirstByte => "the response headers",
            Self::StreamIdle => "the next stream chunk",
            Self::Total => "the whole response",
        })
    }
}

/// The normalised kinds every adapter maps its provider's failures to.
///
/// Providers disagree on statuses and bodies (Anthropic's 529 `overloaded_error`, Bedrock's
/// `ThrottlingException`, OpenAI's `context_length_exceeded` code, a 400 whose message says
/// "prompt is too long"); retries, fallbacks and circuit breakers must not. Adapters decide the
/// kind once, in `classify_error`, and everything after them acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The provider's rate limit or quota for our credentials (`Retry-After` kept when sent).
    RateLimited,
    /// The provider is overloaded or unavailable right now.
    Overloaded,
    /// The prompt (plus `max_tokens`) does not fit the model's context window.
    ContextLengthExceeded,
    /// The provider's safety system refused the request.
    ContentFiltered,
    /// The provider rejected the gateway's credentials or permissions.
    Auth,
    /// The provider says the request itself is invalid.
    InvalidRequest,
    /// The model or deployment does not exist at the provider.
    NotFound,
    /// The provider failed: 5xx, broken connection or unreadable response.
    UpstreamError,
    /// A timeout expired, at the provider (408/504) or in the gateway.
    Timeout,
}

impl FailureKind {
    /// Stable snake_case name, used in logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::ContentFiltered => "content_filtered",
            Self::Auth => "auth",
            Self::InvalidRequest => "invalid_request",
            Self::NotFound => "not_found",
            Self::UpstreamError => "upstream_error",
            Self::Timeout => "timeout",
        }
    }

    /// Whether another attempt (here or at another deployment) may succeed. Requests the
    /// provider judged invalid, unauthorised or unsafe fail the same way everywhere.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Overloaded | Self::UpstreamError | Self::Timeout
        )
    }

    /// Every kind, for config validation and documentation.
    pub const ALL: [FailureKind; 9] = [
        Self::RateLimited,
        Self::Overloaded,
        Self::ContextLengthExceeded,
        Self::ContentFiltered,
        Self::Auth,
        Self::InvalidRequest,
        Self::NotFound,
        Self::UpstreamError,
        Self::Timeout,
    ];

    /// The kind a bare status implies, before any body cue is read.
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401..=403 => Self::Auth,
            404 => Self::NotFound,
            408 | 504 => Self::Timeout,
            429 => Self::RateLimited,
            503 | 529 => Self::Overloaded,
            400..=499 => Self::InvalidRequest,
            _ => Self::UpstreamError,
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A low-cardinality name for an error, for logs and (later) metrics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Missing or invalid client key.
    Auth,
    /// Malformed or invalid request.
    InvalidRequest,
    /// Body over the limit.
    TooLarge,
    /// Unknown model or URL.
    NotFound,
    /// The upstream exchange failed, normalised.
    Upstream(FailureKind),
    /// Gateway bug.
    Internal,
    /// The key may not use what it asked for.
    Forbidden,
    /// A gateway rate limit refused the request.
    RateLimited,
    /// A spend budget is exhausted.
    BudgetExceeded,
    /// The shared rate limiter could not be asked (fail-closed).
    LimiterUnavailable,
    /// A guardrail refused the request or its answer.
    GuardrailBlocked,
}

impl ErrorKind {
    /// Stable snake_case name. Upstream kinds that could be confused with the client's own
    /// (`auth`, `invalid_request`, `not_found`) carry an `upstream_` prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::InvalidRequest => "invalid_request",
            Self::TooLarge => "too_large",
            Self::NotFound => "not_found",
            Self::Internal => "internal",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::BudgetExceeded => "budget_exceeded",
            Self::LimiterUnavailable => "limiter_unavailable",
            Self::GuardrailBlocked => "guardrail_blocked",
            Self::Upstream(FailureKind::Auth) => "upstream_auth",
            Self::Upstream(FailureKind::InvalidRequest) => "upstream_invalid_request",
            Self::Upstream(FailureKind::NotFound) => "upstream_not_found",
            Self::Upstream(f) => f.as_str(),
        }
    }
}

impl UpstreamError {
    /// The normalised kind of this failure.
    pub fn failure(&self) -> FailureKind {
        match &self.kind {
            UpstreamErrorKind::Http { failure, .. } => *failure,
            UpstreamErrorKind::Timeout { .. } => FailureKind::Timeout,
            UpstreamErrorKind::CircuitOpen => FailureKind::Overloaded,
            UpstreamErrorKind::Connect(_)
            | UpstreamErrorKind::Malformed(_)
            | UpstreamErrorKind::Body(_) => FailureKind::UpstreamError,
        }
    }
}

impl GatewayError {
    /// The error's low-cardinality kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::MissingKey | Self::InvalidKey => ErrorKind::Auth,
            Self::InvalidJson(_)
            | Self::InvalidField { .. }
            | Self::Unsupported { .. }
            | Self::BodyRead(_) => ErrorKind::InvalidRequest,
            Self::MethodNotAllowed { .. } => ErrorKind::InvalidRequest,
            Self::BodyTooLarge { .. } => ErrorKind::TooLarge,
            Self::ModelNotFound { .. }
            | Self::RouteNotFound { .. }
            | Self::ResourceNotFound { .. } => ErrorKind::NotFound,
            Self::Internal(_) => ErrorKind::Internal,
            Self::AliasNotAllowed { .. } => ErrorKind::Forbidden,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::BudgetExceeded { .. } => ErrorKind::BudgetExceeded,
            Self::LimiterUnavailable => ErrorKind::LimiterUnavailable,
            Self::GuardrailBlocked { .. } => ErrorKind::GuardrailBlocked,
            Self::Upstream(u) => ErrorKind::Upstream(u.failure()),
        }
    }

    /// Builds an upstream error.
    pub fn upstream(provider: &Arc<str>, kind: UpstreamErrorKind) -> Self {
        Self::Upstream(UpstreamError {
            provider: Arc::clone(provider),
            kind,
        })
    }
}
