//! Request translation between OpenAI chat completions and Anthropic's Messages API.
//!
//! [`chat_to_messages`] turns an OpenAI `POST /v1/chat/completions` body into an Anthropic
//! `POST /v1/messages` body; [`messages_to_chat`] goes the other way. Both are pure functions of
//! the client's bytes and the upstream model name. They keep what the target can express, drop
//! what is only a hint without an equivalent, and return a [`TranslateError`] naming the field
//! (as a path in the *client's* format) for anything whose loss would change what the client
//! gets back.
//!
//! # OpenAI → Anthropic
//!
//! Translated:
//! - `system` and `developer` messages, wherever they appear, become the top-level `system`
//!   text, in order (Anthropic has no mid-conversation system turns).
//! - `user`/`assistant` messages keep their order; consecutive messages of one role (after
//!   `tool` messages have become user turns) are merged, since Anthropic wants alternating
//!   roles. In a merged user turn the `tool_result` blocks come first, as Anthropic requires.
//!   Empty text is skipped (Anthropic rejects empty text blocks), and a turn left with nothing
//!   is dropped. A turn holding one text block is sent as a plain string.
//! - Content parts: `text`; `image_url` with a `data:<mime>;base64,` URL (JPEG, PNG, GIF, WebP)
//!   or an http(s) URL (its `detail` is dropped); `file` with a PDF `file_data` data URL becomes
//!   a `document` block whose `title` is the `filename`. Assistant `refusal` parts and the
//!   `refusal` field become text.
//! - `tool_calls` become `tool_use` blocks after the text (ids kept, `arguments` parsed; empty
//!   arguments read as `{}`); `tool` messages become `tool_result` blocks.
//! - `max_completion_tokens` (or else `max_tokens`, else [`DEFAULT_MAX_TOKENS`]),
//!   `temperature` (clamped to Anthropic's maximum of 1), `top_p`, `stop`, `stream`, and
//!   `user` (or else `safety_identifier`) as `metadata.user_id`.
//! - Function `tools`, `tool_choice` and `parallel_tool_calls: false`.
//! - `response_format` `json_schema`/`json_object`: see [`chat_to_messages`].
//! - `reasoning_effort` as `thinking`: see [`chat_to_messages`].
//!
//! Dropped, being hints Anthropic has no equivalent for: `seed`, `presence_penalty`,
//! `frequency_penalty`, `logit_bias`, `service_tier`, `store`, `metadata`, `stream_options`
//! (its `include_usage` is returned to the caller), `prediction`, `verbosity`,
//! `prompt_cache_key`, message `name`s, image `detail`, tool `strict`, and any field this
//! module does not know.
//!
//! Rejected: `n` > 1, `logprobs: true`, `top_logprobs`, audio (`modalities` with `audio`,
//! `audio`, `input_audio` parts, assistant `audio`), `web_search_options`, OpenAI file ids,
//! non-function tools and tool calls, `tool_choice` `allowed_tools`/`custom`, and the legacy
//! `functions`/`function_call`/`function` role (deprecated by OpenAI in favour of tools; they
//! carry no call ids, which Anthropic requires, so clients are asked to use `tools`).
//!
//! # Anthropic → OpenAI
//!
//! Translated:
//! - `system` becomes a leading `system` message (a string stays a string, blocks become text
//!   parts).
//! - User content: text, images (base64 as a data URL, or a URL), base64 PDF `document`s as
//!   `file` parts (`title` as the filename, else `document.pdf`). Each `tool_result` becomes a
//!   `tool` message, placed before the rest of its user message; its text blocks are joined
//!   with newlines, and `is_error: true` is kept by prefixing the text with `Error: ` (OpenAI
//!   has no error flag on tool output).
//! - Assistant content: text blocks concatenated (split text blocks are fragments of one
//!   answer, e.g. around citations) and `tool_use` as `tool_calls` with compact JSON
//!   `arguments`.
//! - `max_tokens`, `temperature`, `top_p`, `stop_sequences` as `stop`, `metadata.user_id` as
//!   `user`, custom `tools` as function tools, `tool_choice`, `disable_parallel_tool_use` as
//!   `parallel_tool_calls: false`, `output_config.format` (or the beta `output_format`) JSON
//!   schema as `response_format`, and `stream` (with `stream_options.include_usage`, so that
//!   the usage Anthropic's `message_delta` reports arrives).
//!
//! Dropped: `thinking` and `output_config.effort` (OpenAI-type models that do not reason reject
//! `reasoning_effort`), `thinking`/`redacted_thinking` blocks in assistant history (only
//! Anthropic can verify their signatures), `top_k`, `service_tier`, `cache_control` everywhere
//! (only Anthropic deployments cache that way), `citations`, tool `strict`, and unknown fields.
//!
//! Rejected: Anthropic server tools (`web_search_…`, `code_execution_…`, …), `mcp_servers`,
//! `container`, blocks OpenAI cannot carry (non-PDF documents, file sources, search results,
//! images inside tool results, server tool blocks), and a final assistant message: Anthropic
//! continues such a prefill, OpenAI would answer after it instead.

