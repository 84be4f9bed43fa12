//! Per-request Prometheus series: requests by outcome, errors by kind, tokens, cost, and latency
//! and time-to-first-token histograms per alias, provider and model.
//!
//! Every request feeds these exactly once, from the same place that writes its log line, so the
//! counters always agree with the request log. Label values come only from the config (aliases,
//! provider names, deployment models): anything else (a model reached through a `provider/model`
//! prefix or a wildcard, an unknown alias) is counted under `other`, so no client input can grow
//! the number of series.

use crate::{FastMap, FastSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use switchyard_types::openai::Usage;

/// Upper bounds (seconds) of the latency and TTFT histogram buckets. Chosen for LLM calls: a
/// cached or tiny answer takes milliseconds, a long generation minutes.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Label used for values outside the configured sets, and for "no value" (e.g. no provider
/// because the request failed before routing).
const OTHER: &str = "other";
const NONE: &str = "none";

/// The request outcomes counted, in the order of [`Series::outcomes`].
pub const OUTCOMES: [&str; 4] = ["completed", "failed", "upstream_error", "client_cancelled"];

/// What one finished request contributes to the series.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The model name the client asked for.
    pub alias: Option<&'a str>,
    /// The provider that served (or last tried) the request.
    pub provider: Option<&'a str>,
    /// The upstream model that served (or last tried) the request.
    pub model: Option<&'a str>,
    /// How the request ended, one of [`OUTCOMES`].
    pub outcome: &'static str,
    /// The error kind (`ErrorKind::as_str`), when the request failed.
    pub error_kind: Option<&'static str>,
    /// Usage reported by the provider.
    pub usage: Option<Usage>,
    /// Cost in USD, when the price is known.
    pub cost_usd: Option<f64>,
    /// Total latency in seconds.
    pub latency_s: f64,
    /// Time to first token in seconds, for answers that produced one.
    pub ttft_s: Option<f64>,
    /// What the response cache did (`Outcome::as_str`), when it applies to the request.
    pub cache: Option<&'static str>,
    /// The guardrail rules that fired: (rule, action, stage). Rule names come from the config.
    pub guardrails: &'a [GuardrailTrigger],
}

/// One guardrail rule firing on a request: the rule's configured name, `block` or `redact`,
/// `input` or `output`.
pub type GuardrailTrigger = (Arc<str>, &'static str, &'static str);

/// A fixed-bucket histogram with lock-free updates.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds, so it can be an integer atomic.
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// The counter under `key` in `map`, made on first use.
fn counter_in<K: std::hash::Hash + Eq>(
    map: &RwLock<FastMap<K, Arc<AtomicU64>>>,
    key: K,
) -> Arc<AtomicU64> {
    if let Some(c) = map.read().get(&key) {
        return Arc::clone(c);
    }
    Arc::clone(map.write().entry(key).or_default())
}

/// A counter map's values by key, in key order (for stable scrapes).
fn sorted_counts<K: Clone + Ord>(map: &RwLock<FastMap<K, Arc<AtomicU64>>>) -> Vec<(K, u64)> {
    let mut v: Vec<_> = map
        .read()
        .iter()
        .map(|(k, c)| (k.clone(), c.load(Ordering::Relaxed)))
        .collect();
    v.sort();
    v
}

/// The counters of one (alias, provider, model) combination.
#[derive(Debug, Default)]
struct Series {
    outcomes: [AtomicU64; OUTCOMES.len()],
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    cached_tokens: AtomicU64,
    /// Cost in micro-dollars (integer, so it can be atomic; sub-micro-dollar rounding is far
    /// below any price's precision).
    cost_micro_usd: AtomicU64,
    /// Requests whose cost could not be computed (no known price).
    cost_unknown: AtomicU64,
    latency: Histogram,
    ttft: Histogram,
}

