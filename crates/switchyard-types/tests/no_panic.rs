//! Every parser and translator of untrusted bytes returns an error instead of panicking, on
//! systematic damage to real inputs: each fixture cut at every length and with bytes
//! overwritten by a seeded generator. This is the always-on, bounded companion of the
//! cargo-fuzz targets in `fuzz/` (see README, "Fuzzing"), so CI catches a regression even
//! though it does not run the fuzzer.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use switchyard_types::anthropic::request::{chat_to_messages, messages_to_chat};
use switchyard_types::anthropic::response as r;
use switchyard_types::anthropic::stream::{ChatToMessagesStream, MessagesToChatStream};
use switchyard_types::extras::passthrough_body;
use switchyard_types::responses::request::{input_items, responses_to_chat, with_history};
use switchyard_types::responses::response::chat_to_response;
use switchyard_types::responses::stream::ChatToResponsesStream;
use switchyard_types::responses::{rename_nested_model, Meta};
use switchyard_types::sse;

const FIXTURES: &[&[u8]] = &[
    include_bytes!("../../switchyard-mock/fixtures/anthropic/message.json"),
    include_bytes!("../../switchyard-mock/fixtures/anthropic/message_tool_use.json"),
    include_bytes!("../../switchyard-mock/fixtures/anthropic/error_429.json"),
    include_bytes!("../../switchyard-mock/fixtures/anthropic/message_stream.sse"),
    include_bytes!("../../switchyard-mock/fixtures/anthropic/message_stream_tool_use.sse"),
    include_bytes!("../../switchyard-mock/fixtures/openai/chat_completion.json"),
    include_bytes!("../../switchyard-mock/fixtures/openai/chat_completion_stream.sse"),
    include_bytes!("../../switchyard-mock/fixtures/openai/error_400.json"),
    br#"{"model":"m","max_tokens":9,"system":"s","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA"}},{"type":"text","text":"x"}]},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"r"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}]}"#,
    br#"{"model":"m","instructions":"i","input":[{"role":"developer","content":"d"},{"type":"message","role":"user","content":[{"type":"input_text","text":"t"},{"type":"input_image","image_url":"data:image/png;base64,AA"}]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_text","text":"o"}]}],"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":{"type":"function","name":"f"},"text":{"format":{"type":"json_schema","name":"n","schema":{"type":"object"}}},"reasoning":{"effort":"low"},"stream":true}"#,
    br#"{"type":"response.completed","sequence_number":3,"response":{"id":"resp_1","model":"x","usage":{"input_tokens":1,"output_tokens":2}}}"#,
    br#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"r"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}},"provider_options":{"openai":{"a":1},"anthropic":{"top_k":1}}}"#,
];

/// Runs every entry point on `data`; the test fails if any of them panics.
fn exercise(data: &[u8]) {
    let _ = r::messages_to_chat_response(data, "m", 0, false);
    let _ = r::messages_to_chat_response(data, "m", 0, true);
    let _ = r::chat_to_messages_response(data, "m");
    let _ = r::anthropic_error_to_openai(data);
    let _ = r::openai_error_to_anthropic(400, data);
    let _ = chat_to_messages(data, "m");
    let _ = messages_to_chat(data, "m");
    let _ = passthrough_body(data, "m", "anthropic");
    let meta = Meta {
        id: "resp_1".into(),
        created_at: 0,
        model: "m".into(),
    };
    let _ = responses_to_chat(data, &meta);
    let _ = input_items(data, "s");
    let _ = with_history(
        data,
        &[serde_json::json!({"role": "assistant", "content": 1})],
        true,
    );
    let _ = with_history(data, &[], false);
    let _ = chat_to_response(data, &serde_json::json!({}), &meta);
    let _ = rename_nested_model(data, "response", "m");
    let mut to_responses = ChatToResponsesStream::new(meta, serde_json::json!(null));
    let mut c = Vec::new();
    let mut to_chat = MessagesToChatStream::new("m", 0, true, true);
    let mut to_messages = ChatToMessagesStream::new("m");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut rest = data;
    while let Some((end, sep)) = sse::event_end(rest) {
        let event = sse::parse(&rest[..end]);
        let _ = to_chat.push(&event.data, &mut a);
        let _ = to_messages.push(&event.data, &mut b);
        let _ = to_responses.push(&event.data, &mut c);
        rest = &rest[end + sep..];
    }
    let _ = sse::parse(rest);
}

#[test]
fn truncated_inputs_never_panic() {
    for f in FIXTURES {
        for len in 0..=f.len() {
            exercise(&f[..len]);
        }
    }
}

#[test]
fn corrupted_inputs_never_panic() {
    // xorshift64: deterministic, so a failure reproduces.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const INTERESTING: &[u8] = b"{}[]\",:\\0-1eE.\n\r ntfu";
    for f in FIXTURES {
        for _ in 0..400 {
            let mut data = f.to_vec();
            for _ in 0..1 + next() % 4 {
                let at = (next() % data.len() as u64) as usize;
                let byte = if next() % 2 == 0 {
                    INTERESTING[(next() % INTERESTING.len() as u64) as usize]
                } else {
                    next() as u8
                };
                match next() % 3 {
                    0 => data[at] = byte,
                    1 => data.insert(at, byte),
                    _ => {
                        data.remove(at);
                    }
                }
                if data.is_empty() {
                    break;
                }
            }
            exercise(&data);
        }
    }
}

