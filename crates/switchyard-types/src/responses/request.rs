//! Responses API requests, translated to OpenAI chat completions for providers that only speak
//! chat (through their own chat translators).
//!
//! # Responses → chat
//!
//! Translated:
//! - `instructions` becomes a leading `system` message.
//! - `input` as a string is one user message. As a list of items:
//!   - messages (`{"type": "message"}` or the short `{"role", "content"}` form) with roles
//!     `user`, `system`, `developer` and `assistant`; content as a string or parts:
//!     `input_text` (and `output_text` in history) as text, `input_image` with an
//!     `image_url` (a URL or a `data:` URL; `detail` kept) as an `image_url` part, `input_file`
//!     with base64 `file_data` as a `file` part, and in assistant turns `refusal` as text;
//!   - `function_call` items become `tool_calls` of an assistant message (consecutive calls,
//!     and the assistant text just before them, form one message);
//!   - `function_call_output` items become `tool` messages (text parts joined);
//!   - `reasoning` items are skipped: they are the provider's earlier reasoning, which chat
//!     cannot carry back (the chat translators drop thinking in history the same way).
//! - Function `tools` (flattened in the Responses API) as chat function tools; `tool_choice`
//!   (`auto`/`none`/`required` or `{"type": "function", "name"}`); `parallel_tool_calls`.
//! - `text.format` `json_schema` (name, schema, strict, description) and `json_object` as
//!   `response_format`; `text` as the default.
//! - `max_output_tokens` as `max_completion_tokens`; `temperature`, `top_p`; `reasoning.effort`
//!   as `reasoning_effort` (the provider's chat translator turns it into a thinking budget, or
//!   the adapter refuses it); `user`, `safety_identifier`, `prompt_cache_key`, `metadata`,
//!   `store` and `service_tier` as the same chat fields, which each translator keeps or drops as
//!   hints; `provider_options` unchanged.
//! - `stream`, with `stream_options.include_usage` always on: `response.completed` carries the
//!   usage.
//!
//! Dropped, being hints: `reasoning.summary` (reasoning text is returned whenever the provider
//! gives it), `text.verbosity`, `truncation`, `include` values other than logprobs,
//! `max_tool_calls` (it limits built-in tools, which are refused), `stream_options`, and fields
//! this module does not know.
//!
//! Refused with an error naming the field: built-in tools (`web_search`, `file_search`,
//! `code_interpreter`, `computer_use_preview`, `image_generation`, `mcp`, `local_shell`, custom
//! tools, ...) and `tool_choice` naming them or `allowed_tools`; `background: true`;
//! `conversation`; `prompt` templates; `top_logprobs` and the logprobs `include`; file ids and
//! file URLs; audio; `item_reference` and every other input item type; images inside
//! `function_call_output`.

use serde_json::{json, Map, Value};

use super::Meta;
use crate::access::*;
use crate::anthropic::TranslateError;

/// A Responses request translated to chat completions.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesToChat {
    /// The OpenAI chat completions request body.
    pub body: Vec<u8>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether `reasoning.effort` asks for reasoning (any effort but `none`), which an adapter
    /// whose chat translator ignores `reasoning_effort` must refuse rather than drop.
    pub reasoning: bool,
    /// The response object the answer fills in: the request's echoed settings, `status`
    /// `in_progress`, empty `output`, `usage` null.
    pub shell: Value,
}

