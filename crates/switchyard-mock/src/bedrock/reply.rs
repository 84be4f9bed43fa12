//! What the Bedrock face answers: request validation, the generated reply, and its
//! rendering as a Converse response or as ConverseStream eventstream messages.
//!
//! Everything is a pure function of the request and the knobs (ids aside), so the streamed
//! and non-streamed answers to one request carry the same content.

use serde_json::{json, Map, Value};

use super::eventstream::{write_event, write_exception};
use crate::knobs::Knobs;
use crate::openai::EchoHeaders;
use crate::sse::EventBuf;
use crate::text;

/// Most `toolUse` blocks one reply carries, whatever `parallel_tool_calls` asks for.
const MAX_TOOL_CALLS: u32 = 64;
/// Most words one reply carries, whatever `words` asks for.
const MAX_WORDS: u32 = 1 << 20;
/// The text a guardrail puts in place of the model's answer.
const GUARDRAIL_TEXT: &str = "Sorry, the model cannot answer this question.";
/// The top-level members of a Converse request (plus the mock's `mock`).
const TOP_LEVEL: [&str; 10] = [
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "promptVariables",
    "additionalModelResponseFieldPaths",
    "requestMetadata",
    "performanceConfig",
];
/// The content block members of a message.
const BLOCK_TYPES: [&str; 9] = [
    "text",
    "image",
    "document",
    "video",
    "toolUse",
    "toolResult",
    "guardContent",
    "reasoningContent",
    "cachePoint",
];

/// How the request lets the model use tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ToolChoice {
    Auto,
    Any,
    Tool(String),
}

/// The fields of a valid request that decide the answer.
#[derive(Debug)]
pub(super) struct Request {
    tools: Vec<(String, Value)>,
    tool_choice: ToolChoice,
    max_tokens: Option<u64>,
    stop_sequences: Vec<String>,
    prompt_chars: usize,
    seed: u64,
}

fn obj<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{path}: expected an object"))
}

fn arr<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| format!("{path}: expected an array"))
}

/// The single member of a union structure (Bedrock's content blocks, tool choices).
fn union_member<'a>(
    o: &'a Map<String, Value>,
    allowed: &[&str],
    path: &str,
) -> Result<(&'a str, &'a Value), String> {
    let mut members = o.iter();
    match (members.next(), members.next()) {
        (Some((k, v)), None) if allowed.contains(&k.as_str()) => Ok((k, v)),
        (Some((k, _)), None) => Err(format!("{path}: unknown member `{k}`")),
        _ => Err(format!("{path}: exactly one member must be set")),
    }
}