use serde_json::{json, Value};

use super::{TranslateError, DEFAULT_MAX_TOKENS, JSON_TOOL_NAME};

use crate::access::*;
use crate::chat_in::{self, base64_data_url, Role, ToolChoice as Choice, Turn};

/// The provider as error messages name it.
const TARGET: &str = "Anthropic models";

/// Image media types Anthropic accepts.
const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// The least room left for the answer beyond the thinking budget when a client's token cap is
/// raised to make room for thinking.
const MIN_ANSWER_TOKENS: u64 = 1024;

/// An OpenAI chat request translated for an Anthropic deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatToMessages {
    /// The Anthropic Messages request body.
    pub body: Vec<u8>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether the client asked for a final usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Whether the [`JSON_TOOL_NAME`] tool was added for `response_format`, so the response
    /// translator must turn its call back into message text.
    pub json_tool: bool,
}

/// An Anthropic Messages request translated for an OpenAI-type deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesToChat {
    /// The OpenAI chat completions request body.
    pub body: Vec<u8>,
    /// Whether the client asked for a stream.
    pub stream: bool,
}

/// Translates an OpenAI chat completions request into an Anthropic Messages request for the
/// upstream `model`.
///
/// `response_format` `json_schema` (or `json_object`, as the schema `{"type":"object"}`) is
/// expressed as a forced call of an extra tool named [`JSON_TOOL_NAME`] whose input schema is
/// the requested schema: a tool's input is the one place where Anthropic's API makes a model
/// produce JSON that follows a given schema on every model version, whereas an instruction in
/// the prompt is only a request. The response translator turns that call back into message
/// text ([`ChatToMessages::json_tool`]). When the client also offers tools, `tool_choice`
/// decides: with `auto` (or none) the model must call *some* tool (`any`), its own or the JSON
/// one; with `none` the JSON tool is forced; with `required` or a named function the answer is
/// a tool call anyway and no JSON tool is added.
///
/// `reasoning_effort` becomes `thinking` with a budget of 1024 (`minimal`, `low`), 4096
/// (`medium`), 16384 (`high`) or 32768 (`xhigh`) tokens; `none` turns nothing on. Anthropic
/// counts thinking within `max_tokens` and wants it above the budget, so the cap becomes the
/// budget plus [`DEFAULT_MAX_TOKENS`] when the client gave none, and is raised to leave at least
/// 1024 answer tokens when it gave one. With thinking, `temperature` is dropped and `top_p` kept
/// only within 0.95–1, the values Anthropic allows. Thinking is left off (the effort being a
/// hint) where Anthropic would refuse it: when tool use is forced, and when the conversation
/// ends inside an assistant turn (an assistant prefill, or tool results answering a call),
/// since that turn would have to start with a signed thinking block OpenAI clients cannot keep.
///
/// A final assistant message is sent as is, which Anthropic treats as a prefill to continue.
pub fn chat_to_messages(body: &[u8], model: &str) -> Result<ChatToMessages, TranslateError> {
    let mut req = parse_object(body)?;
    let extras = crate::extras::take(&mut req, "anthropic")?;
    reject_chat_options(&req)?;

    let (system, turns) = chat_conversation(&req)?;
    let ends_inside_assistant_turn = turns
        .last()
        .is_some_and(|t| t.role == Role::Assistant || t.blocks.iter().any(is_tool_result));

    let mut out = Obj::new();
    out.insert("model".into(), model.into());
    out.insert(
        "messages".into(),
        Value::Array(turns.into_iter().map(Turn::into_anthropic).collect()),
    );
    if !system.is_empty() {
        out.insert("system".into(), blocks_or_string(system));
    }

    // Tools, JSON output and the tool choice they settle between them.
    let mut tools = chat_tools(&req)?;
    let choice = chat_tool_choice(&req)?;
    let parallel = opt_bool(&req, "", "parallel_tool_calls")?;
    let json_tool = json_output_tool(&req)?;
    let (choice, json_tool) = match (json_tool, choice) {
        (None, choice) => (choice, false),
        (Some(_), Some(c @ (Choice::Required | Choice::Named(_)))) => (Some(c), false),
        (Some(tool), choice) => {
            if let Some(i) = tools.iter().position(|t| t["name"] == JSON_TOOL_NAME) {
                return Err(TranslateError::field(
                    format!("tools[{i}].function.name"),
                    format!(
                        "the tool name `{JSON_TOOL_NAME}` is reserved by the gateway for \
                         `response_format`"
                    ),
                ));
            }
            let choice = match choice {
                Some(Choice::Auto) | None if !tools.is_empty() => Choice::Required,
                _ => Choice::Named(JSON_TOOL_NAME.to_owned()),
            };
            tools.push(tool);
            (Some(choice), true)
        }
    };
    let forced = matches!(choice, Some(Choice::Required | Choice::Named(_)));
    if !tools.is_empty() {
        let disable_parallel = parallel == Some(false);
        let choice = match choice {
            None if disable_parallel => Some(Choice::Auto),
            c => c,
        };
        if let Some(c) = choice {
            out.insert("tool_choice".into(), c.anthropic(disable_parallel));
        }
        out.insert("tools".into(), Value::Array(tools));
    }

    // Token cap and thinking.
    let max_completion_tokens = opt_u64(&req, "", "max_completion_tokens")?;
    let max_tokens = opt_u64(&req, "", "max_tokens")?;
    let cap = max_completion_tokens.or(max_tokens);
    if cap == Some(0) {
        let key = if max_completion_tokens.is_some() {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        return Err(TranslateError::field(
            key,
            format!("`{key}` must be at least 1"),
        ));
    }
    let budget = thinking_budget(&req)?.filter(|_| !forced && !ends_inside_assistant_turn);
    let default_cap = u64::from(DEFAULT_MAX_TOKENS);
    let max_tokens = match (budget, cap) {
        (None, cap) => cap.unwrap_or(default_cap),
        (Some(b), None) => b.saturating_add(default_cap),
        (Some(b), Some(cap)) => cap.max(b.saturating_add(MIN_ANSWER_TOKENS)),
    };
    out.insert("max_tokens".into(), max_tokens.into());
    if let Some(b) = budget {
        out.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": b}),
        );
    }

    // Sampling.
    if let Some(t) = opt_number(&req, "", "temperature")? {
        if budget.is_none() {
            let t = if t.as_f64().is_some_and(|f| f > 1.0) {
                1.into()
            } else {
                t.clone()
            };
            out.insert("temperature".into(), Value::Number(t));
        }
    }
    if let Some(p) = opt_number(&req, "", "top_p")? {
        if budget.is_none() || p.as_f64().is_some_and(|f| f >= 0.95) {
            out.insert("top_p".into(), Value::Number(p.clone()));
        }
    }
    let stop = chat_stop(&req)?;
    if !stop.is_empty() {
        out.insert("stop_sequences".into(), stop.into());
    }

    let user = match opt_str(&req, "", "user")? {
        Some(u) => Some(u),
        None => opt_str(&req, "", "safety_identifier")?,
    };
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        out.insert("metadata".into(), json!({ "user_id": u }));
    }

    let stream = opt_bool(&req, "", "stream")? == Some(true);
    if stream {
        out.insert("stream".into(), true.into());
    }
    let include_usage = match opt_object(&req, "", "stream_options")? {
        Some(o) => opt_bool(o, "stream_options", "include_usage")? == Some(true),
        None => false,
    };

    let mut out = Value::Object(out);
    if let Some(patch) = extras {
        crate::extras::merge_patch(&mut out, &patch);
        // The gateway's own decisions stand: the deployment's model, and the framing the
        // reply translator expects.
        out["model"] = model.into();
        out["stream"] = stream.into();
    }
    Ok(ChatToMessages {
        body: to_bytes(&out)?,
        stream,
        include_usage,
        json_tool,
    })
}

