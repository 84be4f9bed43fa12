//! Turns a [`RawConfig`] into a [`Config`], collecting every problem with its key and line.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::env::{self, EnvSource, KNOWN_SERVICES};
use super::locate::{locate, Seg};
use super::raw::{self, RawConfig, RawProviderKind};
use crate::capabilities::Capabilities;
use crate::error::FailureKind;
use crate::resilience::{
    BreakerConfig, BudgetConfig, HealthChecks, HedgeDelay, ResilienceConfig, RetryPolicy,
};

mod budgets;
mod surface;

use super::{
    AuthConfig, AwsCredentials, Config, ConfigError, Deployment, Endpoint, Fallback, ModelAlias,
    Problem, ProviderConfig, ProviderKind, Secret, ServerConfig, TelemetryConfig, Timeouts,
    VirtualKey,
};

/// Default listen address: loopback only, so a fresh install is never exposed by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4000";
const DEFAULT_MAX_BODY: u64 = 16 * 1024 * 1024;
const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// Reads and validates the config file at `path`.
pub fn load_file(path: &str, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    from_yaml(&text, env)
}

/// Parses and validates a YAML config text.
pub fn from_yaml(text: &str, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    let raw = parse(text, env)?;
    let mut v = Validator {
        text,
        env,
        problems: Vec::new(),
    };
    let cfg = v.config(raw);
    if v.problems.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigError::Invalid(v.problems))
    }
}

fn parse(text: &str, env: &dyn EnvSource) -> Result<RawConfig, ConfigError> {
    let is_blank = text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---"
    });
    if is_blank {
        return Ok(RawConfig::default());
    }
    let vars: HashMap<String, String> = raw::env_refs(text)
        .into_iter()
        .filter_map(|name| env.var(&name).map(|v| (name, v)))
        .collect();
    raw::with_env(vars, || {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize::<_, RawConfig>(de).map_err(|e| {
            let segs: Vec<Seg> = e
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                    serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                    _ => None,
                })
                .collect();
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            if path.is_empty() || path == "." {
                return ConfigError::Parse(format!("config: {inner}"));
            }
            // The parser places errors raised inside a value (an unset `${VAR}`, a bad
            // duration) at the start of the enclosing mapping; the key path pins the real line.
            match locate(text, &segs) {
                Some(line) => ConfigError::Parse(format!(
                    "`{path}` (line {line}): {}",
                    bare_message(&inner, &path)
                )),
                None => ConfigError::Parse(format!("`{path}`: {inner}")),
            }
        })
    })
}

/// Strips the YAML parser's own path prefix and ` at line L column C` suffix from a message.
fn bare_message<'m>(msg: &'m str, path: &str) -> &'m str {
    let mut m = msg;
    if let Some(pos) = m.rfind(" at line ") {
        if m[pos + 9..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ')
        {
            m = &m[..pos];
        }
    }
    if let Some((prefix, rest)) = m.split_once(": ") {
        if path.starts_with(prefix) && !prefix.contains(' ') {
            m = rest;
        }
    }
    m
}

