//! The `routing:` block of an alias, `price:` / `quality:` of a deployment: raw form and
//! validation into [`crate::routing::policy`] types. Kept apart from `raw.rs` and
//! `validate.rs` because it is one feature's whole configuration surface.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::locate::Seg;
use super::raw::{DurationStr, RawConfig};
use super::validate::Validator;
use crate::pricing::Price;
use crate::routing::policy::{
    Action, AliasPolicy, Capability, Classifier, Constraints, Judge, Label, Match, Range,
    RoutingConfig, Rule, ScoreWeights, SplitArm, Strategy, DEFAULT_QUOTA_RESERVE,
};

/// `models.<alias>.routing:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    /// How deployments are ordered (default `weighted`).
    pub strategy: Option<Strategy>,
    /// Weights of the `scored` strategy.
    pub weights: Option<RawWeights>,
    /// Hard constraints on every deployment chosen.
    pub constraints: Option<RawConstraints>,
    /// Conditional rules, first match wins.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// Route by prompt label.
    pub classifier: Option<RawClassifier>,
    /// Share of each provider limit the `quota` strategy leaves unused (default 0.02).
    pub quota_reserve: Option<f64>,
}

/// `routing.weights:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeights {
    /// Weight of the estimated cost.
    pub cost: Option<f64>,
    /// Weight of the p95 latency.
    pub latency: Option<f64>,
    /// Weight of the recent error rate.
    pub errors: Option<f64>,
    /// Weight of the quality tier.
    pub quality: Option<f64>,
}

/// `routing.constraints:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConstraints {
    /// Longest acceptable p95 time to response headers.
    pub latency_budget: Option<DurationStr>,
    /// Highest acceptable estimated cost per request, USD.
    pub max_cost: Option<f64>,
    /// Capabilities every chosen deployment must have.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// One entry of `routing.rules:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Shown in the route header.
    pub name: String,
    /// Conditions (all must hold; none means always).
    #[serde(default)]
    pub when: RawWhen,
    /// Serve from this alias instead.
    pub alias: Option<String>,
    /// Keep only these deployments (`provider/model`).
    pub deployments: Option<Vec<String>>,
    /// Sticky percentage split between aliases.
    pub split: Option<Vec<RawSplit>>,
}

/// `rules[].when:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWhen {
    /// Virtual key names.
    #[serde(default)]
    pub key: Vec<String>,
    /// Teams.
    #[serde(default)]
    pub team: Vec<String>,
    /// End users.
    #[serde(default)]
    pub user: Vec<String>,
    /// Tags and their values.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Headers and their values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Whether the request offers tools.
    pub has_tools: Option<bool>,
    /// Whether it carries images.
    pub has_images: Option<bool>,
    /// Whether it streams.
    pub stream: Option<bool>,
    /// Estimated prompt tokens.
    pub prompt_tokens: Option<RawRange>,
    /// The requested completion cap.
    pub max_tokens: Option<RawRange>,
}

/// `{min, max}` bounds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRange {
    /// Inclusive lower bound.
    pub min: Option<u64>,
    /// Inclusive upper bound.
    pub max: Option<u64>,
}

/// One arm of `rules[].split:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSplit {
    /// Target alias.
    pub alias: String,
    /// Share in percent.
    pub percent: f64,
}

/// `routing.classifier:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClassifier {
    /// Label (`simple`, `complex`, `code`) → alias.
    pub labels: BTreeMap<String, String>,
    /// The label used when classification fails.
    pub default: String,
    /// A model that labels prompts (else the heuristic does).
    pub judge: Option<RawJudge>,
    /// Heuristic: estimated prompt tokens from which a prompt is `complex` (default 1500).
    pub complex_prompt_tokens: Option<u64>,
}

/// `routing.classifier.judge:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJudge {
    /// The alias of the judging model.
    pub model: String,
    /// How long to wait for it (default 2s).
    pub timeout: Option<DurationStr>,
    /// Labels remembered (default 256).
    pub cache_size: Option<usize>,
}

/// `deployments[].price:`, USD per million tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    /// Uncached prompt tokens.
    pub input: f64,
    /// Completion tokens.
    pub output: f64,
    /// Prompt tokens read from cache (default: `input`).
    pub cached_input: Option<f64>,
    /// Prompt tokens written to cache (default: `input`).
    pub cache_write: Option<f64>,
}

const DEFAULT_JUDGE_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_JUDGE_CACHE: usize = 256;
const DEFAULT_COMPLEX_TOKENS: u64 = 1500;

fn key(s: &str) -> Seg {
    Seg::Key(s.to_owned())
}

fn path(base: &[Seg], more: &[Seg]) -> Vec<Seg> {
    let mut p = base.to_vec();
    p.extend_from_slice(more);
    p
}

