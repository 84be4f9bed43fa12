//! Streamed responses, between Anthropic's server-sent events and OpenAI's
//! `chat.completion.chunk` stream, as state machines fed one SSE `data:` payload at a time.
//!
//! Both machines do no IO: the caller splits the upstream body into SSE events, pushes each
//! event's data, and writes what comes out.
//!
//! # Anthropic events → OpenAI chunks ([`MessagesToChatStream`])
//!
//! | Anthropic event | OpenAI chunk(s) |
//! |---|---|
//! | `message_start` | `delta: {"role":"assistant","content":""}`; its message `id` is every chunk's `id` |
//! | `content_block_start` `text` / `thinking` | nothing (or a delta, if the block starts with text) |
//! | `content_block_start` `tool_use` | `tool_calls: [{index, id, type: "function", function: {name, arguments: ""}}]`, `index` counting tool blocks from 0 |
//! | `text_delta` | `delta: {"content": text}` |
//! | `thinking_delta` | `delta: {"reasoning_content": thinking}` |
//! | `input_json_delta` | `tool_calls: [{index, function: {arguments: partial_json}}]` |
//! | `message_delta` with a `stop_reason` | `delta: {}` with `finish_reason` (once) |
//! | `message_stop` | with `include_usage`, a last chunk with `choices: []` and the usage; then [`StreamStep::Done`] |
//! | `error` | [`StreamStep::Error`] with OpenAI's error body |
//! | `signature_delta`, `content_block_stop`, `ping`, new event and delta types | nothing |
//!
//! With `include_usage` every other chunk carries `"usage": null`, as OpenAI's do. The usage
//! adds `message_start`'s counts and `message_delta`'s (which override where present).
//! Tool argument fragments and the JSON tool's fragments have insignificant whitespace removed,
//! so that they concatenate to exactly the `arguments` (or `content`) the non-streamed
//! translation gives. With `json_tool`, fragments of the [`JSON_TOOL_NAME`] tool are `content`
//! deltas and a `tool_use` stop finishes with `stop` (unless real tool calls were streamed).
//!
//! # OpenAI chunks → Anthropic events ([`ChatToMessagesStream`])
//!
//! | OpenAI chunk | Anthropic events |
//! |---|---|
//! | the first chunk | `message_start` (usage zero unless the chunk has some) |
//! | `reasoning_content` (or `reasoning`) | a `thinking` block (`thinking_delta`s) |
//! | `content` (or `refusal`) | a `text` block (`text_delta`s) |
//! | a `tool_calls` entry with a new index | a `tool_use` block with `input: {}` (id `call_<index>` if the upstream gave none), then `input_json_delta`s of the argument fragments |
//! | `finish_reason`, `usage` | remembered |
//! | `[DONE]` | `content_block_stop` of the open block, `message_delta` (stop reason, usage), `message_stop`, then [`StreamStep::Done`] |
//! | `{"error": {...}}` | [`StreamStep::Error`] with Anthropic's error body (event name `error`) |
//!
//! A change of block kind closes the open block first, as Anthropic allows one open block at a
//! time. Like Anthropic's own streams, one `ping` follows the first `content_block_start`.
//! A stream without a `finish_reason` still closes cleanly at `[DONE]` (`end_turn`, or `tool_use`
//! when tools were called); a caller whose upstream ended without `[DONE]` may push `[DONE]` to
//! close it. Chunks for choices other than index 0 are ignored.
//!
//! # Both
//!
//! Malformed JSON, or a known event missing a field it needs, is a [`TranslateError`]. Input
//! after [`StreamStep::Done`] or [`StreamStep::Error`] is ignored. The terminal error payload is
//! *not* appended to `out`: the caller writes it (for an Anthropic client, as `event: error`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::response::{
    anthropic_error_to_openai, chat_finish_reason, messages_stop_reason, openai_error_to_anthropic,
    to_json, tool_input, tool_use_id, usage_from_anthropic, AnthropicUsage, AnthropicUsageOut,
    BlockIn, BlockOut, JsonMinifier, UsageOut,
};
use super::{TranslateError, JSON_TOOL_NAME};
use crate::chunk::{ChunkWriter, DeltaOut, FunctionDeltaOut, ToolCallDeltaOut};
use crate::openai::{ErrorBody, ErrorObject, Usage};