/// The config used when no file is given: the built-in mock behind `demo`, plus every
/// OpenAI-compatible service whose usual environment variables are set.
pub fn embedded_default(env: &dyn EnvSource) -> Config {
    let mock = Arc::new(ProviderConfig {
        name: Arc::from("mock"),
        kind: ProviderKind::OpenAi,
        endpoint: Endpoint::EmbeddedMock,
        api_key: None,
        headers: Vec::new(),
    });
    let mut providers = BTreeMap::new();
    providers.insert("mock".to_owned(), mock.clone());
    let nonempty = |name: &str| env.var(name).filter(|v| !v.trim().is_empty());
    for svc in KNOWN_SERVICES {
        let key = nonempty(svc.key_var);
        let base_override = svc.base_url_var.and_then(nonempty);
        if key.is_none() && !(svc.key_optional && base_override.is_some()) {
            continue;
        }
        let base = base_override.unwrap_or_else(|| svc.default_base_url.into());
        providers.insert(
            svc.name.to_owned(),
            Arc::new(ProviderConfig {
                name: Arc::from(svc.name),
                kind: ProviderKind::OpenAi,
                endpoint: Endpoint::Url(base.trim_end_matches('/').to_owned()),
                api_key: key.map(Secret::new),
                headers: Vec::new(),
            }),
        );
    }
    if let (Some(key), Some(endpoint)) = (
        nonempty(env::ENV_AZURE_KEY),
        nonempty(env::ENV_AZURE_ENDPOINT),
    ) {
        let api_version = nonempty(env::ENV_AZURE_API_VERSION)
            .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.into());
        providers.insert(
            "azure".to_owned(),
            Arc::new(ProviderConfig {
                name: Arc::from("azure"),
                kind: ProviderKind::Azure { api_version },
                endpoint: Endpoint::Url(endpoint.trim_end_matches('/').to_owned()),
                api_key: Some(Secret::new(key)),
                headers: Vec::new(),
            }),
        );
    }
    if let Some(key) = nonempty(env::ENV_ANTHROPIC_KEY) {
        let base = nonempty(env::ENV_ANTHROPIC_BASE_URL).map_or_else(
            || env::DEFAULT_ANTHROPIC_BASE_URL.to_owned(),
            |root| format!("{}/v1", root.trim_end_matches('/')),
        );
        providers.insert(
            "anthropic".to_owned(),
            Arc::new(ProviderConfig {
                name: Arc::from("anthropic"),
                kind: ProviderKind::Anthropic { api_version: None },
                endpoint: Endpoint::Url(base),
                api_key: Some(Secret::new(key)),
                headers: Vec::new(),
            }),
        );
    }
    if let (Some(access_key_id), Some(secret), Some(region)) = (
        nonempty(env::ENV_AWS_ACCESS_KEY_ID),
        nonempty(env::ENV_AWS_SECRET_ACCESS_KEY),
        env::aws_region(env),
    ) {
        let base = nonempty(env::ENV_AWS_ENDPOINT_URL_BEDROCK_RUNTIME).map_or_else(
            || env::bedrock_base_url(&region),
            |url| url.trim_end_matches('/').to_owned(),
        );
        providers.insert(
            "bedrock".to_owned(),
            Arc::new(ProviderConfig {
                name: Arc::from("bedrock"),
                kind: ProviderKind::Bedrock {
                    region,
                    credentials: AwsCredentials {
                        access_key_id: access_key_id.trim().to_owned(),
                        secret_access_key: Secret::new(secret),
                        session_token: nonempty(env::ENV_AWS_SESSION_TOKEN).map(Secret::new),
                    },
                },
                endpoint: Endpoint::Url(base),
                api_key: None,
                headers: Vec::new(),
            }),
        );
    }
    if let Some(key) = nonempty(env::ENV_GOOGLE_KEY).or_else(|| nonempty(env::ENV_GEMINI_KEY)) {
        providers.insert(
            "gemini".to_owned(),
            Arc::new(ProviderConfig {
                name: Arc::from("gemini"),
                kind: ProviderKind::Gemini,
                endpoint: Endpoint::Url(env::DEFAULT_GEMINI_BASE_URL.to_owned()),
                api_key: Some(Secret::new(key)),
                headers: Vec::new(),
            }),
        );
    }
    if let Some(host) = nonempty(env::ENV_OLLAMA_HOST) {
        let host = host.trim_end_matches('/');
        let base = if host.starts_with("http://") || host.starts_with("https://") {
            format!("{host}/v1")
        } else {
            let host = host.replace("0.0.0.0", "127.0.0.1");
            if host.contains(':') {
                format!("http://{host}/v1")
            } else {
                format!("http://{host}:11434/v1")
            }
        };
        providers.insert(
            "ollama".to_owned(),
            Arc::new(ProviderConfig {
                name: Arc::from("ollama"),
                kind: ProviderKind::OpenAi,
                endpoint: Endpoint::Url(base),
                api_key: None,
                headers: Vec::new(),
            }),
        );
    }
    // The same built-in mock, spoken to in Anthropic's format, so that `demo-claude` shows the
    // translation both ways with no network.
    let mock_anthropic = Arc::new(ProviderConfig {
        name: Arc::from("mock-anthropic"),
        kind: ProviderKind::Anthropic { api_version: None },
        endpoint: Endpoint::EmbeddedMock,
        api_key: None,
        headers: Vec::new(),
    });
    providers.insert("mock-anthropic".to_owned(), mock_anthropic.clone());
    // And in Bedrock's, signed with the mock's published test credentials, for `demo-bedrock`.
    let mock_bedrock = Arc::new(ProviderConfig {
        name: Arc::from("mock-bedrock"),
        kind: ProviderKind::Bedrock {
            region: "us-east-1".to_owned(),
            credentials: AwsCredentials {
                access_key_id: switchyard_mock::BEDROCK_ACCESS_KEY_ID.to_owned(),
                secret_access_key: Secret::new(
                    switchyard_mock::BEDROCK_SECRET_ACCESS_KEY.to_owned(),
                ),
                session_token: None,
            },
        },
        endpoint: Endpoint::EmbeddedMock,
        api_key: None,
        headers: Vec::new(),
    });
    // And in Gemini's format, behind `demo-gemini`.
    let mock_gemini = Arc::new(ProviderConfig {
        name: Arc::from("mock-gemini"),
        kind: ProviderKind::Gemini,
        endpoint: Endpoint::EmbeddedMock,
        api_key: None,
        headers: Vec::new(),
    });
    providers.insert("mock-bedrock".to_owned(), mock_bedrock.clone());
    providers.insert("mock-gemini".to_owned(), mock_gemini.clone());
    let mut models = BTreeMap::new();
    for (alias, provider, model) in [
        ("demo", &mock, "mock-gpt"),
        ("demo-embed", &mock, "mock-embed"),
        ("demo-claude", &mock_anthropic, "mock-claude"),
        ("demo-bedrock", &mock_bedrock, "mock.bedrock-model-v1:0"),
        ("demo-gemini", &mock_gemini, "mock-gemini"),
    ] {
        models.insert(
            alias.to_owned(),
            ModelAlias {
                deployments: vec![Deployment {
                    provider: Arc::clone(provider),
                    model: Arc::from(model),
                    weight: 1,
                    timeouts: default_timeouts(),
                }],
                fallbacks: Vec::new(),
                hedge: None,
                degrade: None,
                stream_resume: false,
            },
        );
    }
    let master_key_sha256 = nonempty(env::ENV_MASTER_KEY).map(|k| sha256(k.as_bytes()));
    let passthrough = surface::default_passthrough(&providers);
    Config {
        server: ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 4000)),
            max_body_size: DEFAULT_MAX_BODY as usize,
            log_format: Default::default(),
            log_level: Default::default(),
            shutdown_timeout: Duration::from_secs(30),
            timeouts: default_timeouts(),
            workers: default_workers(),
        },
        auth: AuthConfig {
            master_key_sha256,
            virtual_keys: Vec::new(),
        },
        providers,
        models,
        capabilities: HashMap::new(),
        resilience: ResilienceConfig::default(),
        wildcards: Vec::new(),
        passthrough,
        model_delete: Default::default(),
        budgets: Default::default(),
        cache: Default::default(),
        guardrails: Default::default(),
        telemetry: TelemetryConfig::default(),
        routing: Default::default(),
        store: crate::store::StoreConfig::default(),
        request_log: crate::reqlog::ReqLogConfig {
            spill_dir: default_spill_dir(&crate::store::StoreConfig::default()),
            ..Default::default()
        },
        admin: crate::admin::AdminConfig {
            key_sha256: nonempty(env::ENV_ADMIN_KEY).map(|k| sha256(k.as_bytes())),
            listen: None,
        },
        keys: crate::keys::KeysConfig::default(),
        limits: crate::limits::LimitsConfig::default(),
    }
}

/// The spill directory next to the SQLite file (`<file>-spill`), or `switchyard-spill` in the
/// working directory for PostgreSQL.
fn default_spill_dir(store: &crate::store::StoreConfig) -> std::path::PathBuf {
    match store {
        crate::store::StoreConfig::Sqlite { path, .. } => {
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push("-spill");
            path.with_file_name(name)
        }
        crate::store::StoreConfig::Postgres { .. } => "switchyard-spill".into(),
    }
}

/// One worker per CPU the process may use.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

fn default_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(10),
        first_byte: Duration::from_secs(600),
        stream_idle: Duration::from_secs(300),
        total: Duration::from_secs(900),
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub(super) struct Validator<'t> {
    text: &'t str,
    /// For settings with an environment fallback (Bedrock's region and AWS credentials).
    env: &'t dyn EnvSource,
    problems: Vec<Problem>,
}