type Key = (Arc<str>, Arc<str>, Arc<str>);
/// (alias label, error kind).
type ErrorKey = (Arc<str>, &'static str);

/// The configured names that may appear as label values.
#[derive(Debug, Default)]
struct Known {
    aliases: FastSet<Arc<str>>,
    providers: FastSet<Arc<str>>,
    models: FastSet<Arc<str>>,
}

/// The request series of one gateway, shared by every worker.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    known: RwLock<Known>,
    series: RwLock<FastMap<Key, Arc<Series>>>,
    /// Errors by (alias, error kind).
    errors: RwLock<FastMap<ErrorKey, Arc<AtomicU64>>>,
    /// Cache results by (alias, result).
    cache: RwLock<FastMap<ErrorKey, Arc<AtomicU64>>>,
    /// Guardrail triggers by (rule, action, stage).
    guardrails: RwLock<FastMap<GuardrailTrigger, Arc<AtomicU64>>>,
}

impl RequestMetrics {
    /// Registry whose label values are limited to the given configured names.
    pub fn new<'a>(
        aliases: impl IntoIterator<Item = &'a str>,
        deployments: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let m = Self::default();
        m.set_known(aliases, deployments);
        m
    }

    /// Replaces the configured names (after a config reload). Series already counted stay.
    pub fn set_known<'a>(
        &self,
        aliases: impl IntoIterator<Item = &'a str>,
        deployments: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        let mut known = Known {
            aliases: aliases.into_iter().map(Arc::from).collect(),
            ..Known::default()
        };
        for (p, m) in deployments {
            known.providers.insert(Arc::from(p));
            known.models.insert(Arc::from(m));
        }
        *self.known.write() = known;
    }

    /// Counts one finished request.
    pub fn observe(&self, o: &Observation<'_>) {
        let key = {
            let known = self.known.read();
            let bound = |v: Option<&str>, set: &FastSet<Arc<str>>| -> Arc<str> {
                match v {
                    None => Arc::from(NONE),
                    Some(v) => set.get(v).cloned().unwrap_or_else(|| Arc::from(OTHER)),
                }
            };
            (
                bound(o.alias, &known.aliases),
                bound(o.provider, &known.providers),
                bound(o.model, &known.models),
            )
        };
        if let Some(kind) = o.error_kind {
            counter_in(&self.errors, (Arc::clone(&key.0), kind)).fetch_add(1, Ordering::Relaxed);
        }
        if let Some(result) = o.cache {
            counter_in(&self.cache, (Arc::clone(&key.0), result)).fetch_add(1, Ordering::Relaxed);
        }
        for trigger in o.guardrails {
            counter_in(&self.guardrails, trigger.clone()).fetch_add(1, Ordering::Relaxed);
        }
        let series = self.series_for(key);
        if let Some(c) = OUTCOMES
            .iter()
            .position(|n| *n == o.outcome)
            .and_then(|i| series.outcomes.get(i))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(u) = o.usage {
            series
                .prompt_tokens
                .fetch_add(u.prompt_tokens, Ordering::Relaxed);
            series
                .completion_tokens
                .fetch_add(u.completion_tokens, Ordering::Relaxed);
            series
                .cached_tokens
                .fetch_add(u.cached_tokens, Ordering::Relaxed);
            match o.cost_usd {
                Some(c) => {
                    series
                        .cost_micro_usd
                        .fetch_add((c.max(0.0) * 1e6).round() as u64, Ordering::Relaxed);
                }
                None => {
                    series.cost_unknown.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        series.latency.observe(o.latency_s);
        if let Some(t) = o.ttft_s {
            series.ttft.observe(t);
        }
    }

    fn series_for(&self, key: Key) -> Arc<Series> {
        if let Some(s) = self.series.read().get(&key) {
            return Arc::clone(s);
        }
        Arc::clone(self.series.write().entry(key).or_default())
    }

    /// Appends the request families in Prometheus' text format.
    pub fn render(&self, out: &mut String) {
        let mut series: Vec<(Key, Arc<Series>)> = self
            .series
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        let labels = |k: &Key| {
            format!(
                "alias=\"{}\",provider=\"{}\",model=\"{}\"",
                super::escape_label(&k.0),
                super::escape_label(&k.1),
                super::escape_label(&k.2)
            )
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);

        header(
            out,
            "switchyard_requests_total",
            "counter",
            "Finished requests by outcome.",
        );
        for (k, s) in &series {
            for (name, c) in OUTCOMES.iter().zip(&s.outcomes) {
                let _ = writeln!(
                    out,
                    "switchyard_requests_total{{{},outcome=\"{name}\"}} {}",
                    labels(k),
                    load(c)
                );
            }
        }

        header(
            out,
            "switchyard_request_errors_total",
            "counter",
            "Failed requests by alias and normalised error kind.",
        );
        for ((alias, kind), n) in sorted_counts(&self.errors) {
            let _ = writeln!(
                out,
                "switchyard_request_errors_total{{alias=\"{}\",kind=\"{kind}\"}} {n}",
                super::escape_label(&alias)
            );
        }

        header(
            out,
            "switchyard_cache_requests_total",
            "counter",
            "Requests the response cache applied to, by alias and result (hit, miss, refresh, \
             bypass, uncacheable).",
        );
        for ((alias, result), n) in sorted_counts(&self.cache) {
            let _ = writeln!(
                out,
                "switchyard_cache_requests_total{{alias=\"{}\",result=\"{result}\"}} {n}",
                super::escape_label(&alias)
            );
        }

        header(
            out,
            "switchyard_guardrail_triggers_total",
            "counter",
            "Guardrail rules that fired, by rule, action (block, redact) and stage (input, output).",
        );
        for ((rule, action, stage), n) in sorted_counts(&self.guardrails) {
            let _ = writeln!(
                out,
                "switchyard_guardrail_triggers_total{{rule=\"{}\",action=\"{action}\",stage=\"{stage}\"}} {n}",
                super::escape_label(&rule)
            );
        }

        header(
            out,
            "switchyard_tokens_total",
            "counter",
            "Tokens reported by providers: prompt (cached included), completion, cached.",
        );
        for (k, s) in &series {
            for (kind, c) in [
                ("prompt", &s.prompt_tokens),
                ("completion", &s.completion_tokens),
                ("cached", &s.cached_tokens),
            ] {
                let _ = writeln!(
                    out,
                    "switchyard_tokens_total{{{},type=\"{kind}\"}} {}",
                    labels(k),
                    load(c)
                );
            }
        }

        header(
            out,
            "switchyard_cost_usd_total",
            "counter",
            "Cost of requests with a known price, in US dollars.",
        );
        for (k, s) in &series {
            let usd = load(&s.cost_micro_usd) as f64 / 1e6;
            let _ = writeln!(out, "switchyard_cost_usd_total{{{}}} {usd}", labels(k));
        }
        header(
            out,
            "switchyard_cost_unknown_total",
            "counter",
            "Requests with usage but no known price (their cost is not in the total).",
        );
        for (k, s) in &series {
            let _ = writeln!(
                out,
                "switchyard_cost_unknown_total{{{}}} {}",
                labels(k),
                load(&s.cost_unknown)
            );
        }

        header(
            out,
            "switchyard_request_duration_seconds",
            "histogram",
            "Total request latency as the client saw it (streams: until the last byte).",
        );
        for (k, s) in &series {
            s.latency
                .render(out, "switchyard_request_duration_seconds", &labels(k));
        }
        header(
            out,
            "switchyard_time_to_first_token_seconds",
            "histogram",
            "Time until the first byte of the answer was ready for the client.",
        );
        for (k, s) in &series {
            s.ttft
                .render(out, "switchyard_time_to_first_token_seconds", &labels(k));
        }
    }
}

use super::family_header as header;

#[cfg(test)]
mod tests;
