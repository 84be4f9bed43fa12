//! Request translation from OpenAI's chat completions and embeddings to Gemini's
//! `generateContent` and `embedContent` / `batchEmbedContents`.
//!
//! # Chat: OpenAI → Gemini ([`chat_to_gemini`])
//!
//! Translated:
//! - `system` and `developer` messages, wherever they appear, become `systemInstruction` text
//!   parts, in order (Gemini has no mid-conversation system turns).
//! - `user` messages become `user` contents and `assistant` messages `model` contents, in
//!   order; consecutive contents of one role (after `tool` messages have become `user`
//!   contents) are merged, and in a merged `user` content the `functionResponse` parts come
//!   first. Empty text is skipped (Gemini rejects empty text parts) and a content left with
//!   nothing is dropped.
//! - Content parts: `text`; `image_url` with a `data:<mime>;base64,` URL as `inlineData`, or
//!   with an `http(s)://` or `gs://` URL as `fileData` whose `mimeType` is read from the file
//!   extension (`.png`, `.jpg`/`.jpeg`, `.webp`, `.heic`, `.heif`, `.gif`; query and fragment
//!   ignored). Gemini fetches public and signed HTTPS URLs itself, but needs the type; a URL
//!   whose extension says nothing is a 400 asking for a data URL instead. `input_audio` as
//!   `inlineData` (`audio/wav`, `audio/mp3`); `file` with a `file_data` data URL as
//!   `inlineData` of that type (PDFs, text, ...). Assistant `refusal` parts and the `refusal`
//!   field become text.
//! - `tool_calls` become `functionCall` parts after the text (`arguments` parsed; empty
//!   arguments read as `{}`). A call's thought signature travels in
//!   `extra_content.google.thought_signature` (the field Google's own OpenAI-compatible
//!   endpoint uses) and goes back as the part's `thoughtSignature`; the first call of an
//!   assistant message without one gets [`SKIP_THOUGHT_SIGNATURE`], so that Gemini 3 models,
//!   which refuse unsigned function calls, accept history from clients that dropped it.
//!   Call ids are not sent: Gemini matches responses to calls by name and order, and Vertex AI
//!   rejects the `id` field.
//! - `tool` messages become `functionResponse` parts. Gemini identifies the call by function
//!   name, so the name is looked up from the `tool_calls` earlier in the conversation by
//!   `tool_call_id`. Content that is a JSON object is the `response`; anything else is sent as
//!   `{"output": "<content>"}`, Gemini's documented key for a function's output.
//! - Function `tools` as one `functionDeclarations` tool (parameters converted by
//!   [`super::schema`]; a function without parameters declares none); `tool_choice` as
//!   `toolConfig.functionCallingConfig` (`auto` → `AUTO`, `none` → `NONE`, `required` →
//!   `ANY`, a named function → `ANY` with `allowedFunctionNames`, `allowed_tools` → only the
//!   allowed declarations, with `AUTO` or `ANY`).
//! - `generationConfig`: `max_completion_tokens` (or else `max_tokens`) as `maxOutputTokens`,
//!   `temperature`, `top_p` as `topP`, `stop` as `stopSequences`, `n` as `candidateCount`,
//!   `seed`, `presence_penalty` and `frequency_penalty` as `presencePenalty` and
//!   `frequencyPenalty`, `response_format` (`json_object` → `responseMimeType:
//!   application/json`; `json_schema` → that plus `responseSchema`, the schema converted to
//!   Gemini's OpenAPI subset, which every Gemini model reads), and `reasoning_effort` as
//!   `thinkingConfig.thinkingBudget` (`none` 0, `minimal` 512, `low` 1024, `medium` 8192,
//!   `high` 24576, `xhigh` 32768).
//! - `provider_options.gemini` is merged into the translated body as a JSON merge patch
//!   (`safetySettings`, `cachedContent`, `thinkingConfig`, `generationConfig.topK`, `labels`,
//!   ...).
//!
//! Dropped, being hints without a Gemini equivalent: `user`, `safety_identifier`, `metadata`,
//! `store`, `service_tier`, `logit_bias`, `parallel_tool_calls`, `prediction`, `verbosity`,
//! `prompt_cache_key`, `stream_options` (its `include_usage` is returned to the caller),
//! message `name`s, image `detail`, file names, tool `strict`, `reasoning_content` in history
//! (Gemini cannot take back thoughts without their signature), and unknown fields.
//!
//! Rejected: `logprobs: true` and `top_logprobs`, audio output (`modalities` with `audio`,
//! `audio`), `web_search_options` (use `provider_options.gemini.tools` with `googleSearch`),
//! OpenAI file ids, non-function tools and tool calls, custom tool choices, the legacy
//! `functions`/`function_call`/`function` role, unknown roles, a `tool` message whose
//! `tool_call_id` names no earlier call, and schemas [`super::schema`] cannot convert.
//!
//! # Embeddings: OpenAI → Gemini ([`embeddings_to_gemini`])
//!
//! One input (a string, or an array of one string) becomes an `embedContent` body; several
//! become a `batchEmbedContents` body with one request each (`model` set to
//! `models/<model>`, as Gemini requires). `dimensions` is `outputDimensionality`;
//! `provider_options.gemini` (e.g. `taskType`, `title`) is merged into each request.
//! `encoding_format: base64` is honoured on the way back. Token-id inputs are rejected (Gemini
//! embeds text), and so is a batch where the caller says only single inputs work (Vertex AI).

