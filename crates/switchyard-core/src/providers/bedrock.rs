//! The AWS Bedrock adapter: the Converse API at `{base_url}/model/{modelId}/converse` and
//! ConverseStream at `.../converse-stream`, every request signed with SigV4 ([`sigv4`],
//! service `bedrock`).
//!
//! No client speaks Bedrock's format, so both client APIs are translated. An OpenAI client's
//! chat request becomes a Converse request (`switchyard_types::bedrock::request`), and the
//! answer (JSON, or binary eventstream messages that the relay cuts by their length prefix)
//! becomes a chat completion or chunks. An Anthropic client (`/v1/messages`) is served by
//! composition: Messages → chat (`messages_to_chat`) → Converse, and back Converse → chat →
//! Messages (`chat_to_messages_response`, `ChatToMessagesStream`).
//!
//! Errors: Bedrock names the exception in `x-amzn-ErrorType` (or a body's `__type`, or an
//! eventstream message's `:exception-type`) and puts the text in `{"message": ...}`. The
//! exception decides the normalised [`FailureKind`]; the client sees Bedrock's message in its
//! own API's error shape (except for 401/403, whose bodies are never relayed).

pub mod sigv4;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, StatusCode};
use switchyard_types::anthropic::request::messages_to_chat;
use switchyard_types::anthropic::response::chat_to_messages_response;
use switchyard_types::anthropic::stream::{ChatToMessagesStream, StreamStep};
use switchyard_types::bedrock::eventstream;
use switchyard_types::bedrock::request::chat_to_converse;
use switchyard_types::bedrock::response::converse_to_chat_response;
use switchyard_types::bedrock::stream::ConverseToChatStream;
use switchyard_types::bedrock::{
    error_message, error_to_openai, error_type_in_body, exception_name, is_context_length_message,
};
use switchyard_types::openai::Usage;

use super::{
    http_failure, malformed, sse, unix_now, untranslatable, Exchange, Framing, Operation, Provider,
    Reply, ResponseBody, StreamStatus, UpstreamRequest,
};
use crate::config::{AwsCredentials, ProviderConfig};
use crate::error::{FailureKind, GatewayError};

/// The SigV4 signing name of Bedrock's runtime API.
pub const SIGNING_SERVICE: &str = "bedrock";

static X_AMZN_ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");
const EVENTSTREAM: &str = "application/vnd.amazon.eventstream";

/// A Bedrock runtime upstream.
#[derive(Debug)]
pub struct Bedrock {
    name: Arc<str>,
    /// `scheme://authority[/prefix]`, without a trailing slash.
    base: String,
    host: HeaderValue,
    region: String,
    credentials: AwsCredentials,
    headers: HeaderMap,
}

impl Bedrock {
    /// Builds the adapter for the API root `base` (e.g.
    /// `https://bedrock-runtime.us-east-1.amazonaws.com`), signing for `region`.
    pub fn new(
        cfg: &ProviderConfig,
        base: &str,
        region: &str,
        credentials: &AwsCredentials,
    ) -> Result<Self, GatewayError> {
        let bad =
            |what: &str| GatewayError::Internal(format!("provider `{}` has {what}", cfg.name));
        let base = base.trim_end_matches('/').to_owned();
        let uri: http::Uri = base.parse().map_err(|_| bad("a bad base URL"))?;
        let host = sigv4::host_header(&uri)
            .and_then(|h| HeaderValue::from_str(&h).ok())
            .ok_or_else(|| bad("a base URL without a host"))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &cfg.headers {
            headers.insert(name.clone(), value.clone());
        }
        Ok(Self {
            name: Arc::clone(&cfg.name),
            base,
            host,
            region: region.to_owned(),
            credentials: credentials.clone(),
            headers,
        })
    }

    /// The Converse or ConverseStream URL of `model`, whose id is percent-encoded once (a
    /// model id's `:` and an inference profile ARN's `/` must not reach the path raw).
    fn uri(&self, model: &str, stream: bool) -> Result<http::Uri, GatewayError> {
        let action = if stream {
            "converse-stream"
        } else {
            "converse"
        };
        format!(
            "{}/model/{}/{action}",
            self.base,
            sigv4::uri_encode(model.as_bytes())
        )
        .parse()
        .map_err(|e| GatewayError::Internal(format!("bad upstream URL: {e}")))
    }

