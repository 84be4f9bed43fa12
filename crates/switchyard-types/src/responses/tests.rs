#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};

use super::request::{input_items, responses_to_chat, with_history};
use super::response::chat_to_response;
use super::stream::{ChatToResponsesStream, Step};
use super::*;

fn meta() -> Meta {
    Meta {
        id: "resp_abc".into(),
        created_at: 1_700_000_000,
        model: "smart".into(),
    }
}

fn chat(body: Value) -> Value {
    let t = responses_to_chat(&serde_json::to_vec(&body).unwrap(), &meta()).unwrap();
    serde_json::from_slice(&t.body).unwrap()
}

fn refused(body: Value) -> crate::anthropic::TranslateError {
    responses_to_chat(&serde_json::to_vec(&body).unwrap(), &meta()).unwrap_err()
}

#[test]
fn string_input_and_instructions_become_system_and_user_messages() {
    let c = chat(
        json!({"model": "smart", "instructions": "Be terse.", "input": "Hi",
                        "max_output_tokens": 50, "temperature": 0.3, "top_p": 0.9}),
    );
    assert_eq!(
        c,
        json!({"model": "smart", "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Hi"}],
            "max_completion_tokens": 50, "temperature": 0.3, "top_p": 0.9})
    );
}

#[test]
fn items_translate_roles_parts_calls_and_outputs() {
    let c = chat(json!({"model": "smart", "input": [
        {"role": "developer", "content": "Use tools."},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{\"a\":1}"},
        {"type": "function_call", "call_id": "call_2", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "one"},
        {"type": "function_call_output", "call_id": "call_2",
         "output": [{"type": "input_text", "text": "two"}]}]}));
    assert_eq!(
        c["messages"],
        json!([
            {"role": "developer", "content": "Use tools."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA", "detail": "low"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}}]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "one"},
            {"role": "tool", "tool_call_id": "call_2", "content": "two"}])
    );
}

#[test]
fn tools_choice_format_reasoning_and_stream() {
    let t = responses_to_chat(
        &serde_json::to_vec(&json!({"model": "smart", "input": "x", "stream": true,
            "tools": [{"type": "function", "name": "f", "description": "d",
                       "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "f"}, "parallel_tool_calls": false,
            "text": {"format": {"type": "json_schema", "name": "out", "strict": true,
                                "schema": {"type": "object"}}},
            "reasoning": {"effort": "high", "summary": "auto"}}))
        .unwrap(),
        &meta(),
    )
    .unwrap();
    assert!(t.stream && t.reasoning);
    let c: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(
        c["tools"],
        json!([{"type": "function", "function": {"name": "f", "description": "d",
                "parameters": {"type": "object"}, "strict": true}}])
    );
    assert_eq!(
        c["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    assert_eq!(c["parallel_tool_calls"], false);
    assert_eq!(
        c["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "out", "strict": true,
               "schema": {"type": "object"}}})
    );
    assert_eq!(c["reasoning_effort"], "high");
    assert_eq!(c["stream_options"], json!({"include_usage": true}));
    // The shell echoes the request's settings.
    assert_eq!(t.shell["id"], "resp_abc");
    assert_eq!(t.shell["model"], "smart");
    assert_eq!(t.shell["status"], "in_progress");
    assert_eq!(t.shell["tools"][0]["name"], "f");
    assert_eq!(
        t.shell["reasoning"],
        json!({"effort": "high", "summary": "auto"})
    );
    let c = chat(
        json!({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}},
                        "reasoning": {"effort": "none"}}),
    );
    assert_eq!(c["response_format"], json!({"type": "json_object"}));
    let t = responses_to_chat(
        br#"{"model":"m","input":"x","reasoning":{"effort":"none"}}"#,
        &meta(),
    )
    .unwrap();
    assert!(!t.reasoning);
}

#[test]
fn what_chat_cannot_express_is_refused_naming_the_field() {
    let cases = [
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}),
            "tools[0].type",
            "web_search",
        ),
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}, {"type": "file_search", "vector_store_ids": []}]}),
            "tools[1].type",
            "file_search",
        ),
        (
            json!({"model": "m", "input": "x", "tool_choice": {"type": "web_search_preview"}}),
            "tool_choice.type",
            "web_search_preview",
        ),
        (
            json!({"model": "m", "input": "x", "background": true}),
            "background",
            "background",
        ),
        (
            json!({"model": "m", "input": "x", "conversation": "conv_1"}),
            "conversation",
            "conversation",
        ),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0].type",
            "item_reference",
        ),
        (
            json!({"model": "m", "input": [{"type": "computer_call_output", "call_id": "c"}]}),
            "input[0].type",
            "computer_call_output",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}),
            "input[0].content[0].file_id",
            "file id",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
            "input[0].content[0].type",
            "audio",
        ),
        (
            json!({"model": "m", "input": "x", "top_logprobs": 3}),
            "top_logprobs",
            "top_logprobs",
        ),
        (
            json!({"model": "m", "input": [{"role": "critic", "content": "x"}]}),
            "input[0].role",
            "critic",
        ),
        (json!({"model": "m", "input": []}), "input", "at least one"),
    ];
    for (body, param, word) in cases {
        let e = refused(body.clone());
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {e}");
        assert!(e.message.contains(word), "{body}: {e}");
    }
}

