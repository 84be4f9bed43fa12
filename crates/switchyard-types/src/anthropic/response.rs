//! Whole (non-streamed) responses and error bodies, between Anthropic's Messages API and
//! OpenAI's chat completions, plus the helpers [`super::stream`] shares.
//!
//! # Anthropic message → OpenAI `chat.completion` ([`messages_to_chat_response`])
//!
//! - `id` is kept as Anthropic sent it (`msg_...`); `object` is `chat.completion`; `created` is
//!   the caller's clock; `model` is the name the client asked for.
//! - One choice, index 0, role `assistant`:
//!   - `content`: the `text` blocks concatenated in order; `null` when there is no text but
//!     there are tool calls, `""` when there is nothing at all;
//!   - `reasoning_content` (the field DeepSeek, vLLM and others use): the `thinking` blocks
//!     concatenated, present only when there are some. Their signatures and `redacted_thinking`
//!     blocks have no OpenAI equivalent and are not returned;
//!   - `tool_calls`: one per `tool_use` block, in order, id kept, `type: "function"`,
//!     `arguments` = the block's `input` as compact JSON (key order and numbers as sent);
//!   - with `json_tool`, a `tool_use` block named [`JSON_TOOL_NAME`] is not a tool call: its input
//!     (compact JSON) is appended to `content` where the block stands, and a `tool_use` stop
//!     becomes `finish_reason: "stop"` unless real tool calls remain;
//!   - server-side tool blocks (`server_tool_use`, `web_search_tool_result`, ...) and block types
//!     added later are skipped.
//! - `finish_reason` from [`finish_reason`] (`max_tokens` → `length`, `refusal` →
//!   `content_filter`, `tool_use` → `tool_calls`, others → `stop`).
//! - `usage`: `prompt_tokens` = input + cache read + cache write tokens (OpenAI counts cached
//!   tokens as prompt tokens), `prompt_tokens_details.cached_tokens` = cache reads.
//!
//! # OpenAI `chat.completion` → Anthropic message ([`chat_to_messages_response`])
//!
//! Only the first choice is used. Content blocks come in the order thinking (from
//! `reasoning_content`), text (from `content`, or from `refusal` when there is no content),
//! then one `tool_use` per tool call. Thinking blocks carry an empty `signature`, which is all
//! we can say. `stop_reason` comes from [`stop_reason`], except that a response with tool calls
//! whose `finish_reason` is `stop` (some OpenAI-compatible servers say that) reports `tool_use`,
//! because Anthropic clients run tools only on that stop reason. `stop_sequence` is always null
//! (OpenAI does not say which sequence matched).
//!
//! Tool call `arguments` that are a JSON object become `input` as they are. Empty arguments
//! become `{}`. Anything else (truncated by `max_tokens`, or not an object) cannot be an Anthropic
//! `input`, yet failing the whole response would throw the rest of the answer away; such text is
//! kept whole as `{"_raw_arguments": "<the text>"}` (see [`RAW_ARGUMENTS_KEY`]) so the client's
//! tool validation reports it and the model can retry.
//!
//! # Errors
//!
//! [`anthropic_error_to_openai`] and [`openai_error_to_anthropic`] convert error bodies;
//! [`anthropic_error_body`] builds one for the gateway's own errors.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{error_type_for_status, finish_reason, stop_reason, TranslateError, JSON_TOOL_NAME};
use crate::chunk::{ChatCompletionOut, ChatMessageOut, ChoiceOut, FunctionOut, ToolCallOut};
use crate::openai::{ErrorBody, ErrorObject, Usage};

/// Key under which [`chat_to_messages_response`] keeps tool call arguments that are not a JSON
/// object: `{"_raw_arguments": "<the arguments text>"}`.
pub const RAW_ARGUMENTS_KEY: &str = "_raw_arguments";

/// Anthropic's `usage` object, as found in a message, in `message_start` and in `message_delta`.
///
/// Every count is optional because `message_delta` carries only some of them (and may carry
/// `null`); see [`AnthropicUsage::merge`].
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct AnthropicUsage {
    /// Input tokens that were neither read from nor written to the prompt cache.
    #[serde(default)]
    pub input_tokens: Option<u64>,
    /// Output tokens (cumulative in `message_delta`).
    #[serde(default)]
    pub output_tokens: Option<u64>,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Takes every count that `later` reports; keeps the others (a stream's `message_delta`
    /// usage is cumulative and overrides `message_start`'s where present).
    pub fn merge(&mut self, later: &AnthropicUsage) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = later
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = later
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
    }
}