    /// The signed request for a translated body.
    fn request(
        &self,
        model: &str,
        body: Vec<u8>,
        stream: bool,
        reply: Box<dyn Reply>,
    ) -> Result<UpstreamRequest, GatewayError> {
        let uri = self.uri(model, stream)?;
        let mut headers = self.headers.clone();
        headers.insert(HOST, self.host.clone());
        headers.insert(
            ACCEPT,
            HeaderValue::from_static(if stream {
                EVENTSTREAM
            } else {
                "application/json"
            }),
        );
        let payload_hash = sigv4::hex_sha256(&body);
        let hash_value = HeaderValue::from_str(&payload_hash)
            .map_err(|e| GatewayError::Internal(format!("payload hash: {e}")))?;
        headers.insert(sigv4::X_AMZ_CONTENT_SHA256.clone(), hash_value);
        sigv4::sign(
            "POST",
            &uri,
            &mut headers,
            &payload_hash,
            &self.credentials,
            sigv4::Scope {
                region: &self.region,
                service: SIGNING_SERVICE,
            },
            unix_now(),
        )
        .map_err(|e| GatewayError::Internal(format!("provider `{}`: {e}", self.name)))?;
        Ok(UpstreamRequest {
            uri,
            headers,
            body: Bytes::from(body),
            reply,
        })
    }
}

impl Provider for Bedrock {
    fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn build_request(&self, x: &Exchange<'_>) -> Result<UpstreamRequest, GatewayError> {
        match x.op {
            Operation::ChatCompletions => {
                let t = chat_to_converse(x.body).map_err(untranslatable)?;
                let created = unix_now();
                let id = format!("chatcmpl-{}", uuid::Uuid::now_v7().simple());
                let reply = FromChat {
                    provider: Arc::clone(&self.name),
                    stream: ConverseToChatStream::new(
                        &id,
                        x.client_model,
                        created,
                        t.include_usage,
                        t.json_tool,
                    ),
                    client_model: Arc::clone(x.client_model),
                    id,
                    created,
                    json_tool: t.json_tool,
                };
                self.request(x.model, t.body, t.stream, Box::new(reply))
            }
            Operation::Messages => {
                let chat = messages_to_chat(x.body, x.model).map_err(untranslatable)?;
                let t = chat_to_converse(&chat.body).map_err(untranslatable)?;
                let created = unix_now();
                let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
                let reply = FromMessages {
                    provider: Arc::clone(&self.name),
                    converse: ConverseToChatStream::new(
                        &id,
                        x.client_model,
                        created,
                        t.include_usage,
                        t.json_tool,
                    ),
                    messages: ChatToMessagesStream::new(x.client_model),
                    client_model: Arc::clone(x.client_model),
                    id,
                    created,
                    json_tool: t.json_tool,
                };
                self.request(x.model, t.body, t.stream, Box::new(reply))
            }
            Operation::Completions | Operation::Passthrough => {
                Err(super::not_offered(x.op, x, &self.name, "bedrock"))
            }
            Operation::Embeddings => Err(GatewayError::InvalidField {
                param: "model".into(),
                message: format!(
                    "The model `{}` is served by a Bedrock provider; embeddings are not \
                     supported for this provider type.",
                    x.client_model
                ),
            }),
            // Converse has no portable reasoning setting (it is per model family, through
            // `provider_options.bedrock.additionalModelRequestFields`), so `reasoning.effort` is
            // refused rather than dropped.
            Operation::Responses => super::responses::via_chat(self, x, false),
            Operation::ResponsesResource | Operation::ChatCompletionsResource => {
                Err(super::not_built(x.op))
            }
        }
    }

    fn classify_error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> GatewayError {
        let exception = headers
            .get(&X_AMZN_ERROR_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(exception_name)
            .filter(|n| !n.is_empty())
            .or_else(|| error_type_in_body(body).map(|t| exception_name(&t)))
            .unwrap_or_default();
        let message = error_message(body);
        // Credential errors are never relayed, and neither is a body that is not Bedrock's
        // (a proxy's HTML page): the gateway then describes the failure itself.
        let relayable = !matches!(status.as_u16(), 401 | 403) && !exception.is_empty();
        let openai_body = relayable
            .then(|| serde_json::to_vec(&error_to_openai(&exception, &message)).ok())
            .flatten()
            .map(Bytes::from);
        let hint = failure_kind(&exception, &message);
        http_failure(&self.name, status, headers, openai_body, hint)
    }
}

/// The normalised kind of a Bedrock exception, when its name says more than the status.
pub fn failure_kind(exception: &str, message: &str) -> Option<FailureKind> {
    Some(match exception {
        "ThrottlingException" | "ServiceQuotaExceededException" => FailureKind::RateLimited,
        "ServiceUnavailableException" | "ModelNotReadyException" => FailureKind::Overloaded,
        "ValidationException" if is_context_length_message(message) => {
            FailureKind::ContextLengthExceeded
        }
        "ValidationException" => FailureKind::InvalidRequest,
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignatureException"
        | "ExpiredTokenException"
        | "MissingAuthenticationTokenException" => FailureKind::Auth,
        "ResourceNotFoundException" => FailureKind::NotFound,
        "ModelTimeoutException" => FailureKind::Timeout,
        "ModelErrorException" | "InternalServerException" | "ModelStreamErrorException" => {
            FailureKind::UpstreamError
        }
        _ => return None,
    })
}

/// Decodes one eventstream message (the relay hands over whole messages) and translates it.
fn converse_chunks(
    provider: &Arc<str>,
    stream: &mut ConverseToChatStream,
    message: &[u8],
    chunks: &mut Vec<Vec<u8>>,
) -> Result<StreamStep, GatewayError> {
    let msg = eventstream::decode(message)
        .map_err(|e| malformed(provider, "eventstream message is invalid", e))?;
    stream
        .push(&msg, chunks)
        .map_err(|e| malformed(provider, "stream event could not be translated", e))
}

// === impl FromChat ===

/// OpenAI client: Converse answers translated to chat completions.
struct FromChat {
    provider: Arc<str>,
    client_model: Arc<str>,
    id: String,
    created: u64,
    json_tool: bool,
    stream: ConverseToChatStream,
}

impl FromChat {
    fn write(chunks: &[Vec<u8>], step: StreamStep, out: &mut BytesMut) -> StreamStatus {
        for chunk in chunks {
            sse::write_data(out, chunk);
        }
        match step {
            StreamStep::Continue => StreamStatus::Continue,
            StreamStep::Done => {
                sse::write_data(out, b"[DONE]");
                StreamStatus::Done
            }
            StreamStep::Error(payload) => {
                sse::write_data(out, &payload);
                StreamStatus::UpstreamError
            }
        }
    }
}

impl Reply for FromChat {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        let (body, usage) = converse_to_chat_response(
            body,
            &self.id,
            &self.client_model,
            self.created,
            self.json_tool,
        )
        .map_err(|e| malformed(&self.provider, "response could not be translated", e))?;
        Ok(ResponseBody {
            body: Bytes::from(body),
            usage: Some(usage),
        })
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let mut chunks = Vec::new();
        let step = converse_chunks(&self.provider, &mut self.stream, event, &mut chunks)?;
        Ok(Self::write(&chunks, step, out))
    }

