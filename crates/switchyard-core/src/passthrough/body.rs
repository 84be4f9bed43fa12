//! The two streaming bodies of a pass-through exchange: the client's upload on its way
//! upstream (counted against the route's limit) and the upstream's answer on its way back
//! (relayed frame by frame under the idle and total timeouts, logging the request when it ends).

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::error::{GatewayError, TimeoutPhase, UpstreamErrorKind};
use crate::http_client::{BoxError, UpstreamBody};
use crate::pipeline::ctx::{Outcome, RequestCtx};

/// Set when an upload passed its limit, so the failed exchange is reported as a 413.
#[derive(Debug, Clone, Default)]
pub(super) struct Overflow(Arc<AtomicBool>);

impl Overflow {
    pub(super) fn tripped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The client's request body, passed on frame by frame; past `limit` bytes it fails, which
/// aborts the upstream request.
pub(super) struct LimitedUpload {
    inner: Body,
    seen: u64,
    limit: u64,
    overflow: Overflow,
}

impl LimitedUpload {
    pub(super) fn new(inner: Body, limit: u64) -> (Self, Overflow) {
        let overflow = Overflow::default();
        (
            Self {
                inner,
                seen: 0,
                limit,
                overflow: overflow.clone(),
            },
            overflow,
        )
    }
}

impl http_body::Body for LimitedUpload {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len() as u64;
                    if this.seen > this.limit {
                        this.overflow.0.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err("request body over the limit".into())));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The upstream's answer on its way to the client, frame by frame and unchanged. A gap longer
/// than `stream_idle` or passing the exchange's deadline fails the body (the client sees a
/// truncated response, never a silently short one). Logs the request when it ends; dropped
/// early (client gone), the context logs it as cancelled.
pub(super) struct Relay {
    inner: UpstreamBody,
    ctx: Option<RequestCtx>,
    status: u16,
    provider: Arc<str>,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
    total: Duration,
}

impl Relay {
    pub(super) fn new(
        inner: UpstreamBody,
        ctx: RequestCtx,
        status: u16,
        provider: Arc<str>,
        idle: Duration,
        deadline: Instant,
    ) -> Self {
        let total = deadline.saturating_duration_since(ctx.started);
        Self {
            inner,
            ctx: Some(ctx),
            status,
            provider,
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            total,
        }
    }

    fn fail(&mut self, kind: UpstreamErrorKind) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let err = GatewayError::upstream(&self.provider, kind);
        let message = err.to_string();
        if let Some(mut ctx) = self.ctx.take() {
            ctx.log(self.status, Outcome::StreamError, Some(&err));
        }
        Poll::Ready(Some(Err(message.into())))
    }
}

impl http_body::Body for Relay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = Instant::now() + this.idle;
                this.idle_timer.as_mut().reset(next);
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(e))) => return this.fail(UpstreamErrorKind::Body(e.to_string())),
            Poll::Ready(None) => {
                if let Some(mut ctx) = this.ctx.take() {
                    ctx.log(this.status, Outcome::Completed, None);
                }
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            let after = this.total;
            return this.fail(UpstreamErrorKind::Timeout {
                phase: TimeoutPhase::Total,
                after,
            });
        }
        if this.idle_timer.as_mut().poll(cx).is_ready() {
            let after = this.idle;
            return this.fail(UpstreamErrorKind::Timeout {
                phase: TimeoutPhase::StreamIdle,
                after,
            });
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // An empty body may never be polled: it ended, it was not cancelled.
        if let Some(mut ctx) = self.ctx.take() {
            if self.inner.is_end_stream() {
                ctx.log(self.status, Outcome::Completed, None);
            }
        }
    }
}