impl Validator<'_> {
    /// The routing settings of every alias and deployment.
    pub(super) fn routing(&mut self, raw: &RawConfig) -> RoutingConfig {
        let mut out = RoutingConfig::default();
        let mut seen_price: HashMap<String, (Price, String)> = HashMap::new();
        let mut seen_quality: HashMap<String, (u8, String)> = HashMap::new();
        for (alias, m) in &raw.models {
            for (i, d) in m.deployments.iter().enumerate() {
                let at = [key("models"), key(alias), key("deployments"), Seg::Index(i)];
                let id = format!("{}/{}", d.provider, d.model);
                let here = format!("models.{alias}.deployments[{i}]");
                if let Some(p) = &d.price {
                    let price = Price {
                        input: p.input,
                        output: p.output,
                        cached_input: p.cached_input.unwrap_or(p.input),
                        cache_write: p.cache_write.unwrap_or(p.input),
                    };
                    for (name, v) in [
                        ("input", price.input),
                        ("output", price.output),
                        ("cached_input", price.cached_input),
                        ("cache_write", price.cache_write),
                    ] {
                        if !(v.is_finite() && v >= 0.0) {
                            self.problem(
                                &path(&at, &[key("price"), key(name)]),
                                "must be a non-negative number (USD per million tokens)",
                            );
                        }
                    }
                    match seen_price.get(&id) {
                        Some((other, there)) if *other != price => self.problem(
                            &path(&at, &[key("price")]),
                            format!("`{id}` already has a different price at `{there}`"),
                        ),
                        _ => {
                            seen_price.insert(id.clone(), (price, here.clone()));
                            out.prices.insert(id.clone(), price);
                        }
                    }
                }
                if let Some(q) = d.quality {
                    if !(1..=5).contains(&q) {
                        self.problem(&path(&at, &[key("quality")]), "must be between 1 and 5");
                    }
                    match seen_quality.get(&id) {
                        Some((other, there)) if *other != q => self.problem(
                            &path(&at, &[key("quality")]),
                            format!("`{id}` already has quality {other} at `{there}`"),
                        ),
                        _ => {
                            seen_quality.insert(id.clone(), (q, here));
                            out.quality.insert(id, q);
                        }
                    }
                }
            }
            let at = [key("models"), key(alias)];
            match &m.routing {
                Some(r) => {
                    let policy = self.policy(alias, r, raw);
                    // The raw classifier counts even when invalid: its own problems say why.
                    let routes_elsewhere = r.classifier.is_some()
                        || policy.rules.iter().any(|r| {
                            r.when.is_empty() && !matches!(r.action, Action::Deployments(_))
                        });
                    if m.deployments.is_empty() && !routes_elsewhere {
                        self.problem(
                            &path(&at, &[key("deployments")]),
                            "needs at least one deployment (or a `routing.classifier`, or a rule \
                             without `when` that picks an alias or split)",
                        );
                    }
                    out.policies.insert(alias.clone(), policy);
                }
                None if m.deployments.is_empty() => {
                    self.problem(
                        &path(&at, &[key("deployments")]),
                        "needs at least one deployment",
                    );
                }
                None => {}
            }
        }
        out
    }

    /// Whether `target` may be routed to from alias `from` (exists, is not `from`, and has
    /// deployments of its own, because the target's rules and classifier do not run again).
    fn target_alias(&mut self, at: &[Seg], from: &str, target: &str, raw: &RawConfig) {
        match raw.models.get(target) {
            _ if target == from => self.problem(at, "an alias cannot route to itself"),
            None => {
                let known: Vec<&str> = raw.models.keys().map(String::as_str).collect();
                self.problem(
                    at,
                    format!("unknown alias `{target}`; aliases: {}", known.join(", ")),
                );
            }
            Some(t) if t.deployments.is_empty() => self.problem(
                at,
                format!(
                    "alias `{target}` has no deployments of its own (routing goes one hop: the \
                     target's rules and classifier do not run)"
                ),
            ),
            Some(_) => {}
        }
    }

    fn policy(&mut self, alias: &str, r: &RawRouting, raw: &RawConfig) -> AliasPolicy {
        let at = [key("models"), key(alias), key("routing")];
        let d = ScoreWeights::default();
        let weights = r.weights.as_ref().map_or(d, |w| ScoreWeights {
            cost: w.cost.unwrap_or(d.cost),
            latency: w.latency.unwrap_or(d.latency),
            errors: w.errors.unwrap_or(d.errors),
            quality: w.quality.unwrap_or(d.quality),
        });
        for (name, v) in [
            ("cost", weights.cost),
            ("latency", weights.latency),
            ("errors", weights.errors),
            ("quality", weights.quality),
        ] {
            if !(v.is_finite() && (0.0..=1000.0).contains(&v)) {
                self.problem(
                    &path(&at, &[key("weights"), key(name)]),
                    "must be a number between 0 and 1000",
                );
            }
        }
        if r.weights.is_some()
            && weights.cost + weights.latency + weights.errors + weights.quality <= 0.0
        {
            self.problem(
                &path(&at, &[key("weights")]),
                "at least one weight must be above 0",
            );
        }
        let strategy = r.strategy.unwrap_or_default();
        if r.weights.is_some() && strategy != Strategy::Scored {
            self.problem(
                &path(&at, &[key("weights")]),
                "only the `scored` strategy uses weights",
            );
        }
        let constraints = r
            .constraints
            .as_ref()
            .map(|c| self.constraints(&path(&at, &[key("constraints")]), c))
            .unwrap_or_default();
        let quota_reserve = r.quota_reserve.unwrap_or(DEFAULT_QUOTA_RESERVE);
        if !(0.0..=0.5).contains(&quota_reserve) {
            self.problem(
                &path(&at, &[key("quota_reserve")]),
                "must be between 0 and 0.5 (a share of each provider limit)",
            );
        }
        let mut rules = Vec::new();
        for (i, rule) in r.rules.iter().enumerate() {
            let rat = path(&at, &[key("rules"), Seg::Index(i)]);
            if rule.name.trim().is_empty()
                || !rule
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                self.problem(
                    &path(&rat, &[key("name")]),
                    "rule names are 1 or more of letters, digits, `-`, `_` and `.`",
                );
            }
            if r.rules[..i].iter().any(|o| o.name == rule.name) {
                self.problem(
                    &path(&rat, &[key("name")]),
                    format!("duplicate rule name `{}`", rule.name),
                );
            }
            let when = self.when(&path(&rat, &[key("when")]), &rule.when);
            let action = match (&rule.alias, &rule.deployments, &rule.split) {
                (Some(a), None, None) => {
                    self.target_alias(&path(&rat, &[key("alias")]), alias, a, raw);
                    Action::Alias(a.clone())
                }
                (None, Some(ds), None) => {
                    let own: Vec<String> = raw.models.get(alias).map_or(Vec::new(), |m| {
                        m.deployments
                            .iter()
                            .map(|d| format!("{}/{}", d.provider, d.model))
                            .collect()
                    });
                    if ds.is_empty() {
                        self.problem(&path(&rat, &[key("deployments")]), "must not be empty");
                    }
                    for (j, d) in ds.iter().enumerate() {
                        if !own.contains(d) {
                            self.problem(
                                &path(&rat, &[key("deployments"), Seg::Index(j)]),
                                format!(
                                    "`{d}` is not a deployment of `{alias}`; its deployments: {}",
                                    own.join(", ")
                                ),
                            );
                        }
                    }
                    Action::Deployments(ds.clone())
                }
                (None, None, Some(arms)) => {
                    let sat = path(&rat, &[key("split")]);
                    let mut total = 0.0;
                    for (j, arm) in arms.iter().enumerate() {
                        self.target_alias(
                            &path(&sat, &[Seg::Index(j), key("alias")]),
                            alias,
                            &arm.alias,
                            raw,
                        );
                        if !(arm.percent.is_finite() && arm.percent > 0.0) {
                            self.problem(
                                &path(&sat, &[Seg::Index(j), key("percent")]),
                                "must be above 0",
                            );
                        }
                        total += arm.percent;
                    }
                    if arms.is_empty() || (total - 100.0).abs() > 0.001 {
                        self.problem(
                            &sat,
                            format!("the percents must add up to 100 (they add up to {total})"),
                        );
                    }
                    Action::Split(
                        arms.iter()
                            .map(|a| SplitArm {
                                alias: a.alias.clone(),
                                percent: a.percent,
                            })
                            .collect(),
                    )
                }
                _ => {
                    self.problem(&rat, "set exactly one of `alias`, `deployments` or `split`");
                    Action::Deployments(Vec::new())
                }
            };
            rules.push(Rule {
                name: Arc::from(rule.name.as_str()),
                when,
                action,
            });
        }
        let classifier = r
            .classifier
            .as_ref()
            .and_then(|c| self.classifier(alias, &path(&at, &[key("classifier")]), c, raw));
        AliasPolicy {
            strategy,
            weights,
            constraints,
            rules,
            classifier: classifier.map(Arc::new),
            quota_reserve,
        }
    }

    fn constraints(&mut self, at: &[Seg], c: &RawConstraints) -> Constraints {
        if c.latency_budget.is_some_and(|d| d.0.is_zero()) {
            self.problem(&path(at, &[key("latency_budget")]), "must be longer than 0");
        }
        if c.max_cost.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            self.problem(
                &path(at, &[key("max_cost")]),
                "must be a positive number of USD per request",
            );
        }
        let mut capabilities = Vec::new();
        for (i, name) in c.capabilities.iter().enumerate() {
            match Capability::parse(name) {
                Some(cap) => capabilities.push(cap),
                None => self.problem(
                    &path(at, &[key("capabilities"), Seg::Index(i)]),
                    format!("unknown capability `{name}`; expected tools, vision or json_schema"),
                ),
            }
        }
        Constraints {
            latency_budget: c.latency_budget.map(|d| d.0),
            max_cost: c.max_cost,
            capabilities,
        }
    }

    fn when(&mut self, at: &[Seg], w: &RawWhen) -> Match {
        let mut headers = Vec::new();
        for (name, value) in &w.headers {
            match http::HeaderName::from_bytes(name.as_bytes()) {
                Ok(h) => headers.push((h, value.clone())),
                Err(_) => self.problem(
                    &path(at, &[key("headers"), key(name)]),
                    "is not a valid HTTP header name",
                ),
            }
        }
        let mut range = |name: &str, r: &Option<RawRange>| {
            let r = r.as_ref()?;
            if r.min.is_none() && r.max.is_none() {
                self.problem(&path(at, &[key(name)]), "set `min`, `max` or both");
            }
            if let (Some(lo), Some(hi)) = (r.min, r.max) {
                if lo > hi {
                    self.problem(&path(at, &[key(name), key("min")]), "is larger than `max`");
                }
            }
            Some(Range {
                min: r.min,
                max: r.max,
            })
        };
        let prompt_tokens = range("prompt_tokens", &w.prompt_tokens);
        let max_tokens = range("max_tokens", &w.max_tokens);
        Match {
            keys: w.key.clone(),
            teams: w.team.clone(),
            users: w.user.clone(),
            tags: w.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            headers,
            has_tools: w.has_tools,
            has_images: w.has_images,
            stream: w.stream,
            prompt_tokens,
            max_tokens,
        }
    }

    fn classifier(
        &mut self,
        alias: &str,
        at: &[Seg],
        c: &RawClassifier,
        raw: &RawConfig,
    ) -> Option<Classifier> {
        let before = self.problem_count();
        let mut labels = BTreeMap::new();
        if c.labels.is_empty() {
            self.problem(
                &path(at, &[key("labels")]),
                "map at least one label (simple, complex, code) to an alias",
            );
        }
        for (name, target) in &c.labels {
            let lat = path(at, &[key("labels"), key(name)]);
            match Label::parse(name) {
                Some(l) => {
                    self.target_alias(&lat, alias, target, raw);
                    labels.insert(l, target.clone());
                }
                None => self.problem(
                    &lat,
                    format!("unknown label `{name}`; labels are simple, complex and code"),
                ),
            }
        }
        let default = match Label::parse(&c.default) {
            Some(l) if labels.contains_key(&l) => Some(l),
            Some(_) => {
                self.problem(
                    &path(at, &[key("default")]),
                    format!("label `{}` is not mapped in `labels`", c.default),
                );
                None
            }
            None => {
                self.problem(
                    &path(at, &[key("default")]),
                    format!(
                        "unknown label `{}`; labels are simple, complex and code",
                        c.default
                    ),
                );
                None
            }
        };
        let judge = c.judge.as_ref().map(|j| {
            let jat = path(at, &[key("judge")]);
            self.target_alias(&path(&jat, &[key("model")]), alias, &j.model, raw);
            if raw
                .models
                .get(&j.model)
                .and_then(|m| m.routing.as_ref())
                .is_some_and(|r| r.classifier.is_some())
            {
                self.problem(
                    &path(&jat, &[key("model")]),
                    format!(
                        "the judge alias `{}` must not classify prompts itself",
                        j.model
                    ),
                );
            }
            let timeout = j.timeout.map_or(DEFAULT_JUDGE_TIMEOUT, |t| t.0);
            if timeout.is_zero() {
                self.problem(&path(&jat, &[key("timeout")]), "must be longer than 0");
            }
            let cache_size = j.cache_size.unwrap_or(DEFAULT_JUDGE_CACHE);
            if cache_size > 100_000 {
                self.problem(&path(&jat, &[key("cache_size")]), "must be at most 100000");
            }
            Judge {
                alias: j.model.clone(),
                timeout,
                cache_size,
            }
        });
        if self.problem_count() > before {
            return None;
        }
        Some(Classifier {
            labels,
            default: default?,
            judge,
            complex_prompt_tokens: c.complex_prompt_tokens.unwrap_or(DEFAULT_COMPLEX_TOKENS),
        })
    }
}
