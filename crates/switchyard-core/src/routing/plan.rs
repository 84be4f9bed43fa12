//! Planning a request's route under its alias's policy: rules, classifier label, hard
//! constraints, then the strategy's order. Every step is recorded, so the same code serves
//! requests and `POST /v1/route/explain`.
//!
//! Order of evaluation for a requested alias:
//! 1. its `rules`, first match wins: serve from another alias, narrow to some deployments, or
//!    split by sticky percentage ([`Router::select`]);
//! 2. when no rule matched and it has a classifier, the prompt's label picks the alias (the
//!    pipeline labels it, because the judge is an upstream call: [`Router::classified`]);
//! 3. the chosen alias is resolved ([`Router::route`]), its candidates checked against the hard
//!    constraints (violators are dropped, never chosen), and the rest ordered by its strategy
//!    ([`Router::plan`]).
//!
//! Routing is one hop: the rules and classifier of an alias reached in step 1 or 2 do not run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::HeaderMap;
use tokio::time::Instant;

use super::classify::{self, JudgeCache};
use super::estimate::Features;
use super::policy::{
    Action, AliasPolicy, Capability, Classifier, Label, Match, RoutingConfig, Strategy,
    DEFAULT_QUALITY,
};
use super::stats::{Headroom, StatsSnapshot};
use super::{Route, Router};
use crate::attribution::Attribution;
use crate::config::Deployment;
use crate::error::GatewayError;
use crate::pricing::Pricing;
use crate::providers::Operation;
use crate::resilience::{BreakerState, Health};

/// Policies with their runtime state (round-robin counters, judge caches).
#[derive(Debug, Default)]
pub(super) struct Policies {
    by_alias: HashMap<String, AliasState>,
    pub(super) pricing: Pricing,
    quality: HashMap<String, u8>,
}

#[derive(Debug)]
struct AliasState {
    policy: AliasPolicy,
    next: AtomicU64,
    judge_cache: Option<JudgeCache>,
}

impl Policies {
    pub(super) fn new(cfg: RoutingConfig) -> Self {
        let by_alias = cfg
            .policies
            .into_iter()
            .map(|(alias, policy)| {
                let judge_cache = policy
                    .classifier
                    .as_ref()
                    .and_then(|c| c.judge.as_ref())
                    .map(|j| JudgeCache::new(j.cache_size));
                let state = AliasState {
                    policy,
                    next: AtomicU64::new(0),
                    judge_cache,
                };
                (alias, state)
            })
            .collect();
        Self {
            by_alias,
            pricing: Pricing::new(cfg.prices),
            quality: cfg.quality,
        }
    }
}

/// What routing looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    /// The model the client asked for.
    pub model: &'a str,
    /// The API operation.
    pub op: Operation,
    /// Its features and token estimate.
    pub features: &'a Features,
    /// Team, user and tags.
    pub attribution: &'a Attribution,
    /// The virtual key's name, or `master` / `anonymous`.
    pub key: &'a str,
    /// The client's headers.
    pub headers: &'a HeaderMap,
}

/// Which alias serves, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The alias (or `provider/model`) to resolve.
    pub alias: String,
    /// Keep only these deployments (`provider/model`).
    pub narrow: Option<Vec<String>>,
    /// What redirected the request here (`rule:<name>`, `split:<name>=<alias>`,
    /// `classifier:<label>`), for the route header.
    pub reason: Option<String>,
}

/// The outcome of the first phase.
#[derive(Debug, Clone)]
pub enum Selection {
    /// The alias is known.
    Resolved(Step),
    /// No rule matched and the alias routes by prompt label: classify, then call
    /// [`Router::classified`].
    Classify(Arc<Classifier>),
}

/// One constraint check of one candidate.
#[derive(Debug, Clone)]
pub struct Check {
    /// `tools`, `vision`, `json_schema`, `context_window`, `latency_budget`, `max_cost`.
    pub name: &'static str,
    /// Whether the candidate satisfies it.
    pub passed: bool,
    /// What was compared (always set for failures; for passes only when explaining).
    pub detail: Option<String>,
}