/// Translates a Responses request into a chat completions request. `meta` names the response
/// (its id, time and the client's model), for the [`ResponsesToChat::shell`].
///
/// `previous_response_id` is only echoed: the gateway resolves it (see [`with_history`]) before
/// translation.
pub fn responses_to_chat(body: &[u8], meta: &Meta) -> Result<ResponsesToChat, TranslateError> {
    let req = parse_object(body)?;
    refuse_unsupported(&req)?;
    let mut chat = Map::new();
    chat.insert("model".into(), meta.model.clone().into());

    let mut messages = Vec::new();
    if let Some(instructions) = member(&req, "instructions") {
        match instructions {
            Value::String(s) => messages.push(json!({"role": "system", "content": s})),
            // A list of input items (a stored prompt's form): translated like `input`.
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    push_item(&mut messages, item, &format!("instructions[{i}]"))?;
                }
            }
            _ => return Err(wrong_type("instructions", "a string")),
        }
    }
    match member(&req, "input") {
        None => {}
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                push_item(&mut messages, item, &format!("input[{i}]"))?;
            }
        }
        Some(_) => return Err(wrong_type("input", "a string or an array of input items")),
    }
    if messages.is_empty() {
        return Err(TranslateError::field(
            "input",
            "`input` must hold at least one message",
        ));
    }
    chat.insert("messages".into(), Value::Array(messages));

    if let Some(tools) = opt_array(&req, "", "tools")? {
        let mut out = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            out.push(function_tool(t, &format!("tools[{i}]"))?);
        }
        if !out.is_empty() {
            chat.insert("tools".into(), Value::Array(out));
        }
    }
    if let Some(choice) = member(&req, "tool_choice") {
        chat.insert("tool_choice".into(), tool_choice(choice)?);
    }
    if let Some(p) = opt_bool(&req, "", "parallel_tool_calls")? {
        chat.insert("parallel_tool_calls".into(), p.into());
    }
    if let Some(text) = opt_object(&req, "", "text")? {
        if let Some(format) = response_format(text)? {
            chat.insert("response_format".into(), format);
        }
    }
    if let Some(n) = opt_u64(&req, "", "max_output_tokens")? {
        chat.insert("max_completion_tokens".into(), n.into());
    }
    for key in ["temperature", "top_p"] {
        if let Some(n) = opt_number(&req, "", key)? {
            chat.insert(key.into(), Value::Number(n.clone()));
        }
    }
    let mut reasoning = false;
    if let Some(r) = opt_object(&req, "", "reasoning")? {
        if let Some(effort) = opt_str(r, "reasoning", "effort")? {
            reasoning = effort != "none";
            chat.insert("reasoning_effort".into(), effort.into());
        }
    }
    for key in [
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "service_tier",
    ] {
        if let Some(s) = opt_str(&req, "", key)? {
            chat.insert(key.into(), s.into());
        }
    }
    if let Some(m) = opt_object(&req, "", "metadata")? {
        chat.insert("metadata".into(), Value::Object(m.clone()));
    }
    if let Some(s) = opt_bool(&req, "", "store")? {
        chat.insert("store".into(), s.into());
    }
    if let Some(options) = member(&req, crate::extras::PROVIDER_OPTIONS) {
        chat.insert(crate::extras::PROVIDER_OPTIONS.into(), options.clone());
    }
    let stream = opt_bool(&req, "", "stream")?.unwrap_or(false);
    if stream {
        chat.insert("stream".into(), true.into());
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(ResponsesToChat {
        body: to_bytes(&Value::Object(chat))?,
        stream,
        reasoning,
        shell: shell(&req, meta),
    })
}

/// Fields whose loss would change what the client gets, and which chat cannot carry.
fn refuse_unsupported(req: &Obj) -> Res<()> {
    if opt_bool(req, "", "background")? == Some(true) {
        return Err(TranslateError::field(
            "background",
            "`background: true` (asynchronous responses) is not supported",
        ));
    }
    for key in ["conversation", "prompt"] {
        if member(req, key).is_some() {
            return Err(TranslateError::field(
                key,
                format!("`{key}` (state kept by OpenAI) is not supported"),
            ));
        }
    }
    if opt_u64(req, "", "top_logprobs")?.is_some_and(|n| n > 0) {
        return Err(TranslateError::field(
            "top_logprobs",
            "`top_logprobs` is not supported",
        ));
    }
    if let Some(include) = opt_array(req, "", "include")? {
        for (i, v) in include.iter().enumerate() {
            if v.as_str() == Some("message.output_text.logprobs") {
                return Err(TranslateError::field(
                    format!("include[{i}]"),
                    "`message.output_text.logprobs` is not supported",
                ));
            }
        }
    }
    Ok(())
}

/// The role of a message item, checked.
fn role_of<'a>(o: &'a Obj, path: &str) -> Res<&'a str> {
    let role = req_str(o, path, "role")?;
    match role {
        "user" | "system" | "developer" | "assistant" => Ok(role),
        other => Err(TranslateError::field(
            join(path, "role"),
            format!("unsupported role `{other}`; expected user, system, developer or assistant"),
        )),
    }
}

