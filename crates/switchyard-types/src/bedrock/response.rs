//! A whole Converse response → OpenAI `chat.completion` ([`converse_to_chat_response`]).
//!
//! - `id` is the caller's (Converse responses carry none; the adapter makes one), `object` is
//!   `chat.completion`, `created` is the caller's clock, `model` the name the client asked
//!   for.
//! - One choice, index 0, role `assistant`:
//!   - `content`: the `text` blocks of `output.message.content` concatenated in order; `null`
//!     when there is no text but there are tool calls, `""` when there is nothing at all;
//!   - `reasoning_content`: the `reasoningContent.reasoningText.text` blocks concatenated,
//!     present only when there are some (their signatures and redacted reasoning have no
//!     OpenAI equivalent);
//!   - `tool_calls`: one per `toolUse` block, in order, `toolUseId` kept as the `id`,
//!     `arguments` = the block's `input` as compact JSON (key order and numbers as sent);
//!   - with `json_tool`, a `toolUse` named [`JSON_TOOL_NAME`] is not a tool call: its input is
//!     appended to `content`, and a `tool_use` stop becomes `stop` unless real calls remain;
//!   - other block types (images, documents, citations, block types added later) are skipped.
//! - `finish_reason` from [`finish_reason`](super::finish_reason): `end_turn`/`stop_sequence`
//!   → `stop`, `max_tokens` → `length`, `tool_use` → `tool_calls`,
//!   `guardrail_intervened`/`content_filtered` → `content_filter`.
//! - `usage`: `prompt_tokens` = `inputTokens` + `cacheReadInputTokens` +
//!   `cacheWriteInputTokens` (OpenAI counts cached tokens as prompt tokens; Bedrock reports
//!   them apart), `completion_tokens` = `outputTokens`, `total_tokens` their sum,
//!   `prompt_tokens_details.cached_tokens` = cache reads.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::anthropic::response::{minify_json, to_json, UsageOut};
use crate::anthropic::{TranslateError, JSON_TOOL_NAME};
use crate::chunk::{ChatCompletionOut, ChatMessageOut, ChoiceOut, FunctionOut, ToolCallOut};
use crate::openai::Usage;

/// Converse's `usage` object (in a response, and in a stream's `metadata` event).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConverseUsage {
    /// Input tokens not read from or written to the prompt cache.
    #[serde(default)]
    pub input_tokens: Option<u64>,
    /// Generated tokens.
    #[serde(default)]
    pub output_tokens: Option<u64>,
    /// Everything, as Bedrock counts it.
    #[serde(default)]
    pub total_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_write_input_tokens: Option<u64>,
}

/// Normalised [`Usage`] from Converse's counts (see the module docs).
pub fn usage_from_converse(u: &ConverseUsage) -> Usage {
    let read = u.cache_read_input_tokens.unwrap_or(0);
    let write = u.cache_write_input_tokens.unwrap_or(0);
    let prompt = u
        .input_tokens
        .unwrap_or(0)
        .saturating_add(read)
        .saturating_add(write);
    let completion = u.output_tokens.unwrap_or(0);
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt.saturating_add(completion),
        cached_tokens: read,
        cache_write_tokens: write,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseOut<'a> {
    #[serde(default, borrow)]
    output: Option<OutputIn<'a>>,
    #[serde(default, borrow)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<ConverseUsage>,
}

#[derive(Deserialize)]
struct OutputIn<'a> {
    #[serde(default, borrow)]
    message: Option<MessageIn<'a>>,
}

#[derive(Deserialize)]
struct MessageIn<'a> {
    #[serde(default, borrow)]
    content: Vec<BlockIn<'a>>,
}

/// One content block; every member optional so that new block types parse and are skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockIn<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_use: Option<ToolUseIn<'a>>,
    #[serde(default, borrow)]
    reasoning_content: Option<ReasoningIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseIn<'a> {
    #[serde(default, borrow)]
    tool_use_id: Cow<'a, str>,
    #[serde(default, borrow)]
    name: Cow<'a, str>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningIn<'a> {
    #[serde(default, borrow)]
    reasoning_text: Option<ReasoningTextIn<'a>>,
}

#[derive(Deserialize)]
struct ReasoningTextIn<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

/// OpenAI `finish_reason` for a Converse stop reason, given whether any tool call reaches the
/// client (with the JSON tool, a `tool_use` stop may have produced only content).
pub(crate) fn chat_finish_reason(stop_reason: &str, has_tool_calls: bool) -> &'static str {
    match super::finish_reason(stop_reason) {
        "tool_calls" if !has_tool_calls => "stop",
        other => other,
    }
}

/// Translates a Converse response body into an OpenAI `chat.completion` with the given `id`,
/// naming `client_model`, and returns its normalised usage with it. `created` is the Unix time
/// in seconds to report; `json_tool` says the request carried the [`JSON_TOOL_NAME`] tool.
pub fn converse_to_chat_response(
    body: &[u8],
    id: &str,
    client_model: &str,
    created: u64,
    json_tool: bool,
) -> Result<(Vec<u8>, Usage), TranslateError> {
    let resp: ConverseOut<'_> = serde_json::from_slice(body).map_err(|e| {
        TranslateError::body(format!("upstream Converse response is not valid: {e}"))
    })?;
    let Some(message) = resp.output.and_then(|o| o.message) else {
        return Err(TranslateError::field(
            "output.message",
            "the Converse response has no output message",
        ));
    };

    let mut text = String::new();
    let mut has_text = false;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in &message.content {
        if let Some(t) = &block.text {
            has_text = true;
            text.push_str(t);
        } else if let Some(call) = &block.tool_use {
            let arguments = call
                .input
                .map_or_else(|| "{}".to_owned(), |raw| minify_json(raw.get()));
            if json_tool && call.name == JSON_TOOL_NAME {
                has_text = true;
                text.push_str(&arguments);
            } else {
                tool_calls.push(ToolCallOut {
                    id: &call.tool_use_id,
                    kind: "function",
                    function: FunctionOut {
                        name: &call.name,
                        arguments,
                    },
                });
            }
        } else if let Some(t) = block
            .reasoning_content
            .as_ref()
            .and_then(|r| r.reasoning_text.as_ref())
            .and_then(|r| r.text.as_deref())
        {
            reasoning.get_or_insert_with(String::new).push_str(t);
        }
    }

    let finish = chat_finish_reason(
        resp.stop_reason.as_deref().unwrap_or("end_turn"),
        !tool_calls.is_empty(),
    );
    let usage = usage_from_converse(&resp.usage.unwrap_or_default());
    let content = if !has_text && !tool_calls.is_empty() {
        None
    } else {
        Some(text)
    };
    let out = ChatCompletionOut {
        id,
        object: "chat.completion",
        created,
        model: client_model,
        choices: [ChoiceOut {
            index: 0,
            message: ChatMessageOut {
                role: "assistant",
                content,
                reasoning_content: reasoning,
                tool_calls,
            },
            logprobs: (),
            finish_reason: finish,
        }],
        usage: UsageOut::from(&usage),
    };
    Ok((to_json(&out)?, usage))
}

#[cfg(test)]
mod tests;
