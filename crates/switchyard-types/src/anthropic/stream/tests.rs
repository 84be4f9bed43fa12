use serde_json::{json, Value};

use super::*;
use crate::anthropic::response::{chat_to_messages_response, messages_to_chat_response};

fn value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Pushes every event; returns the chunks (parsed) and each push's step.
fn to_chat(
    events: &[&str],
    include_usage: bool,
    json_tool: bool,
) -> (Vec<Value>, Vec<StreamStep>, MessagesToChatStream) {
    let mut s = MessagesToChatStream::new("my-model", 1_700_000_000, include_usage, json_tool);
    let mut out = Vec::new();
    let steps = events
        .iter()
        .map(|e| s.push(e.as_bytes(), &mut out).unwrap())
        .collect();
    (out.iter().map(|c| value(c)).collect(), steps, s)
}

/// A chunk as MessagesToChatStream writes it, for comparing.
fn chunk(delta: Value, finish: Value, usage: Option<Value>) -> Value {
    let mut c = json!({
        "id": "msg_1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "my-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    });
    if let Some(u) = usage {
        c["usage"] = u;
    }
    c
}

const START: &str = r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#;
const STOP: &str = r#"{"type":"message_stop"}"#;

// ---- Anthropic events -> OpenAI chunks ----------------------------------------------------

#[test]
fn text_stream_without_usage() {
    let (chunks, steps, s) = to_chat(
        &[
            START,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type": "ping"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
            STOP,
        ],
        false,
        false,
    );
    assert_eq!(
        chunks,
        vec![
            chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
                None
            ),
            chunk(json!({"content": "Hello"}), Value::Null, None),
            chunk(json!({"content": "!"}), Value::Null, None),
            chunk(json!({}), json!("stop"), None),
        ]
    );
    assert_eq!(steps.last(), Some(&StreamStep::Done));
    assert!(steps[..steps.len() - 1]
        .iter()
        .all(|s| *s == StreamStep::Continue));
    assert_eq!(
        s.usage(),
        Some(Usage {
            prompt_tokens: 25,
            completion_tokens: 15,
            total_tokens: 40,
            cached_tokens: 0,
            cache_write_tokens: 0,
        })
    );
}

#[test]
fn chunks_keep_openai_field_order() {
    let mut s = MessagesToChatStream::new("m", 7, true, false);
    let mut out = Vec::new();
    s.push(START.as_bytes(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out.remove(0)).unwrap(),
        r#"{"id":"msg_1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#
    );
}

#[test]
fn include_usage_adds_null_usage_and_a_final_usage_chunk_with_cache_counts() {
    let start = r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":300,"cache_read_input_tokens":4000,"output_tokens":1}}}"#;
    let (chunks, steps, s) = to_chat(
        &[
            start,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":2}}"#,
            STOP,
        ],
        true,
        false,
    );
    let usage = json!({
        "prompt_tokens": 4310,
        "completion_tokens": 2,
        "total_tokens": 4312,
        "prompt_tokens_details": {"cached_tokens": 4000}
    });
    let mut last = chunk(json!({}), Value::Null, Some(usage));
    last["choices"] = json!([]);
    assert_eq!(
        chunks,
        vec![
            chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
                Some(Value::Null)
            ),
            chunk(json!({"content": "Hi"}), Value::Null, Some(Value::Null)),
            chunk(json!({}), json!("length"), Some(Value::Null)),
            last,
        ]
    );
    assert_eq!(steps.last(), Some(&StreamStep::Done));
    assert_eq!(
        s.usage(),
        Some(Usage {
            prompt_tokens: 4310,
            completion_tokens: 2,
            total_tokens: 4312,
            cached_tokens: 4000,
            cache_write_tokens: 300,
        })
    );
}

#[test]
fn message_delta_usage_overrides_start_counts() {
    let (chunks, _, s) = to_chat(
        &[
            START,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":30,"cache_read_input_tokens":null,"output_tokens":9}}"#,
            STOP,
        ],
        true,
        false,
    );
    assert_eq!(chunks[2]["usage"]["prompt_tokens"], 30);
    assert_eq!(s.usage().map(|u| u.completion_tokens), Some(9));
}

