//! Routing simulation: thousands of requests through each strategy against simulated
//! deployments that differ in price, latency (with load-dependent queueing and a slow tail)
//! and error rate, on tokio's paused clock so it runs in seconds.
//!
//! Everything on the routing side is the real code: `Router::select`/`plan` decide, and every
//! simulated attempt feeds the same statistics the pipeline feeds (`InFlight`, latency window,
//! decaying latency, outcomes). Only the upstream is simulated. A failed attempt fails over
//! once to the next candidate, as the gateway does.
//!
//! Run with `cargo nextest run -p switchyard-core routing::sim --no-capture` to see the
//! table; `docs/routing.md` quotes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::estimate::Features;
use super::stats::InFlight;
use super::*;
use crate::attribution::Attribution;
use crate::capabilities::CapabilityTable;
use crate::config::from_yaml;
use crate::providers::Operation;
use crate::resilience::{Health, ResilienceConfig};

/// One simulated deployment.
struct Sim {
    /// Median time to answer when idle, ms.
    base_ms: f64,
    /// Share of attempts that fail (5xx / overload).
    error_rate: f64,
    /// Requests in flight at which the latency doubles (queueing).
    capacity: f64,
}

/// provider/model → behaviour. Prices come from the config (`price:`), tools support from
/// `capabilities:`.
fn sims() -> HashMap<&'static str, Sim> {
    HashMap::from([
        // A small, cheap, reasonably fast model.
        (
            "a/small",
            Sim {
                base_ms: 420.0,
                error_rate: 0.01,
                capacity: 60.0,
            },
        ),
        // A frontier model: fast, 15x the price.
        (
            "b/frontier",
            Sim {
                base_ms: 300.0,
                error_rate: 0.005,
                capacity: 60.0,
            },
        ),
        // A mid-priced model behind a slow provider.
        (
            "c/slow",
            Sim {
                base_ms: 1100.0,
                error_rate: 0.02,
                capacity: 60.0,
            },
        ),
        // The cheapest, but flaky and without tools.
        (
            "d/flaky",
            Sim {
                base_ms: 350.0,
                error_rate: 0.15,
                capacity: 60.0,
            },
        ),
    ])
}

const PROVIDERS: &str = "providers:\n  a:\n    type: openai\n    base_url: http://127.0.0.1:1/v1\n  b:\n    type: openai\n    base_url: http://127.0.0.1:2/v1\n  c:\n    type: openai\n    base_url: http://127.0.0.1:3/v1\n  d:\n    type: openai\n    base_url: http://127.0.0.1:4/v1\n";

const DEPLOYMENTS: &str = "      - {provider: a, model: small, price: {input: 0.15, output: 0.60}, quality: 3}\n      - {provider: b, model: frontier, price: {input: 2.50, output: 10.0}, quality: 5}\n      - {provider: c, model: slow, price: {input: 0.80, output: 4.0}, quality: 4}\n      - {provider: d, model: flaky, price: {input: 0.10, output: 0.40}, quality: 2}\n";

/// The scored alias's constraints.
const MAX_COST: f64 = 0.006;
const LATENCY_BUDGET_MS: f64 = 2500.0;

fn router(strategy: &str) -> Router {
    let extra = if strategy == "scored" {
        format!(
            "      weights: {{cost: 1, latency: 1, errors: 4, quality: 0.5}}\n      constraints: {{max_cost: {MAX_COST}, latency_budget: {}ms}}\n",
            LATENCY_BUDGET_MS as u64
        )
    } else {
        String::new()
    };
    let yaml = format!(
        "{PROVIDERS}capabilities:\n  d/flaky: {{tools: false}}\nmodels:\n  x:\n    deployments:\n{DEPLOYMENTS}    routing:\n      strategy: {strategy}\n{extra}"
    );
    let cfg = from_yaml(&yaml, &HashMap::new()).unwrap_or_else(|e| panic!("{e}"));
    Router::new(cfg.models, cfg.providers, cfg.server.timeouts)
        .with_capabilities(CapabilityTable::new(cfg.capabilities))
        .with_routing(cfg.routing)
        .with_seed(42)
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Default)]
struct Tally {
    cost: f64,
    latencies: Vec<f64>,
    attempts: u64,
    failed_attempts: u64,
    failed_requests: u64,
    violations: u64,
    by_deployment: HashMap<String, u64>,
}