impl Request {
    /// Validates a Converse body as the API does; `Err` is the `ValidationException` message.
    pub(super) fn parse(doc: &Value, raw: &[u8]) -> Result<Self, String> {
        let top = obj(doc, "request")?;
        for key in top.keys() {
            if key != "mock" && !TOP_LEVEL.contains(&key.as_str()) {
                return Err(format!(
                    "Malformed input request: extraneous key [{key}] is not permitted, please \
                     reformat your input and try again."
                ));
            }
        }
        let mut prompt_chars = 0usize;
        if let Some(system) = top.get("system") {
            for (i, b) in arr(system, "system")?.iter().enumerate() {
                let b = obj(b, &format!("system[{i}]"))?;
                if let Some(t) = b.get("text") {
                    prompt_chars += t.as_str().map_or(0, str::len);
                }
            }
        }
        let messages = arr(
            top.get("messages")
                .ok_or("The model returned the following errors: messages: field required")?,
            "messages",
        )?;
        if messages.is_empty() {
            return Err("A conversation must start with a user message. Try again with a conversation that starts with a user message.".into());
        }
        let mut has_tool_blocks = false;
        let mut last_role = "";
        for (i, m) in messages.iter().enumerate() {
            let p = format!("messages[{i}]");
            let m = obj(m, &p)?;
            let role = m
                .get("role")
                .and_then(Value::as_str)
                .ok_or(format!("{p}.role: expected `user` or `assistant`"))?;
            if !matches!(role, "user" | "assistant") {
                return Err(format!(
                    "{p}.role: expected `user` or `assistant`, got `{role}`"
                ));
            }
            if i == 0 && role != "user" {
                return Err("A conversation must start with a user message. Try again with a conversation that starts with a user message.".into());
            }
            if role == last_role {
                return Err("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".into());
            }
            last_role = role;
            let content = arr(
                m.get("content")
                    .ok_or(format!("{p}.content: field required"))?,
                &format!("{p}.content"),
            )?;
            if content.is_empty() {
                return Err(format!(
                    "{p}.content: at least one content block is required"
                ));
            }
            for (j, block) in content.iter().enumerate() {
                let bp = format!("{p}.content[{j}]");
                let (kind, value) = union_member(obj(block, &bp)?, &BLOCK_TYPES, &bp)?;
                prompt_chars += check_block(kind, value, role, &bp)?;
                has_tool_blocks |= matches!(kind, "toolUse" | "toolResult");
            }
        }

        let mut max_tokens = None;
        let mut stop_sequences = Vec::new();
        if let Some(cfg) = top.get("inferenceConfig") {
            let cfg = obj(cfg, "inferenceConfig")?;
            for (k, v) in cfg {
                match k.as_str() {
                    "maxTokens" => match v.as_u64() {
                        Some(n) if n >= 1 => max_tokens = Some(n),
                        _ => {
                            return Err(
                                "inferenceConfig.maxTokens: must be an integer of at least 1"
                                    .into(),
                            )
                        }
                    },
                    "temperature" | "topP" => {
                        if !v.as_f64().is_some_and(|f| (0.0..=1.0).contains(&f)) {
                            return Err(format!(
                                "inferenceConfig.{k}: must be a number from 0 to 1"
                            ));
                        }
                    }
                    "stopSequences" => {
                        for (i, s) in arr(v, "inferenceConfig.stopSequences")?.iter().enumerate() {
                            let s = s.as_str().ok_or(format!(
                                "inferenceConfig.stopSequences[{i}]: expected a string"
                            ))?;
                            stop_sequences.push(s.to_owned());
                        }
                    }
                    other => return Err(format!("inferenceConfig: unknown member `{other}`")),
                }
            }
        }

        let mut tools = Vec::new();
        let mut tool_choice = ToolChoice::Auto;
        match top.get("toolConfig") {
            None if has_tool_blocks => {
                return Err("The toolConfig field must be defined when using toolUse and toolResult content blocks.".into())
            }
            None => {}
            Some(cfg) => {
                let cfg = obj(cfg, "toolConfig")?;
                let list = arr(cfg.get("tools").ok_or("toolConfig.tools: field required")?, "toolConfig.tools")?;
                if list.is_empty() {
                    return Err("toolConfig.tools: at least one tool is required".into());
                }
                for (i, t) in list.iter().enumerate() {
                    let tp = format!("toolConfig.tools[{i}]");
                    let (_, spec) = union_member(obj(t, &tp)?, &["toolSpec", "cachePoint", "systemTool"], &tp)?;
                    let Some(spec) = spec.as_object().filter(|_| t.get("toolSpec").is_some()) else {
                        continue;
                    };
                    let name = spec
                        .get("name")
                        .and_then(Value::as_str)
                        .filter(|n| !n.is_empty())
                        .ok_or(format!("{tp}.toolSpec.name: field required"))?;
                    let schema = spec
                        .get("inputSchema")
                        .and_then(|s| s.get("json"))
                        .filter(|s| s.is_object())
                        .ok_or(format!("{tp}.toolSpec.inputSchema.json: a JSON schema object is required"))?;
                    tools.push((name.to_owned(), schema.clone()));
                }
                if let Some(choice) = cfg.get("toolChoice") {
                    let (kind, value) = union_member(obj(choice, "toolConfig.toolChoice")?, &["auto", "any", "tool"], "toolConfig.toolChoice")?;
                    tool_choice = match kind {
                        "auto" => ToolChoice::Auto,
                        "any" => ToolChoice::Any,
                        _ => {
                            let name = value.get("name").and_then(Value::as_str).unwrap_or("");
                            if !tools.iter().any(|(n, _)| n == name) {
                                return Err(format!("toolConfig.toolChoice.tool.name: `{name}` is not one of the tools"));
                            }
                            ToolChoice::Tool(name.to_owned())
                        }
                    };
                }
            }
        }
        Ok(Self {
            tools,
            tool_choice,
            max_tokens,
            stop_sequences,
            prompt_chars,
            seed: text::fnv1a(raw),
        })
    }
}

