//! The cache stage: after admission (a cached answer still counts against rate limits) and
//! before budgets and routing (it costs nothing and goes nowhere), a request the cache applies
//! to is looked up; the answer an attempt makes is offered (a complete body) or collected as it
//! streams, and kept when the request is logged as completed (`cache::Note::settle`). See
//! [`crate::cache`] for what is cached and for whom.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::header::{AGE, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use parking_lot::Mutex;
use switchyard_types::openai::Usage;

use super::ctx::RequestCtx;
use super::Parsed;
use crate::cache::{Cache, Collected, Control, Entry, Key, Note, Outcome};
use crate::error::GatewayError;

static HEADER: HeaderName = HeaderName::from_static(crate::cache::HEADER);

/// Looks the request up. Returns the cached answer on a hit; otherwise notes on the context
/// what the cache did and where a new answer is to be kept.
pub(super) async fn look_up(
    gw: &super::Gateway,
    cache: &Arc<Cache>,
    ctx: &mut RequestCtx,
    parsed: &Parsed,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Response>, GatewayError> {
    if !cache.applies(ctx.op, &parsed.model) {
        return Ok(None);
    }
    let outcome = match Control::from_headers(headers)? {
        Control::Off => Outcome::Bypass,
        // A stored completion's point is the side effect upstream.
        _ if parsed.store => Outcome::Uncacheable,
        Control::Refresh => Outcome::Refresh,
        Control::Normal => Outcome::Miss,
    };
    let key = matches!(outcome, Outcome::Miss | Outcome::Refresh).then(|| {
        let tenant = super::stored_chat::tenant_of(gw, ctx);
        Key::of(tenant.as_str(), ctx.op, headers, body)
    });
    if let (Outcome::Miss, Some(k)) = (outcome, &key) {
        if let Some(entry) = cache.get(k).await {
            ctx.cache = Some(Note {
                outcome: Outcome::Hit,
                key: None,
                fill: None,
                collector: None,
            });
            return Ok(Some(hit(ctx, entry)));
        }
    }
    ctx.cache = Some(Note {
        outcome,
        key: key.map(|k| (k, Arc::clone(cache))),
        fill: None,
        collector: None,
    });
    Ok(None)
}

/// The response for a cached answer. It cost nothing: the record shows no tokens and a known
/// cost of zero, so spend reports and budgets never count it, and the rate limiter's token
/// charge is settled at zero.
fn hit(ctx: &mut RequestCtx, entry: Entry) -> Response {
    ctx.usage = Some(Usage::default());
    ctx.price = Some(crate::pricing::Price::flat(0.0, 0.0));
    ctx.ttft_ms = Some(ctx.elapsed_ms());
    if ctx.bodies.wants_response() {
        ctx.bodies.response = Some(entry.body.clone());
    }
    let age = entry.age_secs(crate::cache::now_ms());
    let mut resp = Response::new(Body::from(entry.body));
    let h = resp.headers_mut();
    let content_type = HeaderValue::from_str(&entry.content_type)
        .unwrap_or(HeaderValue::from_static("application/json"));
    if entry.content_type.starts_with("text/event-stream") {
        // A stream replayed whole, with the headers a live one has.
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    h.insert(CONTENT_TYPE, content_type);
    h.insert(AGE, HeaderValue::from(age));
    // Where the answer was first made, so a client can tell what it is reading.
    let deployment = entry.provider.as_ref().zip(entry.model.as_ref());
    let deployment = deployment.map(|(p, m)| format!("{p}/{m}"));
    for (name, value) in [
        (&super::names::PROVIDER, &entry.provider),
        (&super::names::MODEL, &entry.model),
        (&super::names::DEPLOYMENT, &deployment),
    ] {
        if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(name.clone(), v);
        }
    }
    resp
}

/// What made an answer, as a cached entry remembers it (its body still to come).
fn origin(ctx: &RequestCtx, content_type: &str) -> Entry {
    Entry {
        content_type: content_type.to_owned(),
        provider: ctx.provider.as_deref().map(str::to_owned),
        model: ctx.upstream_model.as_deref().map(str::to_owned),
        stored_ms: crate::cache::now_ms(),
        body: bytes::Bytes::new(),
    }
}

/// Notes a complete upstream answer on the context as the one to keep, when the request may
/// keep one (called where the answer is read).
pub(super) fn offer(
    ctx: &mut RequestCtx,
    status: StatusCode,
    content_type: &HeaderValue,
    body: &bytes::Bytes,
) {
    let keeps = ctx.cache.as_ref().is_some_and(|n| n.key.is_some());
    if status != StatusCode::OK || !keeps {
        return;
    }
    let mut entry = origin(ctx, content_type.to_str().unwrap_or("application/json"));
    entry.body = body.clone();
    if let Some(note) = ctx.cache.as_mut() {
        note.fill = Some(entry);
    }
}

/// Shows a stream's output to the cache as the client gets it, when the request may keep its
/// answer. A stream that may resume on another deployment is not kept: its bytes would be two
/// answers spliced.
pub(super) fn collect(
    ctx: &mut RequestCtx,
    reply: Box<dyn crate::providers::Reply>,
) -> Box<dyn crate::providers::Reply> {
    let limit = match ctx.cache.as_ref().and_then(|n| n.key.as_ref()) {
        Some((_, cache)) if ctx.resume.is_none() => cache.max_entry_size(),
        _ => return reply,
    };
    let entry = origin(ctx, "text/event-stream; charset=utf-8");
    let collected = Arc::new(Mutex::new(Collected::new(entry, limit)));
    if let Some(note) = ctx.cache.as_mut() {
        note.collector = Some(Arc::clone(&collected));
    }
    super::tap::Tap::boxed(reply, Collect(collected))
}

struct Collect(Arc<Mutex<Collected>>);

impl super::tap::Watcher for Collect {
    fn watching(&self) -> bool {
        self.0.lock().wants()
    }

    fn saw(&mut self, written: &[u8]) {
        self.0.lock().push(written);
    }
}

/// `x-switchyard-cache` on the response: what the cache did for the request.
pub(super) fn stamp(resp: &mut Response, ctx: &RequestCtx) {
    if let Some(note) = &ctx.cache {
        resp.headers_mut().insert(
            HEADER.clone(),
            HeaderValue::from_static(note.outcome.as_str()),
        );
    }
}
