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
    #[error("returned HTTP {status}")]
    Http {
        /// The provider's status.
        status: StatusCode,
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
}

/// Which timeout expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
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
            Self::FirstByte => "the response headers",
            Self::StreamIdle => "the next stream chunk",
            Self::Total => "the whole response",
        })
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
    /// Provider said the request is invalid (relayed 4xx).
    UpstreamInvalidRequest,
    /// Provider rejected the gateway's credentials.
    UpstreamAuth,
    /// Provider rate limited us.
    RateLimited,
    /// Provider overloaded or unavailable.
    Overloaded,
    /// Other provider HTTP error.
    UpstreamHttp,
    /// Connection failed.
    Connect,
    /// A timeout expired.
    Timeout,
    /// Malformed provider response.
    Malformed,
    /// Gateway bug.
    Internal,
}

impl ErrorKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::InvalidRequest => "invalid_request",
            Self::TooLarge => "too_large",
            Self::NotFound => "not_found",
            Self::UpstreamInvalidRequest => "upstream_invalid_request",
            Self::UpstreamAuth => "upstream_auth",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::UpstreamHttp => "upstream_http",
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Malformed => "malformed_response",
            Self::Internal => "internal",
        }
    }
}

impl GatewayError {
    /// The error's low-cardinality kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::MissingKey | Self::InvalidKey => ErrorKind::Auth,
            Self::InvalidJson(_) | Self::InvalidField { .. } | Self::BodyRead(_) => {
                ErrorKind::InvalidRequest
            }
            Self::MethodNotAllowed { .. } => ErrorKind::InvalidRequest,
            Self::BodyTooLarge { .. } => ErrorKind::TooLarge,
            Self::ModelNotFound { .. } | Self::RouteNotFound { .. } => ErrorKind::NotFound,
            Self::Internal(_) => ErrorKind::Internal,
            Self::Upstream(u) => match &u.kind {
                UpstreamErrorKind::Http { status, .. } => match status.as_u16() {
                    400 | 413 | 422 => ErrorKind::UpstreamInvalidRequest,
                    401 | 403 => ErrorKind::UpstreamAuth,
                    429 => ErrorKind::RateLimited,
                    503 | 529 => ErrorKind::Overloaded,
                    408 | 504 => ErrorKind::Timeout,
                    _ => ErrorKind::UpstreamHttp,
                },
                UpstreamErrorKind::Connect(_) => ErrorKind::Connect,
                UpstreamErrorKind::Timeout { .. } => ErrorKind::Timeout,
                UpstreamErrorKind::Malformed(_) | UpstreamErrorKind::Body(_) => {
                    ErrorKind::Malformed
                }
            },
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
