//! Streamed responses: Gemini's `streamGenerateContent?alt=sse` chunks → OpenAI
//! `chat.completion.chunk`s, as a state machine fed one SSE `data:` payload at a time.
//!
//! Every Gemini event is a whole `GenerateContentResponse` holding what is new since the last
//! one: text pieces, whole function calls, and, on the last event of each candidate, its
//! `finishReason`. `usageMetadata` is repeated with growing counts, complete on the last event.
//! There is no end marker: the body just ends. The machine therefore reports
//! [`StreamStep::Done`] on the event that finishes the last expected candidate (`n` of them),
//! after writing the finish chunk and, with `include_usage`, the usage chunk; the caller then
//! writes `data: [DONE]`. Anything Gemini sends after that is ignored, and a body that ends
//! before that event was cut short (the relay reports it as an error).
//!
//! | Gemini | OpenAI chunk(s) |
//! |---|---|
//! | the first event of a candidate | `delta: {"role": "assistant", "content": ""}` for its index |
//! | a text part | `delta: {"content": text}` |
//! | a `thought: true` text part | `delta: {"reasoning_content": text}` |
//! | a `functionCall` part | `tool_calls: [{index, id, type: "function", function: {name, arguments: ""}}]` (plus `extra_content.google.thought_signature` when the part is signed), then `tool_calls: [{index, function: {arguments}}]` with the whole arguments, `index` counting the candidate's calls from 0 |
//! | `finishReason` | `delta: {}` (or `{"refusal": ...}` when a filter stopped the candidate before any content) with `finish_reason`, and `native_finish_reason` / `safety_ratings` as in [`super::response`] |
//! | `promptFeedback.blockReason` without candidates | role chunk, then a `content_filter` finish with a `refusal`, then Done |
//! | `{"error": {...}}` | [`StreamStep::Error`] with OpenAI's error body |
//!
//! The chunk `id` is Gemini's `responseId` and tool call ids are generated exactly as
//! [`super::response::gemini_to_chat_response`] does, so a streamed and a non-streamed answer
//! name their calls alike. With `include_usage` every chunk carries `"usage": null` and a last
//! chunk with `choices: []` carries the usage.

use serde::Serialize;
use serde_json::value::RawValue;

use super::response::{
    filtered, parse_error, read_parts, refusal_sentence, CallIds, ExtraContentOut, ResponseIn,
    UsageMetadata, UsageOut,
};
use super::{finish_reason, finish_reason_is_lossless, TranslateError};
use crate::anthropic::response::to_json;
use crate::anthropic::stream::parse_utf8;
pub use crate::anthropic::stream::StreamStep;
use crate::chunk::ChunkWriter;
use crate::openai::{ErrorBody, ErrorObject, Usage};

/// Translates Gemini stream events into OpenAI `chat.completion.chunk` payloads.
#[derive(Debug)]
pub struct GeminiToChatStream {
    model: String,
    created: u64,
    include_usage: bool,
    expected: u32,
    nonce: String,
    id: String,
    response_id: String,
    started: bool,
    candidates: Vec<CandidateState>,
    finished: u32,
    usage: Option<UsageMetadata>,
    ended: bool,
    /// Writes the chunks; made with the first event, which fixes the id.
    writer: Option<ChunkWriter>,
}

#[derive(Debug)]
struct CandidateState {
    index: u32,
    calls: usize,
    content: bool,
    finished: bool,
}

#[derive(Serialize, Default)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDeltaOut<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallDeltaOut<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDeltaOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra_content: Option<&'a ExtraContentOut>,
}

#[derive(Serialize)]
struct FunctionDeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