fn key(s: &str) -> Seg {
    Seg::Key(s.to_owned())
}

/// A relative key path as sections report it (`models[1]`, `[2].patterns[0]`) as segments.
fn path_segments(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(key(&rest[..i]));
            }
            rest = &rest[i..];
        } else {
            out.push(key(rest));
            continue;
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let Some((n, after)) = inner.split_once(']') else {
                break;
            };
            out.push(n.parse().map_or_else(|_| key(n), Seg::Index));
            rest = after;
        }
    }
    out
}

impl Validator<'_> {
    /// Problems recorded so far.
    pub(super) fn problem_count(&self) -> usize {
        self.problems.len()
    }

    pub(super) fn problem(&mut self, path: &[Seg], message: impl Into<String>) {
        let mut key = String::new();
        for seg in path {
            match seg {
                Seg::Key(k) => {
                    if !key.is_empty() {
                        key.push('.');
                    }
                    key.push_str(k);
                }
                Seg::Index(i) => key.push_str(&format!("[{i}]")),
            }
        }
        let line = locate(self.text, path);
        self.problems.push(Problem {
            key,
            line,
            message: message.into(),
        });
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let server = self.server(&raw.server);
        let auth = self.auth(&raw.auth);
        if !auth.enabled() && !server.listen.ip().is_loopback() && !raw.auth.allow_unauthenticated {
            self.problem(
                &[key("server"), key("listen")],
                format!(
                    "listening on non-loopback address {} without any key would open the gateway to \
                     anyone who can reach it; set auth.master_key or auth.virtual_keys, or \
                     auth.allow_unauthenticated: true",
                    server.listen
                ),
            );
        }
        let mut providers = BTreeMap::new();
        for (name, p) in &raw.providers {
            if let Some(cfg) = self.provider(name, p) {
                providers.insert(name.clone(), Arc::new(cfg));
            }
        }
        let mut models = BTreeMap::new();
        for (alias, m) in &raw.models {
            let path = [key("models"), key(alias)];
            if alias.trim().is_empty() || alias.chars().any(char::is_whitespace) {
                self.problem(
                    &path,
                    "alias names must be non-empty and contain no whitespace",
                );
            }
            let alias_timeouts = self.timeouts(
                server.timeouts,
                m.timeouts.as_ref(),
                &[key("models"), key(alias), key("timeouts")],
            );
            let mut deployments = Vec::new();
            for (i, d) in m.deployments.iter().enumerate() {
                let dpath = [key("models"), key(alias), key("deployments"), Seg::Index(i)];
                let mut tpath = dpath.to_vec();
                tpath.push(key("timeouts"));
                let timeouts = self.timeouts(alias_timeouts, d.timeouts.as_ref(), &tpath);
                let weight = d.weight.unwrap_or(1);
                if d.model.trim().is_empty() {
                    let mut p = dpath.to_vec();
                    p.push(key("model"));
                    self.problem(&p, "must not be empty");
                }
                match providers.get(&d.provider) {
                    Some(provider) => deployments.push(Deployment {
                        provider: Arc::clone(provider),
                        model: Arc::from(d.model.as_str()),
                        weight,
                        timeouts,
                    }),
                    None if raw.providers.contains_key(&d.provider) => {}
                    None => {
                        let known: Vec<&str> = raw.providers.keys().map(String::as_str).collect();
                        let mut p = dpath.to_vec();
                        p.push(key("provider"));
                        self.problem(
                            &p,
                            format!(
                                "unknown provider `{}`; configured providers: {}",
                                d.provider,
                                if known.is_empty() {
                                    "(none)".to_owned()
                                } else {
                                    known.join(", ")
                                }
                            ),
                        );
                    }
                }
            }
            if !m.deployments.is_empty() && m.deployments.iter().all(|d| d.weight == Some(0)) {
                self.problem(
                    &[key("models"), key(alias), key("deployments")],
                    "all weights are 0: no deployment could ever be chosen",
                );
            }
            let fallbacks = self.fallbacks(alias, &m.fallbacks, &raw);
            let hedge = m.hedge.as_ref().and_then(|h| self.hedge(alias, h));
            let degrade = m
                .on_failure
                .as_ref()
                .map(|f| Arc::from(f.message.0.as_str()));
            if degrade
                .as_deref()
                .is_some_and(|m: &str| m.trim().is_empty())
            {
                self.problem(
                    &[key("models"), key(alias), key("on_failure"), key("message")],
                    "must not be empty",
                );
            }
            if hedge.is_some() && m.deployments.len() < 2 {
                self.problem(
                    &[key("models"), key(alias), key("hedge")],
                    "hedging needs at least two deployments to race",
                );
            }
            models.insert(
                alias.clone(),
                ModelAlias {
                    deployments,
                    fallbacks,
                    hedge,
                    degrade,
                    stream_resume: m.stream_resume,
                },
            );
        }
        let capabilities = self.capabilities(&raw.capabilities);
        let resilience = self.resilience(&raw.resilience);
        let telemetry = self.telemetry(&raw.telemetry);
        let routing = self.routing(&raw);
        let store = self.store(raw.store.as_ref());
        let request_log = self.request_log(&raw, &store);
        let admin = self.admin(&raw.admin);
        let keys = self.keys(&raw.keys);
        let limits = self.limits(&raw.limits);
        let wildcards = self.wildcards(&raw.wildcards, &providers, &raw);
        let passthrough = self.passthrough(raw.passthrough.as_deref(), &providers, &raw);
        let model_delete = self.model_delete(&raw, &providers);
        let budgets = self.budgets(&raw);
        let cache = self.section("cache", crate::cache::CacheConfig::from_raw(&raw.cache));
        let guardrails = self.section(
            "guardrails",
            crate::guardrails::GuardrailsConfig::from_raw(&raw.guardrails),
        );
        Config {
            server,
            auth,
            providers,
            models,
            capabilities,
            resilience,
            telemetry,
            routing,
            store,
            request_log,
            admin,
            keys,
            limits,
            wildcards,
            passthrough,
            model_delete,
            budgets,
            cache,
            guardrails,
        }
    }

    /// A section built by its own validator, whose problems name key paths relative to the
    /// section (`models[1]`, `[2].patterns[0]`); its default stands in when there are any.
    fn section<T: Default>(&mut self, name: &str, built: Result<T, Vec<(String, String)>>) -> T {
        built.unwrap_or_else(|problems| {
            for (path, message) in problems {
                let mut at = vec![key(name)];
                at.extend(path_segments(&path));
                self.problem(&at, message);
            }
            T::default()
        })
    }

    fn keys(&mut self, raw: &crate::keys::config::RawKeys) -> crate::keys::KeysConfig {
        crate::keys::KeysConfig::from_raw(raw).unwrap_or_else(|problems| {
            for (field, message) in problems {
                self.problem(&[key("keys"), key(field)], message);
            }
            crate::keys::KeysConfig::default()
        })
    }

    fn limits(&mut self, raw: &crate::limits::config::RawLimits) -> crate::limits::LimitsConfig {
        crate::limits::LimitsConfig::from_raw(raw).unwrap_or_else(|problems| {
            for (path, message) in problems {
                let mut at = vec![key("limits")];
                at.extend(path.iter().map(|p| key(p)));
                self.problem(&at, message);
            }
            crate::limits::LimitsConfig::default()
        })
    }

    fn store(&mut self, raw: Option<&raw::RawStore>) -> crate::store::StoreConfig {
        use crate::store::{StoreConfig, DEFAULT_TIMEOUT};
        let Some(raw) = raw else {
            return StoreConfig::default();
        };
        let timeout = raw.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0);
        if timeout.is_zero() {
            self.problem(&[key("store"), key("timeout")], "must be greater than 0");
        }
        match (&raw.sqlite, &raw.postgres) {
            (Some(path), None) if !path.0.trim().is_empty() => StoreConfig::Sqlite {
                path: path.0.trim().into(),
                timeout,
            },
            (None, Some(url)) => {
                if let Err(e) = url.0.parse::<tokio_postgres::Config>() {
                    // The parser's message never repeats the password.
                    self.problem(
                        &[key("store"), key("postgres")],
                        format!("not a PostgreSQL URL: {e}"),
                    );
                }
                StoreConfig::Postgres {
                    url: Secret::new(url.0.clone()),
                    timeout,
                }
            }
            _ => {
                self.problem(
                    &[key("store")],
                    "set exactly one of `sqlite: <file>` or `postgres: <url>`",
                );
                StoreConfig::default()
            }
        }
    }

    fn body_policy(&mut self, raw: raw::RawBodyPolicy, at: &[Seg]) -> crate::reqlog::BodyPolicy {
        use crate::reqlog::BodyPolicy;
        match raw {
            raw::RawBodyPolicy::None => BodyPolicy::None,
            raw::RawBodyPolicy::Full => BodyPolicy::Full,
            raw::RawBodyPolicy::Redacted => BodyPolicy::Redacted,
            raw::RawBodyPolicy::Truncate(n) => {
                if n.0 == 0 {
                    self.problem(at, "`truncate` must keep at least 1 byte (or use `none`)");
                }
                BodyPolicy::Truncate(usize::try_from(n.0).unwrap_or(usize::MAX))
            }
        }
    }

    fn request_log(
        &mut self,
        raw_cfg: &RawConfig,
        store: &crate::store::StoreConfig,
    ) -> crate::reqlog::ReqLogConfig {
        use crate::reqlog::{ReqLogConfig, Retention};
        let raw = &raw_cfg.request_log;
        let d = ReqLogConfig::default();
        let at = |k: &str| [key("request_log"), key(k)];
        let bodies = raw
            .bodies
            .map_or(d.bodies, |b| self.body_policy(b, &at("bodies")));
        let mut alias_bodies = HashMap::new();
        for (alias, m) in &raw_cfg.models {
            if let Some(b) = m.log_bodies {
                let p = self.body_policy(b, &[key("models"), key(alias), key("log_bodies")]);
                alias_bodies.insert(alias.clone(), p);
            }
        }
        let max_body_size = raw.max_body_size.map_or(d.max_body_size as u64, |s| s.0);
        if max_body_size > 64 * 1024 * 1024 {
            self.problem(&at("max_body_size"), "must be at most 64MiB");
        }
        let mut positive = |v: Option<usize>, default: usize, name: &str, max: usize| {
            let v = v.unwrap_or(default);
            if v == 0 || v > max {
                self.problem(&at(name), format!("must be between 1 and {max}"));
            }
            v.clamp(1, max)
        };
        let queue_size = positive(raw.queue_size, d.queue_size, "queue_size", 10_000_000);
        let batch_size = positive(raw.batch_size, d.batch_size, "batch_size", 10_000);
        let mut duration = |v: Option<raw::DurationStr>, default: Duration, path: &[Seg]| {
            let v = v.map_or(default, |x| x.0);
            if v.is_zero() {
                self.problem(path, "must be greater than 0");
                return default;
            }
            v
        };
        let flush_interval = duration(raw.flush_interval, d.flush_interval, &at("flush_interval"));
        let retry_interval = duration(raw.retry_interval, d.retry_interval, &at("retry_interval"));
        let rr = raw.retention.as_ref();
        let rpath = |k: &str| [key("request_log"), key("retention"), key(k)];
        let interval = duration(
            rr.and_then(|r| r.interval),
            d.retention.interval,
            &rpath("interval"),
        );
        let max_age = match rr.and_then(|r| r.max_age) {
            Some(a) => Some(duration(Some(a), a.0, &rpath("max_age"))),
            None => d.retention.max_age,
        };
        let max_rows = rr.and_then(|r| r.max_rows);
        if max_rows == Some(0) {
            self.problem(&rpath("max_rows"), "must be at least 1");
        }
        ReqLogConfig {
            enabled: raw.enabled.unwrap_or(true),
            bodies,
            alias_bodies,
            max_body_size: usize::try_from(max_body_size).unwrap_or(usize::MAX),
            queue_size,
            batch_size,
            flush_interval,
            retry_interval,
            spill_dir: raw
                .spill_dir
                .as_ref()
                .map_or_else(|| default_spill_dir(store), |s| s.0.clone().into()),
            retention: Retention {
                max_age,
                max_rows,
                interval,
            },
        }
    }

    fn admin(&mut self, raw: &raw::RawAdmin) -> crate::admin::AdminConfig {
        let path = [key("admin")];
        let key_sha256 = match (&raw.key, &raw.key_sha256) {
            (Some(k), None) if k.0.len() >= 16 => Some(sha256(k.0.as_bytes())),
            (Some(_), None) => {
                self.problem(
                    &[key("admin"), key("key")],
                    "must be at least 16 characters long",
                );
                None
            }
            (None, Some(hex)) => {
                let parsed = parse_hex32(hex);
                if parsed.is_none() {
                    self.problem(
                        &[key("admin"), key("key_sha256")],
                        "must be 64 hexadecimal characters",
                    );
                }
                parsed
            }
            (None, None) => None,
            (Some(_), Some(_)) => {
                self.problem(&path, "set at most one of `key` or `key_sha256`");
                None
            }
        };
        let listen = raw
            .listen
            .as_ref()
            .and_then(|s| match s.0.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.problem(
                        &[key("admin"), key("listen")],
                        format!(
                            "`{}` is not a host:port address such as 127.0.0.1:4001",
                            s.0
                        ),
                    );
                    None
                }
            });
        if listen.is_some() && key_sha256.is_none() {
            self.problem(
                &[key("admin"), key("listen")],
                "needs `admin.key`: the admin API is off without one",
            );
        }
        crate::admin::AdminConfig { key_sha256, listen }
    }

    /// `base` with the values `raw` sets (server, alias or deployment `timeouts:`), each checked.
    fn timeouts(&mut self, base: Timeouts, raw: Option<&raw::RawTimeouts>, at: &[Seg]) -> Timeouts {
        let Some(t) = raw else {
            return base;
        };
        let out = Timeouts {
            connect: t.connect.map_or(base.connect, |x| x.0),
            first_byte: t.first_byte.map_or(base.first_byte, |x| x.0),
            stream_idle: t.stream_idle.map_or(base.stream_idle, |x| x.0),
            total: t.total.map_or(base.total, |x| x.0),
        };
        for (name, value) in [
            ("connect", out.connect),
            ("first_byte", out.first_byte),
            ("stream_idle", out.stream_idle),
            ("total", out.total),
        ] {
            if value.is_zero() {
                let mut p = at.to_vec();
                p.push(key(name));
                self.problem(&p, "must be greater than zero");
            }
        }
        out
    }

    fn hedge(&mut self, alias: &str, h: &raw::RawHedge) -> Option<HedgeDelay> {
        let at = |k: &str| vec![key("models"), key(alias), key("hedge"), key(k)];
        let initial = h.initial.as_ref().map_or(Duration::from_secs(1), |d| d.0);
        match h.after.0.trim() {
            "p95" => Some(HedgeDelay::P95 { initial }),
            other => match super::units::parse_duration(other) {
                Ok(d) if !d.is_zero() => {
                    if h.initial.is_some() {
                        self.problem(&at("initial"), "only applies to `after: p95`");
                    }
                    Some(HedgeDelay::Fixed(d))
                }
                _ => {
                    self.problem(
                        &at("after"),
                        format!("`{other}` is neither a duration such as 200ms nor `p95`"),
                    );
                    None
                }
            },
        }
    }

    fn fallbacks(
        &mut self,
        alias: &str,
        raw_fallbacks: &[raw::RawFallback],
        raw: &RawConfig,
    ) -> Vec<Fallback> {
        let mut out = Vec::new();
        for (i, f) in raw_fallbacks.iter().enumerate() {
            let at = |k: &str| {
                vec![
                    key("models"),
                    key(alias),
                    key("fallbacks"),
                    Seg::Index(i),
                    key(k),
                ]
            };
            if f.alias == alias {
                self.problem(&at("alias"), "an alias cannot fall back to itself");
            } else if !raw.models.contains_key(&f.alias) {
                let known: Vec<&str> = raw.models.keys().map(String::as_str).collect();
                self.problem(
                    &at("alias"),
                    format!("unknown alias `{}`; aliases: {}", f.alias, known.join(", ")),
                );
            }
            let mut kinds = Vec::new();
            let mut any = f.on.is_empty();
            for name in &f.on {
                if name == "any" {
                    any = true;
                } else if let Some(k) = FailureKind::ALL.iter().find(|k| k.as_str() == name) {
                    kinds.push(*k);
                } else {
                    let names: Vec<&str> = FailureKind::ALL.iter().map(|k| k.as_str()).collect();
                    self.problem(
                        &at("on"),
                        format!(
                            "unknown failure kind `{name}`; expected `any` or one of: {}",
                            names.join(", ")
                        ),
                    );
                }
            }
            out.push(Fallback {
                alias: f.alias.clone(),
                any_retryable: any,
                kinds,
            });
        }
        out
    }

    fn resilience(&mut self, raw: &raw::RawResilience) -> ResilienceConfig {
        let d = ResilienceConfig::default();
        let at = |parts: &[&str]| {
            let mut p = vec![key("resilience")];
            p.extend(parts.iter().map(|k| key(k)));
            p
        };
        let dur = |v: &Option<raw::DurationStr>, default| v.as_ref().map_or(default, |v| v.0);
        let retry = RetryPolicy {
            max_attempts: raw.max_attempts.unwrap_or(d.retry.max_attempts),
            backoff_base: dur(&raw.backoff_base, d.retry.backoff_base),
            backoff_max: dur(&raw.backoff_max, d.retry.backoff_max),
            max_retry_after: dur(&raw.max_retry_after, d.retry.max_retry_after),
        };
        if !(1..=10).contains(&retry.max_attempts) {
            self.problem(&at(&["max_attempts"]), "must be between 1 and 10");
        }
        if retry.backoff_max < retry.backoff_base {
            self.problem(
                &at(&["backoff_max"]),
                "must not be shorter than backoff_base",
            );
        }
        let b = &raw.retry_budget;
        let budget = BudgetConfig {
            ratio: b.ratio.unwrap_or(d.budget.ratio),
            min_per_second: b.min_per_second.unwrap_or(d.budget.min_per_second),
            window: dur(&b.window, d.budget.window),
        };
        if !(0.0..=10.0).contains(&budget.ratio) {
            self.problem(&at(&["retry_budget", "ratio"]), "must be between 0 and 10");
        }
        if !(0.0..=10_000.0).contains(&budget.min_per_second) {
            self.problem(
                &at(&["retry_budget", "min_per_second"]),
                "must be between 0 and 10000",
            );
        }
        if budget.window.is_zero() {
            self.problem(&at(&["retry_budget", "window"]), "must be longer than 0");
        }
        let k = &raw.breaker;
        let breaker = BreakerConfig {
            consecutive_failures: k
                .consecutive_failures
                .unwrap_or(d.breaker.consecutive_failures),
            failure_rate: k.failure_rate.unwrap_or(d.breaker.failure_rate),
            min_requests: k.min_requests.unwrap_or(d.breaker.min_requests),
            window: dur(&k.window, d.breaker.window),
            open_for: dur(&k.open_for, d.breaker.open_for),
        };
        if breaker.consecutive_failures == 0 {
            self.problem(
                &at(&["breaker", "consecutive_failures"]),
                "must be at least 1",
            );
        }
        if !(breaker.failure_rate > 0.0 && breaker.failure_rate <= 1.0) {
            self.problem(
                &at(&["breaker", "failure_rate"]),
                "must be above 0 and at most 1",
            );
        }
        for (name, v) in [("window", breaker.window), ("open_for", breaker.open_for)] {
            if v.is_zero() {
                self.problem(&at(&["breaker", name]), "must be longer than 0");
            }
        }
        let health_checks = raw.health_checks.as_ref().map(|h| HealthChecks {
            interval: h.interval.0,
            timeout: h.timeout.as_ref().map_or(Duration::from_secs(10), |t| t.0),
        });
        if let Some(h) = health_checks {
            for (name, v) in [("interval", h.interval), ("timeout", h.timeout)] {
                if v < Duration::from_millis(10) {
                    self.problem(&at(&["health_checks", name]), "must be at least 10ms");
                }
            }
        }
        ResilienceConfig {
            retry,
            budget,
            breaker,
            health_checks,
        }
    }

    fn capabilities(
        &mut self,
        raw: &BTreeMap<String, raw::RawCapabilities>,
    ) -> HashMap<String, Capabilities> {
        let mut out = HashMap::new();
        for (name, c) in raw {
            let path = |field: &str| {
                let mut p = vec![key("capabilities"), key(name)];
                if !field.is_empty() {
                    p.push(key(field));
                }
                p
            };
            if name.trim().is_empty() {
                self.problem(
                    &path(""),
                    "needs a model name (`<model>` or `<provider>/<model>`)",
                );
            }
            for (field, v) in [
                ("context_window", c.context_window),
                ("max_output", c.max_output),
            ] {
                if v == Some(0) {
                    self.problem(&path(field), "must be at least 1");
                }
            }
            if let (Some(out), Some(window)) = (c.max_output, c.context_window) {
                if out > window {
                    self.problem(
                        &path("max_output"),
                        format!("{out} is larger than the context window of {window}"),
                    );
                }
            }
            out.insert(
                name.clone(),
                Capabilities {
                    context_window: c.context_window,
                    max_output: c.max_output,
                    tools: c.tools,
                    vision: c.vision,
                    json_schema: c.json_schema,
                    streaming: c.streaming,
                },
            );
        }
        out
    }

    fn server(&mut self, raw: &raw::RawServer) -> ServerConfig {
        let listen = match &raw.listen {
            None => DEFAULT_LISTEN.parse().ok(),
            Some(s) => match s.0.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.problem(
                        &[key("server"), key("listen")],
                        format!(
                            "`{}` is not a host:port address such as 127.0.0.1:4000",
                            s.0
                        ),
                    );
                    None
                }
            },
        };
        if raw.workers.is_some_and(|n| n > 1024) {
            self.problem(
                &[key("server"), key("workers")],
                "must be at most 1024 (0 means one per CPU)",
            );
        }
        let max_body = raw.max_body_size.map_or(DEFAULT_MAX_BODY, |s| s.0);
        if max_body == 0 || max_body > 1024 * 1024 * 1024 {
            self.problem(
                &[key("server"), key("max_body_size")],
                "must be between 1 byte and 1GiB",
            );
        }
        let timeouts = self.timeouts(
            default_timeouts(),
            Some(&raw.timeouts),
            &[key("server"), key("timeouts")],
        );
        ServerConfig {
            listen: listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4000))),
            max_body_size: usize::try_from(max_body).unwrap_or(usize::MAX),
            log_format: raw.log_format.unwrap_or_default(),
            log_level: raw.log_level.unwrap_or_default(),
            shutdown_timeout: raw
                .shutdown_timeout
                .map_or(Duration::from_secs(30), |x| x.0),
            timeouts,
            workers: match raw.workers {
                None | Some(0) => default_workers(),
                Some(n) => n,
            },
        }
    }

    fn auth(&mut self, raw: &raw::RawAuth) -> AuthConfig {
        let master_key_sha256 = raw.master_key.as_ref().map(|k| {
            if k.0.len() < 8 {
                self.problem(
                    &[key("auth"), key("master_key")],
                    "must be at least 8 characters long",
                );
            }
            sha256(k.0.as_bytes())
        });
        let mut virtual_keys: Vec<VirtualKey> = Vec::new();
        for (i, vk) in raw.virtual_keys.iter().enumerate() {
            let path = [key("auth"), key("virtual_keys"), Seg::Index(i)];
            if vk.name.trim().is_empty() {
                self.problem(&path, "`name` must not be empty");
            }
            if virtual_keys.iter().any(|k| *k.name == *vk.name) {
                self.problem(&path, format!("duplicate virtual key name `{}`", vk.name));
            }
            let digest = match (&vk.key, &vk.key_sha256) {
                (Some(k), None) if k.0.len() >= 8 => Some(sha256(k.0.as_bytes())),
                (Some(_), None) => {
                    self.problem(&path, "`key` must be at least 8 characters long");
                    None
                }
                (None, Some(hex)) => {
                    let parsed = parse_hex32(hex);
                    if parsed.is_none() {
                        self.problem(&path, "`key_sha256` must be 64 hexadecimal characters");
                    }
                    parsed
                }
                _ => {
                    self.problem(&path, "set exactly one of `key` or `key_sha256`");
                    None
                }
            };
            let team = vk.team.as_deref().map(str::trim);
            if team.is_some_and(|t| {
                t.is_empty()
                    || t.len() > 64
                    || !t
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
            }) {
                let mut p = path.to_vec();
                p.push(key("team"));
                self.problem(&p, "team names are 1 to 64 of A-Z a-z 0-9 _ - . :");
            }
            if let Some(sha256) = digest {
                virtual_keys.push(VirtualKey {
                    name: Arc::from(vk.name.as_str()),
                    sha256,
                    team: team.map(Arc::from),
                });
            }
        }
        AuthConfig {
            master_key_sha256,
            virtual_keys,
        }
    }

    /// Extra HTTP headers (`headers:` maps), values marked sensitive: they often carry tokens.
    fn headers(
        &mut self,
        raw: &BTreeMap<String, raw::EnvString>,
        at: &[Seg],
    ) -> Vec<(http::HeaderName, http::HeaderValue)> {
        let mut headers = Vec::new();
        for (hname, value) in raw {
            let mut p = at.to_vec();
            p.push(key(hname));
            let parsed_name = http::HeaderName::from_bytes(hname.as_bytes());
            let parsed_value = http::HeaderValue::from_str(&value.0);
            match (parsed_name, parsed_value) {
                (Ok(n), Ok(mut v)) => {
                    v.set_sensitive(true);
                    headers.push((n, v));
                }
                (Err(_), _) => self.problem(&p, "is not a valid HTTP header name"),
                (_, Err(_)) => {
                    self.problem(&p, "has a value that is not a valid HTTP header value")
                }
            }
        }
        headers
    }

    /// `telemetry:`: the OTLP trace endpoint, if any.
    fn telemetry(&mut self, raw: &raw::RawTelemetry) -> TelemetryConfig {
        let Some(o) = &raw.otlp else {
            return TelemetryConfig::default();
        };
        let at = |k: &str| vec![key("telemetry"), key("otlp"), key(k)];
        let headers = self.headers(&o.headers, &at("headers"));
        let base = o.endpoint.0.trim().trim_end_matches('/');
        let url = if base.ends_with("/v1/traces") {
            base.to_owned()
        } else {
            format!("{base}/v1/traces")
        };
        let traces_url = match url.parse::<http::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => u,
            _ => {
                self.problem(&at("endpoint"), "must be an http:// or https:// URL");
                return TelemetryConfig::default();
            }
        };
        let service_name = o
            .service_name
            .clone()
            .unwrap_or_else(|| "switchyard".into());
        if service_name.trim().is_empty() {
            self.problem(&at("service_name"), "must not be empty");
        }
        TelemetryConfig {
            otlp: Some(crate::telemetry::otlp::OtlpConfig {
                traces_url,
                headers,
                service_name,
            }),
        }
    }

    fn provider(&mut self, name: &str, raw: &raw::RawProvider) -> Option<ProviderConfig> {
        let path = [key("providers"), key(name)];
        let before = self.problems.len();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.problem(
                &path,
                "provider names may contain only letters, digits, `-`, `_` and `.`",
            );
        }
        let at = |k: &str| {
            let mut p = path.to_vec();
            p.push(key(k));
            p
        };
        let mut endpoint = match (&raw.base_url, raw.kind) {
            (None, RawProviderKind::Mock) => Endpoint::EmbeddedMock,
            (None, RawProviderKind::Openai) => {
                Endpoint::Url("https://api.openai.com/v1".to_owned())
            }
            (None, RawProviderKind::Anthropic) => {
                Endpoint::Url(env::DEFAULT_ANTHROPIC_BASE_URL.to_owned())
            }
            // Set from the region below, once it is known.
            (None, RawProviderKind::Bedrock) => Endpoint::Url(String::new()),
            (None, RawProviderKind::Azure) => {
                self.problem(
                    &at("base_url"),
                    "Azure needs `base_url: https://<resource>.openai.azure.com`",
                );
                Endpoint::EmbeddedMock
            }
            (None, RawProviderKind::Gemini) => {
                Endpoint::Url(env::DEFAULT_GEMINI_BASE_URL.to_owned())
            }
            (None, RawProviderKind::Vertex) => match self.vertex_base(raw, &path) {
                Some(url) => Endpoint::Url(url),
                None => Endpoint::EmbeddedMock,
            },
            (Some(url), _) => {
                let u = url.0.trim_end_matches('/');
                match u.parse::<http::Uri>() {
                    Ok(uri)
                        if matches!(uri.scheme_str(), Some("http" | "https"))
                            && uri.authority().is_some()
                            && uri.query().is_none() =>
                    {
                        Endpoint::Url(u.to_owned())
                    }
                    _ => {
                        self.problem(
                            &at("base_url"),
                            "must be an http:// or https:// URL without a query string",
                        );
                        Endpoint::EmbeddedMock
                    }
                }
            }
        };
        if raw.kind != RawProviderKind::Vertex {
            for (k, v) in [("project", &raw.project), ("location", &raw.location)] {
                if v.is_some() {
                    self.problem(&at(k), format!("only Vertex AI providers take `{k}`"));
                }
            }
        } else if raw.base_url.is_some() && (raw.project.is_some() || raw.location.is_some()) {
            self.problem(
                &at("base_url"),
                "set either `base_url` or `project` and `location`, not both",
            );
        }
        let kind = match raw.kind {
            RawProviderKind::Openai
            | RawProviderKind::Mock
            | RawProviderKind::Gemini
            | RawProviderKind::Vertex => {
                if raw.api_version.is_some() {
                    self.problem(
                        &at("api_version"),
                        "only Azure and Anthropic providers take `api_version`",
                    );
                }
                match raw.kind {
                    RawProviderKind::Gemini => ProviderKind::Gemini,
                    RawProviderKind::Vertex => ProviderKind::Vertex,
                    _ => ProviderKind::OpenAi,
                }
            }
            RawProviderKind::Bedrock => {
                let (region, credentials) = self.bedrock(raw, &at)?;
                if endpoint == Endpoint::Url(String::new()) {
                    endpoint = Endpoint::Url(env::bedrock_base_url(&region));
                }
                ProviderKind::Bedrock {
                    region,
                    credentials,
                }
            }
            RawProviderKind::Anthropic => ProviderKind::Anthropic {
                api_version: raw.api_version.as_ref().map(|v| v.0.clone()),
            },
            RawProviderKind::Azure => ProviderKind::Azure {
                api_version: raw
                    .api_version
                    .as_ref()
                    .map_or_else(|| DEFAULT_AZURE_API_VERSION.to_owned(), |v| v.0.clone()),
            },
        };
        if raw.kind != RawProviderKind::Bedrock {
            for k in [
                "region",
                "aws_access_key_id",
                "aws_secret_access_key",
                "aws_session_token",
            ] {
                let set = match k {
                    "region" => raw.region.is_some(),
                    "aws_access_key_id" => raw.aws_access_key_id.is_some(),
                    "aws_secret_access_key" => raw.aws_secret_access_key.is_some(),
                    _ => raw.aws_session_token.is_some(),
                };
                if set {
                    self.problem(&at(k), format!("only Bedrock providers take `{k}`"));
                }
            }
        }
        let headers = self.headers(&raw.headers, &at("headers"));
        let api_key = raw.api_key.as_ref().map(|k| Secret::new(k.0.clone()));
        if let Some(k) = &api_key {
            if http::HeaderValue::from_str(k.expose()).is_err() {
                self.problem(
                    &at("api_key"),
                    "contains characters that cannot be sent in an HTTP header",
                );
            }
        }
        if self.problems.len() > before {
            return None;
        }
        Some(ProviderConfig {
            name: Arc::from(name),
            kind,
            endpoint,
            api_key,
            headers,
        })
    }
}

