//! ConverseStream eventstream messages → OpenAI `chat.completion.chunk` payloads, as a state
//! machine fed one decoded [`Message`] at a time ([`ConverseToChatStream`]).
//!
//! | Converse message | OpenAI chunk(s) |
//! |---|---|
//! | `messageStart` | `delta: {"role":"assistant","content":""}` |
//! | `contentBlockStart` with `start.toolUse` | `tool_calls: [{index, id: toolUseId, type: "function", function: {name, arguments: ""}}]`, `index` counting tool blocks from 0 |
//! | `contentBlockDelta` `delta.text` | `delta: {"content": text}` |
//! | `contentBlockDelta` `delta.toolUse.input` | `tool_calls: [{index, function: {arguments: fragment}}]` |
//! | `contentBlockDelta` `delta.reasoningContent.text` | `delta: {"reasoning_content": text}` |
//! | `messageStop` | `delta: {}` with `finish_reason` (see [`finish_reason`](super::finish_reason)) |
//! | `metadata` | with `include_usage`, a last chunk with `choices: []` and the usage; then [`StreamStep::Done`] |
//! | an exception message (`:message-type: exception`) or an error message | [`StreamStep::Error`] with OpenAI's error body ([`error_to_openai`](super::error_to_openai)) |
//! | `contentBlockStop`, reasoning signatures, new event types | nothing |
//!
//! Bedrock sends the usage in `metadata`, *after* `messageStop`, so the stream is complete
//! only after `metadata`. A stream whose body ends after `messageStop` without `metadata` is
//! complete too: the caller then calls [`ConverseToChatStream::finish`], which emits the usage
//! chunk (zero counts) and reports [`StreamStep::Done`].
//!
//! Tool argument fragments have insignificant whitespace removed, so that they concatenate to
//! the `arguments` the non-streamed translation gives; with `json_tool`, fragments of the
//! [`JSON_TOOL_NAME`] tool are `content` deltas and a `tool_use` stop finishes with `stop`.
//! A payload that is not the JSON its event needs is a [`TranslateError`]. Input after
//! `Done` or `Error` is ignored; the terminal error payload is not appended to `out`.

use std::borrow::Cow;

use serde::Deserialize;

use super::eventstream::Message;
use super::response::{chat_finish_reason, usage_from_converse, ConverseUsage};
use crate::anthropic::response::{to_json, JsonMinifier, UsageOut};
use crate::anthropic::stream::StreamStep;
use crate::anthropic::{TranslateError, JSON_TOOL_NAME};
use crate::chunk::{ChunkWriter, DeltaOut, FunctionDeltaOut, ToolCallDeltaOut};
use crate::openai::Usage;

/// Translates ConverseStream messages into OpenAI chunk payloads.
#[derive(Debug)]
pub struct ConverseToChatStream {
    writer: ChunkWriter,
    include_usage: bool,
    json_tool: bool,
    /// Converse block index → what the block is, for tool input deltas.
    blocks: Vec<(u64, StreamBlock)>,
    next_tool_index: u32,
    usage: Option<ConverseUsage>,
    stopped: bool,
    ended: bool,
}

#[derive(Debug)]
enum StreamBlock {
    Tool { index: u32, minifier: JsonMinifier },
    JsonTool { minifier: JsonMinifier },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStartIn<'a> {
    #[serde(default)]
    content_block_index: u64,
    #[serde(default, borrow)]
    start: Option<StartIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartIn<'a> {
    #[serde(default, borrow)]
    tool_use: Option<ToolStartIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolStartIn<'a> {
    #[serde(default, borrow)]
    tool_use_id: Cow<'a, str>,
    #[serde(default, borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDeltaIn<'a> {
    #[serde(default)]
    content_block_index: u64,
    #[serde(borrow)]
    delta: DeltaIn<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaIn<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_use: Option<ToolDeltaIn<'a>>,
    #[serde(default, borrow)]
    reasoning_content: Option<ReasoningDeltaIn<'a>>,
}

