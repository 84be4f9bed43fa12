//! Prompt tokens counted the way OpenAI counts them, for the models whose tokenizer is public,
//! and the documented estimate for every other model.
//!
//! **Which tokenizer.** OpenAI's models use one of two byte-pair encodings
//! ([`encoding_for_model`]): `o200k_base` (gpt-4o, gpt-4.1, gpt-4.5, gpt-5, the o-series,
//! gpt-oss, the realtime and audio models) and `cl100k_base` (gpt-4, gpt-3.5-turbo, the
//! `text-embedding-3-*` and `-ada-002` embedding models). A request is counted with the
//! encoding of the deployment that serves most of its model's traffic
//! ([`crate::routing::Router::main_deployment`]). Anthropic, Gemini, Bedrock, Mistral, Llama
//! and every other family keep the byte estimate of [`crate::routing::estimate`] (about four
//! bytes of text per token): their tokenizers are not published, or not for every model.
//!
//! **How a chat is counted** ([`segments`]): three tokens per message, the role, the content's
//! text and, when a message has a `name`, the name plus one token; three more prime the reply.
//! These are the overheads of OpenAI's chat format for every model since gpt-3.5-turbo-0613.
//! What OpenAI does not document is estimated: an image is [`IMAGE_TOKENS_LOW`] at
//! `detail: low`, else [`crate::routing::estimate::IMAGE_TOKENS`]; tool definitions,
//! `response_format` schemas and tool calls are counted as the tokens of their JSON text, which
//! leans high (OpenAI renders them more tersely).
//!
//! **When.** Counting costs CPU (about 8 ns a byte of ordinary text) and the first count of an
//! encoding loads its tables (about 50 ms and 12 MB for `cl100k_base`, 120 ms and 24 MB for
//! `o200k_base`), so the pipeline counts only when a consumer needs the number: a TPM limit
//! that applies to the request, a budget that does, or a routing context-window constraint the
//! estimate is too rough to decide ([`window_is_close`]). A gateway with none of them never
//! loads a table. Loading runs on its own thread; requests that need it meanwhile wait for it
//! without blocking their runtime ([`bpe`]).
//!
//! **Bounds.** A prompt of up to [`INLINE_BYTES`] of text is counted on the request's own
//! thread (well under a millisecond). Up to [`MAX_EXACT_BYTES`] it is counted on the blocking
//! pool, at most [`big_count_slots`] at once; past that size, or when every slot is busy, the
//! request keeps the estimate. Byte-pair merging is superlinear on pathological input (a
//! megabyte of one repeated character costs about 0.4 s), so an unbounded count would let one
//! client burn a core; an estimate is reconciled with the provider's usage afterwards anyway.

pub mod bpe;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::providers::Operation;
use crate::routing::estimate::{Features, IMAGE_TOKENS};
use crate::routing::Router;

/// Tokens OpenAI's chat format adds around every message.
pub const TOKENS_PER_MESSAGE: u64 = 3;
/// Tokens a message's `name` adds besides its own text.
pub const TOKENS_PER_NAME: u64 = 1;
/// Tokens that prime the reply (`<|start|>assistant<|message|>`).
pub const REPLY_PRIMING: u64 = 3;
/// An image sent with `detail: low` (OpenAI's documented flat cost).
pub const IMAGE_TOKENS_LOW: u64 = 85;
/// Text a prompt may have to be counted on the request's own thread.
pub const INLINE_BYTES: usize = 16 * 1024;
/// Text a prompt may have to be counted at all; larger prompts keep the estimate.
pub const MAX_EXACT_BYTES: usize = 1024 * 1024;
/// How far from the real count the byte estimate can be, for ordinary text in any script
/// (English runs about 4 bytes a token, code and CJK denser, repetitive text sparser).
pub const ESTIMATE_FACTOR: u64 = 2;

/// A byte-pair encoding of OpenAI's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1, o3, o4-mini, gpt-oss, ...
    O200kBase,
    /// gpt-4, gpt-3.5-turbo, text-embedding-3-*, text-embedding-ada-002.
    Cl100kBase,
}

impl Encoding {
    /// The encoding's name, as OpenAI's tiktoken calls it.
    pub fn name(self) -> &'static str {
        match self {
            Self::O200kBase => "o200k_base",
            Self::Cl100kBase => "cl100k_base",
        }
    }
}

/// Model families by name prefix; `dot` allows versions like `gpt-5.1` after the prefix.
struct Family {
    prefix: &'static str,
    dot: bool,
    encoding: Encoding,
}

