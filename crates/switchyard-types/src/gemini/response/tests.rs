use serde_json::{json, Value};

use super::*;

fn translate(resp: Value) -> (Value, Usage) {
    let (body, usage) = gemini_to_chat_response(
        &serde_json::to_vec(&resp).unwrap(),
        "smart",
        1_700_000_000,
        "n1",
    )
    .unwrap_or_else(|e| panic!("translation failed: {e}"));
    (serde_json::from_slice(&body).unwrap(), usage)
}

#[test]
fn text_answer_with_usage() {
    let (got, usage) = translate(json!({
        "candidates": [{
            "content": {"parts": [{"text": "Hello"}, {"text": " there."}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
        }],
        "usageMetadata": {
            "promptTokenCount": 10, "candidatesTokenCount": 4, "totalTokenCount": 20,
            "cachedContentTokenCount": 6, "thoughtsTokenCount": 6,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 10}]
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-1"
    }));
    assert_eq!(
        got,
        json!({
            "id": "resp-1", "object": "chat.completion", "created": 1_700_000_000u64,
            "model": "smart",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there."},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20,
                "prompt_tokens_details": {"cached_tokens": 6},
                "completion_tokens_details": {"reasoning_tokens": 6}
            }
        })
    );
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens,
            usage.cached_tokens
        ),
        (10, 10, 20, 6)
    );
}

#[test]
fn function_calls_become_tool_calls_with_stable_ids() {
    let resp = r#"{
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "days": 2.50}},
                 "thoughtSignature": "c2ln"},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                {"functionCall": {"id": "fc-9", "name": "now"}}
            ]},
            "finishReason": "STOP"
        }],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
        "responseId": "r"
    }"#;
    let translate = |r: &str| -> Value {
        let (body, _) = gemini_to_chat_response(r.as_bytes(), "smart", 0, "n1").unwrap();
        serde_json::from_slice(&body).unwrap()
    };
    let got = translate(resp);
    let choice = &got["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    // Arguments keep Gemini's key order and number spelling.
    assert_eq!(
        calls[0]["function"]["arguments"],
        r#"{"city":"Paris","days":2.50}"#
    );
    assert_eq!(
        calls[0]["extra_content"],
        json!({"google": {"thought_signature": "c2ln"}})
    );
    assert!(calls[1].get("extra_content").is_none());
    assert_eq!(calls[2]["id"], "fc-9");
    assert_eq!(calls[2]["function"]["arguments"], "{}");
    let id0 = calls[0]["id"].as_str().unwrap();
    assert!(id0.starts_with("call_"), "{id0}");
    assert_ne!(id0, calls[1]["id"].as_str().unwrap());
    // The same response translates to the same ids.
    let again = translate(resp);
    assert_eq!(
        again["choices"][0]["message"]["tool_calls"],
        Value::Array(calls.clone())
    );
}

#[test]
fn safety_stops_are_content_filter_with_their_ratings() {
    let ratings = json!([
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true},
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}
    ]);
    let (got, _) = translate(json!({
        "candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": ratings}],
        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}
    }));
    let choice = &got["choices"][0];
    assert_eq!(choice["finish_reason"], "content_filter");
    assert_eq!(choice["native_finish_reason"], "SAFETY");
    assert_eq!(choice["safety_ratings"], ratings);
    assert_eq!(choice["message"]["content"], Value::Null);
    let refusal = choice["message"]["refusal"].as_str().unwrap();
    assert!(
        refusal.contains("SAFETY") && refusal.contains("HARM_CATEGORY_DANGEROUS_CONTENT"),
        "{refusal}"
    );
    assert!(!refusal.contains("HARASSMENT"), "{refusal}");

    // Cut off mid-answer: the text stays, no refusal.
    let (got, _) = translate(json!({"candidates": [{
        "content": {"parts": [{"text": "Step one is"}]},
        "finishReason": "RECITATION"
    }]}));
    let choice = &got["choices"][0];
    assert_eq!(choice["finish_reason"], "content_filter");
    assert_eq!(choice["native_finish_reason"], "RECITATION");
    assert_eq!(choice["message"]["content"], "Step one is");
    assert!(choice["message"].get("refusal").is_none());
}

