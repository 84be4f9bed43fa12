//! Validation of the API-surface settings: `wildcards:`, `passthrough:` and
//! `providers.<name>.allow_model_delete`, plus the default pass-through table.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::super::raw::{RawConfig, RawPassthrough, RawWildcard};
use super::super::{
    PassthroughRoute, ProviderConfig, ProviderKind, WildcardForward, WildcardRoute,
};
use super::{key, Seg, Validator};

/// OpenAI endpoints forwarded by default (to the provider named `openai`, or else the only
/// OpenAI-type provider). Everything the gateway does not serve itself and OpenAI's SDKs call.
pub const DEFAULT_OPENAI_PREFIXES: [&str; 12] = [
    "/v1/files",
    "/v1/uploads",
    "/v1/batches",
    "/v1/vector_stores",
    "/v1/images",
    "/v1/audio",
    "/v1/moderations",
    "/v1/fine_tuning",
    "/v1/evals",
    "/v1/containers",
    "/v1/assistants",
    "/v1/threads",
];

/// Anthropic endpoints forwarded by default (to the provider named `anthropic`, or else the
/// only Anthropic-type provider). `/v1/models` is forwarded only for Anthropic clients (requests
/// with an `anthropic-version` header); everyone else gets the gateway's own model list.
pub const DEFAULT_ANTHROPIC_PREFIXES: [&str; 3] = [
    "/v1/messages/count_tokens",
    "/v1/messages/batches",
    "/v1/models",
];

/// Paths the gateway serves through its own pipeline; a pass-through prefix may not take them.
const OWN_PATHS: [&str; 4] = [
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/messages",
    "/v1/completions",
];

/// Default body limit of a pass-through request (OpenAI's file uploads go up to 512 MB).
pub const DEFAULT_PASSTHROUGH_MAX_BODY: u64 = 512 * 1024 * 1024;
const MAX_PASSTHROUGH_BODY: u64 = 8 * 1024 * 1024 * 1024;

