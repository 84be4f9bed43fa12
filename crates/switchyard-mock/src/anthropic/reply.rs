//! What the mock answers: content blocks, stop reason and usage for a validated request.
//!
//! Everything is a pure function of the request and the knobs (ids aside), so that the
//! streamed and non-streamed forms of one request carry the same content and tests can
//! compare them.

use serde::Serialize;
use serde_json::{Map, Value};

use super::request::{Echoed, Request, Role, Thinking, ToolChoice};
use super::schema;
use crate::knobs::Knobs;
use crate::openai::EchoHeaders;
use crate::text;

/// Most `tool_use` blocks one reply carries, whatever `parallel_tool_calls` asks for.
const MAX_TOOL_CALLS: u32 = 64;
/// Most words one reply carries, whatever `words` asks for; bounds the work per request.
const MAX_WORDS: u32 = 1 << 20;
/// Tokens charged per tool call beyond its input (the block's id and name).
const TOOL_CALL_OVERHEAD_TOKENS: u64 = 5;
/// Keeps the thinking text's seed apart from the answer's.
const THINKING_SEED: u64 = 0x7468_696e_6b69_6e67;
/// Length of the fake thinking signature before base64.
const SIGNATURE_BYTES: usize = 96;

/// One generated content block.
pub(super) enum Block {
    Thinking {
        thinking: String,
        signature: String,
    },
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

/// The generated answer.
pub(super) struct Reply {
    pub(super) blocks: Vec<Block>,
    pub(super) stop_reason: &'static str,
    pub(super) stop_sequence: Option<String>,
    pub(super) output_tokens: u64,
    /// Whether the text block is the echo description, which streams as one piece.
    pub(super) echo: bool,
}

/// The `usage` object, in the API's field order.
#[derive(Clone, Copy, Debug, Serialize)]
pub(super) struct Usage {
    pub(super) input_tokens: u64,
    pub(super) cache_creation_input_tokens: u64,
    pub(super) cache_read_input_tokens: u64,
    pub(super) output_tokens: u64,
}

impl Usage {
    /// Splits the prompt estimate the way prompt caching reports it: tokens up to the last
    /// `cache_control` breakpoint are written to the cache (less whatever the
    /// `cache_read_tokens` knob says was already there and read instead); the rest is plain
    /// input.
    pub(super) fn new(req: &Request<'_>, knobs: &Knobs, output_tokens: u64) -> Self {
        let prompt = req.prompt_tokens();
        let read = knobs.cache_read_tokens.unwrap_or(0);
        Usage {
            input_tokens: prompt.total.saturating_sub(prompt.cacheable),
            cache_creation_input_tokens: prompt.cacheable.saturating_sub(read),
            cache_read_input_tokens: read,
            output_tokens,
        }
    }

    /// Every token the request cost, for the rate-limit window.
    pub(super) fn total(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.cache_creation_input_tokens)
            .saturating_add(self.cache_read_input_tokens)
            .saturating_add(self.output_tokens)
    }
}