/// What the caller does after a [`MessagesToChatStream::push`] or [`ChatToMessagesStream::push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStep {
    /// Keep reading the upstream.
    Continue,
    /// The message is complete and everything has been emitted. An OpenAI client then gets
    /// `data: [DONE]`; an Anthropic client needs nothing more.
    Done,
    /// The upstream reported an error: the payload is the error body in the client's format,
    /// to send as the last event (OpenAI: a `data:` line; Anthropic: `event: error`).
    Error(Vec<u8>),
}

// ---------------------------------------------------------------------------------------------
// Anthropic events -> OpenAI chunks
// ---------------------------------------------------------------------------------------------

/// Translates Anthropic Messages stream events into OpenAI `chat.completion.chunk` payloads.
#[derive(Debug)]
pub struct MessagesToChatStream {
    model: String,
    created: u64,
    include_usage: bool,
    json_tool: bool,
    id: String,
    /// Anthropic block index → what the block is, for `input_json_delta`s.
    blocks: Vec<(u64, StreamBlock)>,
    next_tool_index: u32,
    usage: Option<AnthropicUsage>,
    finished: bool,
    ended: bool,
    /// Writes the chunks; made once the message id is known.
    writer: Option<ChunkWriter>,
}

#[derive(Debug)]
enum StreamBlock {
    Tool { index: u32, minifier: JsonMinifier },
    JsonTool { minifier: JsonMinifier },
}

/// An Anthropic stream event, read in one pass: the members of every event type are optional
/// here and checked once `type` says which ones must be present. (Reading members raw first
/// and parsing them again doubled the cost of the hundreds of small deltas in a stream.)
#[derive(Deserialize)]
struct EventIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    message: Option<StartMessageIn<'a>>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    content_block: Option<BlockIn<'a>>,
    #[serde(default, borrow)]
    delta: Option<DeltaIn<'a>>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct StartMessageIn<'a> {
    #[serde(default, borrow)]
    id: Cow<'a, str>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

/// A `content_block_delta`'s delta or a `message_delta`'s: the union of their members.
#[derive(Deserialize)]
struct DeltaIn<'a> {
    #[serde(default, rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    stop_reason: Option<Cow<'a, str>>,
}

/// The event types the translator reads; any other type is skipped, whatever its members.
const KNOWN_EVENTS: [&str; 5] = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "message_delta",
    "message_stop",
];

/// Explains an event the one-pass read rejected: events of unknown types are skipped
/// (Anthropic adds types, and their members may look like anything), and for known types the
/// error names the member at fault.
fn diagnose(data: &[u8], err: &serde_json::Error) -> Result<StreamStep, TranslateError> {
    let Ok(serde_json::Value::Object(members)) = serde_json::from_slice(data) else {
        return Err(TranslateError::body(format!(
            "upstream stream event is not valid JSON: {err}"
        )));
    };
    let Some(kind) = members.get("type").and_then(|t| t.as_str()) else {
        return Err(TranslateError::field(
            "type",
            "the stream event has no type",
        ));
    };
    if !KNOWN_EVENTS.contains(&kind) {
        return Ok(StreamStep::Continue);
    }
    fn reads_as<'a, T: Deserialize<'a>>(text: &'a str) -> bool {
        serde_json::from_str::<T>(text).is_ok()
    }
    let field = members.iter().find_map(|(name, value)| {
        let text = value.to_string();
        let ok = match name.as_str() {
            "index" => reads_as::<u64>(&text),
            "message" => reads_as::<StartMessageIn<'_>>(&text),
            "content_block" => reads_as::<BlockIn<'_>>(&text),
            "delta" => reads_as::<DeltaIn<'_>>(&text),
            "usage" => reads_as::<Option<AnthropicUsage>>(&text),
            _ => true,
        };
        (!ok).then(|| name.clone())
    });
    Err(match field {
        Some(f) => TranslateError::field(f, format!("invalid in the stream event: {err}")),
        None => TranslateError::body(format!("upstream stream event is not valid: {err}")),
    })
}

