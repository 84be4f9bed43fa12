//! Reading the provider-neutral parts of an OpenAI chat request: text-only content, assistant
//! turns (text and tool calls), tool calls and data URLs.
//!
//! Every translator needs these with the same checks and the same error paths; each then writes
//! what it read in its provider's block shape. `target` names the provider in error messages
//! ("Anthropic models", "Gemini models", "Bedrock's Converse API").

use serde_json::Value;

use crate::access::*;
use crate::anthropic::TranslateError;

/// The request's `messages`, which must not be empty.
pub(crate) fn messages(req: &Obj) -> Res<&Vec<Value>> {
    let messages = req_array(req, "", "messages")?;
    if messages.is_empty() {
        return Err(TranslateError::field(
            "messages",
            "`messages` must contain at least one message",
        ));
    }
    Ok(messages)
}

/// Text-only content (system, developer and tool messages): a string or `text` parts. Empty
/// texts are left out.
pub(crate) fn texts<'a>(content: Option<&'a Value>, path: &str) -> Res<Vec<&'a str>> {
    match content {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok([s.as_str()].into_iter().filter(|t| !t.is_empty()).collect()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let pp = format!("{path}[{j}]");
                let (o, kind) = part_type(part, &pp)?;
                if kind != "text" {
                    return Err(unsupported_part(
                        &pp,
                        kind,
                        "only text parts are allowed here",
                    ));
                }
                out.extend(Some(req_str(o, &pp, "text")?).filter(|t| !t.is_empty()));
            }
            Ok(out)
        }
        Some(_) => Err(wrong_type(path, "a string or an array of content parts")),
    }
}

/// An assistant turn as read: its non-empty texts (a `refusal` stands in when there is no
/// other text) and its tool calls.
pub(crate) struct Assistant<'a> {
    pub(crate) texts: Vec<&'a str>,
    pub(crate) calls: Vec<Call<'a>>,
}

/// One tool call of an assistant turn.
pub(crate) struct Call<'a> {
    /// The call id.
    pub(crate) id: &'a str,
    /// The function name.
    pub(crate) name: &'a str,
    /// The arguments, parsed (an object; empty when the client sent none).
    pub(crate) input: Value,
    /// The call's own object, for provider extensions (e.g. Gemini's thought signatures).
    pub(crate) raw: &'a Obj,
}

/// Reads assistant message `m` at path `p`.
pub(crate) fn assistant<'a>(m: &'a Obj, p: &str, target: &str) -> Res<Assistant<'a>> {
    if member(m, "function_call").is_some() {
        return Err(TranslateError::field(
            join(p, "function_call"),
            format!("legacy `function_call` is not translated for {target}; use `tool_calls`"),
        ));
    }
    if member(m, "audio").is_some() {
        return Err(TranslateError::field(
            join(p, "audio"),
            format!("{target} cannot take earlier audio responses"),
        ));
    }
    let path = join(p, "content");
    let mut texts = Vec::new();
    match member(m, "content") {
        None => {}
        Some(Value::String(s)) => texts.push(s.as_str()),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let pp = format!("{path}[{j}]");
                let (o, kind) = part_type(part, &pp)?;
                let text = match kind {
                    "text" => req_str(o, &pp, "text")?,
                    "refusal" => req_str(o, &pp, "refusal")?,
                    other => {
                        return Err(unsupported_part(&pp, other, "expected `text` or `refusal`"));
                    }
                };
                texts.push(text);
            }
        }
        Some(_) => {
            return Err(wrong_type(
                &path,
                "a string, an array of content parts, or null",
            ))
        }
    }
    texts.retain(|t| !t.is_empty());
    if texts.is_empty() {
        texts.extend(opt_str(m, p, "refusal")?.filter(|t| !t.is_empty()));
    }
    let mut calls = Vec::new();
    if let Some(list) = opt_array(m, p, "tool_calls")? {
        for (j, call) in list.iter().enumerate() {
            calls.push(tool_call(call, &format!("{p}.tool_calls[{j}]"), target)?);
        }
    }
    Ok(Assistant { texts, calls })
}