use serde_json::{json, Value};

use crate::chat_in::{self, base64_data_url};

/// The provider as error messages name it.
const TARGET: &str = "Gemini models";

use super::schema::{declares_no_parameters, to_gemini};
use super::{
    as_object, join, member, missing, opt_array, opt_bool, opt_i64, opt_number, opt_object,
    opt_str, opt_u64, parse_object, req_array, req_object, req_str, to_bytes, wrong_type, Obj, Res,
    TranslateError, SKIP_THOUGHT_SIGNATURE,
};

/// An OpenAI chat request translated for a Gemini deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatToGemini {
    /// The `generateContent` request body (the model is part of the URL, not the body).
    pub body: Vec<u8>,
    /// Whether the client asked for a stream (`streamGenerateContent?alt=sse`).
    pub stream: bool,
    /// Whether the client asked for a final usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// How many candidates (choices) were asked for (`n`, at least 1).
    pub candidates: u32,
}

/// Which embeddings method a translated body is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedMethod {
    /// `models/{model}:embedContent`, one input.
    Single,
    /// `models/{model}:batchEmbedContents`, several inputs.
    Batch,
}

/// An OpenAI embeddings request translated for a Gemini deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsToGemini {
    /// The request body.
    pub body: Vec<u8>,
    /// The method to call.
    pub method: EmbedMethod,
    /// Whether the client asked for `encoding_format: base64`.
    pub base64: bool,
}