/// Appends the chat messages for one input item.
fn push_item(messages: &mut Vec<Value>, item: &Value, path: &str) -> Res<()> {
    let o = as_object(item, path)?;
    let kind = match opt_str(o, path, "type")? {
        Some(k) => k,
        None if o.contains_key("role") => "message",
        None => return Err(missing(&join(path, "type"))),
    };
    match kind {
        "message" => {
            let role = role_of(o, path)?;
            let content = member(o, "content").ok_or_else(|| missing(&join(path, "content")))?;
            let cpath = join(path, "content");
            let content = if role == "assistant" {
                Value::String(assistant_text(content, &cpath)?)
            } else {
                input_content(content, &cpath)?
            };
            messages.push(json!({"role": role, "content": content}));
        }
        "function_call" => {
            let call = json!({
                "id": req_str(o, path, "call_id")?,
                "type": "function",
                "function": {
                    "name": req_str(o, path, "name")?,
                    "arguments": opt_str(o, path, "arguments")?.unwrap_or("{}"),
                },
            });
            // Consecutive calls (and the assistant text before them) are one chat turn.
            let last = messages
                .last_mut()
                .filter(|m| m["role"] == "assistant")
                .and_then(Value::as_object_mut);
            match last {
                Some(m) => match m.get_mut("tool_calls").and_then(Value::as_array_mut) {
                    Some(calls) => calls.push(call),
                    None => {
                        m.insert("tool_calls".into(), Value::Array(vec![call]));
                    }
                },
                None => messages.push(json!({
                    "role": "assistant", "content": null, "tool_calls": [call],
                })),
            }
        }
        "function_call_output" => {
            let opath = join(path, "output");
            let output = match member(o, "output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => output_parts_text(parts, &opath)?,
                Some(_) => return Err(wrong_type(&opath, "a string or an array of parts")),
                None => return Err(missing(&opath)),
            };
            messages.push(json!({
                "role": "tool",
                "tool_call_id": req_str(o, path, "call_id")?,
                "content": output,
            }));
        }
        "reasoning" => {}
        "item_reference" => {
            return Err(TranslateError::field(
                join(path, "type"),
                "`item_reference` input items are not supported; send the item itself",
            ))
        }
        other => {
            return Err(TranslateError::field(
                join(path, "type"),
                format!("input items of type `{other}` are not supported"),
            ))
        }
    }
    Ok(())
}

/// A user, system or developer message's content as chat content.
fn input_content(content: &Value, path: &str) -> Res<Value> {
    match content {
        Value::String(s) => Ok(Value::String(s.clone())),
        Value::Array(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for (i, p) in parts.iter().enumerate() {
                out.push(input_part(p, &format!("{path}[{i}]"))?);
            }
            Ok(Value::Array(out))
        }
        _ => Err(wrong_type(path, "a string or an array of content parts")),
    }
}

fn input_part(part: &Value, path: &str) -> Res<Value> {
    let (o, kind) = part_type(part, path)?;
    match kind {
        "input_text" | "output_text" | "text" => {
            Ok(json!({"type": "text", "text": req_str(o, path, "text")?}))
        }
        "input_image" => {
            if member(o, "file_id").is_some() {
                return Err(TranslateError::field(
                    join(path, "file_id"),
                    "images by OpenAI file id are not supported; send `image_url` (a URL or a \
                     data: URL)",
                ));
            }
            let mut image = json!({"url": req_str(o, path, "image_url")?});
            if let Some(d) = opt_str(o, path, "detail")? {
                image["detail"] = d.into();
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        "input_file" => {
            for key in ["file_id", "file_url"] {
                if member(o, key).is_some() {
                    return Err(TranslateError::field(
                        join(path, key),
                        format!("files by `{key}` are not supported; send `file_data`"),
                    ));
                }
            }
            let mut file = json!({"file_data": req_str(o, path, "file_data")?});
            if let Some(name) = opt_str(o, path, "filename")? {
                file["filename"] = name.into();
            }
            Ok(json!({"type": "file", "file": file}))
        }
        "input_audio" => Err(unsupported_part(path, kind, "audio input is not supported")),
        other => Err(unsupported_part(path, other, "not a Responses input part")),
    }
}

/// An assistant turn's text: a string, or `output_text`/`refusal` parts joined.
fn assistant_text(content: &Value, path: &str) -> Res<String> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut text = String::new();
            for (i, p) in parts.iter().enumerate() {
                let pp = format!("{path}[{i}]");
                let (o, kind) = part_type(p, &pp)?;
                match kind {
                    "output_text" | "input_text" | "text" => {
                        text.push_str(req_str(o, &pp, "text")?)
                    }
                    "refusal" => text.push_str(req_str(o, &pp, "refusal")?),
                    other => {
                        return Err(unsupported_part(
                            &pp,
                            other,
                            "assistant turns carry output_text or refusal",
                        ))
                    }
                }
            }
            Ok(text)
        }
        _ => Err(wrong_type(path, "a string or an array of content parts")),
    }
}