#[test]
fn chat_completion_becomes_a_response_object() {
    let t = responses_to_chat(br#"{"model":"smart","input":"hi","store":false}"#, &meta()).unwrap();
    let completion = json!({"id": "chatcmpl-1", "object": "chat.completion", "choices": [{
        "index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
        "content": "Let me check.", "reasoning_content": "thinking",
        "tool_calls": [{"id": "call_9", "type": "function",
                        "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                  "prompt_tokens_details": {"cached_tokens": 4},
                  "completion_tokens_details": {"reasoning_tokens": 2}}});
    let (bytes, object, usage) =
        chat_to_response(&serde_json::to_vec(&completion).unwrap(), &t.shell, &meta()).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), object);
    assert_eq!(object["status"], "completed");
    assert_eq!(object["store"], false);
    assert_eq!(object["output"][0]["type"], "reasoning");
    assert_eq!(object["output"][0]["content"][0]["text"], "thinking");
    assert_eq!(object["output"][1]["type"], "message");
    assert_eq!(object["output"][1]["id"], "msg_abc01");
    assert_eq!(object["output"][1]["content"][0]["text"], "Let me check.");
    assert_eq!(
        object["output"][2],
        json!({"id": "fc_abc02", "type": "function_call", "status": "completed",
               "call_id": "call_9", "name": "f", "arguments": "{}"})
    );
    assert_eq!(
        object["usage"],
        json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
               "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2},
               "total_tokens": 15})
    );
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens
        ),
        (10, 5, 4)
    );
}

#[test]
fn length_and_content_filter_are_incomplete() {
    for (reason, detail) in [
        ("length", "max_output_tokens"),
        ("content_filter", "content_filter"),
    ] {
        let completion = json!({"choices": [{"finish_reason": reason,
            "message": {"role": "assistant", "content": "cut"}}]});
        let (_, object, _) = chat_to_response(
            &serde_json::to_vec(&completion).unwrap(),
            &json!({"status": "in_progress"}),
            &meta(),
        )
        .unwrap();
        assert_eq!(object["status"], "incomplete");
        assert_eq!(object["incomplete_details"]["reason"], detail);
    }
}

fn run_stream(chunks: &[&str]) -> (Vec<(String, Value)>, Step, ChatToResponsesStream) {
    let mut s = ChatToResponsesStream::new(
        meta(),
        json!({"id": "resp_abc", "status": "in_progress", "output": []}),
    );
    let mut out = Vec::new();
    let mut step = Step::Continue;
    for c in chunks {
        step = s.push(c.as_bytes(), &mut out).unwrap();
    }
    let events = out
        .into_iter()
        .map(|(name, payload)| (name.to_owned(), serde_json::from_slice(&payload).unwrap()))
        .collect();
    (events, step, s)
}

#[test]
fn text_stream_becomes_typed_events_with_sequence_numbers() {
    let (events, step, s) = run_stream(&[
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
        "[DONE]",
    ]);
    assert_eq!(step, Step::Done);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.reasoning_text.delta",
            "response.reasoning_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (name, e)) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i as u64);
        assert_eq!(e["type"], name.as_str());
    }
    assert_eq!(events[12].1["text"], "Hello");
    assert_eq!(events[12].1["output_index"], 1);
    let done = &events[15].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][1]["content"][0]["text"], "Hello");
    assert_eq!(done["usage"]["input_tokens"], 3);
    assert_eq!(s.usage().unwrap().total_tokens, 5);
    assert_eq!(s.response().unwrap(), done);
}