/// Translates an OpenAI chat completions request into a Gemini `generateContent` request. See
/// the [module documentation](self) for what is kept, dropped and rejected.
pub fn chat_to_gemini(body: &[u8]) -> Result<ChatToGemini, TranslateError> {
    let mut req = parse_object(body)?;
    let extras = crate::extras::take(&mut req, "gemini")?;
    reject_chat_options(&req)?;

    let (system, contents) = conversation(&req)?;
    let mut out = Obj::new();
    out.insert(
        "contents".into(),
        Value::Array(contents.into_iter().map(Turn::into_json).collect()),
    );
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({ "parts": system }));
    }

    let mut declarations = function_declarations(&req)?;
    if !declarations.is_empty() {
        let config = match tool_choice(&req)? {
            None => None,
            Some(Choice::Mode(mode)) => Some(json!({ "mode": mode })),
            Some(Choice::Named(name)) => {
                Some(json!({"mode": "ANY", "allowedFunctionNames": [name]}))
            }
            Some(Choice::Allowed { mode, names }) => {
                declarations.retain(|d| {
                    d.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| names.iter().any(|a| a == n))
                });
                if declarations.is_empty() {
                    return Err(TranslateError::field(
                        "tool_choice.allowed_tools.tools",
                        "none of the allowed tools is among `tools`",
                    ));
                }
                Some(json!({ "mode": mode }))
            }
        };
        out.insert(
            "tools".into(),
            json!([{ "functionDeclarations": declarations }]),
        );
        if let Some(config) = config {
            out.insert(
                "toolConfig".into(),
                json!({ "functionCallingConfig": config }),
            );
        }
    }

    let (generation, candidates) = generation_config(&req)?;
    if !generation.is_empty() {
        out.insert("generationConfig".into(), Value::Object(generation));
    }

    let stream = opt_bool(&req, "", "stream")? == Some(true);
    let include_usage = match opt_object(&req, "", "stream_options")? {
        Some(o) => opt_bool(o, "stream_options", "include_usage")? == Some(true),
        None => false,
    };

    let mut out = Value::Object(out);
    if let Some(patch) = extras {
        // Nothing in the body is the gateway's own decision (model and streaming are in the
        // URL), so the patch applies as it is.
        crate::extras::merge_patch(&mut out, &patch);
    }
    Ok(ChatToGemini {
        body: to_bytes(&out)?,
        stream,
        include_usage,
        candidates,
    })
}

/// Translates an OpenAI embeddings request for the Gemini `model`. With `batch` false (Vertex
/// AI, which has no batch method) more than one input is rejected.
pub fn embeddings_to_gemini(
    body: &[u8],
    model: &str,
    batch: bool,
) -> Result<EmbeddingsToGemini, TranslateError> {
    let mut req = parse_object(body)?;
    let extras = crate::extras::take(&mut req, "gemini")?;
    let inputs: Vec<&str> = match member(&req, "input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => {
            let mut v = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => v.push(s.as_str()),
                    Value::Number(_) | Value::Array(_) => {
                        return Err(TranslateError::field(
                            format!("input[{i}]"),
                            "Gemini embeds text, not token ids; send the input as strings",
                        ))
                    }
                    _ => return Err(wrong_type(&format!("input[{i}]"), "a string")),
                }
            }
            v
        }
        Some(_) => return Err(wrong_type("input", "a string or an array of strings")),
        None => return Err(missing("input")),
    };
    if inputs.is_empty() {
        return Err(TranslateError::field(
            "input",
            "`input` must not be an empty array",
        ));
    }
    let base64 = match opt_str(&req, "", "encoding_format")? {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(TranslateError::field(
                "encoding_format",
                format!("unsupported `encoding_format` `{other}`; expected `float` or `base64`"),
            ))
        }
    };
    let dimensions = opt_u64(&req, "", "dimensions")?;

    let request = |text: &str, with_model: bool| {
        let mut r = Obj::new();
        if with_model {
            r.insert("model".into(), model_resource(model).into());
        }
        r.insert("content".into(), json!({"parts": [{"text": text}]}));
        if let Some(d) = dimensions {
            r.insert("outputDimensionality".into(), d.into());
        }
        let mut r = Value::Object(r);
        if let Some(patch) = &extras {
            crate::extras::merge_patch(&mut r, patch);
        }
        r
    };
    let (body, method) =
        match inputs.as_slice() {
            [one] => (request(one, false), EmbedMethod::Single),
            many if batch => (
                json!({"requests": many.iter().map(|t| request(t, true)).collect::<Vec<_>>()}),
                EmbedMethod::Batch,
            ),
            _ => return Err(TranslateError::field(
                "input",
                "this Gemini deployment (Vertex AI) embeds one input per request; send a single \
                 string",
            )),
        };
    Ok(EmbeddingsToGemini {
        body: to_bytes(&body)?,
        method,
        base64,
    })
}

