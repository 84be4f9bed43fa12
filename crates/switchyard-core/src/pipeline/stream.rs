//! Relaying a provider's server-sent events to the client, one event at a time.
//!
//! The relay is an `http_body::Body` that pulls from the upstream body only when the client's
//! connection asks for more, so a slow client slows the upstream read instead of growing a
//! buffer, and a client that disconnects drops the upstream connection at once (no orphaned
//! generation). Each complete event is rewritten (model name) and forwarded as soon as its
//! terminating blank line arrives; nothing waits for the end of the stream.
//!
//! Once the first byte has gone to the client the status line cannot change, so every later
//! failure (upstream reset, malformed event, idle or total timeout, stream ending without
//! `[DONE]`) ends the stream with a well-formed `data: {"error": ...}` event, which OpenAI's SDKs
//! raise as an API error, and a clean end of body.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use tokio::time::{Instant, Sleep};

use super::ctx::{Outcome, RequestCtx};
use crate::config::Timeouts;
use crate::error::{GatewayError, TimeoutPhase, UpstreamErrorKind};
use crate::http_client::UpstreamBody;
use crate::providers::{ClientApi, Framing, Reply, StreamStatus};
use crate::server::error::stream_error_event;

/// Most bytes gathered into one frame from events that are already available.
const MAX_BATCH: usize = 32 * 1024;

/// The streaming response body.
pub struct SseRelay {
    upstream: UpstreamBody,
    provider: Arc<str>,
    reply: Box<dyn Reply>,
    api: ClientApi,
    buf: BytesMut,
    idle_after: Duration,
    idle: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
    total: Duration,
    ctx: Option<RequestCtx>,
    saw_done: bool,
    upstream_error: bool,
    resume: Option<Resume>,
    /// Bytes of generated text (content, tool arguments) sent, for a usage estimate when the
    /// provider reports none.
    text_bytes: u64,
}

/// What a stream needs to continue on another deployment after it broke (alias option
/// `stream_resume`): the original request, where it may go, and the text already sent.
pub struct ResumePlan {
    /// A handle on the gateway (shared state, this worker's client).
    pub gw: super::Gateway,
    /// The alias's candidates, in order.
    pub candidates: Vec<crate::config::Deployment>,
    /// The client's request body.
    pub body: Bytes,
    /// The client's headers.
    pub headers: http::HeaderMap,
    /// The model name the client asked for.
    pub client_model: Arc<str>,
}

impl std::fmt::Debug for ResumePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumePlan")
            .field("candidates", &self.candidates.len())
            .finish_non_exhaustive()
    }
}

/// A continuation's upstream exchange being opened.
type Opening = Pin<Box<dyn Future<Output = Result<super::Opened, GatewayError>> + Send>>;

/// A relay's resume state.
struct Resume {
    plan: Arc<ResumePlan>,
    /// The deployment now streaming.
    current: crate::config::Deployment,
    /// Assistant text the client has received so far.
    sent: String,
    /// Continuations still allowed.
    left: u32,
    /// The continuation being opened.
    pending: Option<Opening>,
}

/// Most continuations of one stream.
const MAX_RESUMES: u32 = 2;

impl SseRelay {
    /// Wraps an upstream event-stream body. `timeouts` gives the idle gap and the total budget
    /// whose end, for this request, is `deadline`.
    pub fn new(
        upstream: UpstreamBody,
        provider: Arc<str>,
        reply: Box<dyn Reply>,
        api: ClientApi,
        timeouts: &Timeouts,
        deadline: Instant,
        ctx: RequestCtx,
    ) -> Self {
        let (idle_after, total) = (timeouts.stream_idle, timeouts.total);
        Self {
            upstream,
            provider,
            reply,
            api,
            buf: BytesMut::new(),
            idle_after,
            idle: Box::pin(tokio::time::sleep(idle_after)),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            total,
            ctx: Some(ctx),
            saw_done: false,
            text_bytes: 0,
            upstream_error: false,
            resume: None,
        }
    }

    /// Lets the stream continue on another deployment when it breaks (OpenAI clients only:
    /// the text sent so far is read back from their chunks).
    pub fn with_resume(
        mut self,
        plan: Arc<ResumePlan>,
        current: crate::config::Deployment,
    ) -> Self {
        if self.api == ClientApi::OpenAi {
            self.resume = Some(Resume {
                plan,
                current,
                sent: String::new(),
                left: MAX_RESUMES,
                pending: None,
            });
        }
        self
    }

