use serde_json::{json, Value};

use super::*;

fn value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn to_chat(body: &Value, json_tool: bool) -> (Value, Usage) {
    let (out, usage) = messages_to_chat_response(
        body.to_string().as_bytes(),
        "my-model",
        1_700_000_000,
        json_tool,
    )
    .unwrap();
    (value(&out), usage)
}

fn to_messages(body: &Value) -> (Value, Usage) {
    let (out, usage) = chat_to_messages_response(body.to_string().as_bytes(), "my-claude").unwrap();
    (value(&out), usage)
}

// ---- Anthropic message -> OpenAI chat.completion -------------------------------------------

#[test]
fn text_message_becomes_a_chat_completion_with_cache_usage() {
    let msg = json!({
        "id": "msg_01AbC",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": "Hello"},
            {"type": "text", "text": ", world."}
        ],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 2000,
            "output_tokens": 7,
            "service_tier": "standard"
        }
    });
    let (out, usage) = to_chat(&msg, false);
    assert_eq!(
        out,
        json!({
            "id": "msg_01AbC",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "my-model",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Hello, world."},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": 2112,
                "completion_tokens": 7,
                "total_tokens": 2119,
                "prompt_tokens_details": {"cached_tokens": 2000}
            }
        })
    );
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 2112,
            completion_tokens: 7,
            total_tokens: 2119,
            cached_tokens: 2000,
            cache_write_tokens: 100,
        }
    );
}

#[test]
fn chat_completion_keeps_openai_field_order() {
    let msg = br#"{"id":"msg_1","type":"message","content":[{"type":"text","text":"x"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}"#;
    let (out, _) = messages_to_chat_response(msg, "m", 5, false).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(
        out,
        r#"{"id":"msg_1","object":"chat.completion","created":5,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"x"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"prompt_tokens_details":{"cached_tokens":0}}}"#
    );
}

#[test]
fn thinking_and_parallel_tool_uses_become_reasoning_and_tool_calls() {
    // Raw text, not json!(): key order and number spelling must survive.
    let msg = br#"{
        "id": "msg_02",
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Two cities, ", "signature": "sig1"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "thinking", "thinking": "two calls.", "signature": "sig2"},
            {"type": "tool_use", "id": "toolu_A", "name": "get_weather",
             "input": {"city": "Paris", "units": "c"}},
            {"type": "tool_use", "id": "toolu_B", "name": "get_weather",
             "input": {"city": "Oslo", "days": [1, 2.50]}}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 40, "output_tokens": 30}
    }"#;
    let (out, _) = messages_to_chat_response(msg, "my-model", 1, false).unwrap();
    assert_eq!(
        value(&out)["choices"][0],
        json!({
            "index": 0,
            "message": {
                "role": "assistant",
                "content": null,
                "reasoning_content": "Two cities, two calls.",
                "tool_calls": [
                    {"id": "toolu_A", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"units\":\"c\"}"}},
                    {"id": "toolu_B", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\",\"days\":[1,2.50]}"}}
                ]
            },
            "logprobs": null,
            "finish_reason": "tool_calls"
        })
    );
}

#[test]
fn tool_arguments_keep_key_order_and_number_spelling_but_lose_whitespace() {
    let msg = br#"{"id":"m","type":"message","content":[{"type":"tool_use","id":"t","name":"f","input": { "z" : 1.0 , "a" : "two  words\" \\" } }],"stop_reason":"tool_use"}"#;
    let (out, _) = messages_to_chat_response(msg, "m", 0, false).unwrap();
    let out = value(&out);
    assert_eq!(
        out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        r#"{"z":1.0,"a":"two  words\" \\"}"#
    );
}

#[test]
fn json_tool_becomes_content_and_stop() {
    let raw = format!(
        r#"{{"id":"msg_03","type":"message","content":[{{"type":"tool_use","id":"toolu_J","name":"{JSON_TOOL_NAME}","input":{{"name": "Ada", "age": 36}}}}],"stop_reason":"tool_use","usage":{{"input_tokens":5,"output_tokens":9}}}}"#
    );
    let msg: Value = serde_json::from_str(&raw).unwrap();
    let (out, _) = messages_to_chat_response(raw.as_bytes(), "my-model", 1, true).unwrap();
    assert_eq!(
        value(&out)["choices"][0],
        json!({
            "index": 0,
            "message": {"role": "assistant", "content": "{\"name\":\"Ada\",\"age\":36}"},
            "logprobs": null,
            "finish_reason": "stop"
        })
    );
    // Without the flag the same block is an ordinary tool call.
    let (out, _) = to_chat(&msg, false);
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        out["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        JSON_TOOL_NAME
    );
}

