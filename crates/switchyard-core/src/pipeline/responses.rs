//! The Responses API's state in the pipeline: `previous_response_id` resolved before routing,
//! responses recorded in the tenant's store when they succeed, and the stored-response
//! endpoints (`GET`/`DELETE /v1/responses/{id}`, `POST .../cancel`, `GET .../input_items`).
//!
//! A response made by an OpenAI-type deployment is kept there: the gateway records which
//! deployment made it, pins a continuation to that provider, and forwards the stored-response
//! calls to it. A response made by translation is kept by the gateway (see
//! [`crate::responses_state`]): a continuation replays the conversation before the new input,
//! and the stored-response calls are answered from the store. Either way the record belongs to
//! the calling key, so no key reaches another's responses.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};
use switchyard_types::json::top_level_value;
use switchyard_types::responses::request::{input_items, with_history};
use switchyard_types::responses::ResponsesRequest;
use tokio::time::Instant;

use super::ctx::{Outcome, RequestCtx};
use super::stream::SseRelay;
use super::{Gateway, Logged, Reply as Served};
use crate::config::Deployment;
use crate::error::GatewayError;
use crate::providers::responses::Passthrough;
use crate::providers::{self, Operation, Reply};
use crate::responses_state::{ItemsPage, Kept, ResponseStore, StoreError, StoredResponse, Tenant};

/// Most responses a continuation walks back through (a longer chain is refused).
const MAX_CHAIN: usize = 512;

/// What a `POST /v1/responses` carries through the pipeline for its state.
#[derive(Debug)]
pub struct Turn {
    tenant: Tenant,
    /// Whether the response is to be stored (`store`, default true).
    store: bool,
    /// `previous_response_id`, as sent.
    previous: Option<String>,
    /// This request's input items, with ids.
    input_items: Vec<Value>,
    /// The conversation before this request, when the previous response is gateway-kept.
    history: Option<Vec<Value>>,
}

/// The calling key's tenant.
pub(crate) fn tenant_of(ctx: &RequestCtx) -> Tenant {
    match &ctx.key_name {
        Some(name) => Tenant::key(name),
        None => Tenant::principal(ctx.principal),
    }
}

fn store_failed(e: StoreError) -> GatewayError {
    GatewayError::Internal(e.to_string())
}

fn response_not_found(id: &str, param: Option<&'static str>) -> GatewayError {
    GatewayError::ResourceNotFound {
        param,
        message: format!("Response with id '{id}' not found."),
        code: param.map(|_| "previous_response_not_found"),
    }
}

/// Reads the request's state fields and resolves `previous_response_id`: returns the turn and,
/// when the previous response is kept upstream, the provider the request must go to.
pub(crate) async fn prepare(
    gw: &Gateway,
    ctx: &RequestCtx,
    body: &[u8],
) -> Result<(Turn, Option<Arc<str>>), GatewayError> {
    let (previous, store) = {
        let req: ResponsesRequest<'_> = super::deserialize(body)?;
        (
            req.previous_response_id.map(Cow::into_owned),
            req.store.unwrap_or(true),
        )
    };
    let seed = uuid::Uuid::now_v7().simple().to_string();
    let items = input_items(body, &seed).map_err(providers::untranslatable)?;
    let tenant = tenant_of(ctx);
    let mut turn = Turn {
        tenant,
        store,
        previous: previous.clone(),
        input_items: items,
        history: None,
    };
    let Some(first) = previous else {
        return Ok((turn, None));
    };
    let mut turns: Vec<Vec<Value>> = Vec::new();
    let mut next = Some(first.clone());
    while let Some(id) = next.take() {
        if turns.len() >= MAX_CHAIN {
            return Err(GatewayError::InvalidField {
                param: "previous_response_id".into(),
                message: format!(
                    "The conversation ending at '{first}' is longer than {MAX_CHAIN} responses."
                ),
            });
        }
        let record = gw
            .responses
            .get(&turn.tenant, &id)
            .await
            .map_err(store_failed)?
            .ok_or_else(|| response_not_found(&id, Some("previous_response_id")))?;
        match record.kept {
            Kept::Upstream if turns.is_empty() => return Ok((turn, Some(record.provider))),
            Kept::Upstream => {
                return Err(GatewayError::Internal(format!(
                    "gateway-kept response chain reaches upstream-kept '{id}'"
                )))
            }
            Kept::Gateway {
                response,
                input_items,
                previous_response_id,
            } => {
                let mut items = input_items;
                if let Some(output) = response.get("output").and_then(Value::as_array) {
                    items.extend(output.iter().cloned());
                }
                turns.push(items);
                next = previous_response_id;
            }
        }
    }
    turn.history = Some(turns.into_iter().rev().flatten().collect());
    Ok((turn, None))
}

