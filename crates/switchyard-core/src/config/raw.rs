//! The config file as written: serde structs with `deny_unknown_fields`, nothing validated yet.
//!
//! Values that need parsing (durations, sizes, `${ENV}` references) are parsed *during*
//! deserialisation so that a mistake is reported by the YAML parser with its line and column.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::units::{parse_duration, parse_size};

/// Top level of the YAML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Listener and transport settings.
    #[serde(default)]
    pub server: RawServer,
    /// Client authentication.
    #[serde(default)]
    pub auth: RawAuth,
    /// Upstream providers by name.
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    /// Model aliases by name.
    #[serde(default)]
    pub models: BTreeMap<String, RawModel>,
    /// Capability records by `<provider>/<model>` or `<model>`, over the built-in ones.
    #[serde(default)]
    pub capabilities: BTreeMap<String, RawCapabilities>,
    /// Retries, retry budget and circuit breakers.
    #[serde(default)]
    pub resilience: RawResilience,
    /// Trace export.
    #[serde(default)]
    pub telemetry: RawTelemetry,
    /// Where the gateway keeps its state (request log, ...).
    pub store: Option<RawStore>,
    /// The per-request log kept in the store.
    #[serde(default)]
    pub request_log: RawRequestLog,
    /// The admin API.
    #[serde(default)]
    pub admin: RawAdmin,
    /// Virtual keys in the store.
    #[serde(default)]
    pub keys: crate::keys::config::RawKeys,
    /// Rate limits per key, team, user and tag.
    #[serde(default)]
    pub limits: crate::limits::config::RawLimits,
    /// Model-name patterns (`openai/*`, `claude-*`, `*`) routed to a provider.
    #[serde(default)]
    pub wildcards: Vec<RawWildcard>,
    /// Path prefixes forwarded as they are to a provider; absent means the defaults.
    pub passthrough: Option<Vec<RawPassthrough>>,
    /// Spend budgets per key, team, user or tag.
    #[serde(default)]
    pub budgets: RawBudgets,
    /// The response cache.
    #[serde(default)]
    pub cache: crate::cache::RawCache,
    /// Rules that block or redact personal data and patterns in requests and answers.
    #[serde(default)]
    pub guardrails: Vec<crate::guardrails::RawGuardrail>,
}

/// `budgets:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudgets {
    /// Where periods start, as a fixed UTC offset (`+02:00`; default `+00:00`). The older
    /// form of `time_zone`.
    pub utc_offset: Option<String>,
    /// Where periods start: an IANA zone (`Europe/Paris`) or a fixed offset (default `UTC`).
    pub time_zone: Option<String>,
    /// Alert thresholds (percent) of the budgets virtual keys carry (default 50, 80, 100).
    pub key_alerts: Option<Vec<u32>>,
    /// URL that threshold alerts are POSTed to (JSON).
    pub alert_webhook: Option<EnvString>,
    /// The budgets.
    #[serde(default)]
    pub limits: Vec<RawBudget>,
}

/// `budgets.limits[]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// `key:<name>`, `team:<name>`, `user:<name>` or `tag:<key>=<value>`.
    pub scope: String,
    /// The cap per period, USD.
    pub limit_usd: f64,
    /// `day`, `week` or `month`.
    pub period: String,
    /// Alert thresholds in percent of the limit (default none).
    #[serde(default)]
    pub alerts: Vec<u32>,
    /// Past this spend (USD), requests go to `downgrade_to`.
    pub soft_cap_usd: Option<f64>,
    /// The cheaper alias served past the soft cap.
    pub downgrade_to: Option<String>,
    /// This budget's time zone, instead of `budgets.time_zone`.
    pub time_zone: Option<String>,
}

/// `store:`: exactly one of `sqlite` or `postgres`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// A SQLite database file.
    pub sqlite: Option<EnvString>,
    /// A PostgreSQL URL (`postgres://user:pass@host:5432/db`).
    pub postgres: Option<EnvString>,
    /// Bound on a store operation (default 5s).
    pub timeout: Option<DurationStr>,
}

/// `request_log:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequestLog {
    /// Keep a record per request (default true).
    pub enabled: Option<bool>,
    /// Body policy of aliases without their own (default `none`).
    pub bodies: Option<RawBodyPolicy>,
    /// Most bytes kept of one body (default 64KiB).
    pub max_body_size: Option<Size>,
    /// Records queued before request threads spill directly (default 10000).
    pub queue_size: Option<usize>,
    /// Most records per store write (default 256).
    pub batch_size: Option<usize>,
    /// Longest wait for a batch to fill (default 200ms).
    pub flush_interval: Option<DurationStr>,
    /// How often a failed store is retried (default 1s).
    pub retry_interval: Option<DurationStr>,
    /// Directory of the spill file.
    pub spill_dir: Option<EnvString>,
    /// What old records are deleted.
    pub retention: Option<RawRetention>,
}