#[test]
fn json_tool_next_to_a_real_tool_keeps_tool_calls() {
    let msg = json!({
        "id": "m", "type": "message",
        "content": [
            {"type": "tool_use", "id": "t1", "name": JSON_TOOL_NAME, "input": {"a": 1}},
            {"type": "tool_use", "id": "t2", "name": "lookup", "input": {}}
        ],
        "stop_reason": "tool_use"
    });
    let (out, _) = to_chat(&msg, true);
    assert_eq!(out["choices"][0]["message"]["content"], "{\"a\":1}");
    assert_eq!(out["choices"][0]["message"]["tool_calls"][0]["id"], "t2");
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
    ] {
        let msg = json!({"id": "m", "type": "message",
            "content": [{"type": "text", "text": "partial"}], "stop_reason": stop});
        let (out, _) = to_chat(&msg, false);
        assert_eq!(out["choices"][0]["finish_reason"], finish, "{stop}");
        assert_eq!(out["choices"][0]["message"]["content"], "partial");
    }
    // Missing stop reason and usage: a plain stop with zero usage.
    let (out, usage) = to_chat(&json!({"id": "m", "content": []}), false);
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(out["choices"][0]["message"]["content"], "");
    assert_eq!(usage, Usage::default());
}

#[test]
fn server_tool_and_unknown_blocks_are_skipped() {
    let msg = json!({
        "id": "m", "type": "message",
        "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            {"type": "text", "text": "Found it.", "citations": [{"type": "web_search_result_location"}]},
            {"type": "hologram", "shape": "cube"}
        ],
        "stop_reason": "end_turn"
    });
    let (out, _) = to_chat(&msg, false);
    assert_eq!(
        out["choices"][0]["message"],
        json!({"role": "assistant", "content": "Found it."})
    );
}

#[test]
fn bad_messages_are_translate_errors() {
    let err = messages_to_chat_response(
        br#"{"type":"error","error":{"type":"api_error","message":"x"}}"#,
        "m",
        0,
        false,
    )
    .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("type"));
    assert!(messages_to_chat_response(b"{\"id\":\"m\"}", "m", 0, false).is_err());
    assert!(messages_to_chat_response(b"not json", "m", 0, false).is_err());
    assert!(messages_to_chat_response(b"", "m", 0, false).is_err());
}

// ---- OpenAI chat.completion -> Anthropic message -------------------------------------------

#[test]
fn chat_completion_with_text_and_tool_calls_becomes_a_message() {
    let resp = json!({
        "id": "chatcmpl-9x",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-2024-08-06",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Checking both.",
                "refusal": null,
                "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function",
                     "function": {"name": "get_time", "arguments": "{\"tz\": \"Europe/Oslo\"}"}}
                ]
            },
            "logprobs": null,
            "finish_reason": "tool_calls"
        }],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 40,
            "total_tokens": 1240,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}
        },
        "system_fingerprint": "fp_1"
    });
    let (out, usage) = to_messages(&resp);
    assert_eq!(
        out,
        json!({
            "id": "chatcmpl-9x",
            "type": "message",
            "role": "assistant",
            "model": "my-claude",
            "content": [
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {"tz": "Europe/Oslo"}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {
                "input_tokens": 176,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 1024,
                "output_tokens": 40
            }
        })
    );
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 1200,
            completion_tokens: 40,
            total_tokens: 1240,
            cached_tokens: 1024,
            cache_write_tokens: 0,
        }
    );
}

