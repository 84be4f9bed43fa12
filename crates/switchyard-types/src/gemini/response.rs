//! Whole (non-streamed) Gemini responses, embeddings and error bodies, translated for OpenAI
//! clients, plus the pieces [`super::stream`] shares.
//!
//! # `GenerateContentResponse` → OpenAI `chat.completion` ([`gemini_to_chat_response`])
//!
//! - `id` is Gemini's `responseId` (else `chatcmpl-<nonce>`); `object` is `chat.completion`;
//!   `created` is the caller's clock; `model` is the name the client asked for.
//! - One choice per candidate, by the candidate's `index`, role `assistant`:
//!   - `content`: the text parts concatenated (`executableCode` and `codeExecutionResult`
//!     parts, from Gemini's code execution tool, as fenced code blocks); `null` when there are
//!     only tool calls;
//!   - `reasoning_content`: the `thought: true` text parts (present when the request asked for
//!     thoughts with `provider_options.gemini.generationConfig.thinkingConfig.includeThoughts`);
//!   - `tool_calls`: one per `functionCall` part, in order, `type: "function"`, `arguments` =
//!     `args` as compact JSON (keys and numbers as Gemini sent them), `id` = Gemini's `id` when
//!     it sent one, else a generated `call_<24 hex digits>`; a part's `thoughtSignature` is kept
//!     in `extra_content.google.thought_signature` (where Google's OpenAI-compatible endpoint
//!     puts it) so clients that send the call back unchanged keep Gemini 3's reasoning chain;
//!   - `refusal`: when Google's filters stopped the candidate before any content, a sentence
//!     naming the reason and the blocked categories (`content` is then `null`).
//! - `finish_reason` from [`super::finish_reason`]: `STOP` → `stop` (`tool_calls` when the
//!   candidate called functions), `MAX_TOKENS` → `length`, `SAFETY`, `RECITATION`,
//!   `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`, `IMAGE_SAFETY` and the other filter reasons →
//!   `content_filter`, anything else → `stop`. Whenever that loses information (any reason but
//!   `STOP` and `MAX_TOKENS`) the choice also carries `native_finish_reason` with Gemini's
//!   reason, and a `content_filter` choice carries `safety_ratings`: Gemini's
//!   `safetyRatings` for the candidate as sent (`category`, `probability`, `blocked`, ...),
//!   which say which category blocked it.
//! - A prompt Gemini refused (`promptFeedback.blockReason`, no candidates) is answered, not
//!   failed: one choice with `content: null`, a `refusal` sentence, `finish_reason:
//!   "content_filter"`, `native_finish_reason` = the block reason and `safety_ratings` = the
//!   prompt's ratings. That is how OpenAI itself reports filtered output, which clients handle
//!   (and an Anthropic client, by composition, gets `stop_reason: "refusal"` with the
//!   sentence as text); an HTTP error would instead invite retries that fail the same way.
//! - `usage`: `prompt_tokens` = `promptTokenCount` + `toolUsePromptTokenCount`,
//!   `completion_tokens` = `candidatesTokenCount` + `thoughtsTokenCount` (OpenAI counts
//!   reasoning tokens as completion tokens), `total_tokens` = `totalTokenCount`,
//!   `prompt_tokens_details.cached_tokens` = `cachedContentTokenCount`,
//!   `completion_tokens_details.reasoning_tokens` = `thoughtsTokenCount`.
//!
//! # Embeddings ([`gemini_to_embeddings_response`])
//!
//! `embedContent`'s `embedding` or `batchEmbedContents`' `embeddings` become OpenAI's list, in
//! order, as floats or, for `encoding_format: base64`, as base64 of little-endian `f32`s (what
//! OpenAI sends). Usage is `usageMetadata.promptTokenCount` when Gemini reports it (Vertex AI),
//! else 0.
//!
//! # Errors ([`parse_error`])
//!
//! Google's `{"error": {"code", "message", "status", "details"}}` (also wrapped in an array,
//! as non-SSE streams send it) is read into a [`GeminiError`], whose [`GeminiError::to_openai`]
//! gives OpenAI's body: the message kept; `type` `invalid_request_error`
//! (`INVALID_ARGUMENT`, `FAILED_PRECONDITION`, `OUT_OF_RANGE`, `NOT_FOUND`),
//! `rate_limit_error` (`RESOURCE_EXHAUSTED`), `authentication_error`
//! (`UNAUTHENTICATED`), `permission_error` (`PERMISSION_DENIED`), `timeout_error`
//! (`DEADLINE_EXCEEDED`), `overloaded_error` (`UNAVAILABLE`) or `server_error`; `code`
//! `context_length_exceeded` when the message says the input has too many tokens,
//! `rate_limit_exceeded` for `RESOURCE_EXHAUSTED`, `model_not_found` for a `NOT_FOUND` about a
//! model, else the status in lower case. [`gemini_error_to_anthropic`] gives Anthropic's body.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{call_id, finish_reason, finish_reason_is_lossless, is_content_filter, TranslateError};
use crate::anthropic::response::{minify_json, to_json};
use crate::openai::{ErrorBody, ErrorObject, Usage};

