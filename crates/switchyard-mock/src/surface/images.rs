//! OpenAI's image generation, `POST /v1/images/generations`.
//!
//! GPT image models (`gpt-image-*`) answer with base64 PNGs, the output settings and token
//! usage, or with `stream: true` as server-sent events (`image_generation.partial_image` for
//! each of `partial_images`, then `image_generation.completed`). DALL·E models answer with
//! `url`s (or `b64_json` when `response_format` asks), DALL·E 3 with a `revised_prompt`. The
//! image is always the same 1×1 PNG: the mock proves shapes, not pictures.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::openai::{
    invalid_request, json_response, parse_error, read_request, to_json, unix_secs, SSE_CONTENT_TYPE,
};
use crate::sse::{Ending, EventBuf};
use crate::{text, Shared};

/// A valid 1×1 PNG, base64: what every generated image is.
pub(crate) const PNG_1X1_B64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
/// Most images per request (OpenAI's limit).
const MAX_N: u32 = 10;

#[derive(Deserialize)]
struct ImageRequest {
    prompt: Option<String>,
    model: Option<String>,
    n: Option<u32>,
    size: Option<String>,
    quality: Option<String>,
    background: Option<String>,
    output_format: Option<String>,
    response_format: Option<String>,
    stream: Option<bool>,
    partial_images: Option<u32>,
}

pub(super) async fn generate(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (_, body) = match read_request(&shared, req).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let req: ImageRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return parse_error(&e),
    };
    let Some(prompt) = req.prompt.as_deref().filter(|p| !p.is_empty()) else {
        return invalid_request(
            "Missing required parameter: 'prompt'.",
            Some("prompt"),
            None,
        );
    };
    let n = req.n.unwrap_or(1);
    if !(1..=MAX_N).contains(&n) {
        return invalid_request(
            &format!("Invalid 'n': expected a value between 1 and {MAX_N}."),
            Some("n"),
            None,
        );
    }
    let model = req.model.as_deref().unwrap_or("dall-e-2");
    let created = unix_secs();
    let size = req.size.as_deref().unwrap_or("1024x1024");
    if !model.starts_with("gpt-image") {
        if req.stream == Some(true) {
            return invalid_request(
                &format!("Streaming is not supported for the model '{model}'."),
                Some("stream"),
                None,
            );
        }
        let b64 = req.response_format.as_deref() == Some("b64_json");
        let data: Vec<Value> = (0..n)
            .map(|_| {
                let mut item = if b64 {
                    json!({"b64_json": PNG_1X1_B64})
                } else {
                    json!({"url": format!("https://mock.invalid/images/{}.png",
                        text::random_id("img-", 24))})
                };
                if model == "dall-e-3" {
                    item["revised_prompt"] = Value::from(prompt);
                }
                item
            })
            .collect();
        return json_response(
            StatusCode::OK,
            to_json(&json!({"created": created, "data": data})),
        );
    }
    let quality = req.quality.as_deref().unwrap_or("medium");
    let background = req.background.as_deref().unwrap_or("opaque");
    let format = req.output_format.as_deref().unwrap_or("png");
    let input_tokens = text::estimate_tokens(prompt.len());
    let output_tokens = 272 * u64::from(n);
    let usage = json!({
        "input_tokens": input_tokens,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": input_tokens},
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    });
    if req.stream == Some(true) {
        let mut events = EventBuf::with_capacity(4, 400);
        let common = |kind: &str| {
            json!({"type": kind, "b64_json": PNG_1X1_B64, "created_at": created, "size": size,
                "quality": quality, "background": background, "output_format": format})
        };
        for i in 0..req.partial_images.unwrap_or(0).min(3) {
            let mut e = common("image_generation.partial_image");
            e["partial_image_index"] = Value::from(i);
            push_event(&mut events, "image_generation.partial_image", &e);
        }
        let mut done = common("image_generation.completed");
        done["usage"] = usage;
        push_event(&mut events, "image_generation.completed", &done);
        let body = events.into_body(shared.cfg.chunk_delay, None, Ending::Finish);
        let mut resp = Response::new(Body::new(body));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SSE_CONTENT_TYPE),
        );
        return resp;
    }
    let data: Vec<Value> = (0..n).map(|_| json!({"b64_json": PNG_1X1_B64})).collect();
    json_response(
        StatusCode::OK,
        to_json(
            &json!({"created": created, "background": background, "data": data,
            "output_format": format, "quality": quality, "size": size, "usage": usage}),
        ),
    )
}

fn push_event(events: &mut EventBuf, name: &str, data: &Value) {
    let buf = events.buf();
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\ndata: ");
    buf.extend_from_slice(&to_json(data));
    buf.extend_from_slice(b"\n\n");
    events.end_event();
}
