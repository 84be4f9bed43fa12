//! Writing a reply as a Message object or as the Messages streaming event sequence.
//!
//! Field order follows Anthropic's documentation, so a client comparing bytes sees what it
//! would see from the real service. A stream is `message_start`, then per content block a
//! `content_block_start`, its deltas and a `content_block_stop` (with one `ping` after the
//! first block starts), then `message_delta` and `message_stop`; each event is framed as
//! `event: <name>\ndata: <json>\n\n`.

use serde::Serialize;
use serde_json::Value;

use super::reply::{Block, Reply, Usage};
use crate::sse::EventBuf;
use crate::text::push_json_str;

/// Characters per `input_json_delta` fragment; small, so tool inputs arrive in several
/// pieces, as they do from the real API.
const JSON_FRAGMENT_CHARS: usize = 10;

/// The ping event's payload, byte for byte as the API sends it (with a space after the colon,
/// unlike every other event).
const PING: &[u8] = b"{\"type\": \"ping\"}";

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<BlockOut<'a>>,
    stop_reason: Option<&'a str>,
    stop_sequence: Option<&'a str>,
    usage: Usage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockOut<'a> {
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
}

impl<'a> From<&'a Block> for BlockOut<'a> {
    fn from(block: &'a Block) -> Self {
        match block {
            Block::Thinking {
                thinking,
                signature,
            } => BlockOut::Thinking {
                thinking,
                signature,
            },
            Block::Text { text } => BlockOut::Text { text },
            Block::ToolUse { id, name, input } => BlockOut::ToolUse { id, name, input },
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Our types serialize infallibly (string keys, finite numbers); the fallback only exists
    // to avoid a panic path.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

/// The non-streamed Message object.
pub(super) fn message(id: &str, model: &str, reply: &Reply, usage: Usage) -> Vec<u8> {
    to_json(&Message {
        id,
        kind: "message",
        role: "assistant",
        model,
        content: reply.blocks.iter().map(BlockOut::from).collect(),
        stop_reason: Some(reply.stop_reason),
        stop_sequence: reply.stop_sequence.as_deref(),
        usage,
    })
}

/// A truncated Message object, for the `malformed` knob.
pub(super) fn broken_message(id: &str, model: &str) -> Vec<u8> {
    let mut out = b"{\"id\":".to_vec();
    push_json_str(&mut out, id);
    out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    push_json_str(&mut out, model);
    out.extend_from_slice(b",\"content\":[{\"type\":\"text\",\"text\":\"trunc");
    out
}

/// Starts an event named `name`; the caller appends the JSON and calls [`end`].
fn begin<'b>(out: &'b mut EventBuf, name: &str) -> &'b mut Vec<u8> {
    let buf = out.buf();
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\ndata: ");
    buf
}

fn end(out: &mut EventBuf) {
    out.buf().extend_from_slice(b"\n\n");
    out.end_event();
}

/// The `error` event the API sends when a stream fails after its 200.
pub(super) fn push_error_event(out: &mut EventBuf, kind: &str, message: &str) {
    let buf = begin(out, "error");
    buf.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":");
    push_json_str(buf, kind);
    buf.extend_from_slice(b",\"message\":");
    push_json_str(buf, message);
    buf.extend_from_slice(b"}}");
    end(out);
}

/// One `content_block_delta` event; `delta_kind` is e.g. `text_delta`, `field` the delta's
/// payload key (`text`, `partial_json`, `thinking`, `signature`).
fn push_delta(out: &mut EventBuf, index: usize, delta_kind: &str, field: &str, piece: &str) {
    let buf = begin(out, "content_block_delta");
    buf.extend_from_slice(b"{\"type\":\"content_block_delta\",\"index\":");
    buf.extend_from_slice(index.to_string().as_bytes());
    buf.extend_from_slice(b",\"delta\":{\"type\":\"");
    buf.extend_from_slice(delta_kind.as_bytes());
    buf.extend_from_slice(b"\",\"");
    buf.extend_from_slice(field.as_bytes());
    buf.extend_from_slice(b"\":");
    push_json_str(buf, piece);
    buf.extend_from_slice(b"}}");
    end(out);
}

