//! Whole-body translators between Anthropic's and OpenAI's formats, and the error converters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_types::anthropic::response as r;

fuzz_target!(|data: &[u8]| {
    let _ = r::messages_to_chat_response(data, "m", 0, false);
    let _ = r::messages_to_chat_response(data, "m", 0, true);
    let _ = r::chat_to_messages_response(data, "m");
    let _ = r::anthropic_error_to_openai(data);
    let _ = r::openai_error_to_anthropic(400, data);
});