#[test]
fn parallel_tool_uses_with_fragmented_arguments() {
    let (chunks, _, _) = to_chat(
        &[
            START,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_A","name":"get_weather","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ris\"}"}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_B","name":"get_time","input":{}}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"tz\":"}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":" "}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"\"UTC\"}"}}"#,
            r#"{"type":"content_block_stop","index":2}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":60}}"#,
            STOP,
        ],
        false,
        false,
    );
    let call = |index: u32, v: Value| json!({"tool_calls": [{"index": index, "function": v}]});
    assert_eq!(
        chunks,
        vec![
            chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
                None
            ),
            chunk(json!({"content": "Checking."}), Value::Null, None),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "toolu_A", "type": "function",
                    "function": {"name": "get_weather", "arguments": ""}}]}),
                Value::Null,
                None
            ),
            chunk(
                call(0, json!({"arguments": "{\"city\":\"Pa"})),
                Value::Null,
                None
            ),
            chunk(call(0, json!({"arguments": "ris\"}"})), Value::Null, None),
            chunk(
                json!({"tool_calls": [{"index": 1, "id": "toolu_B", "type": "function",
                    "function": {"name": "get_time", "arguments": ""}}]}),
                Value::Null,
                None
            ),
            chunk(call(1, json!({"arguments": "{\"tz\":"})), Value::Null, None),
            chunk(call(1, json!({"arguments": "\"UTC\"}"})), Value::Null, None),
            chunk(json!({}), json!("tool_calls"), None),
        ]
    );
}

#[test]
fn thinking_becomes_reasoning_content_and_signatures_are_dropped() {
    let (chunks, _, _) = to_chat(
        &[
            START,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me add: 2+2"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" is 4."}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAh"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"4"}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":20}}"#,
            STOP,
        ],
        false,
        false,
    );
    assert_eq!(
        chunks,
        vec![
            chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
                None
            ),
            chunk(
                json!({"reasoning_content": "Let me add: 2+2"}),
                Value::Null,
                None
            ),
            chunk(json!({"reasoning_content": " is 4."}), Value::Null, None),
            chunk(json!({"content": "4"}), Value::Null, None),
            chunk(json!({}), json!("stop"), None),
        ]
    );
}

#[test]
fn json_tool_fragments_are_content_and_finish_is_stop() {
    let start_tool = format!(
        r#"{{"type":"content_block_start","index":0,"content_block":{{"type":"tool_use","id":"toolu_J","name":"{JSON_TOOL_NAME}","input":{{}}}}}}"#
    );
    let events = [
        START,
        &start_tool,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"name\": "}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"Ada Lovelace\"}"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":12}}"#,
        STOP,
    ];
    let (chunks, _, _) = to_chat(&events, false, true);
    assert_eq!(
        chunks,
        vec![
            chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
                None
            ),
            chunk(json!({"content": "{\"name\":"}), Value::Null, None),
            chunk(json!({"content": "\"Ada Lovelace\"}"}), Value::Null, None),
            chunk(json!({}), json!("stop"), None),
        ]
    );
    // Without the flag it is an ordinary tool call.
    let (chunks, _, _) = to_chat(&events, false, false);
    assert_eq!(
        chunks[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        JSON_TOOL_NAME
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[test]
fn refusal_finishes_with_content_filter() {
    let (chunks, _, _) = to_chat(
        &[
            START,
            r#"{"type":"message_delta","delta":{"stop_reason":"refusal","stop_sequence":null},"usage":{"output_tokens":3}}"#,
            STOP,
        ],
        false,
        false,
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "content_filter"
    );
}

#[test]
fn finish_is_sent_once_and_message_stop_alone_still_finishes() {
    let (chunks, _, _) = to_chat(
        &[
            START,
            r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":3}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":4}}"#,
            STOP,
        ],
        false,
        false,
    );
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], "length");

    let (chunks, steps, _) = to_chat(&[START, STOP], false, false);
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], "stop");
    assert_eq!(steps, vec![StreamStep::Continue, StreamStep::Done]);
}

#[test]
fn unknown_events_pings_and_delta_types_are_ignored() {
    let (chunks, steps, _) = to_chat(
        &[
            START,
            r#"{"type":"ping"}"#,
            r#"{"type":"hologram_start","index":"weird","delta":[1,2]}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"query\":\"x\"}"}}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{"type":"char_location"}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":""}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
        ],
        false,
        false,
    );
    assert_eq!(chunks.len(), 1);
    assert!(steps.iter().all(|s| *s == StreamStep::Continue));
}

