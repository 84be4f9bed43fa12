//! Anthropic's Messages API and its translation to and from OpenAI's chat completions.
//!
//! OpenAI's chat format is the hub: a client speaking OpenAI reaches an Anthropic deployment
//! through [`request`]'s `chat_to_messages` and comes back through [`response`]/[`stream`]; a
//! client speaking Anthropic reaches an OpenAI-type deployment the other way round. When client
//! and deployment both speak Anthropic nothing here runs: the body is forwarded byte for byte.
//!
//! Translation keeps what the other side can express (tools and their ids, images, stop
//! sequences, cache token counts, thinking) instead of flattening to the common subset, and
//! fails with a [`TranslateError`] naming the field when a request asks for something the
//! target cannot do, rather than silently dropping it.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::openai::FieldError;

pub mod request;
pub mod response;
pub mod stream;

/// The fields of a `POST /v1/messages` body that the gateway relies on. As with the OpenAI
/// views, unknown fields are skipped here and forwarded (or translated) later, and checks are
/// about JSON types, never closed sets of values.
#[derive(Debug, Deserialize)]
pub struct MessagesRequest<'a> {
    /// The model or alias the client asked for.
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// Required by Anthropic's API, so required here too (the gateway never invents one for an
    /// Anthropic client).
    pub max_tokens: u64,
    /// The conversation.
    #[serde(borrow)]
    pub messages: Vec<Message<'a>>,
    /// Whether the client wants server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// System prompt: a string or an array of text blocks.
    #[serde(default, borrow)]
    pub system: Option<&'a RawValue>,
    /// Tool definitions, unparsed (only their presence matters to routing).
    #[serde(default, borrow)]
    pub tools: Option<&'a RawValue>,
}

/// One entry of `messages`.
#[derive(Debug, Deserialize)]
pub struct Message<'a> {
    /// `user` or `assistant` (not checked here).
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    /// A string or an array of content blocks.
    #[serde(borrow)]
    pub content: &'a RawValue,
}

impl MessagesRequest<'_> {
    /// Checks what serde's types cannot express.
    pub fn validate(&self) -> Result<(), FieldError> {
        let field = |param: String, message: &str| FieldError {
            param,
            message: message.to_owned(),
        };
        if self.model.is_empty() {
            return Err(field("model".into(), "`model` must not be empty"));
        }
        if self.max_tokens == 0 {
            return Err(field(
                "max_tokens".into(),
                "`max_tokens` must be at least 1",
            ));
        }
        if self.messages.is_empty() {
            return Err(field(
                "messages".into(),
                "`messages` must contain at least one message",
            ));
        }
        for (i, m) in self.messages.iter().enumerate() {
            if !matches!(m.content.get().as_bytes().first(), Some(b'"' | b'[')) {
                return Err(field(
                    format!("messages.{i}.content"),
                    "`content` must be a string or an array of content blocks",
                ));
            }
        }
        if let Some(system) = self.system {
            if !matches!(system.get().as_bytes().first(), Some(b'"' | b'[')) {
                return Err(field(
                    "system".into(),
                    "`system` must be a string or an array of text blocks",
                ));
            }
        }
        Ok(())
    }
}

/// The `anthropic-version` header value the gateway sends upstream.
pub const API_VERSION: &str = "2023-06-01";

/// `max_tokens` sent when an OpenAI client gives none (Anthropic requires the field).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Name of the tool used to force JSON output for OpenAI's `response_format: json_schema`:
/// Anthropic is told to call it, and its arguments become the message text on the way back.
pub const JSON_TOOL_NAME: &str = "json_response";

/// A request or response that cannot be expressed in the target format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    /// The offending field as a JSON path in the *client's* format, e.g. `messages[2].content`.
    pub param: Option<String>,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl TranslateError {
    /// An error about one field.
    pub fn field(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.into()),
            message: message.into(),
        }
    }

    /// An error about the document as a whole (e.g. it is not JSON).
    pub fn body(message: impl Into<String>) -> Self {
        Self {
            param: None,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for TranslateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.param {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TranslateError {}

/// OpenAI's `finish_reason` for an Anthropic `stop_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything new.
        _ => "stop",
    }
}

/// Anthropic's `stop_reason` for an OpenAI `finish_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's error `type` for an HTTP status, as its API uses them.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 | 503 => "overloaded_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests;
