//! The OpenAI adapter, for OpenAI and every OpenAI-compatible API.
//!
//! Same format in, same format out: the client's bytes are forwarded with only the `model` value
//! replaced, and responses come back with only `model` replaced by the name the client asked for.
//! An Anthropic client (`/v1/messages`) is translated to chat completions and back, streams
//! included. The Azure flavour differs only in URL shape (`/openai/deployments/{deployment}/...?
//! api-version=`) and credential header (`api-key`).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use switchyard_types::anthropic::request::messages_to_chat;
use switchyard_types::anthropic::response::chat_to_messages_response;
use switchyard_types::anthropic::stream::{ChatToMessagesStream, StreamStep};
use switchyard_types::extras::passthrough_body;
use switchyard_types::json;
use switchyard_types::openai::{is_error_body, read_reply, ReadReply, Usage};

use super::{
    http_failure, malformed, not_json, sse, untranslatable, Exchange, Operation, Provider, Reply,
    ResourceRequest, ResponseBody, StreamStatus, UpstreamRequest,
};
use crate::config::ProviderConfig;
use crate::error::GatewayError;

/// An OpenAI-compatible upstream.
#[derive(Debug)]
pub struct OpenAi {
    name: Arc<str>,
    base: String,
    azure_api_version: Option<String>,
    headers: HeaderMap,
    /// Pre-parsed `{base}/chat/completions` and `{base}/embeddings` (OpenAI style only, whose
    /// URLs do not depend on the model), so the hot path neither formats nor parses URLs.
    fixed_uris: Option<(http::Uri, http::Uri)>,
}

