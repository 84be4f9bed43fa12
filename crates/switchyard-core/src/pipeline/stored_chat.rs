//! Stored chat completions in the pipeline: a `POST /v1/chat/completions` with `store: true`
//! is recorded for its tenant when it succeeds, and the stored-completion endpoints (`GET
//! /v1/chat/completions`, `GET`/`POST`/`DELETE /v1/chat/completions/{id}`, `GET
//! .../{id}/messages`) are served from that record.
//!
//! OpenAI keeps a stored completion at the project the upstream key belongs to, where every
//! caller of the gateway would otherwise see every other's. So the gateway keeps its own record
//! ([`crate::stored_chat`]) of which deployment made which completion for which tenant (the
//! calling key's team, else the key), forwards a request on `{id}` to that deployment only when
//! the tenant's record exists (another tenant gets the same 404 as for an id that never
//! existed), and builds the list from the tenant's records, fetching each completion from the
//! deployment that keeps it. A completion made by a translated deployment (Anthropic, Gemini,
//! Bedrock) exists nowhere to be read back: asking for it is a 400 naming the deployment.
//!
//! Every endpoint is a request like any other: authenticated, attributed, admitted by the rate
//! limits (the alias is the completion's model, which a key restricted to aliases must be
//! allowed), logged once with its deployment, and counted in `/metrics`.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value};
use switchyard_types::json::{replace_top_level_string, top_level_value};
use tokio::time::Instant;

use super::ctx::{Outcome, RequestCtx};
use super::responses::{json_response, page_params, percent_decode};
use super::{Gateway, Logged};
use crate::config::Deployment;
use crate::error::GatewayError;
use crate::providers::{self, Operation, Provider, Reply};
use crate::stored_chat::{ChatRecord, ListQuery, StoreError, Tenant};

/// What a `POST /v1/chat/completions` with `store: true` carries to be recorded.
#[derive(Debug)]
pub struct Keep {
    tenant: Tenant,
    /// The request's `metadata`, which the list filters on.
    metadata: Option<Map<String, Value>>,
}

impl Keep {
    /// The record-to-be of an admitted request (its attribution is final).
    pub(crate) fn new(gw: &Gateway, ctx: &RequestCtx, body: &[u8]) -> Self {
        let metadata = top_level_value(body, "metadata")
            .and_then(|span| body.get(span))
            .and_then(|v| serde_json::from_slice::<Map<String, Value>>(v).ok());
        Self {
            tenant: tenant_of(gw, ctx),
            metadata,
        }
    }

    fn record(
        &self,
        id: String,
        d: &Deployment,
        client_model: &Arc<str>,
        kept: bool,
    ) -> ChatRecord {
        ChatRecord {
            id,
            provider: Arc::clone(&d.provider.name),
            model: Arc::clone(&d.model),
            client_model: Arc::clone(client_model),
            kept_upstream: kept,
            metadata: self.metadata.clone(),
            created_us: 0,
        }
    }
}

/// Whose stored chat completions a request reaches: the calling key's team (a store key's
/// record wins over the config, as in attribution), else the key, else the principal. Never
/// anything the client sends.
pub(crate) fn tenant_of(gw: &Gateway, ctx: &RequestCtx) -> Tenant {
    let team = ctx
        .virtual_key
        .as_ref()
        .and_then(|r| r.team.as_deref().map(Arc::<str>::from))
        .or_else(|| ctx.key_name.as_deref().and_then(|k| gw.auth.team_of(k)));
    match (team, &ctx.key_name) {
        (Some(team), _) => Tenant::team(&team),
        (None, Some(key)) => Tenant::key(key),
        (None, None) => Tenant::principal(ctx.principal),
    }
}

fn kept_by(gw: &Gateway, d: &Deployment) -> bool {
    gw.providers
        .get(&d.provider.name)
        .is_some_and(|p| p.keeps_chat_completions())
}

/// The completion's id in a chat completion object (or chunk).
fn completion_id(doc: &[u8]) -> Option<String> {
    let span = top_level_value(doc, "id")?;
    serde_json::from_slice::<String>(doc.get(span)?).ok()
}

/// Records a complete (non-streamed) answer.
pub(crate) fn record_body(
    gw: &Gateway,
    keep: &Keep,
    d: &Deployment,
    client_model: &Arc<str>,
    body: &[u8],
) {
    if let Some(id) = completion_id(body) {
        let record = keep.record(id, d, client_model, kept_by(gw, d));
        gw.stored_chat.put(keep.tenant.clone(), record);
    }
}