#[test]
fn blocked_prompts_are_answered_as_refusals() {
    let ratings = json!([{"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "HIGH"}]);
    let (got, usage) = translate(json!({
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        "modelVersion": "gemini-2.0-flash"
    }));
    assert_eq!(got["id"], "chatcmpl-n1");
    let choice = &got["choices"][0];
    assert_eq!(choice["finish_reason"], "content_filter");
    assert_eq!(choice["native_finish_reason"], "SAFETY");
    assert_eq!(choice["safety_ratings"], ratings);
    assert!(choice["message"]["refusal"]
        .as_str()
        .unwrap()
        .contains("blocked the prompt"));
    assert_eq!(usage.prompt_tokens, 7);
    // Neither candidates nor a block reason: not a response.
    assert!(gemini_to_chat_response(b"{}", "m", 0, "n").is_err());
    assert!(gemini_to_chat_response(b"not json", "m", 0, "n").is_err());
}

#[test]
fn several_candidates_thoughts_and_other_reasons() {
    let (got, _) = translate(json!({"candidates": [
        {"content": {"parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS", "index": 1},
        {"content": {"parts": [
            {"text": "thinking...", "thought": true},
            {"text": "A"},
            {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}}
        ]}, "finishReason": "MALFORMED_FUNCTION_CALL", "index": 0}
    ]}));
    let choices = got["choices"].as_array().unwrap();
    assert_eq!(choices[0]["index"], 0);
    assert_eq!(choices[0]["finish_reason"], "stop");
    assert_eq!(
        choices[0]["native_finish_reason"],
        "MALFORMED_FUNCTION_CALL"
    );
    assert_eq!(choices[0]["message"]["reasoning_content"], "thinking...");
    let content = choices[0]["message"]["content"].as_str().unwrap();
    assert!(content.starts_with('A') && content.contains("```python\nprint(1)\n```"));
    assert!(content.contains("```output\n1\n```"), "{content}");
    assert!(choices[0].get("safety_ratings").is_none());
    assert_eq!(choices[1]["index"], 1);
    assert_eq!(choices[1]["finish_reason"], "length");
    assert!(choices[1].get("native_finish_reason").is_none());
}

#[test]
fn embeddings_become_an_openai_list() {
    let (body, usage) = gemini_to_embeddings_response(
        br#"{"embedding": {"values": [0.5, -0.25]}}"#,
        "embed",
        false,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
               "model": "embed", "usage": {"prompt_tokens": 0, "total_tokens": 0}})
    );
    assert_eq!(usage.prompt_tokens, 0);

    let (body, usage) = gemini_to_embeddings_response(
        br#"{"embeddings": [{"values": [1.0]}, {"values": [0.5, 2.0]}], "usageMetadata": {"promptTokenCount": 3}}"#,
        "embed",
        true,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    // 1.0f32 little-endian is 00 00 80 3f.
    assert_eq!(v["data"][0]["embedding"], "AACAPw==");
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["data"][1]["embedding"], "AAAAPwAAAEA=");
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    assert_eq!(usage.prompt_tokens, 3);
    assert!(gemini_to_embeddings_response(b"{}", "e", false).is_err());
}

#[test]
fn google_errors_are_read_and_converted() {
    let body = br#"{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "m"}]},
      {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "42.5s"}
    ]
  }
}"#;
    let e = parse_error(body).unwrap();
    assert_eq!(e.code, Some(429));
    assert_eq!(e.status, "RESOURCE_EXHAUSTED");
    assert_eq!(e.retry_after_secs, Some(43));
    assert!(!e.is_credential());
    let o = e.to_openai();
    assert_eq!(o.error.kind, "rate_limit_error");
    assert_eq!(o.error.code.as_deref(), Some("rate_limit_exceeded"));
    assert!(o.error.message.contains("quota"));

    let long = br#"[{"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}]"#;
    let e = parse_error(long).unwrap();
    assert!(e.is_context_length());
    assert_eq!(
        e.to_openai().error.code.as_deref(),
        Some("context_length_exceeded")
    );

    let key = br#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}"#;
    let e = parse_error(key).unwrap();
    assert_eq!(e.reason.as_deref(), Some("API_KEY_INVALID"));
    assert!(e.is_credential());

    for (status, kind, code) in [
        ("UNAVAILABLE", "overloaded_error", "unavailable"),
        ("DEADLINE_EXCEEDED", "timeout_error", "deadline_exceeded"),
        ("INTERNAL", "server_error", "internal"),
        (
            "FAILED_PRECONDITION",
            "invalid_request_error",
            "failed_precondition",
        ),
        ("PERMISSION_DENIED", "permission_error", "permission_denied"),
    ] {
        let body = format!(r#"{{"error": {{"code": 500, "message": "m", "status": "{status}"}}}}"#);
        let o = parse_error(body.as_bytes()).unwrap().to_openai();
        assert_eq!(
            (o.error.kind.as_str(), o.error.code.as_deref()),
            (kind, Some(code))
        );
    }
    let nf = br#"{"error": {"code": 404, "message": "models/gemini-9 is not found for API version v1beta", "status": "NOT_FOUND"}}"#;
    assert_eq!(
        parse_error(nf).unwrap().to_openai().error.code.as_deref(),
        Some("model_not_found")
    );
    assert!(parse_error(b"<html>bad gateway</html>").is_none());
    assert!(parse_error(br#"{"error": {}}"#).is_none());

    let anthropic: Value = serde_json::from_slice(&gemini_error_to_anthropic(429, body)).unwrap();
    assert_eq!(anthropic["type"], "error");
    assert_eq!(anthropic["error"]["type"], "rate_limit_error");
    let anthropic: Value = serde_json::from_slice(&gemini_error_to_anthropic(400, long)).unwrap();
    assert!(anthropic["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("prompt is too long"));
}