/// Translates an Anthropic Messages request into an OpenAI chat completions request for the
/// upstream `model`. See the [module documentation](self) for what is kept, dropped and
/// rejected.
pub fn messages_to_chat(body: &[u8], model: &str) -> Result<MessagesToChat, TranslateError> {
    let mut req = parse_object(body)?;
    let extras = crate::extras::take(&mut req, "openai")?;
    for key in ["mcp_servers", "container"] {
        let present = match member(&req, key) {
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
            None => false,
        };
        if present {
            return Err(TranslateError::field(
                key,
                format!(
                    "`{key}` is an Anthropic server-side feature an OpenAI-type model cannot use"
                ),
            ));
        }
    }

    let mut messages = Vec::new();
    if let Some(system) = anthropic_system(&req)? {
        messages.push(json!({"role": "system", "content": system}));
    }
    let input = chat_in::messages(&req)?;
    let last = input.len() - 1;
    for (i, m) in input.iter().enumerate() {
        let p = format!("messages[{i}]");
        let m = as_object(m, &p)?;
        match req_str(m, &p, "role")? {
            "user" => anthropic_user(m, &p, &mut messages)?,
            "assistant" if i == last => {
                return Err(TranslateError::field(
                    p,
                    "a final assistant message (a prefill to continue) cannot be expressed for \
                     an OpenAI-type model",
                ));
            }
            "assistant" => messages.extend(anthropic_assistant(m, &p)?),
            other => {
                return Err(TranslateError::field(
                    format!("{p}.role"),
                    format!("unsupported role `{other}`; expected `user` or `assistant`"),
                ));
            }
        }
    }

    let mut out = Obj::new();
    out.insert("model".into(), model.into());
    out.insert("messages".into(), Value::Array(messages));

    if let Some(n) = opt_u64(&req, "", "max_tokens")? {
        out.insert("max_tokens".into(), n.into());
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = opt_number(&req, "", key)? {
            out.insert(key.into(), Value::Number(v.clone()));
        }
    }
    if let Some(stops) = opt_array(&req, "", "stop_sequences")? {
        let stops = stops
            .iter()
            .enumerate()
            .map(|(k, s)| {
                s.as_str()
                    .map(Value::from)
                    .ok_or_else(|| wrong_type(&format!("stop_sequences[{k}]"), "a string"))
            })
            .collect::<Res<Vec<_>>>()?;
        if !stops.is_empty() {
            out.insert("stop".into(), Value::Array(stops));
        }
    }
    if let Some(meta) = opt_object(&req, "", "metadata")? {
        if let Some(u) = opt_str(meta, "metadata", "user_id")? {
            out.insert("user".into(), u.into());
        }
    }

    let tools = match opt_array(&req, "", "tools")? {
        Some(ts) => ts
            .iter()
            .enumerate()
            .map(|(i, t)| anthropic_tool(t, &format!("tools[{i}]")))
            .collect::<Res<Vec<_>>>()?,
        None => Vec::new(),
    };
    let choice = anthropic_tool_choice(&req)?;
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some((choice, disable_parallel)) = choice {
            out.insert("tool_choice".into(), choice);
            if disable_parallel {
                out.insert("parallel_tool_calls".into(), false.into());
            }
        }
    }
    if let Some(format) = anthropic_output_format(&req)? {
        out.insert("response_format".into(), format);
    }

    let stream = opt_bool(&req, "", "stream")? == Some(true);
    if stream {
        out.insert("stream".into(), true.into());
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }

    let mut out = Value::Object(out);
    if let Some(patch) = extras {
        crate::extras::merge_patch(&mut out, &patch);
        out["model"] = model.into();
        out["stream"] = stream.into();
    }
    Ok(MessagesToChat {
        body: to_bytes(&out)?,
        stream,
    })
}