/// Wraps a stream's reply so the completion is recorded from its first chunk, before the
/// client has seen its id.
pub(crate) fn recording(
    gw: &Gateway,
    keep: &Arc<Keep>,
    d: &Deployment,
    client_model: &Arc<str>,
    inner: Box<dyn Reply>,
) -> Box<dyn Reply> {
    super::tap::Tap::boxed(
        inner,
        Recorder {
            pending: Some(Pending {
                store: Arc::clone(&gw.stored_chat),
                keep: Arc::clone(keep),
                deployment: d.clone(),
                client_model: Arc::clone(client_model),
                kept: kept_by(gw, d),
            }),
        },
    )
}

struct Pending {
    store: Arc<crate::stored_chat::ChatCompletionStore>,
    keep: Arc<Keep>,
    deployment: Deployment,
    client_model: Arc<str>,
    kept: bool,
}

struct Recorder {
    /// Taken once the completion is recorded.
    pending: Option<Pending>,
}

impl super::tap::Watcher for Recorder {
    fn watching(&self) -> bool {
        self.pending.is_some()
    }

    fn saw(&mut self, written: &[u8]) {
        let id = written
            .split(|b| *b == b'\n')
            .filter_map(|line| line.strip_prefix(b"data:"))
            .map(|data| data.strip_prefix(b" ").unwrap_or(data))
            .find_map(completion_id);
        let (Some(id), Some(p)) = (id, self.pending.take()) else {
            return;
        };
        let record = p.keep.record(id, &p.deployment, &p.client_model, p.kept);
        p.store.put(p.keep.tenant.clone(), record);
    }
}

// === the stored-completion endpoints ===

/// Which stored-completion endpoint was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `GET /v1/chat/completions`.
    List,
    /// `GET /v1/chat/completions/{id}`.
    Retrieve,
    /// `POST /v1/chat/completions/{id}` (its metadata).
    Update,
    /// `DELETE /v1/chat/completions/{id}`.
    Delete,
    /// `GET /v1/chat/completions/{id}/messages`.
    Messages,
}

/// The route rule the request log and `/metrics` show for these endpoints.
const RULE: &str = "stored_chat_completion";
/// Completions fetched from upstreams at once for one list page.
const FETCH_CONCURRENCY: usize = 8;
/// Most store pages read for one list page (each round replaces completions found gone
/// upstream); the page may come back short after that, with `has_more` still true.
const MAX_LIST_ROUNDS: usize = 5;

/// Serves a stored-completion endpoint (`id` is `None` for the list); always answers, and logs
/// once.
pub async fn resource(
    gw: Arc<Gateway>,
    which: Resource,
    id: Option<String>,
    req: Request<Body>,
) -> Response {
    let mut ctx = super::start_ctx(&gw, Operation::ChatCompletionsResource, &req);
    let mut resp = match serve(&gw, &mut ctx, which, id.as_deref(), req).await {
        Ok(resp) => {
            ctx.log(resp.status().as_u16(), Outcome::Completed, None);
            resp
        }
        Err(err) => {
            let resp = err.to_response();
            ctx.log(resp.status().as_u16(), Outcome::Failed, Some(&err));
            resp
        }
    };
    if let Some(info) = &ctx.rate_info {
        info.stamp(resp.headers_mut());
    }
    resp.extensions_mut().insert(Logged);
    resp
}

