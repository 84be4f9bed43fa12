//! The request pipeline, as named stages run in order by [`handle`]:
//!
//! `authenticate` → `read_body` → `parse` → attribution → `guard` (input) → admission →
//! `cache` (lookup) → budgets → `route` → `dispatch` → `guard` (output) → `cache` (keep) →
//! `respond` → `log`.
//!
//! Every path ends in exactly one log line: immediately for complete responses and errors, at
//! the end of the body for streams.

mod cache;
pub mod ctx;
mod degrade;
mod guard;
pub(crate) mod probe;
pub mod responses;
pub mod responses_sub;
pub(crate) mod route;
pub mod stored_chat;
pub mod stream;
mod tap;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full, Limited};
use switchyard_types::anthropic::MessagesRequest;
use switchyard_types::completions::CompletionRequest;
use switchyard_types::openai::{ChatCompletionRequest, EmbeddingsRequest, FieldError};
use switchyard_types::responses::ResponsesRequest;
use tokio::time::Instant;

use self::ctx::{Outcome, RequestCtx};
use self::stream::SseRelay;
use crate::auth::{Authenticator, Principal};
use crate::capabilities::{self, Needs};
use crate::config::{Deployment, Timeouts};
use crate::error::{FailureKind, GatewayError, TimeoutPhase, UpstreamErrorKind};
use crate::http_client::{ClientError, HttpClient, UpstreamBody};
use crate::providers::{Exchange, Operation, Provider};
use crate::resilience::{self, Health};
use crate::routing::Router;
use crate::server::RequestId;
use crate::telemetry::otlp::RequestTrace;

/// Largest upstream error body read (the rest is discarded): errors are small, and a broken
/// upstream must not make the gateway buffer megabytes of HTML.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Largest non-streaming upstream body accepted (large embedding batches reach tens of MB).
const MAX_RESPONSE_BODY: usize = 256 * 1024 * 1024;

/// Everything the pipeline needs, built once at start-up. Routing, auth and adapters are shared
/// by every worker; the HTTP client (and so its connection pool) belongs to one worker, so an
/// upstream connection is always driven by the thread that uses it.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) router: Arc<Router>,
    pub(crate) providers: Arc<HashMap<Arc<str>, Arc<dyn Provider>>>,
    pub(crate) client: HttpClient,
    pub(crate) timeouts: Timeouts,
    pub(crate) max_body_size: usize,
    pub(crate) health: Arc<Health>,
    pub(crate) metrics: Arc<crate::telemetry::metrics::RequestMetrics>,
    pub(crate) tracer: Option<Arc<crate::telemetry::otlp::Tracer>>,
    /// The reloadable parts (router, auth, adapters) as the last reload left them.
    pub(crate) live: Arc<crate::server::reload::Live>,
    /// The generation of `live` this gateway's router, auth and adapters come from.
    pub(crate) generation: u64,
    /// The request log, when on: every request's record goes there from its context.
    pub(crate) reqlog: Option<Arc<crate::reqlog::ReqLog>>,
    /// Pass-through routes and the providers model deletion may be forwarded to.
    pub(crate) passthrough: Arc<crate::passthrough::Table>,
    /// Stored Responses API responses, per tenant.
    pub(crate) responses: Arc<dyn crate::responses_state::ResponseStore>,
    /// Which deployment made each stored chat completion, per tenant.
    pub(crate) stored_chat: Arc<crate::stored_chat::ChatCompletionStore>,
    /// Virtual keys kept in the store, when `keys.enabled`.
    pub(crate) keys: Option<Arc<crate::keys::KeyCache>>,
    /// Rate limits and their state (shared across reloads and workers).
    pub(crate) limits: Arc<crate::limits::Limits>,
    /// Spend budgets: configured ones and virtual keys' own (present when either can exist).
    pub(crate) budgets: Option<Arc<crate::budgets::Budgets>>,
    /// The response cache, when `cache.enabled`.
    pub(crate) cache: Option<Arc<crate::cache::Cache>>,
    /// The guardrail rules, when any are configured.
    pub(crate) guardrails: Option<Arc<crate::guardrails::Guardrails>>,
}

impl Gateway {
    /// Who is calling: a store key (when they are on), else a configured key.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<(Principal, Option<Arc<crate::keys::KeyRecord>>), GatewayError> {
        crate::auth::authenticate_with_store(&self.auth, self.keys.as_deref(), headers)
    }

    /// A copy sharing all state except the upstream connection pool (and the rate limiter's
    /// Redis connection).
    pub(crate) fn for_worker(&self) -> Self {
        Self {
            client: crate::http_client::build(self.timeouts.connect),
            limits: Arc::new(self.limits.for_worker()),
            cache: self.cache.as_ref().map(|c| Arc::new(c.for_worker())),
            ..self.clone()
        }
    }
}

/// Marks a response whose request was already logged by the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Logged;

/// The context of a request entering the gateway, wired to where it will be recorded: the
/// request log, `/metrics` and (when exported) its trace. Every entry point starts here, so
/// no request escapes any of them.
pub(crate) fn start_ctx(gw: &Gateway, op: Operation, req: &Request<Body>) -> RequestCtx {
    let (id, unique) = req.extensions().get::<RequestId>().map_or_else(
        || (Arc::from("-"), false),
        |r| (Arc::clone(&r.id), r.claim_record_id()),
    );
    let mut ctx = RequestCtx::new(id, op);
    // The request's own context may take a generated request id as its record's id; others
    // (a classifier judge's call, hedged attempts) share the request id and get ids of their own.
    ctx.request_id_unique = unique;
    ctx.metrics = Some(Arc::clone(&gw.metrics));
    if let Some(tracer) = &gw.tracer {
        ctx.trace = Some(RequestTrace::start(
            tracer,
            req.headers().get("traceparent"),
        ));
    }
    ctx.reqlog = gw.reqlog.clone();
    ctx
}

