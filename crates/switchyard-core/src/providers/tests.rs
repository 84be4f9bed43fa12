use super::*;

fn failure_of(status: u16, body: &str, hint: Option<FailureKind>) -> FailureKind {
    let provider: Arc<str> = Arc::from("p");
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
    let body = (!body.is_empty()).then(|| Bytes::from(body.to_owned()));
    match http_failure(&provider, status, &HeaderMap::new(), body, hint) {
        GatewayError::Upstream(u) => u.failure(),
        other => FailureKind::from_status(other.status()),
    }
}

fn openai_error(kind: &str, code: &str, message: &str) -> String {
    serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        .to_string()
}

#[test]
fn bare_statuses_map_to_kinds() {
    let cases = [
        (400, FailureKind::InvalidRequest),
        (401, FailureKind::Auth),
        (403, FailureKind::Auth),
        (404, FailureKind::NotFound),
        (408, FailureKind::Timeout),
        (422, FailureKind::InvalidRequest),
        (429, FailureKind::RateLimited),
        (500, FailureKind::UpstreamError),
        (502, FailureKind::UpstreamError),
        (503, FailureKind::Overloaded),
        (504, FailureKind::Timeout),
        (529, FailureKind::Overloaded),
    ];
    for (status, want) in cases {
        assert_eq!(failure_of(status, "", None), want, "HTTP {status}");
    }
}

#[test]
fn body_cues_refine_request_errors() {
    let ctx = openai_error(
        "invalid_request_error",
        "context_length_exceeded",
        "This model's maximum context length is 8192 tokens.",
    );
    assert_eq!(
        failure_of(400, &ctx, None),
        FailureKind::ContextLengthExceeded
    );
    let anthropic_ctx = openai_error(
        "invalid_request_error",
        "invalid_request_error",
        "prompt is too long: 210000 tokens > 200000 maximum",
    );
    assert_eq!(
        failure_of(400, &anthropic_ctx, None),
        FailureKind::ContextLengthExceeded
    );
    let policy = openai_error("invalid_request_error", "content_policy_violation", "no");
    assert_eq!(failure_of(400, &policy, None), FailureKind::ContentFiltered);
    let azure = openai_error(
        "invalid_request_error",
        "content_filter",
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
    );
    assert_eq!(failure_of(400, &azure, None), FailureKind::ContentFiltered);
    let plain = openai_error(
        "invalid_request_error",
        "invalid_value",
        "temperature too high",
    );
    assert_eq!(failure_of(400, &plain, None), FailureKind::InvalidRequest);
}

#[test]
fn provider_error_types_win_over_the_status() {
    let overloaded = openai_error("overloaded_error", "overloaded_error", "Overloaded");
    assert_eq!(failure_of(529, &overloaded, None), FailureKind::Overloaded);
    assert_eq!(failure_of(500, &overloaded, None), FailureKind::Overloaded);
    let limited = openai_error("requests", "rate_limit_exceeded", "slow down");
    assert_eq!(failure_of(400, &limited, None), FailureKind::RateLimited);
}

#[test]
fn server_errors_mentioning_tokens_stay_provider_failures() {
    let e = openai_error("server_error", "server_error", "too many tokens in flight");
    assert_eq!(failure_of(500, &e, None), FailureKind::UpstreamError);
}

#[test]
fn an_adapter_hint_is_final() {
    let e = openai_error("invalid_request_error", "x", "prompt is too long");
    assert_eq!(
        failure_of(400, &e, Some(FailureKind::Overloaded)),
        FailureKind::Overloaded
    );
}

#[test]
fn retryable_kinds_are_exactly_the_transient_ones() {
    use FailureKind::*;
    for k in [RateLimited, Overloaded, UpstreamError, Timeout] {
        assert!(k.is_retryable(), "{k}");
    }
    for k in [
        ContextLengthExceeded,
        ContentFiltered,
        Auth,
        InvalidRequest,
        NotFound,
    ] {
        assert!(!k.is_retryable(), "{k}");
    }
}