/// Parses `data` after checking it is UTF-8 in one go: `serde_json` then skips its
/// string-by-string check, which is a measurable share of translating small stream events.
pub(crate) fn parse_utf8<'a, T: Deserialize<'a>>(data: &'a [u8]) -> Result<T, serde_json::Error> {
    match std::str::from_utf8(data) {
        Ok(text) => serde_json::from_str(text),
        // Let the byte parser report where the bad byte is.
        Err(_) => serde_json::from_slice(data),
    }
}

/// A member the event's type requires.
fn required<T>(value: Option<T>, field: &str) -> Result<T, TranslateError> {
    value.ok_or_else(|| TranslateError::field(field, "missing from the stream event"))
}

impl MessagesToChatStream {
    /// A translator for one response. `client_model` is the model name to report, `created` the
    /// Unix time in seconds, `include_usage` the client's `stream_options.include_usage`, and
    /// `json_tool` whether the request used the [`JSON_TOOL_NAME`] tool for `response_format`.
    pub fn new(client_model: &str, created: u64, include_usage: bool, json_tool: bool) -> Self {
        Self {
            model: client_model.to_owned(),
            created,
            include_usage,
            json_tool,
            id: String::new(),
            blocks: Vec::new(),
            next_tool_index: 0,
            usage: None,
            finished: false,
            ended: false,
            writer: None,
        }
    }

    /// Feeds the JSON of one event's `data:` line (its `type` says which event) and appends the
    /// complete chunk payloads it yields (JSON without the `data: ` prefix) to `out`.
    pub fn push(
        &mut self,
        data: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<StreamStep, TranslateError> {
        if self.ended {
            return Ok(StreamStep::Continue);
        }
        let event: EventIn<'_> = match parse_utf8(data) {
            Ok(e) => e,
            Err(e) => return diagnose(data, &e),
        };
        match event.kind.as_ref() {
            "message_start" => {
                let msg = required(event.message, "message")?;
                self.id = msg.id.into_owned();
                self.writer = None;
                if let Some(u) = msg.usage {
                    self.merge_usage(&u);
                }
                let delta = DeltaOut {
                    role: Some("assistant"),
                    content: Some(""),
                    ..DeltaOut::default()
                };
                out.push(self.chunk(delta, None)?);
            }
            "content_block_start" => {
                let index = required(event.index, "index")?;
                let block = required(event.content_block, "content_block")?;
                self.block_start(index, &block, out)?;
            }
            "content_block_delta" => {
                let index = required(event.index, "index")?;
                let delta = required(event.delta, "delta")?;
                self.block_delta(index, &delta, out)?;
            }
            "message_delta" => {
                if let Some(u) = event.usage {
                    self.merge_usage(&u);
                }
                if let Some(stop) = event.delta.as_ref().and_then(|d| d.stop_reason.as_deref()) {
                    self.finish(stop, out)?;
                }
            }
            "message_stop" => {
                self.finish("end_turn", out)?;
                if self.include_usage {
                    let usage = self.usage().unwrap_or_default();
                    out.push(self.writer().usage_chunk(&UsageOut::from(&usage))?);
                }
                self.ended = true;
                return Ok(StreamStep::Done);
            }
            "error" => {
                self.ended = true;
                let body = anthropic_error_to_openai(data).unwrap_or_else(|| ErrorBody {
                    error: ErrorObject {
                        message: "the upstream stream reported an error".to_owned(),
                        kind: "api_error".to_owned(),
                        param: None,
                        code: Some("api_error".to_owned()),
                    },
                });
                return Ok(StreamStep::Error(to_json(&body)?));
            }
            // ping, content_block_stop and event types added later.
            _ => {}
        }
        Ok(StreamStep::Continue)
    }

