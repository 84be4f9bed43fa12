//! The `route` stage: rules, classifier and strategy (`routing::Router::select` / `plan`), the
//! LLM-as-judge call that labels prompts through the gateway's own serving path, and the dry run
//! behind `POST /v1/route/explain`.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::ctx::{ClassifierNote, Outcome, RequestCtx};
use super::{Gateway, Parsed, Reply};
use crate::config::Deployment;
use crate::error::GatewayError;
use crate::providers::Operation;
use crate::routing::policy::{Classifier, Label};
use crate::routing::stats::Headroom;
use crate::routing::{classify, Candidate, Decision, Route, RouteRequest, Router, Selection, Step};

/// Plans the request's route and records how it was chosen in `ctx`.
pub(crate) async fn plan(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    parsed: &mut Parsed,
    headers: &HeaderMap,
    body: &Bytes,
    prompt: &mut crate::tokenize::Prompt<'_>,
) -> Result<Route, GatewayError> {
    let key = ctx.key_name.clone();
    let attribution = ctx.attribution.clone();
    let step = select(gw, ctx, parsed, headers, body, &attribution, key.as_deref()).await;
    // A context-window constraint the estimate is too rough to decide gets the real count.
    if crate::tokenize::window_is_close(&gw.router, &step.alias, ctx.op, &parsed.features) {
        prompt.count(&gw.router, &step.alias).await;
        parsed.take_count(ctx, prompt);
    }
    let req = RouteRequest {
        model: &parsed.model,
        op: ctx.op,
        features: &parsed.features,
        attribution: &attribution,
        key: key.as_deref().unwrap_or(ctx.principal),
        headers,
    };
    let (route, label) = gw
        .router
        .plan(&req, &step, &gw.health, false)?
        .into_route()?;
    ctx.route_rule = Some(route.rule);
    ctx.route_explain = Some(label);
    Ok(route)
}

/// The alias step of a request: rules, then the classifier when the rules ask for it.
async fn select(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    parsed: &Parsed,
    headers: &HeaderMap,
    body: &Bytes,
    attribution: &crate::attribution::Attribution,
    key: Option<&str>,
) -> Step {
    let req = RouteRequest {
        model: &parsed.model,
        op: ctx.op,
        features: &parsed.features,
        attribution,
        key: key.unwrap_or(ctx.principal),
        headers,
    };
    match gw.router.select(&req) {
        Selection::Resolved(step) => step,
        Selection::Classify(c) => {
            let (label, by, cost_usd) =
                Box::pin(label(gw, ctx, &c, &parsed.model, body, parsed)).await;
            ctx.classifier = Some(ClassifierNote {
                label: label.as_str(),
                by,
                cost_usd,
            });
            gw.router.classified(&c, label, by)
        }
    }
}

/// The route of fallback alias `alias`: its strategy and constraints, not its rules.
pub(crate) fn fallback(
    gw: &Gateway,
    ctx: &RequestCtx,
    parsed: &Parsed,
    headers: &HeaderMap,
    alias: &str,
) -> Result<Route, GatewayError> {
    let req = RouteRequest {
        model: alias,
        op: ctx.op,
        features: &parsed.features,
        attribution: &ctx.attribution,
        key: ctx.key_name.as_deref().unwrap_or(ctx.principal),
        headers,
    };
    let step = Step {
        alias: alias.to_owned(),
        narrow: None,
        reason: None,
    };
    Ok(gw
        .router
        .plan(&req, &step, &gw.health, false)?
        .into_route()?
        .0)
}

/// Labels the prompt: the judge's answer (cached by prompt) when the classifier has a judge,
/// the default label when the judge fails or times out, else the zero-cost heuristic. Returns
/// the label, who gave it and what the judge's call cost.
async fn label(
    gw: &Gateway,
    ctx: &RequestCtx,
    c: &Classifier,
    alias: &str,
    body: &[u8],
    parsed: &Parsed,
) -> (Label, &'static str, Option<f64>) {
    let Some(judge) = &c.judge else {
        return (
            Router::heuristic_label(c, body, &parsed.features),
            "heuristic",
            None,
        );
    };
    let text = crate::routing::estimate::last_user_text(body, classify::MAX_PROMPT_BYTES);
    let cache = gw.router.judge_cache(alias);
    if let Some(l) = cache.and_then(|cache| cache.get(&text)) {
        return (l, "cache", None);
    }
    let asked = tokio::time::timeout(judge.timeout, ask_judge(gw, ctx, &judge.alias, &text)).await;
    match asked {
        Ok(Ok((label, cost))) => {
            if let Some(cache) = cache {
                cache.put(&text, label);
            }
            (label, "judge", cost)
        }
        Ok(Err(cost)) => (c.default, "default", cost),
        Err(_) => {
            tracing::debug!(judge = %judge.alias, "classifier judge timed out; default label");
            (c.default, "default", None)
        }
    }
}