#[test]
fn error_event_becomes_an_openai_error_and_ends_the_stream() {
    let mut s = MessagesToChatStream::new("m", 0, true, false);
    let mut out = Vec::new();
    s.push(START.as_bytes(), &mut out).unwrap();
    let step = s
        .push(
            br#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#,
            &mut out,
        )
        .unwrap();
    let StreamStep::Error(body) = step else {
        panic!("expected an error, got {step:?}");
    };
    assert_eq!(
        value(&body),
        json!({"error": {"message": "Overloaded", "type": "overloaded_error", "param": null, "code": "overloaded_error"}})
    );
    assert_eq!(out.len(), 1, "the error payload is not appended to out");
    assert_eq!(
        s.push(STOP.as_bytes(), &mut out).unwrap(),
        StreamStep::Continue
    );
    assert_eq!(out.len(), 1);

    // An error event of an unexpected shape still ends the stream with an OpenAI error.
    let mut s = MessagesToChatStream::new("m", 0, false, false);
    let StreamStep::Error(body) = s.push(br#"{"type":"error"}"#, &mut out).unwrap() else {
        panic!("expected an error");
    };
    assert_eq!(value(&body)["error"]["type"], "api_error");
}

#[test]
fn malformed_events_are_translate_errors() {
    let mut s = MessagesToChatStream::new("m", 0, false, false);
    let mut out = Vec::new();
    assert!(s.push(b"{\"type\":", &mut out).is_err());
    assert!(s.push(b"[DONE]", &mut out).is_err());
    assert!(s.push(b"{}", &mut out).is_err());
    let err = s
        .push(br#"{"type":"content_block_delta","index":0}"#, &mut out)
        .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("delta"));
    let err = s
        .push(br#"{"type":"message_start"}"#, &mut out)
        .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("message"));
    let err = s
        .push(
            br#"{"type":"content_block_start","index":-1,"content_block":{"type":"text"}}"#,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("index"));
    assert!(out.is_empty());
}

/// Splits `text` at the given char boundaries.
fn split_at<'a>(text: &'a str, cuts: &[usize]) -> Vec<&'a str> {
    let mut pieces = Vec::new();
    let mut last = 0;
    for &c in cuts {
        pieces.push(&text[last..c]);
        last = c;
    }
    pieces.push(&text[last..]);
    pieces
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Streamed argument fragments concatenate to the non-streamed `arguments` (and the JSON tool's
/// content deltas to its `content`), wherever Anthropic cuts the JSON.
#[test]
fn streamed_arguments_equal_non_streamed_arguments() {
    let input = r#"{ "q" : "a  b\" }{ \\", "n": [1, 2.50 ,-3e2], "o": {"k": null}, "u": "é ✓" }"#;
    let cut_points: Vec<usize> = (1..input.len())
        .filter(|&i| input.is_char_boundary(i))
        .collect();
    for json_tool in [false, true] {
        let name = if json_tool { JSON_TOOL_NAME } else { "f" };
        let whole = format!(
            r#"{{"id":"msg_1","type":"message","content":[{{"type":"tool_use","id":"t","name":"{name}","input":{input}}}],"stop_reason":"tool_use"}}"#
        );
        let (body, _) = messages_to_chat_response(whole.as_bytes(), "m", 0, json_tool).unwrap();
        let message = &value(&body)["choices"][0]["message"];
        let expected = if json_tool {
            message["content"].as_str().unwrap().to_owned()
        } else {
            message["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        for (n, &a) in cut_points.iter().enumerate() {
            for &b in &cut_points[n..] {
                let cuts = if a == b { vec![a] } else { vec![a, b] };
                let start = format!(
                    r#"{{"type":"content_block_start","index":0,"content_block":{{"type":"tool_use","id":"t","name":"{name}","input":{{}}}}}}"#
                );
                let mut events = vec![START.to_owned(), start];
                for piece in split_at(input, &cuts) {
                    events.push(format!(
                        r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"input_json_delta","partial_json":{}}}}}"#,
                        json_string(piece)
                    ));
                }
                let refs: Vec<&str> = events.iter().map(String::as_str).collect();
                let (chunks, _, _) = to_chat(&refs, false, json_tool);
                let streamed: String = chunks
                    .iter()
                    .filter_map(|c| {
                        let d = &c["choices"][0]["delta"];
                        if json_tool {
                            d.get("content")?.as_str().map(str::to_owned)
                        } else {
                            d["tool_calls"][0]["function"]["arguments"]
                                .as_str()
                                .map(str::to_owned)
                        }
                    })
                    .collect();
                assert_eq!(streamed, expected, "cuts {cuts:?}");
            }
        }
    }
}