/// Reads one entry of an assistant's `tool_calls`.
pub(crate) fn tool_call<'a>(call: &'a Value, path: &str, target: &str) -> Res<Call<'a>> {
    let c = as_object(call, path)?;
    if let Some(kind) = opt_str(c, path, "type")? {
        if kind != "function" {
            return Err(TranslateError::field(
                join(path, "type"),
                format!("only function tool calls can be sent to {target}, not `{kind}`"),
            ));
        }
    }
    let id = req_str(c, path, "id")?;
    let fp = join(path, "function");
    let f = req_object(c, path, "function")?;
    let name = req_str(f, &fp, "name")?;
    let arguments = opt_str(f, &fp, "arguments")?.unwrap_or_default();
    let input = if arguments.trim().is_empty() {
        Value::Object(Obj::new())
    } else {
        match serde_json::from_str::<Value>(arguments) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return Err(TranslateError::field(
                    join(&fp, "arguments"),
                    "`arguments` must be a JSON object encoded as a string",
                ));
            }
        }
    };
    Ok(Call {
        id,
        name,
        input,
        raw: c,
    })
}

/// The URL of an `image_url` content part at `pp` (an object with `url`, or the URL as a
/// string), and the path to report problems with it under.
pub(crate) fn image_url<'a>(part: &'a Obj, pp: &str) -> Res<(&'a str, String)> {
    let ip = join(pp, "image_url");
    match member(part, "image_url") {
        Some(Value::Object(o)) => Ok((req_str(o, &ip, "url")?, join(&ip, "url"))),
        Some(Value::String(s)) => Ok((s.as_str(), ip)),
        Some(_) => Err(wrong_type(&ip, "an object with a `url`")),
        None => Err(missing(&ip)),
    }
}

/// Splits the part of a data URL after `data:` into its lower-cased media type and base64
/// payload; `None` unless it is base64-encoded.
pub(crate) fn base64_data_url(rest: &str) -> Option<(String, &str)> {
    let (header, data) = rest.split_once(',')?;
    let mut params = header.split(';');
    let mime = params.next()?.trim();
    if mime.is_empty() || !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return None;
    }
    Some((mime.to_ascii_lowercase(), data))
}

/// Refuses OpenAI options no translated target can honour: log probabilities, audio output and
/// the legacy `functions` / `function_call`; and `web_search_options`, whose message is the
/// target's own (`web_search`: where to ask for search instead, if anywhere).
pub(crate) fn reject_openai_only(req: &Obj, target: &str, web_search: &str) -> Res<()> {
    let logprobs = opt_bool(req, "", "logprobs")? == Some(true);
    let top_logprobs = member(req, "top_logprobs").is_some_and(|v| v.as_u64() != Some(0));
    for (key, set) in [("logprobs", logprobs), ("top_logprobs", top_logprobs)] {
        if set {
            return Err(TranslateError::field(
                key,
                format!("log probabilities are not available from {target}"),
            ));
        }
    }
    let audio_modality = match opt_array(req, "", "modalities")? {
        Some(m) => m.iter().any(|m| m == "audio"),
        None => false,
    };
    for (key, set) in [
        ("modalities", audio_modality),
        ("audio", member(req, "audio").is_some()),
    ] {
        if set {
            return Err(TranslateError::field(
                key,
                format!("audio output is not available from {target}"),
            ));
        }
    }
    let legacy = [
        (
            "functions",
            "legacy `functions` are not translated; use `tools`",
        ),
        (
            "function_call",
            "legacy `function_call` is not translated; use `tool_choice`",
        ),
        ("web_search_options", web_search),
    ];
    for (key, message) in legacy {
        if member(req, key).is_some() {
            return Err(TranslateError::field(key, message));
        }
    }
    Ok(())
}

/// Refuses `n` > 1 for targets that return one choice per request.
pub(crate) fn reject_several_choices(req: &Obj, target: &str) -> Res<()> {
    if opt_u64(req, "", "n")?.is_some_and(|n| n > 1) {
        return Err(TranslateError::field(
            "n",
            format!("{target} return one choice per request; `n` greater than 1 is not supported"),
        ));
    }
    Ok(())
}