/// Asks the judge alias for a label through the gateway's own routing and failover. Its call
/// is logged and recorded as a request of its own (`route=classifier-judge`, same request id,
/// the client's key and attribution), with its cost also on the client request's line. `Err` carries the cost when an answer came but had no label.
async fn ask_judge(
    gw: &Gateway,
    parent: &RequestCtx,
    alias: &str,
    text: &str,
) -> Result<(Label, Option<f64>), Option<f64>> {
    let body = Bytes::from(classify::judge_body(alias, text));
    let mut ctx = RequestCtx::new(Arc::clone(&parent.request_id), Operation::ChatCompletions);
    ctx.principal = "internal";
    ctx.client_model = Some(alias.to_owned());
    ctx.route_rule = Some("classifier-judge");
    // The judge's call is spend like any other: recorded, counted and attributed to the
    // client whose request it classifies.
    ctx.key_name = parent.key_name.clone();
    ctx.attribution = parent.attribution.clone();
    ctx.reqlog = gw.reqlog.clone();
    ctx.metrics = Some(Arc::clone(&gw.metrics));
    let headers = HeaderMap::new();
    let features = crate::routing::estimate::Features {
        prompt_tokens: crate::routing::estimate::text_tokens(body.len() as u64),
        max_tokens: Some(4),
        ..Default::default()
    };
    let req = RouteRequest {
        model: alias,
        op: Operation::ChatCompletions,
        features: &features,
        attribution: &parent.attribution,
        key: "internal",
        headers: &headers,
    };
    let step = Step {
        alias: alias.to_owned(),
        narrow: None,
        reason: None,
    };
    let planned = gw
        .router
        .plan(&req, &step, &gw.health, false)
        .and_then(Decision::into_route);
    let route = match planned {
        Ok((route, _)) => route,
        Err(e) => {
            ctx.log(e.status().as_u16(), Outcome::Failed, Some(&e));
            return Err(None);
        }
    };
    let client_model: Arc<str> = Arc::from(alias);
    let served = super::serve(
        gw,
        &mut ctx,
        &route.candidates,
        None,
        (&body, &headers, &client_model),
    )
    .await;
    let resp = match served {
        Ok(Reply::Complete(resp)) => resp,
        Ok(Reply::Streaming(_)) => return Err(None),
        Err(e) => {
            ctx.log(e.status().as_u16(), Outcome::Failed, Some(&e));
            return Err(None);
        }
    };
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let cost = match (&ctx.provider, &ctx.upstream_model, &ctx.usage) {
        (Some(p), Some(m), Some(u)) => gw
            .router
            .pricing()
            .price_of(p, m)
            .map(|(price, _)| price.cost_of(u)),
        _ => None,
    };
    ctx.log(status, Outcome::Completed, None);
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let content = answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("");
    classify::read_answer(content)
        .map(|l| (l, cost))
        .ok_or(cost)
}

