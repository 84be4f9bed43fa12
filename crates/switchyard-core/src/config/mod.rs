//! Configuration: YAML → [`raw::RawConfig`] (`deny_unknown_fields`) → [`validate`] → [`Config`].
//!
//! Runtime code only ever sees [`Config`]: every value is checked and defaulted once, at start-up,
//! so the request path never handles "unset" or "invalid". Errors name the key path and, where
//! it can be found, the line.

pub mod env;
mod locate;
pub mod raw;
pub mod routing;
mod secret;
pub mod units;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use locate::Seg;

use crate::capabilities::Capabilities;
use crate::error::FailureKind;
use crate::resilience::{HedgeDelay, ResilienceConfig};
pub use raw::{LogFormat, LogLevel};
pub use secret::Secret;
pub use validate::{embedded_default, from_yaml, load_file, sha256};

/// The validated gateway configuration.
#[derive(Debug)]
pub struct Config {
    /// Listener and transport settings.
    pub server: ServerConfig,
    /// Client authentication.
    pub auth: AuthConfig,
    /// Upstream providers, by name.
    pub providers: BTreeMap<String, Arc<ProviderConfig>>,
    /// Model aliases, by name.
    pub models: BTreeMap<String, ModelAlias>,
    /// Capability overrides by `<provider>/<model>` or `<model>`.
    pub capabilities: HashMap<String, Capabilities>,
    /// Retries, retry budget and circuit breakers.
    pub resilience: ResilienceConfig,
    /// Where the gateway keeps its state (`store:`).
    pub store: crate::store::StoreConfig,
    /// The per-request log (`request_log:`, `models.<alias>.log_bodies`).
    pub request_log: crate::reqlog::ReqLogConfig,
    /// The admin API (`admin:`).
    pub admin: crate::admin::AdminConfig,
    /// Virtual keys in the store (`keys:`).
    pub keys: crate::keys::KeysConfig,
    /// Rate limits (`limits:`).
    pub limits: crate::limits::LimitsConfig,
    /// Trace export.
    pub telemetry: TelemetryConfig,
    /// Routing policies of the aliases, deployment prices and quality tiers.
    pub routing: crate::routing::policy::RoutingConfig,
    /// Model-name patterns routed to a provider, in config order.
    pub wildcards: Vec<WildcardRoute>,
    /// Pass-through path prefixes, the defaults already applied.
    pub passthrough: Vec<PassthroughRoute>,
    /// Providers to which `DELETE /v1/models/{id}` may be forwarded.
    pub model_delete: std::collections::BTreeSet<String>,
    /// Spend budgets (`budgets:`).
    pub budgets: crate::budgets::BudgetsConfig,
    /// The response cache (`cache:`).
    pub cache: crate::cache::CacheConfig,
    /// Guardrail rules (`guardrails:`), in config order.
    pub guardrails: crate::guardrails::GuardrailsConfig,
}

/// `telemetry:`: where traces go (nowhere by default).
#[derive(Debug, Clone, Default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP trace export, when configured.
    pub otlp: Option<crate::telemetry::otlp::OtlpConfig>,
}

/// A model-name pattern routed to a provider (`wildcards:`).
#[derive(Debug, Clone)]
pub struct WildcardRoute {
    /// The pattern as written, with exactly one `*`.
    pub pattern: String,
    /// Where matching names go.
    pub provider: Arc<ProviderConfig>,
    /// Which model name is sent upstream.
    pub forward: WildcardForward,
}

/// Which model name a wildcard route sends upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WildcardForward {
    /// The part of the name the `*` matched (`openai/gpt-4o` → `gpt-4o` for `openai/*`).
    Capture,
    /// The whole name the client sent (`claude-sonnet-4-5` for `claude-*`).
    Name,
}

/// A path prefix forwarded as it is to a provider (`passthrough:`).
#[derive(Debug, Clone)]
pub struct PassthroughRoute {
    /// `/v1/...`, without a trailing slash; matched at segment boundaries.
    pub prefix: String,
    /// Where matching requests go.
    pub provider: Arc<ProviderConfig>,
    /// Largest request body streamed upstream, in bytes.
    pub max_body_size: u64,
}

/// `server:` after validation.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest accepted request body in bytes.
    pub max_body_size: usize,
    /// Log line format.
    pub log_format: LogFormat,
    /// Log verbosity.
    pub log_level: LogLevel,
    /// How long a shutdown waits for in-flight requests and streams before closing them.
    pub shutdown_timeout: Duration,
    /// Upstream timeouts.
    pub timeouts: Timeouts,
    /// Worker threads, each with its own single-threaded runtime and upstream pool.
    pub workers: usize,
}

/// Upstream timeouts. Each expiry is reported as a `timeout` error (504 before the first byte
/// reached the client, an error event after).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP and TLS connect.
    pub connect: Duration,
    /// Until the upstream's response headers arrive.
    pub first_byte: Duration,
    /// Longest silence between two chunks of a stream.
    pub stream_idle: Duration,
    /// The whole upstream exchange.
    pub total: Duration,
}

/// Client authentication after validation. Keys are held only as SHA-256 digests.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Digest of the master key.
    pub master_key_sha256: Option<[u8; 32]>,
    /// Static virtual keys.
    pub virtual_keys: Vec<VirtualKey>,
}