/// `request_log.retention:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// Oldest record kept (default 30d).
    pub max_age: Option<DurationStr>,
    /// Most records kept (default unlimited).
    pub max_rows: Option<u64>,
    /// Time between clean-ups (default 5m).
    pub interval: Option<DurationStr>,
}

/// A body policy: `none`, `full`, `redacted`, or `{truncate: <size>}`.
#[derive(Debug, Clone, Copy)]
pub enum RawBodyPolicy {
    /// Keep no body.
    None,
    /// Keep bodies as they are.
    Full,
    /// Keep bodies with e-mails, credential-like tokens and long numbers replaced.
    Redacted,
    /// Keep the first N bytes.
    Truncate(Size),
}

impl<'de> Deserialize<'de> for RawBodyPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawBodyPolicy;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`none`, `full`, `redacted` or `{truncate: <size>}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawBodyPolicy, E> {
                match v {
                    "none" => Ok(RawBodyPolicy::None),
                    "full" => Ok(RawBodyPolicy::Full),
                    "redacted" => Ok(RawBodyPolicy::Redacted),
                    other => Err(E::custom(format!(
                        "unknown body policy `{other}`: use none, full, redacted or {{truncate: <size>}}"
                    ))),
                }
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawBodyPolicy, A::Error> {
                let mut out = None;
                while let Some(k) = map.next_key::<String>()? {
                    if k != "truncate" || out.is_some() {
                        return Err(de::Error::custom(format!(
                            "unexpected key `{k}`: the only map form is {{truncate: <size>}}"
                        )));
                    }
                    out = Some(RawBodyPolicy::Truncate(map.next_value::<Size>()?));
                }
                out.ok_or_else(|| de::Error::custom("expected {truncate: <size>}"))
            }
        }
        d.deserialize_any(V)
    }
}

/// `admin:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// The admin key in clear (usually `${ENV}`); hashed at load.
    pub key: Option<EnvString>,
    /// Hex SHA-256 of the admin key.
    pub key_sha256: Option<String>,
    /// A separate listener for the admin API (else it shares the gateway's).
    pub listen: Option<EnvString>,
}

/// `telemetry:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    /// OpenTelemetry trace export over OTLP/HTTP; off when absent.
    pub otlp: Option<RawOtlp>,
}

/// `telemetry.otlp:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOtlp {
    /// Collector base URL (`/v1/traces` is appended unless the URL already ends with it).
    pub endpoint: EnvString,
    /// Headers sent with every export (e.g. an auth token).
    #[serde(default)]
    pub headers: BTreeMap<String, EnvString>,
    /// The `service.name` resource attribute.
    pub service_name: Option<String>,
}

/// One entry of `wildcards:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWildcard {
    /// The model-name pattern, with exactly one `*`.
    pub pattern: String,
    /// Name of an entry in `providers:`.
    pub provider: String,
    /// `capture` (what `*` matched) or `name` (the whole name the client sent).
    pub forward: Option<String>,
}

/// One entry of `passthrough:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPassthrough {
    /// A path prefix such as `/v1/files`, matched at segment boundaries.
    pub prefix: String,
    /// Name of an entry in `providers:`.
    pub provider: String,
    /// Largest request body streamed upstream (default 512MiB).
    pub max_body_size: Option<Size>,
}

/// `resilience:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResilience {
    /// Attempts per request, the first included.
    pub max_attempts: Option<u32>,
    /// First backoff ceiling.
    pub backoff_base: Option<DurationStr>,
    /// Largest backoff ceiling.
    pub backoff_max: Option<DurationStr>,
    /// Longest `Retry-After` worth waiting for.
    pub max_retry_after: Option<DurationStr>,
    /// Retry budget per deployment.
    #[serde(default)]
    pub retry_budget: RawRetryBudget,
    /// Circuit breaker per deployment.
    #[serde(default)]
    pub breaker: RawBreaker,
    /// Active health checks (off unless set).
    pub health_checks: Option<RawHealthChecks>,
}

/// `resilience.health_checks:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthChecks {
    /// Time between two rounds of probes.
    pub interval: DurationStr,
    /// How long one probe may take (default 10s).
    pub timeout: Option<DurationStr>,
}

/// `resilience.retry_budget:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetryBudget {
    /// Retries allowed per first attempt.
    pub ratio: Option<f64>,
    /// Retries always allowed per second.
    pub min_per_second: Option<f64>,
    /// How far back requests count.
    pub window: Option<DurationStr>,
}

