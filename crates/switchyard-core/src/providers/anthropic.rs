//! The Anthropic adapter: Messages API at `{base_url}/messages` with `x-api-key` and
//! `anthropic-version`.
//!
//! Two paths. An Anthropic client (`/v1/messages`) is passed through: its bytes go upstream with
//! only `model` replaced, and its `anthropic-beta` and `anthropic-version` headers with them, so
//! prompt caching, extended thinking, citations and beta features work exactly as they do
//! against Anthropic directly. An OpenAI client (`/v1/chat/completions`) is translated with
//! `switchyard_types::anthropic` both ways, streams included.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, StatusCode};
use switchyard_types::anthropic::request::chat_to_messages;
use switchyard_types::anthropic::response::{
    anthropic_error_to_openai, messages_to_chat_response, usage_from_anthropic, AnthropicUsage,
};
use switchyard_types::anthropic::stream::{MessagesToChatStream, StreamStep};
use switchyard_types::anthropic::API_VERSION;
use switchyard_types::extras::passthrough_body;
use switchyard_types::json::{replace_top_level_string, top_level_value};
use switchyard_types::openai::Usage;

use super::{
    check_json, http_failure, malformed, sse, unix_now, untranslatable, Exchange, Operation,
    Provider, Reply, ResponseBody, StreamStatus, UpstreamRequest,
};
use crate::config::ProviderConfig;
use crate::error::GatewayError;

static ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
static ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");
static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// An Anthropic Messages API upstream.
#[derive(Debug)]
pub struct Anthropic {
    name: Arc<str>,
    headers: HeaderMap,
    messages_uri: http::Uri,
    count_tokens_uri: http::Uri,
}

/// The members `POST /v1/messages/count_tokens` takes (it refuses the others, `max_tokens`
/// among them).
const COUNT_TOKENS_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
];

impl Anthropic {
    /// Builds the adapter; `version` is the `anthropic-version` sent when the client names none.
    pub fn new(
        cfg: &ProviderConfig,
        base: &str,
        version: Option<&str>,
    ) -> Result<Self, GatewayError> {
        let bad =
            |what: &str| GatewayError::Internal(format!("provider `{}` has {what}", cfg.name));
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let version = HeaderValue::from_str(version.unwrap_or(API_VERSION))
            .map_err(|_| bad("an invalid api_version"))?;
        headers.insert(ANTHROPIC_VERSION.clone(), version);
        for (name, value) in &cfg.headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(key) = &cfg.api_key {
            let mut value =
                HeaderValue::from_str(key.expose()).map_err(|_| bad("an invalid api_key"))?;
            value.set_sensitive(true);
            headers.insert(X_API_KEY.clone(), value);
        }
        let messages_uri = format!("{base}/messages")
            .parse()
            .map_err(|_| bad("a bad base URL"))?;
        let count_tokens_uri = format!("{base}/messages/count_tokens")
            .parse()
            .map_err(|_| bad("a bad base URL"))?;
        Ok(Self {
            name: Arc::clone(&cfg.name),
            headers,
            messages_uri,
            count_tokens_uri,
        })
    }

    /// A Responses request's input tokens, counted by `count_tokens`: the request is
    /// translated as a create would be (Responses to chat to Messages, so tools, instructions
    /// and the JSON-output tool count as they would be sent), keeping the members
    /// `count_tokens` takes.
    fn count_tokens(&self, x: &Exchange<'_>) -> Result<UpstreamRequest, GatewayError> {
        let deployment = format!("{}/{}", self.name, x.model);
        let chat = super::responses::chat_body(self, x)?;
        let t = chat_to_messages(&chat, x.model)
            .map_err(untranslatable)
            .map_err(|e| super::responses::chat_refused(e, &deployment))?;
        let mut body: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&t.body)
            .map_err(|e| GatewayError::Internal(format!("translated body: {e}")))?;
        body.retain(|k, _| COUNT_TOKENS_FIELDS.contains(&k.as_str()));
        let body = serde_json::to_vec(&body)
            .map_err(|e| GatewayError::Internal(format!("translated body: {e}")))?;
        Ok(UpstreamRequest {
            uri: self.count_tokens_uri.clone(),
            headers: self.headers.clone(),
            body: Bytes::from(body),
            reply: Box::new(InputTokens {
                provider: Arc::clone(&self.name),
            }),
        })
    }
}

