use serde_json::{json, Value};

use super::*;
use crate::gemini::response::gemini_to_chat_response;

/// Feeds `events` (data payloads) and returns the chunks and the last step.
fn run(s: &mut GeminiToChatStream, events: &[&str]) -> (Vec<Value>, Vec<StreamStep>) {
    let mut chunks = Vec::new();
    let mut steps = Vec::new();
    for e in events {
        let mut out = Vec::new();
        steps.push(s.push(e.as_bytes(), &mut out).unwrap());
        chunks.extend(
            out.iter()
                .map(|c| serde_json::from_slice::<Value>(c).unwrap()),
        );
    }
    (chunks, steps)
}

const TEXT_STREAM: [&str; 3] = [
    r#"{"candidates": [{"content": {"parts": [{"text": "Hello"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 9,"totalTokenCount": 9},"modelVersion": "gemini-2.5-flash","responseId": "rid"}"#,
    r#"{"candidates": [{"content": {"parts": [{"text": " world"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 9,"totalTokenCount": 9},"modelVersion": "gemini-2.5-flash","responseId": "rid"}"#,
    r#"{"candidates": [{"content": {"parts": [{"text": "."}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 9,"candidatesTokenCount": 3,"totalTokenCount": 14,"thoughtsTokenCount": 2},"modelVersion": "gemini-2.5-flash","responseId": "rid"}"#,
];

#[test]
fn text_stream_becomes_role_deltas_finish_and_usage() {
    let mut s = GeminiToChatStream::new("smart", 7, true, 1, "n");
    let (chunks, steps) = run(&mut s, &TEXT_STREAM);
    assert_eq!(
        steps,
        [StreamStep::Continue, StreamStep::Continue, StreamStep::Done]
    );
    assert_eq!(
        chunks[0],
        json!({"id": "rid", "object": "chat.completion.chunk", "created": 7, "model": "smart",
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}],
               "usage": null})
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello world.");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14,
               "prompt_tokens_details": {"cached_tokens": 0},
               "completion_tokens_details": {"reasoning_tokens": 2}})
    );
    assert_eq!(s.usage().unwrap().total_tokens, 14);
    // After Done, more input is ignored.
    let mut out = Vec::new();
    assert_eq!(
        s.push(TEXT_STREAM[0].as_bytes(), &mut out).unwrap(),
        StreamStep::Continue
    );
    assert!(out.is_empty());
}