/// The resource name Gemini's batch requests name their model by: `models/<model>`, or the
/// name as given when it already is a resource path (`tunedModels/...`).
pub fn model_resource(model: &str) -> String {
    if model.contains('/') {
        model.to_owned()
    } else {
        format!("models/{model}")
    }
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/// Fails on options Gemini cannot honour and whose loss would change the response.
fn reject_chat_options(req: &Obj) -> Res<()> {
    chat_in::reject_openai_only(
        req,
        TARGET,
        "web search is not translated for Gemini models; send \
         `provider_options: {\"gemini\": {\"tools\": [{\"googleSearch\": {}}]}}` instead",
    )
}

fn generation_config(req: &Obj) -> Res<(Obj, u32)> {
    let mut g = Obj::new();
    let n = opt_u64(req, "", "n")?.unwrap_or(1);
    if n == 0 {
        return Err(TranslateError::field("n", "`n` must be at least 1"));
    }
    let candidates = u32::try_from(n)
        .map_err(|_| TranslateError::field("n", "`n` is too large for Gemini's candidateCount"))?;
    if candidates > 1 {
        g.insert("candidateCount".into(), candidates.into());
    }

    let max_completion_tokens = opt_u64(req, "", "max_completion_tokens")?;
    let max_tokens = opt_u64(req, "", "max_tokens")?;
    if let Some(cap) = max_completion_tokens.or(max_tokens) {
        if cap == 0 {
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
        g.insert("maxOutputTokens".into(), cap.into());
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = opt_number(req, "", from)? {
            g.insert(to.into(), Value::Number(v.clone()));
        }
    }
    if let Some(seed) = opt_i64(req, "", "seed")? {
        g.insert("seed".into(), seed.into());
    }
    let stop = match member(req, "stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![Value::String(s.clone())],
        Some(Value::Array(stops)) => stops
            .iter()
            .enumerate()
            .map(|(k, s)| match s {
                Value::String(s) => Ok(Value::String(s.clone())),
                _ => Err(wrong_type(&format!("stop[{k}]"), "a string")),
            })
            .collect::<Res<Vec<_>>>()?,
        Some(_) => return Err(wrong_type("stop", "a string or an array of strings")),
    };
    if !stop.is_empty() {
        g.insert("stopSequences".into(), Value::Array(stop));
    }

    if let Some(format) = opt_object(req, "", "response_format")? {
        match req_str(format, "response_format", "type")? {
            "text" => {}
            "json_object" => {
                g.insert("responseMimeType".into(), "application/json".into());
            }
            "json_schema" => {
                let sp = "response_format.json_schema";
                let js = req_object(format, "response_format", "json_schema")?;
                g.insert("responseMimeType".into(), "application/json".into());
                if let Some(schema) = member(js, "schema") {
                    if !declares_no_parameters(schema) {
                        let converted = to_gemini(schema, &join(sp, "schema"))?;
                        g.insert("responseSchema".into(), converted);
                    }
                }
            }
            other => {
                return Err(TranslateError::field(
                    "response_format.type",
                    format!("unsupported `response_format` type `{other}`"),
                ))
            }
        }
    }

    let budget: Option<u32> = match opt_str(req, "", "reasoning_effort")? {
        None => None,
        Some("none") => Some(0),
        Some("minimal") => Some(512),
        Some("low") => Some(1024),
        Some("medium") => Some(8192),
        Some("high") => Some(24576),
        Some("xhigh") => Some(32768),
        Some(other) => {
            return Err(TranslateError::field(
                "reasoning_effort",
                format!("unsupported `reasoning_effort` `{other}`"),
            ))
        }
    };
    if let Some(b) = budget {
        g.insert("thinkingConfig".into(), json!({ "thinkingBudget": b }));
    }
    Ok((g, candidates))
}

// ---------------------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------------------

fn function_declarations(req: &Obj) -> Res<Vec<Value>> {
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
                format!("only function tools can be sent to Gemini models, not `{kind}`"),
            ));
        }
        let fp = join(&tp, "function");
        let f = req_object(t, &tp, "function")?;
        let mut d = Obj::new();
        d.insert("name".into(), req_str(f, &fp, "name")?.into());
        if let Some(desc) = opt_str(f, &fp, "description")? {
            d.insert("description".into(), desc.into());
        }
        if let Some(params) = member(f, "parameters") {
            if !declares_no_parameters(params) {
                d.insert(
                    "parameters".into(),
                    to_gemini(params, &join(&fp, "parameters"))?,
                );
            }
        }
        out.push(Value::Object(d));
    }
    Ok(out)
}