    /// Starts a continuation after `err`, if this stream may resume: the original request with
    /// the text sent so far as an assistant prefix, on the next deployment.
    fn start_resume(&mut self, err: &GatewayError) -> bool {
        let Some(r) = self.resume.as_mut() else {
            return false;
        };
        if r.left == 0 || self.upstream_error || !crate::resilience::is_retryable(err) {
            return false;
        }
        let Ok(serde_json::Value::Object(mut req)) =
            serde_json::from_slice::<serde_json::Value>(&r.plan.body)
        else {
            return false;
        };
        let Some(serde_json::Value::Array(messages)) = req.get_mut("messages") else {
            return false;
        };
        if !r.sent.is_empty() {
            messages.push(serde_json::json!({"role": "assistant", "content": r.sent}));
        }
        let Ok(body) = serde_json::to_vec(&req) else {
            return false;
        };
        let candidates = &r.plan.candidates;
        let at = candidates
            .iter()
            .position(|d| d.provider.name == r.current.provider.name && d.model == r.current.model);
        let next = match at {
            Some(i) => candidates[(i + 1) % candidates.len()].clone(),
            None => r.current.clone(),
        };
        r.left -= 1;
        crate::resilience::Events::add(&r.plan.gw.health.events.stream_resumes);
        if let Some(ctx) = self.ctx.as_mut() {
            ctx.note_failure(&r.current, err);
            ctx.attempt_started = Some(Instant::now());
        }
        r.current = next.clone();
        let plan = Arc::clone(&r.plan);
        r.pending = Some(Box::pin(async move {
            super::open(
                &plan.gw,
                crate::providers::Operation::ChatCompletions,
                &next,
                &body,
                &plan.headers,
                &plan.client_model,
                None,
            )
            .await
        }));
        true
    }

    /// Collects the assistant text of the OpenAI chunks in `written`.
    fn note_sent(&mut self, written: &[u8]) {
        let Some(r) = self.resume.as_mut() else {
            return;
        };
        for line in written.split(|b| *b == b'\n') {
            let Some(data) = line.strip_prefix(b"data: ") else {
                continue;
            };
            if let Ok(chunk) = serde_json::from_slice::<serde_json::Value>(data) {
                if let Some(text) = chunk["choices"][0]["delta"]["content"].as_str() {
                    r.sent.push_str(text);
                }
            }
        }
    }

    fn finish(&mut self, outcome: Outcome, error: Option<&GatewayError>) {
        if let Some(mut ctx) = self.ctx.take() {
            if let Some(usage) = self.reply.usage() {
                ctx.usage = Some(usage);
            }
            if ctx.usage.is_none() {
                // No usage from the provider: estimate it (and say so in the record), so the
                // request is neither free nor uncounted in budgets.
                let prompt = ctx.prompt_estimate.unwrap_or(0);
                let completion = crate::routing::estimate::text_tokens(self.text_bytes);
                ctx.usage = Some(switchyard_types::openai::Usage {
                    prompt_tokens: prompt,
                    completion_tokens: completion,
                    total_tokens: prompt + completion,
                    ..Default::default()
                });
                ctx.usage_estimated = true;
            }
            ctx.log(200, outcome, error);
        }
    }