/// Checks one content block; returns the characters it adds to the prompt.
fn check_block(kind: &str, value: &Value, role: &str, bp: &str) -> Result<usize, String> {
    let path = format!("{bp}.{kind}");
    Ok(match kind {
        "text" => {
            let t = value.as_str().ok_or(format!("{path}: expected a string"))?;
            if t.is_empty() {
                return Err(format!("{path}: text content blocks must be non-empty"));
            }
            t.len()
        }
        "image" | "document" => {
            let o = obj(value, &path)?;
            let format = o.get("format").and_then(Value::as_str).unwrap_or("");
            let formats: &[&str] = if kind == "image" {
                &["png", "jpeg", "gif", "webp"]
            } else {
                &[
                    "pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md",
                ]
            };
            if !formats.contains(&format) {
                return Err(format!(
                    "{path}.format: `{format}` is not one of {}",
                    formats.join(", ")
                ));
            }
            if kind == "document"
                && o.get("name")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                return Err(format!("{path}.name: field required"));
            }
            let bytes = o
                .get("source")
                .and_then(|s| s.get("bytes"))
                .and_then(Value::as_str)
                .ok_or(format!("{path}.source.bytes: base64 bytes are required"))?;
            if bytes.is_empty()
                || !bytes
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
            {
                return Err(format!("{path}.source.bytes: invalid base64"));
            }
            if role != "user" {
                return Err(format!("{path}: only user messages may carry {kind}s"));
            }
            1000
        }
        "toolUse" => {
            let o = obj(value, &path)?;
            for k in ["toolUseId", "name"] {
                if o.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
                    return Err(format!("{path}.{k}: field required"));
                }
            }
            if !o.get("input").is_some_and(Value::is_object) {
                return Err(format!("{path}.input: expected an object"));
            }
            if role != "assistant" {
                return Err(format!(
                    "{path}: toolUse blocks belong in assistant messages"
                ));
            }
            o.get("input").map_or(0, |i| i.to_string().len())
        }
        "toolResult" => {
            let o = obj(value, &path)?;
            if o.get("toolUseId")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(format!("{path}.toolUseId: field required"));
            }
            let content = arr(
                o.get("content")
                    .ok_or(format!("{path}.content: field required"))?,
                &format!("{path}.content"),
            )?;
            if role != "user" {
                return Err(format!("{path}: toolResult blocks belong in user messages"));
            }
            content.iter().map(|c| c.to_string().len()).sum()
        }
        _ => 0,
    })
}

/// One generated content block.
pub(super) enum Block {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

/// Token counts as Bedrock reports them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Usage {
    pub(super) input: u64,
    pub(super) output: u64,
    pub(super) cache_read: u64,
}

impl Usage {
    pub(super) fn total(&self) -> u64 {
        self.input + self.output + self.cache_read
    }

    fn json(&self) -> Value {
        let mut u = json!({
            "inputTokens": self.input,
            "outputTokens": self.output,
            "totalTokens": self.total(),
        });
        if self.cache_read > 0 {
            u["cacheReadInputTokens"] = self.cache_read.into();
            u["cacheWriteInputTokens"] = 0.into();
        }
        u
    }
}

/// The generated answer.
pub(super) struct Answer {
    pub(super) blocks: Vec<Block>,
    pub(super) stop_reason: &'static str,
    pub(super) usage: Usage,
    /// Whether the text is the echo description (streamed as one piece).
    echo: bool,
}