mod bedrock {
    use serde_json::Value;
    use switchyard_types::bedrock::eventstream::{
        declared_len, decode, encode, Header, HeaderValue, Message,
    };
    use switchyard_types::bedrock::response::converse_to_chat_response;
    use switchyard_types::bedrock::stream::ConverseToChatStream;

    /// The stream fixtures (JSON lists of header maps and payloads) as eventstream bytes.
    fn stream_bytes(fixture: &[u8]) -> Vec<u8> {
        let events: Vec<Value> = serde_json::from_slice(fixture).unwrap();
        let mut out = Vec::new();
        for e in &events {
            let payload = serde_json::to_vec(&e["payload"]).unwrap();
            let headers: Vec<(String, String)> = e["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            let msg = Message {
                headers: headers
                    .iter()
                    .map(|(k, v)| Header {
                        name: k,
                        value: HeaderValue::String(v),
                    })
                    .collect(),
                payload: &payload,
            };
            out.extend(encode(&msg).unwrap());
        }
        out
    }

    fn exercise(data: &[u8]) {
        let _ = converse_to_chat_response(data, "id", "m", 0, false);
        let _ = converse_to_chat_response(data, "id", "m", 0, true);
        let mut stream = ConverseToChatStream::new("id", "m", 0, true, true);
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
    }

    #[test]
    fn damaged_bedrock_inputs_never_panic() {
        let inputs = [
            include_bytes!("../../switchyard-mock/fixtures/bedrock/converse.json").to_vec(),
            include_bytes!("../../switchyard-mock/fixtures/bedrock/converse_tool_use.json")
                .to_vec(),
            stream_bytes(include_bytes!(
                "../../switchyard-mock/fixtures/bedrock/converse_stream.json"
            )),
            stream_bytes(include_bytes!(
                "../../switchyard-mock/fixtures/bedrock/converse_stream_tool_use.json"
            )),
        ];
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for input in &inputs {
            for len in 0..=input.len() {
                exercise(&input[..len]);
            }
            for _ in 0..400 {
                let mut data = input.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() % data.len() as u64) as usize;
                    data[at] = next() as u8;
                }
                exercise(&data);
            }
        }
    }
}

mod gemini {
    use switchyard_types::gemini::request::{chat_to_gemini, embeddings_to_gemini};
    use switchyard_types::gemini::response::{
        gemini_error_to_anthropic, gemini_to_chat_response, gemini_to_embeddings_response,
        parse_error,
    };
    use switchyard_types::gemini::stream::GeminiToChatStream;
    use switchyard_types::sse;

    fn exercise(data: &[u8]) {
        let _ = chat_to_gemini(data);
        let _ = embeddings_to_gemini(data, "m", true);
        let _ = gemini_to_chat_response(data, "m", 0, "n");
        let _ = gemini_to_embeddings_response(data, "m", true);
        let _ = parse_error(data);
        let _ = gemini_error_to_anthropic(429, data);
        let mut stream = GeminiToChatStream::new("m", 0, true, 2, "n");
        let mut out = Vec::new();
        let mut rest = data;
        while let Some((end, sep)) = sse::event_end(rest) {
            let event = sse::parse(&rest[..end]);
            let _ = stream.push(&event.data, &mut out);
            rest = &rest[end + sep..];
        }
    }

    #[test]
    fn damaged_gemini_inputs_never_panic() {
        let inputs: [&[u8]; 8] = [
            include_bytes!("../../switchyard-mock/fixtures/gemini/generate_content.json"),
            include_bytes!(
                "../../switchyard-mock/fixtures/gemini/generate_content_function_call.json"
            ),
            include_bytes!("../../switchyard-mock/fixtures/gemini/generate_content_safety.json"),
            include_bytes!(
                "../../switchyard-mock/fixtures/gemini/generate_content_prompt_blocked.json"
            ),
            include_bytes!("../../switchyard-mock/fixtures/gemini/batch_embed_contents.json"),
            include_bytes!("../../switchyard-mock/fixtures/gemini/error_429.json"),
            include_bytes!("../../switchyard-mock/fixtures/gemini/stream.sse"),
            include_bytes!("../../switchyard-mock/fixtures/gemini/stream_function_call.sse"),
        ];
        let mut state = 0x1234_5678_9ABC_DEF1_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for input in inputs {
            for len in 0..=input.len() {
                exercise(&input[..len]);
            }
            for _ in 0..300 {
                let mut data = input.to_vec();
                for _ in 0..1 + next() % 4 {
                    let at = (next() % data.len() as u64) as usize;
                    data[at] = b"{}[]\",:0-1.nt"[(next() % 13) as usize];
                }
                exercise(&data);
            }
        }
    }
}
