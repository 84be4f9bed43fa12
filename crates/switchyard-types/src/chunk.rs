//! Writing OpenAI answers, for every translator whose client speaks OpenAI's format: whole
//! `chat.completion` bodies ([`ChatCompletionOut`]) and `chat.completion.chunk` payloads.
//!
//! A translated stream is hundreds of chunks that differ only in their choice: `id`, `object`,
//! `created` and `model` are the same in each. [`ChunkWriter`] serialises that head once and
//! copies it, which is most of what keeps translation under its per-chunk budget; the bytes are
//! exactly what serialising the whole chunk would give (key order included).

use serde::Serialize;

use crate::anthropic::TranslateError;

/// The chunk writer of one stream.
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    /// `{"id":..,"object":"chat.completion.chunk","created":..,"model":..,"choices":[`
    head: Vec<u8>,
    include_usage: bool,
}

impl ChunkWriter {
    /// A writer for chunks of response `id` naming `model`. With `include_usage` (the client's
    /// `stream_options.include_usage`) every chunk carries `"usage":null`, as OpenAI's do.
    pub fn new(id: &str, model: &str, created: u64, include_usage: bool) -> Self {
        use crate::json::encode_string;
        let head = format!(
            r#"{{"id":{},"object":"chat.completion.chunk","created":{created},"model":{},"choices":["#,
            encode_string(id),
            encode_string(model)
        );
        Self {
            head: head.into_bytes(),
            include_usage,
        }
    }

    /// One chunk with one choice: `{"index":..,"delta":..,"logprobs":null,"finish_reason":..}`.
    pub fn chunk<D: Serialize>(
        &self,
        index: u32,
        delta: &D,
        finish_reason: Option<&str>,
    ) -> Result<Vec<u8>, TranslateError> {
        self.chunk_with(index, delta, finish_reason, |_| Ok(()))
    }

    /// Like [`ChunkWriter::chunk`], with `extra` appending more members to the choice (each
    /// written as `,"name":value`).
    pub fn chunk_with<D: Serialize>(
        &self,
        index: u32,
        delta: &D,
        finish_reason: Option<&str>,
        extra: impl FnOnce(&mut Vec<u8>) -> Result<(), serde_json::Error>,
    ) -> Result<Vec<u8>, TranslateError> {
        let mut out = Vec::with_capacity(self.head.len() + 128);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(br#"{"index":"#);
        out.extend_from_slice(index.to_string().as_bytes());
        out.extend_from_slice(br#","delta":"#);
        serde_json::to_writer(&mut out, delta).map_err(serialising)?;
        out.extend_from_slice(br#","logprobs":null,"finish_reason":"#);
        serde_json::to_writer(&mut out, &finish_reason).map_err(serialising)?;
        extra(&mut out).map_err(serialising)?;
        out.extend_from_slice(b"}]");
        if self.include_usage {
            out.extend_from_slice(br#","usage":null"#);
        }
        out.push(b'}');
        Ok(out)
    }

    /// The closing chunk of an `include_usage` stream: no choices, the whole stream's usage.
    pub fn usage_chunk<U: Serialize>(&self, usage: &U) -> Result<Vec<u8>, TranslateError> {
        let mut out = Vec::with_capacity(self.head.len() + 160);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(br#"],"usage":"#);
        serde_json::to_writer(&mut out, usage).map_err(serialising)?;
        out.push(b'}');
        Ok(out)
    }
}

fn serialising(e: serde_json::Error) -> TranslateError {
    TranslateError::body(format!("serialising: {e}"))
}

/// A `chat.completion` body, members in OpenAI's order.
#[derive(Serialize)]
pub(crate) struct ChatCompletionOut<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: [ChoiceOut<'a>; 1],
    pub(crate) usage: crate::anthropic::response::UsageOut,
}

/// The one choice of a translated answer.
#[derive(Serialize)]
pub(crate) struct ChoiceOut<'a> {
    pub(crate) index: u32,
    pub(crate) message: ChatMessageOut<'a>,
    pub(crate) logprobs: (),
    pub(crate) finish_reason: &'static str,
}

/// The assistant message of a translated answer.
#[derive(Serialize)]
pub(crate) struct ChatMessageOut<'a> {
    pub(crate) role: &'static str,
    pub(crate) content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tool_calls: Vec<ToolCallOut<'a>>,
}

/// A whole tool call in a translated answer.
#[derive(Serialize)]
pub(crate) struct ToolCallOut<'a> {
    pub(crate) id: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) function: FunctionOut<'a>,
}

/// A tool call's function, its arguments as JSON text.
#[derive(Serialize)]
pub(crate) struct FunctionOut<'a> {
    pub(crate) name: &'a str,
    pub(crate) arguments: String,
}

/// The delta of a chunk as the Anthropic and Bedrock translators write it.
#[derive(Serialize, Default)]
pub struct DeltaOut<'a> {
    /// `assistant`, on the first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// Text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    /// Reasoning text, under the name DeepSeek, vLLM and others use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    /// One tool call's start or arguments piece.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<[ToolCallDeltaOut<'a>; 1]>,
}

/// A tool call piece in a delta.
#[derive(Serialize)]
pub struct ToolCallDeltaOut<'a> {
    /// The call's position among the message's calls.
    pub index: u32,
    /// The call id, on its first piece.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    /// `function`, on its first piece.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Name (first piece) and arguments text.
    pub function: FunctionDeltaOut<'a>,
}

/// The function part of a tool call piece.
#[derive(Serialize)]
pub struct FunctionDeltaOut<'a> {
    /// The function name, on the first piece.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// The next piece of the arguments JSON text.
    pub arguments: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_what_serialising_the_whole_chunk_gives() {
        let w = ChunkWriter::new("id-\"1", "m", 7, true);
        let delta = DeltaOut {
            content: Some("hé\n"),
            ..DeltaOut::default()
        };
        let got = w.chunk(2, &delta, Some("stop")).unwrap();
        let want = serde_json::json!({"id": "id-\"1", "object": "chat.completion.chunk",
            "created": 7, "model": "m", "choices": [{"index": 2, "delta": {"content": "hé\n"},
            "logprobs": null, "finish_reason": "stop"}], "usage": null});
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&got).unwrap(),
            want
        );
        assert!(
            got.starts_with(br#"{"id":"id-\"1","object":"#),
            "OpenAI's key order"
        );
        let w = ChunkWriter::new("i", "m", 7, false);
        let got = w
            .chunk_with(0, &DeltaOut::default(), None, |out| {
                out.extend_from_slice(br#","x":1"#);
                Ok(())
            })
            .unwrap();
        assert_eq!(
            got,
            br#"{"id":"i","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":null,"x":1}]}"#
        );
        assert_eq!(
            w.usage_chunk(&serde_json::json!({"total_tokens": 3})).unwrap(),
            br#"{"id":"i","object":"chat.completion.chunk","created":7,"model":"m","choices":[],"usage":{"total_tokens":3}}"#
        );
    }
}