#[derive(Deserialize)]
struct ToolDeltaIn<'a> {
    #[serde(default, borrow)]
    input: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ReasoningDeltaIn<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopIn<'a> {
    #[serde(default, borrow)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct MetadataIn {
    #[serde(default)]
    usage: Option<ConverseUsage>,
}

fn payload<'a, T: Deserialize<'a>>(event: &str, bytes: &'a [u8]) -> Result<T, TranslateError> {
    serde_json::from_slice(bytes)
        .map_err(|e| TranslateError::field(event, format!("malformed `{event}` payload: {e}")))
}

impl ConverseToChatStream {
    /// A translator for one response. `id` is the chunk id to report, `client_model` the model
    /// name, `created` the Unix time in seconds, `include_usage` the client's
    /// `stream_options.include_usage`, and `json_tool` whether the request used the
    /// [`JSON_TOOL_NAME`] tool for `response_format`.
    pub fn new(
        id: &str,
        client_model: &str,
        created: u64,
        include_usage: bool,
        json_tool: bool,
    ) -> Self {
        Self {
            writer: ChunkWriter::new(id, client_model, created, include_usage),
            include_usage,
            json_tool,
            blocks: Vec::new(),
            next_tool_index: 0,
            usage: None,
            stopped: false,
            ended: false,
        }
    }

    /// Feeds one decoded message and appends the chunk payloads it yields (JSON without the
    /// `data: ` prefix) to `out`.
    pub fn push(
        &mut self,
        msg: &Message<'_>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<StreamStep, TranslateError> {
        if self.ended {
            return Ok(StreamStep::Continue);
        }
        match msg.header_str(":message-type").unwrap_or("event") {
            "exception" => {
                self.ended = true;
                let kind = msg.header_str(":exception-type").unwrap_or("");
                let message = super::error_message(msg.payload);
                let body = super::error_to_openai(kind, &message);
                return Ok(StreamStep::Error(to_json(&body)?));
            }
            "error" => {
                self.ended = true;
                let kind = msg.header_str(":error-code").unwrap_or("");
                let message = msg.header_str(":error-message").unwrap_or("");
                let body = super::error_to_openai(kind, message);
                return Ok(StreamStep::Error(to_json(&body)?));
            }
            _ => {}
        }
        let event = msg.header_str(":event-type").unwrap_or("");
        match event {
            "messageStart" => {
                let delta = DeltaOut {
                    role: Some("assistant"),
                    content: Some(""),
                    ..DeltaOut::default()
                };
                out.push(self.chunk(delta, None)?);
            }
            "contentBlockStart" => {
                let start: BlockStartIn<'_> = payload(event, msg.payload)?;
                if let Some(tool) = start.start.and_then(|s| s.tool_use) {
                    self.tool_start(start.content_block_index, &tool, out)?;
                }
            }
            "contentBlockDelta" => {
                let delta: BlockDeltaIn<'_> = payload(event, msg.payload)?;
                self.block_delta(delta.content_block_index, &delta.delta, out)?;
            }
            "messageStop" => {
                let stop: StopIn<'_> = payload(event, msg.payload)?;
                self.stop(stop.stop_reason.as_deref().unwrap_or("end_turn"), out)?;
            }
            "metadata" => {
                let meta: MetadataIn = payload(event, msg.payload)?;
                if let Some(u) = meta.usage {
                    self.usage = Some(u);
                }
                if self.stopped {
                    return self.end(out);
                }
            }
            // contentBlockStop and event types added later.
            _ => {}
        }
        Ok(StreamStep::Continue)
    }

