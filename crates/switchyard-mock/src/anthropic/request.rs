//! Reading and validating a Messages (or token-counting) request.
//!
//! The real API rejects a malformed request with a 400 whose message names the offending
//! field (`max_tokens: Field required`), and gateways are tested on forwarding exactly what
//! that API accepts, so the mock validates the same rules rather than deserializing into a
//! strict struct and reporting serde's wording. Every top-level field is first kept as raw
//! JSON borrowed from the body; each is then checked for its type on its own, which is what
//! makes per-field messages possible without building a `serde_json::Value` tree.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::knobs::Knobs;
use crate::text;

/// Whether an `anthropic-version` value is one the API could accept: a `YYYY-MM-DD` date no
/// earlier than the first version (2023-01-01). Anthropic's SDKs move to newer dates over time,
/// so the mock accepts any well-formed date rather than a fixed list.
pub(super) fn is_api_version(v: &[u8]) -> bool {
    let number = |r: std::ops::Range<usize>| {
        let d = v.get(r)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0u32, |n, b| n * 10 + u32::from(b - b'0')))
    };
    v.len() == 10
        && v[4] == b'-'
        && v[7] == b'-'
        && number(0..4).is_some()
        && number(5..7).is_some_and(|m| (1..=12).contains(&m))
        && number(8..10).is_some_and(|d| (1..=31).contains(&d))
        && v >= &b"2023-01-01"[..]
}

/// Smallest `thinking.budget_tokens` the API accepts.
const MIN_THINKING_BUDGET: u64 = 1024;

/// Tokens of framing counted per message (role markers), on top of its content.
const MESSAGE_FRAMING_TOKENS: u64 = 3;

/// Tokens counted once per request for priming the assistant's turn.
const PRIMING_TOKENS: u64 = 3;

/// Which endpoint a body was sent to; token counting takes the same body minus `max_tokens`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
}

/// The top-level fields the mock looks at, each still raw so a wrong type can be reported by
/// name. Unknown fields are ignored.
#[derive(Deserialize)]
pub(super) struct Fields<'a> {
    #[serde(borrow)]
    pub(super) model: Option<&'a RawValue>,
    #[serde(borrow)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    messages: Option<&'a RawValue>,
    #[serde(borrow)]
    system: Option<&'a RawValue>,
    #[serde(borrow)]
    stop_sequences: Option<&'a RawValue>,
    #[serde(borrow)]
    stream: Option<&'a RawValue>,
    #[serde(borrow)]
    tools: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_choice: Option<&'a RawValue>,
    #[serde(borrow)]
    thinking: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow)]
    temperature: Option<&'a RawValue>,
    #[serde(borrow)]
    top_p: Option<&'a RawValue>,
    #[serde(borrow)]
    top_k: Option<&'a RawValue>,
    #[serde(borrow)]
    mock: Option<&'a RawValue>,
}

impl<'a> Fields<'a> {
    /// Reads the body's top level; `Err` carries the 400 message.
    pub(super) fn parse(body: &'a [u8]) -> Result<Self, String> {
        use serde_json::error::Category;
        serde_json::from_slice(body).map_err(|err| match err.classify() {
            // Valid JSON of the wrong shape (an array, a string, a repeated key).
            Category::Data => format!("The request body must be a JSON object: {err}"),
            Category::Io | Category::Syntax | Category::Eof => {
                format!("The request body is not valid JSON: {err}")
            }
        })
    }

    /// The `"mock"` knobs; `Err` carries the 400 message (unknown knobs are rejected).
    pub(super) fn knobs(&self) -> Result<Knobs, String> {
        match self.mock {
            None => Ok(Knobs::default()),
            Some(raw) => serde_json::from_str(raw.get()).map_err(|err| format!("mock: {err}")),
        }
    }

    /// The model name if it is a string, for error messages that mention it.
    pub(super) fn model_hint(&self) -> Cow<'a, str> {
        self.model.and_then(string).unwrap_or(Cow::Borrowed(""))
    }
}

