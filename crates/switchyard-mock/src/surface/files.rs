//! OpenAI's Files API: `POST /v1/files` (multipart: `file` and `purpose`), `GET /v1/files`
//! (`purpose`, `limit`, `order`, `after`), `GET`/`DELETE /v1/files/{id}` and
//! `GET /v1/files/{id}/content`, which returns the uploaded bytes as they were, in 64 KiB
//! frames (so a gateway relaying it frame by frame is exercised).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use serde::Serialize;

use super::{list_json, multipart, not_found_object, query_param, Frames, StoredFile};
use crate::openai::{
    auth_failure, error_response, invalid_request, json_response, to_json, unix_secs,
};
use crate::{text, Shared};

/// OpenAI's documented upload purposes.
const PURPOSES: [&str; 6] = [
    "assistants",
    "batch",
    "fine-tune",
    "vision",
    "user_data",
    "evals",
];
/// Largest upload the mock keeps (OpenAI's limit is 512 MB; the mock is in memory).
const MAX_UPLOAD: usize = 256 * 1024 * 1024;
/// Frame size of a content download.
const FRAME: usize = 64 * 1024;

/// The File object, in the API reference's field order.
#[derive(Serialize)]
pub(super) struct FileObject<'a> {
    id: &'a str,
    object: &'static str,
    bytes: usize,
    created_at: u64,
    expires_at: Option<u64>,
    filename: &'a str,
    purpose: &'a str,
    status: &'static str,
    status_details: Option<()>,
}

impl<'a> From<&'a StoredFile> for FileObject<'a> {
    fn from(f: &'a StoredFile) -> Self {
        Self {
            id: &f.id,
            object: "file",
            bytes: f.content.len(),
            created_at: f.created_at,
            expires_at: f.expires_at,
            filename: &f.filename,
            purpose: &f.purpose,
            status: "processed",
            status_details: None,
        }
    }
}

pub(super) async fn upload(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if let Some(resp) = auth_failure(&shared, &parts.headers) {
        return resp;
    }
    let Some(boundary) = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(multipart::boundary)
        .map(str::to_owned)
    else {
        return invalid_request(
            "The request must be multipart/form-data with `file` and `purpose` fields.",
            None,
            None,
        );
    };
    let body = match axum::body::to_bytes(body, MAX_UPLOAD).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The file is larger than the mock accepts.",
                "invalid_request_error",
                Some("file"),
                None,
            )
        }
    };
    let Some(form) = multipart::parse(&body, &boundary) else {
        return invalid_request("The multipart body could not be parsed.", None, None);
    };
    let field = |name: &str| form.iter().find(|p| p.name == name);
    let Some(file) = field("file").filter(|p| p.filename.is_some()) else {
        return invalid_request("Missing required parameter: 'file'.", Some("file"), None);
    };
    let purpose = field("purpose")
        .map(|p| String::from_utf8_lossy(p.data).into_owned())
        .unwrap_or_default();
    if !PURPOSES.contains(&purpose.as_str()) {
        return invalid_request(
            &format!(
                "Invalid value for 'purpose': '{purpose}'. Expected one of: {}.",
                PURPOSES.join(", ")
            ),
            Some("purpose"),
            None,
        );
    }
    let created_at = unix_secs();
    let expires_after = field("expires_after[seconds]")
        .and_then(|p| std::str::from_utf8(p.data).ok()?.trim().parse::<u64>().ok());
    let stored = StoredFile {
        id: text::random_id("file-", 22),
        filename: file.filename.clone().unwrap_or_default(),
        purpose,
        created_at,
        expires_at: expires_after.map(|s| created_at + s),
        content: Bytes::copy_from_slice(file.data),
    };
    let body = to_json(&FileObject::from(&stored));
    shared.store.lock().files.push(stored);
    json_response(StatusCode::OK, body)
}

pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(resp) = auth_failure(&shared, &headers) {
        return resp;
    }
    let purpose = query_param(&uri, "purpose");
    let limit = query_param(&uri, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10_000)
        .clamp(1, 10_000);
    let ascending = query_param(&uri, "order").as_deref() == Some("asc");
    let after = query_param(&uri, "after");
    let store = shared.store.lock();
    let mut files: Vec<&StoredFile> = store
        .files
        .iter()
        .filter(|f| purpose.as_deref().is_none_or(|p| f.purpose == p))
        .collect();
    if !ascending {
        files.reverse();
    }
    if let Some(after) = after {
        if let Some(i) = files.iter().position(|f| f.id == after) {
            files.drain(..=i);
        }
    }
    let has_more = files.len() > limit;
    files.truncate(limit);
    let data: Vec<FileObject<'_>> = files.into_iter().map(FileObject::from).collect();
    let ids: Vec<&str> = data.iter().map(|f| f.id).collect();
    json_response(StatusCode::OK, list_json(&data, &ids, has_more))
}

pub(super) async fn retrieve(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(resp) = auth_failure(&shared, &headers) {
        return resp;
    }
    let store = shared.store.lock();
    match store.files.iter().find(|f| f.id == id) {
        Some(f) => json_response(StatusCode::OK, to_json(&FileObject::from(f))),
        None => not_found_object("File", &id),
    }
}

pub(super) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(resp) = auth_failure(&shared, &headers) {
        return resp;
    }
    let mut store = shared.store.lock();
    let Some(i) = store.files.iter().position(|f| f.id == id) else {
        return not_found_object("File", &id);
    };
    store.files.remove(i);
    json_response(
        StatusCode::OK,
        to_json(&serde_json::json!({"id": id, "object": "file", "deleted": true})),
    )
}

pub(super) async fn content(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(resp) = auth_failure(&shared, &headers) {
        return resp;
    }
    let content = {
        let store = shared.store.lock();
        match store.files.iter().find(|f| f.id == id) {
            Some(f) => f.content.clone(),
            None => return not_found_object("File", &id),
        }
    };
    let len = content.len();
    let mut resp = Response::new(Body::new(Frames::new(content, FRAME)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}
