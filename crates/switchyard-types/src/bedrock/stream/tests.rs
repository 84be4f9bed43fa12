use serde_json::{json, Value};

use super::*;
use crate::bedrock::eventstream::{decode, encode, Header, HeaderValue};
use crate::bedrock::response::converse_to_chat_response;

/// An encoded ConverseStream event, as Bedrock frames it.
pub(crate) fn event(kind: &str, payload: &Value) -> Vec<u8> {
    let payload = serde_json::to_vec(payload).unwrap();
    encode(&Message {
        headers: vec![
            Header {
                name: ":event-type",
                value: HeaderValue::String(kind),
            },
            Header {
                name: ":content-type",
                value: HeaderValue::String("application/json"),
            },
            Header {
                name: ":message-type",
                value: HeaderValue::String("event"),
            },
        ],
        payload: &payload,
    })
    .unwrap()
}

pub(crate) fn exception(kind: &str, message: &str) -> Vec<u8> {
    let payload = serde_json::to_vec(&json!({ "message": message })).unwrap();
    encode(&Message {
        headers: vec![
            Header {
                name: ":exception-type",
                value: HeaderValue::String(kind),
            },
            Header {
                name: ":content-type",
                value: HeaderValue::String("application/json"),
            },
            Header {
                name: ":message-type",
                value: HeaderValue::String("exception"),
            },
        ],
        payload: &payload,
    })
    .unwrap()
}

/// Feeds encoded messages; returns the steps and the chunks as JSON.
fn run(s: &mut ConverseToChatStream, messages: &[Vec<u8>]) -> (Vec<StreamStep>, Vec<Value>) {
    let mut steps = Vec::new();
    let mut out = Vec::new();
    for m in messages {
        steps.push(s.push(&decode(m).unwrap(), &mut out).unwrap());
    }
    let chunks = out
        .iter()
        .map(|c| serde_json::from_slice(c).unwrap())
        .collect();
    (steps, chunks)
}

fn text_stream() -> Vec<Vec<u8>> {
    vec![
        event("messageStart", &json!({"role": "assistant", "p": "abcd"})),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": "Hello"}, "p": "ab"}),
        ),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": " world"}}),
        ),
        event("contentBlockStop", &json!({"contentBlockIndex": 0})),
        event("messageStop", &json!({"stopReason": "end_turn"})),
        event(
            "metadata",
            &json!({"usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11}, "metrics": {"latencyMs": 100}}),
        ),
    ]
}

#[test]
fn golden_text_stream_with_usage() {
    let mut s = ConverseToChatStream::new("chatcmpl-1", "smart", 7, true, false);
    let (steps, chunks) = run(&mut s, &text_stream());
    assert_eq!(
        steps,
        [
            StreamStep::Continue,
            StreamStep::Continue,
            StreamStep::Continue,
            StreamStep::Continue,
            StreamStep::Continue,
            StreamStep::Done
        ]
    );
    let expected = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "smart",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
               "usage": null})
    };
    assert_eq!(
        chunks,
        vec![
            expected(json!({"role": "assistant", "content": ""}), Value::Null),
            expected(json!({"content": "Hello"}), Value::Null),
            expected(json!({"content": " world"}), Value::Null),
            expected(json!({}), json!("stop")),
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "smart",
                   "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
                   "prompt_tokens_details": {"cached_tokens": 0}}}),
        ]
    );
    assert_eq!(s.usage().unwrap().total_tokens, 11);
    // Nothing after the end.
    let mut out = Vec::new();
    let again = text_stream();
    let more = decode(&again[1]).unwrap();
    assert_eq!(s.push(&more, &mut out).unwrap(), StreamStep::Continue);
    assert!(out.is_empty());
}

#[test]
fn without_include_usage_chunks_carry_no_usage_field() {
    let mut s = ConverseToChatStream::new("c", "m", 0, false, false);
    let (steps, chunks) = run(&mut s, &text_stream());
    assert_eq!(steps.last(), Some(&StreamStep::Done));
    assert_eq!(chunks.len(), 4);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    // The usage is still known to the gateway (for its log).
    assert_eq!(s.usage().unwrap().prompt_tokens, 9);
}