/// Attribution and rate limits for the calls that do not go through [`run`] (stored resources,
/// the Responses sub-resources, pass-through): they count against their key's, team's, user's
/// and tags' limits like any other request, and are attributed the same way. `model` is held
/// against the key's allowed aliases when the call names one; `body` is what attribution and
/// the token charge may read (empty when it is not a JSON request).
pub(crate) async fn admit_side(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    headers: &HeaderMap,
    model: Option<&str>,
    body: &[u8],
) -> Result<(), GatewayError> {
    let team = ctx.key_name.as_deref().and_then(|k| gw.auth.team_of(k));
    ctx.attribution = crate::attribution::Attribution::resolve(team, ctx.op, headers, body)?;
    let mut prompt = crate::tokenize::Prompt::new(ctx.op, body);
    crate::limits::admit_request(gw, ctx, model, &mut prompt, headers).await?;
    // A key, team, user or tag whose budget is used up is refused here too. A side call has no
    // price of its own to reserve (it holds what its model's estimate says, usually nothing)
    // and is never downgraded.
    if let Some(budgets) = &gw.budgets {
        let mut unchanged = model.unwrap_or_default().to_owned();
        let features = crate::routing::estimate::Features::default();
        crate::budgets::admit_request(budgets, gw, ctx, &mut unchanged, &features).await?;
        ctx.budget_downgrade = None;
    }
    Ok(())
}

/// Runs the pipeline for one API request and always returns a response.
///
/// The request's future is boxed here, once: it holds the state of every stage (kilobytes),
/// and the layers above it (router, middleware, tower adapters) each move the future they are
/// handed by value. Together with the boxed attempt (`dispatch`) and upstream send below,
/// moving pointers instead of that state removed a tenth of the instructions per request.
pub async fn handle(gw: Arc<Gateway>, op: Operation, req: Request<Body>) -> Response {
    Box::pin(handle_request(gw, op, req)).await
}

async fn handle_request(gw: Arc<Gateway>, op: Operation, req: Request<Body>) -> Response {
    let mut ctx = start_ctx(&gw, op, &req);
    let mut resp = match run(&gw, &mut ctx, req).await {
        Ok(Reply::Complete(mut resp)) => {
            stamp_cost(&mut resp, &ctx);
            ctx.log(resp.status().as_u16(), Outcome::Completed, None);
            resp
        }
        Ok(Reply::Streaming(resp)) => resp,
        Err(err) => {
            let attempts = ctx.failed_attempts();
            let mut resp = err.to_response_listing(ctx.op.client_api(), &attempts);
            stamp_attempts(&mut resp, ctx.attempts(false), ctx.abandoned_summary());
            ctx.log(resp.status().as_u16(), Outcome::Failed, Some(&err));
            resp
        }
    };
    if let Some(info) = &ctx.rate_info {
        info.stamp(resp.headers_mut());
    }
    cache::stamp(&mut resp, &ctx);
    if let Some(v) = ctx
        .budget_downgrade
        .as_deref()
        .and_then(|a| HeaderValue::from_str(a).ok())
    {
        resp.headers_mut()
            .insert(names::BUDGET_DOWNGRADE.clone(), v);
    }
    resp.extensions_mut().insert(Logged);
    resp
}

/// `x-switchyard-cost-usd`: what a complete answer cost, when its price and usage are known.
/// (A stream's cost is known only after its headers went out: the request log and `/metrics`
/// carry it.)
fn stamp_cost(resp: &mut Response, ctx: &RequestCtx) {
    if let Some(v) = ctx.cost_usd().and_then(|usd| {
        HeaderValue::from_str(&crate::budgets::nanos_text(crate::budgets::usd_to_nanos(
            usd,
        )))
        .ok()
    }) {
        resp.headers_mut().insert(names::COST_USD.clone(), v);
    }
}

enum Reply {
    /// Fully formed; log now.
    Complete(Response),
    /// A stream whose body logs when it ends.
    Streaming(Response),
}