/// Splits `s` into pieces of at most `chars` characters.
fn fragments(s: &str, chars: usize) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut = rest
            .char_indices()
            .nth(chars)
            .map_or(rest.len(), |(i, _)| i);
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// Renders the whole stream. With `malformed`, one event after `message_start` carries a data
/// line whose JSON never closes, as a truncated upstream would send.
pub(super) fn stream(
    id: &str,
    model: &str,
    reply: &Reply,
    usage: Usage,
    malformed: bool,
) -> EventBuf {
    let words: usize = reply
        .blocks
        .iter()
        .map(|b| match b {
            Block::Thinking { thinking, .. } => thinking.len() / 5 + 2,
            Block::Text { text } => text.len() / 5 + 1,
            Block::ToolUse { .. } => 8,
        })
        .sum();
    let mut out = EventBuf::with_capacity(words + 8, 120);

    // message_start: the Message with no content yet and the input side of usage.
    let start = Message {
        id,
        kind: "message",
        role: "assistant",
        model,
        content: Vec::new(),
        stop_reason: None,
        stop_sequence: None,
        usage: Usage {
            output_tokens: 1,
            ..usage
        },
    };
    let buf = begin(&mut out, "message_start");
    buf.extend_from_slice(b"{\"type\":\"message_start\",\"message\":");
    buf.extend_from_slice(&to_json(&start));
    buf.push(b'}');
    end(&mut out);
    if malformed {
        let buf = begin(&mut out, "content_block_delta");
        buf.extend_from_slice(
            b"{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"unterminated",
        );
        end(&mut out);
    }

    for (index, block) in reply.blocks.iter().enumerate() {
        let buf = begin(&mut out, "content_block_start");
        buf.extend_from_slice(b"{\"type\":\"content_block_start\",\"index\":");
        buf.extend_from_slice(index.to_string().as_bytes());
        buf.extend_from_slice(b",\"content_block\":");
        match block {
            Block::Thinking { .. } => {
                buf.extend_from_slice(br#"{"type":"thinking","thinking":""}"#);
            }
            Block::Text { .. } => buf.extend_from_slice(br#"{"type":"text","text":""}"#),
            Block::ToolUse { id, name, .. } => {
                buf.extend_from_slice(br#"{"type":"tool_use","id":"#);
                push_json_str(buf, id);
                buf.extend_from_slice(br#","name":"#);
                push_json_str(buf, name);
                buf.extend_from_slice(br#","input":{}}"#);
            }
        }
        buf.push(b'}');
        end(&mut out);
        if index == 0 {
            let buf = begin(&mut out, "ping");
            buf.extend_from_slice(PING);
            end(&mut out);
        }

        match block {
            Block::Thinking {
                thinking,
                signature,
            } => {
                for piece in thinking.split_inclusive(' ') {
                    push_delta(&mut out, index, "thinking_delta", "thinking", piece);
                }
                push_delta(&mut out, index, "signature_delta", "signature", signature);
            }
            Block::Text { text } => {
                if reply.echo {
                    // The echo is JSON for tests to parse; one piece keeps that simple.
                    push_delta(&mut out, index, "text_delta", "text", text);
                } else {
                    // Pieces keep their trailing space, so joining them gives back the text.
                    for piece in text.split_inclusive(' ') {
                        push_delta(&mut out, index, "text_delta", "text", piece);
                    }
                }
            }
            Block::ToolUse { input, .. } => {
                let json = serde_json::to_string(input).unwrap_or_else(|_| "{}".to_owned());
                // The API opens every tool input with an empty fragment.
                push_delta(&mut out, index, "input_json_delta", "partial_json", "");
                for piece in fragments(&json, JSON_FRAGMENT_CHARS) {
                    push_delta(&mut out, index, "input_json_delta", "partial_json", piece);
                }
            }
        }

        let buf = begin(&mut out, "content_block_stop");
        buf.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
        buf.extend_from_slice(index.to_string().as_bytes());
        buf.push(b'}');
        end(&mut out);
    }

    let buf = begin(&mut out, "message_delta");
    buf.extend_from_slice(b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
    push_json_str(buf, reply.stop_reason);
    buf.extend_from_slice(b",\"stop_sequence\":");
    match &reply.stop_sequence {
        Some(seq) => push_json_str(buf, seq),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b"},\"usage\":{\"output_tokens\":");
    buf.extend_from_slice(usage.output_tokens.to_string().as_bytes());
    buf.extend_from_slice(b"}}");
    end(&mut out);

    let buf = begin(&mut out, "message_stop");
    buf.extend_from_slice(br#"{"type":"message_stop"}"#);
    end(&mut out);
    out
}