/// The JSON type of a raw value, read from its first byte (raw values carry no leading
/// whitespace), so type checks cost nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    String,
    Object,
    Array,
    Bool,
    Null,
    Number,
}

fn kind(raw: &RawValue) -> Kind {
    match raw.get().as_bytes().first() {
        Some(b'"') => Kind::String,
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'n') => Kind::Null,
        _ => Kind::Number,
    }
}

/// A raw JSON string's contents, borrowed when it has no escapes.
fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    if kind(raw) != Kind::String {
        return None;
    }
    match serde_json::from_str::<&str>(raw.get()) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(raw.get())
            .ok()
            .map(Cow::Owned),
    }
}

/// The elements of a raw JSON array, each still raw.
fn elements(raw: &RawValue) -> Option<Vec<&RawValue>> {
    if kind(raw) != Kind::Array {
        return None;
    }
    serde_json::from_str(raw.get()).ok()
}

/// A whole number, accepting `5.0` as the API's validator does.
fn integer(raw: &RawValue) -> Option<i64> {
    let n: serde_json::Number = serde_json::from_str(raw.get()).ok()?;
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            // Exact: the value is integral and well inside i64's range.
            .map(|f| f as i64)
    })
}

fn number(raw: &RawValue) -> Option<f64> {
    serde_json::from_str::<serde_json::Number>(raw.get())
        .ok()?
        .as_f64()
}

/// A message author.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    User,
    Assistant,
}

impl Role {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One content block, reduced to what the mock needs.
pub(super) struct Block<'a> {
    /// The block's `type`.
    pub(super) kind: Cow<'a, str>,
    /// Estimated tokens for the block as a whole.
    pub(super) tokens: u64,
    /// Whether the block carries `cache_control` (a cache breakpoint).
    pub(super) cached: bool,
    /// `id` of a `tool_use` block, `tool_use_id` of a `tool_result` block.
    pub(super) tool_id: Option<Cow<'a, str>>,
}

/// One message of the conversation.
pub(super) struct Message<'a> {
    pub(super) role: Role,
    /// The raw `content`, hashed to seed the reply.
    pub(super) content: &'a RawValue,
    /// `None` when `content` is a plain string.
    pub(super) blocks: Option<Vec<Block<'a>>>,
}

/// One declared tool.
pub(super) struct Tool<'a> {
    pub(super) name: Cow<'a, str>,
    /// The raw `input_schema` (absent for server tools such as web search).
    pub(super) schema: Option<&'a RawValue>,
    pub(super) tokens: u64,
    pub(super) cached: bool,
}

/// How the request says tools may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ToolChoice<'a> {
    Auto,
    Any,
    Tool(Cow<'a, str>),
    None,
}

/// Whether and how the model is asked to think before answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Thinking {
    Off,
    /// `{"type":"enabled","budget_tokens":N}`.
    Budget(u64),
    /// `{"type":"adaptive"}`: the model picks its own budget.
    Adaptive,
}

/// A validated request.
pub(super) struct Request<'a> {
    pub(super) model: Cow<'a, str>,
    /// Zero for token counting, which takes no `max_tokens`.
    pub(super) max_tokens: u64,
    /// System prompt parts: one for a string, one per block for an array.
    pub(super) system: Vec<(u64, bool)>,
    pub(super) messages: Vec<Message<'a>>,
    pub(super) tools: Vec<Tool<'a>>,
    pub(super) tool_choice: ToolChoice<'a>,
    pub(super) disable_parallel_tool_use: bool,
    pub(super) thinking: Thinking,
    pub(super) stop_sequences: Vec<Cow<'a, str>>,
    pub(super) stream: bool,
}

/// Raw top-level fields the echo reply reports back as received.
pub(super) struct Echoed<'a> {
    pub(super) system: Option<&'a RawValue>,
    pub(super) tool_choice: Option<&'a RawValue>,
    pub(super) stop_sequences: Option<&'a RawValue>,
    pub(super) metadata: Option<&'a RawValue>,
    pub(super) thinking: Option<&'a RawValue>,
}

