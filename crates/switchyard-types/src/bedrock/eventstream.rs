//! AWS's binary `application/vnd.amazon.eventstream` message format, as Bedrock's
//! ConverseStream sends it: pure encoding and decoding, no IO.
//!
//! A message is
//!
//! ```text
//! total length (u32 BE) | headers length (u32 BE) | prelude CRC32 (u32 BE, of the 8 bytes before)
//! headers (headers length bytes) | payload | message CRC32 (u32 BE, of every byte before it)
//! ```
//!
//! and each header is `name length (u8) | name | type (u8) | value`, where the type is one of
//! [`HeaderValue`]'s variants: 0 true, 1 false (no value bytes), 2 byte, 3 short, 4 int,
//! 5 long (big-endian), 6 bytes and 7 string (u16 BE length, then the bytes), 8 timestamp
//! (i64 BE milliseconds since the epoch), 9 UUID (16 bytes). Both CRCs are CRC-32 (IEEE, the
//! one gzip uses).
//!
//! [`decode`] takes exactly one message (the gateway's relay cuts the stream by the length
//! prefix) and checks everything it can: lengths, both CRCs, every header's bounds, type and
//! UTF-8. It never panics, whatever the bytes; malformed input is an [`Error`]. Decoding
//! borrows from the input, so a message costs one allocation (its header list).

use std::fmt;

/// Prelude: total length, headers length, prelude CRC.
const PRELUDE_LEN: usize = 12;
/// The trailing message CRC.
const CRC_LEN: usize = 4;
/// Smallest message: a prelude and a message CRC.
pub const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + CRC_LEN;
/// Largest message accepted (AWS caps a payload at 16 MiB and the headers at 128 KiB).
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024 + 128 * 1024 + MIN_MESSAGE_LEN;
/// Largest headers section AWS allows.
pub const MAX_HEADERS_LEN: usize = 128 * 1024;

/// One decoded message; strings and bytes borrow from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// Headers in wire order.
    pub headers: Vec<Header<'a>>,
    /// The payload (for Bedrock, a JSON document).
    pub payload: &'a [u8],
}

/// One header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// Its name (at most 255 bytes), e.g. `:event-type`.
    pub name: &'a str,
    /// Its typed value.
    pub value: HeaderValue<'a>,
}

/// A header value, one variant per wire type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderValue<'a> {
    /// Types 0 (true) and 1 (false).
    Bool(bool),
    /// Type 2: a signed byte.
    Byte(i8),
    /// Type 3: a signed 16-bit integer.
    Short(i16),
    /// Type 4: a signed 32-bit integer.
    Int(i32),
    /// Type 5: a signed 64-bit integer.
    Long(i64),
    /// Type 6: bytes (at most 65535).
    Bytes(&'a [u8]),
    /// Type 7: a UTF-8 string (at most 65535 bytes).
    String(&'a str),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9: a UUID's 16 bytes.
    Uuid([u8; 16]),
}

impl<'a> Message<'a> {
    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue<'a>> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| &h.value)
    }

    /// The value of the string header `name`, if present and a string.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        match self.header(name) {
            Some(HeaderValue::String(s)) => Some(s),
            _ => None,
        }
    }
}

