//! OpenAI's stored chat completions, in its wire format: a chat completion created with
//! `store: true` is kept (with its request messages and metadata) and served by `GET
//! /v1/chat/completions` (the list: `model`, `metadata[key]=value`, `after`, `limit`, `order`,
//! oldest first by default), `GET`/`POST`/`DELETE /v1/chat/completions/{id}` (the completion;
//! an update sets its `metadata`; a deletion answers `chat.completion.deleted`) and `GET
//! /v1/chat/completions/{id}/messages` (`after`, `limit`, `order`). Azure's v1 surface serves the
//! same under `/openai/v1/`. Unknown ids are OpenAI's 404.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::{json, Map, Value};

use crate::openai::{
    error_response, invalid_request, json_response, method_not_allowed, read_request, to_json,
};
use crate::Shared;

/// Most completions kept; the oldest go first.
const MAX_STORED: usize = 4096;

/// The kept completions, in creation order.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    by_id: HashMap<String, (Value, Vec<Value>)>,
    order: VecDeque<String>,
}

/// Keeps a completion made with `store: true`: `completion` is the object as answered (the
/// request's `metadata` is added to it), `body` the create request (its messages are kept).
pub(crate) fn keep(shared: &Shared, mut completion: Value, body: &[u8]) {
    let Some(id) = completion
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    completion["metadata"] = match request.get("metadata") {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => Value::Object(Map::new()),
    };
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .enumerate()
                .map(|(i, m)| store_message(&id, i, m))
                .collect()
        })
        .unwrap_or_default();
    let mut stored = shared.chat_completions.lock();
    if stored
        .by_id
        .insert(id.clone(), (completion, messages))
        .is_none()
    {
        stored.order.push_back(id);
    }
    while stored.by_id.len() > MAX_STORED {
        let Some(old) = stored.order.pop_front() else {
            break;
        };
        stored.by_id.remove(&old);
    }
}

/// A request message as the messages list shows it: an id, `content` as text (the text parts
/// joined, for a list of parts, which `content_parts` then holds), `name` and `content_parts`
/// always present, other members (tool calls, tool call ids) as sent.
fn store_message(completion: &str, index: usize, message: &Value) -> Value {
    let mut out = message.as_object().cloned().unwrap_or_default();
    let (content, parts) = match out.get("content") {
        Some(Value::Array(parts)) => {
            let text: String = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n");
            (Value::String(text), Value::Array(parts.clone()))
        }
        Some(other) => (other.clone(), Value::Null),
        None => (Value::Null, Value::Null),
    };
    out.insert("id".into(), format!("{completion}-{index}").into());
    out.insert("content".into(), content);
    out.insert("content_parts".into(), parts);
    out.entry("name").or_insert(Value::Null);
    Value::Object(out)
}

/// The stored-completion routes (the list's `GET /v1/chat/completions` shares its path with
/// the create, so `openai` routes it to [`list`]).
pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut router = Router::new().route(
        "/openai/v1/chat/completions",
        get(list).fallback(method_not_allowed),
    );
    for base in ["/v1/chat/completions", "/openai/v1/chat/completions"] {
        router = router
            .route(
                &format!("{base}/{{id}}"),
                get(retrieve)
                    .post(update)
                    .delete(delete)
                    .fallback(method_not_allowed),
            )
            .route(
                &format!("{base}/{{id}}/messages"),
                get(messages).fallback(method_not_allowed),
            );
    }
    router
}

fn not_found(id: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        &format!("Chat completion with id '{id}' not found."),
        "invalid_request_error",
        None,
        None,
    )
}

/// The decoded `key=value` pairs of a query string.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(v)) => {
                out.push(v);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Paging as OpenAI's stored-completion lists do it: `limit` 1–100 (default 20), `order`
/// `asc` (the default) or `desc`, `after` an id of the previous page.
struct Paging {
    after: Option<String>,
    limit: usize,
    descending: bool,
}

