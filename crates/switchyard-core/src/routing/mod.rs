//! Model name → ordered candidate deployments.
//!
//! A client's `model` is resolved in this order:
//! 1. an alias from `models:` (explicit config always wins);
//! 2. `<provider>/<model>`, naming a configured provider directly (this is how providers picked up
//!    from the environment are used without writing a config);
//! 3. a `wildcards:` pattern (`wildcard.rs`).
//!
//! The result is an ordered list: the first candidate is the first choice, the rest are where
//! failover goes. [`Router::route`] resolves a name and orders by weighted shuffle; an alias
//! with a `routing:` policy is then planned by [`Router::plan`] (`plan.rs`): its rules, its
//! classifier's label, hard constraints and its strategy (see `docs/routing.md`).

pub mod classify;
pub mod estimate;
mod plan;
pub mod policy;
pub mod stats;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use plan::{Candidate, Check, Decision, RouteRequest, Score, Selection, Step};

use crate::capabilities::{Capabilities, CapabilityTable};
use crate::config::{Deployment, Fallback, ModelAlias, ProviderConfig, Timeouts};
use crate::error::GatewayError;
use crate::pricing::Pricing;

mod wildcard;

/// Resolves model names to deployments.
#[derive(Debug)]
pub struct Router {
    aliases: BTreeMap<String, ModelAlias>,
    providers: BTreeMap<String, Arc<ProviderConfig>>,
    capabilities: CapabilityTable,
    /// Timeouts of deployments named as `provider/model` (aliases carry their own).
    timeouts: Timeouts,
    rng: AtomicU64,
    /// Routing policies, prices, quality tiers and their per-alias runtime state.
    policies: plan::Policies,
    /// Model-name patterns, tried after aliases and `<provider>/<model>` (see `wildcard.rs`).
    wildcards: wildcard::Wildcards,
}

/// The outcome of routing one request.
#[derive(Debug, Clone)]
pub struct Route {
    /// Candidates, best first.
    pub candidates: Vec<Deployment>,
    /// How the choice was made, for the explanation header.
    pub rule: &'static str,
    /// Where to go when every candidate failed (the alias's fallbacks).
    pub fallbacks: Vec<Fallback>,
    /// The alias's hedging delay, if it hedges.
    pub hedge: Option<crate::resilience::HedgeDelay>,
    /// The alias's answer for when nothing could serve the request.
    pub degrade: Option<Arc<str>>,
    /// Whether a broken stream continues on another deployment.
    pub stream_resume: bool,
}

impl Router {
    /// Builds a router over validated aliases and providers.
    pub fn new(
        aliases: BTreeMap<String, ModelAlias>,
        providers: BTreeMap<String, Arc<ProviderConfig>>,
        timeouts: Timeouts,
    ) -> Self {
        let seed = uuid::Uuid::now_v7().as_u128() as u64 | 1;
        Self {
            aliases,
            providers,
            capabilities: CapabilityTable::default(),
            timeouts,
            rng: AtomicU64::new(seed),
            policies: plan::Policies::default(),
            wildcards: wildcard::Wildcards::default(),
        }
    }

    /// Uses `cfg` for the aliases' routing policies, prices and quality tiers. The built-in
    /// prices of the aliases' models are looked up here, once, not per request.
    pub fn with_routing(mut self, cfg: policy::RoutingConfig) -> Self {
        self.policies = plan::Policies::new(cfg);
        let models = self
            .aliases
            .values()
            .flat_map(|a| a.deployments.iter().map(|d| &*d.model));
        self.policies.pricing.prime(models);
        self
    }

    /// Starts the random draws (weighted order, power of two choices, jitter) from `seed`, so
    /// tests and simulations are repeatable.
    pub fn with_seed(self, seed: u64) -> Self {
        self.rng.store(seed | 1, Ordering::Relaxed);
        self
    }

    /// The prices of this gateway's deployments (config overrides over the built-in table).
    pub fn pricing(&self) -> &Pricing {
        &self.policies.pricing
    }

    /// Uses `table` for the capability records of deployments.
    pub fn with_capabilities(mut self, table: CapabilityTable) -> Self {
        self.capabilities = table;
        self
    }