// ---------------------------------------------------------------------------------------------
// Wire types (Gemini → us)
// ---------------------------------------------------------------------------------------------

/// A `GenerateContentResponse` (also one streamed chunk). Every field is optional so that
/// chunks, which carry only some, parse too.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResponseIn<'a> {
    #[serde(default, borrow)]
    pub(crate) candidates: Option<Vec<CandidateIn<'a>>>,
    #[serde(default, borrow)]
    pub(crate) prompt_feedback: Option<PromptFeedbackIn<'a>>,
    #[serde(default)]
    pub(crate) usage_metadata: Option<UsageMetadata>,
    #[serde(default, borrow)]
    pub(crate) response_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CandidateIn<'a> {
    #[serde(default, borrow)]
    pub(crate) content: Option<ContentIn<'a>>,
    #[serde(default, borrow)]
    pub(crate) finish_reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) safety_ratings: Option<&'a RawValue>,
    #[serde(default)]
    pub(crate) index: Option<u32>,
}

#[derive(Deserialize)]
pub(crate) struct ContentIn<'a> {
    #[serde(default, borrow)]
    pub(crate) parts: Option<Vec<PartIn<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PartIn<'a> {
    #[serde(default, borrow)]
    pub(crate) text: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) thought: Option<bool>,
    #[serde(default, borrow)]
    pub(crate) thought_signature: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) function_call: Option<FunctionCallIn<'a>>,
    #[serde(default, borrow)]
    pub(crate) executable_code: Option<ExecutableCodeIn<'a>>,
    #[serde(default, borrow)]
    pub(crate) code_execution_result: Option<CodeResultIn<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct FunctionCallIn<'a> {
    #[serde(default, borrow)]
    pub(crate) id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(crate) args: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(crate) struct ExecutableCodeIn<'a> {
    #[serde(default, borrow)]
    language: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    code: Cow<'a, str>,
}

#[derive(Deserialize)]
pub(crate) struct CodeResultIn<'a> {
    #[serde(default, borrow)]
    output: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PromptFeedbackIn<'a> {
    #[serde(default, borrow)]
    pub(crate) block_reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) safety_ratings: Option<&'a RawValue>,
}

/// One safety rating, read for the refusal sentence (the ratings themselves are relayed raw).
#[derive(Deserialize)]
struct RatingIn<'a> {
    #[serde(default, borrow)]
    category: Cow<'a, str>,
    #[serde(default, borrow)]
    probability: Option<Cow<'a, str>>,
    #[serde(default)]
    blocked: Option<bool>,
}

/// Gemini's `usageMetadata`. Streamed chunks repeat it with growing counts; the last one is
/// the total.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    /// Prompt tokens, cached ones included.
    #[serde(default)]
    pub prompt_token_count: Option<u64>,
    /// Tokens of all candidates' answers (thoughts excluded).
    #[serde(default)]
    pub candidates_token_count: Option<u64>,
    /// Everything billed.
    #[serde(default)]
    pub total_token_count: Option<u64>,
    /// Prompt tokens read from a cached content.
    #[serde(default)]
    pub cached_content_token_count: Option<u64>,
    /// Thinking tokens.
    #[serde(default)]
    pub thoughts_token_count: Option<u64>,
    /// Tokens of tool results Gemini fed itself (grounding, code execution).
    #[serde(default)]
    pub tool_use_prompt_token_count: Option<u64>,
}

