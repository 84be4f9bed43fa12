//! OpenAI's Responses API: `POST /v1/responses` (a response object, or its typed semantic
//! events as server-sent events), and the stored-response routes `GET`/`DELETE
//! /v1/responses/{id}`, `POST /v1/responses/{id}/cancel` and `GET
//! /v1/responses/{id}/input_items`; Azure's v1 surface serves the same under `/openai/v1/`.
//!
//! Responses are kept in memory (unless `store: false`) so the stored-response routes and
//! `previous_response_id` behave as OpenAI's do: an unknown previous response is a 404,
//! `background: true` creates a `queued` response that `cancel` turns `cancelled`, and cancelling
//! a synchronous response is a 400. Shapes follow OpenAI's API reference; the same knobs as chat
//! completions apply (`status`, `echo`, `tool_call`, `words`, `latency_ms`, `chunk_delay_ms`,
//! `disconnect_after_chunks`, `stall_after_chunks`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use http::{header, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::knobs::Knobs;
use crate::openai::{
    delayed, echo_json, error_response, fake_arguments, invalid_request, json_response,
    knob_override, parse_error, read_request, to_json, unix_secs, SSE_CONTENT_TYPE,
};
use crate::sse::{Ending, EventBuf};
use crate::text;
use crate::{Accounting, Shared};

/// Most responses kept; the oldest go first.
const MAX_STORED: usize = 4096;

/// Responses kept for the stored-response routes.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    by_id: HashMap<String, (Value, Vec<Value>)>,
    order: VecDeque<String>,
}

impl Stored {
    fn put(&mut self, id: String, response: Value, items: Vec<Value>) {
        if self.by_id.insert(id.clone(), (response, items)).is_none() {
            self.order.push_back(id);
        }
        while self.by_id.len() > MAX_STORED {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.by_id.remove(&old);
        }
    }
}

/// The Responses routes, for OpenAI and Azure's v1 surface.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut router = Router::new();
    for base in ["/v1/responses", "/openai/v1/responses"] {
        router = router
            .route(base, post(create))
            .route(&format!("{base}/{{id}}"), get(retrieve).delete(delete))
            .route(&format!("{base}/{{id}}/cancel"), post(cancel))
            .route(&format!("{base}/{{id}}/input_items"), get(input_items));
    }
    router
}

#[derive(Deserialize)]
struct CreateRequest<'a> {
    model: Option<String>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    instructions: Option<Value>,
    stream: Option<bool>,
    store: Option<bool>,
    background: Option<bool>,
    previous_response_id: Option<String>,
    max_output_tokens: Option<u64>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    text: Option<Value>,
    temperature: Option<Value>,
    top_p: Option<Value>,
    metadata: Option<Value>,
    parallel_tool_calls: Option<bool>,
    reasoning: Option<Value>,
    mock: Option<Knobs>,
}

/// What the response says.
enum Said {
    Text {
        text: String,
        truncated: bool,
    },
    Call {
        call_id: String,
        name: String,
        arguments: String,
    },
}

async fn create(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = match read_request(&shared, req).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let (resp, latency) = create_response(&shared, &parts, &body);
    delayed(resp, latency).await
}

fn not_found(id: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        &format!("Response with id '{id}' not found."),
        "invalid_request_error",
        None,
        None,
    )
}