/// A tool choice, in Gemini's terms.
enum Choice {
    /// `AUTO`, `NONE` or `ANY`.
    Mode(&'static str),
    /// `ANY`, limited to one function.
    Named(String),
    /// Only these declarations, with `AUTO` or `ANY`.
    Allowed {
        mode: &'static str,
        names: Vec<String>,
    },
}

fn tool_choice(req: &Obj) -> Res<Option<Choice>> {
    match member(req, "tool_choice") {
        None => Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Ok(Some(Choice::Mode("AUTO"))),
            "none" => Ok(Some(Choice::Mode("NONE"))),
            "required" => Ok(Some(Choice::Mode("ANY"))),
            other => Err(TranslateError::field(
                "tool_choice",
                format!("unsupported `tool_choice` `{other}`"),
            )),
        },
        Some(Value::Object(o)) => match req_str(o, "tool_choice", "type")? {
            "function" => {
                let f = req_object(o, "tool_choice", "function")?;
                let name = req_str(f, "tool_choice.function", "name")?;
                Ok(Some(Choice::Named(name.to_owned())))
            }
            "allowed_tools" => {
                let ap = "tool_choice.allowed_tools";
                let a = req_object(o, "tool_choice", "allowed_tools")?;
                let mode = match req_str(a, ap, "mode")? {
                    "auto" => "AUTO",
                    "required" => "ANY",
                    other => {
                        return Err(TranslateError::field(
                            join(ap, "mode"),
                            format!("unsupported mode `{other}`; expected `auto` or `required`"),
                        ))
                    }
                };
                let mut names = Vec::new();
                for (i, t) in req_array(a, ap, "tools")?.iter().enumerate() {
                    let tp = format!("{ap}.tools[{i}]");
                    let t = as_object(t, &tp)?;
                    let f = req_object(t, &tp, "function")?;
                    names.push(req_str(f, &join(&tp, "function"), "name")?.to_owned());
                }
                Ok(Some(Choice::Allowed { mode, names }))
            }
            other => Err(TranslateError::field(
                "tool_choice.type",
                format!("`tool_choice` of type `{other}` cannot be sent to Gemini models"),
            )),
        },
        Some(_) => Err(wrong_type("tool_choice", "a string or an object")),
    }
}

// ---------------------------------------------------------------------------------------------
// Conversation
// ---------------------------------------------------------------------------------------------

/// One Gemini content being assembled.
struct Turn {
    role: &'static str,
    /// `functionResponse` parts, which go first.
    responses: Vec<Value>,
    parts: Vec<Value>,
}

impl Turn {
    fn into_json(self) -> Value {
        let mut parts = self.responses;
        parts.extend(self.parts);
        json!({"role": self.role, "parts": parts})
    }
}

/// The system instruction parts and the contents of an OpenAI conversation.
fn conversation(req: &Obj) -> Res<(Vec<Value>, Vec<Turn>)> {
    let messages = chat_in::messages(req)?;
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    // tool_call_id → function name, from the assistant messages seen so far.
    let mut call_names: Vec<(String, String)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let p = format!("messages[{i}]");
        let m = as_object(m, &p)?;
        let (role, responses, parts) = match req_str(m, &p, "role")? {
            "system" | "developer" => {
                system.extend(text_parts(member(m, "content"), &join(&p, "content"))?);
                continue;
            }
            "user" => ("user", Vec::new(), user_parts(m, &p)?),
            "assistant" => ("model", Vec::new(), model_parts(m, &p, &mut call_names)?),
            "tool" => (
                "user",
                vec![function_response(m, &p, &call_names)?],
                Vec::new(),
            ),
            "function" => {
                return Err(TranslateError::field(
                    join(&p, "role"),
                    "legacy `function` messages are not translated for Gemini models; use \
                     `tool` messages",
                ))
            }
            other => {
                return Err(TranslateError::field(
                    join(&p, "role"),
                    format!(
                        "unsupported role `{other}`; expected `system`, `developer`, `user`, \
                         `assistant` or `tool`"
                    ),
                ))
            }
        };
        if responses.is_empty() && parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(t) if t.role == role => {
                t.responses.extend(responses);
                t.parts.extend(parts);
            }
            _ => turns.push(Turn {
                role,
                responses,
                parts,
            }),
        }
    }
    if turns.is_empty() {
        return Err(TranslateError::field(
            "messages",
            "`messages` must contain at least one user or assistant message with content",
        ));
    }
    Ok((system, turns))
}