/// Normalised [`Usage`] from Anthropic's counts: `prompt_tokens` = input + cache read + cache
/// write tokens, `cached_tokens` = cache reads, `cache_write_tokens` = cache writes.
pub fn usage_from_anthropic(usage: &AnthropicUsage) -> Usage {
    let input = usage.input_tokens.unwrap_or(0);
    let read = usage.cache_read_input_tokens.unwrap_or(0);
    let write = usage.cache_creation_input_tokens.unwrap_or(0);
    let prompt = input.saturating_add(read).saturating_add(write);
    let completion = usage.output_tokens.unwrap_or(0);
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt.saturating_add(completion),
        cached_tokens: read,
        cache_write_tokens: write,
    }
}

// ---------------------------------------------------------------------------------------------
// Anthropic message -> OpenAI chat.completion
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct MessageIn<'a> {
    #[serde(default, borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<Vec<BlockIn<'a>>>,
    #[serde(default, borrow)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

/// One content block of an Anthropic message (or of a `content_block_start` event). Every field
/// but `type` is optional so that new block types parse and can be skipped.
#[derive(Deserialize)]
pub(crate) struct BlockIn<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(crate) text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) input: Option<&'a RawValue>,
}

/// OpenAI's usage object as written on the wire.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetailsOut,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
struct PromptDetailsOut {
    cached_tokens: u64,
}

impl From<&Usage> for UsageOut {
    fn from(u: &Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            prompt_tokens_details: PromptDetailsOut {
                cached_tokens: u.cached_tokens,
            },
        }
    }
}

/// Translates an Anthropic message (a successful `POST /v1/messages` body) into an OpenAI
/// `chat.completion` naming `client_model`, and returns its normalised usage with it.
///
/// `created` is the Unix time in seconds to report; `json_tool` says the request was
/// translated with the [`JSON_TOOL_NAME`] tool for `response_format` (see the module docs).
pub fn messages_to_chat_response(
    body: &[u8],
    client_model: &str,
    created: u64,
    json_tool: bool,
) -> Result<(Vec<u8>, Usage), TranslateError> {
    let msg: MessageIn<'_> = serde_json::from_slice(body)
        .map_err(|e| TranslateError::body(format!("upstream message is not valid: {e}")))?;
    if let Some(kind) = &msg.kind {
        if kind != "message" {
            return Err(TranslateError::field(
                "type",
                format!("expected an Anthropic message, got type `{kind}`"),
            ));
        }
    }
    let Some(blocks) = &msg.content else {
        return Err(TranslateError::field(
            "content",
            "upstream message has no `content` array",
        ));
    };

    let mut text = String::new();
    let mut has_text = false;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.kind.as_ref() {
            "text" => {
                has_text = true;
                text.push_str(block.text.as_deref().unwrap_or(""));
            }
            "thinking" => reasoning
                .get_or_insert_with(String::new)
                .push_str(block.thinking.as_deref().unwrap_or("")),
            "tool_use" => {
                let name = block.name.as_deref().unwrap_or("");
                let arguments = block
                    .input
                    .map_or_else(|| "{}".to_owned(), |raw| minify_json(raw.get()));
                if json_tool && name == JSON_TOOL_NAME {
                    has_text = true;
                    text.push_str(&arguments);
                } else {
                    tool_calls.push(ToolCallOut {
                        id: block.id.as_deref().unwrap_or(""),
                        kind: "function",
                        function: FunctionOut { name, arguments },
                    });
                }
            }
            _ => {}
        }
    }

    let finish = chat_finish_reason(
        msg.stop_reason.as_deref().unwrap_or("end_turn"),
        !tool_calls.is_empty(),
    );
    let usage = usage_from_anthropic(&msg.usage.unwrap_or_default());
    let content = if !has_text && !tool_calls.is_empty() {
        None
    } else {
        Some(text)
    };
    let out = ChatCompletionOut {
        id: &msg.id,
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

/// OpenAI `finish_reason` for an Anthropic stop reason, given whether any tool call reaches the
/// client (with the JSON tool, a `tool_use` stop may have produced only content).
pub(crate) fn chat_finish_reason(anthropic_stop: &str, has_tool_calls: bool) -> &'static str {
    match finish_reason(anthropic_stop) {
        "tool_calls" if !has_tool_calls => "stop",
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAI chat.completion -> Anthropic message
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ChatCompletionIn<'a> {
    #[serde(default, borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    choices: Option<Vec<ChatChoiceIn<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ChatChoiceIn<'a> {
    #[serde(borrow)]
    message: ChatMessageIn<'a>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChatMessageIn<'a> {
    #[serde(default)]
    content: Option<serde_json::Value>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCallIn<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallIn<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<FunctionIn<'a>>,
}

#[derive(Deserialize)]
struct FunctionIn<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

/// An Anthropic content block as written (non-stream content, or `content_block_start`).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum BlockOut<'a> {
    Text {
        text: &'a str,
    },
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: &'a str,
        input: Box<RawValue>,
    },
}