impl<'a> Fields<'a> {
    /// The fields the echo reply repeats verbatim.
    pub(super) fn echoed(&self) -> Echoed<'a> {
        Echoed {
            system: self.system,
            tool_choice: self.tool_choice,
            stop_sequences: self.stop_sequences,
            metadata: self.metadata,
            thinking: self.thinking,
        }
    }

    /// Checks every field the way the API does; `Err` carries the 400 message.
    pub(super) fn validate(&self, endpoint: Endpoint) -> Result<Request<'a>, String> {
        let model = match self.model {
            None => return Err("model: Field required".to_owned()),
            Some(raw) => string(raw).ok_or("model: Input should be a valid string")?,
        };
        if model.is_empty() {
            return Err("model: String should have at least 1 character".to_owned());
        }
        let max_tokens = match (endpoint, self.max_tokens) {
            (Endpoint::CountTokens, _) => 0,
            (Endpoint::Messages, None) => return Err("max_tokens: Field required".to_owned()),
            (Endpoint::Messages, Some(raw)) => {
                let n = integer(raw).ok_or("max_tokens: Input should be a valid integer")?;
                u64::try_from(n)
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or("max_tokens: Input should be greater than or equal to 1")?
            }
        };
        let messages = self.parse_messages()?;
        let system = self.parse_system()?;
        let tools = self.parse_tools()?;
        let (tool_choice, disable_parallel_tool_use) = self.parse_tool_choice(&tools)?;
        let thinking = self.parse_thinking(endpoint, max_tokens)?;
        if thinking != Thinking::Off && matches!(tool_choice, ToolChoice::Any | ToolChoice::Tool(_))
        {
            return Err("Thinking may not be enabled when tool_choice forces tool use.".to_owned());
        }
        let stop_sequences = match self.stop_sequences.filter(|r| kind(r) != Kind::Null) {
            None => Vec::new(),
            Some(raw) => {
                let items = elements(raw).ok_or("stop_sequences: Input should be a valid list")?;
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(string(item).ok_or_else(|| {
                        format!("stop_sequences.{i}: Input should be a valid string")
                    })?);
                }
                out
            }
        };
        let stream = match self.stream.filter(|r| kind(r) != Kind::Null) {
            None => false,
            Some(raw) if kind(raw) == Kind::Bool => raw.get() == "true",
            Some(_) => return Err("stream: Input should be a valid boolean".to_owned()),
        };
        if let Some(raw) = self.metadata.filter(|r| kind(r) != Kind::Null) {
            if kind(raw) != Kind::Object {
                return Err("metadata: Input should be a valid dictionary".to_owned());
            }
        }
        self.check_sampling()?;
        Ok(Request {
            model,
            max_tokens,
            system,
            messages,
            tools,
            tool_choice,
            disable_parallel_tool_use,
            thinking,
            stop_sequences,
            stream,
        })
    }

    fn parse_messages(&self) -> Result<Vec<Message<'a>>, String> {
        let raw = self.messages.ok_or("messages: Field required")?;
        let items = elements(raw).ok_or("messages: Input should be a valid list")?;
        if items.is_empty() {
            return Err("messages: at least one message is required".to_owned());
        }
        let mut messages = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            messages.push(parse_message(i, item)?);
        }
        let last = messages.len() - 1;
        for (i, m) in messages.iter().enumerate() {
            let empty = match &m.blocks {
                None => string(m.content).is_some_and(|s| s.is_empty()),
                Some(blocks) => blocks.is_empty(),
            };
            // Only a final assistant turn may be empty: it is a prefill of nothing.
            if empty && !(i == last && m.role == Role::Assistant) {
                return Err(format!(
                    "messages.{i}: all messages must have non-empty content except for the \
                     optional final assistant message"
                ));
            }
        }
        check_tool_pairing(&messages)?;
        Ok(messages)
    }

    fn parse_system(&self) -> Result<Vec<(u64, bool)>, String> {
        let Some(raw) = self.system.filter(|r| kind(r) != Kind::Null) else {
            return Ok(Vec::new());
        };
        match kind(raw) {
            Kind::String => Ok(vec![(text::estimate_tokens(raw.get().len()), false)]),
            Kind::Array => {
                let items = elements(raw).ok_or("system: Input should be a valid list")?;
                let mut parts = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let block = parse_block(BlockPath::System(i), item)?;
                    if block.kind != "text" {
                        return Err(format!("system.{i}.type: Input should be 'text'"));
                    }
                    parts.push((block.tokens, block.cached));
                }
                Ok(parts)
            }
            _ => Err("system: Input should be a valid string or a list of text blocks".to_owned()),
        }
    }

    fn parse_tools(&self) -> Result<Vec<Tool<'a>>, String> {
        let Some(raw) = self.tools.filter(|r| kind(r) != Kind::Null) else {
            return Ok(Vec::new());
        };
        let items = elements(raw).ok_or("tools: Input should be a valid list")?;
        let mut tools: Vec<Tool<'a>> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if kind(item) != Kind::Object {
                return Err(format!("tools.{i}: Input should be a valid dictionary"));
            }
            let fields: ToolFields<'a> =
                serde_json::from_str(item.get()).map_err(|err| format!("tools.{i}: {err}"))?;
            let name = match fields.name {
                None => return Err(format!("tools.{i}.name: Field required")),
                Some(raw) => string(raw)
                    .ok_or_else(|| format!("tools.{i}.name: Input should be a valid string"))?,
            };
            // Server tools (`"type": "web_search_20250305"` and the like) have no schema.
            let custom = match fields.kind.and_then(string) {
                None => true,
                Some(t) => t == "custom",
            };
            let schema = fields.input_schema.filter(|r| kind(r) != Kind::Null);
            match schema {
                None if custom => {
                    return Err(format!("tools.{i}.custom.input_schema: Field required"))
                }
                Some(s) if kind(s) != Kind::Object => {
                    return Err(format!(
                        "tools.{i}.custom.input_schema: Input should be a valid dictionary"
                    ))
                }
                _ => {}
            }
            if tools.iter().any(|t| t.name == name) {
                return Err("tools: Tool names must be unique.".to_owned());
            }
            tools.push(Tool {
                name,
                schema,
                tokens: text::estimate_tokens(item.get().len()),
                cached: fields.cache_control.is_some_and(|c| kind(c) != Kind::Null),
            });
        }
        Ok(tools)
    }

    fn parse_tool_choice(&self, tools: &[Tool<'a>]) -> Result<(ToolChoice<'a>, bool), String> {
        let Some(raw) = self.tool_choice.filter(|r| kind(r) != Kind::Null) else {
            return Ok((ToolChoice::Auto, false));
        };
        if kind(raw) != Kind::Object {
            return Err("tool_choice: Input should be a valid dictionary".to_owned());
        }
        let fields: ToolChoiceFields<'a> =
            serde_json::from_str(raw.get()).map_err(|err| format!("tool_choice: {err}"))?;
        let disable = match fields.disable_parallel_tool_use {
            None => false,
            Some(r) if kind(r) == Kind::Bool => r.get() == "true",
            Some(r) if kind(r) == Kind::Null => false,
            Some(_) => {
                return Err(
                    "tool_choice.disable_parallel_tool_use: Input should be a valid boolean"
                        .to_owned(),
                )
            }
        };
        let tag = fields
            .kind
            .and_then(string)
            .ok_or("tool_choice.type: Field required")?;
        let choice = match &*tag {
            "auto" => ToolChoice::Auto,
            "any" => ToolChoice::Any,
            "none" => ToolChoice::None,
            "tool" => {
                let name = match fields.name {
                    None => return Err("tool_choice.tool.name: Field required".to_owned()),
                    Some(r) => {
                        string(r).ok_or("tool_choice.tool.name: Input should be a valid string")?
                    }
                };
                ToolChoice::Tool(name)
            }
            other => {
                return Err(format!(
                    "tool_choice: Input tag '{other}' found using 'type' does not match any of \
                     the expected tags: 'auto', 'any', 'tool', 'none'"
                ))
            }
        };
        if matches!(choice, ToolChoice::Any | ToolChoice::Tool(_)) && tools.is_empty() {
            return Err(
                "tool_choice: tool_choice may only be specified while providing tools".to_owned(),
            );
        }
        if let ToolChoice::Tool(name) = &choice {
            if !tools.iter().any(|t| t.name == *name) {
                return Err(format!(
                    "tool_choice.tool.name: Tool '{name}' not found in provided tools"
                ));
            }
        }
        Ok((choice, disable))
    }

    fn parse_thinking(&self, endpoint: Endpoint, max_tokens: u64) -> Result<Thinking, String> {
        let Some(raw) = self.thinking.filter(|r| kind(r) != Kind::Null) else {
            return Ok(Thinking::Off);
        };
        if kind(raw) != Kind::Object {
            return Err("thinking: Input should be a valid dictionary".to_owned());
        }
        let fields: ThinkingFields<'a> =
            serde_json::from_str(raw.get()).map_err(|err| format!("thinking: {err}"))?;
        let tag = fields
            .kind
            .and_then(string)
            .ok_or("thinking.type: Field required")?;
        match &*tag {
            "disabled" => Ok(Thinking::Off),
            "adaptive" => Ok(Thinking::Adaptive),
            "enabled" => {
                let budget = match fields.budget_tokens {
                    None => return Err("thinking.enabled.budget_tokens: Field required".to_owned()),
                    Some(r) => integer(r)
                        .ok_or("thinking.enabled.budget_tokens: Input should be a valid integer")?,
                };
                let budget = u64::try_from(budget)
                    .ok()
                    .filter(|b| *b >= MIN_THINKING_BUDGET)
                    .ok_or_else(|| {
                        format!(
                            "thinking.enabled.budget_tokens: Input should be greater than or \
                             equal to {MIN_THINKING_BUDGET}"
                        )
                    })?;
                if endpoint == Endpoint::Messages && budget >= max_tokens {
                    return Err(
                        "`max_tokens` must be greater than `thinking.budget_tokens`.".to_owned(),
                    );
                }
                Ok(Thinking::Budget(budget))
            }
            other => Err(format!(
                "thinking: Input tag '{other}' found using 'type' does not match any of the \
                 expected tags: 'enabled', 'disabled', 'adaptive'"
            )),
        }
    }

    fn check_sampling(&self) -> Result<(), String> {
        if let Some(raw) = self.temperature.filter(|r| kind(r) != Kind::Null) {
            let t = number(raw).ok_or("temperature: Input should be a valid number")?;
            if t < 0.0 {
                return Err("temperature: Input should be greater than or equal to 0".to_owned());
            }
            if t > 1.0 {
                return Err("temperature: Input should be less than or equal to 1".to_owned());
            }
        }
        if let Some(raw) = self.top_p.filter(|r| kind(r) != Kind::Null) {
            number(raw).ok_or("top_p: Input should be a valid number")?;
        }
        if let Some(raw) = self.top_k.filter(|r| kind(r) != Kind::Null) {
            integer(raw).ok_or("top_k: Input should be a valid integer")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct MessageFields<'a> {
    #[serde(borrow)]
    role: Option<&'a RawValue>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct BlockFields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    #[serde(borrow)]
    cache_control: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_use_id: Option<&'a RawValue>,
    #[serde(borrow)]
    source: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolFields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    input_schema: Option<&'a RawValue>,
    #[serde(borrow)]
    cache_control: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolChoiceFields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    disable_parallel_tool_use: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ThinkingFields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    budget_tokens: Option<&'a RawValue>,
}

fn parse_message<'a>(i: usize, raw: &'a RawValue) -> Result<Message<'a>, String> {
    if kind(raw) != Kind::Object {
        return Err(format!("messages.{i}: Input should be a valid dictionary"));
    }
    let fields: MessageFields<'a> =
        serde_json::from_str(raw.get()).map_err(|err| format!("messages.{i}: {err}"))?;
    let role = match fields.role.map(|r| (r, string(r))) {
        None => return Err(format!("messages.{i}.role: Field required")),
        Some((_, Some(r))) if r == "user" => Role::User,
        Some((_, Some(r))) if r == "assistant" => Role::Assistant,
        Some(_) => {
            return Err(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            ))
        }
    };
    let content = fields
        .content
        .ok_or_else(|| format!("messages.{i}.content: Field required"))?;
    let blocks = match kind(content) {
        Kind::String => None,
        Kind::Array => {
            let items = elements(content)
                .ok_or_else(|| format!("messages.{i}.content: Input should be a valid list"))?;
            let mut blocks = Vec::with_capacity(items.len());
            for (j, item) in items.iter().enumerate() {
                let block = parse_block(BlockPath::Message(i, j), item)?;
                match (&*block.kind, role) {
                    ("tool_use", Role::User) | ("tool_result", Role::Assistant) => {
                        return Err(format!(
                            "messages.{i}.content.{j}: `{}` blocks are not allowed in `{}` \
                             messages",
                            block.kind,
                            role.as_str()
                        ))
                    }
                    _ => blocks.push(block),
                }
            }
            Some(blocks)
        }
        _ => {
            return Err(format!(
                "messages.{i}.content: Input should be a valid string or a list of content \
                 blocks"
            ))
        }
    };
    Ok(Message {
        role,
        content,
        blocks,
    })
}