const fn fam(prefix: &'static str, dot: bool, encoding: Encoding) -> Family {
    Family {
        prefix,
        dot,
        encoding,
    }
}

/// Checked in order, so the more specific `gpt-4o`/`gpt-4.1` come before `gpt-4`.
const FAMILIES: &[Family] = &[
    fam("gpt-4o", false, Encoding::O200kBase),
    fam("chatgpt-4o", false, Encoding::O200kBase),
    fam("gpt-4.1", false, Encoding::O200kBase),
    fam("gpt-4.5", false, Encoding::O200kBase),
    fam("gpt-5", true, Encoding::O200kBase),
    fam("o1", false, Encoding::O200kBase),
    fam("o3", false, Encoding::O200kBase),
    fam("o4-mini", false, Encoding::O200kBase),
    fam("gpt-oss", false, Encoding::O200kBase),
    fam("codex-mini", false, Encoding::O200kBase),
    fam("gpt-realtime", false, Encoding::O200kBase),
    fam("gpt-audio", false, Encoding::O200kBase),
    fam("omni-moderation", false, Encoding::O200kBase),
    fam("computer-use-preview", false, Encoding::O200kBase),
    fam("gpt-4", false, Encoding::Cl100kBase),
    fam("gpt-3.5-turbo", false, Encoding::Cl100kBase),
    fam("gpt-35-turbo", false, Encoding::Cl100kBase),
    fam("text-embedding-3-small", false, Encoding::Cl100kBase),
    fam("text-embedding-3-large", false, Encoding::Cl100kBase),
    fam("text-embedding-ada-002", false, Encoding::Cl100kBase),
    fam("davinci-002", false, Encoding::Cl100kBase),
    fam("babbage-002", false, Encoding::Cl100kBase),
];

/// The encoding of an upstream model name, or `None` for a model outside OpenAI's families.
///
/// Case is ignored, and so are what providers put around the name: a `vendor/` path
/// (`openai/gpt-4o` at OpenRouter, `accounts/x/models/gpt-oss-20b`), Bedrock's `openai.`, a
/// fine-tune's `ft:`. After the family's prefix comes the end of the name or a `-`, `:` or
/// `@` (dated snapshots, fine-tune ids): `gpt-4o-mini-2024-07-18` is `o200k_base`,
/// `gpt-4-0613` is `cl100k_base`, and `gpt-40` is nothing.
pub fn encoding_for_model(model: &str) -> Option<Encoding> {
    let canonical = crate::capabilities::canonical_model_name(model);
    let last = canonical.rsplit('/').next().unwrap_or(&canonical);
    let name = last.strip_prefix("ft:").unwrap_or(last);
    FAMILIES.iter().find_map(|f| {
        let rest = name.strip_prefix(f.prefix)?;
        let ok = match rest.as_bytes().first() {
            None | Some(b'-' | b':' | b'@') => true,
            Some(b'.') => f.dot,
            Some(_) => false,
        };
        ok.then_some(f.encoding)
    })
}

/// The encoding a request for `model` (alias, `provider/model` or wildcard name) is counted
/// with: its main deployment's.
pub fn encoding_for(router: &Router, model: &str) -> Option<Encoding> {
    encoding_for_model(&router.main_deployment(model)?.model)
}

/// What the tokenizer reads of a request: text segments, each tokenized on its own (OpenAI
/// tokenizes a message's role, name and content separately), and the tokens known without
/// tokenizing (message framing, images).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Segments<'a> {
    texts: Vec<Cow<'a, str>>,
    fixed: u64,
}

impl<'a> Segments<'a> {
    fn text(&mut self, s: Cow<'a, str>) {
        if !s.is_empty() {
            self.texts.push(s);
        }
    }

    fn raw_json(&mut self, v: &'a RawValue) {
        let s = v.get();
        if s != "null" && s != "[]" && s != "{}" {
            self.texts.push(Cow::Borrowed(s));
        }
    }

    /// The bytes of text to tokenize.
    pub fn text_bytes(&self) -> usize {
        self.texts.iter().map(|t| t.len()).sum()
    }

    /// The tokens known without tokenizing.
    pub fn fixed(&self) -> u64 {
        self.fixed
    }

    /// The prompt's tokens, with `count` tokenizing one segment.
    pub fn count(&self, count: impl Fn(&str) -> usize) -> u64 {
        self.fixed + self.texts.iter().map(|t| count(t) as u64).sum::<u64>()
    }