#[derive(Serialize)]
struct AnthropicMessageOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<BlockOut<'a>>,
    stop_reason: &'static str,
    stop_sequence: (),
    usage: AnthropicUsageOut,
}

/// Anthropic's usage object as written on the wire.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AnthropicUsageOut {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

impl From<&Usage> for AnthropicUsageOut {
    /// `input_tokens` excludes the cached and cache-written tokens, as Anthropic counts them.
    fn from(u: &Usage) -> Self {
        Self {
            input_tokens: u
                .prompt_tokens
                .saturating_sub(u.cached_tokens)
                .saturating_sub(u.cache_write_tokens),
            cache_creation_input_tokens: u.cache_write_tokens,
            cache_read_input_tokens: u.cached_tokens,
            output_tokens: u.completion_tokens,
        }
    }
}

/// Translates an OpenAI `chat.completion` into an Anthropic message naming `client_model`, and
/// returns the usage it reported (total filled in when the upstream left it out).
///
/// Only the first choice is used; see the module docs for the block order and for tool call
/// arguments that are not a JSON object. A tool call without an id gets `call_<position>`.
pub fn chat_to_messages_response(
    body: &[u8],
    client_model: &str,
) -> Result<(Vec<u8>, Usage), TranslateError> {
    let resp: ChatCompletionIn<'_> = serde_json::from_slice(body)
        .map_err(|e| TranslateError::body(format!("upstream chat completion is not valid: {e}")))?;
    let Some(choice) = resp.choices.as_ref().and_then(|c| c.first()) else {
        return Err(TranslateError::field(
            "choices",
            "upstream chat completion has no choices",
        ));
    };
    let msg = &choice.message;

    let text = content_text(msg.content.as_ref())
        .map_err(|m| TranslateError::field("choices[0].message.content", m))?;
    let mut content = Vec::new();
    if let Some(thinking) = msg.reasoning_content.as_deref().filter(|t| !t.is_empty()) {
        content.push(BlockOut::Thinking {
            thinking,
            signature: "",
        });
    }
    match text.as_deref() {
        Some(t) if !t.is_empty() => content.push(BlockOut::Text { text: t }),
        _ => {
            if let Some(refusal) = msg.refusal.as_deref().filter(|r| !r.is_empty()) {
                content.push(BlockOut::Text { text: refusal });
            }
        }
    }
    let mut has_tools = false;
    for (i, call) in msg.tool_calls.iter().flatten().enumerate() {
        let Some(function) = &call.function else {
            return Err(TranslateError::field(
                format!("choices[0].message.tool_calls[{i}]"),
                "only function tool calls can be expressed in Anthropic's format",
            ));
        };
        has_tools = true;
        content.push(BlockOut::ToolUse {
            id: tool_use_id(call.id.as_deref(), i),
            name: &function.name,
            input: tool_input(function.arguments.as_deref().unwrap_or(""))?,
        });
    }

    let stop = messages_stop_reason(choice.finish_reason.as_deref(), has_tools);
    let mut usage = resp.usage.unwrap_or_default();
    if usage.total_tokens == 0 {
        usage.total_tokens = usage.prompt_tokens.saturating_add(usage.completion_tokens);
    }
    let out = AnthropicMessageOut {
        id: &resp.id,
        kind: "message",
        role: "assistant",
        model: client_model,
        content,
        stop_reason: stop,
        stop_sequence: (),
        usage: AnthropicUsageOut::from(&usage),
    };
    Ok((to_json(&out)?, usage))
}

/// The id of a tool call as Anthropic needs it: the upstream's, or `call_<position>` when it
/// gave none (a `tool_result` must be able to name the call).
pub(crate) fn tool_use_id(id: Option<&str>, position: usize) -> Cow<'_, str> {
    match id {
        Some(id) if !id.is_empty() => Cow::Borrowed(id),
        _ => Cow::Owned(format!("call_{position}")),
    }
}

/// Anthropic `stop_reason` for an OpenAI `finish_reason` (none yet → `end_turn`), reporting
/// `tool_use` when tool calls were made but the upstream said `stop`.
pub(crate) fn messages_stop_reason(finish: Option<&str>, has_tools: bool) -> &'static str {
    match stop_reason(finish.unwrap_or("stop")) {
        "end_turn" if has_tools => "tool_use",
        other => other,
    }
}

