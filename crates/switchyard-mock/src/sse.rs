//! A response body that releases pre-rendered events one frame at a time.
//!
//! Every provider format streams the same way from the transport's point of view: a list of
//! byte events, a delay between them, and an ending that is either clean, an aborted
//! connection, or a stall. Rendering all events up front into one buffer (and handing out
//! zero-copy slices of it) keeps the per-frame cost to a pointer bump, while the body itself
//! still yields each event as its own frame so hyper writes and flushes them separately.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::time::{Instant, Sleep};

/// Pause before an abort, long enough for hyper to flush the events sent before it.
const ABORT_GRACE: Duration = Duration::from_millis(5);

/// How the stream ends once its events are exhausted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// End the body normally.
    Finish,
    /// Fail the body, which makes hyper drop the connection without a terminating chunk.
    Abort,
    /// Never produce another frame, leaving the connection open (idle-timeout tests).
    Stall,
}

/// The error a body reports when the `disconnect_after_chunks` knob cuts a stream short.
#[derive(Debug)]
pub(crate) struct Disconnected;

impl std::fmt::Display for Disconnected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mock stream aborted on request (disconnect_after_chunks)")
    }
}

impl std::error::Error for Disconnected {}

/// Builds the events of a stream into one buffer; see [`EventBody`].
#[derive(Debug, Default)]
pub(crate) struct EventBuf {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl EventBuf {
    /// Starts with room for `events` events of about `bytes_each` bytes.
    pub(crate) fn with_capacity(events: usize, bytes_each: usize) -> Self {
        Self {
            buf: Vec::with_capacity(events * bytes_each),
            ends: Vec::with_capacity(events),
        }
    }

    /// The buffer to append the current event's bytes to.
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Marks everything appended since the last call as one event.
    pub(crate) fn end_event(&mut self) {
        self.ends.push(self.buf.len());
    }

    /// Number of completed events.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Keeps only the first `events` completed events (and drops any unfinished one), so a
    /// stream can be cut short and given a different ending, such as an error event.
    pub(crate) fn truncate(&mut self, events: usize) {
        self.ends.truncate(events);
        self.buf.truncate(self.ends.last().copied().unwrap_or(0));
    }

    /// Turns the events into a body that yields them `delay` apart, keeping only the first
    /// `keep` events (all of them when `None`) and ending as `ending` says.
    pub(crate) fn into_body(
        self,
        delay: Duration,
        keep: Option<usize>,
        ending: Ending,
    ) -> EventBody {
        let all = Bytes::from(self.buf);
        let mut events = Vec::with_capacity(self.ends.len());
        let mut start = 0;
        for end in self.ends {
            events.push(all.slice(start..end));
            start = end;
        }
        if let Some(keep) = keep {
            events.truncate(keep);
        }
        EventBody {
            events: events.into_iter(),
            delay,
            sleep: None,
            sent_any: false,
            armed: false,
            flushed: false,
            ending,
        }
    }
}

/// The streaming body; each poll yields one whole event.
#[derive(Debug)]
pub(crate) struct EventBody {
    events: std::vec::IntoIter<Bytes>,
    delay: Duration,
    /// Allocated once, on the first delay, and re-armed for each later event.
    sleep: Option<Pin<Box<Sleep>>>,
    sent_any: bool,
    armed: bool,
    /// Whether an abort has already given hyper its chance to flush.
    flushed: bool,
    ending: Ending,
}

impl Body for EventBody {
    type Data = Bytes;
    type Error = Disconnected;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Disconnected>>> {
        let this = &mut *self;
        if this.events.len() == 0 {
            return match this.ending {
                Ending::Finish => Poll::Ready(None),
                Ending::Abort => {
                    // hyper buffers frames that were ready at once and drops that buffer when
                    // the body fails, so first pause and let it flush what was already "sent".
                    if !this.flushed {
                        this.flushed = true;
                        this.sleep = Some(Box::pin(tokio::time::sleep(ABORT_GRACE)));
                    }
                    if let Some(sleep) = this.sleep.as_mut() {
                        if sleep.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                    }
                    // Report the failure once; afterwards the body is simply over.
                    this.ending = Ending::Finish;
                    Poll::Ready(Some(Err(Disconnected)))
                }
                // Nothing will ever wake this body: that is the point of a stall.
                Ending::Stall => Poll::Pending,
            };
        }
        if this.sent_any && !this.delay.is_zero() {
            if !this.armed {
                let deadline = Instant::now() + this.delay;
                match this.sleep.as_mut() {
                    Some(sleep) => sleep.as_mut().reset(deadline),
                    None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                }
                this.armed = true;
            }
            if let Some(sleep) = this.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            this.armed = false;
        }
        this.sent_any = true;
        Poll::Ready(this.events.next().map(|event| Ok(Frame::data(event))))
    }

    fn is_end_stream(&self) -> bool {
        self.events.len() == 0 && self.ending == Ending::Finish
    }
}