#[test]
fn garbage_and_truncated_events_never_panic() {
    let events = [
        START,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":1}"}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":1}}"#,
        r#"{"type":"error","error":{"type":"api_error","message":"x"}}"#,
        STOP,
    ];
    for event in events {
        for len in 0..event.len() {
            let mut s = MessagesToChatStream::new("m", 0, true, true);
            let mut out = Vec::new();
            let _ = s.push(&event.as_bytes()[..len], &mut out);
            let _ = s.push(event.as_bytes(), &mut out);
        }
    }
    let weird: [&[u8]; 9] = [
        b"",
        b"\xff",
        b"null",
        b"{\"type\":null}",
        b"{\"type\":\"message_start\",\"message\":null}",
        b"{\"type\":\"message_delta\",\"delta\":null,\"usage\":null}",
        b"{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{}}",
        b"{\"type\":\"content_block_delta\",\"index\":99,\"delta\":{\"type\":\"input_json_delta\"}}",
        b"{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":-1}}",
    ];
    let mut s = MessagesToChatStream::new("m", 0, true, true);
    let mut out = Vec::new();
    for w in weird {
        let _ = s.push(w, &mut out);
    }
}

// ---- OpenAI chunks -> Anthropic events ----------------------------------------------------

/// Pushes every payload; returns the events as (name, parsed data) and each push's step.
fn to_messages(
    payloads: &[&str],
) -> (
    Vec<(&'static str, Value)>,
    Vec<StreamStep>,
    ChatToMessagesStream,
) {
    let mut s = ChatToMessagesStream::new("my-claude");
    let mut out = Vec::new();
    let steps = payloads
        .iter()
        .map(|p| s.push(p.as_bytes(), &mut out).unwrap())
        .collect();
    (out.iter().map(|(n, d)| (*n, value(d))).collect(), steps, s)
}

fn oai_chunk(delta: Value, finish: Value) -> String {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "system_fingerprint": "fp_x",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        "usage": null
    })
    .to_string()
}

fn usage_chunk(prompt: u64, cached: u64, completion: u64) -> String {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}
        }
    })
    .to_string()
}

