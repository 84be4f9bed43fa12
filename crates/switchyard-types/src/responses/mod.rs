//! OpenAI's Responses API (`POST /v1/responses`) as a client API over chat completions.
//!
//! An OpenAI-type deployment serves the Responses API itself, so its requests pass through with
//! only `model` replaced. Anthropic, Gemini and Bedrock deployments do not: for them a Responses
//! request is translated to an OpenAI chat completions request ([`request`]), which each
//! provider's existing chat translator then carries upstream; the provider's answer, once
//! translated to chat, becomes a Responses object ([`response`]) or, when streamed, the
//! Responses API's typed semantic events ([`stream`]). Composing over chat keeps one translator
//! per provider, the same way the Anthropic Messages client API is composed.
//!
//! Nothing here keeps state between requests: `previous_response_id` is resolved by the
//! gateway, which prepends the stored conversation to `input` ([`request::with_history`])
//! before translation.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::openai::{FieldError, Usage};

pub mod request;
pub mod response;
pub mod stream;

/// The fields of a `POST /v1/responses` body the gateway relies on. Unknown fields are skipped
/// here and forwarded (or translated) later; checks are about JSON types only.
#[derive(Debug, Deserialize)]
pub struct ResponsesRequest<'a> {
    /// The model or alias the client asked for.
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// Whether the client wants the typed event stream.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Tools, kept raw (checked by the translator or the provider).
    #[serde(default, borrow)]
    pub tools: Option<&'a RawValue>,
    /// The output cap.
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    /// The response this one continues.
    #[serde(default, borrow)]
    pub previous_response_id: Option<Cow<'a, str>>,
    /// Whether the response may be retrieved later (OpenAI's default: true).
    #[serde(default)]
    pub store: Option<bool>,
    /// `input`, kept raw.
    #[serde(default, borrow)]
    pub input: Option<&'a RawValue>,
}

impl ResponsesRequest<'_> {
    /// Checks what serde's types cannot.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.model.is_empty() {
            return Err(FieldError {
                param: "model".into(),
                message: "`model` must not be empty.".into(),
            });
        }
        if let Some(id) = &self.previous_response_id {
            if id.is_empty() {
                return Err(FieldError {
                    param: "previous_response_id".into(),
                    message: "`previous_response_id` must not be empty.".into(),
                });
            }
        }
        Ok(())
    }

    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether the client offered tools.
    pub fn has_tools(&self) -> bool {
        self.tools
            .is_some_and(|t| !matches!(t.get().trim(), "[]" | "null"))
    }
}

/// Who a translated response is: the identity its translators stamp into what they write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The response id (`resp_...`), minted by the gateway.
    pub id: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// The model name the client asked for, which the response carries.
    pub model: String,
}

impl Meta {
    /// The id of the `n`th item of this response, with the item type's prefix (`msg`, `fc`,
    /// `rs`): unique per response and stable, so a stored response lists the ids it streamed.
    pub fn item_id(&self, prefix: &str, n: usize) -> String {
        let tail = self.id.strip_prefix("resp_").unwrap_or(&self.id);
        format!("{prefix}_{tail}{n:02x}")
    }
}

/// The Responses API's usage object (`input_tokens`, `output_tokens`, with cached and
/// reasoning details), as gateway [`Usage`].
#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
}

#[derive(Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

/// Reads a Responses API usage object (the bytes of `usage`), or `None` when it is absent,
/// `null` or not one.
pub fn usage_from_responses(doc: &[u8]) -> Option<Usage> {
    let w = serde_json::from_slice::<Option<WireUsage>>(doc).ok()??;
    Some(Usage {
        prompt_tokens: w.input_tokens,
        completion_tokens: w.output_tokens,
        total_tokens: if w.total_tokens > 0 {
            w.total_tokens
        } else {
            w.input_tokens + w.output_tokens
        },
        cached_tokens: w
            .input_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0),
        cache_write_tokens: 0,
    })
}

/// Replaces `model` inside the top-level member `member` (an object) of `doc` and reads that
/// object's `usage`, keeping every other byte: the shape of Responses stream events, which carry
/// the response object under `response`. `None` when `doc` is not an object with such a member.
pub fn rename_nested_model(
    doc: &[u8],
    member: &str,
    client_model: &str,
) -> Option<(Vec<u8>, Option<Usage>)> {
    rename_model_within(
        doc,
        crate::json::top_level_value(doc, member)?,
        client_model,
    )
}

/// [`rename_nested_model`] for a member whose span the caller already found (its own scan of
/// the event also validated it).
pub fn rename_model_within(
    doc: &[u8],
    span: std::ops::Range<usize>,
    client_model: &str,
) -> Option<(Vec<u8>, Option<Usage>)> {
    let inner = doc.get(span.clone())?;
    let [model, usage] = crate::json::top_level_values(inner, ["model", "usage"])?;
    let usage = usage
        .and_then(|u| inner.get(u))
        .and_then(usage_from_responses);
    let Some(model) = model else {
        return Some((doc.to_vec(), usage));
    };
    let renamed = crate::json::splice_string(inner, model, client_model);
    let mut out = Vec::with_capacity(doc.len() + client_model.len());
    out.extend_from_slice(&doc[..span.start]);
    out.extend_from_slice(&renamed);
    out.extend_from_slice(&doc[span.end..]);
    Some((out, usage))
}

#[cfg(test)]
mod tests;