/// The scored strategy's terms for one candidate (each 0..1, weighted; lower is better).
#[derive(Debug, Clone, Copy, Default)]
pub struct Score {
    /// The weighted sum.
    pub total: f64,
    /// Cost relative to the most expensive eligible candidate.
    pub cost: f64,
    /// p95 latency relative to the slowest.
    pub latency: f64,
    /// Recent error rate.
    pub errors: f64,
    /// Quality below the best tier.
    pub quality: f64,
}

/// Everything known about one candidate when the route was planned.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The deployment.
    pub deployment: Deployment,
    /// Constraint checks (empty for aliases without a policy).
    pub checks: Vec<Check>,
    /// Whether every check passed.
    pub eligible: bool,
    /// The scored strategy's score.
    pub score: Option<Score>,
    /// Estimated USD for this request there, when its price is known.
    pub estimated_cost: Option<f64>,
    /// Live statistics.
    pub stats: StatsSnapshot,
    /// Observed p95 time to response headers, ms (after enough samples).
    pub p95_ms: Option<f64>,
    /// Provider quota headroom.
    pub headroom: Headroom,
    /// Breaker state.
    pub breaker: BreakerState,
    /// Quality tier.
    pub quality: u8,
    /// Position among the alias's deployments in the config (priority and round-robin order).
    pub position: usize,
}

/// A planned route with its explanation.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The route: eligible candidates in the strategy's order.
    pub route: Route,
    /// The alias (or `provider/model`) that served.
    pub alias: String,
    /// The strategy, for aliases with a policy.
    pub strategy: Option<Strategy>,
    /// `x-switchyard-route`: what redirected the request, then how the alias ordered it.
    pub label: Arc<str>,
    /// Every candidate: eligible ones in route order, then the rest.
    pub candidates: Vec<Candidate>,
    /// Why no candidate is left, when none is.
    pub refusal: Option<String>,
}

impl Decision {
    /// The route, or a 400 naming what each deployment violated when constraints left none.
    pub fn into_route(self) -> Result<(Route, Arc<str>), GatewayError> {
        match self.refusal {
            Some(message) => Err(GatewayError::Unsupported {
                param: "model".to_owned(),
                message,
                code: "no_deployment_satisfies_constraints",
            }),
            None => Ok((self.route, self.label)),
        }
    }
}

impl Router {
    /// The policy of `alias`, if it has a `routing:` block.
    pub fn policy(&self, alias: &str) -> Option<&AliasPolicy> {
        self.policies.by_alias.get(alias).map(|s| &s.policy)
    }

    /// The judge cache of a classifying alias.
    pub fn judge_cache(&self, alias: &str) -> Option<&JudgeCache> {
        self.policies
            .by_alias
            .get(alias)
            .and_then(|s| s.judge_cache.as_ref())
    }

    /// The quality tier of a deployment (config, else [`DEFAULT_QUALITY`]).
    pub fn quality(&self, d: &Deployment) -> u8 {
        if self.policies.quality.is_empty() {
            return DEFAULT_QUALITY;
        }
        self.policies
            .quality
            .get(&format!("{}/{}", d.provider.name, d.model))
            .copied()
            .unwrap_or(DEFAULT_QUALITY)
    }

    /// Phase one: the requested alias's rules (first match wins), else its classifier.
    pub fn select(&self, req: &RouteRequest<'_>) -> Selection {
        let direct = || {
            Selection::Resolved(Step {
                alias: req.model.to_owned(),
                narrow: None,
                reason: None,
            })
        };
        let Some(state) = self.policies.by_alias.get(req.model) else {
            return direct();
        };
        for rule in &state.policy.rules {
            if !matches(&rule.when, req) {
                continue;
            }
            let step = match &rule.action {
                Action::Alias(a) => Step {
                    alias: a.clone(),
                    narrow: None,
                    reason: Some(format!("rule:{}", rule.name)),
                },
                Action::Deployments(ds) => Step {
                    alias: req.model.to_owned(),
                    narrow: Some(ds.clone()),
                    reason: Some(format!("rule:{}", rule.name)),
                },
                Action::Split(arms) => {
                    let alias = self.split_arm(&rule.name, arms, req);
                    Step {
                        alias: alias.to_owned(),
                        narrow: None,
                        reason: Some(format!("split:{}={alias}", rule.name)),
                    }
                }
            };
            return Selection::Resolved(step);
        }
        match &state.policy.classifier {
            Some(c) => Selection::Classify(Arc::clone(c)),
            None => direct(),
        }
    }