impl OpenAi {
    /// Builds the adapter; `azure_api_version` selects the Azure URL and header style.
    pub fn new(
        cfg: &ProviderConfig,
        base: String,
        azure_api_version: Option<String>,
    ) -> Result<Self, GatewayError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &cfg.headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(key) = &cfg.api_key {
            let (name, text) = if azure_api_version.is_some() {
                (
                    http::HeaderName::from_static("api-key"),
                    key.expose().to_owned(),
                )
            } else {
                (AUTHORIZATION, format!("Bearer {}", key.expose()))
            };
            let mut value = HeaderValue::from_str(&text).map_err(|_| {
                GatewayError::Internal(format!("provider `{}` has an invalid api_key", cfg.name))
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let fixed_uris = if azure_api_version.is_none() {
            let parse = |tail: &str| {
                format!("{base}/{tail}").parse::<http::Uri>().map_err(|e| {
                    GatewayError::Internal(format!(
                        "provider `{}` has a bad base URL: {e}",
                        cfg.name
                    ))
                })
            };
            Some((parse("chat/completions")?, parse("embeddings")?))
        } else {
            None
        };
        Ok(Self {
            name: Arc::clone(&cfg.name),
            base,
            azure_api_version,
            headers,
            fixed_uris,
        })
    }

    fn chat_uri(&self, model: &str) -> Result<http::Uri, GatewayError> {
        match &self.fixed_uris {
            Some((chat, _)) => Ok(chat.clone()),
            None => self
                .url(Operation::ChatCompletions, model)
                .parse()
                .map_err(|e| GatewayError::Internal(format!("bad upstream URL: {e}"))),
        }
    }

    /// Where the Responses API lives: `{base}/responses`, or on Azure the v1 surface
    /// `{base}/openai/v1/responses` (Azure serves the Responses API only there, with the
    /// deployment named by the body's `model` and no `api-version`).
    fn responses_url(&self) -> String {
        match &self.azure_api_version {
            None => format!("{}/responses", self.base),
            Some(_) => format!("{}/openai/v1/responses", self.base),
        }
    }

    /// Where stored chat completions live: `{base}/chat/completions`, or on Azure the v1
    /// surface `{base}/openai/v1/chat/completions` (the stored-completion endpoints name no
    /// deployment, and Azure serves them there without an `api-version`).
    fn stored_chat_url(&self) -> String {
        match &self.azure_api_version {
            None => format!("{}/chat/completions", self.base),
            Some(_) => format!("{}/openai/v1/chat/completions", self.base),
        }
    }

    fn url(&self, op: Operation, model: &str) -> String {
        let tail = match op {
            Operation::ChatCompletions
            | Operation::Messages
            | Operation::ChatCompletionsResource => "chat/completions",
            Operation::Embeddings => "embeddings",
            Operation::Completions | Operation::Passthrough => "completions",
            Operation::Responses | Operation::ResponsesResource => "responses",
        };
        match &self.azure_api_version {
            None => format!("{}/{tail}", self.base),
            Some(v) => format!(
                "{}/openai/deployments/{}/{tail}?api-version={}",
                self.base,
                percent_encode(model),
                percent_encode(v)
            ),
        }
    }
}

impl Provider for OpenAi {
    fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn build_request(&self, x: &Exchange<'_>) -> Result<UpstreamRequest, GatewayError> {
        let op = x.op;
        let body = match op {
            Operation::Passthrough => {
                return Err(GatewayError::Internal(
                    "pass-through requests do not use adapters".into(),
                ))
            }
            Operation::ChatCompletions | Operation::Embeddings | Operation::Completions => {
                passthrough_body(x.body, x.model, "openai")
                    .map_err(untranslatable)?
                    .ok_or_else(|| GatewayError::Internal("validated body lost its model".into()))?
            }
            Operation::Responses => {
                let body = passthrough_body(x.body, x.model, "openai")
                    .map_err(untranslatable)?
                    .ok_or_else(|| {
                        GatewayError::Internal("validated body lost its model".into())
                    })?;
                return Ok(UpstreamRequest {
                    uri: self
                        .responses_url()
                        .parse()
                        .map_err(|e| GatewayError::Internal(format!("bad upstream URL: {e}")))?,
                    headers: self.headers.clone(),
                    body: Bytes::from(body),
                    reply: Box::new(super::responses::Passthrough {
                        provider: Arc::clone(&self.name),
                        client_model: Arc::clone(x.client_model),
                        usage: None,
                    }),
                });
            }
            Operation::ResponsesResource | Operation::ChatCompletionsResource => {
                return Err(super::not_built(op))
            }
            Operation::Messages => {
                let t = messages_to_chat(x.body, x.model).map_err(untranslatable)?;
                let reply = FromMessages {
                    provider: Arc::clone(&self.name),
                    client_model: Arc::clone(x.client_model),
                    stream: ChatToMessagesStream::new(x.client_model),
                };
                return Ok(UpstreamRequest {
                    uri: self.chat_uri(x.model)?,
                    headers: self.headers.clone(),
                    body: Bytes::from(t.body),
                    reply: Box::new(reply),
                });
            }
        };
        let uri = match (&self.fixed_uris, op) {
            (Some((_, embeddings)), Operation::Embeddings) => embeddings.clone(),
            (_, Operation::Embeddings | Operation::Completions) => self
                .url(op, x.model)
                .parse()
                .map_err(|e| GatewayError::Internal(format!("bad upstream URL: {e}")))?,
            _ => self.chat_uri(x.model)?,
        };
        Ok(UpstreamRequest {
            uri,
            headers: self.headers.clone(),
            body: Bytes::from(body),
            reply: Box::new(Passthrough {
                provider: Arc::clone(&self.name),
                model_json: json::encode_string(x.client_model).into(),
                usage: None,
            }),
        })
    }

    fn serves_responses(&self) -> bool {
        true
    }

    fn responses_resource(
        &self,
        method: &http::Method,
        tail: &str,
    ) -> Result<ResourceRequest, GatewayError> {
        let mut headers = self.headers.clone();
        headers.remove(CONTENT_TYPE);
        Ok(ResourceRequest {
            method: method.clone(),
            uri: format!("{}/{tail}", self.responses_url())
                .parse()
                .map_err(|e| GatewayError::Internal(format!("bad upstream URL: {e}")))?,
            headers,
        })
    }

    fn keeps_chat_completions(&self) -> bool {
        true
    }

    fn chat_completions_resource(
        &self,
        method: &http::Method,
        tail: &str,
    ) -> Result<ResourceRequest, GatewayError> {
        let mut headers = self.headers.clone();
        if method != http::Method::POST {
            headers.remove(CONTENT_TYPE);
        }
        let base = self.stored_chat_url();
        let url = match tail {
            "" => base,
            t if t.starts_with('?') => format!("{base}{t}"),
            t => format!("{base}/{t}"),
        };
        Ok(ResourceRequest {
            method: method.clone(),
            uri: url
                .parse()
                .map_err(|e| GatewayError::Internal(format!("bad upstream URL: {e}")))?,
            headers,
        })
    }

    fn classify_error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> GatewayError {
        // Credential errors are never relayed: providers echo part of the key in the message.
        let relayable = !matches!(status.as_u16(), 401 | 403) && is_error_body(body);
        let openai_body = relayable.then(|| Bytes::copy_from_slice(body));
        http_failure(&self.name, status, headers, openai_body, None)
    }
}

/// Same format both ways: bytes pass through with only `model` renamed.
struct Passthrough {
    provider: Arc<str>,
    /// The client's model name as a JSON string, encoded once for every event.
    model_json: Box<str>,
    usage: Option<Usage>,
}

impl Passthrough {
    /// Appends `doc` to `out` with the `model` value at `span` replaced by the client's name.
    fn put(&self, out: &mut BytesMut, doc: &[u8], model: Option<std::ops::Range<usize>>) {
        match model.and_then(|span| Some((doc.get(..span.start)?, doc.get(span.end..)?))) {
            Some((before, after)) => {
                out.reserve(doc.len() + self.model_json.len());
                out.extend_from_slice(before);
                out.extend_from_slice(self.model_json.as_bytes());
                out.extend_from_slice(after);
            }
            None => out.extend_from_slice(doc),
        }
    }
}

impl Reply for Passthrough {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        match read_reply(body) {
            ReadReply::Object { model, usage } => {
                let mut out = BytesMut::new();
                self.put(&mut out, body, model);
                Ok(ResponseBody {
                    body: out.freeze(),
                    usage,
                })
            }
            ReadReply::NotJson => Err(not_json(&self.provider, body, "response")),
            // Valid JSON but not an object (an array, a string), or an error object in a
            // success: relayed as it is.
            ReadReply::NotObject | ReadReply::Error => Ok(ResponseBody {
                body: Bytes::copy_from_slice(body),
                usage: None,
            }),
        }
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let mut status = StreamStatus::Continue;
        // Room for the event as it will leave: one allocation instead of one per piece.
        out.reserve(event.len() + self.model_json.len() + 8);
        for line in event.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(data) = line.strip_prefix(b"data:") else {
                // Comments (`: ping`), `event:`, `id:` and `retry:` lines pass through untouched.
                out.extend_from_slice(line);
                out.extend_from_slice(b"\n");
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            out.extend_from_slice(b"data: ");
            if data == b"[DONE]" {
                status = StreamStatus::Done;
                out.extend_from_slice(data);
            } else {
                match read_reply(data) {
                    ReadReply::NotJson => {
                        return Err(not_json(&self.provider, data, "stream event"));
                    }
                    ReadReply::Error => {
                        status = StreamStatus::UpstreamError;
                        out.extend_from_slice(data);
                    }
                    ReadReply::Object { model, usage } => {
                        if usage.is_some() {
                            self.usage = usage;
                        }
                        self.put(out, data, model);
                    }
                    ReadReply::NotObject => out.extend_from_slice(data),
                }
            }
            out.extend_from_slice(b"\n");
        }
        out.extend_from_slice(b"\n");
        Ok(status)
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

/// Anthropic client, OpenAI-compatible upstream: answers translated to Anthropic's format.
struct FromMessages {
    provider: Arc<str>,
    client_model: Arc<str>,
    stream: ChatToMessagesStream,
}

impl Reply for FromMessages {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        let (body, usage) = chat_to_messages_response(body, &self.client_model)
            .map_err(|e| malformed(&self.provider, "response could not be translated", e))?;
        Ok(ResponseBody {
            body: Bytes::from(body),
            usage: Some(usage),
        })
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let parsed = sse::parse(event);
        if parsed.data.is_empty() {
            return Ok(StreamStatus::Continue);
        }
        let mut events = Vec::new();
        let step = self
            .stream
            .push(&parsed.data, &mut events)
            .map_err(|e| malformed(&self.provider, "stream event could not be translated", e))?;
        for (name, payload) in &events {
            sse::write_named(out, name, payload);
        }
        Ok(match step {
            StreamStep::Continue => StreamStatus::Continue,
            StreamStep::Done => StreamStatus::Done,
            StreamStep::Error(payload) => {
                sse::write_named(out, "error", &payload);
                StreamStatus::UpstreamError
            }
        })
    }

    fn usage(&self) -> Option<Usage> {
        self.stream.usage()
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