// ---------------------------------------------------------------------------------------------
// OpenAI → Anthropic
// ---------------------------------------------------------------------------------------------

impl Turn {
    fn into_anthropic(self) -> Value {
        json!({"role": self.role.as_str(), "content": blocks_or_string(self.blocks)})
    }
}

impl Choice {
    fn anthropic(&self, disable_parallel: bool) -> Value {
        let mut o = Obj::new();
        match self {
            Choice::Auto => o.insert("type".into(), "auto".into()),
            Choice::Disabled => o.insert("type".into(), "none".into()),
            Choice::Required => o.insert("type".into(), "any".into()),
            Choice::Named(name) => {
                o.insert("name".into(), name.as_str().into());
                o.insert("type".into(), "tool".into())
            }
        };
        if disable_parallel && *self != Choice::Disabled {
            o.insert("disable_parallel_tool_use".into(), true.into());
        }
        Value::Object(o)
    }
}

/// Refuses what no Anthropic models request can carry.
fn reject_chat_options(req: &Obj) -> Res<()> {
    chat_in::reject_several_choices(req, TARGET)?;
    chat_in::reject_openai_only(
        req,
        TARGET,
        "web search is not available through the chat API of Anthropic deployments",
    )
}

/// The system blocks and the alternating turns of an OpenAI conversation.
fn chat_conversation(req: &Obj) -> Res<(Vec<Value>, Vec<Turn>)> {
    let messages = chat_in::messages(req)?;
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let p = format!("messages[{i}]");
        let m = as_object(m, &p)?;
        let (role, blocks) = match req_str(m, &p, "role")? {
            "system" | "developer" => {
                system.extend(text_blocks(member(m, "content"), &join(&p, "content"))?);
                continue;
            }
            "user" => (Role::User, user_blocks(m, &p)?),
            "assistant" => (Role::Assistant, assistant_blocks(m, &p)?),
            "tool" => (Role::User, vec![tool_result_block(m, &p)?]),
            "function" => {
                return Err(TranslateError::field(
                    format!("{p}.role"),
                    "legacy `function` messages are not translated for Anthropic models; use \
                     `tool` messages",
                ));
            }
            other => {
                return Err(TranslateError::field(
                    format!("{p}.role"),
                    format!("unsupported role `{other}`"),
                ));
            }
        };
        chat_in::push_turn(&mut turns, role, blocks);
    }
    chat_in::finish_turns(&mut turns, is_tool_result)?;
    Ok((system, turns))
}