fn message_start() -> (&'static str, Value) {
    (
        "message_start",
        json!({"type": "message_start", "message": {
            "id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "my-claude",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0, "output_tokens": 0}}}),
    )
}

fn block_start(index: u32, block: Value) -> (&'static str, Value) {
    (
        "content_block_start",
        json!({"type": "content_block_start", "index": index, "content_block": block}),
    )
}

fn block_delta(index: u32, delta: Value) -> (&'static str, Value) {
    (
        "content_block_delta",
        json!({"type": "content_block_delta", "index": index, "delta": delta}),
    )
}

fn block_stop(index: u32) -> (&'static str, Value) {
    (
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    )
}

fn ping() -> (&'static str, Value) {
    ("ping", json!({"type": "ping"}))
}

fn message_delta(stop: &str, input: u64, read: u64, output: u64) -> (&'static str, Value) {
    (
        "message_delta",
        json!({"type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"input_tokens": input, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": read, "output_tokens": output}}),
    )
}

fn message_stop() -> (&'static str, Value) {
    ("message_stop", json!({"type": "message_stop"}))
}

#[test]
fn text_chunks_become_a_text_block_with_usage() {
    let (events, steps, s) = to_messages(&[
        &oai_chunk(
            json!({"role": "assistant", "content": "", "refusal": null}),
            Value::Null,
        ),
        &oai_chunk(json!({"content": "Hel"}), Value::Null),
        &oai_chunk(json!({"content": "lo"}), Value::Null),
        &oai_chunk(json!({}), json!("stop")),
        &usage_chunk(2100, 2048, 5),
        "[DONE]",
    ]);
    assert_eq!(
        events,
        vec![
            message_start(),
            block_start(0, json!({"type": "text", "text": ""})),
            ping(),
            block_delta(0, json!({"type": "text_delta", "text": "Hel"})),
            block_delta(0, json!({"type": "text_delta", "text": "lo"})),
            block_stop(0),
            message_delta("end_turn", 52, 2048, 5),
            message_stop(),
        ]
    );
    assert_eq!(steps.last(), Some(&StreamStep::Done));
    assert_eq!(
        s.usage(),
        Some(Usage {
            prompt_tokens: 2100,
            completion_tokens: 5,
            total_tokens: 2105,
            cached_tokens: 2048,
            cache_write_tokens: 0,
        })
    );
}

#[test]
fn events_keep_anthropic_field_order() {
    let mut s = ChatToMessagesStream::new("c");
    let mut out = Vec::new();
    s.push(
        br#"{"id":"x","choices":[{"index":0,"delta":{"content":"a"}}]}"#,
        &mut out,
    )
    .unwrap();
    s.push(b"[DONE]", &mut out).unwrap();
    let text: Vec<(&str, String)> = out
        .into_iter()
        .map(|(n, d)| (n, String::from_utf8(d).unwrap()))
        .collect();
    assert_eq!(
        text,
        vec![
            ("message_start", r#"{"type":"message_start","message":{"id":"x","type":"message","role":"assistant","model":"c","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}}"#.to_owned()),
            ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#.to_owned()),
            ("ping", r#"{"type":"ping"}"#.to_owned()),
            ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}"#.to_owned()),
            ("content_block_stop", r#"{"type":"content_block_stop","index":0}"#.to_owned()),
            ("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}"#.to_owned()),
            ("message_stop", r#"{"type":"message_stop"}"#.to_owned()),
        ]
    );
}

#[test]
fn parallel_tool_calls_become_tool_use_blocks() {
    let (events, _, _) = to_messages(&[
        &oai_chunk(json!({"role": "assistant", "content": null}), Value::Null),
        &oai_chunk(json!({"content": "Let me check."}), Value::Null),
        &oai_chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_A", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        ),
        &oai_chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": \"Pa"}}]}),
            Value::Null,
        ),
        &oai_chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "ris\"}"}}]}),
            Value::Null,
        ),
        &oai_chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_B", "type": "function",
                "function": {"name": "get_time", "arguments": "{\"tz\":\"UTC\"}"}}]}),
            Value::Null,
        ),
        &oai_chunk(json!({}), json!("tool_calls")),
        &usage_chunk(80, 0, 31),
        "[DONE]",
    ]);
    assert_eq!(
        events,
        vec![
            message_start(),
            block_start(0, json!({"type": "text", "text": ""})),
            ping(),
            block_delta(0, json!({"type": "text_delta", "text": "Let me check."})),
            block_stop(0),
            block_start(
                1,
                json!({"type": "tool_use", "id": "call_A", "name": "get_weather", "input": {}})
            ),
            block_delta(
                1,
                json!({"type": "input_json_delta", "partial_json": "{\"city\": \"Pa"})
            ),
            block_delta(
                1,
                json!({"type": "input_json_delta", "partial_json": "ris\"}"})
            ),
            block_stop(1),
            block_start(
                2,
                json!({"type": "tool_use", "id": "call_B", "name": "get_time", "input": {}})
            ),
            block_delta(
                2,
                json!({"type": "input_json_delta", "partial_json": "{\"tz\":\"UTC\"}"})
            ),
            block_stop(2),
            message_delta("tool_use", 80, 0, 31),
            message_stop(),
        ]
    );
}

#[test]
fn several_tool_calls_in_one_chunk_and_calls_without_index() {
    let (events, _, _) = to_messages(&[
        &oai_chunk(
            json!({"role": "assistant", "tool_calls": [
                {"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"index": 1, "id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}
            ]}),
            json!("tool_calls"),
        ),
        "[DONE]",
    ]);
    let names: Vec<&str> = events.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[5].1["content_block"]["id"], "b");

    // No `index`: a new `id` is a new call, a missing one continues the open call.
    let (events, _, _) = to_messages(&[
        &oai_chunk(
            json!({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{\"x\""}}]}),
            Value::Null,
        ),
        &oai_chunk(
            json!({"tool_calls": [{"function": {"arguments": ":1}"}}]}),
            Value::Null,
        ),
        &oai_chunk(
            json!({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
            Value::Null,
        ),
        "[DONE]",
    ]);
    let starts: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| *n == "content_block_start")
        .map(|(_, d)| &d["content_block"]["id"])
        .collect();
    assert_eq!(starts, [&json!("a"), &json!("b")]);
    assert_eq!(
        events[4],
        block_delta(
            0,
            json!({"type": "input_json_delta", "partial_json": ":1}"})
        )
    );
    assert_eq!(
        events[events.len() - 2].1["delta"]["stop_reason"],
        "tool_use"
    );

    // No `id` at all: `call_<index>`.
    let (events, _, _) = to_messages(&[
        &oai_chunk(
            json!({"tool_calls": [{"index": 3, "function": {"name": "f", "arguments": "{}"}}]}),
            Value::Null,
        ),
        "[DONE]",
    ]);
    assert_eq!(
        events[1],
        block_start(
            0,
            json!({"type": "tool_use", "id": "call_3", "name": "f", "input": {}})
        )
    );
}

