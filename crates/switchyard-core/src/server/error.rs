//! The one place where a [`GatewayError`] becomes an HTTP response in OpenAI's error shape.
//!
//! Status mapping for upstream failures:
//! - 400, 413, 422 from the provider describe the client's request (e.g.
//!   `context_length_exceeded`): relayed with the same status and the provider's body;
//! - 429, 503, 529 (rate limited, overloaded): 503 with the provider's `Retry-After`;
//! - 408, 504 and gateway timeouts: 504;
//! - 401/403 (the gateway's provider credentials are wrong), other 4xx, other 5xx, connection
//!   failures and malformed responses: 502.
//!
//! `x-switchyard-upstream-status` carries the provider's own status. A provider body is kept
//! only when it is an OpenAI-shaped error and not a credential error (providers echo part of
//! the key there).

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use switchyard_types::openai::{ErrorBody, ErrorObject};

use crate::error::{GatewayError, UpstreamErrorKind};
use crate::providers::{sse, ClientApi};

impl GatewayError {
    /// The HTTP status the client sees.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingKey | Self::InvalidKey => StatusCode::UNAUTHORIZED,
            Self::InvalidJson(_)
            | Self::InvalidField { .. }
            | Self::Unsupported { .. }
            | Self::BodyRead(_)
            | Self::GuardrailBlocked { .. } => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ModelNotFound { .. }
            | Self::RouteNotFound { .. }
            | Self::ResourceNotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::AliasNotAllowed { .. } => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BudgetExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::LimiterUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream(u) => match &u.kind {
                UpstreamErrorKind::Http { status, .. } => match status.as_u16() {
                    400 | 413 | 422 => *status,
                    429 | 503 | 529 => StatusCode::SERVICE_UNAVAILABLE,
                    408 | 504 => StatusCode::GATEWAY_TIMEOUT,
                    _ => StatusCode::BAD_GATEWAY,
                },
                UpstreamErrorKind::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
                UpstreamErrorKind::CircuitOpen => StatusCode::SERVICE_UNAVAILABLE,
                UpstreamErrorKind::Connect(_)
                | UpstreamErrorKind::Malformed(_)
                | UpstreamErrorKind::Body(_) => StatusCode::BAD_GATEWAY,
            },
        }
    }

    /// Builds the response in OpenAI's error shape.
    pub fn to_response(&self) -> Response {
        self.to_response_for(ClientApi::OpenAi)
    }

    /// Builds the response in the error shape of the API the client speaks.
    pub fn to_response_for(&self, api: ClientApi) -> Response {
        self.to_response_listing(api, &[])
    }

    /// Like [`GatewayError::to_response_for`], with the upstream attempts that failed before
    /// this error listed in the error object (`"attempts": [{"deployment", "error"}]`) when
    /// there was more than one, so a client sees every reason, not only the last.
    pub fn to_response_listing(&self, api: ClientApi, attempts: &[(String, &str)]) -> Response {
        let (status, mut body) = match api {
            ClientApi::OpenAi => error_body(self),
            ClientApi::Anthropic => anthropic_error_body(self),
        };
        if attempts.len() > 1 {
            body = with_attempts(&body, attempts);
        }
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Self::RateLimited { retry_after, .. } = self {
            // Whole seconds, rounded up, as HTTP says; the exact value in milliseconds too.
            let ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
            h.insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(ms.div_ceil(1000)),
            );
            h.insert("retry-after-ms", HeaderValue::from(ms));
        }
        if let Self::LimiterUnavailable = self {
            h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::Upstream(u) = self {
            if let UpstreamErrorKind::Http {
                status,
                retry_after,
                ..
            } = &u.kind
            {
                h.insert(
                    "x-switchyard-upstream-status",
                    HeaderValue::from(status.as_u16()),
                );
                if let Some(ra) = retry_after {
                    h.insert(http::header::RETRY_AFTER, ra.clone());
                }
            }
            if let Ok(v) = HeaderValue::from_str(&u.provider) {
                h.insert("x-switchyard-provider", v);
            }
        }
        resp
    }
}