async fn serve(
    gw: &Arc<Gateway>,
    ctx: &mut RequestCtx,
    which: Resource,
    id: Option<&str>,
    req: Request<Body>,
) -> Result<Response, GatewayError> {
    let (parts, body) = req.into_parts();
    super::authenticate(gw, ctx, &parts.headers)?;
    ctx.route_rule = Some(RULE);
    // Limits before anything is looked up (probing ids costs requests like any other call).
    // No body member is attribution here (an update's `metadata` is the completion's), and no
    // alias is named up front: the key's allowed aliases are checked once the completion's
    // model is known ([`allowed`]).
    super::admit_side(gw, ctx, &parts.headers, None, b"").await?;
    // An update's body is read before the lookup can refuse it: an answer sent with the body
    // unread makes the server close the connection, and a client that reuses it meanwhile
    // sees the server disconnect instead of the 404.
    let update_body = match which {
        Resource::Update => Some(super::read_body(body, &parts.headers, gw.max_body_size).await?),
        _ => None,
    };
    let tenant = tenant_of(gw, ctx);
    let query = parts.uri.query().unwrap_or("");
    let Some(id) = id.filter(|_| which != Resource::List) else {
        return list(gw, ctx, &tenant, query).await;
    };
    let record = match valid_id(id) {
        true => gw
            .stored_chat
            .get(&tenant, id)
            .await
            .map_err(store_failed)?,
        false => None,
    };
    let record = record.ok_or_else(|| not_found(id))?;
    ctx.client_model = Some(record.client_model.to_string());
    ctx.provider = Some(Arc::clone(&record.provider));
    ctx.upstream_model = Some(Arc::clone(&record.model));
    allowed(ctx, &record.client_model)?;
    let provider = keeper(gw, &record)?;
    let (method, tail, body) = match which {
        Resource::Retrieve => (Method::GET, id.to_owned(), None),
        Resource::Delete => (Method::DELETE, id.to_owned(), None),
        Resource::Messages if query.is_empty() => (Method::GET, format!("{id}/messages"), None),
        Resource::Messages => (Method::GET, format!("{id}/messages?{query}"), None),
        Resource::List => return Err(GatewayError::Internal("the list has no id".into())),
        Resource::Update => {
            let body = update_body.unwrap_or_default();
            let metadata = update_metadata(&body)?;
            let answer = forward(gw, &provider, Method::POST, id, Some(body)).await;
            let Some((head, raw)) = gone_is_not_found(gw, &tenant, id, answer).await? else {
                return Err(not_found(id));
            };
            let body = named(&raw, &record.client_model, provider.name())?;
            // The upstream's answer says what the metadata now is; the request, if it does not.
            let now = match top_level_value(&body, "metadata").and_then(|s| body.get(s)) {
                Some(v) => {
                    serde_json::from_slice::<Option<Map<String, Value>>>(v).unwrap_or(metadata)
                }
                None => metadata,
            };
            gw.stored_chat
                .set_metadata(&tenant, id, now)
                .await
                .map_err(store_failed)?;
            return Ok(answer_with(ctx, &head, body));
        }
    };
    let answer = forward(gw, &provider, method, &tail, body).await;
    let Some((head, raw)) = gone_is_not_found(gw, &tenant, id, answer).await? else {
        return Err(not_found(id));
    };
    let body = match which {
        // A completion object names the model; a receipt and a message list do not.
        Resource::Retrieve => named(&raw, &record.client_model, provider.name())?,
        _ => {
            providers::check_json(provider.name(), &raw, "response")?;
            raw
        }
    };
    if which == Resource::Delete {
        gw.stored_chat
            .delete(&tenant, id)
            .await
            .map_err(store_failed)?;
    }
    Ok(answer_with(ctx, &head, body))
}

