//! OpenAI chat completions request → Bedrock Converse request.
//!
//! [`chat_to_converse`] is a pure function of the client's bytes. The model is not part of a
//! Converse body (it is in the URL), and neither is streaming (ConverseStream is its own URL):
//! both are the adapter's business, and [`ChatToConverse::stream`] tells it which to call.
//!
//! Translated:
//! - `system` and `developer` messages, wherever they appear, become the top-level `system`
//!   text blocks, in order (Converse has no mid-conversation system turns).
//! - `user`/`assistant` messages keep their order; consecutive messages of one role (after
//!   `tool` messages have become user turns) are merged, since Converse wants alternating
//!   roles, and in a merged user turn the `toolResult` blocks come first. Empty text is
//!   skipped and a turn left with nothing is dropped.
//! - Content parts: `text`; `image_url` with a `data:<mime>;base64,` URL (PNG, JPEG, GIF,
//!   WebP) as an `image` block with `format` and `source.bytes` (its `detail` is dropped);
//!   `file` with a PDF `file_data` data URL as a `document` block named after the `filename`
//!   (reduced to the characters Bedrock allows in a name). Assistant `refusal` parts and the
//!   `refusal` field become text.
//! - `tool_calls` become `toolUse` blocks after the text (ids kept as `toolUseId`, `arguments`
//!   parsed; empty arguments read as `{}`); `tool` messages become `toolResult` blocks.
//! - `inferenceConfig`: `maxTokens` from `max_completion_tokens` (or else `max_tokens`; none
//!   lets the model's default stand), `temperature`, `topP` from `top_p`, `stopSequences` from
//!   `stop`.
//! - Function `tools` as `toolConfig.tools[].toolSpec` (`inputSchema.json` is the
//!   `parameters` schema) and `tool_choice`: `auto` → `{"auto":{}}`, `required` →
//!   `{"any":{}}`, a named function → `{"tool":{"name"}}`. `none` has no Converse equivalent:
//!   the tools are left out, which keeps the model from calling them; when the conversation
//!   already holds tool calls Converse needs the tools declared, so `none` is then rejected.
//! - `response_format` `json_schema` (or `json_object`): a forced tool, as for Anthropic (see
//!   [`chat_to_converse`]).
//! - `provider_options.bedrock` is merged into the result as a JSON merge patch, for
//!   Converse fields OpenAI has no word for: `additionalModelRequestFields` (e.g. Claude's
//!   `thinking` or `top_k`), `additionalModelResponseFieldPaths`, `guardrailConfig`,
//!   `performanceConfig`, `promptVariables`, `requestMetadata`, or a `cachePoint`.
//!
//! Dropped, being hints Converse has no equivalent for: `seed`, `presence_penalty`,
//! `frequency_penalty`, `logit_bias`, `service_tier`, `store`, `metadata`, `user`,
//! `safety_identifier`, `prompt_cache_key`, `reasoning_effort` (model-specific on Bedrock:
//! use `provider_options.bedrock.additionalModelRequestFields`), `parallel_tool_calls`,
//! `verbosity`, `prediction`, `stream_options` (its `include_usage` is returned to the
//! caller), message `name`s, image `detail`, tool `strict`, and any field this module does not
//! know.
//!
//! Rejected: `n` > 1, `logprobs: true`, `top_logprobs`, audio (`modalities` with `audio`,
//! `audio`, `input_audio` parts, assistant `audio`), `web_search_options`, image URLs that are
//! not `data:` URLs (Bedrock cannot fetch them), OpenAI file ids and non-PDF files, non-function
//! tools and tool calls, `tool_choice` `allowed_tools`/`custom`, and the legacy
//! `functions`/`function_call`/`function` role.

use serde_json::{json, Value};

use super::image_format;
use crate::access::*;
use crate::chat_in::{self, base64_data_url, Role, ToolChoice as Choice, Turn};

/// The provider as error messages name it.
const TARGET: &str = "Bedrock's Converse API";
use crate::anthropic::{TranslateError, JSON_TOOL_NAME};