/// `body` (an error document) with `error.attempts` added; unchanged if it is not one.
fn with_attempts(body: &Bytes, attempts: &[(String, &str)]) -> Bytes {
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.clone();
    };
    let Some(error) = doc.get_mut("error").and_then(|e| e.as_object_mut()) else {
        return body.clone();
    };
    let list: Vec<_> = attempts
        .iter()
        .map(|(d, e)| serde_json::json!({"deployment": d, "error": e}))
        .collect();
    error.insert("attempts".into(), list.into());
    serde_json::to_vec(&doc).map_or_else(|_| body.clone(), Bytes::from)
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        self.to_response()
    }
}

/// The status and the JSON error body for `err` (also used for in-stream error events).
pub fn error_body(err: &GatewayError) -> (StatusCode, Bytes) {
    let status = err.status();
    if let GatewayError::Upstream(u) = err {
        if let UpstreamErrorKind::Http {
            openai_body: Some(body),
            ..
        } = &u.kind
        {
            return (status, body.clone());
        }
    }
    let (message, kind, param, code) = describe(err);
    let body = ErrorBody {
        error: ErrorObject {
            message,
            kind: kind.to_owned(),
            param,
            code,
        },
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"error\":{}}".to_vec());
    (status, Bytes::from(bytes))
}

/// The status and the error body in Anthropic's shape, `{"type": "error", "error": {"type",
/// "message"}}`, for clients of `/v1/messages`. The error type follows the status as
/// Anthropic's API assigns them, so Anthropic's SDKs raise the matching exception class.
pub fn anthropic_error_body(err: &GatewayError) -> (StatusCode, Bytes) {
    use switchyard_types::anthropic::response as wire;
    let status = err.status();
    let body = match err {
        GatewayError::Upstream(u) => match &u.kind {
            // A relayed provider error keeps its message (and a context-length error keeps the
            // wording Anthropic clients look for).
            UpstreamErrorKind::Http {
                openai_body: Some(body),
                ..
            } => wire::openai_error_to_anthropic(status.as_u16(), body),
            _ => wire::anthropic_error_body(status.as_u16(), &describe(err).0),
        },
        // 401: the type is `authentication_error`; the message names Anthropic's header.
        GatewayError::MissingKey => wire::anthropic_error_body(
            status.as_u16(),
            "You didn't provide an API key. Send it in the x-api-key header.",
        ),
        GatewayError::InvalidKey => {
            wire::anthropic_error_body(status.as_u16(), "invalid x-api-key")
        }
        _ => wire::anthropic_error_body(status.as_u16(), &describe(err).0),
    };
    (status, Bytes::from(body))
}

/// The event that ends a stream which failed after its first byte, in the client's dialect:
/// OpenAI's SDKs raise on a `data: {"error": ...}` line, Anthropic's on an `error` event.
pub fn stream_error_event(err: &GatewayError, api: ClientApi) -> Bytes {
    let mut out = bytes::BytesMut::new();
    match api {
        ClientApi::OpenAi => sse::write_data(&mut out, &error_body(err).1),
        ClientApi::Anthropic => sse::write_named(&mut out, "error", &anthropic_error_body(err).1),
    }
    out.freeze()
}