#[test]
fn fragments_for_a_closed_tool_call_are_an_error() {
    let mut s = ChatToMessagesStream::new("c");
    let mut out = Vec::new();
    for p in [
        oai_chunk(
            json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]}),
            Value::Null,
        ),
        oai_chunk(
            json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}}]}),
            Value::Null,
        ),
    ] {
        s.push(p.as_bytes(), &mut out).unwrap();
    }
    let late = oai_chunk(
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
        Value::Null,
    );
    let err = s.push(late.as_bytes(), &mut out).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("choices[0].delta.tool_calls[0]"));
}

#[test]
fn reasoning_becomes_a_thinking_block_before_text() {
    let (events, _, _) = to_messages(&[
        &oai_chunk(
            json!({"role": "assistant", "reasoning_content": "Hmm, "}),
            Value::Null,
        ),
        &oai_chunk(
            json!({"reasoning": "ignored twin", "reasoning_content": "fine."}),
            Value::Null,
        ),
        &oai_chunk(json!({"reasoning": "vendor field"}), Value::Null),
        &oai_chunk(json!({"content": "Done."}), json!("stop")),
        "[DONE]",
    ]);
    assert_eq!(
        events,
        vec![
            message_start(),
            block_start(
                0,
                json!({"type": "thinking", "thinking": "", "signature": ""})
            ),
            ping(),
            block_delta(0, json!({"type": "thinking_delta", "thinking": "Hmm, "})),
            block_delta(0, json!({"type": "thinking_delta", "thinking": "fine."})),
            block_delta(
                0,
                json!({"type": "thinking_delta", "thinking": "vendor field"})
            ),
            block_stop(0),
            block_start(1, json!({"type": "text", "text": ""})),
            block_delta(1, json!({"type": "text_delta", "text": "Done."})),
            block_stop(1),
            message_delta("end_turn", 0, 0, 0),
            message_stop(),
        ]
    );
}

#[test]
fn finish_reasons_become_stop_reasons() {
    for (finish, stop) in [
        (json!("length"), "max_tokens"),
        (json!("content_filter"), "refusal"),
        (json!("stop"), "end_turn"),
        (Value::Null, "end_turn"),
    ] {
        let (events, _, _) = to_messages(&[&oai_chunk(json!({"content": "x"}), finish), "[DONE]"]);
        assert_eq!(events[events.len() - 2].1["delta"]["stop_reason"], stop);
    }
}

#[test]
fn done_alone_yields_an_empty_message() {
    let (events, steps, s) = to_messages(&[" [DONE]\n"]);
    let names: Vec<&str> = events.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
    assert_eq!(steps, [StreamStep::Done]);
    assert_eq!(s.usage(), None);
}

#[test]
fn usage_on_the_finish_chunk_is_used_too() {
    let mut last = value(oai_chunk(json!({}), json!("stop")).as_bytes());
    last["usage"] = json!({"prompt_tokens": 9, "completion_tokens": 4});
    let (events, _, s) = to_messages(&[
        &oai_chunk(json!({"content": "x"}), Value::Null),
        &last.to_string(),
        "[DONE]",
    ]);
    assert_eq!(events[events.len() - 2], message_delta("end_turn", 9, 0, 4));
    assert_eq!(s.usage().map(|u| u.total_tokens), Some(13));
}

#[test]
fn other_choices_are_ignored() {
    let c = json!({"id": "x", "choices": [
        {"index": 1, "delta": {"content": "other"}, "finish_reason": null},
        {"index": 0, "delta": {"content": "mine"}, "finish_reason": null}
    ]});
    let (events, _, _) = to_messages(&[&c.to_string(), "[DONE]"]);
    assert_eq!(
        events[3],
        block_delta(0, json!({"type": "text_delta", "text": "mine"}))
    );
    assert_eq!(events.len(), 7);
}