    fn into_owned(self) -> Segments<'static> {
        Segments {
            texts: self
                .texts
                .into_iter()
                .map(|t| Cow::Owned(t.into_owned()))
                .collect(),
            fixed: self.fixed,
        }
    }
}

/// The segments of a request body for `op`, or `None` when the operation has no prompt to
/// count or the body does not have the expected shape (the caller keeps its estimate).
pub fn segments(op: Operation, body: &[u8]) -> Option<Segments<'_>> {
    match op {
        Operation::ChatCompletions => chat(body),
        Operation::Messages => messages(body),
        Operation::Embeddings => inputs::<Embeddings<'_>>(body),
        Operation::Completions => inputs::<Completions<'_>>(body),
        Operation::Responses => responses(body),
        Operation::Passthrough
        | Operation::ResponsesResource
        | Operation::ChatCompletionsResource => None,
    }
}

// === OpenAI chat ===

#[derive(Deserialize)]
struct Chat<'a> {
    #[serde(borrow)]
    messages: Vec<ChatMessage<'a>>,
    #[serde(default, borrow)]
    tools: Option<&'a RawValue>,
    /// The deprecated form of `tools`.
    #[serde(default, borrow)]
    functions: Option<&'a RawValue>,
    #[serde(default, borrow)]
    response_format: Option<ResponseFormat<'a>>,
}

#[derive(Deserialize)]
struct ChatMessage<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
    /// The deprecated form of one tool call.
    #[serde(default, borrow)]
    function_call: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(default, borrow)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ResponseFormat<'a> {
    #[serde(default, borrow)]
    json_schema: Option<&'a RawValue>,
}

/// A content part or block, in OpenAI's, Anthropic's or the Responses API's shape, as far as
/// counting needs it.
#[derive(Deserialize)]
struct Part<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    /// OpenAI's `refusal` part.
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    /// OpenAI's `image_url` part (for its `detail`).
    #[serde(default, borrow)]
    image_url: Option<ImageUrl<'a>>,
    /// The Responses API's `input_image` detail.
    #[serde(default, borrow)]
    detail: Option<Cow<'a, str>>,
    /// Anthropic's `tool_use` name.
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    /// Anthropic's `tool_use` input.
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
    /// Anthropic's `tool_result` content (a string or more blocks).
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    /// Anthropic's `thinking` text.
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ImageUrl<'a> {
    #[serde(default, borrow)]
    detail: Option<Cow<'a, str>>,
}

fn chat(body: &[u8]) -> Option<Segments<'_>> {
    let doc: Chat<'_> = serde_json::from_slice(body).ok()?;
    let mut s = Segments {
        fixed: REPLY_PRIMING,
        ..Segments::default()
    };
    for m in doc.messages {
        s.fixed += TOKENS_PER_MESSAGE;
        s.text(m.role);
        if let Some(name) = m.name {
            s.fixed += TOKENS_PER_NAME;
            s.text(name);
        }
        if let Some(c) = m.content {
            content(&mut s, c);
        }
        let calls = m
            .tool_calls
            .into_iter()
            .flatten()
            .filter_map(|c| c.function);
        for f in calls.chain(m.function_call) {
            s.text(f.name.unwrap_or_default());
            s.text(f.arguments.unwrap_or_default());
        }
    }
    for defs in [doc.tools, doc.functions].into_iter().flatten() {
        s.raw_json(defs);
    }
    if let Some(schema) = doc.response_format.and_then(|r| r.json_schema) {
        s.raw_json(schema);
    }
    Some(s)
}

/// A JSON string, borrowed from the body unless it has escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// A message's content: a string, or parts (text counted, images at their estimate, other
/// kinds' text if they have any).
fn content<'a>(s: &mut Segments<'a>, c: &'a RawValue) {
    let raw = c.get();
    match raw.as_bytes().first() {
        Some(b'"') => {
            if let Ok(Text(text)) = serde_json::from_str::<Text<'a>>(raw) {
                s.text(text);
            }
        }
        Some(b'[') => {
            let Ok(parts) = serde_json::from_str::<Vec<Part<'a>>>(raw) else {
                return;
            };
            for p in parts {
                part(s, p);
            }
        }
        _ => {}
    }
}