#[test]
fn message_keeps_anthropic_field_order_and_raw_tool_input() {
    let resp = br#"{"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"f","arguments":"{\"z\":1,\"a\":2}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
    let (out, _) = chat_to_messages_response(resp, "c").unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"id":"c1","type":"message","role":"assistant","model":"c","content":[{"type":"tool_use","id":"call_9","name":"f","input":{"z":1,"a":2}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":3,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2}}"#
    );
}

#[test]
fn reasoning_content_becomes_a_thinking_block_first() {
    let resp = json!({
        "id": "c", "choices": [{"index": 0, "message": {"role": "assistant",
            "reasoning_content": "Think first.", "content": "Answer."}, "finish_reason": "stop"}]
    });
    let (out, usage) = to_messages(&resp);
    assert_eq!(
        out["content"],
        json!([
            {"type": "thinking", "thinking": "Think first.", "signature": ""},
            {"type": "text", "text": "Answer."}
        ])
    );
    assert_eq!(out["stop_reason"], "end_turn");
    assert_eq!(usage, Usage::default());
}

#[test]
fn tool_arguments_that_are_not_an_object_are_kept_raw() {
    let resp = json!({
        "id": "c", "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{\"city\": \"Par"}},
                {"id": "b", "type": "function", "function": {"name": "g", "arguments": ""}},
                {"id": "c", "type": "function", "function": {"name": "h", "arguments": "[1,2]"}},
                {"id": "d", "type": "function", "function": {"name": "k"}}
            ]}, "finish_reason": "length"}]
    });
    let (out, _) = to_messages(&resp);
    assert_eq!(
        out["content"][0]["input"],
        json!({"_raw_arguments": "{\"city\": \"Par"})
    );
    assert_eq!(out["content"][1]["input"], json!({}));
    assert_eq!(
        out["content"][2]["input"],
        json!({"_raw_arguments": "[1,2]"})
    );
    assert_eq!(out["content"][3]["input"], json!({}));
    assert_eq!(out["stop_reason"], "max_tokens");
}

#[test]
fn tool_calls_without_an_id_get_one_from_their_position() {
    let resp = json!({
        "id": "c", "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
            "tool_calls": [
                {"type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "", "type": "function", "function": {"name": "g", "arguments": "{}"}},
                {"id": "call_x", "type": "function", "function": {"name": "h", "arguments": "{}"}}
            ]}, "finish_reason": "tool_calls"}]
    });
    let (out, _) = to_messages(&resp);
    let ids: Vec<&Value> = out["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["id"])
        .collect();
    assert_eq!(ids, [&json!("call_0"), &json!("call_1"), &json!("call_x")]);
}

