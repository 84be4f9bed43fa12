//! The AWS eventstream decoder and the Bedrock translators: the input is cut into messages by
//! their length prefix, as the relay does, and each decoded message goes to the stream
//! translator; the whole input also goes to the Converse response translator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_types::bedrock::eventstream::{declared_len, decode};
use switchyard_types::bedrock::response::converse_to_chat_response;
use switchyard_types::bedrock::stream::ConverseToChatStream;

fuzz_target!(|data: &[u8]| {
    let _ = converse_to_chat_response(data, "id", "m", 0, data.first() == Some(&b'j'));
    let mut stream = ConverseToChatStream::new("id", "m", 0, true, false);
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(len) = declared_len(rest) {
        if len == 0 || len > rest.len() {
            break;
        }
        if let Ok(msg) = decode(&rest[..len]) {
            let _ = stream.push(&msg, &mut out);
        }
        rest = &rest[len..];
    }
    let _ = stream.finish(&mut out);
});
