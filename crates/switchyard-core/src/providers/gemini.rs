//! The Gemini adapter: Google AI Studio (`type: gemini`) and Vertex AI (`type: vertex`).
//!
//! Both speak the same `generateContent` format at `{base_url}/models/{model}:<method>`; they
//! differ in credentials. AI Studio takes an API key in `x-goog-api-key` (the base URL defaults
//! to `https://generativelanguage.googleapis.com/v1beta`); Vertex AI takes an OAuth access
//! token as `Authorization: Bearer` and a base URL naming the project and location
//! (`https://<location>-aiplatform.googleapis.com/v1/projects/<p>/locations/<location>/publishers/google`,
//! written out or derived from the `project` and `location` keys).
//!
//! Every client API is translated with `switchyard_types::gemini`:
//! - OpenAI chat (`/v1/chat/completions`) → `generateContent`, or
//!   `streamGenerateContent?alt=sse` for a stream, and back;
//! - Anthropic Messages (`/v1/messages`) by composition: Messages → chat (the same translator
//!   the OpenAI adapter uses) → Gemini, and the answer Gemini → chat → Messages, streams
//!   included;
//! - OpenAI embeddings (`/v1/embeddings`) → `embedContent` for one input, or
//!   `batchEmbedContents` for several (AI Studio only; Vertex AI has no batch method, so
//!   several inputs are refused there with a 400).
//!
//! Gemini's stream has no end marker: the translator reports the end on the event that
//! finishes the last candidate, which carries the final usage (see
//! `switchyard_types::gemini::stream`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, StatusCode};
use switchyard_types::anthropic::request::messages_to_chat;
use switchyard_types::anthropic::response::chat_to_messages_response;
use switchyard_types::anthropic::stream::ChatToMessagesStream;
use switchyard_types::gemini::request::{
    chat_to_gemini, embeddings_to_gemini, model_resource, EmbedMethod,
};
use switchyard_types::gemini::response::{
    gemini_to_chat_response, gemini_to_embeddings_response, parse_error, GeminiError,
};
use switchyard_types::gemini::stream::{GeminiToChatStream, StreamStep};
use switchyard_types::openai::Usage;

use super::{
    http_failure, malformed, sse, unix_now, untranslatable, Exchange, Operation, Provider, Reply,
    ResponseBody, StreamStatus, UpstreamRequest,
};
use crate::config::ProviderConfig;
use crate::error::{FailureKind, GatewayError};

static X_GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");

/// The Vertex-shaped path under the embedded mock, for `type: vertex` providers without a URL.
pub const MOCK_VERTEX_PATH: &str =
    "v1/projects/mock-project/locations/us-central1/publishers/google";

/// Which of Google's front doors a provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Google AI Studio: API key in `x-goog-api-key`, batch embeddings available.
    AiStudio,
    /// Vertex AI: OAuth bearer token, one embedding input per request.
    Vertex,
}

/// A Gemini upstream.
#[derive(Debug)]
pub struct Gemini {
    name: Arc<str>,
    flavor: Flavor,
    base: String,
    headers: HeaderMap,
}

