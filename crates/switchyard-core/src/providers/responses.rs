//! The Responses API (`POST /v1/responses`) on every adapter.
//!
//! OpenAI-type adapters serve it natively: [`Passthrough`] relays the upstream's bytes with
//! only `model` replaced (also inside the `response` object stream events carry). Every other
//! adapter composes it over its chat translator with [`via_chat`]: the request becomes a chat
//! request (`switchyard_types::responses::request`), the adapter builds its upstream request
//! for that, and [`FromChat`] turns the chat answer it produces back into a Responses object
//! or typed event stream. Anything chat cannot carry is a 400 naming the field and the
//! deployment.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde_json::Value;
use switchyard_types::anthropic::TranslateError;
use switchyard_types::json::{self, splice_string, Scan};
use switchyard_types::openai::{is_error_body, Usage};
use switchyard_types::responses::request::{responses_to_chat, ResponsesToChat};
use switchyard_types::responses::response::chat_to_response;
use switchyard_types::responses::stream::{ChatToResponsesStream, Step};
use switchyard_types::responses::{rename_model_within, usage_from_responses, Meta};

use super::{
    malformed, not_json, sse, unix_now, Exchange, Framing, Operation, Provider, Reply,
    ResponseBody, StreamStatus, UpstreamRequest,
};
use crate::error::GatewayError;

/// A fresh response id (`resp_` and 32 hex digits, time-ordered and random).
pub(crate) fn new_response_id() -> String {
    format!("resp_{}", uuid::Uuid::now_v7().simple())
}

/// Builds the upstream request for a Responses request on an adapter that speaks chat
/// completions through a translator: `p` builds the chat request, and its reply is wrapped.
/// `reasoning` says whether `p`'s chat translator honours `reasoning_effort`; when it does not,
/// a request asking for reasoning is refused rather than silently served without.
pub(crate) fn via_chat(
    p: &dyn Provider,
    x: &Exchange<'_>,
    reasoning: bool,
) -> Result<UpstreamRequest, GatewayError> {
    let (deployment, meta, t) = translate(p, x)?;
    if t.reasoning && !reasoning {
        return Err(refused(
            TranslateError::field(
                "reasoning.effort",
                "`reasoning.effort` has no equivalent in this provider's chat translation (set \
                 the model's reasoning through `provider_options` instead)",
            ),
            &deployment,
        ));
    }
    let mut up = p
        .build_request(&Exchange {
            op: Operation::ChatCompletions,
            body: &t.body,
            ..*x
        })
        .map_err(|e| chat_refused(e, &deployment))?;
    up.reply = Box::new(FromChat {
        inner: up.reply,
        provider: Arc::clone(p.name()),
        stream: ChatToResponsesStream::new(meta.clone(), t.shell.clone()),
        meta,
        shell: t.shell,
    });
    Ok(up)
}

/// The chat body a Responses request translates to on deployment `p`/`x.model`, for calls that
/// are not a create (counting its input tokens): the same translation, and the same refusals
/// naming the deployment, as [`via_chat`].
pub(crate) fn chat_body(p: &dyn Provider, x: &Exchange<'_>) -> Result<Vec<u8>, GatewayError> {
    translate(p, x).map(|(_, _, t)| t.body)
}

/// A Responses request on deployment `p`/`x.model` translated to chat: the deployment's name
/// (for refusals), the response's identity and the translation; a refusal names the
/// deployment.
fn translate(
    p: &dyn Provider,
    x: &Exchange<'_>,
) -> Result<(String, Meta, ResponsesToChat), GatewayError> {
    let deployment = format!("{}/{}", p.name(), x.model);
    let meta = Meta {
        id: new_response_id(),
        created_at: unix_now(),
        model: x.client_model.to_string(),
    };
    let t = responses_to_chat(x.body, &meta).map_err(|e| refused(e, &deployment))?;
    Ok((deployment, meta, t))
}

/// An error of a provider's chat translator on the chat request a Responses request became:
/// its field paths are in that chat request, so the message says so and names the deployment.
pub(crate) fn chat_refused(e: GatewayError, deployment: &str) -> GatewayError {
    match e {
        GatewayError::InvalidField { param, message } => GatewayError::Unsupported {
            param: String::new(),
            message: format!(
                "{message} (`{param}` of the chat request this Responses request was \
                 translated to for deployment `{deployment}`)"
            ),
            code: "unsupported_parameter",
        },
        other => other,
    }
}

/// A Responses feature the deployment cannot express: the client's 400, naming both.
fn refused(e: TranslateError, deployment: &str) -> GatewayError {
    GatewayError::Unsupported {
        param: e.param.unwrap_or_default(),
        message: format!(
            "{}: deployment `{deployment}` serves the Responses API by translation to chat \
             completions, which cannot express this.",
            e.message
        ),
        code: "unsupported_parameter",
    }
}

// === impl FromChat ===