    /// The step for a classifier's `label`; `by` says who labelled (`heuristic`, `judge`,
    /// `cache`, `default`).
    pub fn classified(&self, classifier: &Classifier, label: Label, by: &str) -> Step {
        let (label, alias) = classifier.alias_for(label);
        Step {
            alias: alias.to_owned(),
            narrow: None,
            reason: Some(format!("classifier:{}/{by}", label.as_str())),
        }
    }

    /// The zero-cost label of a request's prompt.
    pub fn heuristic_label(classifier: &Classifier, body: &[u8], features: &Features) -> Label {
        let text = super::estimate::last_user_text(body, classify::MAX_PROMPT_BYTES);
        classify::heuristic(&text, features, classifier.complex_prompt_tokens)
    }

    /// Which arm of a split serves this request: sticky by a hash of the user id (else of the
    /// key name), salted with the rule name so two splits are independent. Anonymous requests
    /// without a user draw at random.
    fn split_arm<'s>(
        &self,
        rule: &str,
        arms: &'s [super::policy::SplitArm],
        req: &RouteRequest<'_>,
    ) -> &'s str {
        let who = req
            .attribution
            .user
            .as_deref()
            .or((req.key != "anonymous").then_some(req.key));
        let h = match who {
            Some(w) => classify::hash(&format!("{rule}\u{0}{w}")),
            None => self.next_u64(),
        };
        let point = (h % 10_000) as f64 / 100.0;
        let mut acc = 0.0;
        for arm in arms {
            acc += arm.percent;
            if point < acc {
                return &arm.alias;
            }
        }
        arms.last().map_or("", |a| a.alias.as_str())
    }

    /// Phase two: resolve `step`, drop candidates violating a hard constraint, order the rest
    /// by the alias's strategy. With `explain`, every check carries its detail.
    pub fn plan(
        &self,
        req: &RouteRequest<'_>,
        step: &Step,
        health: &Health,
        explain: bool,
    ) -> Result<Decision, GatewayError> {
        let mut route = self.route(&step.alias)?;
        if let Some(keep) = &step.narrow {
            route.candidates.retain(|d| {
                keep.iter()
                    .any(|k| k.split_once('/') == Some((&*d.provider.name, &*d.model)))
            });
        }
        let state = self.policies.by_alias.get(&step.alias);
        let policy = state.map(|s| &s.policy);
        let strategy = policy.map(|p| p.strategy);
        let how = match strategy {
            Some(s) => strategy_rule(s),
            None => route.rule,
        };
        route.rule = how;
        let label: Arc<str> = match &step.reason {
            Some(r) => Arc::from(format!("{r}>{how}")),
            None => Arc::from(how),
        };
        if policy.is_none() && !explain {
            return Ok(Decision {
                route,
                alias: step.alias.clone(),
                strategy,
                label,
                candidates: Vec::new(),
                refusal: None,
            });
        }
        let now = Instant::now();
        let configured = self.aliases.get(&step.alias).map(|a| &a.deployments);
        let mut cands: Vec<Candidate> = route
            .candidates
            .iter()
            .map(|d| {
                let mut c = self.candidate(d, req, policy, health, now, explain);
                c.position = configured
                    .and_then(|ds| {
                        ds.iter()
                            .position(|x| x.provider.name == d.provider.name && x.model == d.model)
                    })
                    .unwrap_or(0);
                c
            })
            .collect();
        let mut order: Vec<usize> = if policy.is_some() {
            (0..cands.len()).filter(|&i| cands[i].eligible).collect()
        } else {
            (0..cands.len()).collect()
        };
        if let (Some(p), Some(state)) = (policy, state) {
            order = self.order(p, state, &mut cands, order);
        }
        let refusal = (order.is_empty() && !cands.is_empty()).then(|| refusal(&step.alias, &cands));
        route.candidates = order.iter().map(|&i| cands[i].deployment.clone()).collect();
        let mut sorted: Vec<Candidate> = order.iter().map(|&i| cands[i].clone()).collect();
        sorted.extend(
            (0..cands.len())
                .filter(|i| !order.contains(i))
                .map(|i| cands[i].clone()),
        );
        Ok(Decision {
            route,
            alias: step.alias.clone(),
            strategy,
            label,
            candidates: sorted,
            refusal,
        })
    }

    fn candidate(
        &self,
        d: &Deployment,
        req: &RouteRequest<'_>,
        policy: Option<&AliasPolicy>,
        health: &Health,
        now: Instant,
        explain: bool,
    ) -> Candidate {
        let h = health.get(&d.provider.name, &d.model);
        let stats = h.stats.snapshot(now);
        let p95_ms = h.latency.quantile(0.95).map(|x| x.as_secs_f64() * 1000.0);
        let f = req.features;
        let estimated_cost = self
            .pricing()
            .price(d)
            .map(|(p, _)| p.estimate(f.prompt_tokens, f.output_tokens()));
        let reserve = policy.map_or(super::policy::DEFAULT_QUOTA_RESERVE, |p| p.quota_reserve);
        let headroom = h
            .stats
            .headroom(f.prompt_tokens + f.output_tokens(), reserve, now);
        let mut checks = Vec::new();
        if policy.is_some() || explain {
            let caps = self.capabilities(d);
            let required = policy.map_or(&[][..], |p| &p.constraints.capabilities[..]);
            let needs = |c: Capability, asked: bool| asked || required.contains(&c);
            for (cap, asked, has) in [
                (Capability::Tools, f.has_tools, caps.tools),
                (Capability::Vision, f.has_images, caps.vision),
                (Capability::JsonSchema, f.json_schema, caps.json_schema),
            ] {
                if !needs(cap, asked) || req.op == Operation::Embeddings {
                    continue;
                }
                // Unknown counts as capable, as in the capability check.
                let passed = has != Some(false);
                let detail = (!passed || explain).then(|| match (has, asked) {
                    (Some(false), true) => {
                        format!("the request needs {}; the model lacks it", cap.as_str())
                    }
                    (Some(false), false) => {
                        format!("the alias requires {}; the model lacks it", cap.as_str())
                    }
                    (None, _) => format!("{} unknown for this model (not refused)", cap.as_str()),
                    (Some(true), _) => format!("has {}", cap.as_str()),
                });
                checks.push(Check {
                    name: cap.as_str(),
                    passed,
                    detail,
                });
            }
            if let Some(window) = caps
                .context_window
                .filter(|_| req.op != Operation::Embeddings)
            {
                let need = f.prompt_tokens + f.max_tokens.unwrap_or(0);
                let passed = need <= u64::from(window);
                checks.push(Check {
                    name: "context_window",
                    passed,
                    detail: (!passed || explain).then(|| {
                        format!(
                            "about {} prompt tokens (estimated) + {} max_tokens {} the context \
                             window of {window}",
                            f.prompt_tokens,
                            f.max_tokens.unwrap_or(0),
                            if passed { "fit" } else { "exceed" }
                        )
                    }),
                });
            }
            if let Some(budget) = policy.and_then(|p| p.constraints.latency_budget) {
                let budget_ms = budget.as_secs_f64() * 1000.0;
                let observed = p95_ms.or(stats.latency_ms);
                let passed = observed.is_none_or(|ms| ms <= budget_ms);
                checks.push(Check {
                    name: "latency_budget",
                    passed,
                    detail: (!passed || explain).then(|| match observed {
                        None => format!("no latency observed yet (budget {budget_ms:.0} ms)"),
                        Some(ms) => format!(
                            "{} {ms:.0} ms {} the budget of {budget_ms:.0} ms",
                            if p95_ms.is_some() { "p95" } else { "estimate" },
                            if passed { "within" } else { "over" }
                        ),
                    }),
                });
            }
            if let Some(max) = policy.and_then(|p| p.constraints.max_cost) {
                let passed = estimated_cost.is_some_and(|c| c <= max);
                checks.push(Check {
                    name: "max_cost",
                    passed,
                    detail: (!passed || explain).then(|| match estimated_cost {
                        None => "price unknown (never assumed free)".to_owned(),
                        Some(c) => format!(
                            "estimated ${c:.6} {} the maximum of ${max:.6}",
                            if passed { "within" } else { "over" }
                        ),
                    }),
                });
            }
        }
        Candidate {
            deployment: d.clone(),
            eligible: checks.iter().all(|c| c.passed),
            checks,
            score: None,
            estimated_cost,
            stats,
            p95_ms,
            headroom,
            breaker: h.breaker.snapshot().0,
            quality: self.quality(d),
            position: 0,
        }
    }

    /// Orders eligible candidates (`order`, in the resolved weighted order) by the strategy.
    /// Standby deployments (weight 0) come last, in config order; only a deployment running
    /// out of provider quota (quota and scored strategies) goes behind them.
    fn order(
        &self,
        p: &AliasPolicy,
        state: &AliasState,
        cands: &mut [Candidate],
        order: Vec<usize>,
    ) -> Vec<usize> {
        let (mut live, standby): (Vec<usize>, Vec<usize>) = order
            .into_iter()
            .partition(|&i| cands[i].deployment.weight > 0);
        let by_config = |v: &mut Vec<usize>| v.sort_by_key(|&i| cands[i].position);
        let mut standby = standby;
        by_config(&mut standby);
        match p.strategy {
            Strategy::Weighted => {}
            Strategy::Priority => by_config(&mut live),
            Strategy::RoundRobin => {
                by_config(&mut live);
                if !live.is_empty() {
                    let n = state.next.fetch_add(1, Ordering::Relaxed);
                    let k = (n % live.len() as u64) as usize;
                    live.rotate_left(k);
                }
            }
            Strategy::LeastInflight => {
                // Stable over the weighted order, so ties are broken at random by weight.
                live.sort_by_key(|&i| cands[i].stats.in_flight);
            }
            Strategy::Latency => {
                let cost = |c: &Candidate| {
                    c.stats.latency_ms.unwrap_or(0.0) * (c.stats.in_flight as f64 + 1.0)
                };
                sort_by_f64(&mut live, |i| cost(&cands[i]));
                if live.len() >= 2 {
                    // Power of two choices: two at random, the cheaper first; the rest by cost.
                    let n = live.len() as u64;
                    let a = (self.next_u64() % n) as usize;
                    let b = (a + 1 + (self.next_u64() % (n - 1)) as usize) % live.len();
                    let (a, b) = (a.min(b), a.max(b));
                    let pick = if cost(&cands[live[b]]) < cost(&cands[live[a]]) {
                        b
                    } else {
                        a
                    };
                    let first = live.remove(pick);
                    live.insert(0, first);
                }
            }
            Strategy::Cheapest => {
                // Unknown prices last: never counted as free.
                sort_by_f64(&mut live, |i| {
                    cands[i].estimated_cost.unwrap_or(f64::INFINITY)
                });
            }
            Strategy::Quota => {}
            Strategy::Scored => {
                score(p, cands, &live);
                sort_by_f64(&mut live, |i| {
                    cands[i].score.map_or(f64::INFINITY, |s| s.total)
                });
            }
        }
        live.extend(standby);
        if matches!(p.strategy, Strategy::Quota | Strategy::Scored) {
            // A deployment about to run out goes behind even the standbys.
            demote_low_quota(&mut live, cands);
        }
        live
    }
}