impl Gemini {
    /// Builds the adapter for `base` (the URL `models/...` is appended to).
    pub fn new(cfg: &ProviderConfig, base: &str, flavor: Flavor) -> Result<Self, GatewayError> {
        let bad =
            |what: &str| GatewayError::Internal(format!("provider `{}` has {what}", cfg.name));
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &cfg.headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(key) = &cfg.api_key {
            let (name, text) = match flavor {
                Flavor::AiStudio => (X_GOOG_API_KEY.clone(), key.expose().to_owned()),
                Flavor::Vertex => (AUTHORIZATION, format!("Bearer {}", key.expose())),
            };
            let mut value = HeaderValue::from_str(&text).map_err(|_| bad("an invalid api_key"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let base = base.trim_end_matches('/').to_owned();
        // Fail at start-up, not on the first request, if the URL cannot carry a model path.
        format!("{base}/models/m:generateContent")
            .parse::<http::Uri>()
            .map_err(|_| bad("a bad base URL"))?;
        Ok(Self {
            name: Arc::clone(&cfg.name),
            flavor,
            base,
            headers,
        })
    }

    /// `{base}/models/{model}:{method}` (or `{base}/{model}:{method}` for a model given as a
    /// resource path, such as `tunedModels/...`).
    fn uri(&self, model: &str, method: &str) -> Result<http::Uri, GatewayError> {
        format!(
            "{}/{}:{method}",
            self.base,
            percent_encode_path(&model_resource(model))
        )
        .parse()
        .map_err(|e| GatewayError::Internal(format!("bad upstream URL: {e}")))
    }

    /// A Responses request's input tokens, counted by `countTokens`: the request translated as
    /// a create would be (Responses to chat to `generateContent`), given whole to AI Studio as
    /// its `generateContentRequest`, and to Vertex AI as the members its `countTokens` takes.
    fn count_tokens(&self, x: &Exchange<'_>) -> Result<UpstreamRequest, GatewayError> {
        let deployment = format!("{}/{}", self.name, x.model);
        let chat = super::responses::chat_body(self, x)?;
        let t = chat_to_gemini(&chat)
            .map_err(untranslatable)
            .map_err(|e| super::responses::chat_refused(e, &deployment))?;
        let mut request: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&t.body)
                .map_err(|e| GatewayError::Internal(format!("translated body: {e}")))?;
        let body = match self.flavor {
            Flavor::AiStudio => {
                request.insert("model".into(), model_resource(x.model).into());
                serde_json::json!({ "generateContentRequest": request })
            }
            Flavor::Vertex => {
                request.retain(|k, _| {
                    ["contents", "systemInstruction", "tools", "generationConfig"]
                        .contains(&k.as_str())
                });
                serde_json::Value::Object(request)
            }
        };
        Ok(UpstreamRequest {
            uri: self.uri(x.model, "countTokens")?,
            headers: self.headers.clone(),
            body: Bytes::from(body.to_string()),
            reply: Box::new(InputTokens {
                provider: Arc::clone(&self.name),
            }),
        })
    }
}

/// `countTokens`' `{"totalTokens": N, ...}` as OpenAI's `response.input_tokens` object.
struct InputTokens {
    provider: Arc<str>,
}

impl Reply for InputTokens {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Count {
            #[serde(default)]
            total_tokens: u64,
        }
        let count: Count = serde_json::from_slice(body)
            .map_err(|e| super::malformed(&self.provider, "token count", e))?;
        let out = serde_json::json!({
            "object": "response.input_tokens",
            "input_tokens": count.total_tokens,
        });
        Ok(ResponseBody {
            body: Bytes::from(out.to_string()),
            usage: None,
        })
    }

    fn event(&mut self, _event: &[u8], _out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        Err(super::malformed(
            &self.provider,
            "token count",
            "a stream where a JSON object was expected",
        ))
    }

    fn usage(&self) -> Option<Usage> {
        None
    }
}

impl Provider for Gemini {
    fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn build_request(&self, x: &Exchange<'_>) -> Result<UpstreamRequest, GatewayError> {
        let created = unix_now();
        let nonce = nonce(created);
        let (uri, body, reply): (http::Uri, Vec<u8>, Box<dyn Reply>) = match x.op {
            Operation::ChatCompletions => {
                let t = chat_to_gemini(x.body).map_err(untranslatable)?;
                let uri = self.uri(x.model, method(t.stream))?;
                let chat = FromChat {
                    provider: Arc::clone(&self.name),
                    client_model: Arc::clone(x.client_model),
                    created,
                    stream: GeminiToChatStream::new(
                        x.client_model,
                        created,
                        t.include_usage,
                        t.candidates,
                        &nonce,
                    ),
                    nonce,
                };
                (uri, t.body, Box::new(chat))
            }
            Operation::Messages => {
                let chat = messages_to_chat(x.body, x.model).map_err(untranslatable)?;
                let t = chat_to_gemini(&chat.body).map_err(untranslatable)?;
                let uri = self.uri(x.model, method(t.stream))?;
                let reply = FromMessages {
                    chat: FromChat {
                        provider: Arc::clone(&self.name),
                        client_model: Arc::clone(x.client_model),
                        created,
                        // Anthropic's stream ends with the usage, so always ask for it.
                        stream: GeminiToChatStream::new(
                            x.client_model,
                            created,
                            true,
                            t.candidates,
                            &nonce,
                        ),
                        nonce,
                    },
                    messages: ChatToMessagesStream::new(x.client_model),
                };
                (uri, t.body, Box::new(reply))
            }
            Operation::Completions | Operation::Passthrough => {
                let kind = match self.flavor {
                    Flavor::AiStudio => "gemini",
                    Flavor::Vertex => "vertex",
                };
                return Err(super::not_offered(x.op, x, &self.name, kind));
            }
            Operation::Embeddings => {
                let t = embeddings_to_gemini(x.body, x.model, self.flavor == Flavor::AiStudio)
                    .map_err(untranslatable)?;
                let method = match t.method {
                    EmbedMethod::Single => "embedContent",
                    EmbedMethod::Batch => "batchEmbedContents",
                };
                let reply = Embeddings {
                    provider: Arc::clone(&self.name),
                    client_model: Arc::clone(x.client_model),
                    base64: t.base64,
                };
                (self.uri(x.model, method)?, t.body, Box::new(reply))
            }
            Operation::Responses => return super::responses::via_chat(self, x, true),
            Operation::ResponsesResource | Operation::ChatCompletionsResource => {
                return Err(super::not_built(x.op))
            }
        };
        Ok(UpstreamRequest {
            uri,
            headers: self.headers.clone(),
            body: Bytes::from(body),
            reply,
        })
    }