impl Validator<'_> {
    /// A Bedrock provider's region and credentials, each from the config or else from AWS's
    /// usual environment variables; `None` (with the problems recorded) when one is missing.
    fn bedrock(
        &mut self,
        raw: &raw::RawProvider,
        at: &dyn Fn(&str) -> Vec<Seg>,
    ) -> Option<(String, AwsCredentials)> {
        let before = self.problems.len();
        for (k, set) in [
            ("api_key", raw.api_key.is_some()),
            ("api_version", raw.api_version.is_some()),
        ] {
            if set {
                self.problem(
                    &at(k),
                    format!(
                        "Bedrock providers sign requests with AWS credentials and take no `{k}`; \
                         use `aws_access_key_id` and `aws_secret_access_key`"
                    ),
                );
            }
        }
        let env_var = |name: &str| self.env.var(name).filter(|v| !v.trim().is_empty());
        let region = match &raw.region {
            Some(r) => Some(r.0.trim().to_owned()),
            None => env::aws_region(self.env),
        };
        let from_env_key = raw.aws_access_key_id.is_none();
        let access_key_id = raw
            .aws_access_key_id
            .as_ref()
            .map(|k| k.0.trim().to_owned())
            .or_else(|| env_var(env::ENV_AWS_ACCESS_KEY_ID).map(|v| v.trim().to_owned()));
        let secret = raw
            .aws_secret_access_key
            .as_ref()
            .map(|k| k.0.clone())
            .or_else(|| env_var(env::ENV_AWS_SECRET_ACCESS_KEY));
        // A session token belongs to one key pair: take the environment's only with its keys.
        let token = match &raw.aws_session_token {
            Some(t) => Some(t.0.clone()).filter(|t| !t.is_empty()),
            None if from_env_key => env_var(env::ENV_AWS_SESSION_TOKEN),
            None => None,
        };
        match &region {
            None => self.problem(
                &at("region"),
                format!(
                    "Bedrock needs an AWS region: set `region` (e.g. us-east-1) or the {} \
                     environment variable",
                    env::ENV_AWS_REGION
                ),
            ),
            Some(r)
                if r.is_empty()
                    || !r
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
            {
                self.problem(
                    &at("region"),
                    format!("`{r}` is not an AWS region name such as us-east-1"),
                );
            }
            Some(_) => {}
        }
        if access_key_id.as_deref().is_none_or(str::is_empty) {
            self.problem(
                &at("aws_access_key_id"),
                format!(
                    "Bedrock needs AWS credentials: set `aws_access_key_id` (e.g. \
                     ${{{0}}}) or the {0} environment variable",
                    env::ENV_AWS_ACCESS_KEY_ID
                ),
            );
        }
        if secret.as_deref().is_none_or(str::is_empty) {
            self.problem(
                &at("aws_secret_access_key"),
                format!(
                    "Bedrock needs AWS credentials: set `aws_secret_access_key` (e.g. \
                     ${{{0}}}) or the {0} environment variable",
                    env::ENV_AWS_SECRET_ACCESS_KEY
                ),
            );
        }
        for (k, value) in [
            ("aws_access_key_id", access_key_id.as_deref()),
            ("aws_session_token", token.as_deref()),
        ] {
            if value.is_some_and(|v| http::HeaderValue::from_str(v).is_err()) {
                self.problem(
                    &at(k),
                    "contains characters that cannot be sent in an HTTP header",
                );
            }
        }
        if self.problems.len() > before {
            return None;
        }
        Some((
            region?,
            AwsCredentials {
                access_key_id: access_key_id?,
                secret_access_key: Secret::new(secret?),
                session_token: token.map(Secret::new),
            },
        ))
    }

    /// Vertex AI's base URL from `project` and `location`, reporting what is missing or
    /// malformed under the key at fault.
    fn vertex_base(&mut self, raw: &raw::RawProvider, path: &[Seg]) -> Option<String> {
        let at = |k: &str| {
            let mut p = path.to_vec();
            p.push(key(k));
            p
        };
        let (Some(project), Some(location)) = (&raw.project, &raw.location) else {
            self.problem(
                &at("base_url"),
                "Vertex AI needs `base_url: https://<location>-aiplatform.googleapis.com/v1/\
                 projects/<project>/locations/<location>/publishers/google`, or `project` and \
                 `location`",
            );
            return None;
        };
        let (project, location) = (project.0.trim(), location.0.trim());
        let mut ok = true;
        let project_ok = project.len() >= 4
            && project.len() <= 63
            && project.starts_with(|c: char| c.is_ascii_lowercase())
            && !project.ends_with('-')
            && project
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.:".contains(c));
        if !project_ok {
            self.problem(
                &at("project"),
                format!(
                    "`{project}` is not a Google Cloud project id (lower-case letters, digits \
                     and hyphens, starting with a letter)"
                ),
            );
            ok = false;
        }
        let location_ok = !location.is_empty()
            && location
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !location_ok {
            self.problem(
                &at("location"),
                format!(
                    "`{location}` is not a Vertex AI location such as `us-central1` or `global`"
                ),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        let host = if location == "global" {
            "aiplatform.googleapis.com".to_owned()
        } else {
            format!("{location}-aiplatform.googleapis.com")
        };
        Some(format!(
            "https://{host}/v1/projects/{project}/locations/{location}/publishers/google"
        ))
    }
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}