/// `POST /v1/route/explain`: the routing decision for a chat completion body, without any
/// upstream call. A classifier with a judge uses its cache, else the heuristic (calling the
/// judge would be an upstream call).
pub(crate) async fn explain(gw: &Gateway, req: Request<Body>) -> Result<Value, GatewayError> {
    let (parts, body) = req.into_parts();
    let (principal, _) = gw.authenticate(&parts.headers)?;
    let body = super::read_body(body, &parts.headers, gw.max_body_size).await?;
    let op = Operation::ChatCompletions;
    let parsed = super::parse(op, &body)?;
    let key = principal.name().to_owned();
    let team = match &principal {
        crate::auth::Principal::VirtualKey(k) => gw.auth.team_of(k),
        _ => None,
    };
    let attribution = crate::attribution::Attribution::resolve(team, op, &parts.headers, &body)?;
    let req = RouteRequest {
        model: &parsed.model,
        op,
        features: &parsed.features,
        attribution: &attribution,
        key: &key,
        headers: &parts.headers,
    };
    let mut classifier = Value::Null;
    let step = match gw.router.select(&req) {
        Selection::Resolved(step) => step,
        Selection::Classify(c) => {
            let heuristic = Router::heuristic_label(&c, &body, &parsed.features);
            let cached = c.judge.as_ref().and_then(|_| {
                let text =
                    crate::routing::estimate::last_user_text(&body, classify::MAX_PROMPT_BYTES);
                gw.router.judge_cache(&parsed.model)?.get(&text)
            });
            let (label, by) = match (cached, &c.judge) {
                (Some(l), _) => (l, "cache"),
                (None, Some(_)) => (heuristic, "heuristic (dry run: the judge is not called)"),
                (None, None) => (heuristic, "heuristic"),
            };
            let step = gw.router.classified(
                &c,
                label,
                if cached.is_some() {
                    "cache"
                } else {
                    "heuristic"
                },
            );
            classifier = json!({"label": label.as_str(), "by": by, "alias": step.alias});
            step
        }
    };
    let mut decision = gw.router.plan(&req, &step, &gw.health, true)?;
    if gw.router.policy(&decision.alias).is_none() {
        // Without a policy the pipeline's capability check is what filters: show its verdict.
        runtime_capability_checks(gw, op, &parsed, &body, &mut decision);
    }
    let now = Instant::now();
    let candidates: Vec<Value> = decision
        .candidates
        .iter()
        .map(|c| {
            let chosen = decision
                .route
                .candidates
                .first()
                .is_some_and(|d| same(d, &c.deployment));
            let rank = decision
                .route
                .candidates
                .iter()
                .position(|d| same(d, &c.deployment));
            candidate_json(gw, c, chosen, rank, now)
        })
        .collect();
    let chosen = decision
        .route
        .candidates
        .first()
        .map(|d| format!("{}/{}", d.provider.name, d.model));
    let f = &parsed.features;
    Ok(json!({
        "object": "route.explanation",
        "model": parsed.model,
        "alias": decision.alias,
        "strategy": decision.strategy.map_or("weighted (no routing policy)", |s| s.as_str()),
        "route": &*decision.label,
        "rule": step.reason,
        "classifier": classifier,
        "attribution": {
            "key": key,
            "team": attribution.team.as_deref(),
            "user": attribution.user.as_deref(),
            "tags": attribution.tags.iter().map(|(k, v)| (k.to_string(), Value::from(&**v))).collect::<serde_json::Map<_, _>>(),
        },
        "request": {
            "estimated_prompt_tokens": f.prompt_tokens,
            "max_tokens": f.max_tokens,
            "has_tools": f.has_tools,
            "has_images": f.has_images,
            "json_schema": f.json_schema,
            "stream": f.stream,
        },
        "candidates": candidates,
        "decision": {
            "deployment": chosen,
            "order": decision.route.candidates.iter().map(|d| format!("{}/{}", d.provider.name, d.model)).collect::<Vec<_>>(),
            "refused": decision.refusal,
        },
    }))
}

fn same(a: &Deployment, b: &Deployment) -> bool {
    a.provider.name == b.provider.name && a.model == b.model
}

/// Adds the pipeline's own capability check (the one that filters aliases without a policy)
/// to each candidate, and drops refused ones from the route as the pipeline would.
fn runtime_capability_checks(
    gw: &Gateway,
    op: Operation,
    parsed: &Parsed,
    body: &[u8],
    decision: &mut Decision,
) {
    for c in &mut decision.candidates {
        let caps = gw.router.capabilities(&c.deployment);
        let describe = || format!("`{}`", c.deployment.model);
        let verdict = crate::capabilities::check(&caps, op, &parsed.needs, body, &describe);
        c.checks.retain(|k| {
            !matches!(
                k.name,
                "tools" | "vision" | "json_schema" | "context_window"
            )
        });
        c.checks.push(crate::routing::Check {
            name: "capabilities",
            passed: verdict.is_ok(),
            detail: Some(match &verdict {
                Ok(()) => "the model can serve this request (or its record is unknown)".to_owned(),
                Err(e) => e.to_string(),
            }),
        });
        c.eligible = verdict.is_ok();
    }
    let refused: Vec<Deployment> = decision
        .candidates
        .iter()
        .filter(|c| !c.eligible)
        .map(|c| c.deployment.clone())
        .collect();
    decision
        .route
        .candidates
        .retain(|d| !refused.iter().any(|r| same(r, d)));
    if decision.route.candidates.is_empty() && !decision.candidates.is_empty() {
        decision.refusal =
            Some("No deployment can serve this request (see the candidates' checks).".to_owned());
    }
}

