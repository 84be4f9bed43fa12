//! Validated routing policy of each alias: strategy, score weights, hard constraints,
//! conditional rules and the prompt classifier (see `docs/routing.md`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;

use crate::pricing::Price;

/// How an alias orders its deployments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Random, in proportion to `weight` (the default).
    #[default]
    Weighted,
    /// Config order: the first healthy deployment serves, the rest are standbys.
    Priority,
    /// Each deployment in turn.
    RoundRobin,
    /// The one with the fewest requests in flight.
    LeastInflight,
    /// Power of two choices over the decaying latency estimate times (in flight + 1).
    Latency,
    /// The lowest estimated cost for this request (price × estimated tokens).
    Cheapest,
    /// Steer away from deployments whose provider quota is running out.
    Quota,
    /// The lowest weighted score over cost, p95 latency, error rate and quality.
    Scored,
}

impl Strategy {
    /// The name used in config, headers and explanations.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weighted => "weighted",
            Self::Priority => "priority",
            Self::RoundRobin => "round_robin",
            Self::LeastInflight => "least_inflight",
            Self::Latency => "latency",
            Self::Cheapest => "cheapest",
            Self::Quota => "quota",
            Self::Scored => "scored",
        }
    }
}

/// Weights of the scored strategy; each term is normalised to 0..1 (lower is better).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreWeights {
    /// Estimated cost relative to the most expensive candidate.
    pub cost: f64,
    /// p95 latency relative to the slowest candidate.
    pub latency: f64,
    /// Recent error rate.
    pub errors: f64,
    /// Quality tier below the best (tier 5).
    pub quality: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        Self {
            cost: 1.0,
            latency: 1.0,
            errors: 2.0,
            quality: 0.5,
        }
    }
}

/// A capability a constraint can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Tool calling.
    Tools,
    /// Image inputs.
    Vision,
    /// JSON-schema output.
    JsonSchema,
}

impl Capability {
    /// Config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Vision => "vision",
            Self::JsonSchema => "json_schema",
        }
    }

    /// Parses a config name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Tools, Self::Vision, Self::JsonSchema]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// Hard constraints: a deployment that violates one is never chosen for the request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraints {
    /// Its p95 time to response headers (else its estimate) must be within this.
    pub latency_budget: Option<Duration>,
    /// The request's estimated cost there must be at most this many USD.
    pub max_cost: Option<f64>,
    /// Capabilities required of every deployment, whatever the request needs.
    pub capabilities: Vec<Capability>,
}

impl Constraints {
    /// Whether any constraint is configured.
    pub fn any(&self) -> bool {
        self.latency_budget.is_some() || self.max_cost.is_some() || !self.capabilities.is_empty()
    }
}

/// An inclusive range over a request number; open ends are `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    /// Smallest value that matches.
    pub min: Option<u64>,
    /// Largest value that matches.
    pub max: Option<u64>,
}

impl Range {
    /// Whether `v` is inside.
    pub fn contains(&self, v: u64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

/// The conditions of a rule; all that are set must hold (a list matches any of its values).
#[derive(Debug, Clone, Default)]
pub struct Match {
    /// Virtual key names (`master` for the master key, `anonymous` without auth).
    pub keys: Vec<String>,
    /// Teams (from the virtual key's `team:`).
    pub teams: Vec<String>,
    /// End users.
    pub users: Vec<String>,
    /// Tags that must be present with these values.
    pub tags: Vec<(String, String)>,
    /// Request headers that must be present with these values.
    pub headers: Vec<(HeaderName, String)>,
    /// Whether the request offers tools.
    pub has_tools: Option<bool>,
    /// Whether it carries images.
    pub has_images: Option<bool>,
    /// Whether it streams.
    pub stream: Option<bool>,
    /// Estimated prompt tokens.
    pub prompt_tokens: Option<Range>,
    /// The requested completion cap (a request without one does not match a range).
    pub max_tokens: Option<Range>,
}

impl Match {
    /// Whether no condition is set (the rule always applies).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
            && self.teams.is_empty()
            && self.users.is_empty()
            && self.tags.is_empty()
            && self.headers.is_empty()
            && self.has_tools.is_none()
            && self.has_images.is_none()
            && self.stream.is_none()
            && self.prompt_tokens.is_none()
            && self.max_tokens.is_none()
    }
}

/// One branch of a percentage split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitArm {
    /// The alias this share goes to.
    pub alias: String,
    /// Its share, in percent.
    pub percent: f64,
}

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Serve the request from another alias (its strategy applies; its rules do not).
    Alias(String),
    /// Keep only these deployments (`provider/model`) of this alias.
    Deployments(Vec<String>),
    /// Send each user to one alias by percentage, the same one every time (sticky by a hash of
    /// the user id, else of the key name).
    Split(Vec<SplitArm>),
}