/// One request's shape, drawn up front so every strategy sees the same traffic.
#[derive(Clone, Copy)]
struct Shape {
    prompt: u64,
    max_tokens: u64,
    output: u64,
    tools: bool,
    draws: [f64; 6],
}

fn traffic(n: usize) -> Vec<Shape> {
    let mut rng = Rng(0x5EED);
    (0..n)
        .map(|_| {
            let prompt = 200 + (rng.next() * 2800.0) as u64;
            let max_tokens = 200 + (rng.next() * 600.0) as u64;
            Shape {
                prompt,
                max_tokens,
                output: (max_tokens as f64 * (0.3 + 0.6 * rng.next())) as u64,
                tools: rng.next() < 0.2,
                draws: [
                    rng.next(),
                    rng.next(),
                    rng.next(),
                    rng.next(),
                    rng.next(),
                    rng.next(),
                ],
            }
        })
        .collect()
}

/// Simulated answer time of deployment `s` with `in_flight` requests: a jittered base, a 5%
/// slow tail (3x), and queueing that grows with load.
fn latency_ms(s: &Sim, in_flight: u64, u: f64, tail: f64) -> f64 {
    let jitter = 0.75 + 0.5 * u;
    let slow = if tail < 0.05 { 3.0 } else { 1.0 };
    s.base_ms * jitter * slow * (1.0 + in_flight as f64 / s.capacity)
}

async fn run(strategy: &str, shapes: &[Shape], rate_per_s: f64) -> Tally {
    let router = Arc::new(router(strategy));
    let health = Arc::new(Health::new(ResilienceConfig::default()));
    let sims = Arc::new(sims());
    let tally = Arc::new(Mutex::new(Tally::default()));
    let gap = Duration::from_secs_f64(1.0 / rate_per_s);
    let mut tasks = Vec::with_capacity(shapes.len());
    for shape in shapes.iter().copied() {
        let (router, health, sims, tally) = (
            Arc::clone(&router),
            Arc::clone(&health),
            Arc::clone(&sims),
            Arc::clone(&tally),
        );
        let strategy = strategy.to_owned();
        tasks.push(tokio::spawn(async move {
            let features = Features {
                has_tools: shape.tools,
                max_tokens: Some(shape.max_tokens),
                prompt_tokens: shape.prompt,
                ..Features::default()
            };
            let attribution = Attribution::default();
            let headers = HeaderMap::new();
            let req = RouteRequest {
                model: "x",
                op: Operation::ChatCompletions,
                features: &features,
                attribution: &attribution,
                key: "anonymous",
                headers: &headers,
            };
            let Selection::Resolved(step) = router.select(&req) else {
                return;
            };
            let decision = router
                .plan(&req, &step, &health, false)
                .unwrap_or_else(|e| panic!("{e}"));
            let started = Instant::now();
            let candidates = decision.route.candidates.clone();
            let mut violated = false;
            let mut served = false;
            for (attempt, d) in candidates.iter().take(2).enumerate() {
                let id = format!("{}/{}", d.provider.name, d.model);
                let sim = &sims[id.as_str()];
                let h = health.get(&d.provider.name, &d.model);
                if attempt == 0 {
                    // What the scored strategy promised, checked independently.
                    violated = check_violation(&strategy, &router, d, &features, &h);
                }
                let guard = InFlight::begin(Arc::clone(&h));
                let in_flight = h.stats.in_flight();
                let ms = latency_ms(
                    sim,
                    in_flight,
                    shape.draws[attempt * 3],
                    shape.draws[attempt * 3 + 1],
                );
                let fails = shape.draws[attempt * 3 + 2] < sim.error_rate;
                // A failure shows after part of the time; a success after all of it.
                let wait = if fails { ms * 0.5 } else { ms };
                tokio::time::sleep(Duration::from_secs_f64(wait / 1000.0)).await;
                let now = Instant::now();
                h.stats.record_outcome(!fails, now);
                let mut t = tally.lock();
                t.attempts += 1;
                if fails {
                    t.failed_attempts += 1;
                    drop(guard);
                    continue;
                }
                h.latency.record(Duration::from_secs_f64(ms / 1000.0));
                h.stats
                    .record_latency(Duration::from_secs_f64(ms / 1000.0), now);
                let price = router.pricing().price(d).map(|(p, _)| p);
                t.cost += price.map_or(0.0, |p| p.estimate(shape.prompt, shape.output));
                *t.by_deployment.entry(id).or_default() += 1;
                served = true;
                drop(guard);
                break;
            }
            let mut t = tally.lock();
            t.latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            if !served {
                t.failed_requests += 1;
            }
            if violated {
                t.violations += 1;
            }
        }));
        tokio::time::sleep(gap).await;
    }
    for t in tasks {
        t.await.unwrap_or_else(|e| panic!("{e}"));
    }
    Arc::try_unwrap(tally)
        .map(Mutex::into_inner)
        .unwrap_or_else(|_| panic!("tally still shared"))
}

