//! What each model can do, and the check that refuses a request its target cannot serve.
//!
//! A request that needs tools, images, JSON-schema output, streaming, a long answer or a long
//! context must not be sent to a model without them: the provider would fail it anyway, after
//! a round trip, in its own words (or worse, a translating adapter would drop the feature
//! silently). The check runs after routing and before any upstream call; routing skips
//! candidates that fail it, and only when none is left does the client get a 400 that names
//! the missing capability.
//!
//! A record field that is `None` is unknown and never checked. Records come from the built-in
//! table ([`builtin`]) for the main current models, corrected or extended by the config's
//! `capabilities:` section.

mod builtin;

use std::collections::HashMap;

use serde_json::Value;

use crate::error::GatewayError;
use crate::providers::Operation;

/// One model's capabilities; `None` means unknown (not checked).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Prompt plus completion tokens the model accepts.
    pub context_window: Option<u32>,
    /// Most completion tokens one answer may have.
    pub max_output: Option<u32>,
    /// Function / tool calling.
    pub tools: Option<bool>,
    /// Image inputs.
    pub vision: Option<bool>,
    /// Output constrained to a JSON schema (`response_format: json_schema`).
    pub json_schema: Option<bool>,
    /// Streamed answers.
    pub streaming: Option<bool>,
}

impl Capabilities {
    /// Fields set in `over` replace this record's.
    pub fn overlay(self, over: &Capabilities) -> Self {
        Self {
            context_window: over.context_window.or(self.context_window),
            max_output: over.max_output.or(self.max_output),
            tools: over.tools.or(self.tools),
            vision: over.vision.or(self.vision),
            json_schema: over.json_schema.or(self.json_schema),
            streaming: over.streaming.or(self.streaming),
        }
    }
}

/// The built-in record for an upstream model name, if it is a known model.
///
/// Names are matched by their longest known prefix after [`canonical_model_name`].
pub fn builtin(model: &str) -> Option<Capabilities> {
    let name = canonical_model_name(model);
    builtin::TABLE
        .iter()
        .filter(|(prefix, _)| name.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, caps)| *caps)
}

/// An upstream model name with the decorations providers add removed, lower-cased: Gemini's
/// `models/`, Bedrock's cross-region (`us.`, `eu.`, ...) and vendor (`anthropic.`, `amazon.`)
/// prefixes. Built-in tables (capabilities, prices) are keyed by what is left, so one entry
/// serves a model under every provider that hosts it.
pub fn canonical_model_name(model: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let name: Cow<'_, str> = if model.bytes().any(|b| b.is_ascii_uppercase()) {
        model.to_ascii_lowercase().into()
    } else {
        model.into()
    };
    let mut start = 0;
    let mut rest: &str = &name;
    if let Some(r) = rest.strip_prefix("models/") {
        start += rest.len() - r.len();
        rest = r;
    }
    for region in [
        "us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.",
    ] {
        if let Some(r) = rest.strip_prefix(region) {
            start += rest.len() - r.len();
            rest = r;
            break;
        }
    }
    for vendor in ["anthropic.", "amazon.", "google.", "openai."] {
        if let Some(r) = rest.strip_prefix(vendor) {
            start += rest.len() - r.len();
            break;
        }
    }
    match name {
        Cow::Borrowed(b) => Cow::Borrowed(&b[start..]),
        Cow::Owned(o) => Cow::Owned(o[start..].to_owned()),
    }
}

/// Capability records for the deployments of one gateway: built-ins with config overrides.
#[derive(Debug, Default)]
pub struct CapabilityTable {
    /// Config entries keyed `<provider>/<model>` or `<model>`.
    overrides: HashMap<String, Capabilities>,
}

impl CapabilityTable {
    /// Builds the table from the config's `capabilities:` entries.
    pub fn new(overrides: HashMap<String, Capabilities>) -> Self {
        Self { overrides }
    }

    /// The record for `model` at `provider`: the built-in one, overlaid with the config entry
    /// for `<provider>/<model>` or else for `<model>`.
    pub fn get(&self, provider: &str, model: &str) -> Capabilities {
        let base = builtin(model).unwrap_or_default();
        if self.overrides.is_empty() {
            return base;
        }
        let over = self
            .overrides
            .get(&format!("{provider}/{model}"))
            .or_else(|| self.overrides.get(model));
        match over {
            Some(o) => base.overlay(o),
            None => base,
        }
    }
}

/// What a request asks of its model, as far as the pipeline's parse stage saw it. Features
/// that need a deeper look at the body (images, JSON schema, prompt size) are read from the
/// body only when a candidate's record could refuse them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// The request streams.
    pub stream: bool,
    /// The request offers tools.
    pub tools: bool,
    /// The completion cap the client asked for, and the field that carried it.
    pub max_output: Option<(u64, &'static str)>,
}