/// `resilience.breaker:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    /// Failures in a row that open it.
    pub consecutive_failures: Option<u32>,
    /// Failure share that opens it.
    pub failure_rate: Option<f64>,
    /// Requests needed before the rate counts.
    pub min_requests: Option<u32>,
    /// Window of the failure rate.
    pub window: Option<DurationStr>,
    /// How long it stays open before a probe.
    pub open_for: Option<DurationStr>,
}

/// One entry of `capabilities:`; every field is optional and replaces the built-in value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapabilities {
    /// Prompt plus completion tokens.
    pub context_window: Option<u32>,
    /// Most completion tokens per answer.
    pub max_output: Option<u32>,
    /// Tool calling.
    pub tools: Option<bool>,
    /// Image inputs.
    pub vision: Option<bool>,
    /// JSON-schema constrained output.
    pub json_schema: Option<bool>,
    /// Streaming.
    pub streaming: Option<bool>,
}

/// `server:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// `host:port` to listen on.
    pub listen: Option<EnvString>,
    /// Largest accepted request body.
    pub max_body_size: Option<Size>,
    /// `text` or `json`.
    pub log_format: Option<LogFormat>,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: Option<LogLevel>,
    /// How long shutdown waits for in-flight requests and streams.
    pub shutdown_timeout: Option<DurationStr>,
    /// Worker threads (one single-threaded runtime each); absent or 0 means one per CPU.
    pub workers: Option<usize>,
    /// Upstream timeouts.
    #[serde(default)]
    pub timeouts: RawTimeouts,
}

/// `server.timeouts:`, and `timeouts:` of an alias or a deployment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    /// TCP (and TLS) connect.
    pub connect: Option<DurationStr>,
    /// From sending the request to receiving the response headers.
    pub first_byte: Option<DurationStr>,
    /// Longest gap between two chunks of a streamed response.
    pub stream_idle: Option<DurationStr>,
    /// Whole upstream exchange, body included.
    pub total: Option<DurationStr>,
}

/// `auth:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// The operator's key: full access.
    pub master_key: Option<EnvString>,
    /// Static client keys.
    #[serde(default)]
    pub virtual_keys: Vec<RawVirtualKey>,
    /// Allow serving without any key on a non-loopback address.
    #[serde(default)]
    pub allow_unauthenticated: bool,
}

/// One entry of `auth.virtual_keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVirtualKey {
    /// Name used in logs and headers (never the key itself).
    pub name: String,
    /// The key in clear (usually `${ENV}`); hashed at load and then forgotten.
    pub key: Option<EnvString>,
    /// Hex SHA-256 of the key, so the clear key never has to be on the gateway host.
    pub key_sha256: Option<String>,
    /// The team the key belongs to, for attribution and routing rules.
    pub team: Option<String>,
}

/// Provider types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawProviderKind {
    /// Any OpenAI-compatible API (OpenAI, Groq, Mistral, vLLM, Ollama, ...).
    Openai,
    /// Azure OpenAI deployment URLs with `api-version` and the `api-key` header.
    Azure,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API on Google AI Studio (`generativelanguage.googleapis.com`, API key).
    Gemini,
    /// Gemini on Google Cloud's Vertex AI (OAuth bearer token).
    Vertex,
    /// The built-in mock provider.
    Mock,
    /// AWS Bedrock's Converse API, signed with SigV4.
    Bedrock,
}

/// One entry of `providers:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// Provider type.
    #[serde(rename = "type")]
    pub kind: RawProviderKind,
    /// API root, e.g. `https://api.openai.com/v1`.
    pub base_url: Option<EnvString>,
    /// Credential sent upstream.
    pub api_key: Option<EnvString>,
    /// Extra headers sent upstream on every request.
    #[serde(default)]
    pub headers: BTreeMap<String, EnvString>,
    /// Azure's `api-version` query parameter, or Anthropic's `anthropic-version` header.
    pub api_version: Option<EnvString>,
    /// Bedrock: the AWS region (else `AWS_REGION` / `AWS_DEFAULT_REGION`).
    pub region: Option<EnvString>,
    /// Bedrock: the access key id (else `AWS_ACCESS_KEY_ID`).
    pub aws_access_key_id: Option<EnvString>,
    /// Bedrock: the secret access key (else `AWS_SECRET_ACCESS_KEY`).
    pub aws_secret_access_key: Option<EnvString>,
    /// Bedrock: the session token of temporary credentials (else `AWS_SESSION_TOKEN`, when the
    /// keys come from the environment too).
    pub aws_session_token: Option<EnvString>,
    /// Vertex AI: the Google Cloud project, which with `location` spells the base URL.
    pub project: Option<EnvString>,
    /// Vertex AI: the region (`us-central1`, ...) or `global`.
    pub location: Option<EnvString>,
    /// Whether `DELETE /v1/models/{id}` may be forwarded to this provider (default false).
    pub allow_model_delete: Option<bool>,
}