/// The text of an OpenAI message `content`: a string, null, or an array of parts whose `text`
/// parts are concatenated (some compatible servers answer with parts).
fn content_text(content: Option<&serde_json::Value>) -> Result<Option<String>, &'static str> {
    match content {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                if let Some(t) = part.get("text").and_then(serde_json::Value::as_str) {
                    text.push_str(t);
                }
            }
            Ok(Some(text))
        }
        Some(_) => Err("`content` must be a string, an array of parts, or null"),
    }
}

/// Anthropic `input` for OpenAI tool call `arguments` (see [`RAW_ARGUMENTS_KEY`]).
pub(crate) fn tool_input(arguments: &str) -> Result<Box<RawValue>, TranslateError> {
    let trimmed = arguments.trim();
    let json = if trimmed.is_empty() {
        "{}".to_owned()
    } else if trimmed.starts_with('{') && serde_json::from_str::<&RawValue>(trimmed).is_ok() {
        trimmed.to_owned()
    } else {
        let mut s = String::with_capacity(arguments.len() + 24);
        s.push('{');
        s.push_str(&crate::json::encode_string(RAW_ARGUMENTS_KEY));
        s.push(':');
        s.push_str(&crate::json::encode_string(arguments));
        s.push('}');
        s
    };
    RawValue::from_string(json).map_err(|e| TranslateError::body(format!("tool input: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct AnthropicErrorIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    error: AnthropicErrorInner<'a>,
}

#[derive(Deserialize)]
struct AnthropicErrorInner<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    message: Cow<'a, str>,
}

/// Whether an error message says the prompt does not fit the model's context window, in the
/// words Anthropic uses (`prompt is too long: 208656 tokens > 200000 maximum`, `input length and
/// max_tokens exceed context limit`) or OpenAI's (`maximum context length`).
pub(crate) fn is_context_length_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("prompt is too long")
        || m.contains("exceed context limit")
        || m.contains("context window")
        || m.contains("maximum context length")
}

/// Converts an Anthropic error body (`{"type":"error","error":{"type","message"}}`, also the
/// data of a stream's `error` event) into OpenAI's error body. The top-level `"type":"error"` is
/// required: it is what tells this shape from OpenAI's, whose `error` also has a type.
///
/// `message` and `type` are kept; `code` is `context_length_exceeded` when the message says the
/// prompt is too long (what OpenAI clients act on), `rate_limit_exceeded` for
/// `rate_limit_error`, and otherwise the Anthropic type; `param` is null. Returns `None` when the
/// body is not Anthropic-shaped.
pub fn anthropic_error_to_openai(body: &[u8]) -> Option<ErrorBody> {
    let parsed: AnthropicErrorIn<'_> = serde_json::from_slice(body).ok()?;
    if parsed.kind != "error" {
        return None;
    }
    let AnthropicErrorInner { kind, message } = parsed.error;
    let code = if is_context_length_message(&message) {
        "context_length_exceeded".to_owned()
    } else if kind == "rate_limit_error" {
        "rate_limit_exceeded".to_owned()
    } else {
        kind.clone().into_owned()
    };
    Some(ErrorBody {
        error: ErrorObject {
            message: message.into_owned(),
            kind: kind.into_owned(),
            param: None,
            code: Some(code),
        },
    })
}

#[derive(Serialize)]
struct AnthropicErrorOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: AnthropicErrorInnerOut<'a>,
}

#[derive(Serialize)]
struct AnthropicErrorInnerOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

fn anthropic_error_json(kind: &str, message: &str) -> Vec<u8> {
    let out = AnthropicErrorOut {
        kind: "error",
        error: AnthropicErrorInnerOut { kind, message },
    };
    // Serialising two strings cannot fail; keep a valid body regardless.
    serde_json::to_vec(&out).unwrap_or_else(|_| {
        br#"{"type":"error","error":{"type":"api_error","message":"internal error"}}"#.to_vec()
    })
}

/// Anthropic's error body for an HTTP `status` and a message:
/// `{"type":"error","error":{"type":<error_type_for_status(status)>,"message":...}}`.
pub fn anthropic_error_body(status: u16, message: &str) -> Vec<u8> {
    anthropic_error_json(error_type_for_status(status), message)
}

/// Longest message taken from a non-JSON error body (HTML error pages can be large).
const MAX_PLAIN_ERROR_CHARS: usize = 1000;