    /// Closes a stream whose body ended without `metadata`: complete ([`StreamStep::Done`],
    /// after the usage chunk the client asked for) when `messageStop` arrived, else `None`
    /// (the stream broke off).
    pub fn finish(&mut self, out: &mut Vec<Vec<u8>>) -> Result<Option<StreamStep>, TranslateError> {
        if self.ended || !self.stopped {
            return Ok(None);
        }
        self.end(out).map(Some)
    }

    /// The usage reported so far (from `metadata`), or `None` before it.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(usage_from_converse)
    }

    fn end(&mut self, out: &mut Vec<Vec<u8>>) -> Result<StreamStep, TranslateError> {
        self.ended = true;
        if self.include_usage {
            let usage = self.usage().unwrap_or_default();
            out.push(self.writer.usage_chunk(&UsageOut::from(&usage))?);
        }
        Ok(StreamStep::Done)
    }

    fn tool_start(
        &mut self,
        index: u64,
        tool: &ToolStartIn<'_>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), TranslateError> {
        if self.json_tool && tool.name == JSON_TOOL_NAME {
            self.set_block(
                index,
                StreamBlock::JsonTool {
                    minifier: JsonMinifier::default(),
                },
            );
            return Ok(());
        }
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
                id: Some(&tool.tool_use_id),
                kind: Some("function"),
                function: FunctionDeltaOut {
                    name: Some(&tool.name),
                    arguments: "",
                },
            }]),
            ..DeltaOut::default()
        };
        out.push(self.chunk(delta, None)?);
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
        if let Some(text) = delta.text.as_deref() {
            if !text.is_empty() {
                let piece = DeltaOut {
                    content: Some(text),
                    ..DeltaOut::default()
                };
                out.push(self.chunk(piece, None)?);
            }
            return Ok(());
        }
        if let Some(text) = delta
            .reasoning_content
            .as_ref()
            .and_then(|r| r.text.as_deref())
        {
            if !text.is_empty() {
                let piece = DeltaOut {
                    reasoning_content: Some(text),
                    ..DeltaOut::default()
                };
                out.push(self.chunk(piece, None)?);
            }
            return Ok(());
        }
        let Some(tool) = &delta.tool_use else {
            // Reasoning signatures, citations and delta types added later.
            return Ok(());
        };
        let Some((_, block)) = self.blocks.iter_mut().find(|(i, _)| *i == index) else {
            return Err(TranslateError::field(
                "contentBlockDelta",
                format!("tool input for block {index}, which never started as a tool use"),
            ));
        };
        let mut compact = String::with_capacity(tool.input.len());
        let piece = match block {
            StreamBlock::Tool { index, minifier } => {
                minifier.push(&tool.input, &mut compact);
                Some(*index)
            }
            StreamBlock::JsonTool { minifier } => {
                minifier.push(&tool.input, &mut compact);
                None
            }
        };
        if compact.is_empty() {
            return Ok(());
        }
        let delta = match piece {
            Some(tool_index) => DeltaOut {
                tool_calls: Some([ToolCallDeltaOut {
                    index: tool_index,
                    id: None,
                    kind: None,
                    function: FunctionDeltaOut {
                        name: None,
                        arguments: &compact,
                    },
                }]),
                ..DeltaOut::default()
            },
            None => DeltaOut {
                content: Some(&compact),
                ..DeltaOut::default()
            },
        };
        out.push(self.chunk(delta, None)?);
        Ok(())
    }

    /// Emits the finishing chunk, once.
    fn stop(&mut self, stop_reason: &str, out: &mut Vec<Vec<u8>>) -> Result<(), TranslateError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let reason = chat_finish_reason(stop_reason, self.next_tool_index > 0);
        out.push(self.chunk(DeltaOut::default(), Some(reason))?);
        Ok(())
    }

    fn chunk(
        &self,
        delta: DeltaOut<'_>,
        finish_reason: Option<&'static str>,
    ) -> Result<Vec<u8>, TranslateError> {
        self.writer.chunk(0, &delta, finish_reason)
    }
}

#[cfg(test)]
mod tests;
