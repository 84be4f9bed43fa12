//! An upstream response body, read straight from its connection by whoever polls it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf as _, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use super::conn::{Conn, Framing};
use super::Checkin;

/// The longest chunk-size or trailer line accepted, and the most trailer bytes in all.
const MAX_LINE: usize = 4 * 1024;
const MAX_TRAILERS: usize = 16 * 1024;

/// Why an upstream body could not be read to its end.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(String);

/// An upstream response body. Reading it to the end returns its connection to the pool;
/// dropping it earlier closes the connection (so a cancelled stream also stops the generation
/// upstream).
pub struct UpstreamBody {
    reading: Option<Reading>,
}

struct Reading {
    conn: Conn,
    /// Bytes read from the connection and not yet handed out.
    buf: BytesMut,
    decode: Decode,
    /// Where the connection goes once the body has ended, when it can carry another request.
    checkin: Option<Checkin>,
    /// Trailer bytes seen so far (they are read and discarded).
    trailers: usize,
}

enum Decode {
    /// Bytes still to come of a `content-length` body.
    Length(u64),
    Chunked(Chunk),
    UntilClose,
}

enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, with this many data bytes to go.
    Data(u64),
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
}

/// What the buffer yields next.
enum Step {
    Data(Bytes),
    End,
    NeedMore,
}

impl UpstreamBody {
    /// The body after a head with `framing`; `buf` holds whatever of it already arrived.
    pub(super) fn new(
        conn: Conn,
        buf: BytesMut,
        framing: Framing,
        checkin: Option<Checkin>,
    ) -> Self {
        let decode = match framing {
            Framing::Empty => {
                // Nothing to read: the connection is free now, unless the upstream already
                // sent more than it announced.
                if let Some(c) = checkin.filter(|_| buf.is_empty()) {
                    c.put_back(conn);
                }
                return Self { reading: None };
            }
            Framing::Length(n) => Decode::Length(n),
            Framing::Chunked => Decode::Chunked(Chunk::Size),
            Framing::UntilClose => Decode::UntilClose,
        };
        Self {
            reading: Some(Reading {
                conn,
                buf,
                decode,
                checkin,
                trailers: 0,
            }),
        }
    }

    /// Ends the body: the connection goes back to the pool if it may and nothing is left
    /// over on it.
    fn finish(&mut self) {
        if let Some(r) = self.reading.take() {
            if let Some(c) = r.checkin.filter(|_| r.buf.is_empty()) {
                c.put_back(r.conn);
            }
        }
    }

    fn fail(
        &mut self,
        message: impl Into<String>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.reading = None;
        Poll::Ready(Some(Err(BodyError(message.into()))))
    }
}

impl Reading {
    /// Decodes what the buffer holds.
    fn step(&mut self) -> Result<Step, String> {
        loop {
            match &mut self.decode {
                Decode::Length(0) => return Ok(Step::End),
                Decode::Length(left) => {
                    if self.buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    return Ok(Step::Data(take_up_to(&mut self.buf, left)));
                }
                Decode::UntilClose => {
                    if self.buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    return Ok(Step::Data(self.buf.split().freeze()));
                }
                Decode::Chunked(Chunk::Data(left)) => {
                    if self.buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let data = take_up_to(&mut self.buf, left);
                    if *left == 0 {
                        self.decode = Decode::Chunked(Chunk::DataEnd);
                    }
                    return Ok(Step::Data(data));
                }
                Decode::Chunked(Chunk::DataEnd) => {
                    if self.buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err("chunk data not followed by CRLF".into());
                    }
                    self.buf.advance(2);
                    self.decode = Decode::Chunked(Chunk::Size);
                }
                Decode::Chunked(Chunk::Size) => {
                    let Some(end) = line_end(&self.buf) else {
                        if self.buf.len() > MAX_LINE {
                            return Err("chunk size line too long".into());
                        }
                        return Ok(Step::NeedMore);
                    };
                    let size = chunk_size(&self.buf[..end])?;
                    self.buf.advance(end + 2);
                    self.decode = Decode::Chunked(if size == 0 {
                        Chunk::Trailers
                    } else {
                        Chunk::Data(size)
                    });
                }
                Decode::Chunked(Chunk::Trailers) => {
                    let Some(end) = line_end(&self.buf) else {
                        if self.buf.len() > MAX_LINE {
                            return Err("trailer line too long".into());
                        }
                        return Ok(Step::NeedMore);
                    };
                    self.buf.advance(end + 2);
                    if end == 0 {
                        return Ok(Step::End);
                    }
                    self.trailers += end + 2;
                    if self.trailers > MAX_TRAILERS {
                        return Err("trailers too large".into());
                    }
                }
            }
        }
    }
}

/// Hands out what `buf` holds of the `left` bytes still due, without copying.
fn take_up_to(buf: &mut BytesMut, left: &mut u64) -> Bytes {
    let take = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
    *left -= take as u64;
    buf.split_to(take).freeze()
}

/// Where the first CRLF in `buf` starts.
fn line_end(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// The size on a chunk-size line: hex digits, then optional whitespace and extensions.
fn chunk_size(line: &[u8]) -> Result<u64, String> {
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let rest = &line[digits..];
    let valid_rest = rest.is_empty() || matches!(rest[0], b';' | b' ' | b'\t');
    if digits == 0 || digits > 15 || !valid_rest {
        return Err("invalid chunk size".into());
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| "invalid chunk size")?;
    u64::from_str_radix(text, 16).map_err(|_| "invalid chunk size".into())
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            let Some(r) = this.reading.as_mut() else {
                return Poll::Ready(None);
            };
            match r.step() {
                Ok(Step::Data(data)) => {
                    if matches!(r.decode, Decode::Length(0)) {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Err(message) => return this.fail(format!("invalid body from upstream: {message}")),
                Ok(Step::NeedMore) => {}
            }
            match r.conn.io.poll_fill(cx, &mut r.buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    if matches!(r.decode, Decode::UntilClose) {
                        // The end of the connection is the end of this body; it cannot be reused.
                        this.reading = None;
                        return Poll::Ready(None);
                    }
                    return this.fail("connection closed before the response body ended");
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return this.fail(format!("reading the response body: {e}")),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.reading.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.reading {
            None => SizeHint::with_exact(0),
            Some(Reading {
                decode: Decode::Length(left),
                ..
            }) => SizeHint::with_exact(*left),
            Some(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_allow_extensions_and_reject_junk() {
        assert_eq!(chunk_size(b"1a").unwrap(), 26);
        assert_eq!(chunk_size(b"A;name=value").unwrap(), 10);
        assert_eq!(chunk_size(b"0 ").unwrap(), 0);
        assert!(chunk_size(b"").is_err());
        assert!(chunk_size(b"zz").is_err());
        assert!(chunk_size(b"1z").is_err());
        assert!(chunk_size(b"ffffffffffffffff").is_err());
    }
}