    fn end_of_stream(&mut self, out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let mut chunks = Vec::new();
        match self
            .stream
            .finish(&mut chunks)
            .map_err(|e| malformed(&self.provider, "stream could not be closed", e))?
        {
            Some(step) => Ok(Self::write(&chunks, step, out)),
            None => Ok(StreamStatus::Continue),
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.stream.usage()
    }

    fn framing(&self) -> Framing {
        Framing::EventStream
    }
}

// === impl FromMessages ===

/// Anthropic client: Converse answers translated to chat, then to Anthropic's format.
struct FromMessages {
    provider: Arc<str>,
    client_model: Arc<str>,
    id: String,
    created: u64,
    json_tool: bool,
    converse: ConverseToChatStream,
    messages: ChatToMessagesStream,
}

impl FromMessages {
    /// Feeds chat chunks (and, once the Converse stream is over, `[DONE]` or its error) to
    /// the Messages translator and writes its events.
    fn relay(
        &mut self,
        chunks: &[Vec<u8>],
        step: StreamStep,
        out: &mut BytesMut,
    ) -> Result<StreamStatus, GatewayError> {
        let mut events = Vec::new();
        let mut status = StreamStatus::Continue;
        let last: Option<Vec<u8>> = match step {
            StreamStep::Continue => None,
            StreamStep::Done => Some(b"[DONE]".to_vec()),
            StreamStep::Error(payload) => Some(payload),
        };
        for chunk in chunks.iter().chain(last.iter()) {
            let step = self.messages.push(chunk, &mut events).map_err(|e| {
                malformed(&self.provider, "stream event could not be translated", e)
            })?;
            match step {
                StreamStep::Continue => {}
                StreamStep::Done => status = StreamStatus::Done,
                StreamStep::Error(payload) => {
                    for (name, data) in events.drain(..) {
                        sse::write_named(out, name, &data);
                    }
                    sse::write_named(out, "error", &payload);
                    return Ok(StreamStatus::UpstreamError);
                }
            }
        }
        for (name, data) in &events {
            sse::write_named(out, name, data);
        }
        Ok(status)
    }
}

impl Reply for FromMessages {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        let translate = |e| malformed(&self.provider, "response could not be translated", e);
        let (chat, _) = converse_to_chat_response(
            body,
            &self.id,
            &self.client_model,
            self.created,
            self.json_tool,
        )
        .map_err(translate)?;
        let (body, usage) =
            chat_to_messages_response(&chat, &self.client_model).map_err(translate)?;
        Ok(ResponseBody {
            body: Bytes::from(body),
            usage: Some(usage),
        })
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let mut chunks = Vec::new();
        let step = converse_chunks(&self.provider, &mut self.converse, event, &mut chunks)?;
        self.relay(&chunks, step, out)
    }

    fn end_of_stream(&mut self, out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let mut chunks = Vec::new();
        match self
            .converse
            .finish(&mut chunks)
            .map_err(|e| malformed(&self.provider, "stream could not be closed", e))?
        {
            Some(step) => self.relay(&chunks, step, out),
            None => Ok(StreamStatus::Continue),
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.messages.usage().or_else(|| self.converse.usage())
    }

    fn framing(&self) -> Framing {
        Framing::EventStream
    }
}

#[cfg(test)]
mod tests;