async fn run(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    req: Request<Body>,
) -> Result<Reply, GatewayError> {
    let (parts, body) = req.into_parts();
    authenticate(gw, ctx, &parts.headers)?;
    let body = read_body(body, &parts.headers, gw.max_body_size).await?;
    if let Some(log) = &gw.reqlog {
        ctx.bodies = log.bodies_for(&body);
    }
    let mut parsed = parse(ctx.op, &body)?;
    if let Some(log) = &gw.reqlog {
        ctx.bodies.policy = log.policy_for(&parsed.model);
    }
    ctx.stream = parsed.stream;
    ctx.prompt_estimate = Some(parsed.features.prompt_tokens);
    ctx.client_model = Some(parsed.model.clone());
    let client_model: Arc<str> = Arc::from(parsed.model.as_str());
    let team = ctx.key_name.as_deref().and_then(|k| gw.auth.team_of(k));
    ctx.attribution = match parsed.attribution_members.take() {
        Some(members) => crate::attribution::Attribution::resolve_at(
            team,
            ctx.op,
            &parts.headers,
            &body,
            members,
        )?,
        None => crate::attribution::Attribution::resolve(team, ctx.op, &parts.headers, &body)?,
    };
    let body = match &gw.guardrails {
        Some(g) => guard::input(g, ctx, &parsed.model, body)?,
        None => body,
    };
    // Prompt tokens are counted by the model's tokenizer only for a consumer that needs them
    // (a TPM limit, a budget, a close context-window constraint); else the estimate stands.
    let mut prompt = crate::tokenize::Prompt::new(ctx.op, &body);
    crate::limits::admit_request(gw, ctx, Some(&parsed.model), &mut prompt, &parts.headers).await?;
    if let Some(c) = &gw.cache {
        if let Some(hit) = cache::look_up(gw, c, ctx, &parsed, &parts.headers, &body).await? {
            return Ok(Reply::Complete(hit));
        }
    }
    let key = ctx.key_name.as_deref();
    if (gw.budgets.as_ref()).is_some_and(|b| b.applies(key, &ctx.attribution)) {
        prompt.count(&gw.router, &parsed.model).await;
    }
    parsed.take_count(ctx, &prompt);
    if let Some(budgets) = &gw.budgets {
        crate::budgets::admit_request(budgets, gw, ctx, &mut parsed.model, &parsed.features)
            .await?;
    }
    if parsed.store && ctx.op == Operation::ChatCompletions {
        ctx.stored_chat = Some(Arc::new(stored_chat::Keep::new(gw, ctx, &body)));
    }
    let mut pinned = None;
    if ctx.op == Operation::Responses {
        let (turn, pin) = responses::prepare(gw, ctx, &body).await?;
        ctx.responses = Some(Arc::new(turn));
        pinned = pin;
    }
    let mut route = route::plan(gw, ctx, &mut parsed, &parts.headers, &body, &mut prompt).await?;
    if let Some(provider) = pinned {
        responses::pin(&mut route.candidates, &provider, &parsed.model)?;
    }
    let degrade = route.degrade.clone();
    let req = (&body, &parts.headers, &client_model);
    let mut served = route_and_serve(gw, ctx, &parsed, route, req).await;
    if let (Some(g), Ok(Reply::Complete(resp))) = (&gw.guardrails, served.as_mut()) {
        let answer = std::mem::take(resp);
        served = guard::output(g, ctx, &client_model, answer)
            .await
            .map(Reply::Complete);
    }
    match served {
        // The alias's configured answer for when nothing could serve it.
        // (Responses and completions clients are not given a chat-shaped degraded answer.)
        Err(err @ GatewayError::Upstream(_))
            if matches!(ctx.op, Operation::ChatCompletions | Operation::Messages) =>
        {
            match degrade {
                Some(message) => {
                    ctx.note_degraded(&err);
                    resilience::Events::add(&gw.health.events.degraded);
                    Ok(Reply::Complete(degrade::response(
                        ctx,
                        &client_model,
                        &message,
                        &err,
                    )))
                }
                None => Err(err),
            }
        }
        other => other,
    }
}

/// Serves the request from its route, then from the route's fallbacks, in order: the first
/// whose conditions match the failure.
async fn route_and_serve(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    parsed: &Parsed,
    mut route: crate::routing::Route,
    req: (&Bytes, &HeaderMap, &Arc<str>),
) -> Result<Reply, GatewayError> {
    let mut visited = vec![parsed.model.clone()];
    loop {
        let served = match capable(gw, ctx.op, parsed, req.0, route.candidates) {
            Ok(candidates) => {
                if route.stream_resume && ctx.stream && ctx.op == Operation::ChatCompletions {
                    ctx.resume = Some(Arc::new(stream::ResumePlan {
                        gw: gw.clone(),
                        candidates: candidates.clone(),
                        body: req.0.clone(),
                        headers: req.1.clone(),
                        client_model: Arc::clone(req.2),
                    }));
                }
                serve(gw, ctx, &candidates, route.hedge, req).await
            }
            Err(e) => Err(e),
        };
        let err = match served {
            Ok(reply) => return Ok(reply),
            Err(e) => e,
        };
        let Some(kind) = fallback_kind(&err) else {
            return Err(err);
        };
        let next = route
            .fallbacks
            .iter()
            .find(|f| f.matches(kind) && !visited.contains(&f.alias));
        let Some(next) = next.filter(|_| visited.len() <= MAX_FALLBACK_HOPS) else {
            return Err(err);
        };
        ctx.note_fallback(&next.alias, kind);
        resilience::Events::add(&gw.health.events.fallbacks);
        visited.push(next.alias.clone());
        route = route::fallback(gw, ctx, parsed, req.1, &next.alias)?;
        ctx.route_rule = Some("fallback");
        ctx.route_explain = None;
    }
}

/// One attempt at `d` with its own request context, so that two can race.
async fn attempt(
    gw: &Gateway,
    mut ctx: RequestCtx,
    d: &Deployment,
    req: (&Bytes, &HeaderMap, &Arc<str>),
) -> (RequestCtx, Result<Reply, GatewayError>) {
    let (body, headers, client_model) = req;
    let sent_at = Instant::now();
    let r = Box::pin(dispatch(
        gw,
        &mut ctx,
        d,
        body,
        headers,
        Arc::clone(client_model),
    ))
    .await;
    if r.is_ok() {
        gw.health
            .get(&d.provider.name, &d.model)
            .latency
            .record(sent_at.elapsed());
    }
    (ctx, r)
}

