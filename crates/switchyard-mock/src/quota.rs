//! A request quota per mock instance whose rate-limit headers count down to zero, then 429s
//! until the window ends: a provider about to run out, for quota-aware routing tests.
//!
//! Off unless [`MockConfig::quota`](crate::MockConfig) is set. Every model request (anything
//! but the model list) spends one request; the response's request-limit headers
//! (`x-ratelimit-{limit,remaining,reset}-requests`, and Anthropic's `anthropic-ratelimit-
//! requests-*` on Anthropic responses) report the quota instead of the mock's generous
//! per-minute defaults. Once it is spent, requests get an OpenAI-shaped 429 with
//! `remaining: 0`, the reset time and `Retry-After`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::Shared;

/// A request budget per window.
#[derive(Clone, Copy, Debug)]
pub struct RequestQuota {
    /// Requests allowed per window.
    pub limit: u64,
    /// How long until the budget refills.
    pub window: Duration,
}

/// Requests spent in the current window.
#[derive(Debug, Default)]
pub(crate) struct QuotaState {
    used: AtomicU64,
    started: Mutex<Option<Instant>>,
}

/// Enforces and reports the quota.
pub(crate) async fn enforce(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(q) = shared.cfg.quota else {
        return next.run(req).await;
    };
    if req.method() == Method::GET {
        return next.run(req).await;
    }
    let state = &shared.quota;
    let now = Instant::now();
    let reset_in = {
        let mut started = state.started.lock();
        let begun = *started.get_or_insert(now);
        if now.duration_since(begun) >= q.window {
            *started = Some(now);
            state.used.store(0, Ordering::Relaxed);
            q.window
        } else {
            q.window - now.duration_since(begun)
        }
    };
    let spent = state.used.fetch_add(1, Ordering::Relaxed);
    let mut resp = if spent >= q.limit {
        state.used.fetch_sub(1, Ordering::Relaxed);
        let mut r = crate::openai::error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit reached for requests (mock quota).",
            "requests",
            None,
            Some("rate_limit_exceeded"),
        );
        let secs = reset_in.as_secs().max(1);
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        r
    } else {
        next.run(req).await
    };
    let remaining = q.limit.saturating_sub(spent + 1);
    let reset_ms = u64::try_from(reset_in.as_millis()).unwrap_or(u64::MAX);
    let h = resp.headers_mut();
    h.insert("x-ratelimit-limit-requests", HeaderValue::from(q.limit));
    h.insert(
        "x-ratelimit-remaining-requests",
        HeaderValue::from(remaining),
    );
    h.insert(
        "x-ratelimit-reset-requests",
        crate::header_str(crate::limits::format_duration_ms(reset_ms)),
    );
    if h.contains_key("anthropic-ratelimit-requests-remaining") {
        let at = crate::limits::format_rfc3339(crate::unix_millis().saturating_add(reset_ms));
        h.insert(
            "anthropic-ratelimit-requests-limit",
            HeaderValue::from(q.limit),
        );
        h.insert(
            "anthropic-ratelimit-requests-remaining",
            HeaderValue::from(remaining),
        );
        h.insert("anthropic-ratelimit-requests-reset", crate::header_str(at));
    }
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::tests::{chat_body, start};
    use crate::MockConfig;

    #[tokio::test]
    async fn headers_count_down_to_zero_then_429_until_the_window_ends() {
        let mock = start(MockConfig {
            quota: Some(RequestQuota {
                limit: 3,
                window: Duration::from_millis(300),
            }),
            ..MockConfig::default()
        })
        .await;
        for left in ["2", "1", "0"] {
            let (status, h, _) = mock
                .post_json("/v1/chat/completions", &chat_body(json!({})))
                .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(h["x-ratelimit-limit-requests"], "3");
            assert_eq!(h["x-ratelimit-remaining-requests"], left);
        }
        let (status, h, body) = mock
            .post_json("/v1/chat/completions", &chat_body(json!({})))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h["x-ratelimit-remaining-requests"], "0");
        assert!(h.contains_key("retry-after"));
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        tokio::time::sleep(Duration::from_millis(350)).await;
        let (status, h, _) = mock
            .post_json("/v1/chat/completions", &chat_body(json!({})))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(h["x-ratelimit-remaining-requests"], "2");
    }
}