/// An OpenAI chat request translated for a Bedrock deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatToConverse {
    /// The Converse (or ConverseStream) request body.
    pub body: Vec<u8>,
    /// Whether the client asked for a stream, i.e. whether to call ConverseStream.
    pub stream: bool,
    /// Whether the client asked for a final usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Whether the [`JSON_TOOL_NAME`] tool was added for `response_format`, so the response
    /// translator must turn its call back into message text.
    pub json_tool: bool,
}

/// Translates an OpenAI chat completions request into a Converse request. See the
/// [module documentation](self) for what is kept, dropped and rejected.
///
/// `response_format` `json_schema` (or `json_object`, as the schema `{"type":"object"}`) is
/// expressed as a forced call of an extra tool named [`JSON_TOOL_NAME`] whose input schema is
/// the requested schema, because a tool's input is the one place where Converse makes every
/// tool-capable model produce JSON that follows a given schema. The response translators turn
/// that call back into message text ([`ChatToConverse::json_tool`]). When the client also
/// offers tools, `tool_choice` decides as for Anthropic: with `auto` (or none) the model must
/// call *some* tool (`any`), its own or the JSON one; with `none` the JSON tool is forced; with
/// `required` or a named function the answer is a tool call anyway and no JSON tool is added.
pub fn chat_to_converse(body: &[u8]) -> Result<ChatToConverse, TranslateError> {
    let mut req = parse_object(body)?;
    let extras = crate::extras::take(&mut req, "bedrock")?;
    reject_chat_options(&req)?;

    let (system, turns) = conversation(&req)?;
    let has_tool_blocks = turns
        .iter()
        .any(|t| t.blocks.iter().any(|b| is_tool_use(b) || is_tool_result(b)));

    let mut out = Obj::new();
    out.insert(
        "messages".into(),
        Value::Array(turns.into_iter().map(Turn::into_converse).collect()),
    );
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }

    let inference = inference_config(&req)?;
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }

    // Tools, JSON output and the tool choice they settle between them.
    let mut tools = chat_tools(&req)?;
    let choice = chat_tool_choice(&req)?;
    let json_tool = json_output_tool(&req)?;
    let (choice, json_tool) = match (json_tool, choice) {
        (None, choice) => (choice, false),
        (Some(_), Some(c @ (Choice::Required | Choice::Named(_)))) => (Some(c), false),
        (Some(tool), choice) => {
            if let Some(i) = tools
                .iter()
                .position(|t| t["toolSpec"]["name"] == JSON_TOOL_NAME)
            {
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
    if choice == Some(Choice::Disabled) && !tools.is_empty() {
        if has_tool_blocks {
            return Err(TranslateError::field(
                "tool_choice",
                "Bedrock's Converse API has no `none` tool choice, and a conversation that \
                 already holds tool calls must declare its tools; use `auto` or leave the \
                 tool calls out",
            ));
        }
        // Undeclared tools cannot be called: that is what `none` asks for.
        tools.clear();
    }
    if !tools.is_empty() {
        let mut config = Obj::new();
        config.insert("tools".into(), Value::Array(tools));
        if let Some(c) = choice.as_ref().and_then(Choice::converse) {
            config.insert("toolChoice".into(), c);
        }
        out.insert("toolConfig".into(), Value::Object(config));
    }

    let stream = opt_bool(&req, "", "stream")? == Some(true);
    let include_usage = match opt_object(&req, "", "stream_options")? {
        Some(o) => opt_bool(o, "stream_options", "include_usage")? == Some(true),
        None => false,
    };

    let mut out = Value::Object(out);
    if let Some(patch) = extras {
        crate::extras::merge_patch(&mut out, &patch);
    }
    Ok(ChatToConverse {
        body: to_bytes(&out)?,
        stream,
        include_usage,
        json_tool,
    })
}

impl Turn {
    fn into_converse(self) -> Value {
        json!({"role": self.role.as_str(), "content": self.blocks})
    }
}

impl Choice {
    fn converse(&self) -> Option<Value> {
        match self {
            Choice::Auto => Some(json!({"auto": {}})),
            Choice::Required => Some(json!({"any": {}})),
            Choice::Named(name) => Some(json!({"tool": {"name": name}})),
            Choice::Disabled => None,
        }
    }
}

fn is_tool_use(block: &Value) -> bool {
    block.get("toolUse").is_some()
}

fn is_tool_result(block: &Value) -> bool {
    block.get("toolResult").is_some()
}

/// Refuses what no Bedrock's Converse API request can carry.
fn reject_chat_options(req: &Obj) -> Res<()> {
    chat_in::reject_several_choices(req, TARGET)?;
    chat_in::reject_openai_only(
        req,
        TARGET,
        "web search is not available through Bedrock's Converse API",
    )
}

/// The system blocks and the alternating turns of an OpenAI conversation.
fn conversation(req: &Obj) -> Res<(Vec<Value>, Vec<Turn>)> {
    let messages = chat_in::messages(req)?;
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    let mut documents = 0usize;
    for (i, m) in messages.iter().enumerate() {
        let p = format!("messages[{i}]");
        let m = as_object(m, &p)?;
        let (role, blocks) = match req_str(m, &p, "role")? {
            "system" | "developer" => {
                system.extend(text_blocks(member(m, "content"), &join(&p, "content"))?);
                continue;
            }
            "user" => (Role::User, user_blocks(m, &p, &mut documents)?),
            "assistant" => (Role::Assistant, assistant_blocks(m, &p)?),
            "tool" => (Role::User, vec![tool_result_block(m, &p)?]),
            "function" => {
                return Err(TranslateError::field(
                    format!("{p}.role"),
                    "legacy `function` messages are not translated for Bedrock; use `tool` \
                     messages",
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

fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "text": text }))
}

/// Text-only content (system, developer and tool messages) as text blocks.
fn text_blocks(content: Option<&Value>, path: &str) -> Res<Vec<Value>> {
    Ok(chat_in::texts(content, path)?
        .into_iter()
        .filter_map(text_block)
        .collect())
}

fn user_blocks(m: &Obj, p: &str, documents: &mut usize) -> Res<Vec<Value>> {
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
            "file" => {
                *documents += 1;
                blocks.push(document_block(o, &pp, *documents)?);
            }
            "input_audio" => {
                return Err(TranslateError::field(
                    pp,
                    "Bedrock's Converse API does not accept audio input",
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
    let Some(rest) = strip_prefix_ci(url, "data:") else {
        return Err(TranslateError::field(
            url_path,
            "Bedrock cannot fetch images from URLs; send the image inline as a \
             `data:<media type>;base64,<data>` URL",
        ));
    };
    let (mime, data) = base64_data_url(rest).ok_or_else(|| {
        TranslateError::field(
            &url_path,
            "an image data URL must have the form `data:<media type>;base64,<data>`",
        )
    })?;
    let format = image_format(&mime).ok_or_else(|| {
        TranslateError::field(
            &url_path,
            format!("Bedrock accepts PNG, JPEG, GIF and WebP images, not `{mime}`"),
        )
    })?;
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

fn document_block(part: &Obj, pp: &str, number: usize) -> Res<Value> {
    let fp = join(pp, "file");
    let file = req_object(part, pp, "file")?;
    let Some(data_url) = opt_str(file, &fp, "file_data")? else {
        if member(file, "file_id").is_some() {
            return Err(TranslateError::field(
                join(&fp, "file_id"),
                "OpenAI file ids cannot be read by Bedrock; send the file inline as `file_data`",
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
            "only PDF files, as `data:application/pdf;base64,<data>`, can be sent to Bedrock",
        ));
    };
    let name = opt_str(file, &fp, "filename")?
        .map(document_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("document {number}"));
    Ok(json!({"document": {"format": "pdf", "name": name, "source": {"bytes": data}}}))
}

/// A document name Bedrock accepts: letters, digits, single spaces, hyphens, parentheses
/// and square brackets. The `.pdf` extension is dropped and every other character becomes a
/// hyphen.
fn document_name(filename: &str) -> String {
    let stem = match filename.len().checked_sub(4) {
        Some(cut)
            if filename
                .get(cut..)
                .is_some_and(|e| e.eq_ignore_ascii_case(".pdf")) =>
        {
            filename.get(..cut).unwrap_or(filename)
        }
        _ => filename,
    };
    let mut out = String::with_capacity(stem.len());
    for c in stem.chars() {
        let c = if c.is_alphanumeric() || "-()[]".contains(c) {
            c
        } else if c.is_whitespace() {
            ' '
        } else {
            '-'
        };
        if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
    }
    out.trim_end().chars().take(200).collect()
}

fn assistant_blocks(m: &Obj, p: &str) -> Res<Vec<Value>> {
    let a = chat_in::assistant(m, p, TARGET)?;
    let mut blocks: Vec<Value> = a.texts.into_iter().filter_map(text_block).collect();
    blocks.extend(
        a.calls
            .into_iter()
            .map(|c| json!({"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.input}})),
    );
    Ok(blocks)
}

fn tool_result_block(m: &Obj, p: &str) -> Res<Value> {
    let id = req_str(m, p, "tool_call_id")?;
    let content = text_blocks(member(m, "content"), &join(p, "content"))?;
    Ok(json!({"toolResult": {"toolUseId": id, "content": content}}))
}

/// `inferenceConfig`: the token cap, sampling and stop sequences.
fn inference_config(req: &Obj) -> Res<Obj> {
    let mut out = Obj::new();
    let max_completion_tokens = opt_u64(req, "", "max_completion_tokens")?;
    let max_tokens = opt_u64(req, "", "max_tokens")?;
    if let Some(cap) = max_completion_tokens.or(max_tokens) {
        let key = if max_completion_tokens.is_some() {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        if cap == 0 {
            return Err(TranslateError::field(
                key,
                format!("`{key}` must be at least 1"),
            ));
        }
        out.insert("maxTokens".into(), cap.into());
    }
    if let Some(t) = opt_number(req, "", "temperature")? {
        out.insert("temperature".into(), Value::Number(t.clone()));
    }
    if let Some(p) = opt_number(req, "", "top_p")? {
        out.insert("topP".into(), Value::Number(p.clone()));
    }
    let stop = match member(req, "stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![Value::from(s.as_str())],
        Some(Value::Array(stops)) => stops
            .iter()
            .enumerate()
            .map(|(k, s)| match s {
                Value::String(s) => Ok(Value::from(s.as_str())),
                _ => Err(wrong_type(&format!("stop[{k}]"), "a string")),
            })
            .collect::<Res<Vec<_>>>()?,
        Some(_) => return Err(wrong_type("stop", "a string or an array of strings")),
    };
    if !stop.is_empty() {
        out.insert("stopSequences".into(), Value::Array(stop));
    }
    Ok(out)
}

/// Converse tool definitions for the client's function tools.
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
                format!("only function tools can be sent to Bedrock, not `{kind}`"),
            ));
        }
        let fp = join(&tp, "function");
        let f = req_object(t, &tp, "function")?;
        let mut spec = Obj::new();
        spec.insert("name".into(), req_str(f, &fp, "name")?.into());
        if let Some(d) = opt_str(f, &fp, "description")?.filter(|d| !d.is_empty()) {
            spec.insert("description".into(), d.into());
        }
        let schema = match opt_object(f, &fp, "parameters")? {
            Some(s) => Value::Object(s.clone()),
            None => json!({"type": "object", "properties": {}}),
        };
        spec.insert("inputSchema".into(), json!({ "json": schema }));
        out.push(json!({ "toolSpec": spec }));
    }
    Ok(out)
}

fn chat_tool_choice(req: &Obj) -> Res<Option<Choice>> {
    chat_in::tool_choice(req, TARGET)
}

/// The tool that carries `response_format`'s JSON output, if one is asked for.
fn json_output_tool(req: &Obj) -> Res<Option<Value>> {
    Ok(chat_in::json_output(req)?.map(|(schema, description)| {
        json!({"toolSpec": {
            "name": JSON_TOOL_NAME,
            "description": description,
            "inputSchema": {"json": schema},
        }})
    }))
}

#[cfg(test)]
mod tests;