fn create_response(
    shared: &Shared,
    parts: &http::request::Parts,
    body: &Bytes,
) -> (Response, std::time::Duration) {
    let req: CreateRequest<'_> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return (parse_error(&e), shared.cfg.latency),
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
    let Some(model) = req.model.as_deref() else {
        return (
            invalid_request("Missing required parameter: 'model'.", Some("model"), None),
            latency,
        );
    };
    if let Some(resp) = knob_override(&knobs, model) {
        return (resp, latency);
    }
    let items = match stored_items(req.input) {
        Ok(items) => items,
        Err(message) => return (invalid_request(message, Some("input"), None), latency),
    };
    if let Some(prev) = &req.previous_response_id {
        if !shared.responses.lock().by_id.contains_key(prev) {
            let resp = error_response(
                StatusCode::NOT_FOUND,
                &format!("Previous response with id '{prev}' not found."),
                "invalid_request_error",
                Some("previous_response_id"),
                Some("previous_response_not_found"),
            );
            return (resp, latency);
        }
    }
    let id = text::random_hex_id("resp_");
    let seed = text::fnv1a(req.input.map_or("", |i| i.get()).as_bytes());
    let input_tokens = 3 + text::estimate_tokens(req.input.map_or(0, |i| i.get().len()));
    let said = if knobs.echo() {
        Said::Text {
            text: echo_json(parts, body),
            truncated: false,
        }
    } else if let Some((name, params)) = forced_tool(&req, &knobs) {
        Said::Call {
            call_id: text::random_id("call_", 24),
            arguments: fake_arguments(params.as_deref(), seed),
            name,
        }
    } else if let Some(schema) = json_schema(&req) {
        Said::Text {
            text: fake_arguments(Some(&*schema), seed),
            truncated: false,
        }
    } else {
        let mut words = knobs
            .words
            .unwrap_or_else(|| text::default_word_count(seed));
        let mut truncated = false;
        if let Some(limit) = req.max_output_tokens {
            let limit = u32::try_from(limit).unwrap_or(u32::MAX);
            if words > limit {
                words = limit;
                truncated = true;
            }
        }
        Said::Text {
            text: text::fake_text(seed, words),
            truncated,
        }
    };
    let output_tokens = match &said {
        Said::Text { text, .. } => text::estimate_tokens(text.len()).max(1),
        Said::Call { arguments, .. } => text::estimate_tokens(arguments.len()) + 5,
    };
    let background = req.background.unwrap_or(false);
    let mut object = json!({
        "id": id,
        "object": "response",
        "created_at": unix_secs(),
        "status": "in_progress",
        "background": background,
        "error": null,
        "incomplete_details": null,
        "instructions": req.instructions.clone().unwrap_or(Value::Null),
        "max_output_tokens": req.max_output_tokens,
        "max_tool_calls": null,
        "model": model,
        "output": [],
        "parallel_tool_calls": req.parallel_tool_calls.unwrap_or(true),
        "previous_response_id": req.previous_response_id,
        "reasoning": req.reasoning.clone().unwrap_or_else(|| json!({"effort": null, "summary": null})),
        "service_tier": "default",
        "store": req.store.unwrap_or(true),
        "temperature": req.temperature.clone().unwrap_or_else(|| json!(1.0)),
        "text": req.text.clone().unwrap_or_else(|| json!({"format": {"type": "text"}})),
        "tool_choice": req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        "tools": req.tools.clone().unwrap_or_default(),
        "top_p": req.top_p.clone().unwrap_or_else(|| json!(1.0)),
        "truncation": "disabled",
        "usage": null,
        "user": null,
        "metadata": req.metadata.clone().unwrap_or_else(|| json!({})),
    });
    let stream = req.stream.unwrap_or(false);
    let store = req.store.unwrap_or(true);
    if background {
        // Queued until cancelled: enough to exercise `cancel` and `retrieve`.
        object["status"] = "queued".into();
        if store {
            shared.responses.lock().put(id, object.clone(), items);
        }
        return (json_response(StatusCode::OK, to_json(&object)), latency);
    }
    let tail = id.trim_start_matches("resp_");
    let item = match &said {
        Said::Text { text, .. } => json!({
            "id": format!("msg_{tail}"), "type": "message", "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        }),
        Said::Call {
            call_id,
            name,
            arguments,
        } => json!({
            "id": format!("fc_{tail}"), "type": "function_call", "status": "completed",
            "call_id": call_id, "name": name, "arguments": arguments,
        }),
    };
    let mut done = object.clone();
    done["output"] = json!([item]);
    match &said {
        Said::Text {
            truncated: true, ..
        } => {
            done["status"] = "incomplete".into();
            done["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
        _ => done["status"] = "completed".into(),
    }
    done["usage"] = json!({
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    });
    if store {
        shared.responses.lock().put(id, done.clone(), items);
    }
    let mut resp = if stream {
        let events = render_events(&object, &done, &said, &item);
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
        json_response(StatusCode::OK, to_json(&done))
    };
    resp.extensions_mut().insert(Accounting {
        tokens: input_tokens + output_tokens,
        ..Accounting::default()
    });
    (resp, latency)
}

/// The request's input as stored items with ids; the 400's message for anything but a string
/// or a list of objects.
fn stored_items(input: Option<&RawValue>) -> Result<Vec<Value>, &'static str> {
    const BAD: &str = "Invalid 'input': expected a string or an array of input items.";
    let value: Value = match input {
        None => return Err("Missing required parameter: 'input'."),
        Some(raw) => serde_json::from_str(raw.get()).map_err(|_| BAD)?,
    };
    let list = match value {
        Value::String(s) => vec![json!({"role": "user", "content": s})],
        Value::Array(items) => items,
        _ => return Err(BAD),
    };
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let Value::Object(mut o) = item else {
            return Err(BAD);
        };
        let kind = o
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message")
            .to_owned();
        if kind == "message" {
            o.insert("type".into(), "message".into());
            if let Some(Value::String(s)) = o.get("content") {
                let part = if o.get("role").and_then(Value::as_str) == Some("assistant") {
                    "output_text"
                } else {
                    "input_text"
                };
                o.insert("content".into(), json!([{"type": part, "text": s}]));
            }
        }
        if !o.contains_key("id") {
            let prefix = match kind.as_str() {
                "message" => "msg_",
                "function_call" => "fc_",
                "function_call_output" => "fco_",
                _ => "item_",
            };
            o.insert("id".into(), text::random_hex_id(prefix).into());
        }
        o.entry("status").or_insert_with(|| "completed".into());
        out.push(Value::Object(o));
    }
    Ok(out)
}

/// The function to call: a named `tool_choice`, `required` (the first tool), or the
/// `tool_call` knob.
fn forced_tool(req: &CreateRequest<'_>, knobs: &Knobs) -> Option<(String, Option<Box<RawValue>>)> {
    let tools = req.tools.as_deref().unwrap_or_default();
    let named = req
        .tool_choice
        .as_ref()
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str);
    let required = req.tool_choice.as_ref().and_then(Value::as_str) == Some("required");
    if named.is_none() && !required && !knobs.tool_call() {
        return None;
    }
    let functions = tools
        .iter()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"));
    let pick = match named {
        Some(name) => functions
            .clone()
            .find(|t| t.get("name").and_then(Value::as_str) == Some(name)),
        None => functions.clone().next(),
    };
    let name = named
        .map(str::to_owned)
        .or_else(|| {
            pick.and_then(|t| t.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "mock_tool".to_owned());
    let params = pick
        .and_then(|t| t.get("parameters"))
        .and_then(|p| serde_json::value::to_raw_value(p).ok());
    Some((name, params))
}

/// The schema of a `text.format` `json_schema` request.
fn json_schema(req: &CreateRequest<'_>) -> Option<Box<RawValue>> {
    let format = req.text.as_ref()?.get("format")?;
    match format.get("type")?.as_str()? {
        "json_schema" => serde_json::value::to_raw_value(format.get("schema")?).ok(),
        "json_object" => serde_json::value::to_raw_value(&json!({})).ok(),
        _ => None,
    }
}

/// The typed semantic events of a response, `event:`-named, with sequence numbers.
fn render_events(object: &Value, done: &Value, said: &Said, item: &Value) -> EventBuf {
    let mut out = EventBuf::with_capacity(16, 256);
    let mut seq = 0u64;
    let mut emit = |out: &mut EventBuf, kind: &str, mut body: Value| {
        body["type"] = kind.into();
        body["sequence_number"] = seq.into();
        seq += 1;
        let buf = out.buf();
        buf.extend_from_slice(b"event: ");
        buf.extend_from_slice(kind.as_bytes());
        buf.extend_from_slice(b"\ndata: ");
        buf.extend_from_slice(&to_json(&body));
        buf.extend_from_slice(b"\n\n");
        out.end_event();
    };
    emit(&mut out, "response.created", json!({"response": object}));
    emit(
        &mut out,
        "response.in_progress",
        json!({"response": object}),
    );
    let id = item["id"].clone();
    match said {
        Said::Text { text, .. } => {
            let mut added = item.clone();
            added["status"] = "in_progress".into();
            added["content"] = json!([]);
            emit(
                &mut out,
                "response.output_item.added",
                json!({"output_index": 0, "item": added}),
            );
            let empty =
                json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
            emit(
                &mut out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": 0, "content_index": 0, "part": empty}),
            );
            for piece in text.split_inclusive(' ') {
                emit(
                    &mut out,
                    "response.output_text.delta",
                    json!({"item_id": id, "output_index": 0, "content_index": 0,
                           "delta": piece, "logprobs": []}),
                );
            }
            emit(
                &mut out,
                "response.output_text.done",
                json!({"item_id": id, "output_index": 0, "content_index": 0, "text": text,
                       "logprobs": []}),
            );
            emit(
                &mut out,
                "response.content_part.done",
                json!({"item_id": id, "output_index": 0, "content_index": 0,
                       "part": item["content"][0].clone()}),
            );
        }
        Said::Call {
            arguments, name, ..
        } => {
            let mut added = item.clone();
            added["status"] = "in_progress".into();
            added["arguments"] = "".into();
            emit(
                &mut out,
                "response.output_item.added",
                json!({"output_index": 0, "item": added}),
            );
            let chars: Vec<char> = arguments.chars().collect();
            for piece in chars.chunks(8) {
                let piece: String = piece.iter().collect();
                emit(
                    &mut out,
                    "response.function_call_arguments.delta",
                    json!({"item_id": id, "output_index": 0, "delta": piece}),
                );
            }
            emit(
                &mut out,
                "response.function_call_arguments.done",
                json!({"item_id": id, "output_index": 0, "arguments": arguments, "name": name}),
            );
        }
    }
    emit(
        &mut out,
        "response.output_item.done",
        json!({"output_index": 0, "item": item}),
    );
    let last = if done["status"] == "incomplete" {
        "response.incomplete"
    } else {
        "response.completed"
    };
    emit(&mut out, last, json!({"response": done}));
    out
}

// === stored responses ===

async fn retrieve(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    if let Err(resp) = read_request(&shared, req).await {
        return resp;
    }
    let found = shared
        .responses
        .lock()
        .by_id
        .get(&id)
        .map(|(r, _)| r.clone());
    match found {
        Some(r) => json_response(StatusCode::OK, to_json(&r)),
        None => not_found(&id),
    }
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    if let Err(resp) = read_request(&shared, req).await {
        return resp;
    }
    let removed = shared.responses.lock().by_id.remove(&id).is_some();
    if removed {
        let receipt = json!({"id": id, "object": "response", "deleted": true});
        json_response(StatusCode::OK, to_json(&receipt))
    } else {
        not_found(&id)
    }
}

async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    if let Err(resp) = read_request(&shared, req).await {
        return resp;
    }
    let mut stored = shared.responses.lock();
    let Some((r, _)) = stored.by_id.get_mut(&id) else {
        return not_found(&id);
    };
    if r["background"] != true {
        return invalid_request("Cannot cancel a synchronous response.", None, None);
    }
    if r["status"] == "queued" || r["status"] == "in_progress" {
        r["status"] = "cancelled".into();
    }
    json_response(StatusCode::OK, to_json(r))
}

async fn input_items(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let query = req.uri().query().unwrap_or("").to_owned();
    if let Err(resp) = read_request(&shared, req).await {
        return resp;
    }
    let Some(items) = shared
        .responses
        .lock()
        .by_id
        .get(&id)
        .map(|(_, i)| i.clone())
    else {
        return not_found(&id);
    };
    let param = |key: &str| {
        query.split('&').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            (k == key).then(|| v.to_owned())
        })
    };
    let limit = param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let mut ordered = items;
    if param("order").as_deref() != Some("asc") {
        ordered.reverse();
    }
    let start = param("after")
        .and_then(|after| ordered.iter().position(|v| v["id"] == after.as_str()))
        .map_or(0, |i| i + 1);
    let rest = ordered.get(start..).unwrap_or_default();
    let data: Vec<Value> = rest.iter().take(limit).cloned().collect();
    let list = json!({
        "object": "list",
        "data": data,
        "first_id": data.first().map(|v| v["id"].clone()),
        "last_id": data.last().map(|v| v["id"].clone()),
        "has_more": rest.len() > data.len(),
    });
    json_response(StatusCode::OK, to_json(&list))
}

#[cfg(test)]
mod tests;