/// The `x-switchyard-route` part naming an alias's strategy.
fn strategy_rule(s: Strategy) -> &'static str {
    match s {
        Strategy::Weighted => "alias:weighted",
        Strategy::Priority => "alias:priority",
        Strategy::RoundRobin => "alias:round_robin",
        Strategy::LeastInflight => "alias:least_inflight",
        Strategy::Latency => "alias:latency",
        Strategy::Cheapest => "alias:cheapest",
        Strategy::Quota => "alias:quota",
        Strategy::Scored => "alias:scored",
    }
}

/// Sorts indices by a float key, ascending; stable, so equal keys keep the incoming order.
fn sort_by_f64(v: &mut [usize], key: impl Fn(usize) -> f64) {
    v.sort_by(|&a, &b| key(a).total_cmp(&key(b)));
}

/// Moves deployments whose provider quota is running out behind the others (soonest reset
/// first among them): they stay as a last resort for failover.
fn demote_low_quota(v: &mut Vec<usize>, cands: &[Candidate]) {
    let (ok, mut low): (Vec<usize>, Vec<usize>) =
        v.iter().partition(|&&i| cands[i].headroom == Headroom::Ok);
    low.sort_by_key(|&i| match cands[i].headroom {
        Headroom::Low { resets_in } => resets_in.unwrap_or(std::time::Duration::MAX),
        Headroom::Ok => std::time::Duration::ZERO,
    });
    *v = ok;
    v.extend(low);
}