    /// The capability record of a deployment.
    pub fn capabilities(&self, d: &Deployment) -> Capabilities {
        self.capabilities.get(&d.provider.name, &d.model)
    }

    /// Alias names, sorted, for `/v1/models` and error messages.
    pub fn alias_names(&self) -> impl Iterator<Item = &str> {
        self.aliases.keys().map(String::as_str)
    }

    /// Resolves `model` to ordered candidates, or says which models exist.
    pub fn route(&self, model: &str) -> Result<Route, GatewayError> {
        if let Some(alias) = self.aliases.get(model) {
            let candidates = self.weighted_order(&alias.deployments);
            let rule = if alias.deployments.len() > 1 {
                "alias:weighted"
            } else {
                "alias"
            };
            return Ok(Route {
                candidates,
                rule,
                fallbacks: alias.fallbacks.clone(),
                hedge: alias.hedge,
                degrade: alias.degrade.clone(),
                stream_resume: alias.stream_resume,
            });
        }
        if let Some((provider, upstream_model)) = model.split_once('/') {
            if let Some(p) = self
                .providers
                .get(provider)
                .filter(|_| !upstream_model.is_empty())
            {
                let candidates = vec![Deployment {
                    provider: Arc::clone(p),
                    model: Arc::from(upstream_model),
                    weight: 1,
                    timeouts: self.timeouts,
                }];
                return Ok(Route {
                    candidates,
                    rule: "provider-prefix",
                    fallbacks: Vec::new(),
                    hedge: None,
                    degrade: None,
                    stream_resume: false,
                });
            }
        }
        if let Some(route) = self.wildcards.route(model, self.timeouts) {
            return Ok(route);
        }
        Err(GatewayError::ModelNotFound {
            model: model.to_owned(),
            available: self.alias_names().map(str::to_owned).collect(),
        })
    }

    /// Orders deployments by a weighted random draw without replacement, so each deployment is
    /// first choice in proportion to its weight and the others follow as fallbacks. Weight-0
    /// deployments go last, in config order.
    fn weighted_order(&self, deployments: &[Deployment]) -> Vec<Deployment> {
        if deployments.len() == 1 {
            return deployments.to_vec();
        }
        let mut pool: Vec<&Deployment> = deployments.iter().filter(|d| d.weight > 0).collect();
        let mut out = Vec::with_capacity(deployments.len());
        while !pool.is_empty() {
            let total: u64 = pool.iter().map(|d| u64::from(d.weight)).sum();
            let mut pick = self.next_u64() % total;
            let idx = pool
                .iter()
                .position(|d| {
                    let w = u64::from(d.weight);
                    if pick < w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap_or(0);
            out.push(pool.remove(idx).clone());
        }
        out.extend(deployments.iter().filter(|d| d.weight == 0).cloned());
        out
    }

    /// The deployments an alias names, in config order (`None` for any other model name).
    pub fn alias_deployments(&self, alias: &str) -> Option<&[Deployment]> {
        self.aliases.get(alias).map(|a| &a.deployments[..])
    }

    /// The deployment that serves most of `model`'s traffic, without a random draw: an alias's
    /// highest-weight deployment (the first in config order on a tie), else what a
    /// `provider/model` name or a wildcard resolves to. The prompt is counted with its
    /// tokenizer (`tokenize`).
    pub fn main_deployment(&self, model: &str) -> Option<Deployment> {
        if let Some(alias) = self.aliases.get(model) {
            return alias
                .deployments
                .iter()
                .rev()
                .max_by_key(|d| d.weight)
                .cloned();
        }
        self.route(model).ok()?.candidates.into_iter().next()
    }

    /// Every deployment of every alias, each `provider/model` once (for health checks).
    pub fn deployments(&self) -> Vec<Deployment> {
        let mut seen = std::collections::HashSet::new();
        self.aliases
            .values()
            .flat_map(|a| a.deployments.iter())
            .filter(|d| seen.insert((Arc::clone(&d.provider.name), Arc::clone(&d.model))))
            .cloned()
            .collect()
    }

    /// A random number for jitter (not for anything secret).
    pub fn random(&self) -> u64 {
        self.next_u64()
    }

    /// splitmix64 over an atomic counter: lock-free and good enough for load spreading.
    fn next_u64(&self) -> u64 {
        let mut z = self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