fn part<'a>(s: &mut Segments<'a>, p: Part<'a>) {
    match p.kind.as_deref() {
        Some("image_url" | "image" | "input_image") => {
            let detail = p.image_url.and_then(|i| i.detail).or(p.detail);
            s.fixed += if detail.as_deref() == Some("low") {
                IMAGE_TOKENS_LOW
            } else {
                IMAGE_TOKENS
            };
        }
        _ => {
            for t in [p.text, p.refusal, p.thinking, p.name]
                .into_iter()
                .flatten()
            {
                s.text(t);
            }
            if let Some(input) = p.input {
                s.raw_json(input);
            }
            if let Some(inner) = p.content {
                content(s, inner);
            }
        }
    }
}

// === Anthropic Messages (counted as the chat it becomes at an OpenAI deployment) ===

#[derive(Deserialize)]
struct Messages<'a> {
    #[serde(default, borrow)]
    system: Option<&'a RawValue>,
    #[serde(borrow)]
    messages: Vec<AnthropicMessage<'a>>,
    #[serde(default, borrow)]
    tools: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct AnthropicMessage<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow)]
    content: &'a RawValue,
}

fn messages(body: &[u8]) -> Option<Segments<'_>> {
    let doc: Messages<'_> = serde_json::from_slice(body).ok()?;
    let mut s = Segments {
        fixed: REPLY_PRIMING,
        ..Segments::default()
    };
    if let Some(system) = doc.system {
        s.fixed += TOKENS_PER_MESSAGE;
        s.text(Cow::Borrowed("system"));
        content(&mut s, system);
    }
    for m in doc.messages {
        s.fixed += TOKENS_PER_MESSAGE;
        s.text(m.role);
        content(&mut s, m.content);
    }
    if let Some(tools) = doc.tools {
        s.raw_json(tools);
    }
    Some(s)
}

// === Embeddings and legacy completions: a string, strings, or token ids ===

#[derive(Deserialize)]
struct Embeddings<'a> {
    #[serde(borrow)]
    input: &'a RawValue,
}

#[derive(Deserialize)]
struct Completions<'a> {
    #[serde(default, borrow)]
    prompt: Option<&'a RawValue>,
}

trait Inputs<'a> {
    fn input(self) -> Option<&'a RawValue>;
}

impl<'a> Inputs<'a> for Embeddings<'a> {
    fn input(self) -> Option<&'a RawValue> {
        Some(self.input)
    }
}

impl<'a> Inputs<'a> for Completions<'a> {
    fn input(self) -> Option<&'a RawValue> {
        self.prompt
    }
}

/// One input of an embeddings or completions request.
#[derive(Deserialize)]
#[serde(untagged)]
enum Input<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Ids(Vec<u64>),
    /// One token id (anything else that is not text counts as one token too).
    Id(serde::de::IgnoredAny),
}

fn inputs<'a, T: Deserialize<'a> + Inputs<'a>>(body: &'a [u8]) -> Option<Segments<'a>> {
    let doc: T = serde_json::from_slice(body).ok()?;
    let mut s = Segments::default();
    let Some(input) = doc.input() else {
        return Some(s);
    };
    let raw = input.get();
    let items: Vec<Input<'a>> = if raw.starts_with('[') {
        serde_json::from_str(raw).ok()?
    } else {
        vec![serde_json::from_str(raw).ok()?]
    };
    for i in items {
        match i {
            Input::Text(t) => s.text(t),
            Input::Ids(ids) => s.fixed += ids.len() as u64,
            Input::Id(_) => s.fixed += 1,
        }
    }
    Some(s)
}

// === The Responses API ===

#[derive(Deserialize)]
struct Responses<'a> {
    #[serde(default, borrow)]
    instructions: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tools: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    output: Option<&'a RawValue>,
}

