//! Config reload: a new config's routes, providers, keys, capabilities, routing policies and
//! guardrails replace the old ones without a restart and without dropping a request.
//!
//! The parts a reload replaces sit in one shared [`Live`] cell with a generation number. Each
//! worker keeps its own `Arc<Gateway>` and, per request, compares generations (one atomic
//! load); when they differ it rebuilds its gateway from the new parts, keeping its own upstream
//! connection pool. A request holds the `Arc<Gateway>` it started with until it ends, streams
//! included, so in-flight requests finish on the old snapshot. Breakers and live statistics
//! are keyed by `provider/model` and carry over.
//!
//! Read at start only (a reload leaves them as they were): `server:` (listen address, workers,
//! body limit, timeouts of `provider/model` routes), `resilience:`, `limits:` and `cache:`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::auth::Authenticator;
use crate::capabilities::CapabilityTable;
use crate::config::{Config, Endpoint};
use crate::pipeline::Gateway;
use crate::providers::{self, Provider};
use crate::routing::Router;
use crate::telemetry::metrics::RequestMetrics;

/// Adapters by provider name.
pub(crate) type Adapters = Arc<HashMap<Arc<str>, Arc<dyn Provider>>>;

/// The replaceable parts of a gateway.
#[derive(Clone)]
pub(crate) struct LiveParts {
    pub(crate) router: Arc<Router>,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) providers: Adapters,
    /// The guardrail rules, when any are configured.
    pub(crate) guardrails: Option<Arc<crate::guardrails::Guardrails>>,
}

/// The current parts and their generation, shared by every worker.
pub(crate) struct Live {
    generation: AtomicU64,
    parts: RwLock<LiveParts>,
}

impl Live {
    pub(crate) fn new(parts: LiveParts) -> Self {
        Self {
            generation: AtomicU64::new(0),
            parts: RwLock::new(parts),
        }
    }

    /// The current generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// Builds the parts a config defines: the router (with capabilities, prices and routing
/// policies), the authenticator and one adapter per provider.
pub(crate) fn build_parts(config: Config, mock_url: Option<&str>) -> Result<LiveParts, String> {
    if mock_url.is_none()
        && config
            .providers
            .values()
            .any(|p| p.endpoint == Endpoint::EmbeddedMock)
    {
        return Err(
            "a provider uses the built-in mock, which was not started with the gateway; \
             restart to add it"
                .to_owned(),
        );
    }
    let mut adapters: HashMap<Arc<str>, Arc<dyn Provider>> = HashMap::new();
    for p in config.providers.values() {
        let adapter =
            providers::build(p, mock_url).map_err(|e| format!("provider `{}`: {e}", p.name))?;
        adapters.insert(Arc::clone(&p.name), adapter);
    }
    let guardrails = Some(crate::guardrails::Guardrails::new(&config.guardrails))
        .filter(|g| !g.is_empty())
        .map(Arc::new);
    let router = Router::new(config.models, config.providers, config.server.timeouts)
        .with_capabilities(CapabilityTable::new(config.capabilities))
        .with_routing(config.routing)
        .with_wildcards(config.wildcards);
    let unpriced = router.pricing().unpriced(&router.deployments());
    if !unpriced.is_empty() {
        tracing::warn!(
            deployments = %unpriced.join(", "),
            "no known price for these deployments: cost-based routing ranks them last and \
             their spend is not counted; set `price:` on them"
        );
    }
    Ok(LiveParts {
        router: Arc::new(router),
        auth: Arc::new(Authenticator::new(config.auth)),
        providers: Arc::new(adapters),
        guardrails,
    })
}

/// The configured names `/metrics` may use as label values (aliases, providers, models).
pub(crate) struct MetricNames {
    aliases: Vec<String>,
    deployments: Vec<(Arc<str>, Arc<str>)>,
}

impl MetricNames {
    pub(crate) fn of(config: &Config) -> Self {
        Self {
            aliases: config.models.keys().cloned().collect(),
            deployments: config
                .models
                .values()
                .flat_map(|a| a.deployments.iter())
                .map(|d| (Arc::clone(&d.provider.name), Arc::clone(&d.model)))
                .collect(),
        }
    }

    pub(crate) fn apply(&self, metrics: &RequestMetrics) {
        metrics.set_known(
            self.aliases.iter().map(String::as_str),
            self.deployments.iter().map(|(p, m)| (&**p, &**m)),
        );
    }
}

/// Swaps a new config into a running gateway. Cloneable; any clone reloads the same gateway.
#[derive(Clone)]
pub struct Reloader {
    live: Arc<Live>,
    metrics: Arc<RequestMetrics>,
    mock_url: Option<String>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("generation", &self.live.generation())
            .finish_non_exhaustive()
    }
}

impl Reloader {
    pub(crate) fn new(
        live: Arc<Live>,
        metrics: Arc<RequestMetrics>,
        mock_url: Option<String>,
    ) -> Self {
        Self {
            live,
            metrics,
            mock_url,
        }
    }

    /// Replaces routes, providers, keys, capabilities and routing policies with those of
    /// `config` (already validated). On error nothing changes. Returns the new generation.
    pub fn reload(&self, config: Config) -> Result<u64, String> {
        let aliases = config.models.len();
        let names = MetricNames::of(&config);
        let parts = build_parts(config, self.mock_url.as_deref())?;
        names.apply(&self.metrics);
        *self.live.parts.write() = parts;
        let generation = self.live.generation.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::info!(generation, aliases, "config reloaded");
        Ok(generation)
    }

    /// Reads, validates and applies the config file at `path`; on any error the running
    /// config stays and the error says why.
    pub fn reload_file(
        &self,
        path: &str,
        env: &dyn crate::config::env::EnvSource,
    ) -> Result<u64, String> {
        let config = crate::config::load_file(path, env).map_err(|e| e.to_string())?;
        self.reload(config)
    }

    /// Reloads generations applied so far.
    pub fn generation(&self) -> u64 {
        self.live.generation()
    }
}

/// A worker's view of the gateway: its own `Arc<Gateway>`, rebuilt when a reload happened.
pub(crate) struct WorkerGateway {
    current: RwLock<Arc<Gateway>>,
}

impl WorkerGateway {
    pub(crate) fn new(gw: Arc<Gateway>) -> Self {
        Self {
            current: RwLock::new(gw),
        }
    }

    /// The gateway a new request uses.
    pub(crate) fn get(&self) -> Arc<Gateway> {
        let gw = Arc::clone(&self.current.read());
        let generation = gw.live.generation();
        if generation == gw.generation {
            return gw;
        }
        let parts = gw.live.parts.read().clone();
        let next = Arc::new(Gateway {
            router: parts.router,
            auth: parts.auth,
            providers: parts.providers,
            guardrails: parts.guardrails,
            generation,
            ..(*gw).clone()
        });
        *self.current.write() = Arc::clone(&next);
        next
    }
}