impl Provider for Anthropic {
    fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn build_request(&self, x: &Exchange<'_>) -> Result<UpstreamRequest, GatewayError> {
        let mut headers = self.headers.clone();
        let (body, reply): (Vec<u8>, Box<dyn Reply>) = match x.op {
            Operation::Messages => {
                // The client's protocol headers win: they are what its body was written for.
                for name in [&ANTHROPIC_VERSION, &ANTHROPIC_BETA] {
                    let mut values = x.headers.get_all(name).iter().peekable();
                    if values.peek().is_some() {
                        headers.remove(name);
                        for v in values {
                            headers.append(name.clone(), v.clone());
                        }
                    }
                }
                let body = passthrough_body(x.body, x.model, "anthropic")
                    .map_err(untranslatable)?
                    .ok_or_else(|| {
                        GatewayError::Internal("validated body lost its model".into())
                    })?;
                let reply = Passthrough {
                    provider: Arc::clone(&self.name),
                    client_model: Arc::clone(x.client_model),
                    usage: None,
                };
                (body, Box::new(reply))
            }
            Operation::ChatCompletions => {
                let t = chat_to_messages(x.body, x.model).map_err(untranslatable)?;
                let created = unix_now();
                let reply = FromChat {
                    provider: Arc::clone(&self.name),
                    client_model: Arc::clone(x.client_model),
                    created,
                    json_tool: t.json_tool,
                    stream: t.stream.then(|| {
                        MessagesToChatStream::new(
                            x.client_model,
                            created,
                            t.include_usage,
                            t.json_tool,
                        )
                    }),
                };
                (t.body, Box::new(reply))
            }
            Operation::Completions | Operation::Passthrough => {
                return Err(super::not_offered(x.op, x, &self.name, "anthropic"))
            }
            Operation::Embeddings => {
                return Err(GatewayError::InvalidField {
                    param: "model".into(),
                    message: format!(
                        "The model `{}` is served by Anthropic, which has no embeddings API.",
                        x.client_model
                    ),
                })
            }
            Operation::Responses => return super::responses::via_chat(self, x, true),
            Operation::ResponsesResource | Operation::ChatCompletionsResource => {
                return Err(super::not_built(x.op))
            }
        };
        Ok(UpstreamRequest {
            uri: self.messages_uri.clone(),
            headers,
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
        // Credential errors are never relayed: providers echo part of the key in the message.
        let relayable = !matches!(status.as_u16(), 401 | 403);
        let openai_body = relayable
            .then(|| anthropic_error_to_openai(body))
            .flatten()
            .and_then(|b| serde_json::to_vec(&b).ok())
            .map(Bytes::from);
        http_failure(&self.name, status, headers, openai_body, None)
    }
}

// === impl InputTokens ===

/// `count_tokens`' `{"input_tokens": N}` as OpenAI's `response.input_tokens` object.
struct InputTokens {
    provider: Arc<str>,
}

impl Reply for InputTokens {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        #[derive(serde::Deserialize)]
        struct Count {
            input_tokens: u64,
        }
        let count: Count = serde_json::from_slice(body)
            .map_err(|e| malformed(&self.provider, "token count", e))?;
        let out = serde_json::json!({
            "object": "response.input_tokens",
            "input_tokens": count.input_tokens,
        });
        Ok(ResponseBody {
            body: Bytes::from(out.to_string()),
            usage: None,
        })
    }

    fn event(&mut self, _event: &[u8], _out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        Err(malformed(
            &self.provider,
            "token count",
            "a stream where a JSON object was expected",
        ))
    }

    fn usage(&self) -> Option<Usage> {
        None
    }
}

// === impl Passthrough ===

/// Anthropic in, Anthropic out: bytes pass through; `model` is renamed and usage read.
struct Passthrough {
    provider: Arc<str>,
    client_model: Arc<str>,
    usage: Option<AnthropicUsage>,
}

impl Passthrough {
    fn absorb_usage(&mut self, doc: &[u8]) {
        let Some(span) = top_level_value(doc, "usage") else {
            return;
        };
        if let Some(Ok(u)) = doc.get(span).map(serde_json::from_slice::<AnthropicUsage>) {
            match &mut self.usage {
                Some(seen) => seen.merge(&u),
                None => self.usage = Some(u),
            }
        }
    }
}

impl Reply for Passthrough {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        check_json(&self.provider, body, "response")?;
        self.absorb_usage(body);
        let body = replace_top_level_string(body, "model", &self.client_model)
            .unwrap_or_else(|| body.to_vec());
        Ok(ResponseBody {
            body: Bytes::from(body),
            usage: self.usage(),
        })
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let parsed = sse::parse(event);
        let data = &*parsed.data;
        if data.is_empty() {
            out.extend_from_slice(event);
            out.extend_from_slice(b"\n\n");
            return Ok(StreamStatus::Continue);
        }
        #[derive(serde::Deserialize)]
        struct Kind<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        let kind = serde_json::from_slice::<Kind<'_>>(data)
            .map_err(|e| malformed(&self.provider, "stream event is not JSON", e))?;
        match &*kind.kind {
            "message_start" => {
                // The one event that names the model, nested in `message`.
                let mut v: serde_json::Value = serde_json::from_slice(data)
                    .map_err(|e| malformed(&self.provider, "stream event is not JSON", e))?;
                if let Some(message) = v.get_mut("message") {
                    if let Some(u) = message.get("usage") {
                        if let Ok(u) = serde_json::from_value::<AnthropicUsage>(u.clone()) {
                            self.usage = Some(u);
                        }
                    }
                    if message.get("model").is_some() {
                        message["model"] = serde_json::Value::from(&*self.client_model);
                    }
                }
                let payload =
                    serde_json::to_vec(&v).map_err(|e| GatewayError::Internal(e.to_string()))?;
                sse::write_named(out, "message_start", &payload);
                return Ok(StreamStatus::Continue);
            }
            "message_delta" => self.absorb_usage(data),
            _ => {}
        }
        out.extend_from_slice(event);
        out.extend_from_slice(b"\n\n");
        Ok(match &*kind.kind {
            "message_stop" => StreamStatus::Done,
            "error" => StreamStatus::UpstreamError,
            _ => StreamStatus::Continue,
        })
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(usage_from_anthropic)
    }
}