/// The pass-through table used when the config has no `passthrough:` key.
pub fn default_passthrough(
    providers: &BTreeMap<String, Arc<ProviderConfig>>,
) -> Vec<PassthroughRoute> {
    let pick = |name: &str, is_kind: fn(&ProviderKind) -> bool| {
        providers
            .get(name)
            .filter(|p| is_kind(&p.kind))
            .or_else(|| {
                let mut of_kind = providers.values().filter(|p| is_kind(&p.kind));
                match (of_kind.next(), of_kind.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            })
            .cloned()
    };
    let mut out = Vec::new();
    let routes = [
        (
            pick("openai", |k| matches!(k, ProviderKind::OpenAi)),
            &DEFAULT_OPENAI_PREFIXES[..],
        ),
        (
            pick("anthropic", |k| matches!(k, ProviderKind::Anthropic { .. })),
            &DEFAULT_ANTHROPIC_PREFIXES[..],
        ),
    ];
    for (provider, prefixes) in routes {
        if let Some(p) = provider {
            out.extend(prefixes.iter().map(|prefix| PassthroughRoute {
                prefix: (*prefix).to_owned(),
                provider: Arc::clone(&p),
                max_body_size: DEFAULT_PASSTHROUGH_MAX_BODY,
            }));
        }
    }
    out
}

impl Validator<'_> {
    /// `wildcards:`; problems name the entry and key.
    pub(super) fn wildcards(
        &mut self,
        raw: &[RawWildcard],
        providers: &BTreeMap<String, Arc<ProviderConfig>>,
        raw_cfg: &RawConfig,
    ) -> Vec<WildcardRoute> {
        let mut out: Vec<WildcardRoute> = Vec::new();
        for (i, w) in raw.iter().enumerate() {
            let at = |k: &str| vec![key("wildcards"), Seg::Index(i), key(k)];
            let stars = w.pattern.matches('*').count();
            if stars != 1 || w.pattern.chars().any(char::is_whitespace) {
                self.problem(
                    &at("pattern"),
                    format!(
                        "`{}` must contain exactly one `*` and no whitespace (e.g. `openai/*`, \
                         `claude-*`, `*`)",
                        w.pattern
                    ),
                );
                continue;
            }
            if out.iter().any(|o| o.pattern == w.pattern) {
                self.problem(&at("pattern"), format!("duplicate pattern `{}`", w.pattern));
            }
            let forward = match w.forward.as_deref() {
                None if w.pattern.contains("/*") => WildcardForward::Capture,
                None => WildcardForward::Name,
                Some("capture") => WildcardForward::Capture,
                Some("name") => WildcardForward::Name,
                Some(other) => {
                    self.problem(
                        &at("forward"),
                        format!("`{other}` is neither `capture` nor `name`"),
                    );
                    continue;
                }
            };
            let Some(provider) =
                self.known_provider(&w.provider, providers, raw_cfg, &at("provider"))
            else {
                continue;
            };
            out.push(WildcardRoute {
                pattern: w.pattern.clone(),
                provider,
                forward,
            });
        }
        out
    }

    /// `passthrough:`, or the defaults when it is absent.
    pub(super) fn passthrough(
        &mut self,
        raw: Option<&[RawPassthrough]>,
        providers: &BTreeMap<String, Arc<ProviderConfig>>,
        raw_cfg: &RawConfig,
    ) -> Vec<PassthroughRoute> {
        let Some(raw) = raw else {
            return default_passthrough(providers);
        };
        let mut out: Vec<PassthroughRoute> = Vec::new();
        for (i, e) in raw.iter().enumerate() {
            let at = |k: &str| vec![key("passthrough"), Seg::Index(i), key(k)];
            let prefix = e.prefix.trim_end_matches('/');
            let well_formed = prefix.starts_with("/v1/")
                && prefix[1..].split('/').all(|s| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c))
                });
            if !well_formed {
                self.problem(
                    &at("prefix"),
                    format!(
                        "`{}` must be a path under `/v1/` such as `/v1/files` (letters, digits, \
                         `-`, `_`, `.`, `~` between slashes)",
                        e.prefix
                    ),
                );
                continue;
            }
            if OWN_PATHS.contains(&prefix) {
                self.problem(
                    &at("prefix"),
                    format!("`{prefix}` is served by the gateway's own pipeline"),
                );
                continue;
            }
            if out.iter().any(|o| o.prefix == prefix) {
                self.problem(&at("prefix"), format!("duplicate prefix `{prefix}`"));
            }
            let max_body_size = e
                .max_body_size
                .map_or(DEFAULT_PASSTHROUGH_MAX_BODY, |s| s.0);
            if max_body_size == 0 || max_body_size > MAX_PASSTHROUGH_BODY {
                self.problem(&at("max_body_size"), "must be between 1 byte and 8GiB");
            }
            let Some(provider) =
                self.known_provider(&e.provider, providers, raw_cfg, &at("provider"))
            else {
                continue;
            };
            match &provider.kind {
                ProviderKind::OpenAi | ProviderKind::Azure { .. } => {
                    if prefix == "/v1/models" {
                        self.problem(
                            &at("prefix"),
                            "`/v1/models` is the gateway's own model list; it can be forwarded \
                             only to an Anthropic provider, for Anthropic clients",
                        );
                        continue;
                    }
                }
                ProviderKind::Anthropic { .. } => {}
                other => {
                    let kind = match other {
                        ProviderKind::Gemini => "gemini",
                        ProviderKind::Vertex => "vertex",
                        _ => "bedrock",
                    };
                    self.problem(
                        &at("provider"),
                        format!(
                            "provider `{}` is of type `{kind}`, which does not serve OpenAI's or \
                             Anthropic's endpoints; pass-through needs an `openai`, `azure`, \
                             `anthropic` or `mock` provider",
                            e.provider
                        ),
                    );
                    continue;
                }
            }
            out.push(PassthroughRoute {
                prefix: prefix.to_owned(),
                provider,
                max_body_size,
            });
        }
        out
    }

    /// The providers with `allow_model_delete: true` (OpenAI-type only: Azure deletes models
    /// through its management API, Anthropic has no such endpoint).
    pub(super) fn model_delete(
        &mut self,
        raw: &RawConfig,
        providers: &BTreeMap<String, Arc<ProviderConfig>>,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (name, p) in &raw.providers {
            if p.allow_model_delete != Some(true) {
                continue;
            }
            match providers.get(name).map(|p| &p.kind) {
                Some(ProviderKind::OpenAi) => {
                    out.insert(name.clone());
                }
                Some(_) => self.problem(
                    &[key("providers"), key(name), key("allow_model_delete")],
                    "only `openai` (and `mock`) providers offer `DELETE /v1/models/{id}`",
                ),
                None => {}
            }
        }
        out
    }

    fn known_provider(
        &mut self,
        name: &str,
        providers: &BTreeMap<String, Arc<ProviderConfig>>,
        raw_cfg: &RawConfig,
        at: &[Seg],
    ) -> Option<Arc<ProviderConfig>> {
        if let Some(p) = providers.get(name) {
            return Some(Arc::clone(p));
        }
        // A provider that exists but failed validation already has its own problem.
        if !raw_cfg.providers.contains_key(name) {
            let known: Vec<&str> = raw_cfg.providers.keys().map(String::as_str).collect();
            self.problem(
                at,
                format!(
                    "unknown provider `{name}`; configured providers: {}",
                    if known.is_empty() {
                        "(none)".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
        None
    }
}