    fn responses_input_tokens(
        &self,
        x: &Exchange<'_>,
    ) -> Option<Result<UpstreamRequest, GatewayError>> {
        Some(self.count_tokens(x))
    }

    fn classify_error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> GatewayError {
        let parsed = parse_error(body);
        let credential = matches!(status.as_u16(), 401 | 403)
            || parsed.as_ref().is_some_and(GeminiError::is_credential);
        if credential {
            // Never relayed: Google echoes part of a rejected key in some of these bodies.
            // AI Studio answers a wrong key with 400 INVALID_ARGUMENT (API_KEY_INVALID); it is
            // the gateway's credential that failed, not the client's request, so it is
            // reported as the 401 it means (a 502 for the client, like any rejected key).
            let status = if status == StatusCode::BAD_REQUEST {
                StatusCode::UNAUTHORIZED
            } else {
                status
            };
            return http_failure(&self.name, status, headers, None, Some(FailureKind::Auth));
        }
        let Some(e) = parsed else {
            return http_failure(&self.name, status, headers, None, None);
        };
        let openai_body = serde_json::to_vec(&e.to_openai()).ok().map(Bytes::from);
        let hint = failure_kind(&e);
        match e.retry_after_secs {
            // Google says when to come back in the body; clients look for the header.
            Some(secs) if !headers.contains_key(RETRY_AFTER) => {
                let mut headers = headers.clone();
                headers.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
                http_failure(&self.name, status, &headers, openai_body, hint)
            }
            _ => http_failure(&self.name, status, headers, openai_body, hint),
        }
    }
}

/// The normalised kind a Google status names, when it says more than the HTTP status.
fn failure_kind(e: &GeminiError) -> Option<FailureKind> {
    Some(match e.status.as_str() {
        "RESOURCE_EXHAUSTED" => FailureKind::RateLimited,
        "UNAVAILABLE" => FailureKind::Overloaded,
        "DEADLINE_EXCEEDED" | "CANCELLED" => FailureKind::Timeout,
        "NOT_FOUND" => FailureKind::NotFound,
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" if e.is_context_length() => {
            FailureKind::ContextLengthExceeded
        }
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => FailureKind::InvalidRequest,
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => FailureKind::UpstreamError,
        _ => return None,
    })
}

fn method(stream: bool) -> &'static str {
    if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    }
}

