//! What a request asks for, as routing sees it: its features and an *estimate* of its prompt
//! tokens.
//!
//! The estimate is deliberately cheap: about four bytes of text per token (the usual average
//! for English with BPE tokenizers; code and other scripts tokenize denser, so it can be low
//! by a factor of two), four tokens of framing per message, a flat [`IMAGE_TOKENS`] per image,
//! and tool definitions by their JSON size. It is good enough to rank deployments by cost and
//! to keep a request away from a context window it clearly overflows; it is not a bill.
//! Everything else takes the resulting [`Features::prompt_tokens`], which the pipeline
//! replaces with a real count (`crate::tokenize`) for OpenAI-family models when a TPM limit, a
//! budget or a close context-window constraint needs it.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_types::anthropic::MessagesRequest;
use switchyard_types::openai::{ChatCompletionRequest, EmbeddingsRequest};

/// Bytes of text per estimated token.
pub const BYTES_PER_TOKEN: u64 = 4;
/// Tokens of framing per message (role, separators).
pub const TOKENS_PER_MESSAGE: u64 = 4;
/// Tokens assumed per image input (between OpenAI's low-detail 85 and a large tiled image).
pub const IMAGE_TOKENS: u64 = 512;
/// Completion tokens assumed when the request sets no cap, for cost estimates.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 256;

/// What routing knows about a request before sending it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// The client asked for a stream.
    pub stream: bool,
    /// The request offers tools.
    pub has_tools: bool,
    /// A message carries an image.
    pub has_images: bool,
    /// The request asks for JSON-schema constrained output.
    pub json_schema: bool,
    /// The completion cap the client set (`max_completion_tokens`, `max_tokens`).
    pub max_tokens: Option<u64>,
    /// Estimated prompt tokens (see the module docs).
    pub prompt_tokens: u64,
}

impl Features {
    /// The completion tokens to assume for cost: the client's cap, else
    /// [`DEFAULT_OUTPUT_TOKENS`].
    pub fn output_tokens(&self) -> u64 {
        self.max_tokens.unwrap_or(DEFAULT_OUTPUT_TOKENS)
    }
}

/// Estimated tokens of `bytes` bytes of text.
pub fn text_tokens(bytes: u64) -> u64 {
    bytes.div_ceil(BYTES_PER_TOKEN)
}

/// The features of an OpenAI chat completion request, given the spans of the body's top-level
/// `tools` and `response_format` (found by the parse stage's one scan of the body).
pub fn chat(
    req: &ChatCompletionRequest<'_>,
    body: &[u8],
    [tools, response_format]: [Option<std::ops::Range<usize>>; 2],
) -> Features {
    let mut est = Estimate::default();
    for m in &req.messages {
        est.tokens += TOKENS_PER_MESSAGE;
        if let Some(c) = m.content {
            est.content(c);
        }
    }
    if let Some(span) = tools {
        est.tokens += text_tokens(span.len() as u64);
    }
    let json_schema = response_format
        .and_then(|span| body.get(span))
        .is_some_and(|rf| {
            #[derive(Deserialize)]
            struct Rf<'a> {
                #[serde(rename = "type", borrow)]
                kind: Option<Cow<'a, str>>,
            }
            serde_json::from_slice::<Rf<'_>>(rf)
                .is_ok_and(|r| r.kind.as_deref() == Some("json_schema"))
        });
    Features {
        stream: req.is_stream(),
        has_tools: req.tools.as_ref().is_some_and(|t| !t.is_empty()),
        has_images: est.images,
        json_schema,
        max_tokens: req.max_completion_tokens.or(req.max_tokens).map(u64::from),
        prompt_tokens: est.tokens,
    }
}

/// The features of an Anthropic Messages request.
pub fn messages(req: &MessagesRequest<'_>) -> Features {
    let mut est = Estimate::default();
    if let Some(s) = req.system {
        est.content(s);
    }
    for m in &req.messages {
        est.tokens += TOKENS_PER_MESSAGE;
        est.content(m.content);
    }
    let has_tools = req
        .tools
        .is_some_and(|t| t.get() != "[]" && t.get() != "null");
    if let Some(t) = req.tools.filter(|_| has_tools) {
        est.tokens += text_tokens(t.get().len() as u64);
    }
    Features {
        stream: req.stream.unwrap_or(false),
        has_tools,
        has_images: est.images,
        json_schema: false,
        max_tokens: Some(req.max_tokens),
        prompt_tokens: est.tokens,
    }
}

