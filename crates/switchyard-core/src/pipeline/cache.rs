//! The cache stage: after admission (a cached answer still counts against rate limits) and
//! before budgets and routing (it costs nothing and goes nowhere), a request the cache applies
//! to is looked up; when the request completes with a fresh upstream answer, that answer is
//! kept. See [`crate::cache`] for what is cached and for whom.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::header::{AGE, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use switchyard_types::openai::Usage;

use super::ctx::RequestCtx;
use super::Parsed;
use crate::cache::{Cache, Control, Entry, Key, Note, Outcome};
use crate::error::GatewayError;

static HEADER: HeaderName = HeaderName::from_static(crate::cache::HEADER);

/// Looks the request up. Returns the cached answer on a hit; otherwise notes on the context
/// what the cache did and where a new answer is to be kept.
pub(super) async fn look_up(
    gw: &super::Gateway,
    cache: &Cache,
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
        // A stream is relayed as it is made, and a stored completion's point is the side
        // effect upstream.
        _ if parsed.stream || parsed.store => Outcome::Uncacheable,
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
            });
            return Ok(Some(hit(ctx, entry)));
        }
    }
    ctx.cache = Some(Note {
        outcome,
        key,
        fill: None,
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
    h.insert(CONTENT_TYPE, content_type);
    h.insert(AGE, HeaderValue::from(age));
    // Where the answer was first made, so a client can tell what it is reading.
    for (name, value) in [
        (&super::names::PROVIDER, &entry.provider),
        (&super::names::MODEL, &entry.model),
        (&super::names::DEPLOYMENT, &entry.deployment),
    ] {
        if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(name.clone(), v);
        }
    }
    resp
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
    let entry = Entry {
        content_type: content_type
            .to_str()
            .unwrap_or("application/json")
            .to_owned(),
        provider: ctx.provider.as_deref().map(str::to_owned),
        model: ctx.upstream_model.as_deref().map(str::to_owned),
        deployment: ctx.deployment_name(),
        stored_ms: crate::cache::now_ms(),
        body: body.clone(),
    };
    if let Some(note) = ctx.cache.as_mut() {
        note.fill = Some(entry);
    }
}

/// Keeps the answer the request completed with, when it is the upstream's own: a request a
/// budget sent to a cheaper alias is not what its body asked for, so it is not kept.
pub(super) fn keep(cache: Option<&Arc<Cache>>, ctx: &mut RequestCtx) {
    let Some(cache) = cache else {
        return;
    };
    let Some(note) = ctx.cache.as_mut() else {
        return;
    };
    let (Some(key), Some(entry)) = (note.key, note.fill.take()) else {
        return;
    };
    if ctx.budget_downgrade.is_none() {
        cache.put(key, entry);
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