impl UsageMetadata {
    /// The normalised usage (see the module docs for the arithmetic).
    pub fn to_usage(&self) -> Usage {
        let prompt = self
            .prompt_token_count
            .unwrap_or(0)
            .saturating_add(self.tool_use_prompt_token_count.unwrap_or(0));
        let completion = self
            .candidates_token_count
            .unwrap_or(0)
            .saturating_add(self.thoughts_token_count.unwrap_or(0));
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: self
                .total_token_count
                .unwrap_or_else(|| prompt.saturating_add(completion)),
            cached_tokens: self.cached_content_token_count.unwrap_or(0),
            cache_write_tokens: 0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire types (us → OpenAI client)
// ---------------------------------------------------------------------------------------------

/// OpenAI's usage object with the detail blocks Gemini can fill.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetailsOut,
    completion_tokens_details: CompletionDetailsOut,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
struct PromptDetailsOut {
    cached_tokens: u64,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
struct CompletionDetailsOut {
    reasoning_tokens: u64,
}

impl From<&UsageMetadata> for UsageOut {
    fn from(m: &UsageMetadata) -> Self {
        let u = m.to_usage();
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            prompt_tokens_details: PromptDetailsOut {
                cached_tokens: u.cached_tokens,
            },
            completion_tokens_details: CompletionDetailsOut {
                reasoning_tokens: m.thoughts_token_count.unwrap_or(0),
            },
        }
    }
}

#[derive(Serialize)]
struct CompletionOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<ChoiceOut<'a>>,
    usage: UsageOut,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    message: MessageOut,
    logprobs: (),
    finish_reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    native_finish_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_ratings: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct MessageOut {
    role: &'static str,
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut>,
}

/// An OpenAI tool call (whole, or the first delta of a streamed one).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolCallOut {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) function: FunctionOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) extra_content: Option<ExtraContentOut>,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct FunctionOut {
    pub(crate) name: String,
    pub(crate) arguments: String,
}

/// `extra_content: {"google": {"thought_signature": ...}}`.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExtraContentOut {
    pub(crate) google: GoogleExtraOut,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct GoogleExtraOut {
    pub(crate) thought_signature: String,
}

// ---------------------------------------------------------------------------------------------
// Candidates
// ---------------------------------------------------------------------------------------------

/// What one batch of a candidate's parts says, in OpenAI's terms.
#[derive(Debug, Default)]
pub(crate) struct PartsOut {
    pub(crate) text: String,
    pub(crate) has_text: bool,
    pub(crate) reasoning: Option<String>,
    pub(crate) calls: Vec<ToolCallOut>,
}

/// Where the ids of a response's tool calls come from.
#[derive(Debug, Clone)]
pub(crate) struct CallIds<'a> {
    pub(crate) nonce: &'a str,
    pub(crate) response_id: &'a str,
}

/// Reads `parts` of candidate `candidate`; `calls_before` is how many function calls the
/// candidate made in earlier chunks (for stable ids across a stream).
pub(crate) fn read_parts(
    parts: &[PartIn<'_>],
    candidate: u32,
    calls_before: usize,
    ids: &CallIds<'_>,
) -> PartsOut {
    let mut out = PartsOut::default();
    for part in parts {
        if let Some(call) = &part.function_call {
            let arguments = call
                .args
                .map_or_else(|| "{}".to_owned(), |raw| minify_json(raw.get()));
            let position = calls_before + out.calls.len();
            out.calls.push(ToolCallOut {
                id: call_id(
                    call.id.as_deref(),
                    ids.nonce,
                    ids.response_id,
                    candidate,
                    position,
                ),
                kind: "function",
                function: FunctionOut {
                    name: call.name.clone().into_owned(),
                    arguments,
                },
                extra_content: part.thought_signature.as_ref().map(|s| ExtraContentOut {
                    google: GoogleExtraOut {
                        thought_signature: s.clone().into_owned(),
                    },
                }),
            });
        } else if let Some(text) = &part.text {
            if part.thought == Some(true) {
                out.reasoning.get_or_insert_with(String::new).push_str(text);
            } else {
                out.has_text = true;
                out.text.push_str(text);
            }
        } else if let Some(code) = &part.executable_code {
            out.has_text = true;
            let lang =
                code.language
                    .as_deref()
                    .map_or("", |l| if l == "PYTHON" { "python" } else { "" });
            out.text
                .push_str(&format!("\n```{lang}\n{}\n```\n", code.code));
        } else if let Some(result) = &part.code_execution_result {
            out.has_text = true;
            out.text
                .push_str(&format!("\n```output\n{}\n```\n", result.output));
        }
    }
    out
}

/// The sentence put in `refusal` when Google's filters stopped an answer before any content.
pub(crate) fn refusal_sentence(reason: &str, ratings: Option<&RawValue>, prompt: bool) -> String {
    let blocked: Vec<String> = ratings
        .and_then(|r| serde_json::from_str::<Vec<RatingIn<'_>>>(r.get()).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            r.blocked == Some(true) || matches!(r.probability.as_deref(), Some("HIGH" | "MEDIUM"))
        })
        .map(|r| r.category.into_owned())
        .collect();
    let what = if prompt {
        "Gemini blocked the prompt"
    } else {
        "Gemini blocked the response"
    };
    if blocked.is_empty() {
        format!("{what} ({reason}).")
    } else {
        format!("{what} ({reason}: {}).", blocked.join(", "))
    }
}