/// Whether the calling key may use `alias` (a key restricted to aliases reaches only the
/// completions made for them).
fn allowed(ctx: &RequestCtx, alias: &str) -> Result<(), GatewayError> {
    match &ctx.virtual_key {
        Some(rec) if !rec.allows(alias) => Err(GatewayError::AliasNotAllowed {
            alias: alias.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Ids the gateway forwards: what OpenAI's look like (`chatcmpl-...`), never a path.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

fn store_failed(e: StoreError) -> GatewayError {
    GatewayError::Internal(e.to_string())
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::ResourceNotFound {
        param: None,
        message: format!("Chat completion with id '{id}' not found."),
        code: None,
    }
}

/// The adapter of the OpenAI-type deployment that keeps `record`; the error naming the
/// deployment when there is none.
fn keeper(gw: &Gateway, record: &ChatRecord) -> Result<Arc<dyn Provider>, GatewayError> {
    let deployment = format!("{}/{}", record.provider, record.model);
    let provider = gw.providers.get(&record.provider).cloned();
    match provider {
        Some(p) if record.kept_upstream && p.keeps_chat_completions() => Ok(p),
        Some(_) => Err(GatewayError::Unsupported {
            param: String::new(),
            message: format!(
                "Chat completion '{}' was made by the deployment `{deployment}` through \
                 translation, and that provider does not keep chat completions: it cannot be \
                 read, updated, listed or deleted. Only completions created with `store: true` \
                 on OpenAI-type deployments are kept.",
                record.id
            ),
            code: "unsupported_endpoint",
        }),
        None => Err(GatewayError::ResourceNotFound {
            param: None,
            message: format!(
                "Chat completion '{}' was made by the deployment `{deployment}`, whose provider \
                 is no longer configured.",
                record.id
            ),
            code: None,
        }),
    }
}

/// The `metadata` an update sets: the body must be an object whose `metadata` is an object of
/// strings or null.
fn update_metadata(body: &[u8]) -> Result<Option<Map<String, Value>>, GatewayError> {
    let parsed: Value =
        serde_json::from_slice(body).map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
    let Some(obj) = parsed.as_object() else {
        return Err(GatewayError::InvalidJson(
            "the request body must be a JSON object".into(),
        ));
    };
    let bad = |message: &str| GatewayError::InvalidField {
        param: "metadata".into(),
        message: message.into(),
    };
    match obj.get("metadata") {
        None => Err(bad(
            "`metadata` is required: it is the only field of a stored chat completion that can \
             be updated",
        )),
        Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => Ok(Some(m.clone())),
        Some(_) => Err(bad(
            "`metadata` must be an object whose values are strings, or null",
        )),
    }
}

/// An upstream's successful answer: its head and body.
type Answer = (http::response::Parts, Bytes);

/// Turns an upstream 404 (the completion is gone there: deleted or expired) into `None`,
/// deleting the record too.
async fn gone_is_not_found(
    gw: &Gateway,
    tenant: &Tenant,
    id: &str,
    answer: Result<Option<Answer>, GatewayError>,
) -> Result<Option<Answer>, GatewayError> {
    let answer = answer?;
    if answer.is_none() {
        gw.stored_chat
            .delete(tenant, id)
            .await
            .map_err(store_failed)?;
    }
    Ok(answer)
}

/// One request to the upstream that keeps the completion; `None` when it answers 404.
async fn forward(
    gw: &Gateway,
    provider: &Arc<dyn Provider>,
    method: Method,
    tail: &str,
    body: Option<Bytes>,
) -> Result<Option<Answer>, GatewayError> {
    let up = provider.chat_completions_resource(&method, tail)?;
    let mut request = Request::builder()
        .method(up.method)
        .uri(up.uri)
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    *request.headers_mut() = up.headers;
    let t = gw.timeouts;
    let name = Arc::clone(provider.name());
    let sent_at = Instant::now();
    let deadline = sent_at + t.total;
    let sent = gw.client.request_within(request, Some(t.connect));
    let response = super::await_head(sent, &name, &t, sent_at).await?;
    let (parts, incoming) = response.into_parts();
    let ok = parts.status.is_success();
    let limit = if ok {
        super::MAX_RESPONSE_BODY
    } else {
        super::MAX_ERROR_BODY
    };
    let raw = super::read_upstream(incoming, limit, deadline, &name, t.total, !ok).await?;
    if parts.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !ok {
        return Err(provider.classify_error(parts.status, &parts.headers, &raw));
    }
    Ok(Some((parts, raw)))
}

/// A completion object with the model the client asked for.
fn named(raw: &[u8], client_model: &str, provider: &Arc<str>) -> Result<Bytes, GatewayError> {
    providers::check_json(provider, raw, "response")?;
    Ok(Bytes::from(
        replace_top_level_string(raw, "model", client_model).unwrap_or_else(|| raw.to_vec()),
    ))
}

fn answer_with(ctx: &RequestCtx, head: &http::response::Parts, body: Bytes) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = head.status;
    resp.headers_mut()
        .extend(super::serving_headers(ctx, &head.headers));
    let content_type = head
        .headers
        .get(CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(CONTENT_TYPE, content_type);
    resp
}

// === the list ===

/// The list's query: `model`, `metadata[k]=v` pairs, `after`, `limit`, `order` (oldest first
/// by default, as OpenAI's).
fn list_query(query: &str) -> Result<ListQuery, GatewayError> {
    let (after, limit, descending) = page_params(query, false)?;
    let mut q = ListQuery {
        after,
        limit,
        descending,
        ..ListQuery::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        if k == "model" {
            q.model = Some(v);
        } else if let Some(key) = k
            .strip_prefix("metadata[")
            .and_then(|r| r.strip_suffix(']'))
        {
            q.metadata.push((key.to_owned(), v));
        }
    }
    Ok(q)
}

async fn list(
    gw: &Arc<Gateway>,
    ctx: &mut RequestCtx,
    tenant: &Tenant,
    query: &str,
) -> Result<Response, GatewayError> {
    let mut q = list_query(query)?;
    ctx.client_model.clone_from(&q.model);
    // A key restricted to aliases lists only the completions made for them.
    if let Some(model) = &q.model {
        allowed(ctx, model)?;
    }
    q.aliases = ctx
        .virtual_key
        .as_ref()
        .and_then(|r| r.allowed_aliases.clone());

    let limit = q.limit;
    let mut data: Vec<(String, Bytes)> = Vec::with_capacity(limit.min(32));
    let mut providers_seen: Vec<Arc<str>> = Vec::new();
    let mut has_more = false;
    for _ in 0..MAX_LIST_ROUNDS {
        let page = gw
            .stored_chat
            .list(
                tenant,
                &ListQuery {
                    limit: limit - data.len(),
                    ..q.clone()
                },
            )
            .await
            .map_err(|e| match e {
                StoreError::UnknownCursor(after) => GatewayError::InvalidField {
                    param: "after".into(),
                    message: format!(
                        "Invalid 'after': there is no stored chat completion '{after}' to list \
                         after."
                    ),
                },
                e => store_failed(e),
            })?;
        has_more = page.has_more;
        q.after = page.records.last().map(|r| r.id.clone());
        for r in &page.records {
            if !providers_seen.contains(&r.provider) {
                providers_seen.push(Arc::clone(&r.provider));
            }
        }
        for (record, fetched) in page.records.iter().zip(fetch_all(gw, &page.records).await?) {
            match fetched {
                Fetched::Found(body) => data.push((record.id.clone(), body)),
                // Gone upstream: forget it, and fill its place from the next rows.
                Fetched::Gone => gw
                    .stored_chat
                    .delete(tenant, &record.id)
                    .await
                    .map_err(store_failed)?,
                // Its provider is no longer configured: skipped, kept for when it is again.
                Fetched::Unreachable => {}
            }
        }
        if data.len() >= limit || !has_more || q.after.is_none() {
            break;
        }
    }
    if let [only] = providers_seen.as_slice() {
        ctx.provider = Some(Arc::clone(only));
    }
    let mut out = Vec::with_capacity(64 + data.iter().map(|(_, b)| b.len() + 1).sum::<usize>());
    out.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
    for (i, (_, body)) in data.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(body);
    }
    let id_json = |id: Option<&String>| {
        id.and_then(|s| serde_json::to_string(s).ok())
            .unwrap_or_else(|| "null".into())
    };
    out.extend_from_slice(
        format!(
            "],\"first_id\":{},\"last_id\":{},\"has_more\":{has_more}}}",
            id_json(data.first().map(|(id, _)| id)),
            id_json(data.last().map(|(id, _)| id)),
        )
        .as_bytes(),
    );
    Ok(json_response(StatusCode::OK, out))
}

/// What fetching one listed completion found.
#[derive(Debug, Clone)]
enum Fetched {
    /// The completion object, with the client's model name.
    Found(Bytes),
    /// The upstream no longer has it.
    Gone,
    /// The deployment that keeps it is no longer configured.
    Unreachable,
}

/// Each record's completion from the upstream that keeps it, in order, a few at a time.
async fn fetch_all(
    gw: &Arc<Gateway>,
    records: &[ChatRecord],
) -> Result<Vec<Fetched>, GatewayError> {
    let mut out = vec![Fetched::Unreachable; records.len()];
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = records.iter().enumerate();
    loop {
        while tasks.len() < FETCH_CONCURRENCY {
            let Some((i, record)) = next.next() else {
                break;
            };
            let Ok(provider) = keeper(gw, record) else {
                continue;
            };
            let gw = Arc::clone(gw);
            let (id, client_model) = (record.id.clone(), Arc::clone(&record.client_model));
            tasks.spawn(async move {
                let got = match forward(&gw, &provider, Method::GET, &id, None).await {
                    Ok(Some((_, raw))) => {
                        named(&raw, &client_model, provider.name()).map(Fetched::Found)
                    }
                    Ok(None) => Ok(Fetched::Gone),
                    Err(e) => Err(e),
                };
                (i, got)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (i, got) = joined.map_err(|e| GatewayError::Internal(e.to_string()))?;
        if let Some(slot) = out.get_mut(i) {
            *slot = got?;
        }
    }
    Ok(out)
}
