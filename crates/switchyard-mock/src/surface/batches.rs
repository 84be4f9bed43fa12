//! OpenAI's Batch API: `POST /v1/batches` (the input file must exist and have purpose
//! `batch`), `GET /v1/batches` (`limit`, `after`), `GET /v1/batches/{id}` and
//! `POST /v1/batches/{id}/cancel`. A new batch is `validating`; cancelling makes it
//! `cancelling`, and the next read finds it `cancelled`.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{list_json, not_found_object, query_param};
use crate::openai::{
    auth_failure, invalid_request, json_response, parse_error, read_request, to_json, unix_secs,
};
use crate::{text, Shared};

/// The endpoints a batch may target.
const ENDPOINTS: [&str; 5] = [
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
];

/// The Batch object, in the API reference's field order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Batch {
    id: String,
    object: &'static str,
    endpoint: String,
    errors: Option<()>,
    input_file_id: String,
    completion_window: String,
    status: &'static str,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
    created_at: u64,
    in_progress_at: Option<u64>,
    expires_at: u64,
    finalizing_at: Option<u64>,
    completed_at: Option<u64>,
    failed_at: Option<u64>,
    expired_at: Option<u64>,
    cancelling_at: Option<u64>,
    cancelled_at: Option<u64>,
    request_counts: Counts,
    metadata: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
struct Counts {
    total: u64,
    completed: u64,
    failed: u64,
}

#[derive(Deserialize)]
struct CreateBatch {
    input_file_id: Option<String>,
    endpoint: Option<String>,
    completion_window: Option<String>,
    metadata: Option<Value>,
}

pub(super) async fn create(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (_, body) = match read_request(&shared, req).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let req: CreateBatch = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return parse_error(&e),
    };
    let Some(input_file_id) = req.input_file_id else {
        return invalid_request(
            "Missing required parameter: 'input_file_id'.",
            Some("input_file_id"),
            None,
        );
    };
    let endpoint = req.endpoint.unwrap_or_default();
    if !ENDPOINTS.contains(&endpoint.as_str()) {
        return invalid_request(
            &format!(
                "Invalid value for 'endpoint': '{endpoint}'. Expected one of: {}.",
                ENDPOINTS.join(", ")
            ),
            Some("endpoint"),
            None,
        );
    }
    let window = req.completion_window.unwrap_or_default();
    if window != "24h" {
        return invalid_request(
            "Invalid value for 'completion_window': only '24h' is supported.",
            Some("completion_window"),
            None,
        );
    }
    let mut store = shared.store.lock();
    let lines = match store.files.iter().find(|f| f.id == input_file_id) {
        None => return not_found_object("File", &input_file_id),
        Some(f) if f.purpose != "batch" => {
            return invalid_request(
                &format!("The file {input_file_id} must have purpose 'batch'."),
                Some("input_file_id"),
                None,
            )
        }
        Some(f) => f
            .content
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64,
    };
    let created_at = unix_secs();
    let batch = Batch {
        id: text::random_id("batch_", 32),
        object: "batch",
        endpoint,
        errors: None,
        input_file_id,
        completion_window: window,
        status: "validating",
        output_file_id: None,
        error_file_id: None,
        created_at,
        in_progress_at: None,
        expires_at: created_at + 24 * 3600,
        finalizing_at: None,
        completed_at: None,
        failed_at: None,
        expired_at: None,
        cancelling_at: None,
        cancelled_at: None,
        request_counts: Counts {
            total: lines,
            completed: 0,
            failed: 0,
        },
        metadata: req.metadata,
    };
    let body = to_json(&batch);
    store.batches.push(batch);
    json_response(StatusCode::OK, body)
}

/// Moves a `cancelling` batch on to `cancelled` when it is read again.
fn advance(b: &mut Batch) {
    if b.status == "cancelling" {
        b.status = "cancelled";
        b.cancelled_at = Some(unix_secs());
    }
}

pub(super) async fn retrieve(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(resp) = auth_failure(&shared, &headers) {
        return resp;
    }
    let mut store = shared.store.lock();
    match store.batches.iter_mut().find(|b| b.id == id) {
        Some(b) => {
            advance(b);
            json_response(StatusCode::OK, to_json(b))
        }
        None => not_found_object("Batch", &id),
    }
}

pub(super) async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(resp) = auth_failure(&shared, &headers) {
        return resp;
    }
    let mut store = shared.store.lock();
    let Some(b) = store.batches.iter_mut().find(|b| b.id == id) else {
        return not_found_object("Batch", &id);
    };
    if matches!(b.status, "validating" | "in_progress" | "finalizing") {
        b.status = "cancelling";
        b.cancelling_at = Some(unix_secs());
    }
    json_response(StatusCode::OK, to_json(b))
}

pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(resp) = auth_failure(&shared, &headers) {
        return resp;
    }
    let limit = query_param(&uri, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let after = query_param(&uri, "after");
    let mut store = shared.store.lock();
    store.batches.iter_mut().for_each(advance);
    // Newest first, as the API lists them.
    let mut batches: Vec<&Batch> = store.batches.iter().rev().collect();
    if let Some(after) = after {
        if let Some(i) = batches.iter().position(|b| b.id == after) {
            batches.drain(..=i);
        }
    }
    let has_more = batches.len() > limit;
    batches.truncate(limit);
    let ids: Vec<&str> = batches.iter().map(|b| b.id.as_str()).collect();
    json_response(StatusCode::OK, list_json(&batches, &ids, has_more))
}