    /// The usage reported so far (input from `message_start`, output from `message_delta`), or
    /// `None` before any.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(usage_from_anthropic)
    }

    fn merge_usage(&mut self, later: &AnthropicUsage) {
        self.usage
            .get_or_insert_with(AnthropicUsage::default)
            .merge(later);
    }

    fn block_start(
        &mut self,
        index: u64,
        block: &BlockIn<'_>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), TranslateError> {
        match block.kind.as_ref() {
            "text" => {
                if let Some(text) = block.text.as_deref().filter(|t| !t.is_empty()) {
                    let delta = DeltaOut {
                        content: Some(text),
                        ..DeltaOut::default()
                    };
                    out.push(self.chunk(delta, None)?);
                }
            }
            "thinking" => {
                if let Some(thinking) = block.thinking.as_deref().filter(|t| !t.is_empty()) {
                    let delta = DeltaOut {
                        reasoning_content: Some(thinking),
                        ..DeltaOut::default()
                    };
                    out.push(self.chunk(delta, None)?);
                }
            }
            "tool_use" => {
                let name = block.name.as_deref().unwrap_or("");
                if self.json_tool && name == JSON_TOOL_NAME {
                    self.set_block(
                        index,
                        StreamBlock::JsonTool {
                            minifier: JsonMinifier::default(),
                        },
                    );
                } else {
                    let tool_index = self.next_tool_index;
                    self.next_tool_index += 1;
                    self.set_block(
                        index,
                        StreamBlock::Tool {
                            index: tool_index,
                            minifier: JsonMinifier::default(),
                        },
                    );
                    let delta = DeltaOut {
                        tool_calls: Some([ToolCallDeltaOut {
                            index: tool_index,
                            id: Some(block.id.as_deref().unwrap_or("")),
                            kind: Some("function"),
                            function: FunctionDeltaOut {
                                name: Some(name),
                                arguments: "",
                            },
                        }]),
                        ..DeltaOut::default()
                    };
                    out.push(self.chunk(delta, None)?);
                }
            }
            // redacted_thinking, server tool blocks and block types added later.
            _ => {}
        }
        Ok(())
    }

    fn set_block(&mut self, index: u64, block: StreamBlock) {
        match self.blocks.iter_mut().find(|(i, _)| *i == index) {
            Some(slot) => slot.1 = block,
            None => self.blocks.push((index, block)),
        }
    }

    fn block_delta(
        &mut self,
        index: u64,
        delta: &DeltaIn<'_>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), TranslateError> {
        let mut piece = DeltaOut::default();
        let compact;
        match delta.kind.as_deref().unwrap_or_default() {
            "text_delta" => {
                piece.content = Some(delta.text.as_deref().unwrap_or(""));
            }
            "thinking_delta" => {
                piece.reasoning_content = Some(delta.thinking.as_deref().unwrap_or(""));
            }
            "input_json_delta" => {
                let fragment = delta.partial_json.as_deref().unwrap_or("");
                let Some((_, block)) = self.blocks.iter_mut().find(|(i, _)| *i == index) else {
                    // Input of a block we do not relay (a server tool's).
                    return Ok(());
                };
                let mut text = String::with_capacity(fragment.len());
                match block {
                    StreamBlock::Tool { index, minifier } => {
                        minifier.push(fragment, &mut text);
                        compact = text;
                        piece.tool_calls = Some([ToolCallDeltaOut {
                            index: *index,
                            id: None,
                            kind: None,
                            function: FunctionDeltaOut {
                                name: None,
                                arguments: &compact,
                            },
                        }]);
                    }
                    StreamBlock::JsonTool { minifier } => {
                        minifier.push(fragment, &mut text);
                        compact = text;
                        piece.content = Some(&compact);
                    }
                }
                if compact.is_empty() {
                    return Ok(());
                }
            }
            // signature_delta, citations_delta and delta types added later.
            _ => return Ok(()),
        }
        if piece.content == Some("") || piece.reasoning_content == Some("") {
            return Ok(());
        }
        out.push(self.chunk(piece, None)?);
        Ok(())
    }

    /// Emits the finishing chunk, once.
    fn finish(
        &mut self,
        anthropic_stop: &str,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), TranslateError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let reason = chat_finish_reason(anthropic_stop, self.next_tool_index > 0);
        out.push(self.chunk(DeltaOut::default(), Some(reason))?);
        Ok(())
    }

    /// The chunk writer for this message, made on first use.
    fn writer(&mut self) -> &ChunkWriter {
        let (id, model, created, usage) = (&self.id, &self.model, self.created, self.include_usage);
        self.writer
            .get_or_insert_with(|| ChunkWriter::new(id, model, created, usage))
    }

    fn chunk(
        &mut self,
        delta: DeltaOut<'_>,
        finish_reason: Option<&'static str>,
    ) -> Result<Vec<u8>, TranslateError> {
        self.writer().chunk(0, &delta, finish_reason)
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAI chunks -> Anthropic events
// ---------------------------------------------------------------------------------------------

/// Translates OpenAI `chat.completion.chunk` payloads into Anthropic Messages stream events.
#[derive(Debug)]
pub struct ChatToMessagesStream {
    model: String,
    started: bool,
    pinged: bool,
    ended: bool,
    open: Option<OpenBlock>,
    next_block: u32,
    /// OpenAI tool call indexes already given a block, in order.
    tools_seen: Vec<u32>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

#[derive(Debug)]
struct OpenBlock {
    index: u32,
    kind: OpenKind,
}

#[derive(Debug, PartialEq, Eq)]
enum OpenKind {
    Text,
    Thinking,
    Tool { openai_index: u32, id: String },
}

#[derive(Deserialize)]
struct ChunkIn<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Option<Vec<ChunkChoiceIn<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChunkChoiceIn<'a> {
    #[serde(default)]
    index: u32,
    #[serde(default, borrow)]
    delta: Option<ChunkDeltaIn<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChunkDeltaIn<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCallChunkIn<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallChunkIn<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<FunctionChunkIn<'a>>,
}

#[derive(Deserialize)]
struct FunctionChunkIn<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EventOut<'a> {
    MessageStart {
        message: MessageStartOut<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: BlockOut<'a>,
    },
    Ping,
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDeltaOut,
        usage: AnthropicUsageOut,
    },
    MessageStop,
}

