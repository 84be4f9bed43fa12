//! What a deployment costs: a built-in price table for the main current models of each
//! supported provider, per-deployment overrides from config, and the cost of a request's usage.
//!
//! Routing uses prices to estimate a request's cost before it is sent (cheapest-capable and
//! scored strategies, `max_cost` constraints); governance uses [`Pricing::cost`] to account
//! for what was actually spent. A deployment with no known price is never treated as free:
//! [`Pricing::cost`] returns `None` for it, cost-based routing ranks it last, and start-up logs
//! a warning naming it.
//!
//! Prices are USD per million tokens. Each built-in entry carries a dated source note; list
//! prices change, so a config `price:` on a deployment always wins.

mod table;

use std::collections::HashMap;

use switchyard_types::openai::Usage;

use crate::config::Deployment;

/// A model's price in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Prompt tokens not read from or written to a prompt cache.
    pub input: f64,
    /// Generated tokens (reasoning tokens included, as providers bill them).
    pub output: f64,
    /// Prompt tokens read from the provider's cache.
    pub cached_input: f64,
    /// Prompt tokens written to the provider's cache (Anthropic charges a premium; most others
    /// charge the input price).
    pub cache_write: f64,
}

impl Price {
    /// A price with no cache discount or premium: cached reads and cache writes cost `input`.
    pub const fn flat(input: f64, output: f64) -> Self {
        Self {
            input,
            output,
            cached_input: input,
            cache_write: input,
        }
    }

    /// USD for `usage` at this price. `prompt_tokens` includes the cached and cache-write
    /// tokens (the normalised [`Usage`] convention), so only the rest is billed at `input`.
    pub fn cost_of(&self, usage: &Usage) -> f64 {
        let special = usage.cached_tokens.saturating_add(usage.cache_write_tokens);
        let plain = usage.prompt_tokens.saturating_sub(special);
        (plain as f64 * self.input
            + usage.cached_tokens as f64 * self.cached_input
            + usage.cache_write_tokens as f64 * self.cache_write
            + usage.completion_tokens as f64 * self.output)
            / 1_000_000.0
    }

    /// USD for a request estimated at `prompt_tokens` in and `output_tokens` out (no cache).
    pub fn estimate(&self, prompt_tokens: u64, output_tokens: u64) -> f64 {
        (prompt_tokens as f64 * self.input + output_tokens as f64 * self.output) / 1_000_000.0
    }
}

/// Where a price came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceSource {
    /// The deployment's `price:` in the config.
    Config,
    /// The built-in table; the note says which page and when.
    Builtin(&'static str),
}

impl PriceSource {
    /// A short description for explanations and the stats endpoint.
    pub fn describe(&self) -> &str {
        match self {
            Self::Config => "config",
            Self::Builtin(note) => note,
        }
    }
}

/// The cost of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Cost {
    /// US dollars.
    pub usd: f64,
    /// The price used.
    pub price: Price,
    /// Where that price came from.
    pub source: PriceSource,
}

/// Prices of a gateway's deployments: the built-in table under the config's overrides.
#[derive(Debug, Default, Clone)]
pub struct Pricing {
    /// Config `price:` entries keyed `provider/model`.
    overrides: HashMap<String, Price>,
    /// The built-in entry of each model the config names, looked up once (see
    /// [`Pricing::prime`]).
    builtin: crate::FastMap<Box<str>, Option<(Price, &'static str)>>,
}

impl Pricing {
    /// Prices with these per-deployment overrides (keyed `provider/model`).
    pub fn new(overrides: HashMap<String, Price>) -> Self {
        Self {
            overrides,
            builtin: crate::FastMap::default(),
        }
    }

    /// Looks up the built-in entries of `models` now: every answer is priced, and a walk of
    /// the built-in table (canonical name, longest matching prefix) cost a thousand
    /// instructions per request; a hashed lookup costs a tenth of that. Other models (named
    /// as `provider/model` or matched by a wildcard) are looked up as they come.
    pub fn prime<'a>(&mut self, models: impl IntoIterator<Item = &'a str>) {
        for m in models {
            if !self.builtin.contains_key(m) {
                self.builtin.insert(m.into(), builtin(m));
            }
        }
    }

    /// The price of `model` at `provider`: the config's override, else the built-in entry for
    /// the model name (matched by longest known prefix, as capability records are).
    pub fn price_of(&self, provider: &str, model: &str) -> Option<(Price, PriceSource)> {
        if !self.overrides.is_empty() {
            if let Some(p) = self.overrides.get(&format!("{provider}/{model}")) {
                return Some((*p, PriceSource::Config));
            }
        }
        self.builtin
            .get(model)
            .copied()
            .unwrap_or_else(|| builtin(model))
            .map(|(p, note)| (p, PriceSource::Builtin(note)))
    }

    /// The price of a deployment, when known.
    pub fn price(&self, d: &Deployment) -> Option<(Price, PriceSource)> {
        self.price_of(&d.provider.name, &d.model)
    }

    /// What `usage` cost at deployment `d`, cached and cache-write tokens included; `None`
    /// when the deployment's price is unknown (which must never be read as free).
    pub fn cost(&self, d: &Deployment, usage: &Usage) -> Option<Cost> {
        let (price, source) = self.price(d)?;
        Some(Cost {
            usd: price.cost_of(usage),
            price,
            source,
        })
    }

    /// The deployments among `deployments` whose price is unknown, as `provider/model`, once
    /// each: start-up warns about them so nobody mistakes them for free.
    pub fn unpriced(&self, deployments: &[Deployment]) -> Vec<String> {
        let mut out: Vec<String> = deployments
            .iter()
            .filter(|d| self.price(d).is_none())
            .map(|d| format!("{}/{}", d.provider.name, d.model))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The built-in price for an upstream model name and its source note.
pub fn builtin(model: &str) -> Option<(Price, &'static str)> {
    let name = crate::capabilities::canonical_model_name(model);
    table::TABLE
        .iter()
        .filter(|e| name.starts_with(e.prefix))
        .max_by_key(|e| e.prefix.len())
        .map(|e| (e.price, e.source))
}

#[cfg(test)]
mod tests;