fn is_tool_result(block: &Value) -> bool {
    block["type"] == "tool_result"
}

/// One text block, or a plain string when that is all there is.
fn blocks_or_string(blocks: Vec<Value>) -> Value {
    if let [only] = blocks.as_slice() {
        if only["type"] == "text" {
            if let Some(text) = only["text"].as_str() {
                return text.into();
            }
        }
    }
    Value::Array(blocks)
}

fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({"type": "text", "text": text}))
}

/// Text-only content (system, developer and tool messages) as text blocks.
fn text_blocks(content: Option<&Value>, path: &str) -> Res<Vec<Value>> {
    Ok(chat_in::texts(content, path)?
        .into_iter()
        .filter_map(text_block)
        .collect())
}

fn user_blocks(m: &Obj, p: &str) -> Res<Vec<Value>> {
    let path = join(p, "content");
    let parts = match member(m, "content") {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(text_block(s).into_iter().collect()),
        Some(Value::Array(parts)) => parts,
        Some(_) => return Err(wrong_type(&path, "a string or an array of content parts")),
    };
    let mut blocks = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let pp = format!("{path}[{j}]");
        let (o, kind) = part_type(part, &pp)?;
        match kind {
            "text" => blocks.extend(text_block(req_str(o, &pp, "text")?)),
            "image_url" => blocks.push(image_block(o, &pp)?),
            "file" => blocks.push(document_block(o, &pp)?),
            "input_audio" => {
                return Err(TranslateError::field(
                    pp,
                    "Anthropic models do not accept audio input",
                ));
            }
            other => {
                return Err(unsupported_part(
                    &pp,
                    other,
                    "expected `text`, `image_url` or `file`",
                ));
            }
        }
    }
    Ok(blocks)
}

fn image_block(part: &Obj, pp: &str) -> Res<Value> {
    let (url, url_path) = chat_in::image_url(part, pp)?;
    if let Some(rest) = strip_prefix_ci(url, "data:") {
        let (mime, data) = base64_data_url(rest).ok_or_else(|| {
            TranslateError::field(
                &url_path,
                "an image data URL must have the form `data:<media type>;base64,<data>`",
            )
        })?;
        if !IMAGE_TYPES.contains(&mime.as_str()) {
            return Err(TranslateError::field(
                url_path,
                format!("Anthropic models accept JPEG, PNG, GIF and WebP images, not `{mime}`"),
            ));
        }
        return Ok(json!({
            "type": "image",
            "source": {"type": "base64", "media_type": mime, "data": data},
        }));
    }
    if strip_prefix_ci(url, "https://").is_some() || strip_prefix_ci(url, "http://").is_some() {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(TranslateError::field(
        url_path,
        "an image URL must be an http(s) URL or a base64 data URL",
    ))
}

fn document_block(part: &Obj, pp: &str) -> Res<Value> {
    let fp = join(pp, "file");
    let file = req_object(part, pp, "file")?;
    let Some(data_url) = opt_str(file, &fp, "file_data")? else {
        if member(file, "file_id").is_some() {
            return Err(TranslateError::field(
                join(&fp, "file_id"),
                "OpenAI file ids cannot be read by Anthropic models; send the file inline as \
                 `file_data`",
            ));
        }
        return Err(missing(&join(&fp, "file_data")));
    };
    let pdf = strip_prefix_ci(data_url, "data:")
        .and_then(base64_data_url)
        .filter(|(mime, _)| mime == "application/pdf");
    let Some((_, data)) = pdf else {
        return Err(TranslateError::field(
            join(&fp, "file_data"),
            "only PDF files, as `data:application/pdf;base64,<data>`, can be sent to Anthropic \
             models",
        ));
    };
    let mut doc = Obj::new();
    doc.insert("type".into(), "document".into());
    doc.insert(
        "source".into(),
        json!({"type": "base64", "media_type": "application/pdf", "data": data}),
    );
    if let Some(name) = opt_str(file, &fp, "filename")? {
        doc.insert("title".into(), name.into());
    }
    Ok(Value::Object(doc))
}

fn assistant_blocks(m: &Obj, p: &str) -> Res<Vec<Value>> {
    let a = chat_in::assistant(m, p, TARGET)?;
    let mut blocks: Vec<Value> = a.texts.into_iter().filter_map(text_block).collect();
    blocks.extend(
        a.calls
            .into_iter()
            .map(|c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.input})),
    );
    Ok(blocks)
}