impl EventOut<'_> {
    fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::Ping => "ping",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
        }
    }
}

#[derive(Serialize)]
struct MessageStartOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: (),
    stop_sequence: (),
    usage: AnthropicUsageOut,
}

#[derive(Serialize)]
struct MessageDeltaOut {
    stop_reason: &'static str,
    stop_sequence: (),
}

type EventSink = Vec<(&'static str, Vec<u8>)>;

fn emit(event: &EventOut<'_>, out: &mut EventSink) -> Result<(), TranslateError> {
    out.push((event.name(), to_json(event)?));
    Ok(())
}

/// Appends a `content_block_delta` event: `{"type":"content_block_delta","index":..,
/// "delta":{"type":<kind>,<field>:<value>}}`. Written by hand rather than through
/// [`EventOut`] because a stream is mostly these, and this is several times cheaper.
fn emit_delta(
    index: u32,
    kind: &str,
    field: &str,
    value: &str,
    out: &mut EventSink,
) -> Result<(), TranslateError> {
    let mut json = Vec::with_capacity(64 + value.len());
    json.extend_from_slice(br#"{"type":"content_block_delta","index":"#);
    json.extend_from_slice(index.to_string().as_bytes());
    json.extend_from_slice(br#","delta":{"type":""#);
    json.extend_from_slice(kind.as_bytes());
    json.extend_from_slice(br#"",""#);
    json.extend_from_slice(field.as_bytes());
    json.extend_from_slice(br#"":"#);
    serde_json::to_writer(&mut json, value)
        .map_err(|e| TranslateError::body(format!("serialising: {e}")))?;
    json.extend_from_slice(b"}}");
    out.push(("content_block_delta", json));
    Ok(())
}

impl ChatToMessagesStream {
    /// A translator for one response, reporting `client_model` as the model.
    pub fn new(client_model: &str) -> Self {
        Self {
            model: client_model.to_owned(),
            started: false,
            pinged: false,
            ended: false,
            open: None,
            next_block: 0,
            tools_seen: Vec::new(),
            finish_reason: None,
            usage: None,
        }
    }

    /// Feeds one `data:` payload (a chunk's JSON, or `[DONE]`) and appends the Anthropic events
    /// it yields, as (event name, data JSON) pairs, to `out`.
    pub fn push(
        &mut self,
        data: &[u8],
        out: &mut Vec<(&'static str, Vec<u8>)>,
    ) -> Result<StreamStep, TranslateError> {
        if self.ended {
            return Ok(StreamStep::Continue);
        }
        if data.trim_ascii() == b"[DONE]" {
            self.ensure_started("", out)?;
            self.close_block(out)?;
            let has_tools = !self.tools_seen.is_empty();
            let usage = self.usage.unwrap_or_default();
            emit(
                &EventOut::MessageDelta {
                    delta: MessageDeltaOut {
                        stop_reason: messages_stop_reason(self.finish_reason.as_deref(), has_tools),
                        stop_sequence: (),
                    },
                    usage: AnthropicUsageOut::from(&usage),
                },
                out,
            )?;
            emit(&EventOut::MessageStop, out)?;
            self.ended = true;
            return Ok(StreamStep::Done);
        }
        let chunk: ChunkIn<'_> = parse_utf8(data)
            .map_err(|e| TranslateError::body(format!("upstream chunk is not valid JSON: {e}")))?;
        if chunk.error.is_some_and(|e| e.get() != "null") {
            self.ended = true;
            return Ok(StreamStep::Error(openai_error_to_anthropic(200, data)));
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        self.ensure_started(chunk.id.as_deref().unwrap_or(""), out)?;
        for choice in chunk.choices.iter().flatten().filter(|c| c.index == 0) {
            if let Some(delta) = &choice.delta {
                self.delta(delta, out)?;
            }
            if let Some(reason) = &choice.finish_reason {
                self.finish_reason = Some(reason.clone().into_owned());
            }
        }
        Ok(StreamStep::Continue)
    }

    /// The usage the upstream reported (its `include_usage` chunk), or `None` before it.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.map(|mut u| {
            if u.total_tokens == 0 {
                u.total_tokens = u.prompt_tokens.saturating_add(u.completion_tokens);
            }
            u
        })
    }

    fn ensure_started(&mut self, id: &str, out: &mut EventSink) -> Result<(), TranslateError> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        let usage = self.usage.unwrap_or_default();
        emit(
            &EventOut::MessageStart {
                message: MessageStartOut {
                    id,
                    kind: "message",
                    role: "assistant",
                    model: &self.model,
                    content: [],
                    stop_reason: (),
                    stop_sequence: (),
                    usage: AnthropicUsageOut::from(&usage),
                },
            },
            out,
        )
    }

    fn delta(
        &mut self,
        delta: &ChunkDeltaIn<'_>,
        out: &mut EventSink,
    ) -> Result<(), TranslateError> {
        let reasoning = delta
            .reasoning_content
            .as_deref()
            .or(delta.reasoning.as_deref());
        if let Some(thinking) = reasoning.filter(|t| !t.is_empty()) {
            let index = self.open_block(OpenKind::Thinking, out)?;
            emit_delta(index, "thinking_delta", "thinking", thinking, out)?;
        }
        for text in [&delta.content, &delta.refusal].into_iter().flatten() {
            if text.is_empty() {
                continue;
            }
            let index = self.open_block(OpenKind::Text, out)?;
            emit_delta(index, "text_delta", "text", text, out)?;
        }
        for call in delta.tool_calls.iter().flatten() {
            self.tool_call(call, out)?;
        }
        Ok(())
    }

    fn tool_call(
        &mut self,
        call: &ToolCallChunkIn<'_>,
        out: &mut EventSink,
    ) -> Result<(), TranslateError> {
        let open_tool = match &self.open {
            Some(OpenBlock {
                kind: OpenKind::Tool { openai_index, id },
                ..
            }) => Some((*openai_index, id.as_str())),
            _ => None,
        };
        // Servers that leave out `index` tell calls apart by `id` only.
        let openai_index = match (call.index, open_tool) {
            (Some(i), _) => i,
            (None, Some((i, open_id))) if call.id.as_deref().is_none_or(|id| id == open_id) => i,
            (None, _) => self
                .tools_seen
                .iter()
                .max()
                .map_or(0, |m| m.saturating_add(1)),
        };
        let block = if open_tool.is_some_and(|(i, _)| i == openai_index) {
            self.open.as_ref().map_or(0, |b| b.index)
        } else if self.tools_seen.contains(&openai_index) {
            return Err(TranslateError::field(
                format!("choices[0].delta.tool_calls[{openai_index}]"),
                "arguments for a tool call that another block already followed cannot be \
                 expressed in Anthropic's stream",
            ));
        } else {
            self.tools_seen.push(openai_index);
            let id = tool_use_id(call.id.as_deref(), openai_index as usize).into_owned();
            let name = call
                .function
                .as_ref()
                .and_then(|f| f.name.as_deref())
                .unwrap_or("");
            self.close_block(out)?;
            let index = self.next_block;
            self.next_block += 1;
            emit(
                &EventOut::ContentBlockStart {
                    index,
                    content_block: BlockOut::ToolUse {
                        id: Cow::Borrowed(&id),
                        name,
                        input: tool_input("")?,
                    },
                },
                out,
            )?;
            self.open = Some(OpenBlock {
                index,
                kind: OpenKind::Tool { openai_index, id },
            });
            self.ping_once(out)?;
            index
        };
        let arguments = call
            .function
            .as_ref()
            .and_then(|f| f.arguments.as_deref())
            .unwrap_or("");
        if !arguments.is_empty() {
            emit_delta(block, "input_json_delta", "partial_json", arguments, out)?;
        }
        Ok(())
    }

    /// Returns the index of the open block of `kind`, opening one (and closing any other) first.
    fn open_block(&mut self, kind: OpenKind, out: &mut EventSink) -> Result<u32, TranslateError> {
        if let Some(open) = &self.open {
            if open.kind == kind {
                return Ok(open.index);
            }
        }
        self.close_block(out)?;
        let index = self.next_block;
        self.next_block += 1;
        let content_block = match kind {
            OpenKind::Thinking => BlockOut::Thinking {
                thinking: "",
                signature: "",
            },
            _ => BlockOut::Text { text: "" },
        };
        emit(
            &EventOut::ContentBlockStart {
                index,
                content_block,
            },
            out,
        )?;
        self.open = Some(OpenBlock { index, kind });
        self.ping_once(out)?;
        Ok(index)
    }

    fn close_block(&mut self, out: &mut EventSink) -> Result<(), TranslateError> {
        if let Some(open) = self.open.take() {
            emit(&EventOut::ContentBlockStop { index: open.index }, out)?;
        }
        Ok(())
    }

    fn ping_once(&mut self, out: &mut EventSink) -> Result<(), TranslateError> {
        if !self.pinged {
            self.pinged = true;
            emit(&EventOut::Ping, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