/// Keeps only the candidates at `provider`, which holds the previous response.
pub(crate) fn pin(
    candidates: &mut Vec<Deployment>,
    provider: &str,
    model: &str,
) -> Result<(), GatewayError> {
    candidates.retain(|d| &*d.provider.name == provider);
    if candidates.is_empty() {
        return Err(GatewayError::Unsupported {
            param: "previous_response_id".into(),
            message: format!(
                "The previous response is kept by provider `{provider}`, which does not serve \
                 the model `{model}`; continue it with a model served there."
            ),
            code: "unsupported_parameter",
        });
    }
    Ok(())
}

/// The body for one attempt: with the replayed conversation when the previous response is
/// gateway-kept (`native` says the deployment speaks the Responses API itself).
pub(crate) fn attempt_body<'b>(
    turn: Option<&Turn>,
    body: &'b [u8],
    native: bool,
) -> Result<Cow<'b, [u8]>, GatewayError> {
    match turn.and_then(|t| t.history.as_deref()) {
        Some(history) => with_history(body, history, native)
            .map(Cow::Owned)
            .map_err(providers::untranslatable),
        None => Ok(Cow::Borrowed(body)),
    }
}

/// What a successful response is recorded as.
struct Sink {
    store: Arc<dyn ResponseStore>,
    tenant: Tenant,
    provider: Arc<str>,
    model: Arc<str>,
    client_model: Arc<str>,
    native: bool,
    input_items: Vec<Value>,
    previous: Option<String>,
}

impl Sink {
    fn new(
        gw: &Gateway,
        turn: &Turn,
        d: &Deployment,
        client_model: &Arc<str>,
        native: bool,
    ) -> Option<Self> {
        turn.store.then(|| Self {
            store: Arc::clone(&gw.responses),
            tenant: turn.tenant.clone(),
            provider: Arc::clone(&d.provider.name),
            model: Arc::clone(&d.model),
            client_model: Arc::clone(client_model),
            native,
            input_items: turn.input_items.clone(),
            previous: turn.previous.clone(),
        })
    }

    /// The record for a response object (or, upstream-kept, any object with its `id`).
    fn record(&self, response: Value) -> Option<StoredResponse> {
        let id = response.get("id")?.as_str()?.to_owned();
        let kept = if self.native {
            Kept::Upstream
        } else {
            Kept::Gateway {
                response,
                input_items: self.input_items.clone(),
                previous_response_id: self.previous.clone(),
            }
        };
        Some(StoredResponse {
            id,
            provider: Arc::clone(&self.provider),
            model: Arc::clone(&self.model),
            client_model: Arc::clone(&self.client_model),
            kept,
        })
    }
}

/// Records a complete (non-streamed) response.
pub(crate) async fn record_body(
    gw: &Gateway,
    turn: &Turn,
    d: &Deployment,
    client_model: &Arc<str>,
    native: bool,
    body: &[u8],
) {
    let Some(sink) = Sink::new(gw, turn, d, client_model, native) else {
        return;
    };
    let Some(record) = serde_json::from_slice(body)
        .ok()
        .and_then(|v| sink.record(v))
    else {
        return;
    };
    if let Err(e) = sink.store.put(&sink.tenant, record).await {
        tracing::warn!(error = %e, "could not store a response");
    }
}

/// Wraps a stream's reply so the response is recorded from its events: upstream-kept at
/// `response.created` (the id is all the gateway keeps), gateway-kept at the final
/// `response.completed`/`incomplete`/`failed` (the whole object).
pub(crate) fn recording(
    gw: &Gateway,
    turn: &Turn,
    d: &Deployment,
    client_model: &Arc<str>,
    native: bool,
    inner: Box<dyn Reply>,
) -> Box<dyn Reply> {
    match Sink::new(gw, turn, d, client_model, native) {
        Some(sink) => super::tap::Tap::boxed(inner, Recorder { sink: Some(sink) }),
        None => inner,
    }
}

struct Recorder {
    /// Taken once the response is recorded.
    sink: Option<Sink>,
}

impl super::tap::Watcher for Recorder {
    fn watching(&self) -> bool {
        self.sink.is_some()
    }

    fn saw(&mut self, written: &[u8]) {
        let Some(sink) = &self.sink else {
            return;
        };
        let wanted: &[&str] = if sink.native {
            &["response.created"]
        } else {
            &[
                "response.completed",
                "response.incomplete",
                "response.failed",
            ]
        };
        for line in written.split(|b| *b == b'\n') {
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            let kind = top_level_value(data, "type")
                .and_then(|s| data.get(s))
                .and_then(|v| serde_json::from_slice::<String>(v).ok());
            if !kind.is_some_and(|k| wanted.contains(&k.as_str())) {
                continue;
            }
            let response = top_level_value(data, "response")
                .and_then(|s| data.get(s))
                .and_then(|v| serde_json::from_slice::<Value>(v).ok());
            let Some(record) = response.and_then(|r| sink.record(r)) else {
                continue;
            };
            let Some(sink) = self.sink.take() else {
                return;
            };
            // Visible to `get` at once (a client continues as soon as it has read the
            // stream); a persistent store finishes the write in the background.
            sink.store.put_detached(sink.tenant, record);
            return;
        }
    }
}