fn tool_result_block(m: &Obj, p: &str) -> Res<Value> {
    let mut block = Obj::new();
    block.insert("type".into(), "tool_result".into());
    block.insert("tool_use_id".into(), req_str(m, p, "tool_call_id")?.into());
    match member(m, "content") {
        Some(Value::String(s)) => {
            block.insert("content".into(), s.as_str().into());
        }
        content => {
            let blocks = text_blocks(content, &join(p, "content"))?;
            if !blocks.is_empty() {
                block.insert("content".into(), Value::Array(blocks));
            }
        }
    }
    Ok(Value::Object(block))
}

/// Anthropic tool definitions for the client's function tools.
fn chat_tools(req: &Obj) -> Res<Vec<Value>> {
    let Some(tools) = opt_array(req, "", "tools")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let tp = format!("tools[{i}]");
        let t = as_object(t, &tp)?;
        let kind = opt_str(t, &tp, "type")?.unwrap_or("function");
        if kind != "function" {
            return Err(TranslateError::field(
                join(&tp, "type"),
                format!("only function tools can be sent to Anthropic models, not `{kind}`"),
            ));
        }
        let fp = join(&tp, "function");
        let f = req_object(t, &tp, "function")?;
        let mut tool = Obj::new();
        tool.insert("name".into(), req_str(f, &fp, "name")?.into());
        if let Some(d) = opt_str(f, &fp, "description")? {
            tool.insert("description".into(), d.into());
        }
        let schema = match opt_object(f, &fp, "parameters")? {
            Some(s) => Value::Object(s.clone()),
            None => json!({"type": "object", "properties": {}}),
        };
        tool.insert("input_schema".into(), schema);
        out.push(Value::Object(tool));
    }
    Ok(out)
}

fn chat_tool_choice(req: &Obj) -> Res<Option<Choice>> {
    chat_in::tool_choice(req, TARGET)
}

/// The tool that carries `response_format`'s JSON output, if one is asked for.
fn json_output_tool(req: &Obj) -> Res<Option<Value>> {
    Ok(chat_in::json_output(req)?.map(|(schema, description)| {
        json!({
            "name": JSON_TOOL_NAME,
            "description": description,
            "input_schema": schema,
        })
    }))
}

fn thinking_budget(req: &Obj) -> Res<Option<u64>> {
    Ok(match opt_str(req, "", "reasoning_effort")? {
        None | Some("none") => None,
        Some("minimal" | "low") => Some(1024),
        Some("medium") => Some(4096),
        Some("high") => Some(16384),
        Some("xhigh") => Some(32768),
        Some(other) => {
            return Err(TranslateError::field(
                "reasoning_effort",
                format!("unsupported `reasoning_effort` `{other}`"),
            ));
        }
    })
}

fn chat_stop(req: &Obj) -> Res<Vec<Value>> {
    match member(req, "stop") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.as_str().into()]),
        Some(Value::Array(stops)) => stops
            .iter()
            .enumerate()
            .map(|(k, s)| match s {
                Value::String(s) => Ok(s.as_str().into()),
                _ => Err(wrong_type(&format!("stop[{k}]"), "a string")),
            })
            .collect(),
        Some(_) => Err(wrong_type("stop", "a string or an array of strings")),
    }
}

