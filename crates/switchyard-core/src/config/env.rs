//! Environment variables the gateway reads, and the seam that lets tests supply their own.
//!
//! Every variable name is a named constant so that `grep ENV_` lists the whole surface. Reading
//! goes through [`EnvSource`], so config loading is tested without touching the process
//! environment.

use std::collections::HashMap;

/// Path of the config file when `--config` is not given.
pub const ENV_CONFIG: &str = "SWITCHYARD_CONFIG";
/// Master key when running without a config file.
pub const ENV_MASTER_KEY: &str = "SWITCHYARD_MASTER_KEY";
/// The admin key for the embedded default (the admin API is off without one).
pub const ENV_ADMIN_KEY: &str = "SWITCHYARD_ADMIN_KEY";
/// Log level override (`error`, `warn`, `info`, `debug`, `trace`).
pub const ENV_LOG: &str = "SWITCHYARD_LOG";
/// Log format override (`text` or `json`).
pub const ENV_LOG_FORMAT: &str = "SWITCHYARD_LOG_FORMAT";

/// An OpenAI-compatible service picked up automatically when running without a config file.
#[derive(Debug, Clone, Copy)]
pub struct KnownService {
    /// Provider name; clients reach its models as `<name>/<model>`.
    pub name: &'static str,
    /// Variable holding the API key (or, for Ollama, the host).
    pub key_var: &'static str,
    /// Variable that overrides the base URL, if the service has a customary one.
    pub base_url_var: Option<&'static str>,
    /// Base URL used when no override is set.
    pub default_base_url: &'static str,
    /// Self-hosted servers usually run without a key: detect them by their base URL variable.
    pub key_optional: bool,
}

/// The OpenAI-compatible services detected from the environment, in the order they are listed
/// at start-up. Azure and Ollama have their own rules in `validate::embedded_default`.
pub const KNOWN_SERVICES: &[KnownService] = &[
    KnownService {
        name: "openai",
        key_var: "OPENAI_API_KEY",
        base_url_var: Some("OPENAI_BASE_URL"),
        default_base_url: "https://api.openai.com/v1",
        key_optional: false,
    },
    KnownService {
        name: "groq",
        key_var: "GROQ_API_KEY",
        base_url_var: Some("GROQ_BASE_URL"),
        default_base_url: "https://api.groq.com/openai/v1",
        key_optional: false,
    },
    KnownService {
        name: "mistral",
        key_var: "MISTRAL_API_KEY",
        base_url_var: Some("MISTRAL_BASE_URL"),
        default_base_url: "https://api.mistral.ai/v1",
        key_optional: false,
    },
    KnownService {
        name: "deepseek",
        key_var: "DEEPSEEK_API_KEY",
        base_url_var: Some("DEEPSEEK_BASE_URL"),
        default_base_url: "https://api.deepseek.com/v1",
        key_optional: false,
    },
    KnownService {
        name: "together",
        key_var: "TOGETHER_API_KEY",
        base_url_var: Some("TOGETHER_BASE_URL"),
        default_base_url: "https://api.together.xyz/v1",
        key_optional: false,
    },
    KnownService {
        name: "fireworks",
        key_var: "FIREWORKS_API_KEY",
        base_url_var: Some("FIREWORKS_BASE_URL"),
        default_base_url: "https://api.fireworks.ai/inference/v1",
        key_optional: false,
    },
    KnownService {
        name: "openrouter",
        key_var: "OPENROUTER_API_KEY",
        base_url_var: Some("OPENROUTER_BASE_URL"),
        default_base_url: "https://openrouter.ai/api/v1",
        key_optional: false,
    },
    KnownService {
        name: "xai",
        key_var: "XAI_API_KEY",
        base_url_var: Some("XAI_BASE_URL"),
        default_base_url: "https://api.x.ai/v1",
        key_optional: false,
    },
    KnownService {
        name: "vllm",
        key_var: "VLLM_API_KEY",
        base_url_var: Some("VLLM_BASE_URL"),
        default_base_url: "http://127.0.0.1:8000/v1",
        key_optional: true,
    },
];

/// Azure OpenAI: key, endpoint (`https://<resource>.openai.azure.com`) and API version.
pub const ENV_AZURE_KEY: &str = "AZURE_OPENAI_API_KEY";
/// Azure OpenAI resource endpoint.
pub const ENV_AZURE_ENDPOINT: &str = "AZURE_OPENAI_ENDPOINT";
/// Azure OpenAI API version (the OpenAI SDK's variable name).
pub const ENV_AZURE_API_VERSION: &str = "OPENAI_API_VERSION";
/// Anthropic's API key, as Anthropic's SDKs read it.
pub const ENV_ANTHROPIC_KEY: &str = "ANTHROPIC_API_KEY";
/// Anthropic's API root without `/v1` (`https://api.anthropic.com`), as Anthropic's SDKs read it.
pub const ENV_ANTHROPIC_BASE_URL: &str = "ANTHROPIC_BASE_URL";
/// Where Anthropic's Messages API lives when nothing overrides it.
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com/v1";
/// Google AI Studio's API key, as Google's Gemini SDKs read it.
pub const ENV_GEMINI_KEY: &str = "GEMINI_API_KEY";
/// Google AI Studio's API key under its other name; Google's SDKs prefer it when both are set,
/// and so does the gateway.
pub const ENV_GOOGLE_KEY: &str = "GOOGLE_API_KEY";
/// Where Google AI Studio's Gemini API lives.
pub const DEFAULT_GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
/// Ollama's host (`127.0.0.1:11434` or a URL), as the Ollama CLI reads it.
pub const ENV_OLLAMA_HOST: &str = "OLLAMA_HOST";

/// AWS access key id, as AWS's SDKs and CLI read it.
pub const ENV_AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// AWS secret access key.
pub const ENV_AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// AWS session token of temporary credentials.
pub const ENV_AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
/// AWS region, as AWS's SDKs read it.
pub const ENV_AWS_REGION: &str = "AWS_REGION";
/// AWS region, as AWS's CLI reads it (used when `AWS_REGION` is not set).
pub const ENV_AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
/// Bedrock runtime endpoint override, as AWS's SDKs read it (service-specific endpoint).
pub const ENV_AWS_ENDPOINT_URL_BEDROCK_RUNTIME: &str = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME";

/// Bedrock runtime's endpoint in a region.
pub fn bedrock_base_url(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

/// The region from `AWS_REGION`, else `AWS_DEFAULT_REGION`.
pub fn aws_region(env: &dyn EnvSource) -> Option<String> {
    [ENV_AWS_REGION, ENV_AWS_DEFAULT_REGION]
        .iter()
        .find_map(|name| env.var(name).filter(|v| !v.trim().is_empty()))
        .map(|v| v.trim().to_owned())
}

/// Where environment values come from.
pub trait EnvSource {
    /// The value of `name`, if set and valid Unicode.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed map, for tests.
impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}