#[test]
fn tool_use_streams_as_tool_call_deltas() {
    let messages = vec![
        event("messageStart", &json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": "Let me check."}}),
        ),
        event("contentBlockStop", &json!({"contentBlockIndex": 0})),
        event(
            "contentBlockStart",
            &json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_A", "name": "get_weather"}}}),
        ),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\": "}}}),
        ),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
        ),
        event("contentBlockStop", &json!({"contentBlockIndex": 1})),
        event(
            "contentBlockStart",
            &json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tooluse_B", "name": "get_time"}}}),
        ),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{}"}}}),
        ),
        event("contentBlockStop", &json!({"contentBlockIndex": 2})),
        event("messageStop", &json!({"stopReason": "tool_use"})),
        event(
            "metadata",
            &json!({"usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}),
        ),
    ];
    let mut s = ConverseToChatStream::new("c", "m", 0, false, false);
    let (steps, chunks) = run(&mut s, &messages);
    assert_eq!(steps.last(), Some(&StreamStep::Done));
    let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
    assert_eq!(*deltas[1], json!({"content": "Let me check."}));
    assert_eq!(
        *deltas[2],
        json!({"tool_calls": [{"index": 0, "id": "tooluse_A", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]})
    );
    assert_eq!(
        *deltas[3],
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]})
    );
    assert_eq!(
        *deltas[4],
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]})
    );
    assert_eq!(deltas[5]["tool_calls"][0]["index"], 1);
    assert_eq!(deltas[5]["tool_calls"][0]["id"], "tooluse_B");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[test]
fn the_json_tool_streams_as_content() {
    let messages = vec![
        event("messageStart", &json!({"role": "assistant"})),
        event(
            "contentBlockStart",
            &json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": JSON_TOOL_NAME}}}),
        ),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"a\": 1}"}}}),
        ),
        event("messageStop", &json!({"stopReason": "tool_use"})),
    ];
    let mut s = ConverseToChatStream::new("c", "m", 0, true, true);
    let (steps, chunks) = run(&mut s, &messages);
    assert_eq!(steps.last(), Some(&StreamStep::Continue));
    assert_eq!(
        chunks[1]["choices"][0]["delta"],
        json!({"content": "{\"a\":1}"})
    );
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
    // The body ended after messageStop without metadata: complete, with a zero usage chunk.
    let mut out = Vec::new();
    assert_eq!(s.finish(&mut out).unwrap(), Some(StreamStep::Done));
    let last: Value = serde_json::from_slice(&out[0]).unwrap();
    assert_eq!(last["usage"]["total_tokens"], 0);
    assert_eq!(s.finish(&mut Vec::new()).unwrap(), None);
}

#[test]
fn a_stream_without_message_stop_is_not_complete() {
    let mut s = ConverseToChatStream::new("c", "m", 0, false, false);
    run(&mut s, &text_stream()[..3]);
    assert_eq!(s.finish(&mut Vec::new()).unwrap(), None);
}

#[test]
fn exceptions_end_the_stream_with_an_openai_error() {
    for (kind, message, error_type, code) in [
        (
            "throttlingException",
            "Too many tokens",
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        (
            "modelStreamErrorException",
            "Model failed",
            "api_error",
            "ModelStreamErrorException",
        ),
        (
            "validationException",
            "Input is too long for requested model.",
            "invalid_request_error",
            "context_length_exceeded",
        ),
        (
            "internalServerException",
            "oops",
            "api_error",
            "InternalServerException",
        ),
        (
            "serviceUnavailableException",
            "busy",
            "overloaded_error",
            "ServiceUnavailableException",
        ),
    ] {
        let mut s = ConverseToChatStream::new("c", "m", 0, true, false);
        let mut messages = text_stream()[..2].to_vec();
        messages.push(exception(kind, message));
        let (steps, chunks) = run(&mut s, &messages);
        assert_eq!(chunks.len(), 2, "{kind}");
        let Some(StreamStep::Error(body)) = steps.last() else {
            panic!("{kind}: {steps:?}");
        };
        let body: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["error"]["message"], message, "{kind}");
        assert_eq!(body["error"]["type"], error_type, "{kind}");
        assert_eq!(body["error"]["code"], code, "{kind}");
    }
    // The other error framing: `:message-type: error` with the code and message in headers.
    let err = encode(&Message {
        headers: vec![
            Header {
                name: ":message-type",
                value: HeaderValue::String("error"),
            },
            Header {
                name: ":error-code",
                value: HeaderValue::String("InternalFailure"),
            },
            Header {
                name: ":error-message",
                value: HeaderValue::String("boom"),
            },
        ],
        payload: b"",
    })
    .unwrap();
    let mut s = ConverseToChatStream::new("c", "m", 0, false, false);
    let (steps, _) = run(&mut s, &[err]);
    assert!(
        matches!(&steps[0], StreamStep::Error(b) if String::from_utf8_lossy(b).contains("boom"))
    );
}

#[test]
fn malformed_payloads_and_orphan_tool_input_are_errors() {
    let mut s = ConverseToChatStream::new("c", "m", 0, false, false);
    let bad = encode(&Message {
        headers: vec![Header {
            name: ":event-type",
            value: HeaderValue::String("contentBlockDelta"),
        }],
        payload: b"not json",
    })
    .unwrap();
    assert!(s.push(&decode(&bad).unwrap(), &mut Vec::new()).is_err());
    let orphan = event(
        "contentBlockDelta",
        &json!({"contentBlockIndex": 4, "delta": {"toolUse": {"input": "{"}}}),
    );
    assert!(s.push(&decode(&orphan).unwrap(), &mut Vec::new()).is_err());
    // Unknown events and reasoning signatures are skipped.
    let (_, chunks) = run(
        &mut s,
        &[
            event("somethingNew", &json!({"x": 1})),
            event(
                "contentBlockDelta",
                &json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "s"}}}),
            ),
            event(
                "contentBlockDelta",
                &json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
            ),
        ],
    );
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"reasoning_content": "hmm"})
    );
}

