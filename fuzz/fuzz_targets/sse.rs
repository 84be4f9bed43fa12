//! The SSE framing: cutting a byte stream into events and reading their fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_types::sse;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Some((end, sep)) = sse::event_end(rest) {
        assert!(end + sep <= rest.len());
        let event = sse::parse(&rest[..end]);
        let _ = (event.name, event.data);
        rest = &rest[end + sep..];
    }
    let _ = sse::parse(rest);
});