// ---------------------------------------------------------------------------------------------
// Anthropic → OpenAI
// ---------------------------------------------------------------------------------------------

/// The content of the leading system message, if `system` has any.
fn anthropic_system(req: &Obj) -> Res<Option<Value>> {
    match member(req, "system") {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str().into())),
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::new();
            for (j, b) in blocks.iter().enumerate() {
                let bp = format!("system[{j}]");
                let (o, kind) = part_type(b, &bp)?;
                if kind != "text" {
                    return Err(unsupported_part(&bp, kind, "system blocks must be text"));
                }
                parts.push(json!({"type": "text", "text": req_str(o, &bp, "text")?}));
            }
            Ok((!parts.is_empty()).then_some(Value::Array(parts)))
        }
        Some(_) => Err(wrong_type("system", "a string or an array of text blocks")),
    }
}

/// Appends the OpenAI messages for one Anthropic user message: a `tool` message per tool
/// result, then a `user` message with the rest.
fn anthropic_user(m: &Obj, p: &str, out: &mut Vec<Value>) -> Res<()> {
    let path = join(p, "content");
    let blocks = match member(m, "content") {
        Some(Value::String(s)) => {
            out.push(json!({"role": "user", "content": s}));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        Some(_) => return Err(wrong_type(&path, "a string or an array of content blocks")),
        None => return Err(missing(&path)),
    };
    let mut parts = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bp = format!("{path}[{j}]");
        let (o, kind) = part_type(b, &bp)?;
        match kind {
            "text" => parts.push(json!({"type": "text", "text": req_str(o, &bp, "text")?})),
            "image" => parts.push(image_part(o, &bp)?),
            "document" => parts.push(file_part(o, &bp)?),
            "tool_result" => out.push(tool_message(o, &bp)?),
            other => {
                return Err(unsupported_part(
                    &bp,
                    other,
                    "an OpenAI-type model takes `text`, `image`, PDF `document` and \
                     `tool_result` blocks from the user",
                ));
            }
        }
    }
    if let [only] = parts.as_slice() {
        if only["type"] == "text" {
            out.push(json!({"role": "user", "content": only["text"]}));
            return Ok(());
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

fn image_part(block: &Obj, bp: &str) -> Res<Value> {
    let sp = join(bp, "source");
    let source = req_object(block, bp, "source")?;
    let url = match req_str(source, &sp, "type")? {
        "base64" => {
            let mime = req_str(source, &sp, "media_type")?;
            let data = req_str(source, &sp, "data")?;
            format!("data:{mime};base64,{data}")
        }
        "url" => req_str(source, &sp, "url")?.to_owned(),
        other => {
            return Err(TranslateError::field(
                join(&sp, "type"),
                format!("image sources of type `{other}` cannot be sent to an OpenAI-type model"),
            ));
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn file_part(block: &Obj, bp: &str) -> Res<Value> {
    let sp = join(bp, "source");
    let source = req_object(block, bp, "source")?;
    let is_pdf = opt_str(source, &sp, "type")? == Some("base64")
        && opt_str(source, &sp, "media_type")? == Some("application/pdf");
    if !is_pdf {
        return Err(TranslateError::field(
            sp,
            "only base64 PDF documents can be sent to an OpenAI-type model",
        ));
    }
    let data = req_str(source, &sp, "data")?;
    let filename = opt_str(block, bp, "title")?.unwrap_or("document.pdf");
    Ok(json!({
        "type": "file",
        "file": {
            "filename": filename,
            "file_data": format!("data:application/pdf;base64,{data}"),
        },
    }))
}

fn tool_message(block: &Obj, bp: &str) -> Res<Value> {
    let id = req_str(block, bp, "tool_use_id")?;
    let cp = join(bp, "content");
    let mut text = match member(block, "content") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => {
            let mut texts = Vec::with_capacity(items.len());
            for (k, item) in items.iter().enumerate() {
                let ip = format!("{cp}[{k}]");
                let (o, kind) = part_type(item, &ip)?;
                if kind != "text" {
                    return Err(unsupported_part(
                        &ip,
                        kind,
                        "tool results sent to an OpenAI-type model can hold only text",
                    ));
                }
                texts.push(req_str(o, &ip, "text")?);
            }
            texts.join("\n")
        }
        Some(_) => return Err(wrong_type(&cp, "a string or an array of content blocks")),
    };
    if opt_bool(block, bp, "is_error")? == Some(true) {
        text = if text.is_empty() {
            "Error".to_owned()
        } else {
            format!("Error: {text}")
        };
    }
    Ok(json!({"role": "tool", "tool_call_id": id, "content": text}))
}

/// The OpenAI message for an Anthropic assistant message; `None` when nothing is left of it
/// (only thinking blocks).
fn anthropic_assistant(m: &Obj, p: &str) -> Res<Option<Value>> {
    let path = join(p, "content");
    let blocks = match member(m, "content") {
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => return Ok(Some(json!({"role": "assistant", "content": s}))),
        Some(Value::Array(blocks)) => blocks,
        Some(_) => return Err(wrong_type(&path, "a string or an array of content blocks")),
        None => return Err(missing(&path)),
    };
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bp = format!("{path}[{j}]");
        let (o, kind) = part_type(b, &bp)?;
        match kind {
            "text" => text.push_str(req_str(o, &bp, "text")?),
            "tool_use" => {
                let id = req_str(o, &bp, "id")?;
                let name = req_str(o, &bp, "name")?;
                let arguments = match member(o, "input") {
                    Some(input) => to_string(input)?,
                    None => "{}".to_owned(),
                };
                calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }));
            }
            "thinking" | "redacted_thinking" => {}
            other => {
                return Err(unsupported_part(
                    &bp,
                    other,
                    "an OpenAI-type model takes `text` and `tool_use` blocks from the assistant",
                ));
            }
        }
    }
    if text.is_empty() && calls.is_empty() {
        return Ok(None);
    }
    let mut msg = Obj::new();
    msg.insert("role".into(), "assistant".into());
    msg.insert(
        "content".into(),
        if text.is_empty() {
            Value::Null
        } else {
            text.into()
        },
    );
    if !calls.is_empty() {
        msg.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(Some(Value::Object(msg)))
}

fn anthropic_tool(t: &Value, tp: &str) -> Res<Value> {
    let t = as_object(t, tp)?;
    if let Some(kind) = opt_str(t, tp, "type")? {
        if kind != "custom" {
            return Err(TranslateError::field(
                join(tp, "type"),
                format!("the Anthropic server tool `{kind}` cannot run on an OpenAI-type model"),
            ));
        }
    }
    let mut function = Obj::new();
    function.insert("name".into(), req_str(t, tp, "name")?.into());
    if let Some(d) = opt_str(t, tp, "description")? {
        function.insert("description".into(), d.into());
    }
    let parameters = match opt_object(t, tp, "input_schema")? {
        Some(s) => Value::Object(s.clone()),
        None => json!({"type": "object", "properties": {}}),
    };
    function.insert("parameters".into(), parameters);
    Ok(json!({"type": "function", "function": function}))
}

/// OpenAI's `tool_choice` and whether parallel calls are disabled.
fn anthropic_tool_choice(req: &Obj) -> Res<Option<(Value, bool)>> {
    let Some(c) = opt_object(req, "", "tool_choice")? else {
        return Ok(None);
    };
    let choice = match req_str(c, "tool_choice", "type")? {
        "auto" => "auto".into(),
        "any" => "required".into(),
        "none" => "none".into(),
        "tool" => {
            let name = req_str(c, "tool_choice", "name")?;
            json!({"type": "function", "function": {"name": name}})
        }
        other => {
            return Err(TranslateError::field(
                "tool_choice.type",
                format!("unsupported `tool_choice` type `{other}`"),
            ));
        }
    };
    let disable_parallel = opt_bool(c, "tool_choice", "disable_parallel_tool_use")? == Some(true);
    Ok(Some((choice, disable_parallel)))
}

/// OpenAI's `response_format` for Anthropic's structured output format, if one is given.
fn anthropic_output_format(req: &Obj) -> Res<Option<Value>> {
    let (format, fp) = match opt_object(req, "", "output_config")? {
        Some(config) => match opt_object(config, "output_config", "format")? {
            Some(f) => (f, "output_config.format"),
            None => return Ok(None),
        },
        None => match opt_object(req, "", "output_format")? {
            Some(f) => (f, "output_format"),
            None => return Ok(None),
        },
    };
    match req_str(format, fp, "type")? {
        "json_schema" => {
            let schema = req_object(format, fp, "schema")?;
            Ok(Some(json!({
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": schema},
            })))
        }
        other => Err(TranslateError::field(
            join(fp, "type"),
            format!("unsupported output format type `{other}`"),
        )),
    }
}

#[cfg(test)]
mod tests;