/// One entry of `models:` (an alias).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// Where the alias can be served (may be empty when `routing` sends every request
    /// elsewhere: a classifier or a rule without conditions).
    #[serde(default)]
    pub deployments: Vec<RawDeployment>,
    /// Other aliases to try, in order, when every deployment failed.
    #[serde(default)]
    pub fallbacks: Vec<RawFallback>,
    /// Upstream timeouts for this alias's deployments, over `server.timeouts`.
    pub timeouts: Option<RawTimeouts>,
    /// Hedged requests.
    pub hedge: Option<RawHedge>,
    /// The answer when nothing could serve a request.
    pub on_failure: Option<RawOnFailure>,
    /// Continue broken streams on another deployment.
    #[serde(default)]
    pub stream_resume: bool,
    /// Routing policy: strategy, constraints, rules, classifier.
    pub routing: Option<super::routing::RawRouting>,
    /// Body policy of this alias's request log records.
    pub log_bodies: Option<RawBodyPolicy>,
}

/// `models.<alias>.on_failure:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOnFailure {
    /// The assistant message clients get instead of an error.
    pub message: EnvString,
}

/// `models.<alias>.hedge:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHedge {
    /// Start a second attempt when the first has not answered after this long: a duration,
    /// or `p95` for the first deployment's observed p95 time to headers.
    pub after: EnvString,
    /// With `after: p95`, the delay until enough answers were seen (default 1s).
    pub initial: Option<DurationStr>,
}

/// One entry of `models.<alias>.fallbacks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    /// The alias to try.
    pub alias: String,
    /// Failure kinds that lead here (`any` for every retryable kind, the default).
    #[serde(default)]
    pub on: Vec<String>,
}

/// One deployment of an alias.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeployment {
    /// Name of an entry in `providers:`.
    pub provider: String,
    /// The provider's model name (for Azure: the deployment name).
    pub model: String,
    /// Share of traffic relative to the alias's other deployments.
    pub weight: Option<u32>,
    /// Upstream timeouts for this deployment, over the alias's.
    pub timeouts: Option<RawTimeouts>,
    /// Price in USD per million tokens, over the built-in table.
    pub price: Option<super::routing::RawPrice>,
    /// Quality tier, 1 (lowest) to 5, for scored routing.
    pub quality: Option<u8>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// One line per request, plus start-up and shutdown.
    #[default]
    Info,
    /// Diagnostic detail.
    Debug,
    /// Everything.
    Trace,
}

/// A duration written as `500ms`, `30s`, `5m` or `1h`.
#[derive(Debug, Clone, Copy)]
pub struct DurationStr(pub Duration);

impl<'de> Deserialize<'de> for DurationStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(DurationStr)
            .map_err(de::Error::custom)
    }
}

/// A byte size written as an integer or with a unit (`4MiB`).
#[derive(Debug, Clone, Copy)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 4194304 or \"4MiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom("size must not be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

thread_local! {
    /// The environment snapshot used by [`EnvString`] while one config text is deserialised.
    static ENV_SNAPSHOT: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

/// Runs `f` with `vars` as the environment seen by [`EnvString`] on this thread.
pub(crate) fn with_env<T>(vars: HashMap<String, String>, f: impl FnOnce() -> T) -> T {
    ENV_SNAPSHOT.with(|s| *s.borrow_mut() = vars);
    let out = f();
    ENV_SNAPSHOT.with(|s| s.borrow_mut().clear());
    out
}

/// Names of all `${VAR}` references in `text`, so that only those are read from the environment.
pub(crate) fn env_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find("${") {
        rest = &rest[pos + 2..];
        let end = rest.find(['}', ':']).unwrap_or(rest.len());
        out.push(rest[..end].to_owned());
    }
    out
}

/// A string in which `${VAR}` and `${VAR:-default}` are replaced from the environment while
/// the file is parsed. A reference to an unset variable without a default is an error that
/// names the variable, never its value.
#[derive(Debug, Clone)]
pub struct EnvString(pub String);

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ENV_SNAPSHOT
            .with(|env| expand(&s, &env.borrow()))
            .map(EnvString)
            .map_err(de::Error::custom)
    }
}

/// Expands `${VAR}` / `${VAR:-default}` in `s`.
pub(crate) fn expand(s: &str, env: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("${") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated `${` reference".to_owned())?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(format!(
                "`${{{inner}}}` is not a valid environment variable reference"
            ));
        }
        match (env.get(name), default) {
            (Some(v), _) if !v.is_empty() => out.push_str(v),
            (_, Some(d)) => out.push_str(d),
            _ => return Err(format!("environment variable `{name}` is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