/// Whether the first choice of the scored strategy breaks one of its constraints, judged from
/// the same facts the router had: tools support, estimated cost, observed p95.
fn check_violation(
    strategy: &str,
    router: &Router,
    d: &crate::config::Deployment,
    f: &Features,
    h: &crate::resilience::DeploymentHealth,
) -> bool {
    if strategy != "scored" {
        return false;
    }
    let no_tools = f.has_tools && router.capabilities(d).tools == Some(false);
    let cost = router.pricing().price(d).map_or(f64::INFINITY, |(p, _)| {
        p.estimate(f.prompt_tokens, f.output_tokens())
    });
    let p95 = h
        .latency
        .quantile(0.95)
        .map(|x| x.as_secs_f64() * 1000.0)
        .or(h.stats.snapshot(Instant::now()).latency_ms);
    no_tools || cost > MAX_COST || p95.is_some_and(|ms| ms > LATENCY_BUDGET_MS)
}

fn p95(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * 0.95).round() as usize]
}

#[tokio::test(start_paused = true)]
async fn scored_routing_beats_round_robin_on_cost_at_no_worse_p95_without_violations() {
    const REQUESTS: usize = 3000;
    let shapes = traffic(REQUESTS);
    let mut rows = Vec::new();
    for strategy in [
        "weighted",
        "round_robin",
        "priority",
        "least_inflight",
        "latency",
        "cheapest",
        "scored",
    ] {
        let mut t = run(strategy, &shapes, 40.0).await;
        let p = p95(&mut t.latencies);
        let err = t.failed_attempts as f64 / t.attempts as f64;
        let mut mix: Vec<_> = t.by_deployment.iter().collect();
        mix.sort();
        let mix: Vec<String> = mix
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}:{:.0}%",
                    k.split('/').nth(1).unwrap_or(k),
                    **v as f64 * 100.0 / REQUESTS as f64
                )
            })
            .collect();
        eprintln!(
            "| {strategy} | ${:.2} | {p:.0} ms | {:.1}% | {:.2}% | {} | {} |",
            t.cost,
            err * 100.0,
            t.failed_requests as f64 * 100.0 / REQUESTS as f64,
            t.violations,
            mix.join(" ")
        );
        rows.push((strategy, t.cost, p, err, t.violations));
    }
    let get = |s: &str| {
        rows.iter()
            .find(|r| r.0 == s)
            .copied()
            .unwrap_or_else(|| panic!("{s}"))
    };
    let rr = get("round_robin");
    let scored = get("scored");
    assert!(
        scored.1 < rr.1,
        "scored cost {} not below round robin {}",
        scored.1,
        rr.1
    );
    assert!(
        scored.2 <= rr.2,
        "scored p95 {} above round robin {}",
        scored.2,
        rr.2
    );
    assert_eq!(scored.4, 0, "scored routing violated a constraint");
    assert!(
        scored.3 <= rr.3,
        "scored error rate {} above round robin {}",
        scored.3,
        rr.3
    );
}
