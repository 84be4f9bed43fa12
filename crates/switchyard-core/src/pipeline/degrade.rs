//! The graceful-degradation answer: when an alias configures `on_failure.message` and nothing
//! could serve a request, the client gets that message as an ordinary answer (streamed if it
//! asked for a stream) instead of an error, marked `x-switchyard-degraded: <failure kind>`.
//!
//! It is built as an OpenAI answer and, for Anthropic clients, passed through the same
//! translators as a real one, so both APIs get well-formed bodies and streams.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::BytesMut;
use http::header::CONTENT_TYPE;
use http::HeaderValue;
use serde_json::json;
use switchyard_types::anthropic::response::chat_to_messages_response;
use switchyard_types::anthropic::stream::ChatToMessagesStream;

use super::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::providers::{sse, unix_now, ClientApi};

/// The degraded answer to the request in `ctx`, after `err` (for the marker header).
pub(super) fn response(
    ctx: &RequestCtx,
    client_model: &Arc<str>,
    message: &str,
    err: &GatewayError,
) -> Response {
    let id = format!("chatcmpl-degraded-{}", ctx.request_id);
    let created = unix_now();
    let api = ctx.op.client_api();
    let (content_type, body) = if ctx.stream {
        let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
            json!({"id": id, "object": "chat.completion.chunk", "created": created,
                "model": &**client_model,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
            .to_string()
        };
        let chunks = [
            chunk(
                json!({"role": "assistant", "content": message}),
                json!(null),
            ),
            chunk(json!({}), json!("stop")),
            "[DONE]".to_owned(),
        ];
        let mut out = BytesMut::new();
        match api {
            ClientApi::OpenAi => {
                for c in &chunks {
                    sse::write_data(&mut out, c.as_bytes());
                }
            }
            ClientApi::Anthropic => {
                let mut s = ChatToMessagesStream::new(client_model);
                let mut events = Vec::new();
                for c in &chunks {
                    if s.push(c.as_bytes(), &mut events).is_err() {
                        break;
                    }
                }
                for (name, data) in events {
                    sse::write_named(&mut out, name, &data);
                }
            }
        }
        ("text/event-stream; charset=utf-8", out.freeze())
    } else {
        let completion = json!({"id": id, "object": "chat.completion", "created": created,
            "model": &**client_model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": message},
                "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}})
        .to_string();
        let body = match api {
            ClientApi::OpenAi => completion.into_bytes(),
            ClientApi::Anthropic => chat_to_messages_response(completion.as_bytes(), client_model)
                .map_or_else(|_| completion.into_bytes(), |(b, _)| b),
        };
        ("application/json", body.into())
    };
    let mut resp = Response::new(Body::from(body));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        "x-switchyard-degraded",
        HeaderValue::from_static(err.kind().as_str()),
    );
    resp
}