#[test]
fn without_include_usage_chunks_carry_no_usage() {
    let mut s = GeminiToChatStream::new("smart", 7, false, 1, "n");
    let (chunks, steps) = run(&mut s, &TEXT_STREAM);
    assert_eq!(steps.last(), Some(&StreamStep::Done));
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[test]
fn function_calls_stream_as_tool_call_deltas_with_the_same_ids_as_whole_responses() {
    let events = [
        r#"{"candidates": [{"content": {"parts": [{"text": "Checking."}],"role": "model"},"index": 0}],"responseId": "r2"}"#,
        r#"{"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather","args": {"city": "Paris"}},"thoughtSignature": "c2ln"},{"functionCall": {"name": "get_weather","args": {"city": "Rome"}}}],"role": "model"},"index": 0}],"responseId": "r2"}"#,
        r#"{"candidates": [{"content": {"parts": [{"functionCall": {"name": "now","args": {}}}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 4,"candidatesTokenCount": 6,"totalTokenCount": 10},"responseId": "r2"}"#,
    ];
    let mut s = GeminiToChatStream::new("smart", 1, false, 1, "nonce");
    let (chunks, steps) = run(&mut s, &events);
    assert_eq!(steps.last(), Some(&StreamStep::Done));
    // Reassemble the calls the way an SDK does.
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for c in &chunks {
        for d in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = d["index"].as_u64().unwrap() as usize;
            if calls.len() <= i {
                calls.push(Default::default());
            }
            if let Some(id) = d["id"].as_str() {
                calls[i].0 = id.to_owned();
                assert_eq!(d["type"], "function");
            }
            if let Some(n) = d["function"]["name"].as_str() {
                calls[i].1 = n.to_owned();
            }
            calls[i]
                .2
                .push_str(d["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].1, "get_weather");
    assert_eq!(calls[0].2, r#"{"city":"Paris"}"#);
    assert_eq!(calls[2].1, "now");
    let signed = chunks
        .iter()
        .find(|c| !c["choices"][0]["delta"]["tool_calls"][0]["extra_content"].is_null())
        .unwrap();
    assert_eq!(
        signed["choices"][0]["delta"]["tool_calls"][0]["extra_content"]["google"]
            ["thought_signature"],
        "c2ln"
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    // The whole response with the same parts names the calls alike.
    let whole = r#"{"candidates": [{"content": {"parts": [{"text": "Checking."},{"functionCall": {"name": "get_weather","args": {"city": "Paris"}}},{"functionCall": {"name": "get_weather","args": {"city": "Rome"}}},{"functionCall": {"name": "now","args": {}}}],"role": "model"},"finishReason": "STOP","index": 0}],"responseId": "r2"}"#;
    let (body, _) = gemini_to_chat_response(whole.as_bytes(), "smart", 1, "nonce").unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    let ids: Vec<&str> = v["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let streamed: Vec<&str> = calls.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(ids, streamed);
}

#[test]
fn safety_finish_is_content_filter_with_ratings_and_a_refusal() {
    let events = [
        r#"{"candidates": [{"finishReason": "SAFETY","index": 0,"safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT","probability": "HIGH","blocked": true}]}],"usageMetadata": {"promptTokenCount": 3,"totalTokenCount": 3}}"#,
    ];
    let mut s = GeminiToChatStream::new("smart", 1, true, 1, "n");
    let (chunks, steps) = run(&mut s, &events);
    assert_eq!(steps, [StreamStep::Done]);
    let finish = &chunks[1]["choices"][0];
    assert_eq!(finish["finish_reason"], "content_filter");
    assert_eq!(finish["native_finish_reason"], "SAFETY");
    assert_eq!(
        finish["safety_ratings"][0]["category"],
        "HARM_CATEGORY_DANGEROUS_CONTENT"
    );
    assert!(finish["delta"]["refusal"]
        .as_str()
        .unwrap()
        .contains("HARM_CATEGORY_DANGEROUS_CONTENT"));
    assert!(chunks[2]["usage"].is_object());

    // A filter stop after some text keeps the text and adds no refusal.
    let events = [
        r#"{"candidates": [{"content": {"parts": [{"text": "Once"}]},"index": 0}]}"#,
        r#"{"candidates": [{"content": {"parts": []},"finishReason": "RECITATION","index": 0}]}"#,
    ];
    let mut s = GeminiToChatStream::new("smart", 1, false, 1, "n");
    let (chunks, _) = run(&mut s, &events);
    let finish = &chunks.last().unwrap()["choices"][0];
    assert_eq!(finish["finish_reason"], "content_filter");
    assert!(finish["delta"].get("refusal").is_none());
}

#[test]
fn blocked_prompt_ends_the_stream_with_a_refusal() {
    let events = [
        r#"{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},"usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8}}"#,
    ];
    let mut s = GeminiToChatStream::new("smart", 1, true, 1, "n");
    let (chunks, steps) = run(&mut s, &events);
    assert_eq!(steps, [StreamStep::Done]);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(
        chunks[1]["choices"][0]["native_finish_reason"],
        "PROHIBITED_CONTENT"
    );
    assert_eq!(chunks[2]["usage"]["prompt_tokens"], 8);
}

#[test]
fn several_candidates_finish_independently() {
    let events = [
        r#"{"candidates": [{"content": {"parts": [{"text": "A"}]},"index": 0},{"content": {"parts": [{"text": "B"}]},"index": 1}]}"#,
        r#"{"candidates": [{"content": {"parts": [{"text": "!"}]},"finishReason": "STOP","index": 0}]}"#,
        r#"{"candidates": [{"content": {"parts": [{"text": "?"}]},"finishReason": "MAX_TOKENS","index": 1}]}"#,
    ];
    let mut s = GeminiToChatStream::new("smart", 1, false, 2, "n");
    let (chunks, steps) = run(&mut s, &events);
    assert_eq!(
        steps,
        [StreamStep::Continue, StreamStep::Continue, StreamStep::Done]
    );
    let text = |i: u64| -> String {
        chunks
            .iter()
            .filter(|c| c["choices"][0]["index"] == i)
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect()
    };
    assert_eq!(text(0), "A!");
    assert_eq!(text(1), "B?");
    let finishes: Vec<(u64, &str)> = chunks
        .iter()
        .filter_map(|c| {
            let ch = &c["choices"][0];
            Some((ch["index"].as_u64()?, ch["finish_reason"].as_str()?))
        })
        .collect();
    assert_eq!(finishes, [(0, "stop"), (1, "length")]);
}

#[test]
fn errors_and_garbage() {
    let mut s = GeminiToChatStream::new("smart", 1, false, 1, "n");
    let mut out = Vec::new();
    let step = s
        .push(
            br#"{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}"#,
            &mut out,
        )
        .unwrap();
    let StreamStep::Error(body) = step else {
        panic!("expected an error, got {step:?}")
    };
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["message"], "The model is overloaded.");
    assert_eq!(v["error"]["type"], "overloaded_error");
    assert!(out.is_empty());

    let mut s = GeminiToChatStream::new("smart", 1, false, 1, "n");
    assert!(s.push(b"{\"candidates\": [", &mut Vec::new()).is_err());
    assert!(s.usage().is_none());
}