impl AuthConfig {
    /// Whether clients must present a key.
    pub fn enabled(&self) -> bool {
        self.master_key_sha256.is_some() || !self.virtual_keys.is_empty()
    }
}

/// A static client key.
#[derive(Clone)]
pub struct VirtualKey {
    /// Name shown in logs and headers.
    pub name: Arc<str>,
    /// SHA-256 of the key.
    pub sha256: [u8; 32],
    /// The team the key belongs to (attribution, routing rules).
    pub team: Option<Arc<str>>,
}

impl fmt::Debug for VirtualKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualKey")
            .field("name", &self.name)
            .field("team", &self.team)
            .finish_non_exhaustive()
    }
}

/// Which wire dialect a provider speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI's API at `{base_url}/chat/completions` with a bearer token.
    OpenAi,
    /// Azure OpenAI at `{base_url}/openai/deployments/{model}/...?api-version=` with `api-key`.
    Azure {
        /// The `api-version` query value.
        api_version: String,
    },
    /// Anthropic's Messages API at `{base_url}/messages` with `x-api-key`.
    Anthropic {
        /// The `anthropic-version` header, when the config overrides the built-in one.
        api_version: Option<String>,
    },
    /// Google's Gemini API (AI Studio) at `{base_url}/models/{model}:generateContent` with
    /// `x-goog-api-key`.
    Gemini,
    /// Gemini on Vertex AI at `{base_url}/models/{model}:generateContent` with an OAuth bearer
    /// token in `Authorization`.
    Vertex,
    /// AWS Bedrock's Converse API at `{base_url}/model/{model}/converse`, signed with SigV4.
    Bedrock {
        /// The AWS region requests are signed for.
        region: String,
        /// The key pair (and session token) requests are signed with.
        credentials: AwsCredentials,
    },
}

impl ProviderKind {
    /// The GenAI semantic-convention provider name (`gen_ai.provider.name`), for traces.
    pub fn genai_name(&self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Azure { .. } => "azure.ai.openai",
            Self::Anthropic { .. } => "anthropic",
            Self::Gemini => "gcp.gemini",
            Self::Vertex => "gcp.vertex_ai",
            Self::Bedrock { .. } => "aws.bedrock",
        }
    }
}

/// AWS credentials for SigV4 signing. The secret and the session token are [`Secret`]s, so
/// `Debug` shows only the access key id, which is public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// The access key id, e.g. `AKIA...` (or `ASIA...` for temporary credentials).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token of temporary (STS) credentials.
    pub session_token: Option<Secret>,
}

/// Where a provider is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A URL from the config or the environment, without a trailing slash.
    Url(String),
    /// The mock provider built into the binary, started on a loopback port at serve time.
    EmbeddedMock,
}

/// A validated provider.
#[derive(Debug)]
pub struct ProviderConfig {
    /// Name from the config (`providers.<name>`); shown in headers and logs.
    pub name: Arc<str>,
    /// Wire dialect.
    pub kind: ProviderKind,
    /// Where to send requests.
    pub endpoint: Endpoint,
    /// Credential sent upstream.
    pub api_key: Option<Secret>,
    /// Extra headers, marked sensitive so they are never logged.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// A model alias: the name clients use, and where it can be served.
#[derive(Debug, Clone)]
pub struct ModelAlias {
    /// The deployments, in config order.
    pub deployments: Vec<Deployment>,
    /// Aliases tried in order when the deployments failed, each on its conditions.
    pub fallbacks: Vec<Fallback>,
    /// When set, a first attempt that has not answered after this delay is hedged with a
    /// second one on the next deployment.
    pub hedge: Option<HedgeDelay>,
    /// The answer clients get instead of an error when nothing could serve them.
    pub degrade: Option<Arc<str>>,
    /// Continue a stream that breaks mid-way on another deployment.
    pub stream_resume: bool,
}

/// A fallback of an alias: where to go next, and on which failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// The alias to try.
    pub alias: String,
    /// Every retryable kind leads here (`on: [any]`, the default).
    pub any_retryable: bool,
    /// These kinds lead here too (e.g. `context_length_exceeded` to a longer-context alias).
    pub kinds: Vec<FailureKind>,
}

impl Fallback {
    /// Whether a failure of `kind` leads to this fallback.
    pub fn matches(&self, kind: FailureKind) -> bool {
        (self.any_retryable && kind.is_retryable()) || self.kinds.contains(&kind)
    }
}

/// One place an alias can be served.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The provider.
    pub provider: Arc<ProviderConfig>,
    /// The provider's model name.
    pub model: Arc<str>,
    /// Relative traffic share.
    pub weight: u32,
    /// Upstream timeouts: `server.timeouts` with the alias's and the deployment's own over them.
    pub timeouts: Timeouts,
}

/// A config that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file `{path}`: {source}")]
    Io {
        /// The path given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML is malformed, has a wrong type or an unknown key.
    #[error("{0}")]
    Parse(String),
    /// Values that parsed but do not make sense together.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<Problem>),
}

/// One semantic problem in a config.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Dotted key path, e.g. `models.chat.deployments[0].provider`.
    pub key: String,
    /// 1-based line, when it could be found.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match p.line {
            Some(line) => out.push_str(&format!("`{}` (line {line}): {}", p.key, p.message)),
            None => out.push_str(&format!("`{}`: {}", p.key, p.message)),
        }
    }
    out
}

#[cfg(test)]
mod tests;