    /// Ends the stream with an error event appended to `out` — or, when the stream may resume,
    /// starts the continuation and sends what `out` holds so far.
    fn fail(
        &mut self,
        cx: &mut Context<'_>,
        mut out: BytesMut,
        err: GatewayError,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if self.start_resume(&err) {
            if out.is_empty() {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
        }
        out.extend_from_slice(&stream_error_event(&err, self.api));
        self.finish(Outcome::StreamError, Some(&err));
        Poll::Ready(Some(Ok(Frame::data(out.freeze()))))
    }

    /// Moves every complete event from `buf` to `out`, rewritten.
    fn drain_events(&mut self, out: &mut BytesMut) -> Result<(), GatewayError> {
        let framing = self.reply.framing();
        while let Some((end, sep_len)) = find_event_end(framing, &self.buf)
            .map_err(|m| GatewayError::upstream(&self.provider, UpstreamErrorKind::Malformed(m)))?
        {
            let event = self.buf.split_to(end + sep_len);
            self.relay_event(&event[..end], out)?;
        }
        Ok(())
    }

    /// Appends one translated event to `out`; on error `out` is left as it was, so no half
    /// event ever reaches the client.
    fn relay_event(&mut self, event: &[u8], out: &mut BytesMut) -> Result<(), GatewayError> {
        let mark = out.len();
        let status = self.reply.event(event, out);
        if status.is_ok() {
            self.text_bytes += generated_text_bytes(&out[mark..]);
        }
        if status.is_ok() && self.resume.is_some() {
            let written = out[mark..].to_vec();
            self.note_sent(&written);
        }
        if let Some(ctx) = self.ctx.as_mut().filter(|c| c.bodies.wants_response()) {
            if status.is_ok() {
                ctx.bodies.note_stream(self.api, &out[mark..]);
            }
        }
        match status {
            Ok(StreamStatus::Continue) => {}
            Ok(StreamStatus::Done) => self.saw_done = true,
            Ok(StreamStatus::UpstreamError) => self.upstream_error = true,
            Err(e) => {
                out.truncate(mark);
                return Err(e);
            }
        }
        Ok(())
    }

    fn first_output(&mut self) {
        if let Some(ctx) = self.ctx.as_mut() {
            if ctx.ttft_ms.is_none() {
                ctx.ttft_ms = Some(ctx.elapsed_ms());
            }
        }
    }
}

/// Bytes of generated text in client-dialect stream output: the JSON string values of
/// `"content"`, `"arguments"` (OpenAI) and `"text"`, `"partial_json"` (Anthropic), escapes
/// counted as written. A cheap scan, no parse: it feeds only an estimate.
pub(crate) fn generated_text_bytes(out: &[u8]) -> u64 {
    const KEYS: [&[u8]; 4] = [
        b"\"content\":\"",
        b"\"arguments\":\"",
        b"\"text\":\"",
        b"\"partial_json\":\"",
    ];
    let mut total = 0u64;
    let mut i = 0;
    while i < out.len() {
        if out[i] != b'"' {
            i += 1;
            continue;
        }
        let Some(key) = KEYS.iter().find(|k| out[i..].starts_with(k)) else {
            i += 1;
            continue;
        };
        i += key.len();
        let start = i;
        while i < out.len() && out[i] != b'"' {
            i += if out[i] == b'\\' { 2 } else { 1 };
        }
        total += (i.min(out.len()) - start) as u64;
    }
    total
}

/// Largest eventstream message accepted; AWS caps a message at 16 MiB.
const MAX_EVENTSTREAM_MESSAGE: usize = 16 * 1024 * 1024;

/// Smallest well-formed eventstream message: a 12-byte prelude and a 4-byte message CRC.
const MIN_EVENTSTREAM_MESSAGE: usize = 16;

/// Finds the end of the first complete event in `buf`: the length of the event as handed to
/// the adapter and the length of the separator after it.
fn find_event_end(framing: Framing, buf: &[u8]) -> Result<Option<(usize, usize)>, String> {
    match framing {
        Framing::Sse => Ok(crate::providers::sse::event_end(buf)),
        Framing::EventStream => {
            let Some(prefix) = buf.get(..4) else {
                return Ok(None);
            };
            let total = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
            if !(MIN_EVENTSTREAM_MESSAGE..=MAX_EVENTSTREAM_MESSAGE).contains(&total) {
                return Err(format!(
                    "eventstream message length {total} is out of range"
                ));
            }
            Ok((buf.len() >= total).then_some((total, 0)))
        }
    }
}

impl Body for SseRelay {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let mut out = BytesMut::new();
        loop {
            if this.ctx.is_none() {
                return Poll::Ready(None);
            }
            if let Some(pending) = this.resume.as_mut().and_then(|r| r.pending.as_mut()) {
                let opened = match pending.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(opened) => opened,
                };
                if let Some(r) = this.resume.as_mut() {
                    r.pending = None;
                }
                match opened {
                    Ok(o) if super::is_stream(&o.parts) => {
                        this.upstream = o.body;
                        this.reply = o.reply;
                        this.provider = o.provider;
                        this.buf.clear();
                        this.idle.as_mut().reset(Instant::now() + this.idle_after);
                        this.deadline.as_mut().reset(o.deadline);
                        if let Some(ctx) = this.ctx.as_mut() {
                            ctx.provider = Some(Arc::clone(&this.provider));
                        }
                    }
                    Ok(o) => {
                        let kind = UpstreamErrorKind::Malformed(
                            "the continuation of a resumed stream is not a stream".into(),
                        );
                        let err = GatewayError::upstream(&o.provider, kind);
                        this.resume = None;
                        return this.fail(cx, out, err);
                    }
                    // Another continuation may still be allowed (`fail` decides).
                    Err(e) => return this.fail(cx, out, e),
                }
            }
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Pending => {
                    if !out.is_empty() {
                        break;
                    }
                    let provider = Arc::clone(&this.provider);
                    if this.deadline.as_mut().poll(cx).is_ready() {
                        let kind = UpstreamErrorKind::Timeout {
                            phase: TimeoutPhase::Total,
                            after: this.total,
                        };
                        return this.fail(cx, out, GatewayError::upstream(&provider, kind));
                    }
                    if this.idle.as_mut().poll(cx).is_ready() {
                        let kind = UpstreamErrorKind::Timeout {
                            phase: TimeoutPhase::StreamIdle,
                            after: this.idle_after,
                        };
                        return this.fail(cx, out, GatewayError::upstream(&provider, kind));
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    this.idle.as_mut().reset(Instant::now() + this.idle_after);
                    this.buf.extend_from_slice(&data);
                    if let Err(e) = this.drain_events(&mut out) {
                        return this.fail(cx, out, e);
                    }
                    // Keep reading while upstream data is already here (never waiting for more):
                    // events that arrived together leave in one write, as nginx relays them.
                    if out.len() >= MAX_BATCH {
                        break;
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let provider = Arc::clone(&this.provider);
                    let kind = UpstreamErrorKind::Body(format!("upstream stream broke off: {e}"));
                    return this.fail(cx, out, GatewayError::upstream(&provider, kind));
                }
                Poll::Ready(None) => {
                    if !this.buf.is_empty() && this.reply.framing() == Framing::EventStream {
                        let provider = Arc::clone(&this.provider);
                        let kind = UpstreamErrorKind::Body("stream ended inside a message".into());
                        return this.fail(cx, out, GatewayError::upstream(&provider, kind));
                    }
                    if !this.buf.is_empty() {
                        // A last event without its trailing blank line.
                        let rest = std::mem::take(&mut this.buf);
                        let trimmed = rest.strip_suffix(b"\n").unwrap_or(&rest);
                        if let Err(e) = this.relay_event(trimmed, &mut out) {
                            return this.fail(cx, out, e);
                        }
                    }
                    if !this.saw_done && !this.upstream_error {
                        let mark = out.len();
                        match this.reply.end_of_stream(&mut out) {
                            Ok(StreamStatus::Done) => this.saw_done = true,
                            Ok(StreamStatus::UpstreamError) => this.upstream_error = true,
                            Ok(StreamStatus::Continue) => {}
                            Err(e) => {
                                out.truncate(mark);
                                return this.fail(cx, out, e);
                            }
                        }
                    }
                    if this.saw_done || this.upstream_error {
                        let outcome = if this.upstream_error {
                            Outcome::StreamError
                        } else {
                            Outcome::Completed
                        };
                        // A stream that arrived whole still had a first byte.
                        if !out.is_empty() {
                            this.first_output();
                        }
                        this.finish(outcome, None);
                        if out.is_empty() {
                            return Poll::Ready(None);
                        }
                        break;
                    }
                    let provider = Arc::clone(&this.provider);
                    let kind = UpstreamErrorKind::Body(
                        "upstream ended the stream before its end marker (`[DONE]` or `message_stop`)"
                            .into(),
                    );
                    return this.fail(cx, out, GatewayError::upstream(&provider, kind));
                }
            }
        }
        this.first_output();
        Poll::Ready(Some(Ok(Frame::data(out.freeze()))))
    }

    fn is_end_stream(&self) -> bool {
        self.ctx.is_none()
    }
}

impl Drop for SseRelay {
    fn drop(&mut self) {
        // Still holding the context means the stream never finished: the client went away.
        self.finish(Outcome::ClientCancelled, None);
    }
}

#[cfg(test)]
mod tests;