/// Where a content block sits, for error messages; formatted only when one is needed, so the
/// happy path allocates nothing for it.
#[derive(Clone, Copy, Debug)]
enum BlockPath {
    /// `system.{i}`.
    System(usize),
    /// `messages.{i}.content.{j}`.
    Message(usize, usize),
}

impl BlockPath {
    /// The top-level field the block belongs to.
    fn root(self) -> &'static str {
        match self {
            BlockPath::System(_) => "system",
            BlockPath::Message(..) => "messages",
        }
    }
}

impl std::fmt::Display for BlockPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockPath::System(i) => write!(f, "system.{i}"),
            BlockPath::Message(i, j) => write!(f, "messages.{i}.content.{j}"),
        }
    }
}

/// Validates one content block; `path` names it in error messages (`messages.0.content.1`).
fn parse_block<'a>(path: BlockPath, raw: &'a RawValue) -> Result<Block<'a>, String> {
    if kind(raw) != Kind::Object {
        return Err(format!("{path}: Input should be a valid dictionary"));
    }
    let fields: BlockFields<'a> =
        serde_json::from_str(raw.get()).map_err(|err| format!("{path}: {err}"))?;
    let block_kind = match fields.kind {
        None => return Err(format!("{path}.type: Field required")),
        Some(r) => {
            string(r).ok_or_else(|| format!("{path}.type: Input should be a valid string"))?
        }
    };
    let required = |field: Option<&'a RawValue>, name: &str, want: Kind| match field {
        None => Err(format!("{path}.{block_kind}.{name}: Field required")),
        Some(f) if kind(f) != want => Err(format!(
            "{path}.{block_kind}.{name}: Input should be a valid {}",
            match want {
                Kind::String => "string",
                Kind::Object => "dictionary",
                _ => "value",
            }
        )),
        Some(f) => Ok(f),
    };
    let mut tool_id = None;
    match &*block_kind {
        "text" => {
            let text = required(fields.text, "text", Kind::String)?;
            if text.get() == "\"\"" {
                return Err(format!(
                    "{}: text content blocks must be non-empty",
                    path.root()
                ));
            }
        }
        "image" | "document" => {
            required(fields.source, "source", Kind::Object)?;
        }
        "tool_use" => {
            tool_id = string(required(fields.id, "id", Kind::String)?);
            required(fields.name, "name", Kind::String)?;
            required(fields.input, "input", Kind::Object)?;
        }
        "tool_result" => {
            tool_id = string(required(fields.tool_use_id, "tool_use_id", Kind::String)?);
        }
        // Thinking, server-tool and newer block types pass through unchecked.
        _ => {}
    }
    Ok(Block {
        kind: block_kind,
        tokens: text::estimate_tokens(raw.get().len()),
        cached: fields.cache_control.is_some_and(|c| kind(c) != Kind::Null),
        tool_id,
    })
}