/// A hedged first attempt: `pair[0]` is tried; if it has not answered (response headers) after
/// `after`, `pair[1]` is tried too, and the first good answer wins. The other attempt is dropped
/// on the spot, which closes its upstream connection so the provider stops generating. Returns
/// the failures (candidate index, error) when neither served.
async fn hedged(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    pair: &[Deployment],
    hedge: resilience::HedgeDelay,
    req: (&Bytes, &HeaderMap, &Arc<str>),
) -> Result<Reply, Vec<(usize, GatewayError)>> {
    let health: Vec<_> = pair
        .iter()
        .map(|d| gw.health.get(&d.provider.name, &d.model))
        .collect();
    if !health[0].breaker.allow() {
        return Err(Vec::new());
    }
    health[0].budget.record_request();
    let after = hedge.delay(&health[0].latency);
    let mut first = Box::pin(attempt(gw, ctx.fork(), &pair[0], req));
    tokio::select! {
        (c, r) = &mut first => {
            return settle(ctx, &pair[0], &health[0], c, r).map_err(|e| vec![(0, e)]);
        }
        () = tokio::time::sleep(after) => {}
    }
    if !health[1].breaker.allow() {
        let (c, r) = first.await;
        return settle(ctx, &pair[0], &health[0], c, r).map_err(|e| vec![(0, e)]);
    }
    health[1].budget.record_request();
    health[1].counters.hedge();
    let mut second = Box::pin(attempt(gw, ctx.fork(), &pair[1], req));
    let mut failures = Vec::new();
    let mut pending = [true, true];
    while pending.iter().any(|p| *p) {
        let (i, c, r) = tokio::select! {
            (c, r) = &mut first, if pending[0] => (0, c, r),
            (c, r) = &mut second, if pending[1] => (1, c, r),
        };
        pending[i] = false;
        let other = 1 - i;
        if r.is_ok() && pending[other] {
            // The loser's future is dropped with this function: its connection closes, so the
            // provider stops generating.
            health[other].breaker.release();
            health[other].counters.hedge_lost();
            ctx.note_cancelled(&pair[other], "hedge_lost");
        }
        match settle(ctx, &pair[i], &health[i], c, r) {
            Ok(reply) => return Ok(reply),
            Err(e) => failures.push((i, e)),
        }
    }
    Err(failures)
}

/// Takes the outcome of a raced attempt into the request: its context on success, its failure
/// in the record and the breaker either way.
fn settle(
    ctx: &mut RequestCtx,
    d: &Deployment,
    health: &resilience::DeploymentHealth,
    attempt_ctx: RequestCtx,
    r: Result<Reply, GatewayError>,
) -> Result<Reply, GatewayError> {
    match r {
        Ok(mut reply) => {
            health.breaker.record(true);
            health.counters.success();
            let attempts = ctx.attempts(false) + 1;
            let abandoned = ctx.abandoned_summary();
            let resp = match &mut reply {
                Reply::Complete(r) | Reply::Streaming(r) => r,
            };
            stamp_attempts(resp, attempts, abandoned);
            ctx.adopt(attempt_ctx, matches!(reply, Reply::Streaming(_)));
            Ok(reply)
        }
        Err(e) => {
            health.breaker.record(!resilience::is_unhealthy(&e));
            health.counters.failure(&e);
            ctx.attempt_started = attempt_ctx.attempt_started;
            ctx.note_failure(d, &e);
            Err(e)
        }
    }
}

/// Most aliases a request may fall back through (config may chain them).
const MAX_FALLBACK_HOPS: usize = 4;

/// The failure kind fallback conditions match, for errors a fallback could help with: the
/// upstream's normalised kind, or a capability refusal of the context length (which a
/// longer-context alias can serve).
fn fallback_kind(err: &GatewayError) -> Option<FailureKind> {
    match err {
        GatewayError::Upstream(u) => Some(u.failure()),
        GatewayError::Unsupported {
            code: "context_length_exceeded",
            ..
        } => Some(FailureKind::ContextLengthExceeded),
        GatewayError::Unsupported { .. } => Some(FailureKind::InvalidRequest),
        _ => None,
    }
}