/// Why bytes are not one well-formed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than a prelude and a CRC, or than the prelude's total length says.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The prelude's total length disagrees with the bytes given (extra bytes after it), or
    /// is out of range.
    BadLength {
        /// The total length the prelude declares.
        declared: u32,
        /// Bytes given.
        got: usize,
    },
    /// The headers length does not fit inside the message.
    BadHeadersLength(u32),
    /// The prelude CRC does not match.
    PreludeCrc {
        /// The CRC the message carries.
        expected: u32,
        /// The CRC of its prelude.
        actual: u32,
    },
    /// The message CRC does not match.
    MessageCrc {
        /// The CRC the message carries.
        expected: u32,
        /// The CRC of its bytes.
        actual: u32,
    },
    /// A header runs past the headers section; the offset is within the headers.
    HeaderTruncated(usize),
    /// A header name of length zero.
    EmptyHeaderName(usize),
    /// A header name or string value that is not UTF-8.
    NotUtf8(usize),
    /// A header value type outside 0..=9.
    UnknownHeaderType(u8),
    /// Encoding only: a name over 255 bytes, a value over 65535 bytes, or a message over
    /// [`MAX_MESSAGE_LEN`].
    TooLarge(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, got } => {
                write!(f, "truncated message: {got} bytes, {needed} needed")
            }
            Self::BadLength { declared, got } => write!(
                f,
                "message length {declared} does not match the {got} bytes given"
            ),
            Self::BadHeadersLength(n) => write!(f, "headers length {n} does not fit the message"),
            Self::PreludeCrc { expected, actual } => write!(
                f,
                "prelude CRC mismatch: message says {expected:#010x}, bytes give {actual:#010x}"
            ),
            Self::MessageCrc { expected, actual } => write!(
                f,
                "message CRC mismatch: message says {expected:#010x}, bytes give {actual:#010x}"
            ),
            Self::HeaderTruncated(at) => write!(f, "header at offset {at} is truncated"),
            Self::EmptyHeaderName(at) => write!(f, "header at offset {at} has an empty name"),
            Self::NotUtf8(at) => write!(f, "header at offset {at} is not UTF-8"),
            Self::UnknownHeaderType(t) => write!(f, "unknown header value type {t}"),
            Self::TooLarge(what) => write!(f, "{what} is too large to encode"),
        }
    }
}

impl std::error::Error for Error {}

/// CRC-32 (IEEE) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The total length a message declares in its first four bytes, once four bytes are there.
pub fn declared_len(buf: &[u8]) -> Option<usize> {
    be_u32(buf, 0).map(|n| n as usize)
}

/// Decodes exactly one message: `buf` must be the whole message and nothing more.
pub fn decode(buf: &[u8]) -> Result<Message<'_>, Error> {
    if buf.len() < MIN_MESSAGE_LEN {
        return Err(Error::Truncated {
            needed: MIN_MESSAGE_LEN,
            got: buf.len(),
        });
    }
    let total = be_u32(buf, 0).unwrap_or(0);
    let headers_len = be_u32(buf, 4).unwrap_or(0);
    let prelude_crc = be_u32(buf, 8).unwrap_or(0);
    let actual = crc32(&buf[..8]);
    if actual != prelude_crc {
        return Err(Error::PreludeCrc {
            expected: prelude_crc,
            actual,
        });
    }
    let total_len = total as usize;
    if !(MIN_MESSAGE_LEN..=MAX_MESSAGE_LEN).contains(&total_len) {
        return Err(Error::BadLength {
            declared: total,
            got: buf.len(),
        });
    }
    if buf.len() < total_len {
        return Err(Error::Truncated {
            needed: total_len,
            got: buf.len(),
        });
    }
    if buf.len() > total_len {
        return Err(Error::BadLength {
            declared: total,
            got: buf.len(),
        });
    }
    let headers_end = PRELUDE_LEN
        .checked_add(headers_len as usize)
        .filter(|end| *end <= total_len - CRC_LEN)
        .ok_or(Error::BadHeadersLength(headers_len))?;
    let message_crc = be_u32(buf, total_len - CRC_LEN).unwrap_or(0);
    let actual = crc32(&buf[..total_len - CRC_LEN]);
    if actual != message_crc {
        return Err(Error::MessageCrc {
            expected: message_crc,
            actual,
        });
    }
    let headers = decode_headers(&buf[PRELUDE_LEN..headers_end])?;
    Ok(Message {
        headers,
        payload: &buf[headers_end..total_len - CRC_LEN],
    })
}