/// Decides the answer: the echo, a guardrail intervention, tool calls, or text.
pub(super) fn generate(req: &Request, knobs: &Knobs, echo: Option<String>) -> Answer {
    let input = text::estimate_tokens(req.prompt_chars).max(1);
    let usage = |output: u64| Usage {
        input,
        output,
        cache_read: knobs.cache_read_tokens.unwrap_or(0),
    };
    if let Some(echo) = echo {
        let out = text::estimate_tokens(echo.len());
        return Answer {
            blocks: vec![Block::Text(echo)],
            stop_reason: "end_turn",
            usage: usage(out),
            echo: true,
        };
    }
    if knobs.guardrail == Some(true) {
        return Answer {
            blocks: vec![Block::Text(GUARDRAIL_TEXT.to_owned())],
            stop_reason: "guardrail_intervened",
            usage: usage(0),
            echo: false,
        };
    }
    let forced = matches!(req.tool_choice, ToolChoice::Any | ToolChoice::Tool(_));
    let parallel = knobs.parallel_tool_calls.unwrap_or(0);
    if !req.tools.is_empty() && (forced || knobs.tool_call() || parallel > 0) {
        let start = match &req.tool_choice {
            ToolChoice::Tool(name) => req.tools.iter().position(|(n, _)| n == name).unwrap_or(0),
            _ => 0,
        };
        let calls = if matches!(req.tool_choice, ToolChoice::Tool(_)) {
            1
        } else {
            parallel.clamp(1, MAX_TOOL_CALLS)
        };
        let mut blocks = Vec::new();
        let mut output = 0;
        for i in 0..calls as usize {
            let (name, schema) = &req.tools[(start + i) % req.tools.len()];
            let input = fake_input(schema, req.seed.wrapping_add(i as u64), 0);
            output += text::estimate_tokens(input.to_string().len()) + 5;
            blocks.push(Block::ToolUse {
                id: text::random_id("tooluse_", 22),
                name: name.clone(),
                input,
            });
        }
        return Answer {
            blocks,
            stop_reason: "tool_use",
            usage: usage(output),
            echo: false,
        };
    }
    let wanted = knobs
        .words
        .unwrap_or_else(|| text::default_word_count(req.seed))
        .min(MAX_WORDS);
    let mut reply = text::fake_text(req.seed, wanted);
    let mut stop_reason = "end_turn";
    if let Some(cap) = req.max_tokens {
        if u64::from(wanted) > cap {
            let cut = reply
                .match_indices(' ')
                .nth(usize::try_from(cap.saturating_sub(1)).unwrap_or(usize::MAX))
                .map_or(reply.len(), |(i, _)| i);
            reply.truncate(cut);
            stop_reason = "max_tokens";
        }
    }
    let first_stop = req
        .stop_sequences
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| reply.find(s.as_str()))
        .min();
    if let Some(at) = first_stop {
        reply.truncate(at);
        stop_reason = "stop_sequence";
    }
    let output = reply.split(' ').filter(|w| !w.is_empty()).count() as u64;
    Answer {
        blocks: vec![Block::Text(reply)],
        stop_reason,
        usage: usage(output),
        echo: false,
    }
}

/// A fake tool input that follows the schema's properties and types.
fn fake_input(schema: &Value, seed: u64, depth: u32) -> Value {
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("object");
    if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
        if let Some(first) = choices.get((seed % choices.len().max(1) as u64) as usize) {
            return first.clone();
        }
    }
    match kind {
        "string" => text::fake_word(seed).into(),
        "integer" => (seed % 100).into(),
        "number" => json!((seed % 1000) as f64 / 10.0),
        "boolean" => (seed & 1 == 0).into(),
        "array" if depth < 4 => match schema.get("items") {
            Some(items) => json!([fake_input(items, seed.rotate_left(7), depth + 1)]),
            None => json!([]),
        },
        "object" if depth < 4 => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (i, (name, prop)) in props.iter().enumerate() {
                    let s = seed.wrapping_mul(31).wrapping_add(i as u64);
                    out.insert(name.clone(), fake_input(prop, s, depth + 1));
                }
            }
            Value::Object(out)
        }
        _ => Value::Null,
    }
}

fn block_json(block: &Block) -> Value {
    match block {
        Block::Text(t) => json!({ "text": t }),
        Block::ToolUse { id, name, input } => {
            json!({"toolUse": {"toolUseId": id, "name": name, "input": input}})
        }
    }
}

