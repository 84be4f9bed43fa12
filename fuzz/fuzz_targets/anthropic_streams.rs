//! Streaming translators, fed the input split into events at newlines (so that multi-event
//! sequences, not only single events, are explored).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_types::anthropic::stream::{ChatToMessagesStream, MessagesToChatStream, StreamStep};

fuzz_target!(|data: &[u8]| {
    let mut to_chat = MessagesToChatStream::new("m", 0, true, data.first() == Some(&b'j'));
    let mut to_messages = ChatToMessagesStream::new("m");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for event in data.split(|c| *c == b'\n') {
        if !matches!(to_chat.push(event, &mut a), Ok(StreamStep::Continue)) {
            break;
        }
    }
    for event in data.split(|c| *c == b'\n') {
        if !matches!(to_messages.push(event, &mut b), Ok(StreamStep::Continue)) {
            break;
        }
    }
    let _ = (to_chat.usage(), to_messages.usage());
});