#[test]
fn finish_reasons_map_to_stop_reasons() {
    for (finish, stop) in [
        (json!("stop"), "end_turn"),
        (json!("length"), "max_tokens"),
        (json!("content_filter"), "refusal"),
        (json!("tool_calls"), "tool_use"),
        (json!("function_call"), "tool_use"),
        (Value::Null, "end_turn"),
    ] {
        let resp = json!({"id": "c", "choices": [{"index": 0,
            "message": {"role": "assistant", "content": "x"}, "finish_reason": finish}]});
        assert_eq!(to_messages(&resp).0["stop_reason"], stop, "{finish}");
    }
    // Tool calls reported with `stop` still need `tool_use` for Anthropic clients to run them.
    let resp = json!({"id": "c", "choices": [{"index": 0, "message": {"role": "assistant",
        "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        "finish_reason": "stop"}]});
    assert_eq!(to_messages(&resp).0["stop_reason"], "tool_use");
}

#[test]
fn refusal_and_content_parts_become_text() {
    let resp = json!({"id": "c", "choices": [{"index": 0, "message": {"role": "assistant",
        "content": null, "refusal": "I can't help with that."}, "finish_reason": "stop"}]});
    assert_eq!(
        to_messages(&resp).0["content"],
        json!([{"type": "text", "text": "I can't help with that."}])
    );
    let resp = json!({"id": "c", "choices": [{"index": 0, "message": {"role": "assistant",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        "finish_reason": "stop"}]});
    assert_eq!(
        to_messages(&resp).0["content"],
        json!([{"type": "text", "text": "ab"}])
    );
}

#[test]
fn only_the_first_choice_is_used_and_total_is_filled_in() {
    let resp = json!({"id": "c", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "one"}, "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": "two"}, "finish_reason": "stop"}
    ], "usage": {"prompt_tokens": 4, "completion_tokens": 6}});
    let (out, usage) = to_messages(&resp);
    assert_eq!(out["content"], json!([{"type": "text", "text": "one"}]));
    assert_eq!(usage.total_tokens, 10);
}

#[test]
fn bad_chat_completions_are_translate_errors() {
    let err = chat_to_messages_response(br#"{"id":"c","choices":[]}"#, "m").unwrap_err();
    assert_eq!(err.param.as_deref(), Some("choices"));
    let err = chat_to_messages_response(
        br#"{"id":"c","choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"id":"x","type":"custom","custom":{"name":"n","input":"i"}}]}}]}"#,
        "m",
    )
    .unwrap_err();
    assert_eq!(
        err.param.as_deref(),
        Some("choices[0].message.tool_calls[0]")
    );
    let err = chat_to_messages_response(
        br#"{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":5}}]}"#,
        "m",
    )
    .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("choices[0].message.content"));
    assert!(chat_to_messages_response(br#"{"error":{"message":"x"}}"#, "m").is_err());
    assert!(chat_to_messages_response(b"[", "m").is_err());
}

// ---- Usage ---------------------------------------------------------------------------------

#[test]
fn usage_merge_prefers_later_counts() {
    let mut start = AnthropicUsage {
        input_tokens: Some(10),
        output_tokens: Some(1),
        cache_creation_input_tokens: Some(3),
        cache_read_input_tokens: Some(20),
    };
    start.merge(&AnthropicUsage {
        output_tokens: Some(50),
        cache_read_input_tokens: None,
        ..AnthropicUsage::default()
    });
    assert_eq!(
        usage_from_anthropic(&start),
        Usage {
            prompt_tokens: 33,
            completion_tokens: 50,
            total_tokens: 83,
            cached_tokens: 20,
            cache_write_tokens: 3,
        }
    );
    let with_nulls: AnthropicUsage =
        serde_json::from_str(r#"{"input_tokens":null,"output_tokens":4,"server_tool_use":{}}"#)
            .unwrap();
    assert_eq!(with_nulls.output_tokens, Some(4));
    assert_eq!(with_nulls.input_tokens, None);
}

// ---- Errors --------------------------------------------------------------------------------

fn openai_err(body: &str) -> Option<(String, String, Option<String>)> {
    anthropic_error_to_openai(body.as_bytes())
        .map(|b| (b.error.message, b.error.kind, b.error.code))
}

#[test]
fn anthropic_errors_become_openai_errors() {
    assert_eq!(
        openai_err(
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208656 tokens > 200000 maximum"},"request_id":"req_1"}"#
        ),
        Some((
            "prompt is too long: 208656 tokens > 200000 maximum".into(),
            "invalid_request_error".into(),
            Some("context_length_exceeded".into())
        ))
    );
    assert_eq!(
        openai_err(
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000"}}"#
        )
        .unwrap()
        .2
        .as_deref(),
        Some("context_length_exceeded")
    );
    assert_eq!(
        openai_err(r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#),
        Some((
            "slow down".into(),
            "rate_limit_error".into(),
            Some("rate_limit_exceeded".into())
        ))
    );
    assert_eq!(
        openai_err(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        ),
        Some((
            "Overloaded".into(),
            "overloaded_error".into(),
            Some("overloaded_error".into())
        ))
    );
    let body = anthropic_error_to_openai(
        br#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}}"#,
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        json!({"error": {"message": "messages: roles must alternate",
            "type": "invalid_request_error", "param": null, "code": "invalid_request_error"}})
    );
}

#[test]
fn non_anthropic_error_bodies_are_not_converted() {
    for body in [
        r#"{"error":{"message":"m","type":"invalid_request_error","param":null,"code":null}}"#,
        r#"{"type":"message","error":{"type":"x","message":"y"}}"#,
        r#"{"type":"error","error":{"type":"x"}}"#,
        r#"{"type":"error"}"#,
        "<html>502</html>",
        "",
    ] {
        assert_eq!(openai_err(body), None, "{body}");
    }
}

#[test]
fn gateway_errors_have_anthropic_shape() {
    assert_eq!(
        value(&anthropic_error_body(429, "Too many \"requests\"")),
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Too many \"requests\""}})
    );
    assert_eq!(
        value(&anthropic_error_body(502, "bad gateway")),
        json!({"type": "error", "error": {"type": "api_error", "message": "bad gateway"}})
    );
}

fn anth(status: u16, body: &str) -> Value {
    value(&openai_error_to_anthropic(status, body.as_bytes()))
}

#[test]
fn openai_and_other_errors_become_anthropic_errors() {
    assert_eq!(
        anth(
            429,
            r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#
        ),
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit reached"}})
    );
    assert_eq!(
        anth(
            400,
            r#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#
        ),
        json!({"type": "error", "error": {"type": "invalid_request_error",
            "message": "prompt is too long: This model's maximum context length is 128000 tokens."}})
    );
    assert_eq!(
        anth(
            401,
            r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error","code":"invalid_api_key"}}"#
        ),
        json!({"type": "error", "error": {"type": "authentication_error", "message": "Incorrect API key"}})
    );
    assert_eq!(
        anth(500, r#"{"error":{"message":"boom","code":500}}"#),
        json!({"type": "error", "error": {"type": "api_error", "message": "boom"}})
    );
    // Inside a 200 stream the OpenAI type decides.
    assert_eq!(
        anth(
            200,
            r#"{"error":{"message":"slow","type":"tokens","code":null}}"#
        ),
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}})
    );
    assert_eq!(
        anth(200, r#"{"error":{"message":"oops","type":"server_error"}}"#),
        json!({"type": "error", "error": {"type": "api_error", "message": "oops"}})
    );
    assert_eq!(
        anth(422, r#"{"detail":"Field required"}"#),
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "Field required"}})
    );
    assert_eq!(
        anth(503, r#"{"error":"no healthy upstream"}"#),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "no healthy upstream"}})
    );
    assert_eq!(
        anth(504, "  upstream request timeout \n"),
        json!({"type": "error", "error": {"type": "timeout_error", "message": "upstream request timeout"}})
    );
    assert_eq!(
        anth(502, ""),
        json!({"type": "error", "error": {"type": "api_error", "message": "upstream returned HTTP 502"}})
    );
    let long = "é".repeat(5000);
    let out = anth(500, &long);
    assert_eq!(
        out["error"]["message"].as_str().unwrap().chars().count(),
        1000
    );
}

#[test]
fn anthropic_errors_pass_through_unchanged() {
    let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_9"}"#;
    assert_eq!(openai_error_to_anthropic(529, body), body.to_vec());
}

// ---- Helpers -------------------------------------------------------------------------------

#[test]
fn minifier_keeps_strings_and_handles_split_escapes() {
    assert_eq!(
        minify_json("{ \"a b\" : [ 1 ,\n\t2 ], \"c\":\"\\\\\" , \"d\":\"x\\\" y\" }"),
        r#"{"a b":[1,2],"c":"\\","d":"x\" y"}"#
    );
    let mut m = JsonMinifier::default();
    let mut out = String::new();
    for piece in ["{\"k\": \"a\\", "\" b", "\" , \"n\" :", " 1 }"] {
        m.push(piece, &mut out);
    }
    assert_eq!(out, r#"{"k":"a\" b","n":1}"#);
}

#[test]
fn garbage_never_panics() {
    let inputs: [&[u8]; 14] = [
        b"",
        b"null",
        b"[]",
        b"{",
        b"\"str\"",
        b"{\"content\":null}",
        b"{\"content\":[{}]}",
        b"{\"content\":[{\"type\":\"tool_use\",\"input\":null}]}",
        b"{\"choices\":null}",
        b"{\"choices\":[{}]}",
        b"{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":{}}]}}]}",
        b"{\"type\":\"error\",\"error\":[]}",
        b"\xff\xfe",
        b"{\"usage\":{\"input_tokens\":18446744073709551615,\"cache_read_input_tokens\":5}}",
    ];
    for input in inputs {
        let _ = messages_to_chat_response(input, "m", 0, true);
        let _ = chat_to_messages_response(input, "m");
        let _ = anthropic_error_to_openai(input);
        let _ = openai_error_to_anthropic(500, input);
        let _ = openai_error_to_anthropic(0, input);
    }
    // Saturating sums on absurd counts.
    let (_, usage) = messages_to_chat_response(
        br#"{"content":[],"usage":{"input_tokens":18446744073709551615,"cache_read_input_tokens":5,"output_tokens":1}}"#,
        "m",
        0,
        false,
    )
    .unwrap();
    assert_eq!(usage.prompt_tokens, u64::MAX);
    assert_eq!(usage.total_tokens, u64::MAX);
    let body = br#"{"id":"msg","type":"message","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":[1,2]}}],"stop_reason":"tool_use"}"#;
    for len in 0..body.len() {
        assert!(messages_to_chat_response(&body[..len], "m", 0, false).is_err());
    }
    let body = br#"{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;
    for len in 0..body.len() {
        assert!(chat_to_messages_response(&body[..len], "m").is_err());
    }
}