/// Wraps a chat reply (whatever the provider sent, already in chat's format) into the
/// Responses API's format.
struct FromChat {
    inner: Box<dyn Reply>,
    provider: Arc<str>,
    meta: Meta,
    shell: Value,
    stream: ChatToResponsesStream,
}

impl FromChat {
    /// Translates the chat events the inner reply wrote into `chat` and appends the Responses
    /// events to `out`; returns the translator's last step.
    fn relay(&mut self, chat: &[u8], out: &mut BytesMut) -> Result<Step, GatewayError> {
        let mut step = Step::Continue;
        let mut rest = chat;
        let mut events = Vec::new();
        loop {
            let (event, next) = match sse::event_end(rest) {
                Some((end, sep)) => (&rest[..end], &rest[end + sep..]),
                None if rest.iter().all(u8::is_ascii_whitespace) => break,
                None => (rest, &b""[..]),
            };
            rest = next;
            let parsed = sse::parse(event);
            if parsed.data.is_empty() {
                continue;
            }
            step = self.stream.push(&parsed.data, &mut events).map_err(|e| {
                malformed(&self.provider, "stream event could not be translated", e)
            })?;
        }
        for (name, payload) in &events {
            sse::write_named(out, name, payload);
        }
        Ok(step)
    }

    fn status(step: Step, inner: StreamStatus) -> StreamStatus {
        match step {
            Step::Done => StreamStatus::Done,
            Step::Failed => StreamStatus::UpstreamError,
            Step::Continue => inner,
        }
    }
}

impl Reply for FromChat {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        let chat = self.inner.body(body)?;
        let (bytes, _, usage) = chat_to_response(&chat.body, &self.shell, &self.meta)
            .map_err(|e| malformed(&self.provider, "response could not be translated", e))?;
        Ok(ResponseBody {
            body: Bytes::from(bytes),
            usage: chat.usage.or(Some(usage)),
        })
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let mut chat = BytesMut::new();
        let inner = self.inner.event(event, &mut chat)?;
        let step = self.relay(&chat, out)?;
        Ok(Self::status(step, inner))
    }

    fn usage(&self) -> Option<Usage> {
        self.inner.usage().or_else(|| self.stream.usage())
    }

    fn framing(&self) -> Framing {
        self.inner.framing()
    }

    fn end_of_stream(&mut self, out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let mut chat = BytesMut::new();
        let inner = self.inner.end_of_stream(&mut chat)?;
        let step = self.relay(&chat, out)?;
        Ok(Self::status(step, inner))
    }
}

// === impl Passthrough ===

/// Responses in, Responses out (OpenAI-type upstreams): bytes pass through with only `model`
/// renamed, at the top level of a response object and inside the `response` object of stream
/// events; usage is read on the way.
pub(crate) struct Passthrough {
    pub(crate) provider: Arc<str>,
    pub(crate) client_model: Arc<str>,
    pub(crate) usage: Option<Usage>,
}

impl Reply for Passthrough {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        let [model, usage] = match json::scan(body, ["model", "usage"]) {
            Scan::Object(found) => found,
            Scan::NotJson => return Err(not_json(&self.provider, body, "response")),
            Scan::NotObject => {
                return Ok(ResponseBody {
                    body: Bytes::copy_from_slice(body),
                    usage: None,
                })
            }
        };
        self.usage = usage
            .and_then(|u| body.get(u))
            .and_then(usage_from_responses);
        let body = match model {
            Some(span) => splice_string(body, span, &self.client_model),
            None => body.to_vec(),
        };
        Ok(ResponseBody {
            body: Bytes::from(body),
            usage: self.usage,
        })
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let mut status = StreamStatus::Continue;
        for line in event.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(data) = line.strip_prefix(b"data:") else {
                // `event:` names, comments and other fields pass through untouched.
                out.extend_from_slice(line);
                out.extend_from_slice(b"\n");
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            out.extend_from_slice(b"data: ");
            if data == b"[DONE]" {
                status = StreamStatus::Done;
                out.extend_from_slice(data);
                out.extend_from_slice(b"\n");
                continue;
            }
            // One scan validates the event and finds its type and its response object.
            let [kind, response] = match json::scan(data, ["type", "response"]) {
                Scan::Object(found) => found,
                Scan::NotJson => return Err(not_json(&self.provider, data, "stream event")),
                Scan::NotObject => [None, None],
            };
            let kind = kind.and_then(|s| data.get(s)).and_then(json::string_value);
            match kind.as_deref() {
                Some("response.completed" | "response.incomplete") => {
                    status = StreamStatus::Done;
                }
                Some("response.failed" | "error") => status = StreamStatus::UpstreamError,
                None if is_error_body(data) => status = StreamStatus::UpstreamError,
                _ => {}
            }
            match response.and_then(|span| rename_model_within(data, span, &self.client_model)) {
                Some((payload, usage)) => {
                    if usage.is_some() {
                        self.usage = usage;
                    }
                    out.extend_from_slice(&payload);
                }
                None => out.extend_from_slice(data),
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

#[cfg(test)]
mod tests;
