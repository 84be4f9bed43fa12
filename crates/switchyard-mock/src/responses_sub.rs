//! The Responses API's model-addressed sub-resources, in OpenAI's wire format:
//! `POST /v1/responses/input_tokens` (how many input tokens a request would use) and
//! `POST /v1/responses/compact` (a conversation reduced to its user messages and one
//! compaction item). Both take a create-shaped body; counts use the mock's usual estimate.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use http::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::openai::{
    invalid_request, json_response, parse_error, read_request, to_json, unix_secs,
};
use crate::{text, Shared};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut router = Router::new();
    for base in ["/v1/responses", "/openai/v1/responses"] {
        router = router
            .route(&format!("{base}/input_tokens"), post(input_tokens))
            .route(&format!("{base}/compact"), post(compact));
    }
    router
}

#[derive(Deserialize)]
struct SubRequest<'a> {
    model: Option<String>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
}

/// The body, parsed, or the error to answer with. `model` is required by `compact` only, as
/// upstream.
fn parse<'a>(body: &'a [u8], need_model: bool) -> Result<SubRequest<'a>, Box<Response>> {
    let req: SubRequest<'a> =
        serde_json::from_slice(body).map_err(|e| Box::new(parse_error(&e)))?;
    if need_model && req.model.is_none() {
        return Err(Box::new(invalid_request(
            "Missing required parameter: 'model'.",
            Some("model"),
            None,
        )));
    }
    Ok(req)
}

fn tokens(req: &SubRequest<'_>) -> u64 {
    3 + text::estimate_tokens(req.input.map_or(0, |i| i.get().len()))
}

async fn input_tokens(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (_, body) = match read_request(&shared, req).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let req = match parse(&body, false) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let body = json!({"object": "response.input_tokens", "input_tokens": tokens(&req)});
    json_response(StatusCode::OK, to_json(&body))
}

async fn compact(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (_, body) = match read_request(&shared, req).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let req = match parse(&body, true) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    // The user messages of the input, kept as they came; everything else is compacted.
    let input: Value = req
        .input
        .and_then(|i| serde_json::from_str(i.get()).ok())
        .unwrap_or(Value::Null);
    let user_message = |content: Value| {
        let content = match content {
            Value::String(s) => json!([{"type": "input_text", "text": s}]),
            other => other,
        };
        json!({
            "type": "message", "role": "user", "id": text::random_id("msg_", 24),
            "status": "completed", "content": content,
        })
    };
    let mut output: Vec<Value> = match input {
        Value::String(s) => vec![user_message(Value::String(s))],
        Value::Array(items) => items
            .into_iter()
            .filter(|i| i.get("role").and_then(Value::as_str) == Some("user"))
            .map(|mut i| user_message(i["content"].take()))
            .collect(),
        _ => Vec::new(),
    };
    output.push(json!({
        "type": "compaction",
        "id": text::random_id("cmp_", 24),
        "encrypted_content": text::random_id("", 48),
    }));
    let input_tokens = tokens(&req);
    let body = json!({
        "id": text::random_id("resp_", 24),
        "object": "response.compaction",
        "created_at": unix_secs(),
        "output": output,
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 16,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + 16,
        },
    });
    json_response(StatusCode::OK, to_json(&body))
}