// ---------------------------------------------------------------------------------------------
// Chat completion
// ---------------------------------------------------------------------------------------------

/// Translates a Gemini `GenerateContentResponse` into an OpenAI `chat.completion` naming
/// `client_model`, and returns its normalised usage with it.
///
/// `created` is the Unix time in seconds to report; `nonce` (unique per request) seeds the ids
/// of tool calls Gemini gave none.
pub fn gemini_to_chat_response(
    body: &[u8],
    client_model: &str,
    created: u64,
    nonce: &str,
) -> Result<(Vec<u8>, Usage), TranslateError> {
    let resp: ResponseIn<'_> = serde_json::from_slice(body)
        .map_err(|e| TranslateError::body(format!("upstream response is not valid: {e}")))?;
    let response_id = resp.response_id.as_deref().unwrap_or("");
    let id = if response_id.is_empty() {
        format!("chatcmpl-{nonce}")
    } else {
        response_id.to_owned()
    };
    let ids = CallIds { nonce, response_id };
    let usage_meta = resp.usage_metadata.unwrap_or_default();

    let mut choices = Vec::new();
    let candidates = resp.candidates.as_deref().unwrap_or_default();
    for (position, cand) in candidates.iter().enumerate() {
        let index = cand
            .index
            .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX));
        let parts = cand
            .content
            .as_ref()
            .and_then(|c| c.parts.as_deref())
            .unwrap_or_default();
        let read = read_parts(parts, index, 0, &ids);
        let native = cand.finish_reason.as_deref().unwrap_or("STOP");
        let finish = finish_reason(native, !read.calls.is_empty());
        let filtered = finish == "content_filter";
        let empty = !read.has_text && read.calls.is_empty();
        let refusal =
            (filtered && empty).then(|| refusal_sentence(native, cand.safety_ratings, false));
        let content = if refusal.is_some() || (!read.has_text && !read.calls.is_empty()) {
            None
        } else {
            Some(read.text)
        };
        choices.push(ChoiceOut {
            index,
            message: MessageOut {
                role: "assistant",
                content,
                reasoning_content: read.reasoning,
                refusal,
                tool_calls: read.calls,
            },
            logprobs: (),
            finish_reason: finish,
            native_finish_reason: (!finish_reason_is_lossless(native)).then_some(native),
            safety_ratings: if filtered { cand.safety_ratings } else { None },
        });
    }
    choices.sort_by_key(|c| c.index);

    if choices.is_empty() {
        let feedback = resp.prompt_feedback.as_ref();
        let Some(reason) = feedback.and_then(|f| f.block_reason.as_deref()) else {
            return Err(TranslateError::field(
                "candidates",
                "upstream response has no candidates and no prompt block reason",
            ));
        };
        let ratings = feedback.and_then(|f| f.safety_ratings);
        choices.push(ChoiceOut {
            index: 0,
            message: MessageOut {
                role: "assistant",
                content: None,
                reasoning_content: None,
                refusal: Some(refusal_sentence(reason, ratings, true)),
                tool_calls: Vec::new(),
            },
            logprobs: (),
            finish_reason: "content_filter",
            native_finish_reason: Some(reason),
            safety_ratings: ratings,
        });
    }

    let out = CompletionOut {
        id: &id,
        object: "chat.completion",
        created,
        model: client_model,
        choices,
        usage: UsageOut::from(&usage_meta),
    };
    Ok((to_json(&out)?, usage_meta.to_usage()))
}

