//! Request translators and the provider-options merge: client bodies are untrusted too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_types::anthropic::request::{chat_to_messages, messages_to_chat};
use switchyard_types::extras::passthrough_body;

fuzz_target!(|data: &[u8]| {
    let _ = chat_to_messages(data, "m");
    let _ = messages_to_chat(data, "m");
    let _ = passthrough_body(data, "m", "openai");
});