/// Fails when the deployment's provider type does not offer the endpoint at all (legacy
/// completions exist only at OpenAI-type providers): an alias skips such deployments, and when
/// none is left the client gets a 400 naming the endpoint and the deployment.
pub fn check_endpoint(
    d: &crate::config::Deployment,
    op: Operation,
    client_model: &str,
) -> Result<(), GatewayError> {
    use crate::config::ProviderKind;
    let kind = match (&d.provider.kind, op) {
        (ProviderKind::OpenAi | ProviderKind::Azure { .. }, _) => return Ok(()),
        (_, op) if op != Operation::Completions => return Ok(()),
        (ProviderKind::Anthropic { .. }, _) => "anthropic",
        (ProviderKind::Gemini, _) => "gemini",
        (ProviderKind::Vertex, _) => "vertex",
        (ProviderKind::Bedrock { .. }, _) => "bedrock",
    };
    Err(GatewayError::Unsupported {
        param: "model".into(),
        message: format!(
            "The endpoint `{}` is not offered by the deployment `{}/{}` (provider type `{kind}`) \
             that serves the model `{client_model}`; only OpenAI-type deployments offer it.",
            op.endpoint(),
            d.provider.name,
            d.model,
        ),
        code: "unsupported_endpoint",
    })
}

/// Fails when `caps` lacks something the request needs; the error names the field at fault.
/// `describe` names the target for the message (e.g. "`gpt-3.5-turbo` at provider `openai`").
pub fn check(
    caps: &Capabilities,
    op: Operation,
    needs: &Needs,
    body: &[u8],
    describe: &dyn Fn() -> String,
) -> Result<(), GatewayError> {
    if op == Operation::Embeddings {
        return Ok(());
    }
    let refuse = |param: &str, what: &str| GatewayError::Unsupported {
        param: param.to_owned(),
        message: format!("{} does not support {what}.", describe()),
        code: "unsupported_capability",
    };
    if needs.stream && caps.streaming == Some(false) {
        return Err(refuse("stream", "streaming"));
    }
    if needs.tools && caps.tools == Some(false) {
        return Err(refuse("tools", "tools"));
    }
    if let (Some((asked, field)), Some(max)) = (needs.max_output, caps.max_output) {
        if asked > u64::from(max) {
            return Err(GatewayError::Unsupported {
                param: field.to_owned(),
                message: format!(
                    "`{field}` is {asked}, but {} supports at most {max} completion tokens.",
                    describe()
                ),
                code: "invalid_value",
            });
        }
    }
    let needs_look = caps.vision == Some(false)
        || caps.json_schema == Some(false)
        || caps.context_window.is_some_and(|w| {
            // A token is at least one byte, so a body that fits in bytes fits in tokens.
            body.len() as u64 + needs.max_output.map_or(0, |m| m.0) > u64::from(w)
        });
    if !needs_look {
        return Ok(());
    }
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    if caps.vision == Some(false) {
        if let Some(param) = first_image(op, &doc) {
            return Err(refuse(&param, "image inputs"));
        }
    }
    if caps.json_schema == Some(false)
        && op == Operation::ChatCompletions
        && doc["response_format"]["type"] == "json_schema"
    {
        return Err(refuse("response_format", "JSON schema output"));
    }
    if let Some(window) = caps.context_window {
        let prompt = prompt_tokens_lower_bound(op, &doc);
        let answer = needs.max_output.map_or(0, |m| m.0);
        if prompt + answer > u64::from(window) {
            return Err(GatewayError::Unsupported {
                param: "messages".to_owned(),
                message: format!(
                    "This request needs at least {prompt} prompt tokens plus {answer} completion \
                     tokens, but {} has a context window of {window} tokens.",
                    describe()
                ),
                code: "context_length_exceeded",
            });
        }
    }
    Ok(())
}

/// Bytes of text per token assumed for the lower bound. Real tokenizers average about four
/// bytes of English (fewer for code and most other scripts), so counting one token per eight
/// bytes under-estimates every realistic prompt: a request is refused only when it certainly
/// cannot fit. An exact count needs the model's tokenizer, which admission control brings.
const BYTES_PER_TOKEN_LOWER_BOUND: u64 = 8;

/// A lower bound on the prompt's tokens from its text (images and other binary parts are not
/// counted).
fn prompt_tokens_lower_bound(op: Operation, doc: &Value) -> u64 {
    let mut bytes = 0u64;
    let mut add_content = |c: &Value| match c {
        Value::String(s) => bytes += s.len() as u64,
        Value::Array(parts) => {
            for p in parts {
                for key in ["text", "content"] {
                    if let Some(Value::String(s)) = p.get(key) {
                        bytes += s.len() as u64;
                    }
                }
            }
        }
        _ => {}
    };
    if op == Operation::Messages {
        add_content(&doc["system"]);
    }
    if let Some(messages) = doc["messages"].as_array() {
        for m in messages {
            add_content(&m["content"]);
        }
    }
    bytes / BYTES_PER_TOKEN_LOWER_BOUND
}

/// The path of the first image input, in the client's format.
fn first_image(op: Operation, doc: &Value) -> Option<String> {
    let image_type = match op {
        Operation::Messages => "image",
        _ => "image_url",
    };
    let messages = doc["messages"].as_array()?;
    messages.iter().enumerate().find_map(|(i, m)| {
        let parts = m["content"].as_array()?;
        let j = parts.iter().position(|p| p["type"] == image_type)?;
        Some(format!("messages[{i}].content[{j}]"))
    })
}

#[cfg(test)]
mod tests;