/// OpenAI's `tool_choice`, as far as Anthropic and Bedrock can express it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolChoice {
    /// `auto`.
    Auto,
    /// `none`.
    Disabled,
    /// `required`: some tool must be called.
    Required,
    /// This function must be called.
    Named(String),
}

/// Reads `tool_choice`: a mode string or `{"type": "function", "function": {"name"}}`.
pub(crate) fn tool_choice(req: &Obj, target: &str) -> Res<Option<ToolChoice>> {
    match member(req, "tool_choice") {
        None => Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::Disabled)),
            "required" => Ok(Some(ToolChoice::Required)),
            other => Err(TranslateError::field(
                "tool_choice",
                format!("unsupported `tool_choice` `{other}`"),
            )),
        },
        Some(Value::Object(o)) => match req_str(o, "tool_choice", "type")? {
            "function" => {
                let f = req_object(o, "tool_choice", "function")?;
                let name = req_str(f, "tool_choice.function", "name")?;
                Ok(Some(ToolChoice::Named(name.to_owned())))
            }
            other => Err(TranslateError::field(
                "tool_choice.type",
                format!("`tool_choice` of type `{other}` cannot be sent to {target}"),
            )),
        },
        Some(_) => Err(wrong_type("tool_choice", "a string or an object")),
    }
}

/// What `response_format` asks for when it asks for JSON: the schema (`{"type": "object"}` for
/// `json_object`) and the description to give the tool that carries it.
pub(crate) fn json_output(req: &Obj) -> Res<Option<(Value, &str)>> {
    let Some(format) = opt_object(req, "", "response_format")? else {
        return Ok(None);
    };
    let (schema, description) = match req_str(format, "response_format", "type")? {
        "text" => return Ok(None),
        "json_object" => (serde_json::json!({"type": "object"}), None),
        "json_schema" => {
            let sp = "response_format.json_schema";
            let js = req_object(format, "response_format", "json_schema")?;
            let schema = match opt_object(js, sp, "schema")? {
                Some(s) => Value::Object(s.clone()),
                None => serde_json::json!({"type": "object"}),
            };
            (schema, opt_str(js, sp, "description")?)
        }
        other => {
            return Err(TranslateError::field(
                "response_format.type",
                format!("unsupported `response_format` type `{other}`"),
            ));
        }
    };
    let description = description.unwrap_or(
        "Give your final answer by calling this tool: its input is the JSON response to the user.",
    );
    Ok(Some((schema, description)))
}

/// Which side of the conversation a provider message is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    User,
    Assistant,
}

impl Role {
    /// The role's name, the same in Anthropic's and Bedrock's formats.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One provider message being assembled from OpenAI messages (for APIs whose turns must
/// alternate and carry tool results as user content: Anthropic, Bedrock).
pub(crate) struct Turn {
    pub(crate) role: Role,
    pub(crate) blocks: Vec<Value>,
}

/// Appends `blocks` as a turn of `role`, merged into the previous turn when it has the same
/// role (OpenAI allows consecutive same-role messages; these APIs require alternation).
pub(crate) fn push_turn(turns: &mut Vec<Turn>, role: Role, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(t) if t.role == role => t.blocks.extend(blocks),
        _ => turns.push(Turn { role, blocks }),
    }
}

/// Checks the conversation is not empty and puts each user turn's tool results first, as both
/// APIs require after an assistant turn with tool calls.
pub(crate) fn finish_turns(turns: &mut [Turn], is_tool_result: fn(&Value) -> bool) -> Res<()> {
    if turns.is_empty() {
        return Err(TranslateError::field(
            "messages",
            "`messages` must contain at least one user or assistant message with content",
        ));
    }
    for t in turns {
        if t.role == Role::User && t.blocks.iter().any(is_tool_result) {
            let (mut results, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut t.blocks)
                .into_iter()
                .partition(is_tool_result);
            results.extend(rest);
            t.blocks = results;
        }
    }
    Ok(())
}
