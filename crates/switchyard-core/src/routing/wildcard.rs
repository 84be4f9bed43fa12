//! Wildcard routes: model-name patterns (`openai/*`, `claude-*`, `*`) sent to one provider, so
//! teams can use any of a provider's models without listing each as an alias.
//!
//! A pattern has exactly one `*`, which matches one or more characters. The model sent upstream
//! is either the capture (what `*` matched: `openai/gpt-4o` → `gpt-4o` for `openai/*`) or the
//! whole name (`claude-sonnet-4-5` for `claude-*`), as `forward:` says; by default a pattern
//! with `/*` forwards the capture (the part before the slash names the route, not the model)
//! and any other forwards the whole name. Aliases and `<provider>/<model>` names are resolved
//! first; among patterns the most specific (longest literal text) wins, ties in config order.

use std::sync::Arc;

use super::{Route, Router};
use crate::config::{Deployment, Timeouts, WildcardForward, WildcardRoute};

/// The configured patterns, most specific first.
#[derive(Debug, Default)]
pub(crate) struct Wildcards {
    /// (literal before `*`, literal after `*`, the route), sorted by specificity.
    by_specificity: Vec<(String, String, WildcardRoute)>,
    /// As configured, for listings.
    in_order: Vec<WildcardRoute>,
}

impl Wildcards {
    /// Compiles validated routes (each pattern has exactly one `*`).
    pub(crate) fn new(routes: Vec<WildcardRoute>) -> Self {
        let mut by_specificity: Vec<_> = routes
            .iter()
            .filter_map(|r| {
                let (prefix, suffix) = r.pattern.split_once('*')?;
                Some((prefix.to_owned(), suffix.to_owned(), r.clone()))
            })
            .collect();
        // Stable: equal specificity keeps config order.
        by_specificity.sort_by_key(|(p, s, _)| std::cmp::Reverse(p.len() + s.len()));
        Self {
            by_specificity,
            in_order: routes,
        }
    }

    /// The first pattern matching `model`, and the model name to send upstream.
    pub(crate) fn resolve<'m>(&self, model: &'m str) -> Option<(&WildcardRoute, &'m str)> {
        self.by_specificity.iter().find_map(|(prefix, suffix, r)| {
            let capture = model
                .strip_prefix(prefix.as_str())?
                .strip_suffix(suffix.as_str())?;
            if capture.is_empty() {
                return None;
            }
            let upstream = match r.forward {
                WildcardForward::Capture => capture,
                WildcardForward::Name => model,
            };
            Some((r, upstream))
        })
    }

    /// The route for `model`, when a pattern matches.
    pub(crate) fn route(&self, model: &str, timeouts: Timeouts) -> Option<Route> {
        let (r, upstream) = self.resolve(model)?;
        Some(Route {
            candidates: vec![Deployment {
                provider: Arc::clone(&r.provider),
                model: Arc::from(upstream),
                weight: 1,
                timeouts,
            }],
            rule: "wildcard",
            fallbacks: Vec::new(),
            hedge: None,
            degrade: None,
            stream_resume: false,
        })
    }
}

impl Router {
    /// Adds the `wildcards:` routes, tried after aliases and `<provider>/<model>` names.
    pub fn with_wildcards(mut self, routes: Vec<WildcardRoute>) -> Self {
        self.wildcards = Wildcards::new(routes);
        self
    }

    /// The wildcard routes in config order, for `/v1/models`.
    pub fn wildcard_routes(&self) -> &[WildcardRoute] {
        &self.wildcards.in_order
    }
}

#[cfg(test)]
mod tests;