impl GeminiToChatStream {
    /// A translator for one response. `client_model` is the model name to report, `created`
    /// the Unix time in seconds, `include_usage` the client's `stream_options.include_usage`,
    /// `candidates` the number of choices asked for (`n`), and `nonce` (unique per request)
    /// seeds generated tool call ids.
    pub fn new(
        client_model: &str,
        created: u64,
        include_usage: bool,
        candidates: u32,
        nonce: &str,
    ) -> Self {
        Self {
            model: client_model.to_owned(),
            created,
            include_usage,
            expected: candidates.max(1),
            nonce: nonce.to_owned(),
            id: String::new(),
            response_id: String::new(),
            started: false,
            candidates: Vec::new(),
            finished: 0,
            usage: None,
            ended: false,
            writer: None,
        }
    }

    /// The usage reported so far (the final count once the stream is done), or `None` before
    /// Gemini reported any.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(UsageMetadata::to_usage)
    }

    /// Feeds the JSON of one event's `data:` line and appends the complete chunk payloads it
    /// yields (JSON without the `data: ` prefix) to `out`.
    pub fn push(
        &mut self,
        data: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<StreamStep, TranslateError> {
        if self.ended {
            return Ok(StreamStep::Continue);
        }
        let event: ResponseIn<'_> = parse_utf8(data).map_err(|e| {
            TranslateError::body(format!("upstream stream event is not valid JSON: {e}"))
        })?;
        if event.error.is_some_and(|e| e.get() != "null") {
            self.ended = true;
            let body = parse_error(data).map_or_else(
                || ErrorBody {
                    error: ErrorObject {
                        message: "the upstream stream reported an error".to_owned(),
                        kind: "server_error".to_owned(),
                        param: None,
                        code: Some("upstream_error".to_owned()),
                    },
                },
                |e| e.to_openai(),
            );
            return Ok(StreamStep::Error(to_json(&body)?));
        }
        if let Some(u) = event.usage_metadata {
            self.usage = Some(u);
        }
        if !self.started {
            self.started = true;
            self.response_id = event.response_id.as_deref().unwrap_or("").to_owned();
            self.id = if self.response_id.is_empty() {
                format!("chatcmpl-{}", self.nonce)
            } else {
                self.response_id.clone()
            };
            self.writer = Some(ChunkWriter::new(
                &self.id,
                &self.model,
                self.created,
                self.include_usage,
            ));
        }

        let candidates = event.candidates.as_deref().unwrap_or_default();
        if candidates.is_empty() {
            if let Some(reason) = event
                .prompt_feedback
                .as_ref()
                .and_then(|f| f.block_reason.as_deref())
            {
                let ratings = event
                    .prompt_feedback
                    .as_ref()
                    .and_then(|f| f.safety_ratings);
                self.role_chunk(0, out)?;
                let refusal = refusal_sentence(reason, ratings, true);
                let delta = DeltaOut {
                    refusal: Some(&refusal),
                    ..DeltaOut::default()
                };
                out.push(self.chunk(0, delta, Some("content_filter"), Some(reason), ratings)?);
                return self.done(out);
            }
        }
        for (position, cand) in candidates.iter().enumerate() {
            let index = cand
                .index
                .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX));
            let slot = self.slot(index, out)?;
            if self.candidates[slot].finished {
                continue;
            }
            let parts = cand
                .content
                .as_ref()
                .and_then(|c| c.parts.as_deref())
                .unwrap_or_default();
            let ids = CallIds {
                nonce: &self.nonce,
                response_id: &self.response_id,
            };
            let read = read_parts(parts, index, self.candidates[slot].calls, &ids);
            if let Some(reasoning) = read.reasoning.as_deref().filter(|r| !r.is_empty()) {
                let delta = DeltaOut {
                    reasoning_content: Some(reasoning),
                    ..DeltaOut::default()
                };
                out.push(self.chunk(index, delta, None, None, None)?);
            }
            if read.has_text && !read.text.is_empty() {
                self.candidates[slot].content = true;
                let delta = DeltaOut {
                    content: Some(&read.text),
                    ..DeltaOut::default()
                };
                out.push(self.chunk(index, delta, None, None, None)?);
            }
            for call in &read.calls {
                let tool_index = self.candidates[slot].calls;
                self.candidates[slot].calls += 1;
                self.candidates[slot].content = true;
                let head = DeltaOut {
                    tool_calls: Some([ToolCallDeltaOut {
                        index: tool_index,
                        id: Some(&call.id),
                        kind: Some("function"),
                        function: FunctionDeltaOut {
                            name: Some(&call.function.name),
                            arguments: "",
                        },
                        extra_content: call.extra_content.as_ref(),
                    }]),
                    ..DeltaOut::default()
                };
                out.push(self.chunk(index, head, None, None, None)?);
                let args = DeltaOut {
                    tool_calls: Some([ToolCallDeltaOut {
                        index: tool_index,
                        id: None,
                        kind: None,
                        function: FunctionDeltaOut {
                            name: None,
                            arguments: &call.function.arguments,
                        },
                        extra_content: None,
                    }]),
                    ..DeltaOut::default()
                };
                out.push(self.chunk(index, args, None, None, None)?);
            }
            if let Some(native) = cand.finish_reason.as_deref() {
                let state = &mut self.candidates[slot];
                state.finished = true;
                self.finished += 1;
                let finish = finish_reason(native, state.calls > 0);
                let is_filter = filtered(native);
                let refusal = (is_filter && !state.content)
                    .then(|| refusal_sentence(native, cand.safety_ratings, false));
                let delta = DeltaOut {
                    refusal: refusal.as_deref(),
                    ..DeltaOut::default()
                };
                let native_out = (!finish_reason_is_lossless(native)).then_some(native);
                let ratings = if is_filter { cand.safety_ratings } else { None };
                out.push(self.chunk(index, delta, Some(finish), native_out, ratings)?);
            }
        }
        if self.finished >= self.expected {
            return self.done(out);
        }
        Ok(StreamStep::Continue)
    }

    /// The state slot of candidate `index`, created (and its role chunk written) on first sight.
    fn slot(&mut self, index: u32, out: &mut Vec<Vec<u8>>) -> Result<usize, TranslateError> {
        if let Some(i) = self.candidates.iter().position(|c| c.index == index) {
            return Ok(i);
        }
        self.role_chunk(index, out)?;
        Ok(self.candidates.len() - 1)
    }

    fn role_chunk(&mut self, index: u32, out: &mut Vec<Vec<u8>>) -> Result<(), TranslateError> {
        self.candidates.push(CandidateState {
            index,
            calls: 0,
            content: false,
            finished: false,
        });
        let delta = DeltaOut {
            role: Some("assistant"),
            content: Some(""),
            ..DeltaOut::default()
        };
        out.push(self.chunk(index, delta, None, None, None)?);
        Ok(())
    }

    /// Writes the usage chunk (when asked for) and ends the stream.
    fn done(&mut self, out: &mut Vec<Vec<u8>>) -> Result<StreamStep, TranslateError> {
        if self.include_usage {
            let usage = self.usage.unwrap_or_default();
            out.push(self.writer()?.usage_chunk(&UsageOut::from(&usage))?);
        }
        self.ended = true;
        Ok(StreamStep::Done)
    }

    fn writer(&self) -> Result<&ChunkWriter, TranslateError> {
        self.writer
            .as_ref()
            .ok_or_else(|| TranslateError::body("a chunk before the stream started"))
    }

    fn chunk(
        &self,
        index: u32,
        delta: DeltaOut<'_>,
        finish_reason: Option<&'static str>,
        native_finish_reason: Option<&str>,
        safety_ratings: Option<&RawValue>,
    ) -> Result<Vec<u8>, TranslateError> {
        self.writer()?
            .chunk_with(index, &delta, finish_reason, |out| {
                if let Some(native) = native_finish_reason {
                    out.extend_from_slice(br#","native_finish_reason":"#);
                    serde_json::to_writer(&mut *out, native)?;
                }
                if let Some(ratings) = safety_ratings {
                    out.extend_from_slice(br#","safety_ratings":"#);
                    serde_json::to_writer(&mut *out, ratings)?;
                }
                Ok(())
            })
    }
}

#[cfg(test)]
mod tests;