/// Fills in the scored strategy's terms for the candidates in `live`.
fn score(p: &AliasPolicy, cands: &mut [Candidate], live: &[usize]) {
    let max_cost = live
        .iter()
        .filter_map(|&i| cands[i].estimated_cost)
        .fold(0.0f64, f64::max);
    let latency = |c: &Candidate| c.p95_ms.or(c.stats.latency_ms);
    let known: Vec<f64> = live.iter().filter_map(|&i| latency(&cands[i])).collect();
    let max_latency = known.iter().copied().fold(0.0f64, f64::max);
    let mean_latency = if known.is_empty() {
        0.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    let w = p.weights;
    for &i in live {
        let c = &cands[i];
        let cost = match c.estimated_cost {
            // An unknown price weighs as the most expensive.
            None => 1.0,
            Some(_) if max_cost <= 0.0 => 0.0,
            Some(x) => x / max_cost,
        };
        // An unmeasured deployment counts as average, neither favoured nor shunned.
        let lat = latency(c).unwrap_or(mean_latency);
        let lat = if max_latency > 0.0 {
            lat / max_latency
        } else {
            0.0
        };
        let errors = c.stats.error_rate.unwrap_or(0.0).clamp(0.0, 1.0);
        let quality = f64::from(5u8.saturating_sub(c.quality.clamp(1, 5))) / 4.0;
        let total = w.cost * cost + w.latency * lat + w.errors * errors + w.quality * quality;
        cands[i].score = Some(Score {
            total,
            cost,
            latency: lat,
            errors,
            quality,
        });
    }
}

/// Why no deployment of `alias` may serve: each one's first failed check.
fn refusal(alias: &str, cands: &[Candidate]) -> String {
    let parts: Vec<String> = cands
        .iter()
        .map(|c| {
            let why = c
                .checks
                .iter()
                .find(|k| !k.passed)
                .map_or_else(String::new, |k| {
                    format!("{} ({})", k.name, k.detail.as_deref().unwrap_or("failed"))
                });
            format!(
                "`{}/{}`: {why}",
                c.deployment.provider.name, c.deployment.model
            )
        })
        .collect();
    format!(
        "No deployment of `{alias}` satisfies this request's routing constraints: {}.",
        parts.join("; ")
    )
}

/// Whether a rule's conditions hold for `req`.
fn matches(m: &Match, req: &RouteRequest<'_>) -> bool {
    let f = req.features;
    let a = req.attribution;
    let any_of = |list: &[String], v: Option<&str>| {
        list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
    };
    any_of(&m.keys, Some(req.key))
        && any_of(&m.teams, a.team.as_deref())
        && any_of(&m.users, a.user.as_deref())
        && m.tags
            .iter()
            .all(|(k, v)| a.tag(k).is_some_and(|have| v == "*" || have == v))
        && m.headers.iter().all(|(name, v)| {
            req.headers
                .get(name)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|have| v == "*" || have == v)
        })
        && m.has_tools.is_none_or(|x| x == f.has_tools)
        && m.has_images.is_none_or(|x| x == f.has_images)
        && m.stream.is_none_or(|x| x == f.stream)
        && m.prompt_tokens.is_none_or(|r| r.contains(f.prompt_tokens))
        && m.max_tokens
            .is_none_or(|r| f.max_tokens.is_some_and(|t| r.contains(t)))
}
