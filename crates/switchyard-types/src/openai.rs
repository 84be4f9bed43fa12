//! OpenAI wire format: request views for validation, the error body, and usage.
//!
//! The views borrow from the request body and name only the fields the gateway must understand
//! to route and relay a request. Unknown fields are skipped here and forwarded untouched by the
//! dispatcher, which sends the client's own bytes. Checks are about JSON *types* (a role must be
//! a string), never about closed sets of values (which roles exist), so that a parameter or role
//! OpenAI adds tomorrow keeps working through the gateway today.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

mod usage_reader;

/// The fields of a `POST /v1/chat/completions` body that the gateway relies on.
#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest<'a> {
    /// The model or alias the client asked for.
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// The conversation; must be a non-empty array.
    #[serde(borrow)]
    pub messages: Vec<ChatMessage<'a>>,
    /// Whether the client wants server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Streaming options, e.g. `include_usage`.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Number of choices.
    #[serde(default)]
    pub n: Option<u32>,
    /// Legacy completion-length cap.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Current completion-length cap.
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Function tools offered to the model.
    #[serde(default, borrow)]
    pub tools: Option<Vec<Tool<'a>>>,
    /// End-user identifier, used for attribution.
    #[serde(default, borrow)]
    pub user: Option<Cow<'a, str>>,
    /// Whether the provider is to keep the completion (OpenAI's stored completions).
    #[serde(default)]
    pub store: Option<bool>,
}

/// One chat message, as far as the gateway needs to see it.
#[derive(Debug, Deserialize)]
pub struct ChatMessage<'a> {
    /// `system`, `developer`, `user`, `assistant`, `tool`, ... (not checked against a list).
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    /// A string, an array of content parts, or null (assistant messages with tool calls).
    #[serde(default, borrow)]
    pub content: Option<&'a RawValue>,
}

/// `stream_options` of a chat request.
#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    /// Ask for a final chunk carrying the usage of the whole stream.
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// A tool definition; only its shape is checked.
#[derive(Debug, Deserialize)]
pub struct Tool<'a> {
    /// Tool type, `function` today.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// The function definition, for function tools.
    #[serde(default, borrow)]
    pub function: Option<FunctionDef<'a>>,
}

/// A function tool's definition.
#[derive(Debug, Deserialize)]
pub struct FunctionDef<'a> {
    /// The function name the model may call.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
}

/// The fields of a `POST /v1/embeddings` body that the gateway relies on.
#[derive(Debug, Deserialize)]
pub struct EmbeddingsRequest<'a> {
    /// The model or alias the client asked for.
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// A string, an array of strings, an array of token ids, or an array of such arrays.
    #[serde(borrow)]
    pub input: &'a RawValue,
    /// `float` or `base64`.
    #[serde(default, borrow)]
    pub encoding_format: Option<Cow<'a, str>>,
    /// Requested vector size.
    #[serde(default)]
    pub dimensions: Option<u32>,
}

/// A semantic problem found after the body parsed: the JSON path of the bad field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the offending field, e.g. `messages[2].content`.
    pub param: String,
    /// What is wrong with it.
    pub message: String,
}

impl ChatCompletionRequest<'_> {
    /// Checks what serde's types cannot express: non-empty messages, content kinds, tool shape.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.model.is_empty() {
            return Err(field("model", "`model` must not be empty"));
        }
        if self.messages.is_empty() {
            return Err(field(
                "messages",
                "`messages` must contain at least one message",
            ));
        }
        for (i, m) in self.messages.iter().enumerate() {
            if m.role.is_empty() {
                return Err(field(
                    &format!("messages[{i}].role"),
                    "`role` must not be empty",
                ));
            }
            if let Some(content) = m.content {
                if !matches!(content.get().as_bytes().first(), Some(b'"' | b'[' | b'n')) {
                    return Err(field(
                        &format!("messages[{i}].content"),
                        "`content` must be a string, an array of content parts, or null",
                    ));
                }
            }
        }
        if self.n == Some(0) {
            return Err(field("n", "`n` must be at least 1"));
        }
        if let Some(tools) = &self.tools {
            for (i, t) in tools.iter().enumerate() {
                if t.kind == "function" && t.function.is_none() {
                    return Err(field(
                        &format!("tools[{i}].function"),
                        "a tool of type `function` needs a `function` object",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }
}

impl EmbeddingsRequest<'_> {
    /// Checks that `input` is a string or a non-empty array and that the options are sane.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.model.is_empty() {
            return Err(field("model", "`model` must not be empty"));
        }
        let raw = self.input.get();
        match raw.as_bytes().first() {
            Some(b'"') => {}
            Some(b'[') if raw[1..].trim_start().starts_with(']') => {
                return Err(field("input", "`input` must not be an empty array"));
            }
            Some(b'[') => {}
            _ => {
                return Err(field(
                    "input",
                    "`input` must be a string, an array of strings, or an array of token ids",
                ));
            }
        }
        if self.dimensions == Some(0) {
            return Err(field("dimensions", "`dimensions` must be at least 1"));
        }
        Ok(())
    }
}

