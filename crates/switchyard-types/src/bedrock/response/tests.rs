use serde_json::{json, Value};

use super::*;

fn translate(body: &str, json_tool: bool) -> (Value, Usage) {
    let (bytes, usage) = converse_to_chat_response(
        body.as_bytes(),
        "chatcmpl-1",
        "smart",
        1_700_000_000,
        json_tool,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (serde_json::from_slice(&bytes).unwrap(), usage)
}

#[test]
fn golden_text_response() {
    // The shape of AWS's Converse API reference example.
    let body = r#"{
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello! "}, {"text": "How can I help?"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 12, "outputTokens": 8, "totalTokens": 20},
        "metrics": {"latencyMs": 412}
    }"#;
    let (got, usage) = translate(body, false);
    assert_eq!(
        got,
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000u64,
            "model": "smart",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help?"},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20,
                      "prompt_tokens_details": {"cached_tokens": 0}}
        })
    );
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (12, 8));
}

#[test]
fn tool_use_blocks_become_tool_calls_with_their_ids() {
    let body = r#"{
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "top_song", "input": {"sign": "WZPZ", "n": 1.50}}},
            {"toolUse": {"toolUseId": "tooluse_2", "name": "other", "input": {}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 5, "outputTokens": 6, "totalTokens": 11}
    }"#;
    let (got, _) = translate(body, false);
    let choice = &got["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Checking.");
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([
            {"id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "type": "function",
             "function": {"name": "top_song", "arguments": "{\"sign\":\"WZPZ\",\"n\":1.50}"}},
            {"id": "tooluse_2", "type": "function", "function": {"name": "other", "arguments": "{}"}}
        ])
    );
    // Only tool calls: content is null.
    let only = body.replace(r#"{"text": "Checking."},"#, "");
    let (got, _) = translate(&only, false);
    assert_eq!(got["choices"][0]["message"]["content"], Value::Null);
}

#[test]
fn the_json_tool_becomes_content() {
    let body = r#"{"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "t", "name": "json_response", "input": {"name": "Ada", "age": 36}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}}"#;
    let (got, _) = translate(body, true);
    assert_eq!(got["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        got["choices"][0]["message"]["content"],
        r#"{"name":"Ada","age":36}"#
    );
    assert!(got["choices"][0]["message"].get("tool_calls").is_none());
    // Without the flag it is an ordinary tool call.
    let (got, _) = translate(body, false);
    assert_eq!(got["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn stop_reasons_reasoning_and_cache_usage() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("something_new", "stop"),
    ] {
        let body = format!(
            r#"{{"output":{{"message":{{"role":"assistant","content":[{{"text":"x"}}]}}}},"stopReason":"{stop}","usage":{{"inputTokens":1,"outputTokens":1,"totalTokens":2}}}}"#
        );
        assert_eq!(
            translate(&body, false).0["choices"][0]["finish_reason"],
            finish,
            "{stop}"
        );
    }
    let body = r#"{"output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": {"reasoningText": {"text": "Let me think.", "signature": "sig"}}},
        {"text": "42"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 4, "totalTokens": 214, "cacheReadInputTokens": 150, "cacheWriteInputTokens": 50}}"#;
    let (got, usage) = translate(body, false);
    assert_eq!(
        got["choices"][0]["message"]["reasoning_content"],
        "Let me think."
    );
    assert_eq!(got["choices"][0]["message"]["content"], "42");
    assert_eq!(
        got["usage"],
        json!({"prompt_tokens": 210, "completion_tokens": 4, "total_tokens": 214,
               "prompt_tokens_details": {"cached_tokens": 150}})
    );
    assert_eq!((usage.cached_tokens, usage.cache_write_tokens), (150, 50));
}

#[test]
fn malformed_responses_are_errors() {
    for body in [
        "",
        "{",
        "[]",
        r#"{"output":{}}"#,
        r#"{"output":{"message":{"content":3}}}"#,
    ] {
        assert!(
            converse_to_chat_response(body.as_bytes(), "i", "m", 0, false).is_err(),
            "{body}"
        );
    }
}