/// A conditional routing rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name, shown in the route header and explanations.
    pub name: Arc<str>,
    /// When it applies.
    pub when: Match,
    /// What it does.
    pub action: Action,
}

/// A prompt label of the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Label {
    /// Short, plain requests a small model answers well.
    Simple,
    /// Long, multi-step or analytical requests.
    Complex,
    /// Requests about source code.
    Code,
}

impl Label {
    /// Every label.
    pub const ALL: [Label; 3] = [Label::Simple, Label::Complex, Label::Code];

    /// Config and header name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Simple => "simple",
            Self::Complex => "complex",
            Self::Code => "code",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// A cheap model, called through the gateway, that labels prompts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judge {
    /// The alias to ask.
    pub alias: String,
    /// How long to wait before using the default label.
    pub timeout: Duration,
    /// Labels remembered (by prompt hash), so a repeated prompt is not judged twice.
    pub cache_size: usize,
}

/// Labels prompts and maps labels to aliases.
#[derive(Debug, Clone)]
pub struct Classifier {
    /// Where each label goes.
    pub labels: BTreeMap<Label, String>,
    /// The label when classification fails (judge timeout or error, unmapped label).
    pub default: Label,
    /// The model judge; without one the zero-cost heuristic labels.
    pub judge: Option<Judge>,
    /// Estimated prompt tokens from which the heuristic says `complex`.
    pub complex_prompt_tokens: u64,
}

impl Classifier {
    /// The alias for `label`, or for the default label when `label` is not mapped.
    pub fn alias_for(&self, label: Label) -> (Label, &str) {
        match self.labels.get(&label) {
            Some(a) => (label, a),
            None => (
                self.default,
                self.labels.get(&self.default).map_or("", String::as_str),
            ),
        }
    }
}

/// The routing policy of one alias.
#[derive(Debug, Clone, Default)]
pub struct AliasPolicy {
    /// How deployments are ordered.
    pub strategy: Strategy,
    /// Weights of the scored strategy.
    pub weights: ScoreWeights,
    /// Hard constraints.
    pub constraints: Constraints,
    /// Rules, first match wins, evaluated before the classifier and the strategy.
    pub rules: Vec<Rule>,
    /// The prompt classifier, when the alias routes by label.
    pub classifier: Option<Arc<Classifier>>,
    /// Share of each provider limit kept unused by quota-aware ordering.
    pub quota_reserve: f64,
}

/// Default share of a provider's limits the quota-aware strategy leaves unused.
pub const DEFAULT_QUOTA_RESERVE: f64 = 0.02;

/// Routing settings of a whole config.
#[derive(Debug, Clone, Default)]
pub struct RoutingConfig {
    /// Policies by alias (aliases without a `routing:` block have none: weighted order).
    pub policies: BTreeMap<String, AliasPolicy>,
    /// Deployment prices from config, keyed `provider/model`.
    pub prices: HashMap<String, Price>,
    /// Quality tiers (1 to 5) from config, keyed `provider/model`.
    pub quality: HashMap<String, u8>,
}

/// Quality tier of deployments that set none.
pub const DEFAULT_QUALITY: u8 = 3;