fn decode_headers(mut rest: &[u8]) -> Result<Vec<Header<'_>>, Error> {
    let section_len = rest.len();
    let mut headers = Vec::with_capacity(4);
    while !rest.is_empty() {
        let at = section_len - rest.len();
        let truncated = Error::HeaderTruncated(at);
        let (&name_len, tail) = rest.split_first().ok_or(truncated.clone())?;
        if name_len == 0 {
            return Err(Error::EmptyHeaderName(at));
        }
        let (name, tail) = split(tail, usize::from(name_len)).ok_or(truncated.clone())?;
        let name = std::str::from_utf8(name).map_err(|_| Error::NotUtf8(at))?;
        let (&kind, tail) = tail.split_first().ok_or(truncated.clone())?;
        let (value, tail) = match kind {
            0 => (HeaderValue::Bool(true), tail),
            1 => (HeaderValue::Bool(false), tail),
            2 => {
                let (b, t) = split(tail, 1).ok_or(truncated)?;
                (HeaderValue::Byte(i8::from_be_bytes([b[0]])), t)
            }
            3 => {
                let (b, t) = split(tail, 2).ok_or(truncated)?;
                (HeaderValue::Short(i16::from_be_bytes([b[0], b[1]])), t)
            }
            4 => {
                let (b, t) = split(tail, 4).ok_or(truncated)?;
                (
                    HeaderValue::Int(i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
                    t,
                )
            }
            5 | 8 => {
                let (b, t) = split(tail, 8).ok_or(truncated)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let v = i64::from_be_bytes(a);
                let value = if kind == 5 {
                    HeaderValue::Long(v)
                } else {
                    HeaderValue::Timestamp(v)
                };
                (value, t)
            }
            6 | 7 => {
                let (len, t) = split(tail, 2).ok_or(truncated.clone())?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                let (bytes, t) = split(t, len).ok_or(truncated)?;
                let value = if kind == 6 {
                    HeaderValue::Bytes(bytes)
                } else {
                    HeaderValue::String(std::str::from_utf8(bytes).map_err(|_| Error::NotUtf8(at))?)
                };
                (value, t)
            }
            9 => {
                let (b, t) = split(tail, 16).ok_or(truncated)?;
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                (HeaderValue::Uuid(a), t)
            }
            other => return Err(Error::UnknownHeaderType(other)),
        };
        headers.push(Header { name, value });
        rest = tail;
    }
    Ok(headers)
}

fn split(buf: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    (buf.len() >= n).then(|| buf.split_at(n))
}

/// Encodes a message; fails only on sizes the format cannot express.
pub fn encode(msg: &Message<'_>) -> Result<Vec<u8>, Error> {
    let mut headers = Vec::with_capacity(64);
    for h in &msg.headers {
        let name = h.name.as_bytes();
        let name_len = u8::try_from(name.len()).map_err(|_| Error::TooLarge("header name"))?;
        if name_len == 0 {
            return Err(Error::EmptyHeaderName(headers.len()));
        }
        headers.push(name_len);
        headers.extend_from_slice(name);
        match h.value {
            HeaderValue::Bool(true) => headers.push(0),
            HeaderValue::Bool(false) => headers.push(1),
            HeaderValue::Byte(v) => {
                headers.push(2);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Short(v) => {
                headers.push(3);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int(v) => {
                headers.push(4);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Long(v) => {
                headers.push(5);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(b) => {
                headers.push(6);
                push_len16(&mut headers, b)?;
            }
            HeaderValue::String(s) => {
                headers.push(7);
                push_len16(&mut headers, s.as_bytes())?;
            }
            HeaderValue::Timestamp(v) => {
                headers.push(8);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Uuid(u) => {
                headers.push(9);
                headers.extend_from_slice(&u);
            }
        }
    }
    if headers.len() > MAX_HEADERS_LEN {
        return Err(Error::TooLarge("headers section"));
    }
    let total = MIN_MESSAGE_LEN + headers.len() + msg.payload.len();
    if total > MAX_MESSAGE_LEN {
        return Err(Error::TooLarge("message"));
    }
    let total32 = u32::try_from(total).map_err(|_| Error::TooLarge("message"))?;
    let headers32 = u32::try_from(headers.len()).map_err(|_| Error::TooLarge("headers section"))?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&total32.to_be_bytes());
    out.extend_from_slice(&headers32.to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(msg.payload);
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    Ok(out)
}

fn push_len16(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Error> {
    let len = u16::try_from(bytes.len()).map_err(|_| Error::TooLarge("header value"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

#[cfg(test)]
mod tests;
