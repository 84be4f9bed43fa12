use super::{find_event_end, Framing};

fn sse_end(buf: &[u8]) -> Option<(usize, usize)> {
    find_event_end(Framing::Sse, buf).ok().flatten()
}

#[test]
fn finds_event_boundaries() {
    assert_eq!(sse_end(b"data: a\n\ndata: b"), Some((7, 2)));
    assert_eq!(sse_end(b"data: a\r\n\r\n"), Some((8, 3)));
    assert_eq!(sse_end(b"data: a\n"), None);
    assert_eq!(sse_end(b""), None);
    assert_eq!(sse_end(b": ping\n\n"), Some((6, 2)));
}

#[test]
fn eventstream_messages_are_cut_by_their_length_prefix() {
    let es = |buf: &[u8]| find_event_end(Framing::EventStream, buf);
    let mut msg = 20u32.to_be_bytes().to_vec();
    msg.resize(20, 0);
    assert_eq!(es(&msg[..3]), Ok(None));
    assert_eq!(es(&msg[..19]), Ok(None));
    assert_eq!(es(&msg), Ok(Some((20, 0))));
    msg.extend_from_slice(&[0, 0]);
    assert_eq!(
        es(&msg),
        Ok(Some((20, 0))),
        "bytes of the next message stay"
    );
    assert!(
        es(&8u32.to_be_bytes()).is_err(),
        "shorter than a prelude and CRC"
    );
    assert!(es(&u32::MAX.to_be_bytes()).is_err(), "over the 16 MiB cap");
}