/// Serves the request from `candidates` (best first), failing over and retrying as the
/// resilience policy allows: a failed attempt moves to the next deployment; coming back to one
/// already tried waits a jittered backoff (at least its `Retry-After`) and spends that
/// deployment's retry budget. Attempts stop at the policy's maximum, when the budget is spent,
/// on an error no other attempt could fix, or when the wait would pass the request's deadline. Deployments whose breaker is
/// open are skipped; when every one is, the request fails fast with 503.
async fn serve(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    candidates: &[Deployment],
    hedge: Option<resilience::HedgeDelay>,
    req: (&Bytes, &HeaderMap, &Arc<str>),
) -> Result<Reply, GatewayError> {
    let (body, headers, client_model) = req;
    let policy = gw.health.config().retry;
    let deadline = ctx.started
        + candidates
            .iter()
            .map(|d| d.timeouts.total)
            .max()
            .unwrap_or(gw.timeouts.total);
    let n = candidates.len();
    let mut tries = vec![0u32; n];
    let mut waits: Vec<Option<std::time::Duration>> = vec![None; n];
    let mut skipped = vec![false; n];
    let mut next = 0;
    let mut last: Option<GatewayError> = None;
    let mut used = 0;
    if let (Some(hedge), true) = (hedge, n >= 2 && policy.max_attempts >= 2) {
        match hedged(gw, ctx, &candidates[..2], hedge, req).await {
            Ok(reply) => return Ok(reply),
            Err(failures) => {
                for (i, e) in failures {
                    tries[i] += 1;
                    used += 1;
                    next = i + 1;
                    if !resilience::is_retryable(&e) {
                        return Err(e);
                    }
                    waits[i] = resilience::retry_after(&e);
                    last = Some(e);
                }
            }
        }
    }
    for _ in used..policy.max_attempts.max(1) {
        let pick = (0..n).map(|k| (next + k) % n).find_map(|i| {
            if skipped[i] {
                return None;
            }
            let d = &candidates[i];
            let h = gw.health.get(&d.provider.name, &d.model);
            h.breaker.allow().then_some((i, h))
        });
        let Some((i, health)) = pick else {
            if last.is_none() {
                let d = &candidates[0];
                ctx.provider = Some(Arc::clone(&d.provider.name));
                resilience::Events::add(&gw.health.events.circuit_open);
                last = Some(GatewayError::upstream(
                    &d.provider.name,
                    UpstreamErrorKind::CircuitOpen,
                ));
            }
            break;
        };
        let d = &candidates[i];
        // The budget bounds re-sending to a deployment that already failed this request (the
        // retry storm); failing over to one not yet tried is a first request there.
        if tries[i] == 0 {
            health.budget.record_request();
        } else if health.budget.try_retry() {
            health.counters.retry();
        } else {
            health.counters.retry_denied();
            health.breaker.release();
            ctx.note_skip(d, "retry_budget_exhausted");
            break;
        }
        if tries[i] > 0 {
            let wait = policy.delay(tries[i], gw.router.random(), waits[i]);
            if Instant::now() + wait >= deadline {
                health.breaker.release();
                ctx.note_skip(d, "deadline");
                break;
            }
            tokio::time::sleep(wait).await;
        }
        tries[i] += 1;
        // Taken now: a stream moves the context into its body.
        let (attempts_before, abandoned) = (ctx.attempts(false), ctx.abandoned_summary());
        let sent_at = Instant::now();
        // Boxed: an attempt's state is most of the request's future, which every stage above
        // (and the server's layers) would otherwise embed and copy by value.
        match Box::pin(dispatch(
            gw,
            ctx,
            d,
            body,
            headers,
            Arc::clone(client_model),
        ))
        .await
        {
            Ok(mut reply) => {
                health.breaker.record(true);
                health.counters.success();
                health.latency.record(sent_at.elapsed());
                let resp = match &mut reply {
                    Reply::Complete(r) | Reply::Streaming(r) => r,
                };
                stamp_attempts(resp, attempts_before + 1, abandoned);
                return Ok(reply);
            }
            Err(e) => {
                health.breaker.record(!resilience::is_unhealthy(&e));
                health.counters.failure(&e);
                ctx.note_failure(d, &e);
                if !resilience::is_retryable(&e) {
                    return Err(e);
                }
                let wait = resilience::retry_after(&e);
                if wait.is_some_and(|w| w > policy.max_retry_after) {
                    // Asking for a long pause: another deployment may serve now.
                    skipped[i] = true;
                }
                waits[i] = wait;
                next = i + 1;
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| GatewayError::Internal("no attempt was made".into())))
}

/// Who is calling (configured or stored keys), recorded on the context for attribution, limits
/// and the request log. Every entry point that serves a client goes through here.
pub(crate) fn authenticate(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    headers: &HeaderMap,
) -> Result<(), GatewayError> {
    let (principal, record) = gw.authenticate(headers)?;
    ctx.virtual_key = record;
    match principal {
        Principal::Anonymous => ctx.principal = "anonymous",
        Principal::Master => ctx.principal = "master",
        Principal::VirtualKey(name) => {
            ctx.principal = "virtual_key";
            ctx.key_name = Some(name);
        }
    }
    Ok(())
}

async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::BodyTooLarge { limit })
        }
        Err(e) => Err(GatewayError::BodyRead(e.to_string())),
    }
}

/// What the pipeline needs from a parsed body.
pub(crate) struct Parsed {
    model: String,
    stream: bool,
    /// `store: true` on a chat completion: the gateway records who it was made for.
    store: bool,
    needs: Needs,
    /// What routing looks at: features and the prompt token estimate.
    features: crate::routing::estimate::Features,
    /// The spans of the body's top-level `metadata` and `user`, when parsing found them
    /// already (a chat completion): attribution then needs no scan of its own.
    attribution_members: Option<[Option<std::ops::Range<usize>>; 2]>,
}

impl Parsed {
    /// Uses the prompt's real count, once made, in place of the estimate (for budgets,
    /// routing and the usage estimate of a stream without usage).
    fn take_count(&mut self, ctx: &mut RequestCtx, prompt: &crate::tokenize::Prompt<'_>) {
        if let Some(n) = prompt.counted() {
            self.features.prompt_tokens = n;
            ctx.prompt_estimate = Some(n);
        }
    }
}

/// The candidates whose model can serve the request, in order; when none can, the first
/// candidate's reason, so the client learns what its request needs.
fn capable(
    gw: &Gateway,
    op: Operation,
    parsed: &Parsed,
    body: &[u8],
    candidates: Vec<Deployment>,
) -> Result<Vec<Deployment>, GatewayError> {
    let mut first_refusal = None;
    let mut out = Vec::with_capacity(candidates.len());
    for d in candidates {
        let caps = gw.router.capabilities(&d);
        let describe = || {
            format!(
                "The model `{}` (served by `{}` at provider `{}`)",
                parsed.model, d.model, d.provider.name
            )
        };
        let checked = capabilities::check_endpoint(&d, op, &parsed.model)
            .and_then(|()| capabilities::check(&caps, op, &parsed.needs, body, &describe));
        match checked {
            Ok(()) => out.push(d),
            Err(e) => {
                first_refusal.get_or_insert(e);
            }
        }
    }
    if out.is_empty() {
        return Err(first_refusal
            .unwrap_or_else(|| GatewayError::Internal("route produced no candidates".into())));
    }
    Ok(out)
}