#[test]
fn error_payload_becomes_an_anthropic_error() {
    let mut s = ChatToMessagesStream::new("c");
    let mut out = Vec::new();
    s.push(
        oai_chunk(json!({"content": "x"}), Value::Null).as_bytes(),
        &mut out,
    )
    .unwrap();
    let n = out.len();
    let step = s
        .push(
            br#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#,
            &mut out,
        )
        .unwrap();
    let StreamStep::Error(body) = step else {
        panic!("expected an error, got {step:?}");
    };
    assert_eq!(
        value(&body),
        json!({"type": "error", "error": {"type": "api_error", "message": "The server had an error"}})
    );
    assert_eq!(out.len(), n, "the error payload is not appended to out");
    assert_eq!(s.push(b"[DONE]", &mut out).unwrap(), StreamStep::Continue);
    assert_eq!(out.len(), n);
}

#[test]
fn malformed_chunks_are_translate_errors() {
    let mut s = ChatToMessagesStream::new("c");
    let mut out = Vec::new();
    assert!(s.push(b"{\"choices\":[", &mut out).is_err());
    assert!(s.push(b"DONE", &mut out).is_err());
    assert!(s
        .push(
            br#"{"choices":[{"index":0,"delta":{"content":5}}]}"#,
            &mut out
        )
        .is_err());
}

/// Streamed `partial_json` fragments concatenate to the non-streamed `input`.
#[test]
fn streamed_input_equals_non_streamed_input() {
    let arguments = r#"{"q": "a  b\" }{", "n": [1, 2.50], "u": "é ✓"}"#;
    let whole = json!({"id": "c", "choices": [{"index": 0, "message": {"role": "assistant",
        "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "f", "arguments": arguments}}]}, "finish_reason": "tool_calls"}]});
    let (body, _) = chat_to_messages_response(whole.to_string().as_bytes(), "c").unwrap();
    let body = String::from_utf8(body).unwrap();
    let cut_points: Vec<usize> = (1..arguments.len())
        .filter(|&i| arguments.is_char_boundary(i))
        .collect();
    for (n, &a) in cut_points.iter().enumerate() {
        for &b in &cut_points[n..] {
            let cuts = if a == b { vec![a] } else { vec![a, b] };
            let mut payloads = vec![oai_chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                    "function": {"name": "f", "arguments": ""}}]}),
                Value::Null,
            )];
            for piece in split_at(arguments, &cuts) {
                payloads.push(oai_chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                    Value::Null,
                ));
            }
            let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
            let (events, _, _) = to_messages(&refs);
            let streamed: String = events
                .iter()
                .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
                .collect();
            // The non-streamed body holds the input verbatim.
            assert!(
                body.contains(&format!("\"input\":{streamed}}}")),
                "cuts {cuts:?}"
            );
            assert_eq!(streamed, arguments);
        }
    }
}

#[test]
fn garbage_and_truncated_chunks_never_panic() {
    let payloads = [
        oai_chunk(
            json!({"role": "assistant", "content": "hi", "reasoning_content": "r"}),
            Value::Null,
        ),
        oai_chunk(
            json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}),
            json!("tool_calls"),
        ),
        usage_chunk(1, 2, 3),
        r#"{"error":{"message":"x"}}"#.to_owned(),
        "[DONE]".to_owned(),
    ];
    for p in &payloads {
        for len in 0..p.len() {
            let mut s = ChatToMessagesStream::new("c");
            let mut out = Vec::new();
            let _ = s.push(&p.as_bytes()[..len], &mut out);
            let _ = s.push(p.as_bytes(), &mut out);
            let _ = s.push(b"[DONE]", &mut out);
        }
    }
    let weird: [&[u8]; 11] = [
        b"",
        b"\xff",
        b"null",
        b"[]",
        b"{\"choices\":null,\"usage\":null,\"error\":null}",
        b"{\"choices\":[{\"index\":0,\"delta\":null}]}",
        b"{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{}]}}]}",
        b"{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":4294967295}]}}]}",
        b"{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"new\"}]}}]}",
        b"{\"usage\":{\"prompt_tokens\":1,\"prompt_tokens_details\":{\"cached_tokens\":99}}}",
        b"{\"error\":\"just a string\"}",
    ];
    let mut s = ChatToMessagesStream::new("c");
    let mut out = Vec::new();
    for w in weird {
        let _ = s.push(w, &mut out);
    }
}