/// Generates the reply: an optional thinking block, then the echo, tool calls or text.
pub(super) fn generate(req: &Request<'_>, knobs: &Knobs, echo: Option<String>) -> Reply {
    let seed = req.seed();
    let mut blocks = Vec::with_capacity(2);
    let mut output_tokens = 0u64;
    let mut thinking_words = 0u32;
    if req.thinking != Thinking::Off {
        let think_seed = seed ^ THINKING_SEED;
        thinking_words = text::default_word_count(think_seed);
        // Thinking stays inside its budget and leaves at least one token of max_tokens for
        // the answer (validation keeps an explicit budget below max_tokens already).
        let cap = match req.thinking {
            Thinking::Budget(budget) => budget.min(req.max_tokens.saturating_sub(1)),
            _ => req.max_tokens.saturating_sub(1),
        };
        thinking_words = thinking_words.min(u32::try_from(cap).unwrap_or(u32::MAX));
        output_tokens += u64::from(thinking_words);
        blocks.push(Block::Thinking {
            thinking: text::fake_text(think_seed, thinking_words),
            signature: signature(think_seed),
        });
    }

    if let Some(echo) = echo {
        output_tokens += text::estimate_tokens(echo.len());
        blocks.push(Block::Text { text: echo });
        return Reply {
            blocks,
            stop_reason: "end_turn",
            stop_sequence: None,
            output_tokens,
            echo: true,
        };
    }

    let calls = tool_calls(req, knobs);
    if calls > 0 {
        let tools = &req.tools;
        let start = match &req.tool_choice {
            ToolChoice::Tool(name) => tools.iter().position(|t| t.name == *name).unwrap_or(0),
            _ => 0,
        };
        for i in 0..calls as usize {
            let call_seed = seed.wrapping_add((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (name, input) = match tools.get((start + i) % tools.len().max(1)) {
                Some(tool) => {
                    let schema: Value = tool
                        .schema
                        .and_then(|s| serde_json::from_str(s.get()).ok())
                        .unwrap_or(Value::Null);
                    (
                        tool.name.to_string(),
                        schema::fake_input(&schema, call_seed),
                    )
                }
                None => ("mock_tool".to_owned(), Value::Object(Map::new())),
            };
            let input_len = serde_json::to_string(&input).map_or(2, |s| s.len());
            output_tokens += text::estimate_tokens(input_len) + TOOL_CALL_OVERHEAD_TOKENS;
            blocks.push(Block::ToolUse {
                id: text::random_id("toolu_01", 22),
                name,
                input,
            });
        }
        return Reply {
            blocks,
            stop_reason: "tool_use",
            stop_sequence: None,
            output_tokens,
            echo: false,
        };
    }

    let wanted = knobs
        .words
        .unwrap_or_else(|| text::default_word_count(seed))
        .min(MAX_WORDS);
    // Thinking counts against max_tokens too; validation keeps the budget below it.
    let room = req
        .max_tokens
        .saturating_sub(u64::from(thinking_words))
        .min(u64::from(u32::MAX));
    let room = u32::try_from(room).unwrap_or(u32::MAX);
    let mut stop_reason = "end_turn";
    let mut stop_sequence = None;
    let mut text = text::fake_text(seed, wanted);
    if wanted > room {
        // Cut mid-sentence, as a model that runs out of tokens does.
        let cut = match (room as usize).checked_sub(1) {
            None => 0,
            Some(spaces) => text
                .match_indices(' ')
                .nth(spaces)
                .map_or(text.len(), |(i, _)| i),
        };
        text.truncate(cut);
        stop_reason = "max_tokens";
    }
    // The earliest stop sequence wins, even over max_tokens, since it came first.
    let first_stop = req
        .stop_sequences
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(&**s).map(|at| (at, s)))
        .min_by_key(|(at, _)| *at);
    if let Some((at, seq)) = first_stop {
        text.truncate(at);
        stop_reason = "stop_sequence";
        stop_sequence = Some(seq.to_string());
    }
    output_tokens += text.split(' ').filter(|w| !w.is_empty()).count() as u64;
    blocks.push(Block::Text { text });
    Reply {
        blocks,
        stop_reason,
        stop_sequence,
        output_tokens,
        echo: false,
    }
}

/// How many tool calls to make: forced by `tool_choice` (`any` or a named tool) or by the
/// `tool_call`/`parallel_tool_calls` knobs; `disable_parallel_tool_use` caps it at one.
fn tool_calls(req: &Request<'_>, knobs: &Knobs) -> u32 {
    let forced = matches!(req.tool_choice, ToolChoice::Any | ToolChoice::Tool(_));
    let parallel = knobs.parallel_tool_calls.unwrap_or(0);
    if !forced && !knobs.tool_call() && parallel == 0 {
        return 0;
    }
    let n = parallel.clamp(1, MAX_TOOL_CALLS);
    if req.disable_parallel_tool_use {
        1
    } else {
        n
    }
}

/// A fake thinking signature: opaque base64, as the real one is.
fn signature(seed: u64) -> String {
    let mut rng = text::Rng::new(seed);
    let bytes: Vec<u8> = (0..SIGNATURE_BYTES / 8)
        .flat_map(|_| rng.next_u64().to_le_bytes())
        .collect();
    text::base64(&bytes)
}

// === echo ===

#[derive(Serialize)]
struct Echo<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    anthropic_version: Option<&'a str>,
    anthropic_beta: Option<&'a str>,
    headers: EchoHeaders<'a>,
    model: &'a str,
    max_tokens: u64,
    stream: bool,
    system: Value,
    messages: Vec<EchoMessage<'a>>,
    tools: Vec<&'a str>,
    tool_choice: Value,
    stop_sequences: Value,
    metadata: Value,
    thinking: Value,
    body: Value,
}

#[derive(Serialize)]
struct EchoMessage<'a> {
    role: &'static str,
    /// `"string"` for plain-text content, `"blocks"` for an array of blocks.
    content: &'static str,
    /// The block types in order; empty for plain-text content.
    blocks: Vec<&'a str>,
}

/// The compact JSON description of the request that the `echo` knob replies with: the
/// fields a gateway test usually asserts on, summarised, plus headers and the whole body.
pub(super) fn echo_json(
    parts: &http::request::Parts,
    body: &[u8],
    req: &Request<'_>,
    raw: &Echoed<'_>,
) -> String {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    // Parsed rather than copied raw, so the description stays compact whatever the client's
    // formatting was.
    let value = |r: Option<&serde_json::value::RawValue>| -> Value {
        r.and_then(|r| serde_json::from_str(r.get()).ok())
            .unwrap_or(Value::Null)
    };
    let echo = Echo {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        anthropic_version: header("anthropic-version"),
        anthropic_beta: header("anthropic-beta"),
        headers: EchoHeaders(&parts.headers),
        model: &req.model,
        max_tokens: req.max_tokens,
        stream: req.stream,
        system: value(raw.system),
        messages: req
            .messages
            .iter()
            .map(|m| EchoMessage {
                role: match m.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                },
                content: if m.blocks.is_some() {
                    "blocks"
                } else {
                    "string"
                },
                blocks: m.blocks.iter().flatten().map(|b| &*b.kind).collect(),
            })
            .collect(),
        tools: req.tools.iter().map(|t| &*t.name).collect(),
        tool_choice: value(raw.tool_choice),
        stop_sequences: value(raw.stop_sequences),
        metadata: value(raw.metadata),
        thinking: value(raw.thinking),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
    };
    serde_json::to_string(&echo).unwrap_or_default()
}