fn paging(pairs: &[(String, String)]) -> Result<Paging, Box<Response>> {
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let limit = match get("limit") {
        None => 20,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                Box::new(invalid_request(
                    &format!("Invalid 'limit': integer below minimum value or above maximum value (got '{v}')."),
                    Some("limit"),
                    None,
                ))
            })?,
    };
    let descending = match get("order") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(Box::new(invalid_request(
                &format!("Invalid 'order': expected 'asc' or 'desc', got '{other}'."),
                Some("order"),
                None,
            )))
        }
    };
    Ok(Paging {
        after: get("after").map(str::to_owned),
        limit,
        descending,
    })
}

/// One page of `items` (in creation order), with OpenAI's list envelope.
fn page(mut items: Vec<Value>, paging: &Paging) -> Value {
    if paging.descending {
        items.reverse();
    }
    let start = match &paging.after {
        Some(after) => items
            .iter()
            .position(|v| v["id"] == after.as_str())
            .map_or(items.len(), |i| i + 1),
        None => 0,
    };
    let rest = items.get(start..).unwrap_or_default();
    let data: Vec<Value> = rest.iter().take(paging.limit).cloned().collect();
    json!({
        "object": "list",
        "data": data,
        "first_id": data.first().map(|v| v["id"].clone()),
        "last_id": data.last().map(|v| v["id"].clone()),
        "has_more": rest.len() > data.len(),
    })
}

pub(crate) async fn list(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let query = req.uri().query().unwrap_or("").to_owned();
    if let Err(resp) = read_request(&shared, req).await {
        return resp;
    }
    let pairs = query_pairs(&query);
    let paging = match paging(&pairs) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    let model = pairs.iter().find(|(k, _)| k == "model").map(|(_, v)| v);
    let metadata: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((key, v.as_str()))
        })
        .collect();
    let items: Vec<Value> = {
        let stored = shared.chat_completions.lock();
        stored
            .order
            .iter()
            .filter_map(|id| stored.by_id.get(id).map(|(c, _)| c))
            .filter(|c| model.is_none_or(|m| c["model"] == m.as_str()))
            .filter(|c| metadata.iter().all(|(k, v)| c["metadata"][*k] == *v))
            .cloned()
            .collect()
    };
    json_response(StatusCode::OK, to_json(&page(items, &paging)))
}

async fn retrieve(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    if let Err(resp) = read_request(&shared, req).await {
        return resp;
    }
    let found = shared
        .chat_completions
        .lock()
        .by_id
        .get(&id)
        .map(|(c, _)| c.clone());
    match found {
        Some(c) => json_response(StatusCode::OK, to_json(&c)),
        None => not_found(&id),
    }
}

async fn update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let body = match read_request(&shared, req).await {
        Ok((_, body)) => body,
        Err(resp) => return resp,
    };
    let metadata = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut o)) => match o.remove("metadata") {
            Some(Value::Object(m)) if m.values().all(Value::is_string) => Value::Object(m),
            Some(Value::Null) => Value::Object(Map::new()),
            _ => {
                return invalid_request(
                    "Invalid 'metadata': expected an object of string values.",
                    Some("metadata"),
                    None,
                )
            }
        },
        _ => return invalid_request("The body must be a JSON object.", None, None),
    };
    let mut stored = shared.chat_completions.lock();
    match stored.by_id.get_mut(&id) {
        Some((c, _)) => {
            c["metadata"] = metadata;
            json_response(StatusCode::OK, to_json(c))
        }
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
    let removed = {
        let mut stored = shared.chat_completions.lock();
        let removed = stored.by_id.remove(&id).is_some();
        if removed {
            stored.order.retain(|o| *o != id);
        }
        removed
    };
    if removed {
        let receipt = json!({"object": "chat.completion.deleted", "id": id, "deleted": true});
        json_response(StatusCode::OK, to_json(&receipt))
    } else {
        not_found(&id)
    }
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let query = req.uri().query().unwrap_or("").to_owned();
    if let Err(resp) = read_request(&shared, req).await {
        return resp;
    }
    let paging = match paging(&query_pairs(&query)) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    let found = shared
        .chat_completions
        .lock()
        .by_id
        .get(&id)
        .map(|(_, m)| m.clone());
    match found {
        Some(items) => json_response(StatusCode::OK, to_json(&page(items, &paging))),
        None => not_found(&id),
    }
}

#[cfg(test)]
mod tests;