fn describe(err: &GatewayError) -> (String, &'static str, Option<String>, Option<String>) {
    const INVALID: &str = "invalid_request_error";
    let code = |c: &str| Some(c.to_owned());
    match err {
        GatewayError::MissingKey => (
            "You didn't provide an API key. Send it in the Authorization header as `Bearer <key>`."
                .into(),
            INVALID,
            None,
            code("missing_api_key"),
        ),
        GatewayError::InvalidKey => (
            "Incorrect API key provided.".into(),
            INVALID,
            None,
            code("invalid_api_key"),
        ),
        GatewayError::InvalidJson(m) => (m.clone(), INVALID, None, code("invalid_json")),
        GatewayError::InvalidField { param, message } => (
            message.clone(),
            INVALID,
            (!param.is_empty()).then(|| param.clone()),
            code("invalid_value"),
        ),
        GatewayError::Unsupported {
            param,
            message,
            code: c,
        } => (
            message.clone(),
            INVALID,
            (!param.is_empty()).then(|| param.clone()),
            code(c),
        ),
        GatewayError::ResourceNotFound {
            param,
            message,
            code: c,
        } => (
            message.clone(),
            INVALID,
            param.map(str::to_owned),
            c.map(str::to_owned),
        ),
        GatewayError::BodyTooLarge { limit } => (
            format!("The request body is larger than the gateway's limit of {limit} bytes."),
            INVALID,
            None,
            code("request_too_large"),
        ),
        GatewayError::LimiterUnavailable => (
            "The gateway cannot check its rate limits right now; please retry shortly.".into(),
            "server_error",
            None,
            code("rate_limiter_unavailable"),
        ),
        GatewayError::GuardrailBlocked { message } => {
            (message.clone(), INVALID, None, code("content_blocked"))
        }
        GatewayError::BudgetExceeded { message } => (
            message.clone(),
            "insufficient_quota",
            None,
            code("budget_exceeded"),
        ),
        GatewayError::BodyRead(m) => (
            format!("Could not read the request body: {m}"),
            INVALID,
            None,
            None,
        ),
        GatewayError::ModelNotFound { model, available } => (
            format!(
                "The model `{model}` does not exist. Available models: {}.",
                if available.is_empty() {
                    "(none configured)".to_owned()
                } else {
                    available.join(", ")
                }
            ),
            INVALID,
            Some("model".into()),
            code("model_not_found"),
        ),
        GatewayError::RouteNotFound { method, path } => (
            format!("Invalid URL ({method} {path})."),
            INVALID,
            None,
            code("unknown_url"),
        ),
        GatewayError::MethodNotAllowed { method, path } => (
            format!("Method {method} is not allowed for {path}."),
            INVALID,
            None,
            code("method_not_allowed"),
        ),
        GatewayError::AliasNotAllowed { alias } => (
            format!("This API key is not allowed to use the model `{alias}`."),
            "permission_error",
            Some("model".into()),
            code("model_not_allowed"),
        ),
        GatewayError::RateLimited {
            scope,
            what,
            limit,
            retry_after,
        } => (
            format!(
                "Rate limit reached for {what} per minute on {scope}: limit {limit}. \
                 Please try again in {}.",
                crate::limits::format_reset(*retry_after)
            ),
            what,
            None,
            code("rate_limit_exceeded"),
        ),
        GatewayError::Internal(_) => (
            "The gateway hit an internal error. The x-request-id header identifies it in the logs."
                .into(),
            "server_error",
            None,
            None,
        ),
        GatewayError::Upstream(u) => {
            let p = &u.provider;
            let (message, c) = match &u.kind {
                UpstreamErrorKind::Http { status, .. } => {
                    let reason = status.canonical_reason().unwrap_or("error");
                    let extra = if matches!(status.as_u16(), 401 | 403) {
                        " (the gateway's credentials for this provider were rejected)"
                    } else {
                        ""
                    };
                    (
                        format!(
                            "Upstream provider `{p}` returned HTTP {} {reason}{extra}.",
                            status.as_u16()
                        ),
                        format!("upstream_http_{}", status.as_u16()),
                    )
                }
                UpstreamErrorKind::Connect(m) => (
                    format!("Could not reach upstream provider `{p}`: {m}."),
                    "upstream_connect_error".into(),
                ),
                UpstreamErrorKind::Timeout { phase, after } => (
                    format!(
                        "Upstream provider `{p}` timed out waiting for {phase} after {after:?}."
                    ),
                    "upstream_timeout".into(),
                ),
                UpstreamErrorKind::Malformed(m) => (
                    format!("Upstream provider `{p}` {m}."),
                    "upstream_malformed_response".into(),
                ),
                UpstreamErrorKind::Body(m) => (
                    format!("Upstream provider `{p}` failed mid-response: {m}."),
                    "upstream_body_error".into(),
                ),
                UpstreamErrorKind::CircuitOpen => (
                    "Every deployment that can serve this model is failing and temporarily \
                     taken out of rotation (circuit breaker open); retry shortly."
                        .into(),
                    "upstream_unavailable".into(),
                ),
            };
            (message, "upstream_error", None, Some(c))
        }
    }
}