fn candidate_json(
    gw: &Gateway,
    c: &Candidate,
    chosen: bool,
    rank: Option<usize>,
    now: Instant,
) -> Value {
    let d = &c.deployment;
    let price = gw.router.pricing().price(d);
    json!({
        "deployment": format!("{}/{}", d.provider.name, d.model),
        "provider": &*d.provider.name,
        "model": &*d.model,
        "weight": d.weight,
        "quality": c.quality,
        "eligible": c.eligible,
        "chosen": chosen,
        "rank": rank,
        "constraints": c.checks.iter().map(|k| json!({
            "name": k.name,
            "passed": k.passed,
            "detail": k.detail,
        })).collect::<Vec<_>>(),
        "score": c.score.map(|s| json!({
            "total": s.total,
            "cost": s.cost,
            "latency": s.latency,
            "errors": s.errors,
            "quality": s.quality,
        })),
        "estimated_cost_usd": c.estimated_cost,
        "price": price.map(|(p, source)| price_json(&p, source.describe())),
        "stats": stats_json(c, now),
    })
}

/// A price as JSON (USD per million tokens).
pub(crate) fn price_json(p: &crate::pricing::Price, source: &str) -> Value {
    json!({
        "input": p.input,
        "output": p.output,
        "cached_input": p.cached_input,
        "cache_write": p.cache_write,
        "source": source,
    })
}

fn stats_json(c: &Candidate, now: Instant) -> Value {
    stats_value(
        &c.stats,
        c.p95_ms,
        None,
        c.breaker.as_str(),
        c.headroom,
        now,
    )
}

/// One deployment's live statistics as JSON (the explain and stats endpoints share it).
pub(crate) fn stats_value(
    s: &crate::routing::stats::StatsSnapshot,
    latency_p95_ms: Option<f64>,
    ttft_p95_ms: Option<f64>,
    breaker: &str,
    headroom: Headroom,
    now: Instant,
) -> Value {
    let quota = s.quota.map(|q| {
        let left = |d: Option<std::time::Duration>| {
            d.map(|d| (q.at + d).saturating_duration_since(now).as_millis() as u64)
        };
        json!({
            "remaining_requests": q.remaining_requests(now),
            "limit_requests": q.reading.limit_requests,
            "requests_reset_in_ms": left(q.reading.reset_requests),
            "remaining_tokens": q.remaining_tokens(now),
            "limit_tokens": q.reading.limit_tokens,
            "tokens_reset_in_ms": left(q.reading.reset_tokens),
            "observed_ms_ago": now.saturating_duration_since(q.at).as_millis() as u64,
        })
    });
    json!({
        "in_flight": s.in_flight,
        "requests": s.requests,
        "failures": s.failures,
        "latency_ms": s.latency_ms,
        "latency_p95_ms": latency_p95_ms,
        "ttft_ms": s.ttft_ms,
        "ttft_p95_ms": ttft_p95_ms,
        "error_rate": s.error_rate,
        "quota": quota,
        "quota_low": matches!(headroom, Headroom::Low { .. }),
        "breaker": breaker,
    })
}

/// `GET /v1/deployments/stats`: every configured deployment's live statistics.
pub(crate) fn deployment_stats(gw: &Gateway, headers: &HeaderMap) -> Result<Value, GatewayError> {
    gw.authenticate(headers)?;
    let now = Instant::now();
    let data: Vec<Value> = gw
        .router
        .deployments()
        .iter()
        .map(|d| {
            let h = gw.health.get(&d.provider.name, &d.model);
            let snap = h.stats.snapshot(now);
            let ms = |x: std::time::Duration| x.as_secs_f64() * 1000.0;
            let headroom = h
                .stats
                .headroom(0, crate::routing::policy::DEFAULT_QUOTA_RESERVE, now);
            let price = gw.router.pricing().price(d);
            json!({
                "deployment": format!("{}/{}", d.provider.name, d.model),
                "provider": &*d.provider.name,
                "model": &*d.model,
                "price": price.map(|(p, source)| price_json(&p, source.describe())),
                "stats": stats_value(
                    &snap,
                    h.latency.quantile(0.95).map(ms),
                    h.stats.ttft_window.quantile(0.95).map(ms),
                    h.breaker.snapshot().0.as_str(),
                    headroom,
                    now,
                ),
            })
        })
        .collect();
    Ok(json!({"object": "list", "data": data}))
}
