//! Anthropic, both as a provider and as a client API (issue 3, points 1 and 2), through the
//! running gateway against the mock speaking Anthropic's Messages API.

use http::Method;
use serde_json::Value;

use crate::harness::*;

/// `demo` on the mock's OpenAI face, `smart` on its Anthropic face; both need the upstream key.
/// `claude-<knob>` providers send the mock a fixed knob in the `x-mock-knobs` header, because a
/// translated request loses the body's unknown `"mock"` field (as it should).
fn config(base: &str) -> String {
    let mut knob_providers = String::new();
    for (name, knobs) in [
        ("claude-echo", r#"{"echo":true}"#),
        ("claude-429", r#"{"status":429,"retry_after":7}"#),
        ("claude-long", r#"{"prompt_too_long":true}"#),
        ("claude-broken", r#"{"stream_error_after_chunks":3}"#),
    ] {
        knob_providers.push_str(&format!(
            "  {name}:\n    type: anthropic\n    base_url: \"{base}/v1\"\n    \
             api_key: ${{UPSTREAM_KEY}}\n    headers:\n      x-mock-knobs: '{knobs}'\n"
        ));
    }
    format!(
        r#"
providers:
{knob_providers}
  mock:
    type: openai
    base_url: "{base}/v1"
    api_key: ${{UPSTREAM_KEY}}
  claude:
    type: anthropic
    base_url: "{base}/v1"
    api_key: ${{UPSTREAM_KEY}}
models:
  demo:
    deployments:
      - provider: mock
        model: mock-gpt
  smart:
    deployments:
      - provider: claude
        model: claude-sonnet-4-5
"#
    )
}

async fn gateway() -> Gateway {
    let mock = keyed_mock().await;
    Gateway::start(&config(&mock)).await
}

async fn chat(gw: &Gateway, body: &str) -> Resp {
    post(&format!("{}/v1/chat/completions", gw.url), body).await
}

async fn messages(gw: &Gateway, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut h = vec![("anthropic-version", "2023-06-01")];
    h.extend_from_slice(headers);
    send(
        Method::POST,
        &format!("{}/v1/messages", gw.url),
        &h,
        body.to_owned(),
    )
    .await
}

/// The chunks of an OpenAI stream (without `[DONE]`), checking it ends with `[DONE]`.
fn openai_chunks(r: &Resp) -> Vec<Value> {
    let data = sse_data(&r.body);
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "{}",
        r.text()
    );
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// The `(event name, data)` pairs of an Anthropic stream.
fn anthropic_events(r: &Resp) -> Vec<(String, Value)> {
    r.text()
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("event without a name: {e}"));
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

/// Asserts an Anthropic-shaped error and returns its `error` object.
fn anthropic_error(r: &Resp) -> Value {
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert!(
        v["error"]["type"].is_string() && v["error"]["message"].is_string(),
        "{v}"
    );
    v["error"].clone()
}

// === OpenAI clients, Anthropic deployment ===

#[tokio::test]
async fn openai_chat_reaches_anthropic_and_comes_back_as_a_chat_completion() {
    let gw = gateway().await;
    let r = chat(&gw, &chat_body("smart", r#""max_tokens":200"#)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "smart");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len()
            > 3
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(r.header("x-switchyard-provider"), Some("claude"));
    assert_eq!(r.header("x-switchyard-model"), Some("claude-sonnet-4-5"));
    assert!(r.header("x-switchyard-upstream-request-id").is_some());
}

#[tokio::test]
async fn openai_request_features_arrive_in_anthropic_form() {
    let gw = gateway().await;
    let body = r#"{"model":"claude-echo/claude-sonnet-4-5","messages":[
        {"role":"system","content":"be brief"},
        {"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},
        {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"x\"}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"found"}],
        "tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}}],
        "stop":["END"],"user":"u-42","temperature":0.5}"#;
    let r = chat(&gw, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let echo: Value = serde_json::from_str(&content).unwrap();
    let text = echo.to_string();
    // What the mock saw is Anthropic's format: system at the top, a default max_tokens, image
    // and tool blocks, stop sequences and metadata.
    assert!(text.contains("be brief"), "{text}");
    assert_eq!(echo["max_tokens"], 4096, "{text}");
    for needle in ["image", "tool_use", "tool_result", "END", "u-42", "lookup"] {
        assert!(text.contains(needle), "missing {needle}: {text}");
    }
}

#[tokio::test]
async fn forced_tool_calls_come_back_as_openai_tool_calls() {
    let gw = gateway().await;
    let body = r#"{"model":"smart","messages":[{"role":"user","content":"weather in Paris?"}],
        "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
        "tool_choice":"required"}"#;
    let r = chat(&gw, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
    assert!(call["id"].as_str().unwrap().starts_with("toolu_"), "{v}");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{args}");

    // Streamed, the argument fragments join up to the same kind of object.
    let r = chat(
        &gw,
        &body.replace("\"tool_choice\"", "\"stream\":true,\"tool_choice\""),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let chunks = openai_chunks(&r);
    let mut args = String::new();
    let mut id = None;
    for c in &chunks {
        assert_eq!(c["model"], "smart");
        if let Some(tc) = c["choices"][0]["delta"]["tool_calls"].get(0) {
            if let Some(i) = tc["id"].as_str() {
                id = Some(i.to_owned());
            }
            args.push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert!(id.unwrap().starts_with("toolu_"));
    let args: Value = serde_json::from_str(&args).unwrap();
    assert!(args["city"].is_string(), "{args}");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
}

#[tokio::test]
async fn json_schema_response_format_yields_json_content() {
    let gw = gateway().await;
    let body = r#"{"model":"smart","messages":[{"role":"user","content":"a person"}],
        "response_format":{"type":"json_schema","json_schema":{"name":"person","schema":{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}}}}"#;
    let r = chat(&gw, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    assert!(
        v["choices"][0]["message"]
            .get("tool_calls")
            .is_none_or(Value::is_null),
        "{v}"
    );
    let person: Value =
        serde_json::from_str(v["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert!(
        person["name"].is_string() && person["age"].is_number(),
        "{person}"
    );
}

#[tokio::test]
async fn openai_streams_from_anthropic_end_with_usage_and_done() {
    let gw = gateway().await;
    let r = chat(
        &gw,
        &chat_body(
            "smart",
            r#""stream":true,"stream_options":{"include_usage":true}"#,
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let chunks = openai_chunks(&r);
    assert!(chunks.len() >= 3);
    let mut text = String::new();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "smart");
        text.push_str(c["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
    }
    assert!(text.len() > 3);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"].as_array().unwrap().len(), 0, "{last}");
    assert!(last["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn anthropic_errors_are_normalised_for_openai_clients() {
    let gw = gateway().await;
    let r = chat(&gw, &chat_body("claude-429/claude", "")).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.header("x-switchyard-upstream-status"), Some("429"));
    r.error();

    let r = chat(&gw, &chat_body("claude-long/claude", "")).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error()["code"], "context_length_exceeded");

    // Something Anthropic cannot do is refused up front, naming the field.
    let r = chat(&gw, &chat_body("smart", r#""n":3"#)).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error()["param"], "n");

    // A stream that fails midway ends with an OpenAI error event.
    let r = chat(&gw, &chat_body("claude-broken/claude", r#""stream":true"#)).await;
    assert_eq!(r.status, 200);
    let data = sse_data(&r.body);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{}", r.text());
}

// === Anthropic clients ===

#[tokio::test]
async fn anthropic_clients_pass_through_to_anthropic() {
    let gw = gateway().await;
    let body = r#"{"model":"smart","max_tokens":2000,"system":[{"type":"text","text":"long context","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"hi"}],"thinking":{"type":"enabled","budget_tokens":1024}}"#;
    let r = messages(&gw, &[("anthropic-beta", "some-beta-2025-01-01")], body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "smart");
    assert_eq!(v["content"][0]["type"], "thinking", "{v}");
    assert!(
        v["usage"]["cache_creation_input_tokens"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert_eq!(r.header("x-switchyard-provider"), Some("claude"));

    // The beta header and the untouched body reach the provider.
    let echo_body = body.replace(r#""thinking""#, r#""mock":{"echo":true},"thinking""#);
    let r = messages(
        &gw,
        &[("anthropic-beta", "some-beta-2025-01-01")],
        &echo_body,
    )
    .await;
    let echo = r.json()["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "text")
        .unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(echo.contains("some-beta-2025-01-01"), "{echo}");
    assert!(
        echo.contains("cache_control") || echo.contains("ephemeral"),
        "{echo}"
    );

    // Streams keep Anthropic's events; only the model name changes.
    let stream_body = r#"{"model":"smart","max_tokens":300,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = messages(&gw, &[], stream_body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let events = anthropic_events(&r);
    assert_eq!(events[0].0, "message_start");
    assert_eq!(events[0].1["message"]["model"], "smart");
    assert_eq!(events.last().unwrap().0, "message_stop");
    assert!(events.iter().any(|(n, _)| n == "content_block_delta"));
    assert!(!r.text().contains("claude-sonnet-4-5"));
}

#[tokio::test]
async fn anthropic_clients_reach_openai_deployments_translated() {
    let gw = gateway().await;
    let body = r#"{"model":"demo","max_tokens":200,"system":"be brief","messages":[{"role":"user","content":"hi"}]}"#;
    let r = messages(&gw, &[], body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "demo");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(r.header("x-switchyard-provider"), Some("mock"));

    let r = messages(
        &gw,
        &[],
        &body.replace("\"system\"", "\"stream\":true,\"system\""),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let events = anthropic_events(&r);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "message_start");
    assert!(names.contains(&"content_block_start"));
    assert!(names.contains(&"content_block_delta"));
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(
        delta["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{delta}"
    );

    // Tools the other way round: an Anthropic tool definition, an OpenAI tool call, an
    // Anthropic tool_use block back.
    let body = r#"{"model":"demo","max_tokens":200,"messages":[{"role":"user","content":"weather?"}],
        "tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}],
        "tool_choice":{"type":"any"}}"#;
    let r = messages(&gw, &[], body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["stop_reason"], "tool_use", "{v}");
    let block = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap()
        .clone();
    assert_eq!(block["name"], "get_weather");
    assert!(block["input"].is_object(), "{v}");
}

#[tokio::test]
async fn anthropic_clients_get_anthropic_shaped_errors() {
    let mock = keyed_mock().await;
    let mut cfg = config(&mock);
    cfg.push_str("auth:\n  master_key: sk-gw-master\n");
    let gw = Gateway::start(&cfg).await;
    let ok = r#"{"model":"smart","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#;

    let r = messages(&gw, &[], ok).await;
    assert_eq!(r.status, 401);
    assert_eq!(anthropic_error(&r)["type"], "authentication_error");

    let key = [("x-api-key", "sk-gw-master")];
    let r = messages(&gw, &key, ok).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let r = messages(&gw, &key, &ok.replace("smart", "nope")).await;
    assert_eq!(r.status, 404);
    let e = anthropic_error(&r);
    assert_eq!(e["type"], "not_found_error");
    assert!(e["message"].as_str().unwrap().contains("smart"), "{e}");

    let r = messages(&gw, &key, "{not json").await;
    assert_eq!(r.status, 400);
    assert_eq!(anthropic_error(&r)["type"], "invalid_request_error");

    let r = messages(&gw, &key, &ok.replace(r#""max_tokens":20,"#, "")).await;
    assert_eq!(r.status, 400);
    assert!(anthropic_error(&r)["message"]
        .as_str()
        .unwrap()
        .contains("max_tokens"));

    let busy = ok.replace(r#""messages""#, r#""mock":{"status":529},"messages""#);
    let r = messages(&gw, &key, &busy).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(anthropic_error(&r)["type"], "overloaded_error");

    let r = send(
        Method::GET,
        &format!("{}/v1/messages/nothing-here", gw.url),
        &key,
        "",
    )
    .await;
    assert_eq!(r.status, 404);
    anthropic_error(&r);

    // A mid-stream failure ends an Anthropic stream with an `error` event.
    let failing = ok.replace(
        r#""messages""#,
        r#""stream":true,"mock":{"stream_error_after_chunks":3},"messages""#,
    );
    let r = messages(&gw, &key, &failing).await;
    assert_eq!(r.status, 200);
    let events = anthropic_events(&r);
    assert_eq!(events.last().unwrap().0, "error", "{}", r.text());
}

#[tokio::test]
async fn provider_options_reach_anthropic_and_bad_ones_are_refused() {
    let gw = gateway().await;
    let body = r#"{"model":"claude-echo/claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}],
        "provider_options":{"anthropic":{"top_k":7,"service_tier":"standard_only"},"gemini":{"safetySettings":[]}}}"#;
    let r = chat(&gw, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let echo: Value = serde_json::from_str(&content).unwrap();
    let sent = &echo["body"];
    assert_eq!(sent["top_k"], 7, "{echo}");
    assert_eq!(sent["service_tier"], "standard_only", "{echo}");
    assert!(sent.get("provider_options").is_none() && sent.get("safetySettings").is_none());

    let bad = r#"{"model":"claude-echo/claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}],
        "provider_options":{"anthropic":"top_k=7"}}"#;
    let r = chat(&gw, bad).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error()["param"], "provider_options.anthropic");
}