fn field(param: &str, message: &str) -> FieldError {
    FieldError {
        param: param.to_owned(),
        message: message.to_owned(),
    }
}

/// OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    /// The error object.
    pub error: ErrorObject,
}

/// The object inside [`ErrorBody`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorObject {
    /// Human-readable explanation.
    pub message: String,
    /// Error class, e.g. `invalid_request_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
    /// A machine-readable code, e.g. `model_not_found`.
    pub code: Option<String>,
}

/// Whether `body` is an OpenAI-shaped error (`{"error": {"message": "...", ...}}`).
///
/// Upstream errors in this shape are relayed as they are, because their `code` and `param`
/// (e.g. `context_length_exceeded`) are what clients and SDKs act on.
pub fn is_error_body(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        #[allow(dead_code)]
        error: ErrorProbe<'a>,
    }
    serde_json::from_slice::<Probe<'_>>(body).is_ok()
}

/// Token usage, normalised across providers.
///
/// `prompt_tokens` counts every input token, cached ones included (OpenAI's convention);
/// `cached_tokens` and `cache_write_tokens` say how many of them were read from or written to
/// the provider's prompt cache, because those are priced differently.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(from = "WireUsage")]
pub struct Usage {
    /// Tokens in the prompt, cached ones included.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Sum of both, as reported.
    pub total_tokens: u64,
    /// Prompt tokens read from the provider's cache.
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's cache (Anthropic reports these; OpenAI does not).
    pub cache_write_tokens: u64,
}

/// OpenAI's usage object as sent, with the detail block that holds the cached-token count.
#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Deserialize)]
struct PromptTokensDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(w: WireUsage) -> Self {
        Self {
            prompt_tokens: w.prompt_tokens,
            completion_tokens: w.completion_tokens,
            total_tokens: w.total_tokens,
            cached_tokens: w
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_write_tokens: 0,
        }
    }
}

/// Reads the top-level `usage` member of a response or chunk, if present and not null.
pub fn usage_of(doc: &[u8]) -> Option<Usage> {
    usage_in(doc, crate::json::top_level_value(doc, "usage")?)
}

/// Parses the usage object at `span` of `doc` (a span found by [`crate::json`]).
///
/// This runs on every upstream answer and stream event, where serde's derive cost about 4,600
/// instructions for OpenAI's usage object. The common shapes are therefore read by a
/// hand-written reader (`usage_reader`: about 500 for that object); whatever it is not sure of
/// (escaped keys, odd number forms, duplicate keys, arrays, malformed bytes) is parsed by serde
/// as before, so the result is serde's for every input. The span need not have been validated:
/// [`usage_of`] passes unchecked documents.
pub fn usage_in(doc: &[u8], span: std::ops::Range<usize>) -> Option<Usage> {
    let bytes = doc.get(span)?;
    usage_reader::read(bytes).unwrap_or_else(|| usage_serde(bytes))
}

/// The reference reading of a usage value: serde's derive over [`WireUsage`]. `null`, and
/// anything serde refuses, is `None`.
fn usage_serde(bytes: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<Option<Usage>>(bytes)
        .ok()
        .flatten()
}

/// What one pass over an OpenAI response body or stream chunk found: see [`read_reply`].
#[derive(Debug, Clone, PartialEq)]
pub enum ReadReply {
    /// The bytes are not JSON: never to be relayed as a success.
    NotJson,
    /// Valid JSON that is not an object: relayed as it is.
    NotObject,
    /// An object with OpenAI's `{"error": {"message": ...}}` shape (see [`is_error_body`]).
    Error,
    /// An object: where its top-level `model` value is (to be replaced), and its `usage`.
    Object {
        /// The byte span of the `model` value, quotes included.
        model: Option<std::ops::Range<usize>>,
        /// The `usage` member, when present and not null.
        usage: Option<Usage>,
    },
}

/// Validates a response or chunk, finds its top-level `model` and reads `usage`, and tells an
/// error object apart, all in one scan. Every answer and every stream event of an OpenAI-type
/// upstream goes through here, so it must not walk the bytes more than once: the separate
/// validate / find members / probe for an error passes it replaces tripled the work. The
/// caller splices the model name into its own output buffer (no copy of the document here).
pub fn read_reply(doc: &[u8]) -> ReadReply {
    let [model, usage, error] = match crate::json::scan(doc, ["model", "usage", "error"]) {
        crate::json::Scan::NotJson => return ReadReply::NotJson,
        crate::json::Scan::NotObject => return ReadReply::NotObject,
        crate::json::Scan::Object(found) => found,
    };
    if error
        .and_then(|span| doc.get(span))
        .is_some_and(|v| serde_json::from_slice::<ErrorProbe<'_>>(v).is_ok())
    {
        return ReadReply::Error;
    }
    ReadReply::Object {
        model,
        usage: usage.and_then(|span| usage_in(doc, span)),
    }
}

/// The inside of OpenAI's error object: a `message` string is what makes it one.
#[derive(Deserialize)]
struct ErrorProbe<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    message: Cow<'a, str>,
}

#[cfg(test)]
mod tests;