/// Whether a reason string means the prompt or answer was filtered (re-exported for the
/// stream).
pub(crate) fn filtered(reason: &str) -> bool {
    is_content_filter(reason)
}

// ---------------------------------------------------------------------------------------------
// Embeddings
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmbedResponseIn {
    #[serde(default)]
    embedding: Option<EmbeddingIn>,
    #[serde(default)]
    embeddings: Option<Vec<EmbeddingIn>>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
}

#[derive(Deserialize)]
struct EmbeddingIn {
    #[serde(default)]
    values: Vec<f64>,
}

#[derive(Serialize)]
struct EmbeddingsOut<'a> {
    object: &'static str,
    data: Vec<EmbeddingOut>,
    model: &'a str,
    usage: EmbeddingsUsageOut,
}

#[derive(Serialize)]
struct EmbeddingOut {
    object: &'static str,
    index: usize,
    embedding: EmbeddingValue,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EmbeddingValue {
    Floats(Vec<f64>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingsUsageOut {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// Translates an `embedContent` or `batchEmbedContents` response into OpenAI's embeddings
/// list naming `client_model`; `base64` encodes each vector as OpenAI does for
/// `encoding_format: base64`.
pub fn gemini_to_embeddings_response(
    body: &[u8],
    client_model: &str,
    base64: bool,
) -> Result<(Vec<u8>, Usage), TranslateError> {
    let resp: EmbedResponseIn = serde_json::from_slice(body)
        .map_err(|e| TranslateError::body(format!("upstream embeddings are not valid: {e}")))?;
    let vectors = match (resp.embedding, resp.embeddings) {
        (Some(one), _) => vec![one],
        (None, Some(many)) => many,
        (None, None) => {
            return Err(TranslateError::field(
                "embeddings",
                "upstream response has no `embedding` or `embeddings`",
            ))
        }
    };
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, e)| EmbeddingOut {
            object: "embedding",
            index,
            embedding: if base64 {
                let mut bytes = Vec::with_capacity(e.values.len() * 4);
                for v in &e.values {
                    // Narrowing is the point: OpenAI's base64 carries f32s.
                    #[allow(clippy::cast_possible_truncation)]
                    bytes.extend_from_slice(&(*v as f32).to_le_bytes());
                }
                EmbeddingValue::Base64(super::base64(&bytes))
            } else {
                EmbeddingValue::Floats(e.values)
            },
        })
        .collect();
    let prompt = resp
        .usage_metadata
        .and_then(|u| u.prompt_token_count)
        .unwrap_or(0);
    let out = EmbeddingsOut {
        object: "list",
        data,
        model: client_model,
        usage: EmbeddingsUsageOut {
            prompt_tokens: prompt,
            total_tokens: prompt,
        },
    };
    let usage = Usage {
        prompt_tokens: prompt,
        total_tokens: prompt,
        ..Usage::default()
    };
    Ok((to_json(&out)?, usage))
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A Google API error, as read from its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeminiError {
    /// The HTTP code the body states.
    pub code: Option<u16>,
    /// The canonical status, e.g. `RESOURCE_EXHAUSTED` (empty when the body gave none).
    pub status: String,
    /// The human-readable message.
    pub message: String,
    /// `google.rpc.ErrorInfo` `reason`, e.g. `API_KEY_INVALID`.
    pub reason: Option<String>,
    /// `google.rpc.RetryInfo` `retryDelay`, rounded up to whole seconds.
    pub retry_after_secs: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorEnvelopeIn<'a> {
    #[serde(borrow)]
    error: ErrorIn<'a>,
}

#[derive(Deserialize)]
struct ErrorIn<'a> {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default, borrow)]
    message: Cow<'a, str>,
    #[serde(default, borrow)]
    status: Cow<'a, str>,
    #[serde(default, borrow)]
    details: Vec<DetailIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DetailIn<'a> {
    #[serde(rename = "@type", default, borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    retry_delay: Option<Cow<'a, str>>,
}

/// Reads a Google error body (`{"error": {...}}`, or `[{"error": {...}}]` as non-SSE streams
/// send it); `None` when the body is not one.
pub fn parse_error(body: &[u8]) -> Option<GeminiError> {
    // Serde would also read a struct from an array, so the first byte decides the shape.
    let envelope = match body.trim_ascii_start().first() {
        Some(b'[') => serde_json::from_slice::<Vec<ErrorEnvelopeIn<'_>>>(body)
            .ok()
            .and_then(|mut v| (!v.is_empty()).then(|| v.swap_remove(0)))?,
        _ => serde_json::from_slice::<ErrorEnvelopeIn<'_>>(body).ok()?,
    };
    let e = envelope.error;
    if e.message.is_empty() && e.status.is_empty() {
        return None;
    }
    let mut reason = None;
    let mut retry_after_secs = None;
    for d in &e.details {
        if d.kind.ends_with("google.rpc.ErrorInfo") {
            reason = d.reason.as_ref().map(|r| r.clone().into_owned());
        }
        if d.kind.ends_with("google.rpc.RetryInfo") {
            retry_after_secs = d.retry_delay.as_deref().and_then(duration_secs);
        }
    }
    Some(GeminiError {
        code: e.code,
        status: e.status.into_owned(),
        message: e.message.into_owned(),
        reason,
        retry_after_secs,
    })
}

/// A protobuf JSON duration (`"43s"`, `"0.5s"`) in whole seconds, rounded up.
fn duration_secs(d: &str) -> Option<u64> {
    let secs: f64 = d.trim().strip_suffix('s')?.parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    // Bounded above by the check below; the cast cannot wrap.
    let whole = secs.ceil().min(86_400.0);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(whole as u64)
}

impl GeminiError {
    /// Whether the message says the input does not fit the model's context window
    /// (`The input token count (N) exceeds the maximum number of tokens allowed (M).`).
    pub fn is_context_length(&self) -> bool {
        let m = self.message.to_ascii_lowercase();
        m.contains("exceeds the maximum number of tokens")
            || (m.contains("token count") && m.contains("exceeds"))
            || m.contains("context window")
    }

    /// Whether the error is about the gateway's credentials (never relayed: Google echoes key
    /// fragments in some of these bodies).
    pub fn is_credential(&self) -> bool {
        matches!(
            self.status.as_str(),
            "UNAUTHENTICATED" | "PERMISSION_DENIED"
        ) || matches!(
            self.reason.as_deref(),
            Some("API_KEY_INVALID" | "API_KEY_SERVICE_BLOCKED" | "ACCESS_TOKEN_EXPIRED")
        )
    }

    /// OpenAI's error body for this error (see the module docs).
    pub fn to_openai(&self) -> ErrorBody {
        let status = self.status.as_str();
        let kind = match status {
            "INVALID_ARGUMENT"
            | "FAILED_PRECONDITION"
            | "OUT_OF_RANGE"
            | "NOT_FOUND"
            | "ALREADY_EXISTS" => "invalid_request_error",
            "RESOURCE_EXHAUSTED" => "rate_limit_error",
            "UNAUTHENTICATED" => "authentication_error",
            "PERMISSION_DENIED" => "permission_error",
            "DEADLINE_EXCEEDED" => "timeout_error",
            "UNAVAILABLE" => "overloaded_error",
            _ => "server_error",
        };
        let code = if self.is_context_length() && kind == "invalid_request_error" {
            "context_length_exceeded".to_owned()
        } else if status == "RESOURCE_EXHAUSTED" {
            "rate_limit_exceeded".to_owned()
        } else if status == "NOT_FOUND" && self.message.contains("models/") {
            "model_not_found".to_owned()
        } else if status.is_empty() {
            "upstream_error".to_owned()
        } else {
            status.to_ascii_lowercase()
        };
        ErrorBody {
            error: ErrorObject {
                message: self.message.clone(),
                kind: kind.to_owned(),
                param: None,
                code: Some(code),
            },
        }
    }
}

/// Converts a Google error body into Anthropic's, for a client speaking Anthropic (through
/// OpenAI's shape, so both clients see the same message and classification).
pub fn gemini_error_to_anthropic(status: u16, body: &[u8]) -> Vec<u8> {
    match parse_error(body).and_then(|e| serde_json::to_vec(&e.to_openai()).ok()) {
        Some(openai) => crate::anthropic::response::openai_error_to_anthropic(status, &openai),
        None => crate::anthropic::response::openai_error_to_anthropic(status, body),
    }
}

#[cfg(test)]
mod tests;