fn responses(body: &[u8]) -> Option<Segments<'_>> {
    let doc: Responses<'_> = serde_json::from_slice(body).ok()?;
    let mut s = Segments {
        fixed: REPLY_PRIMING,
        ..Segments::default()
    };
    if let Some(i) = doc.instructions {
        s.fixed += TOKENS_PER_MESSAGE;
        s.text(Cow::Borrowed("system"));
        s.text(i);
    }
    if let Some(input) = doc.input {
        let raw = input.get();
        if raw.starts_with('"') {
            s.fixed += TOKENS_PER_MESSAGE;
            s.text(Cow::Borrowed("user"));
            content(&mut s, input);
        } else {
            let items: Vec<&RawValue> = serde_json::from_str(raw).ok()?;
            for raw_item in items {
                let item: Item<'_> = serde_json::from_str(raw_item.get()).ok()?;
                match (item.kind.as_deref(), item.role) {
                    (None | Some("message"), Some(role)) => {
                        s.fixed += TOKENS_PER_MESSAGE;
                        s.text(role);
                        if let Some(c) = item.content {
                            content(&mut s, c);
                        }
                    }
                    (Some("function_call" | "custom_tool_call"), _) => {
                        s.text(item.name.unwrap_or_default());
                        s.text(item.arguments.unwrap_or_default());
                    }
                    (Some(_), _) if item.output.is_some() => {
                        if let Some(out) = item.output {
                            content(&mut s, out);
                        }
                    }
                    // Reasoning, references to earlier items, ...: their JSON, leaning high.
                    _ => s.raw_json(raw_item),
                }
            }
        }
    }
    if let Some(tools) = doc.tools {
        s.raw_json(tools);
    }
    Some(s)
}

// === Counting ===

/// Counts the prompt of a `op` request with `encoding`, within the bounds of the module docs:
/// `None` (keep the estimate) when the body has no countable prompt, its text is over
/// [`MAX_EXACT_BYTES`], the blocking slots are all busy, or the tokenizer is not built in.
pub async fn count(encoding: Encoding, op: Operation, body: &[u8]) -> Option<u64> {
    let segs = segments(op, body)?;
    let bytes = segs.text_bytes();
    if bytes > MAX_EXACT_BYTES {
        return None;
    }
    let bpe = bpe::get(encoding).await?;
    if bytes <= INLINE_BYTES {
        return Some(segs.count(|t| bpe.count(t)));
    }
    let permit = bpe::big_count_permit()?;
    let owned = segs.into_owned();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        owned.count(|t| bpe.count(t))
    })
    .await
    .ok()
}

/// How many prompts above [`INLINE_BYTES`] may be counted at once.
pub fn big_count_slots() -> usize {
    bpe::big_count_slots()
}

/// Whether a routing context-window constraint might decide differently on the real count
/// than on the estimate: `alias` has a routing policy (constraints apply only then) and one of
/// its deployments has a known context window within [`ESTIMATE_FACTOR`] of what the request
/// needs.
pub fn window_is_close(router: &Router, alias: &str, op: Operation, f: &Features) -> bool {
    if op == Operation::Embeddings || router.policy(alias).is_none() {
        return false;
    }
    let Some(deployments) = router.alias_deployments(alias) else {
        return false;
    };
    deployments.iter().any(|d| {
        router
            .capabilities(d)
            .context_window
            .is_some_and(|w| close(u64::from(w), f))
    })
}

/// Whether a context window of `window` tokens is within [`ESTIMATE_FACTOR`] of what a
/// request with features `f` needs (its estimated prompt plus `max_tokens`), so that the
/// estimate cannot tell whether it fits.
fn close(window: u64, f: &Features) -> bool {
    let prompt = f.prompt_tokens;
    window
        .checked_sub(f.max_tokens.unwrap_or(0))
        .is_some_and(|room| {
            prompt.div_ceil(ESTIMATE_FACTOR) <= room
                && room <= prompt.saturating_mul(ESTIMATE_FACTOR)
        })
}

/// A request's prompt count, computed at most once and only when asked for.
pub(crate) struct Prompt<'a> {
    op: Operation,
    body: &'a [u8],
    counted: Option<Option<u64>>,
}

impl<'a> Prompt<'a> {
    /// The prompt of a `op` request with this body; nothing is counted yet.
    pub(crate) fn new(op: Operation, body: &'a [u8]) -> Self {
        Self {
            op,
            body,
            counted: None,
        }
    }

    /// The prompt's tokens by the tokenizer of `model`'s main deployment, counted the first
    /// time this is asked (later calls return the same answer); `None` when that model has no
    /// known tokenizer or the prompt is out of bounds (see [`count`]).
    pub(crate) async fn count(&mut self, router: &Router, model: &str) -> Option<u64> {
        if let Some(known) = self.counted {
            return known;
        }
        let n = match encoding_for(router, model) {
            Some(enc) => count(enc, self.op, self.body).await,
            None => None,
        };
        self.counted = Some(n);
        n
    }

    /// The request body.
    pub(crate) fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The count, if one was made.
    pub(crate) fn counted(&self) -> Option<u64> {
        self.counted.flatten()
    }
}

#[cfg(test)]
mod tests;
