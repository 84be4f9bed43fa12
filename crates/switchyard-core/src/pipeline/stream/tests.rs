use super::find_event_end;

#[test]
fn finds_event_boundaries() {
    assert_eq!(find_event_end(b"data: a\n\ndata: b"), Some((7, 2)));
    assert_eq!(find_event_end(b"data: a\r\n\r\n"), Some((8, 3)));
    assert_eq!(find_event_end(b"data: a\n"), None);
    assert_eq!(find_event_end(b""), None);
    assert_eq!(find_event_end(b": ping\n\n"), Some((6, 2)));
}