fn parse(op: Operation, body: &[u8]) -> Result<Parsed, GatewayError> {
    use crate::routing::estimate;
    match op {
        Operation::ChatCompletions => {
            let req: ChatCompletionRequest<'_> = deserialize(body)?;
            req.validate().map_err(field_error)?;
            // One scan of the (now known good) body for every member read later: routing's
            // features and attribution each scanned it again, a third of a chat request's
            // parse cost.
            let [tools, response_format, metadata, user] =
                switchyard_types::json::top_level_values(
                    body,
                    ["tools", "response_format", "metadata", "user"],
                )
                .unwrap_or_default();
            let stream = req.is_stream();
            let max_output = match (req.max_completion_tokens, req.max_tokens) {
                (Some(n), _) => Some((u64::from(n), "max_completion_tokens")),
                (None, Some(n)) => Some((u64::from(n), "max_tokens")),
                (None, None) => None,
            };
            Ok(Parsed {
                needs: Needs {
                    stream,
                    tools: req.tools.as_ref().is_some_and(|t| !t.is_empty()),
                    max_output,
                },
                features: estimate::chat(&req, body, [tools, response_format]),
                model: req.model.into_owned(),
                stream,
                store: req.store == Some(true),
                attribution_members: Some([metadata, user]),
            })
        }
        Operation::Embeddings => {
            let req: EmbeddingsRequest<'_> = deserialize(body)?;
            req.validate().map_err(field_error)?;
            Ok(Parsed {
                features: estimate::embeddings(&req),
                model: req.model.into_owned(),
                stream: false,
                store: false,
                needs: Needs::default(),
                attribution_members: None,
            })
        }
        Operation::Completions => {
            let req: CompletionRequest<'_> = deserialize(body)?;
            req.validate().map_err(field_error)?;
            let stream = req.is_stream();
            Ok(Parsed {
                features: estimate::completions(&req),
                needs: Needs {
                    stream,
                    tools: false,
                    max_output: req.max_tokens.map(|n| (u64::from(n), "max_tokens")),
                },
                model: req.model.into_owned(),
                stream,
                store: false,
                attribution_members: None,
            })
        }
        Operation::Responses => {
            let req: ResponsesRequest<'_> = deserialize(body)?;
            req.validate().map_err(field_error)?;
            let stream = req.is_stream();
            Ok(Parsed {
                features: estimate::responses(&req, body),
                needs: Needs {
                    stream,
                    tools: req.has_tools(),
                    max_output: req.max_output_tokens.map(|n| (n, "max_output_tokens")),
                },
                model: req.model.into_owned(),
                stream,
                store: false,
                attribution_members: None,
            })
        }
        Operation::Passthrough => Err(GatewayError::Internal(
            "pass-through requests are not parsed".into(),
        )),
        Operation::ResponsesResource | Operation::ChatCompletionsResource => {
            Err(crate::providers::not_built(op))
        }
        Operation::Messages => {
            let req: MessagesRequest<'_> = deserialize(body)?;
            req.validate().map_err(field_error)?;
            let stream = req.stream.unwrap_or(false);
            Ok(Parsed {
                features: estimate::messages(&req),
                needs: Needs {
                    stream,
                    tools: req
                        .tools
                        .is_some_and(|t| t.get() != "[]" && t.get() != "null"),
                    max_output: Some((req.max_tokens, "max_tokens")),
                },
                model: req.model.into_owned(),
                stream,
                store: false,
                attribution_members: None,
            })
        }
    }
}

fn field_error(e: FieldError) -> GatewayError {
    GatewayError::InvalidField {
        param: e.param,
        message: e.message,
    }
}

fn deserialize<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, GatewayError> {
    let not_object = || GatewayError::InvalidField {
        param: String::new(),
        message: "The request body must be a JSON object.".into(),
    };
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => {
            return Err(GatewayError::InvalidJson(
                "The request body is empty; send a JSON object.".into(),
            ))
        }
        // serde builds a struct from a JSON array too (its members in field order), so an
        // array would pass as a request and be forwarded as it is.
        Some(b'[') => return Err(not_object()),
        Some(_) => {}
    }
    // Fast path without path tracking; only a failing body is parsed again to name the field.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if path != "." => GatewayError::InvalidField {
                param: path.clone(),
                message: format!("Invalid value for `{path}`: {inner}"),
            },
            // A string, number, boolean or null: saying which struct serde expected would
            // only name the gateway's internals.
            serde_json::error::Category::Data if first != Some(&b'{') => not_object(),
            serde_json::error::Category::Data => GatewayError::InvalidField {
                param: String::new(),
                message: format!("Invalid request body: {inner}"),
            },
            _ => GatewayError::InvalidJson(format!(
                "We could not parse the JSON body of your request: {inner}"
            )),
        }
    })?;
    de.end().map_err(|e| {
        GatewayError::InvalidJson(format!(
            "We could not parse the JSON body of your request: {e}"
        ))
    })?;
    Ok(value)
}

/// An upstream answer whose head arrived with a success status.
pub(crate) struct Opened {
    pub(crate) parts: http::response::Parts,
    pub(crate) body: UpstreamBody,
    pub(crate) reply: Box<dyn crate::providers::Reply>,
    pub(crate) provider: Arc<str>,
    pub(crate) deadline: Instant,
}

/// Sends the request to `deployment` and waits for its response head; a non-success answer is
/// read and classified into the error.
pub(crate) async fn open(
    gw: &Gateway,
    op: Operation,
    deployment: &Deployment,
    body: &[u8],
    client_headers: &HeaderMap,
    client_model: &Arc<str>,
    traceparent: Option<HeaderValue>,
) -> Result<Opened, GatewayError> {
    let provider = gw
        .providers
        .get(&deployment.provider.name)
        .cloned()
        .ok_or_else(|| {
            GatewayError::Internal(format!("no adapter for `{}`", deployment.provider.name))
        })?;
    let up = provider.build_request(&Exchange {
        op,
        body,
        headers: client_headers,
        model: &deployment.model,
        client_model,
    })?;
    let reply = up.reply;
    let mut request = Request::post(up.uri)
        .body(Full::new(up.body))
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    *request.headers_mut() = up.headers;
    if let Some(tp) = traceparent {
        request.headers_mut().insert("traceparent", tp);
    }

    let t = deployment.timeouts;
    let sent_at = Instant::now();
    let deadline = sent_at + t.total;
    let name = Arc::clone(provider.name());
    let sent = Box::pin(gw.client.request_within(request, Some(t.connect)));
    let response = await_head(sent, &name, &t, sent_at).await?;
    let (parts, incoming) = response.into_parts();
    gw.health
        .get(&deployment.provider.name, &deployment.model)
        .stats
        .observe_headers(&parts.headers, Instant::now());
    if !parts.status.is_success() {
        let body = read_upstream(incoming, MAX_ERROR_BODY, deadline, &name, t.total, true).await?;
        return Err(provider.classify_error(parts.status, &parts.headers, &body));
    }
    Ok(Opened {
        parts,
        body: incoming,
        reply,
        provider: name,
        deadline,
    })
}