fn text_part(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "text": text }))
}

/// Text-only content (system, developer and tool messages) as text parts.
fn text_parts(content: Option<&Value>, path: &str) -> Res<Vec<Value>> {
    Ok(chat_in::texts(content, path)?
        .into_iter()
        .filter_map(text_part)
        .collect())
}

/// The text of text-only content, joined.
fn text_of(content: Option<&Value>, path: &str) -> Res<String> {
    let parts = text_parts(content, path)?;
    Ok(parts
        .iter()
        .filter_map(|p| p["text"].as_str())
        .collect::<Vec<_>>()
        .join(""))
}

fn part_type<'a>(v: &'a Value, path: &str) -> Res<(&'a Obj, &'a str)> {
    let o = as_object(v, path)?;
    Ok((o, req_str(o, path, "type")?))
}

fn unsupported_part(path: &str, kind: &str, hint: &str) -> TranslateError {
    TranslateError::field(
        join(path, "type"),
        format!("unsupported content type `{kind}`: {hint}"),
    )
}

fn user_parts(m: &Obj, p: &str) -> Res<Vec<Value>> {
    let path = join(p, "content");
    let parts = match member(m, "content") {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(text_part(s).into_iter().collect()),
        Some(Value::Array(parts)) => parts,
        Some(_) => return Err(wrong_type(&path, "a string or an array of content parts")),
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let pp = format!("{path}[{j}]");
        let (o, kind) = part_type(part, &pp)?;
        match kind {
            "text" => out.extend(text_part(req_str(o, &pp, "text")?)),
            "image_url" => out.push(image_part(o, &pp)?),
            "input_audio" => out.push(audio_part(o, &pp)?),
            "file" => out.push(file_part(o, &pp)?),
            other => {
                return Err(unsupported_part(
                    &pp,
                    other,
                    "expected `text`, `image_url`, `input_audio` or `file`",
                ))
            }
        }
    }
    Ok(out)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// The image type Gemini should be told for a URL, from its file extension.
pub fn image_mime_for_url(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let (_, ext) = file.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "gif" => "image/gif",
        _ => return None,
    })
}

fn image_part(part: &Obj, pp: &str) -> Res<Value> {
    let (url, url_path) = chat_in::image_url(part, pp)?;
    if let Some(rest) = strip_prefix_ci(url, "data:") {
        let (mime, data) = base64_data_url(rest).ok_or_else(|| {
            TranslateError::field(
                &url_path,
                "an image data URL must have the form `data:<media type>;base64,<data>`",
            )
        })?;
        return Ok(json!({"inlineData": {"mimeType": mime, "data": data}}));
    }
    let remote = ["https://", "http://", "gs://"]
        .iter()
        .any(|scheme| strip_prefix_ci(url, scheme).is_some());
    if !remote {
        return Err(TranslateError::field(
            url_path,
            "an image URL must be an http(s) or gs:// URL or a base64 data URL",
        ));
    }
    let Some(mime) = image_mime_for_url(url) else {
        return Err(TranslateError::field(
            url_path,
            "Gemini needs the type of an image it fetches, and this URL's extension does not \
             say it (expected .png, .jpg, .jpeg, .webp, .heic, .heif or .gif); send the image \
             as a base64 data URL instead",
        ));
    };
    Ok(json!({"fileData": {"mimeType": mime, "fileUri": url}}))
}

