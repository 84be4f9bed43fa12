//! The Gemini translators: whole responses, embeddings, errors, and streams (the input cut
//! into SSE events as the relay does).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_types::gemini::request::{chat_to_gemini, embeddings_to_gemini};
use switchyard_types::gemini::response::{
    gemini_error_to_anthropic, gemini_to_chat_response, gemini_to_embeddings_response, parse_error,
};
use switchyard_types::gemini::stream::GeminiToChatStream;
use switchyard_types::sse;

fuzz_target!(|data: &[u8]| {
    let _ = chat_to_gemini(data);
    let _ = gemini_to_chat_response(data, "m", 0, "n");
    let _ = parse_error(data);
    let _ = gemini_error_to_anthropic(400, data);
    let _ = embeddings_to_gemini(data, "m", true);
    let _ = embeddings_to_gemini(data, "m", false);
    let _ = gemini_to_embeddings_response(data, "m", true);
    let mut stream = GeminiToChatStream::new("m", 0, true, 2, "n");
    let mut out = Vec::new();
    let mut rest = data;
    while let Some((end, sep)) = sse::event_end(rest) {
        let event = sse::parse(&rest[..end]);
        let _ = stream.push(&event.data, &mut out);
        rest = &rest[end + sep..];
    }
});
