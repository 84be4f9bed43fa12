//! A reply wrapper that shows a recorder what a stream sends the client, unchanged.

use bytes::BytesMut;

use crate::error::GatewayError;
use crate::providers::{Framing, Reply, ResponseBody, StreamStatus};

/// Learns something from a stream as the client gets it (a stored response's or a stored
/// completion's id), until it has what it needs.
pub(crate) trait Watcher: Send + 'static {
    /// Whether it still wants to see bytes.
    fn watching(&self) -> bool;
    /// The bytes one event (or the stream's end) wrote, in the client's dialect.
    fn saw(&mut self, written: &[u8]);
}

/// A reply whose stream output is also shown to a [`Watcher`]; bodies and usage pass through.
pub(crate) struct Tap<W> {
    inner: Box<dyn Reply>,
    watcher: W,
}

impl<W: Watcher> Tap<W> {
    pub(crate) fn boxed(inner: Box<dyn Reply>, watcher: W) -> Box<dyn Reply> {
        Box::new(Self { inner, watcher })
    }

    fn show(&mut self, out: &BytesMut, mark: usize) {
        if self.watcher.watching() {
            self.watcher.saw(out.get(mark..).unwrap_or_default());
        }
    }
}

impl<W: Watcher> Reply for Tap<W> {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        self.inner.body(body)
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let mark = out.len();
        let status = self.inner.event(event, out)?;
        self.show(out, mark);
        Ok(status)
    }

    fn usage(&self) -> Option<switchyard_types::openai::Usage> {
        self.inner.usage()
    }

    fn framing(&self) -> Framing {
        self.inner.framing()
    }

    fn end_of_stream(&mut self, out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let mark = out.len();
        let status = self.inner.end_of_stream(out)?;
        self.show(out, mark);
        Ok(status)
    }
}