/// A `function_call_output`'s parts as one text (chat tool messages carry text only).
fn output_parts_text(parts: &[Value], path: &str) -> Res<String> {
    let mut text = String::new();
    for (i, p) in parts.iter().enumerate() {
        let pp = format!("{path}[{i}]");
        let (o, kind) = part_type(p, &pp)?;
        match kind {
            "input_text" | "output_text" | "text" => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(req_str(o, &pp, "text")?);
            }
            other => {
                return Err(unsupported_part(
                    &pp,
                    other,
                    "function call outputs can only carry text here",
                ))
            }
        }
    }
    Ok(text)
}

/// One Responses tool as a chat function tool; built-in tools are refused.
fn function_tool(tool: &Value, path: &str) -> Res<Value> {
    let (o, kind) = part_type(tool, path)?;
    if kind != "function" {
        return Err(TranslateError::field(
            join(path, "type"),
            format!(
                "the built-in tool `{kind}` is not supported; only `function` tools can be \
                 translated"
            ),
        ));
    }
    let mut function = Map::new();
    function.insert("name".into(), req_str(o, path, "name")?.into());
    for key in ["description", "parameters", "strict"] {
        if let Some(v) = member(o, key) {
            function.insert(key.into(), v.clone());
        }
    }
    Ok(json!({"type": "function", "function": function}))
}

fn tool_choice(choice: &Value) -> Res<Value> {
    const PATH: &str = "tool_choice";
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" | "none" | "required" => Ok(Value::String(s.clone())),
            other => Err(TranslateError::field(
                PATH,
                format!("unsupported `tool_choice` `{other}`"),
            )),
        },
        Value::Object(o) => {
            let kind = req_str(o, PATH, "type")?;
            match kind {
                "function" => Ok(json!({
                    "type": "function",
                    "function": {"name": req_str(o, PATH, "name")?},
                })),
                other => Err(TranslateError::field(
                    join(PATH, "type"),
                    format!("`tool_choice` of type `{other}` is not supported"),
                )),
            }
        }
        _ => Err(wrong_type(PATH, "a string or an object")),
    }
}

