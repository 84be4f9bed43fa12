//! Server-sent events as adapters see them: one event's `event:` name and `data:` payload in,
//! framed events out.
//!
//! The gateway's stream relay finds event boundaries with [`event_end`]; adapters that
//! translate read events with [`parse`] and write with [`write_data`] / [`write_named`]. The
//! OpenAI pass-through does not use [`parse`]: it rewrites line by line so that comments and
//! unknown fields survive.

use std::borrow::Cow;

use bytes::BytesMut;

/// One event's fields that matter to translation.
#[derive(Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field, when present.
    pub name: Option<&'a [u8]>,
    /// The `data:` lines joined with `\n` (the SSE rule); empty when there were none.
    pub data: Cow<'a, [u8]>,
}

/// Reads the fields of one event (its lines, without the terminating blank line).
/// Comments (`: ping`), `id:` and `retry:` are ignored.
pub fn parse(event: &[u8]) -> Event<'_> {
    let mut name = None;
    let mut data: Option<Cow<'_, [u8]>> = None;
    for line in event.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(0) => continue,
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => name = Some(value),
            b"data" => {
                data = Some(match data {
                    None => Cow::Borrowed(value),
                    Some(prev) => {
                        let mut joined = prev.into_owned();
                        joined.push(b'\n');
                        joined.extend_from_slice(value);
                        Cow::Owned(joined)
                    }
                });
            }
            _ => {}
        }
    }
    Event {
        name,
        data: data.unwrap_or(Cow::Borrowed(b"")),
    }
}

/// Appends `data: <payload>` and the blank line that ends the event.
pub fn write_data(out: &mut BytesMut, payload: &[u8]) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
}

/// Appends `event: <name>`, `data: <payload>` and the blank line, as Anthropic frames events.
pub fn write_named(out: &mut BytesMut, name: &str, payload: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\n");
    write_data(out, payload);
}

/// The end of the first server-sent event: the index of its blank-line separator and the
/// separator's length.
pub fn event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some((i, 2));
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_and_data() {
        let e = parse(b"event: message_start\r\ndata: {\"a\":1}");
        assert_eq!(e.name, Some(&b"message_start"[..]));
        assert_eq!(&*e.data, b"{\"a\":1}");
        let e = parse(b": keep-alive\ndata:x\ndata: y\nid: 7");
        assert_eq!(e.name, None);
        assert_eq!(&*e.data, b"x\ny");
        assert_eq!(&*parse(b": only a comment").data, b"");
    }

    #[test]
    fn writes_framed_events() {
        let mut out = BytesMut::new();
        write_named(&mut out, "ping", b"{\"type\":\"ping\"}");
        write_data(&mut out, b"[DONE]");
        assert_eq!(
            &out[..],
            b"event: ping\ndata: {\"type\":\"ping\"}\n\ndata: [DONE]\n\n"
        );
    }
}