#[test]
fn tool_call_stream_becomes_function_call_events() {
    let (events, step, _) = run_stream(&[
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ]);
    assert_eq!(step, Step::Done);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(events[2].1["item"]["call_id"], "call_1");
    assert_eq!(events[5].1["arguments"], "{\"a\":1}");
    assert_eq!(
        events[7].1["response"]["output"][0]["arguments"],
        "{\"a\":1}"
    );
}

#[test]
fn error_chunk_fails_the_response() {
    let (events, step, s) = run_stream(&[
        r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
        r#"{"error":{"message":"Overloaded","type":"overloaded_error","code":null}}"#,
    ]);
    assert_eq!(step, Step::Failed);
    let (name, error) = &events[events.len() - 2];
    assert_eq!(name, "error");
    assert_eq!(error["message"], "Overloaded");
    assert_eq!(error["code"], "overloaded_error");
    let (name, failed) = events.last().unwrap();
    assert_eq!(name, "response.failed");
    assert_eq!(failed["response"]["status"], "failed");
    assert_eq!(failed["response"]["error"]["message"], "Overloaded");
    assert_eq!(s.response().unwrap()["status"], "failed");
}

#[test]
fn input_items_get_ids_and_parts() {
    let items = input_items(
        br#"{"model":"m","input":[{"role":"user","content":"hi"},{"type":"function_call_output","call_id":"c","output":"o"},{"type":"message","id":"msg_own","role":"assistant","content":"x"}]}"#,
        "seed",
    )
    .unwrap();
    assert_eq!(
        items[0],
        json!({"type": "message", "id": "msg_seed00", "status": "completed", "role": "user",
               "content": [{"type": "input_text", "text": "hi"}]})
    );
    assert_eq!(items[1]["id"], "fco_seed01");
    assert_eq!(items[2]["id"], "msg_own");
    assert_eq!(items[2]["content"][0]["type"], "output_text");
    let one = input_items(br#"{"model":"m","input":"q"}"#, "s").unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["content"][0]["text"], "q");
}

#[test]
fn history_goes_before_the_input() {
    let history = vec![
        json!({"type": "message", "id": "msg_1", "status": "completed", "role": "user",
               "content": [{"type": "input_text", "text": "first"}]}),
        json!({"type": "reasoning", "id": "rs_1", "summary": []}),
        json!({"type": "message", "id": "msg_2", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": "answer", "annotations": []}]}),
    ];
    let body = br#"{"model":"m","previous_response_id":"resp_1","input":"second"}"#;
    let kept: Value =
        serde_json::from_slice(&with_history(body, &history, false).unwrap()).unwrap();
    assert_eq!(kept["previous_response_id"], "resp_1");
    assert_eq!(kept["input"].as_array().unwrap().len(), 4);
    assert_eq!(
        kept["input"][3],
        json!({"role": "user", "content": "second"})
    );
    let c = chat(kept);
    assert_eq!(
        c["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "first"}]},
               {"role": "assistant", "content": "answer"},
               {"role": "user", "content": "second"}])
    );
    let native: Value =
        serde_json::from_slice(&with_history(body, &history, true).unwrap()).unwrap();
    assert!(native.get("previous_response_id").is_none());
    assert_eq!(
        native["input"],
        json!([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first"}]},
               {"role": "assistant", "content": "answer"},
               {"role": "user", "content": "second"}])
    );
}

#[test]
fn nested_model_is_renamed_byte_faithfully() {
    let event = br#"{"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","model":"gpt-4o-2024",  "usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7,"input_tokens_details":{"cached_tokens":1}}}}"#;
    let (out, usage) = rename_nested_model(event, "response", "demo").unwrap();
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","model":"demo",  "usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7,"input_tokens_details":{"cached_tokens":1}}}}"#
    );
    let usage = usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens
        ),
        (3, 4, 1)
    );
    assert!(rename_nested_model(br#"{"type":"x","delta":"y"}"#, "response", "demo").is_none());
    assert!(usage_from_responses(b"null").is_none());
}

#[test]
fn request_view_validates() {
    let r: ResponsesRequest<'_> =
        serde_json::from_slice(br#"{"model":"m","stream":true,"tools":[{"type":"function"}],"previous_response_id":"resp_1"}"#).unwrap();
    assert!(r.is_stream() && r.has_tools());
    assert!(r.validate().is_ok());
    let r: ResponsesRequest<'_> = serde_json::from_slice(br#"{"model":"","tools":[]}"#).unwrap();
    assert!(!r.has_tools());
    assert_eq!(r.validate().unwrap_err().param, "model");
}