// === stored-response endpoints ===

/// Which stored-response endpoint was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `GET /v1/responses/{id}`.
    Retrieve,
    /// `DELETE /v1/responses/{id}`.
    Delete,
    /// `POST /v1/responses/{id}/cancel`.
    Cancel,
    /// `GET /v1/responses/{id}/input_items`.
    InputItems,
}

/// Serves a stored-response endpoint for response `id`; always answers, and logs once.
pub async fn resource(
    gw: Arc<Gateway>,
    which: Resource,
    id: String,
    req: Request<Body>,
) -> Response {
    let mut ctx = super::start_ctx(&gw, Operation::ResponsesResource, &req);
    let mut resp = match serve_resource(&gw, &mut ctx, which, &id, req).await {
        Ok(Served::Complete(resp)) => {
            ctx.log(resp.status().as_u16(), Outcome::Completed, None);
            resp
        }
        Ok(Served::Streaming(resp)) => resp,
        Err(err) => {
            let resp = err.to_response();
            ctx.log(resp.status().as_u16(), Outcome::Failed, Some(&err));
            resp
        }
    };
    resp.extensions_mut().insert(Logged);
    resp
}

async fn serve_resource(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    which: Resource,
    id: &str,
    req: Request<Body>,
) -> Result<Served, GatewayError> {
    let (parts, _) = req.into_parts();
    super::authenticate(gw, ctx, &parts.headers)?;
    super::admit_side(gw, ctx, &parts.headers, None, b"").await?;
    let tenant = tenant_of(ctx);
    let record = gw
        .responses
        .get(&tenant, id)
        .await
        .map_err(store_failed)?
        .ok_or_else(|| response_not_found(id, None))?;
    ctx.client_model = Some(record.client_model.to_string());
    ctx.provider = Some(Arc::clone(&record.provider));
    ctx.upstream_model = Some(Arc::clone(&record.model));
    ctx.route_rule = Some("stored_response");
    let query = parts.uri.query().unwrap_or("");
    match &record.kept {
        Kept::Upstream => forward(gw, ctx, &tenant, &record, which, query).await,
        Kept::Gateway { response, .. } => local(gw, &tenant, &record, response, which, query).await,
    }
}

pub(super) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn encode(v: &Value) -> Result<Vec<u8>, GatewayError> {
    serde_json::to_vec(v).map_err(|e| GatewayError::Internal(e.to_string()))
}

/// Answers from the gateway's store, for a response it made by translation.
async fn local(
    gw: &Gateway,
    tenant: &Tenant,
    record: &StoredResponse,
    response: &Value,
    which: Resource,
    query: &str,
) -> Result<Served, GatewayError> {
    let id = record.id.as_str();
    let body = match which {
        Resource::Retrieve => {
            if query_param(query, "stream").is_some_and(|s| s == "true") {
                return Err(GatewayError::Unsupported {
                    param: "stream".into(),
                    message: format!(
                        "Response '{id}' was made by deployment `{}/{}` through translation \
                         and is complete; it cannot be streamed again (only background \
                         responses can).",
                        record.provider, record.model
                    ),
                    code: "unsupported_parameter",
                });
            }
            encode(response)?
        }
        Resource::Delete => {
            gw.responses
                .delete(tenant, id)
                .await
                .map_err(store_failed)?;
            encode(&json!({"id": id, "object": "response", "deleted": true}))?
        }
        Resource::Cancel => {
            return Err(GatewayError::InvalidField {
                param: String::new(),
                message: format!(
                    "Cannot cancel response '{id}': only responses created with \
                     `background: true` can be cancelled, and it is already complete."
                ),
            })
        }
        Resource::InputItems => {
            let page = items_page(query)?;
            let list = gw
                .responses
                .list_input_items(tenant, id, &page)
                .await
                .map_err(store_failed)?
                .ok_or_else(|| response_not_found(id, None))?;
            let first = list.data.first().and_then(|v| v.get("id")).cloned();
            let last = list.data.last().and_then(|v| v.get("id")).cloned();
            encode(&json!({
                "object": "list",
                "data": list.data,
                "first_id": first,
                "last_id": last,
                "has_more": list.has_more,
            }))?
        }
    };
    Ok(Served::Complete(json_response(StatusCode::OK, body)))
}