// === impl FromChat ===

/// OpenAI client, Anthropic upstream: answers translated to chat completions.
struct FromChat {
    provider: Arc<str>,
    client_model: Arc<str>,
    created: u64,
    json_tool: bool,
    stream: Option<MessagesToChatStream>,
}

impl Reply for FromChat {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        let (body, usage) =
            messages_to_chat_response(body, &self.client_model, self.created, self.json_tool)
                .map_err(|e| malformed(&self.provider, "response could not be translated", e))?;
        Ok(ResponseBody {
            body: Bytes::from(body),
            usage: Some(usage),
        })
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let provider = Arc::clone(&self.provider);
        let stream = self.stream.get_or_insert_with(|| {
            // A stream the client did not ask for (never sent by Anthropic): still translated.
            MessagesToChatStream::new(&self.client_model, self.created, false, self.json_tool)
        });
        let parsed = sse::parse(event);
        if parsed.data.is_empty() {
            return Ok(StreamStatus::Continue);
        }
        let mut chunks = Vec::new();
        let step = stream
            .push(&parsed.data, &mut chunks)
            .map_err(|e| malformed(&provider, "stream event could not be translated", e))?;
        for chunk in &chunks {
            sse::write_data(out, chunk);
        }
        Ok(match step {
            StreamStep::Continue => StreamStatus::Continue,
            StreamStep::Done => {
                sse::write_data(out, b"[DONE]");
                StreamStatus::Done
            }
            StreamStep::Error(payload) => {
                sse::write_data(out, &payload);
                StreamStatus::UpstreamError
            }
        })
    }

    fn usage(&self) -> Option<Usage> {
        self.stream.as_ref().and_then(MessagesToChatStream::usage)
    }
}

#[cfg(test)]
mod tests;