/// Whether an upstream answer is a stream (server-sent events or AWS eventstream).
pub(crate) fn is_stream(parts: &http::response::Parts) -> bool {
    parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("text/event-stream")
                || v.starts_with("application/vnd.amazon.eventstream")
        })
}

async fn dispatch(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    deployment: &Deployment,
    body: &[u8],
    client_headers: &HeaderMap,
    client_model: Arc<str>,
) -> Result<Reply, GatewayError> {
    ctx.provider = Some(Arc::clone(&deployment.provider.name));
    ctx.upstream_model = Some(Arc::clone(&deployment.model));
    ctx.attempt_started = Some(Instant::now());
    ctx.provider_kind = Some(deployment.provider.kind.genai_name());
    ctx.price = gw
        .router
        .pricing()
        .price(deployment)
        .map(|(price, _)| price);
    let traceparent = ctx.trace.as_mut().map(|t| {
        t.begin_attempt(
            deployment.provider.kind.genai_name(),
            &deployment.provider.name,
            &deployment.model,
        )
    });
    let result = dispatch_opened(
        gw,
        ctx,
        deployment,
        body,
        client_headers,
        client_model,
        traceparent,
    )
    .await;
    if let Some(t) = ctx.trace.as_mut() {
        match &result {
            Err(e) => t.end_attempt(Some((e.kind().as_str(), e.to_string()))),
            Ok(Reply::Complete(_)) => t.end_attempt(None),
            // A stream's attempt ends with the request (the relay holds the context).
            Ok(Reply::Streaming(_)) => {}
        }
    }
    result
}

/// Opens the upstream exchange at `deployment` and turns its answer into the client's reply.
async fn dispatch_opened(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    deployment: &Deployment,
    body: &[u8],
    client_headers: &HeaderMap,
    client_model: Arc<str>,
    traceparent: Option<HeaderValue>,
) -> Result<Reply, GatewayError> {
    let turn = ctx.responses.clone();
    let keep = ctx.stored_chat.clone();
    let native = gw
        .providers
        .get(&deployment.provider.name)
        .is_some_and(|p| p.serves_responses());
    let body = responses::attempt_body(turn.as_deref(), body, native)?;
    let health = gw.health.get(&deployment.provider.name, &deployment.model);
    let sent_at = Instant::now();
    let inflight = crate::routing::stats::InFlight::begin(Arc::clone(&health));
    let opened = open(
        gw,
        ctx.op,
        deployment,
        &body,
        client_headers,
        &client_model,
        traceparent,
    )
    .await;
    let Opened {
        parts,
        body: incoming,
        mut reply,
        provider: name,
        deadline,
    } = match opened {
        Ok(o) => {
            health
                .stats
                .record_latency(sent_at.elapsed(), Instant::now());
            health.stats.record_outcome(true, Instant::now());
            // Held by the context, so it ends with the request (for streams, with the body).
            ctx.inflight = Some(inflight);
            o
        }
        Err(e) => {
            health
                .stats
                .record_outcome(!resilience::is_unhealthy(&e), Instant::now());
            return Err(e);
        }
    };
    let t = deployment.timeouts;
    let headers = serving_headers(ctx, &parts.headers);
    if is_stream(&parts) {
        if let Some(turn) = &turn {
            reply = responses::recording(gw, turn, deployment, &client_model, native, reply);
        }
        if let Some(keep) = &keep {
            reply = stored_chat::recording(gw, keep, deployment, &client_model, reply);
        }
        reply = cache::collect(ctx, reply);
        let plan = ctx.resume.clone();
        let relay_ctx = ctx.detach();
        let mut relay = SseRelay::new(
            incoming,
            name,
            reply,
            ctx.op.client_api(),
            &t,
            deadline,
            relay_ctx,
        );
        if let Some(plan) = plan {
            relay = relay.with_resume(plan, deployment.clone());
        }
        let mut resp = Response::new(Body::new(relay));
        *resp.status_mut() = parts.status;
        // The new response has no headers yet: take the map whole rather than re-inserting.
        *resp.headers_mut() = headers;
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        resp.headers_mut()
            .insert("cache-control", HeaderValue::from_static("no-cache"));
        resp.headers_mut()
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
        return Ok(Reply::Streaming(resp));
    }
    let raw = read_upstream(incoming, MAX_RESPONSE_BODY, deadline, &name, t.total, false).await?;
    ctx.ttft_ms = Some(ctx.elapsed_ms());
    let out = reply.body(&raw)?;
    ctx.usage = out.usage;
    if ctx.bodies.wants_response() {
        ctx.bodies.response = Some(out.body.clone());
    }
    if let Some(turn) = &turn {
        responses::record_body(gw, turn, deployment, &client_model, native, &out.body).await;
    }
    if let Some(keep) = &keep {
        stored_chat::record_body(gw, keep, deployment, &client_model, &out.body);
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/json"));
    cache::offer(ctx, parts.status, &content_type, &out.body);
    let mut resp = Response::new(Body::from(out.body));
    *resp.status_mut() = parts.status;
    // The new response has no headers yet: take the map whole rather than re-inserting.
    *resp.headers_mut() = headers;
    resp.headers_mut().insert(CONTENT_TYPE, content_type);
    Ok(Reply::Complete(resp))
}

/// Says how the request was served: `x-switchyard-attempts` (upstream requests sent) and, when
/// deployments were abandoned, `x-switchyard-abandoned` (`provider/model=reason,...`).
fn stamp_attempts(resp: &mut Response, attempts: usize, abandoned: Option<String>) {
    if attempts == 0 {
        return;
    }
    let h = resp.headers_mut();
    h.insert(names::ATTEMPTS.clone(), HeaderValue::from(attempts));
    if let Some(v) = abandoned.and_then(|s| HeaderValue::from_str(&s).ok()) {
        h.insert(names::ABANDONED.clone(), v);
    }
}

/// Headers that tell the client where its request was served.
fn serving_headers(ctx: &RequestCtx, upstream: &HeaderMap) -> HeaderMap {
    // Room for these and the ones stamped later (content type, cost, attempts, request id),
    // so the map is allocated once.
    let mut h = HeaderMap::with_capacity(16);
    let mut put = |name: &HeaderName, value: Option<&str>| {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(name.clone(), v);
        }
    };
    put(&names::PROVIDER, ctx.provider.as_deref());
    put(&names::MODEL, ctx.upstream_model.as_deref());
    put(&names::ROUTE, ctx.route_label());
    put(&names::DEPLOYMENT, ctx.deployment_name().as_deref());
    if let Some(v) = upstream
        .get(&names::X_REQUEST_ID)
        .or_else(|| upstream.get(&names::REQUEST_ID))
        .or_else(|| upstream.get(&names::X_AMZN_REQUESTID))
    {
        h.insert(names::UPSTREAM_REQUEST_ID.clone(), v.clone());
    }
    h
}