/// Converts any error response into Anthropic's error body, for a client speaking Anthropic.
///
/// - An Anthropic-shaped body is returned unchanged.
/// - An OpenAI-shaped body (`{"error":{"message",...}}`) keeps its message. The type follows
///   `status` when it is an HTTP error status (400 and up); for a lower status (an error that
///   arrived inside a 200 stream) it follows OpenAI's `type` and `code` instead. An OpenAI
///   `context_length_exceeded` becomes `invalid_request_error` and its message is prefixed with
///   `prompt is too long: ` unless it says so already, because that is the phrase Anthropic
///   clients look for to compact their context.
/// - `{"error":"..."}`, `{"message":"..."}` and `{"detail":"..."}` bodies keep that string.
/// - Any other body becomes the message (trimmed, at most 1000 characters), or, when empty,
///   `upstream returned HTTP <status>`.
pub fn openai_error_to_anthropic(status: u16, body: &[u8]) -> Vec<u8> {
    if anthropic_error_to_openai(body).is_some() {
        return body.to_vec();
    }
    if let Ok(parsed) = serde_json::from_slice::<ErrorBodyLoose<'_>>(body) {
        let e = parsed.error;
        let code = e.code.as_ref().and_then(serde_json::Value::as_str);
        let context = code == Some("context_length_exceeded")
            || (code.is_none() && is_context_length_message(&e.message));
        if context {
            let message = if e
                .message
                .to_ascii_lowercase()
                .contains("prompt is too long")
            {
                e.message.into_owned()
            } else {
                format!("prompt is too long: {}", e.message)
            };
            return anthropic_error_json("invalid_request_error", &message);
        }
        let kind = if status >= 400 {
            error_type_for_status(status)
        } else {
            anthropic_type_for_openai(e.kind.as_deref().unwrap_or(""), code.unwrap_or(""))
        };
        return anthropic_error_json(kind, &e.message);
    }
    let kind = if status >= 400 {
        error_type_for_status(status)
    } else {
        "api_error"
    };
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in ["error", "message", "detail"] {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                return anthropic_error_json(kind, s);
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return anthropic_error_json(kind, &format!("upstream returned HTTP {status}"));
    }
    let cut: String = text.chars().take(MAX_PLAIN_ERROR_CHARS).collect();
    anthropic_error_json(kind, &cut)
}

/// OpenAI error body read leniently: only `message` is required; `code` may be a string, a
/// number or null.
#[derive(Deserialize)]
struct ErrorBodyLoose<'a> {
    #[serde(borrow)]
    error: ErrorObjectLoose<'a>,
}

#[derive(Deserialize)]
struct ErrorObjectLoose<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

/// Anthropic error type for an OpenAI error `type`/`code` when no HTTP status says more.
fn anthropic_type_for_openai(kind: &str, code: &str) -> &'static str {
    match (kind, code) {
        (_, "rate_limit_exceeded" | "insufficient_quota")
        | ("rate_limit_error" | "requests" | "tokens" | "insufficient_quota", _) => {
            "rate_limit_error"
        }
        ("invalid_request_error", _) => "invalid_request_error",
        ("authentication_error", _) | (_, "invalid_api_key") => "authentication_error",
        ("permission_error", _) => "permission_error",
        ("not_found_error", _) | (_, "model_not_found") => "not_found_error",
        ("overloaded_error" | "service_unavailable", _) => "overloaded_error",
        ("timeout_error", _) | (_, "timeout") => "timeout_error",
        _ => "api_error",
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// Serialises a translated document.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, TranslateError> {
    serde_json::to_vec(value).map_err(|e| TranslateError::body(format!("serialising: {e}")))
}

/// Removes insignificant whitespace from JSON text that may arrive in pieces, keeping every
/// other byte (key order, number spelling, escapes) as it was. Works on invalid or truncated
/// JSON too: it only tracks whether it is inside a string.
#[derive(Debug, Default, Clone)]
pub(crate) struct JsonMinifier {
    in_string: bool,
    escaped: bool,
}

impl JsonMinifier {
    /// Appends the compact form of the next piece of text to `out`.
    pub(crate) fn push(&mut self, piece: &str, out: &mut String) {
        for c in piece.chars() {
            if self.in_string {
                out.push(c);
                if self.escaped {
                    self.escaped = false;
                } else if c == '\\' {
                    self.escaped = true;
                } else if c == '"' {
                    self.in_string = false;
                }
            } else {
                match c {
                    ' ' | '\t' | '\n' | '\r' => {}
                    '"' => {
                        self.in_string = true;
                        out.push(c);
                    }
                    _ => out.push(c),
                }
            }
        }
    }
}

/// Compact form of a whole JSON text (see [`JsonMinifier`]).
pub(crate) fn minify_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    JsonMinifier::default().push(text, &mut out);
    out
}

#[cfg(test)]
mod tests;