/// A value unique to this request, seeding the ids of tool calls Gemini gives none.
fn nonce(created: u64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{created:x}{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Percent-encodes a model path for a URL, keeping `/` (resource paths) and the characters
/// model names use.
fn percent_encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// === impl FromChat ===

/// OpenAI client, Gemini upstream: answers translated to chat completions.
struct FromChat {
    provider: Arc<str>,
    client_model: Arc<str>,
    created: u64,
    nonce: String,
    stream: GeminiToChatStream,
}

impl FromChat {
    /// Translates one upstream event into chunk payloads.
    fn chunks(
        &mut self,
        event: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Option<StreamStep>, GatewayError> {
        let parsed = sse::parse(event);
        if parsed.data.is_empty() {
            return Ok(None);
        }
        self.stream
            .push(&parsed.data, out)
            .map(Some)
            .map_err(|e| malformed(&self.provider, "stream event could not be translated", e))
    }
}

impl Reply for FromChat {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        let (body, usage) =
            gemini_to_chat_response(body, &self.client_model, self.created, &self.nonce)
                .map_err(|e| malformed(&self.provider, "response could not be translated", e))?;
        Ok(ResponseBody {
            body: Bytes::from(body),
            usage: Some(usage),
        })
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let mut chunks = Vec::new();
        let step = self.chunks(event, &mut chunks)?;
        for chunk in &chunks {
            sse::write_data(out, chunk);
        }
        Ok(match step {
            None | Some(StreamStep::Continue) => StreamStatus::Continue,
            Some(StreamStep::Done) => {
                sse::write_data(out, b"[DONE]");
                StreamStatus::Done
            }
            Some(StreamStep::Error(payload)) => {
                sse::write_data(out, &payload);
                StreamStatus::UpstreamError
            }
        })
    }

    fn usage(&self) -> Option<Usage> {
        self.stream.usage()
    }
}

// === impl FromMessages ===

/// Anthropic client, Gemini upstream: Gemini → chat → Messages.
struct FromMessages {
    chat: FromChat,
    messages: ChatToMessagesStream,
}

impl FromMessages {
    fn relay(&mut self, payload: &[u8], out: &mut BytesMut) -> Result<StreamStep, GatewayError> {
        let mut events = Vec::new();
        let step = self.messages.push(payload, &mut events).map_err(|e| {
            malformed(
                &self.chat.provider,
                "stream event could not be translated",
                e,
            )
        })?;
        for (name, data) in &events {
            sse::write_named(out, name, data);
        }
        Ok(step)
    }
}

impl Reply for FromMessages {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        let chat = self.chat.body(body)?;
        let (body, usage) = chat_to_messages_response(&chat.body, &self.chat.client_model)
            .map_err(|e| malformed(&self.chat.provider, "response could not be translated", e))?;
        Ok(ResponseBody {
            body: Bytes::from(body),
            usage: Some(usage),
        })
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let mut chunks = Vec::new();
        let step = self.chat.chunks(event, &mut chunks)?;
        for chunk in &chunks {
            self.relay(chunk, out)?;
        }
        let last = match step {
            None | Some(StreamStep::Continue) => return Ok(StreamStatus::Continue),
            Some(StreamStep::Done) => self.relay(b"[DONE]", out)?,
            // An OpenAI error chunk, which the Messages machine turns into Anthropic's body.
            Some(StreamStep::Error(payload)) => self.relay(&payload, out)?,
        };
        Ok(match last {
            StreamStep::Continue | StreamStep::Done => StreamStatus::Done,
            StreamStep::Error(payload) => {
                sse::write_named(out, "error", &payload);
                StreamStatus::UpstreamError
            }
        })
    }

    fn usage(&self) -> Option<Usage> {
        self.chat.usage()
    }
}

// === impl Embeddings ===

/// OpenAI embeddings from `embedContent` / `batchEmbedContents`.
struct Embeddings {
    provider: Arc<str>,
    client_model: Arc<str>,
    base64: bool,
}

impl Reply for Embeddings {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        let (body, usage) = gemini_to_embeddings_response(body, &self.client_model, self.base64)
            .map_err(|e| malformed(&self.provider, "embeddings could not be translated", e))?;
        Ok(ResponseBody {
            body: Bytes::from(body),
            usage: Some(usage),
        })
    }

    fn event(&mut self, _event: &[u8], _out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        Err(malformed(
            &self.provider,
            "embeddings response",
            "an event stream was not expected",
        ))
    }

    fn usage(&self) -> Option<Usage> {
        None
    }
}

#[cfg(test)]
mod tests;
