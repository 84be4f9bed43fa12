//! Chat completions answers as Responses objects.
//!
//! | chat completion | Responses object |
//! |---|---|
//! | `message.reasoning_content` | a `reasoning` item with one `reasoning_text` part |
//! | `message.content` | a `message` item with one `output_text` part |
//! | `message.refusal` | a `refusal` part of that message |
//! | `message.tool_calls[]` | `function_call` items (`call_id` = the call's id) |
//! | `finish_reason` `length` / `content_filter` | `status: incomplete`, `incomplete_details.reason` `max_output_tokens` / `content_filter` |
//! | other finish reasons | `status: completed` |
//! | `usage.prompt_tokens` (`prompt_tokens_details.cached_tokens`) | `usage.input_tokens` (`input_tokens_details.cached_tokens`) |
//! | `usage.completion_tokens` (`completion_tokens_details.reasoning_tokens`) | `usage.output_tokens` (`output_tokens_details.reasoning_tokens`) |

use serde::Deserialize;
use serde_json::{json, Value};

use super::Meta;
use crate::anthropic::TranslateError;
use crate::openai::Usage;

#[derive(Deserialize)]
struct ChatCompletion {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Deserialize)]
struct ToolCall {
    #[serde(default)]
    id: Option<String>,
    function: Function,
}

#[derive(Deserialize)]
struct Function {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: String,
}

/// Translates a `chat.completion` body into the Responses object that fills `shell` (see
/// [`super::request::ResponsesToChat::shell`]), returning its bytes, the object and the usage.
pub fn chat_to_response(
    body: &[u8],
    shell: &Value,
    meta: &Meta,
) -> Result<(Vec<u8>, Value, Usage), TranslateError> {
    let chat: ChatCompletion = serde_json::from_slice(body)
        .map_err(|e| TranslateError::body(format!("not a chat completion: {e}")))?;
    let choice = chat
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| TranslateError::body("the chat completion has no choices"))?;
    let message = choice
        .message
        .ok_or_else(|| TranslateError::body("the chat completion's choice has no message"))?;
    let mut output = Vec::new();
    if let Some(r) = message.reasoning_content.filter(|r| !r.is_empty()) {
        output.push(reasoning_item(&meta.item_id("rs", output.len()), &r));
    }
    let mut parts = Vec::new();
    if let Some(text) = message.content.filter(|t| !t.is_empty()) {
        parts.push(output_text(&text));
    }
    if let Some(refusal) = message.refusal.filter(|t| !t.is_empty()) {
        parts.push(json!({"type": "refusal", "refusal": refusal}));
    }
    if !parts.is_empty() {
        output.push(message_item(
            &meta.item_id("msg", output.len()),
            parts,
            "completed",
        ));
    }
    for call in message.tool_calls.unwrap_or_default() {
        let id = meta.item_id("fc", output.len());
        let call_id = call.id.unwrap_or_else(|| id.clone());
        output.push(function_call_item(
            &id,
            &call_id,
            &call.function.name,
            &call.function.arguments,
            "completed",
        ));
    }
    let usage_value = chat.usage.unwrap_or(Value::Null);
    let usage = serde_json::from_value::<Option<Usage>>(usage_value.clone())
        .ok()
        .flatten()
        .unwrap_or_default();
    let reasoning_tokens = usage_value["completion_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .unwrap_or(0);
    let mut object = shell.clone();
    finish(
        &mut object,
        output,
        choice.finish_reason.as_deref(),
        Some(responses_usage(&usage, reasoning_tokens)),
    );
    let bytes = serde_json::to_vec(&object)
        .map_err(|e| TranslateError::body(format!("cannot encode the response: {e}")))?;
    Ok((bytes, object, usage))
}

/// Completes a response object: its output, status (from the chat finish reason) and usage.
pub(crate) fn finish(
    object: &mut Value,
    output: Vec<Value>,
    finish: Option<&str>,
    usage: Option<Value>,
) {
    if !object.is_object() {
        *object = json!({});
    }
    let incomplete = match finish {
        Some("length") => Some("max_output_tokens"),
        Some("content_filter") => Some("content_filter"),
        _ => None,
    };
    object["output"] = Value::Array(output);
    match incomplete {
        Some(reason) => {
            object["status"] = "incomplete".into();
            object["incomplete_details"] = json!({"reason": reason});
        }
        None => object["status"] = "completed".into(),
    }
    if let Some(u) = usage {
        object["usage"] = u;
    }
}

/// The Responses API usage object for gateway usage.
pub(crate) fn responses_usage(u: &Usage, reasoning_tokens: u64) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": if u.total_tokens > 0 { u.total_tokens } else { u.prompt_tokens + u.completion_tokens },
    })
}

pub(crate) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub(crate) fn message_item(id: &str, content: Vec<Value>, status: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    })
}

pub(crate) fn reasoning_item(id: &str, text: &str) -> Value {
    json!({
        "id": id,
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    })
}

pub(crate) fn function_call_item(
    id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    })
}