/// The features of an embeddings request (its input size is its prompt).
pub fn embeddings(req: &EmbeddingsRequest<'_>) -> Features {
    Features {
        prompt_tokens: text_tokens(req.input.get().len() as u64),
        max_tokens: Some(0),
        ..Features::default()
    }
}

/// Features of a legacy completions request: the prompt's size (strings, or token ids counted
/// roughly by their JSON length), its cap and whether it streams.
pub fn completions(req: &switchyard_types::completions::CompletionRequest<'_>) -> Features {
    Features {
        stream: req.is_stream(),
        max_tokens: req.max_tokens.map(u64::from),
        prompt_tokens: text_tokens(req.prompt.map_or(0, |p| p.get().len() as u64)),
        ..Features::default()
    }
}

/// Features of a Responses API request. Its input items take many shapes (text, images, tool
/// outputs, replayed turns), so the prompt estimate is the body's size, an over-estimate that
/// errs on the safe side for context-window and cost checks.
pub fn responses(req: &switchyard_types::responses::ResponsesRequest<'_>, body: &[u8]) -> Features {
    Features {
        stream: req.is_stream(),
        has_tools: req.has_tools(),
        max_tokens: req.max_output_tokens,
        prompt_tokens: text_tokens(body.len() as u64),
        ..Features::default()
    }
}

#[derive(Default)]
struct Estimate {
    tokens: u64,
    images: bool,
}

/// A content part, in either API's shape, as far as the estimate needs it.
#[derive(Deserialize)]
struct Part<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    /// Anthropic's `tool_result` content (a string or more parts).
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    /// A tool call's arguments (Anthropic `tool_use`).
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
}

impl Estimate {
    fn content(&mut self, c: &RawValue) {
        let raw = c.get();
        match raw.as_bytes().first() {
            // A JSON string: its length less the quotes (escapes count as written).
            Some(b'"') => self.tokens += text_tokens(raw.len().saturating_sub(2) as u64),
            Some(b'[') => {
                let Ok(parts) = serde_json::from_str::<Vec<Part<'_>>>(raw) else {
                    self.tokens += text_tokens(raw.len() as u64);
                    return;
                };
                for p in parts {
                    match p.kind.as_deref() {
                        Some("image_url" | "image" | "input_image") => {
                            self.images = true;
                            self.tokens += IMAGE_TOKENS;
                        }
                        _ => {
                            if let Some(t) = &p.text {
                                self.tokens += text_tokens(t.len() as u64);
                            }
                            if let Some(inner) = p.content {
                                self.content(inner);
                            }
                            if let Some(i) = p.input {
                                self.tokens += text_tokens(i.get().len() as u64);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// The text of the last user message (strings and text parts), for prompt classification; at
/// most `limit` bytes, cut at a character boundary.
pub fn last_user_text(body: &[u8], limit: usize) -> String {
    #[derive(Deserialize)]
    struct Doc<'a> {
        #[serde(default, borrow)]
        messages: Vec<Msg<'a>>,
    }
    #[derive(Deserialize)]
    struct Msg<'a> {
        #[serde(default, borrow)]
        role: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        content: Option<&'a RawValue>,
    }
    let Ok(doc) = serde_json::from_slice::<Doc<'_>>(body) else {
        return String::new();
    };
    let Some(content) = doc
        .messages
        .iter()
        .rev()
        .find(|m| m.role.as_deref() == Some("user"))
        .and_then(|m| m.content)
    else {
        return String::new();
    };
    let mut out = String::new();
    if let Ok(s) = serde_json::from_str::<Cow<'_, str>>(content.get()) {
        out.push_str(&s);
    } else if let Ok(parts) = serde_json::from_str::<Vec<Part<'_>>>(content.get()) {
        for t in parts.iter().filter_map(|p| p.text.as_deref()) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(t);
        }
    }
    if out.len() > limit {
        let mut cut = limit;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}
