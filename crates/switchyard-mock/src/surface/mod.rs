//! The rest of OpenAI's API surface, in OpenAI's wire format: legacy completions (JSON and
//! SSE), files (multipart upload, list, retrieve, delete, binary content), images (JSON, or
//! SSE with `stream: true`), audio speech (binary), moderations and batches. Enough of each
//! for gateways and SDKs to be tested faithfully; state (files, batches) lives in memory for
//! the mock's lifetime.

mod audio;
mod batches;
mod completions;
mod files;
mod images;
mod moderations;
pub(crate) mod multipart;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use http::{StatusCode, Uri};
use http_body::Frame;
use serde::Serialize;

use crate::openai::error_response;
use crate::Shared;

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    let only =
        |r: axum::routing::MethodRouter<Arc<Shared>>| r.fallback(crate::openai::method_not_allowed);
    Router::new()
        .route("/v1/completions", only(post(completions::completions)))
        .route(
            "/openai/deployments/{deployment}/completions",
            only(post(completions::azure_completions)),
        )
        .route("/v1/files", only(post(files::upload).get(files::list)))
        .route(
            "/v1/files/{id}",
            only(get(files::retrieve).delete(files::delete)),
        )
        .route("/v1/files/{id}/content", only(get(files::content)))
        .route("/v1/images/generations", only(post(images::generate)))
        .route("/v1/audio/speech", only(post(audio::speech)))
        .route("/v1/moderations", only(post(moderations::moderate)))
        .route(
            "/v1/batches",
            only(post(batches::create).get(batches::list)),
        )
        .route("/v1/batches/{id}", only(get(batches::retrieve)))
        .route("/v1/batches/{id}/cancel", only(post(batches::cancel)))
}

/// Files and batches created so far.
#[derive(Debug, Default)]
pub(crate) struct Store {
    files: Vec<StoredFile>,
    batches: Vec<batches::Batch>,
}

/// An uploaded file.
#[derive(Debug)]
pub(crate) struct StoredFile {
    id: String,
    filename: String,
    purpose: String,
    created_at: u64,
    expires_at: Option<u64>,
    content: Bytes,
}

/// OpenAI's cursor-page envelope: `{"object":"list","data":[...],"first_id","last_id","has_more"}`.
fn list_json<T: Serialize>(data: &[T], ids: &[&str], has_more: bool) -> Vec<u8> {
    #[derive(Serialize)]
    struct Page<'a, T> {
        object: &'static str,
        data: &'a [T],
        first_id: Option<&'a str>,
        last_id: Option<&'a str>,
        has_more: bool,
    }
    crate::openai::to_json(&Page {
        object: "list",
        data,
        first_id: ids.first().copied(),
        last_id: ids.last().copied(),
        has_more,
    })
}

/// OpenAI's 404 for an object id that does not exist.
fn not_found_object(kind: &str, id: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        &format!("No such {kind} object: {id}"),
        "invalid_request_error",
        Some("id"),
        None,
    )
}

/// The value of a query parameter (no percent-decoding beyond `%2F`-free ids and words).
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// A body that hands out one buffer in frames of a fixed size, as a large download arrives.
pub(crate) struct Frames {
    data: Bytes,
    frame: usize,
}

impl Frames {
    pub(crate) fn new(data: Bytes, frame: usize) -> Self {
        Self {
            data,
            frame: frame.max(1),
        }
    }
}

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.data.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.frame.min(self.data.len());
        let chunk = self.data.split_to(n);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.data.len() as u64)
    }
}