/// `limit` (1–100, default 20), `order` (`asc`/`desc`, default `desc`) and `after`.
fn items_page(query: &str) -> Result<ItemsPage, GatewayError> {
    let (after, limit, descending) = page_params(query, true)?;
    Ok(ItemsPage {
        after,
        limit,
        descending,
    })
}

/// A list's paging parameters: `after`, `limit` (1–100, default 20) and whether `order` is
/// `desc` (else `asc`; `desc_by_default` when absent). Shared by every list the gateway serves.
pub(super) fn page_params(
    query: &str,
    desc_by_default: bool,
) -> Result<(Option<String>, usize, bool), GatewayError> {
    let limit = match query_param(query, "limit") {
        None => 20,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| GatewayError::InvalidField {
                param: "limit".into(),
                message: format!("Invalid 'limit': expected an integer from 1 to 100, got '{v}'."),
            })?,
    };
    let descending = match query_param(query, "order").as_deref() {
        None => desc_by_default,
        Some("desc") => true,
        Some("asc") => false,
        Some(other) => {
            return Err(GatewayError::InvalidField {
                param: "order".into(),
                message: format!("Invalid 'order': expected 'asc' or 'desc', got '{other}'."),
            })
        }
    };
    Ok((query_param(query, "after"), limit, descending))
}

/// The decoded value of `key` in a query string.
pub(super) fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

/// Decodes a query string component (`%XX` escapes, `+` as a space).
pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Forwards to the OpenAI-type deployment that keeps the response.
async fn forward(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    tenant: &Tenant,
    record: &StoredResponse,
    which: Resource,
    query: &str,
) -> Result<Served, GatewayError> {
    let provider =
        gw.providers.get(&record.provider).cloned().ok_or_else(|| {
            GatewayError::Internal(format!("no adapter for `{}`", record.provider))
        })?;
    let id = record.id.as_str();
    let (method, mut tail) = match which {
        Resource::Retrieve => (Method::GET, id.to_owned()),
        Resource::Delete => (Method::DELETE, id.to_owned()),
        Resource::Cancel => (Method::POST, format!("{id}/cancel")),
        Resource::InputItems => (Method::GET, format!("{id}/input_items")),
    };
    if !query.is_empty() && matches!(which, Resource::Retrieve | Resource::InputItems) {
        tail.push('?');
        tail.push_str(query);
    }
    let up = provider.responses_resource(&method, &tail)?;
    let mut request = Request::builder()
        .method(up.method)
        .uri(up.uri)
        .body(Full::new(Bytes::new()))
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    *request.headers_mut() = up.headers;
    let t = gw.timeouts;
    let name = Arc::clone(provider.name());
    let sent_at = Instant::now();
    let deadline = sent_at + t.total;
    let sent = gw.client.request_within(request, Some(t.connect));
    let response = super::await_head(sent, &name, &t, sent_at).await?;
    let (parts, incoming) = response.into_parts();
    if !parts.status.is_success() {
        let body = super::read_upstream(
            incoming,
            super::MAX_ERROR_BODY,
            deadline,
            &name,
            t.total,
            true,
        )
        .await?;
        if parts.status == StatusCode::NOT_FOUND {
            // Gone upstream (deleted or expired there): forget it here too.
            gw.responses
                .delete(tenant, id)
                .await
                .map_err(store_failed)?;
            return Err(response_not_found(id, None));
        }
        return Err(provider.classify_error(parts.status, &parts.headers, &body));
    }
    let mut reply = Passthrough {
        provider: Arc::clone(&name),
        client_model: Arc::clone(&record.client_model),
        usage: None,
    };
    if super::is_stream(&parts) {
        ctx.stream = true;
        let relay_ctx = ctx.detach();
        let relay = SseRelay::new(
            incoming,
            name,
            Box::new(reply),
            crate::providers::ClientApi::OpenAi,
            &t,
            deadline,
            relay_ctx,
        );
        let mut resp = Response::new(Body::new(relay));
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        return Ok(Served::Streaming(resp));
    }
    let raw = super::read_upstream(
        incoming,
        super::MAX_RESPONSE_BODY,
        deadline,
        &name,
        t.total,
        false,
    )
    .await?;
    let body = match which {
        // Response objects name the model; item lists and deletion receipts do not.
        Resource::Retrieve | Resource::Cancel => reply.body(&raw)?.body,
        Resource::Delete | Resource::InputItems => {
            providers::check_json(&name, &raw, "response")?;
            raw
        }
    };
    if which == Resource::Delete {
        gw.responses
            .delete(tenant, id)
            .await
            .map_err(store_failed)?;
    }
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = parts.status;
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(CONTENT_TYPE, content_type);
    Ok(Served::Complete(resp))
}

#[cfg(test)]
mod tests;