fn audio_part(part: &Obj, pp: &str) -> Res<Value> {
    let ap = join(pp, "input_audio");
    let audio = req_object(part, pp, "input_audio")?;
    let data = req_str(audio, &ap, "data")?;
    let mime = match req_str(audio, &ap, "format")? {
        "wav" => "audio/wav".to_owned(),
        "mp3" => "audio/mp3".to_owned(),
        other => format!("audio/{}", other.to_ascii_lowercase()),
    };
    Ok(json!({"inlineData": {"mimeType": mime, "data": data}}))
}

fn file_part(part: &Obj, pp: &str) -> Res<Value> {
    let fp = join(pp, "file");
    let file = req_object(part, pp, "file")?;
    let Some(data_url) = opt_str(file, &fp, "file_data")? else {
        if member(file, "file_id").is_some() {
            return Err(TranslateError::field(
                join(&fp, "file_id"),
                "OpenAI file ids cannot be read by Gemini models; send the file inline as \
                 `file_data`",
            ));
        }
        return Err(missing(&join(&fp, "file_data")));
    };
    let Some((mime, data)) = strip_prefix_ci(data_url, "data:").and_then(base64_data_url) else {
        return Err(TranslateError::field(
            join(&fp, "file_data"),
            "`file_data` must be a data URL, `data:<media type>;base64,<data>`",
        ));
    };
    Ok(json!({"inlineData": {"mimeType": mime, "data": data}}))
}

fn model_parts(m: &Obj, p: &str, call_names: &mut Vec<(String, String)>) -> Res<Vec<Value>> {
    let a = chat_in::assistant(m, p, TARGET)?;
    let mut parts: Vec<Value> = a.texts.into_iter().filter_map(text_part).collect();
    for (j, call) in a.calls.into_iter().enumerate() {
        call_names.push((call.id.to_owned(), call.name.to_owned()));
        parts.push(function_call(
            call,
            &format!("{p}.tool_calls[{j}]"),
            j == 0,
        )?);
    }
    Ok(parts)
}

/// A `functionCall` part for an OpenAI tool call, with the call's id and function name.
fn function_call(call: chat_in::Call<'_>, path: &str, first: bool) -> Res<Value> {
    let (c, name, args) = (call.raw, call.name, call.input);
    let signature = match opt_object(c, path, "extra_content")? {
        Some(extra) => match opt_object(extra, &join(path, "extra_content"), "google")? {
            Some(g) => opt_str(g, &join(path, "extra_content.google"), "thought_signature")?,
            None => None,
        },
        None => None,
    };
    let mut part = Obj::new();
    part.insert("functionCall".into(), json!({"name": name, "args": args}));
    match signature {
        Some(s) => {
            part.insert("thoughtSignature".into(), s.into());
        }
        None if first => {
            part.insert("thoughtSignature".into(), SKIP_THOUGHT_SIGNATURE.into());
        }
        None => {}
    }
    Ok(Value::Object(part))
}

fn function_response(m: &Obj, p: &str, call_names: &[(String, String)]) -> Res<Value> {
    let id = req_str(m, p, "tool_call_id")?;
    let name = match call_names.iter().rev().find(|(cid, _)| cid == id) {
        Some((_, name)) => name.as_str(),
        None => match opt_str(m, p, "name")? {
            Some(name) => name,
            None => {
                return Err(TranslateError::field(
                    join(p, "tool_call_id"),
                    format!(
                        "no earlier assistant tool call has the id `{id}`; Gemini matches tool \
                         results to calls by function name, so the call must be in the \
                         conversation"
                    ),
                ))
            }
        },
    };
    let text = text_of(member(m, "content"), &join(p, "content"))?;
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "output": text }),
    };
    Ok(json!({"functionResponse": {"name": name, "response": response}}))
}

#[cfg(test)]
mod tests;