/// Waits for an upstream's response head within the first-byte and total deadlines counted
/// from `sent_at`, and turns a transport error or a passed deadline into the upstream error
/// the client sees (which phase timed out, after how long).
pub(crate) async fn await_head<T>(
    sent: impl std::future::Future<Output = Result<T, ClientError>>,
    provider: &Arc<str>,
    t: &Timeouts,
    sent_at: Instant,
) -> Result<T, GatewayError> {
    let deadline = sent_at + t.total;
    let first_byte_at = deadline.min(sent_at + t.first_byte);
    match tokio::time::timeout_at(first_byte_at, sent).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(ClientError::ConnectTimeout(after))) => Err(GatewayError::upstream(
            provider,
            UpstreamErrorKind::Timeout {
                phase: TimeoutPhase::Connect,
                after,
            },
        )),
        Ok(Err(e)) => Err(GatewayError::upstream(
            provider,
            UpstreamErrorKind::Connect(e.to_string()),
        )),
        Err(_) => {
            let (phase, after) = if first_byte_at < deadline {
                (TimeoutPhase::FirstByte, t.first_byte)
            } else {
                (TimeoutPhase::Total, t.total)
            };
            Err(GatewayError::upstream(
                provider,
                UpstreamErrorKind::Timeout { phase, after },
            ))
        }
    }
}

/// Reads an upstream body up to `limit` bytes before `deadline`. Error bodies are truncated
/// silently; success bodies over the limit are an error.
async fn read_upstream(
    incoming: UpstreamBody,
    limit: usize,
    deadline: Instant,
    provider: &Arc<str>,
    total: std::time::Duration,
    truncate: bool,
) -> Result<Bytes, GatewayError> {
    let read = async {
        let mut body = incoming;
        // Most responses arrive as one frame; keep it as is instead of copying it.
        let mut first: Option<Bytes> = None;
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| UpstreamErrorKind::Body(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if first.is_none() && out.is_empty() && data.len() <= limit {
                    first = Some(data);
                    continue;
                }
                if let Some(f) = first.take() {
                    out.extend_from_slice(&f);
                }
                if out.len() + data.len() > limit {
                    if truncate {
                        out.extend_from_slice(&data[..limit - out.len()]);
                        break;
                    }
                    return Err(UpstreamErrorKind::Malformed(format!(
                        "response larger than {limit} bytes"
                    )));
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(first.unwrap_or_else(|| Bytes::from(out)))
    };
    match tokio::time::timeout_at(deadline, read).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(kind)) => Err(GatewayError::upstream(provider, kind)),
        Err(_) => Err(GatewayError::upstream(
            provider,
            UpstreamErrorKind::Timeout {
                phase: TimeoutPhase::Total,
                after: total,
            },
        )),
    }
}

/// The names of the headers the pipeline writes or reads on every request, built once: a
/// `&str` name is parsed and checked on each use, a `HeaderName` is only hashed.
mod names {
    use http::HeaderName;

    pub(super) static BUDGET_DOWNGRADE: HeaderName =
        HeaderName::from_static("x-switchyard-budget-downgrade");
    pub(super) static COST_USD: HeaderName = HeaderName::from_static("x-switchyard-cost-usd");
    pub(super) static ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");
    pub(super) static ABANDONED: HeaderName = HeaderName::from_static("x-switchyard-abandoned");
    pub(super) static PROVIDER: HeaderName = HeaderName::from_static("x-switchyard-provider");
    pub(super) static MODEL: HeaderName = HeaderName::from_static("x-switchyard-model");
    pub(super) static ROUTE: HeaderName = HeaderName::from_static("x-switchyard-route");
    pub(super) static DEPLOYMENT: HeaderName = HeaderName::from_static("x-switchyard-deployment");
    pub(super) static UPSTREAM_REQUEST_ID: HeaderName =
        HeaderName::from_static("x-switchyard-upstream-request-id");
    pub(super) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    pub(super) static REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
    pub(super) static X_AMZN_REQUESTID: HeaderName = HeaderName::from_static("x-amzn-requestid");
}