// === property: a stream says what the whole response says ===

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn word(&mut self) -> String {
        const WORDS: [&str; 8] = ["alpha", "beta", "gé", "delta", "\"q\"", "x y", "1.50", "{"];
        WORDS[self.below(WORDS.len() as u64) as usize].to_owned()
    }
}

/// Splits `s` into 1..=4 pieces at character boundaries.
fn pieces(rng: &mut Rng, s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut cuts: Vec<usize> = (0..rng.below(4))
        .map(|_| rng.below(chars.len() as u64 + 1) as usize)
        .collect();
    cuts.push(0);
    cuts.push(chars.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2)
        .map(|w| chars[w[0]..w[1]].iter().collect())
        .collect()
}

#[test]
fn streamed_and_whole_responses_agree() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..300 {
        let mut content = Vec::new();
        let mut events = vec![event("messageStart", &json!({"role": "assistant"}))];
        let blocks = 1 + rng.below(4);
        let mut has_tool = false;
        for index in 0..blocks {
            if rng.below(2) == 0 {
                let text: String = (0..1 + rng.below(5)).map(|_| rng.word() + " ").collect();
                for piece in pieces(&mut rng, &text) {
                    events.push(event(
                        "contentBlockDelta",
                        &json!({"contentBlockIndex": index, "delta": {"text": piece}}),
                    ));
                }
                content.push(json!({ "text": text }));
            } else {
                has_tool = true;
                let input =
                    json!({"k": rng.word(), "n": rng.below(100), "nested": {"w": rng.word()}});
                let id = format!("tooluse_{round}_{index}");
                events.push(event(
                    "contentBlockStart",
                    &json!({"contentBlockIndex": index,
                    "start": {"toolUse": {"toolUseId": id, "name": "f"}}}),
                ));
                let spaced = serde_json::to_string_pretty(&input).unwrap();
                for piece in pieces(&mut rng, &spaced) {
                    events.push(event(
                        "contentBlockDelta",
                        &json!({"contentBlockIndex": index,
                        "delta": {"toolUse": {"input": piece}}}),
                    ));
                }
                content.push(json!({"toolUse": {"toolUseId": id, "name": "f", "input": input}}));
            }
            events.push(event(
                "contentBlockStop",
                &json!({ "contentBlockIndex": index }),
            ));
        }
        let stop = if has_tool { "tool_use" } else { "end_turn" };
        let usage =
            json!({"inputTokens": rng.below(50), "outputTokens": rng.below(50), "totalTokens": 0});
        events.push(event("messageStop", &json!({ "stopReason": stop })));
        events.push(event("metadata", &json!({ "usage": usage })));
        let whole = json!({"output": {"message": {"role": "assistant", "content": content}},
                           "stopReason": stop, "usage": usage});

        let (bytes, whole_usage) =
            converse_to_chat_response(&serde_json::to_vec(&whole).unwrap(), "c", "m", 0, false)
                .unwrap();
        let whole: Value = serde_json::from_slice(&bytes).unwrap();
        let mut s = ConverseToChatStream::new("c", "m", 0, true, false);
        let (steps, chunks) = run(&mut s, &events);
        assert_eq!(steps.last(), Some(&StreamStep::Done));

        let mut text = String::new();
        let mut calls: Vec<(String, String, String)> = Vec::new();
        let mut finish = Value::Null;
        for c in &chunks {
            let Some(choice) = c["choices"].get(0) else {
                continue;
            };
            text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            for tc in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let i = tc["index"].as_u64().unwrap() as usize;
                if i == calls.len() {
                    calls.push(Default::default());
                }
                let call = &mut calls[i];
                call.0.push_str(tc["id"].as_str().unwrap_or(""));
                call.1
                    .push_str(tc["function"]["name"].as_str().unwrap_or(""));
                call.2
                    .push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
            }
            if !choice["finish_reason"].is_null() {
                finish = choice["finish_reason"].clone();
            }
        }
        let message = &whole["choices"][0]["message"];
        assert_eq!(
            text,
            message["content"].as_str().unwrap_or(""),
            "round {round}"
        );
        let whole_calls: Vec<(String, String, String)> = message["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_owned(),
                    c["function"]["name"].as_str().unwrap().to_owned(),
                    c["function"]["arguments"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(calls, whole_calls, "round {round}");
        assert_eq!(
            finish, whole["choices"][0]["finish_reason"],
            "round {round}"
        );
        assert_eq!(s.usage(), Some(whole_usage), "round {round}");
    }
}