/// The API's pairing rule: every `tool_use` in an assistant turn needs a `tool_result` in the
/// user turn right after it, and every `tool_result` needs a `tool_use` right before it.
/// Consecutive messages of one role form one turn, as the API merges them.
fn check_tool_pairing(messages: &[Message<'_>]) -> Result<(), String> {
    let ids = |m: &Message<'_>, kind: &str| -> Vec<String> {
        m.blocks
            .iter()
            .flatten()
            .filter(|b| b.kind == kind)
            .filter_map(|b| b.tool_id.as_deref().map(str::to_owned))
            .collect()
    };
    // Turns as (role, first message index, last message index).
    let mut turns: Vec<(Role, usize, usize)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        match turns.last_mut() {
            Some((role, _, last)) if *role == m.role => *last = i,
            _ => turns.push((m.role, i, i)),
        }
    }
    let collect = |(_, first, last): (Role, usize, usize), kind: &str| -> Vec<String> {
        messages
            .get(first..=last)
            .unwrap_or_default()
            .iter()
            .flat_map(|m| ids(m, kind))
            .collect()
    };
    for (t, turn) in turns.iter().enumerate() {
        match turn.0 {
            Role::Assistant => {
                let uses = collect(*turn, "tool_use");
                let Some(next) = turns.get(t + 1) else {
                    continue;
                };
                let results = collect(*next, "tool_result");
                let missing: Vec<&str> = uses
                    .iter()
                    .filter(|id| !results.contains(id))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    return Err(format!(
                        "messages.{}: `tool_use` ids were found without `tool_result` blocks \
                         immediately after: {}. Each `tool_use` block must have a corresponding \
                         `tool_result` block in the next message.",
                        turn.2,
                        missing.join(", ")
                    ));
                }
            }
            Role::User => {
                let results = collect(*turn, "tool_result");
                if results.is_empty() {
                    continue;
                }
                let uses = match t.checked_sub(1).and_then(|p| turns.get(p)) {
                    Some(prev) => collect(*prev, "tool_use"),
                    None => Vec::new(),
                };
                let unexpected: Vec<&str> = results
                    .iter()
                    .filter(|id| !uses.contains(id))
                    .map(String::as_str)
                    .collect();
                if !unexpected.is_empty() {
                    return Err(format!(
                        "messages.{}.content.0: unexpected `tool_use_id` found in `tool_result` \
                         blocks: {}. Each `tool_result` block must have a corresponding \
                         `tool_use` block in the previous message.",
                        turn.1,
                        unexpected.join(", ")
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The prompt's size as the mock estimates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PromptTokens {
    /// Everything: tools, system, messages and framing.
    pub(super) total: u64,
    /// The prefix up to and including the last `cache_control` breakpoint (zero if none).
    pub(super) cacheable: u64,
}

impl Request<'_> {
    /// Estimates the prompt in the order the API caches it (tools, then system, then
    /// messages), noting where the last cache breakpoint falls.
    pub(super) fn prompt_tokens(&self) -> PromptTokens {
        let mut total = 0u64;
        let mut cacheable = 0u64;
        let mut add = |tokens: u64, cached: bool| {
            total = total.saturating_add(tokens);
            if cached {
                cacheable = total;
            }
        };
        for tool in &self.tools {
            add(tool.tokens, tool.cached);
        }
        for (tokens, cached) in &self.system {
            add(*tokens, *cached);
        }
        for m in &self.messages {
            add(MESSAGE_FRAMING_TOKENS, false);
            match &m.blocks {
                None => add(text::estimate_tokens(m.content.get().len()), false),
                Some(blocks) => {
                    for b in blocks {
                        add(b.tokens, b.cached);
                    }
                }
            }
        }
        add(PRIMING_TOKENS, false);
        PromptTokens { total, cacheable }
    }

    /// The reply's seed: a hash of the last user message, so the same question always gets
    /// the same answer.
    pub(super) fn seed(&self) -> u64 {
        let last_user = self.messages.iter().rev().find(|m| m.role == Role::User);
        let content = last_user.or(self.messages.last()).map(|m| m.content.get());
        text::fnv1a(content.unwrap_or("").as_bytes())
    }
}