/// `text.format` as chat's `response_format` (`None` for plain text).
fn response_format(text: &Obj) -> Res<Option<Value>> {
    let Some(format) = opt_object(text, "text", "format")? else {
        return Ok(None);
    };
    const PATH: &str = "text.format";
    match req_str(format, PATH, "type")? {
        "text" => Ok(None),
        "json_object" => Ok(Some(json!({"type": "json_object"}))),
        "json_schema" => {
            let mut schema = Map::new();
            schema.insert("name".into(), req_str(format, PATH, "name")?.into());
            let s = member(format, "schema").ok_or_else(|| missing("text.format.schema"))?;
            schema.insert("schema".into(), s.clone());
            for key in ["strict", "description"] {
                if let Some(v) = member(format, key) {
                    schema.insert(key.into(), v.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        other => Err(TranslateError::field(
            "text.format.type",
            format!("unsupported `text.format` type `{other}`"),
        )),
    }
}

/// The response object's settings, echoed from the request as OpenAI does.
fn shell(req: &Obj, meta: &Meta) -> Value {
    let get = |key: &str, default: Value| member(req, key).cloned().unwrap_or(default);
    let reasoning = member(req, "reasoning")
        .and_then(Value::as_object)
        .map_or_else(
            || json!({"effort": null, "summary": null}),
            |r| {
                json!({
                    "effort": r.get("effort").cloned().unwrap_or(Value::Null),
                    "summary": r.get("summary").cloned().unwrap_or(Value::Null),
                })
            },
        );
    json!({
        "id": meta.id,
        "object": "response",
        "created_at": meta.created_at,
        "status": "in_progress",
        "background": false,
        "error": null,
        "incomplete_details": null,
        "instructions": get("instructions", Value::Null),
        "max_output_tokens": get("max_output_tokens", Value::Null),
        "max_tool_calls": get("max_tool_calls", Value::Null),
        "model": meta.model,
        "output": [],
        "parallel_tool_calls": get("parallel_tool_calls", Value::Bool(true)),
        "previous_response_id": get("previous_response_id", Value::Null),
        "reasoning": reasoning,
        "service_tier": get("service_tier", Value::from("default")),
        "store": get("store", Value::Bool(true)),
        "temperature": get("temperature", Value::from(1.0)),
        "text": get("text", json!({"format": {"type": "text"}})),
        "tool_choice": get("tool_choice", Value::from("auto")),
        "tools": get("tools", json!([])),
        "top_p": get("top_p", Value::from(1.0)),
        "truncation": get("truncation", Value::from("disabled")),
        "usage": null,
        "user": get("user", Value::Null),
        "metadata": get("metadata", json!({})),
    })
}

// === stored conversations ===

/// The request's `input` as Responses items, each with an `id` (kept when the client gave one,
/// else `{prefix}_{id_seed}{n}`) and `status`: what `GET /v1/responses/{id}/input_items` lists
/// and what a later `previous_response_id` replays.
pub fn input_items(body: &[u8], id_seed: &str) -> Result<Vec<Value>, TranslateError> {
    let req = parse_object(body)?;
    let mut out = Vec::new();
    let items: Vec<Value> = match member(&req, "input") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![json!({"role": "user", "content": s})],
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(wrong_type("input", "a string or an array of input items")),
    };
    for (n, item) in items.into_iter().enumerate() {
        let Value::Object(mut o) = item else {
            return Err(wrong_type(&format!("input[{n}]"), "an object"));
        };
        let kind = match o.get("type").and_then(Value::as_str) {
            Some(k) => k.to_owned(),
            None => "message".to_owned(),
        };
        if kind == "message" {
            o.insert("type".into(), "message".into());
            let role = o.get("role").and_then(Value::as_str).unwrap_or("user");
            let part_type = if role == "assistant" {
                "output_text"
            } else {
                "input_text"
            };
            if let Some(Value::String(s)) = o.get("content") {
                let part = json!([{"type": part_type, "text": s}]);
                o.insert("content".into(), part);
            }
        }
        let prefix = match kind.as_str() {
            "message" => "msg",
            "function_call" => "fc",
            "function_call_output" => "fco",
            "reasoning" => "rs",
            _ => "item",
        };
        if !o.get("id").is_some_and(Value::is_string) {
            o.insert("id".into(), format!("{prefix}_{id_seed}{n:02x}").into());
        }
        if !o.contains_key("status") && kind != "reasoning" {
            o.insert("status".into(), "completed".into());
        }
        out.push(Value::Object(o));
    }
    Ok(out)
}

/// The request with `history` (the stored items of the conversation so far, oldest first)
/// placed before its own `input`, for a deployment that does not hold the conversation itself.
///
/// `native` is for an upstream that speaks the Responses API: `previous_response_id` is removed
/// (the upstream never saw the gateway's ids) and the history loses the item ids and states
/// and the reasoning items the upstream did not issue. Otherwise `previous_response_id` stays,
/// to be echoed in the answer, and the history is kept as stored.
pub fn with_history(
    body: &[u8],
    history: &[Value],
    native: bool,
) -> Result<Vec<u8>, TranslateError> {
    let mut req = parse_object(body)?;
    let own: Vec<Value> = match req.remove("input") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![json!({"role": "user", "content": s})],
        Some(Value::Array(items)) => items,
        Some(_) => return Err(wrong_type("input", "a string or an array of input items")),
    };
    let mut input = Vec::with_capacity(history.len() + own.len());
    for item in history {
        if native {
            if item.get("type").and_then(Value::as_str) == Some("reasoning") {
                continue;
            }
            let is_assistant = item.get("role").and_then(Value::as_str) == Some("assistant");
            if is_assistant {
                // The short form, which every Responses API accepts as input.
                let content = item.get("content").unwrap_or(&Value::Null);
                let text = assistant_text(content, "input")?;
                input.push(json!({"role": "assistant", "content": text}));
                continue;
            }
            let mut item = item.clone();
            if let Some(o) = item.as_object_mut() {
                o.remove("id");
                o.remove("status");
            }
            input.push(item);
        } else {
            input.push(item.clone());
        }
    }
    input.extend(own);
    req.insert("input".into(), Value::Array(input));
    if native {
        req.remove("previous_response_id");
    }
    to_bytes(&Value::Object(req))
}