/// The Converse response body.
pub(super) fn converse_json(answer: &Answer) -> Vec<u8> {
    let doc = json!({
        "output": {"message": {
            "role": "assistant",
            "content": answer.blocks.iter().map(block_json).collect::<Vec<_>>(),
        }},
        "stopReason": answer.stop_reason,
        "usage": answer.usage.json(),
        "metrics": {"latencyMs": 100 + answer.usage.output},
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// Bedrock pads stream payloads with a `p` member of varying length, so that message sizes
/// do not reveal token lengths; the mock does the same, deterministically.
fn padded(mut payload: Value, n: usize) -> Vec<u8> {
    const PAD: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    payload["p"] = PAD[..(n * 7) % PAD.len()].into();
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// The ConverseStream messages for an answer, one per event; `malformed` corrupts the CRC of
/// the first delta.
pub(super) fn stream(answer: &Answer, malformed: bool) -> EventBuf {
    let mut events = EventBuf::with_capacity(8 + answer.blocks.len() * 16, 160);
    let mut n = 0usize;
    let mut push = |events: &mut EventBuf, kind: &str, payload: Value| {
        n += 1;
        write_event(events.buf(), kind, &padded(payload, n));
        events.end_event();
    };
    push(&mut events, "messageStart", json!({"role": "assistant"}));
    for (index, block) in answer.blocks.iter().enumerate() {
        match block {
            Block::Text(t) => {
                let pieces: Vec<&str> = if answer.echo {
                    vec![t.as_str()]
                } else {
                    t.split_inclusive(' ').collect()
                };
                for piece in pieces {
                    push(
                        &mut events,
                        "contentBlockDelta",
                        json!({"contentBlockIndex": index, "delta": {"text": piece}}),
                    );
                }
            }
            Block::ToolUse { id, name, input } => {
                push(
                    &mut events,
                    "contentBlockStart",
                    json!({"contentBlockIndex": index,
                    "start": {"toolUse": {"toolUseId": id, "name": name}}}),
                );
                let text = input.to_string();
                let mid = text
                    .char_indices()
                    .nth(text.chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                for piece in [&text[..mid], &text[mid..]] {
                    push(
                        &mut events,
                        "contentBlockDelta",
                        json!({"contentBlockIndex": index,
                        "delta": {"toolUse": {"input": piece}}}),
                    );
                }
            }
        }
        push(
            &mut events,
            "contentBlockStop",
            json!({ "contentBlockIndex": index }),
        );
    }
    push(
        &mut events,
        "messageStop",
        json!({ "stopReason": answer.stop_reason }),
    );
    push(
        &mut events,
        "metadata",
        json!({
            "usage": answer.usage.json(),
            "metrics": {"latencyMs": 100 + answer.usage.output},
        }),
    );
    if malformed {
        // Flip the last byte (the message CRC) of the second message.
        let buf = events.buf();
        let len_at = |at: usize| -> Option<usize> {
            let b = buf.get(at..at + 4)?;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let second_end = len_at(0).and_then(|first| Some(first + len_at(first)?));
        if let Some(byte) = second_end.and_then(|end| buf.get_mut(end.checked_sub(1)?)) {
            *byte ^= 0xff;
        }
    }
    events
}

/// Appends an exception message (the way ConverseStream reports failures after its 200).
pub(super) fn push_exception(events: &mut EventBuf, exception_type: &str, message: &str) {
    let payload = serde_json::to_vec(&json!({ "message": message })).unwrap_or_default();
    write_exception(events.buf(), exception_type, &payload);
    events.end_event();
}

/// The JSON description of the request that the `echo` knob replies with: method, raw path,
/// model id, headers (with the signature and session token hidden) and the whole body.
pub(super) fn echo_json(parts: &http::request::Parts, model_id: &str, body: &Value) -> String {
    let mut headers = parts.headers.clone();
    if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
        let shown = String::from_utf8_lossy(auth.as_bytes());
        let hidden = match shown.find("Signature=") {
            Some(at) => format!("{}Signature=[hidden]", &shown[..at]),
            None => "[hidden]".to_owned(),
        };
        if let Ok(v) = http::HeaderValue::from_str(&hidden) {
            headers.insert(http::header::AUTHORIZATION, v);
        }
    }
    if headers.contains_key("x-amz-security-token") {
        headers.insert(
            "x-amz-security-token",
            http::HeaderValue::from_static("[hidden]"),
        );
    }
    let echo = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "model_id": model_id,
        "headers": serde_json::to_value(EchoHeaders(&headers)).unwrap_or(Value::Null),
        "body": body,
    });
    echo.to_string()
}
