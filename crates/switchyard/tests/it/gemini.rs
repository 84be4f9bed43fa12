//! Gemini as a provider (issue 3, point 3): Google AI Studio and Vertex AI, through the
//! running gateway against the mock speaking Gemini's API, for OpenAI chat clients, Anthropic
//! Messages clients and OpenAI embeddings clients.

use std::collections::HashMap;

use http::Method;
use serde_json::{json, Value};
use switchyard_core::Prepared;
use tokio::net::TcpListener;

use crate::harness::*;

/// `gem` is AI Studio, `vtx` Vertex AI, both on the keyed mock. `gem-<knob>` providers send the
/// mock a fixed knob in `x-mock-knobs`, because a translated request drops unknown body fields.
fn config(base: &str) -> String {
    let mut knob_providers = String::new();
    for (name, knobs) in [
        ("gem-echo", r#"{"echo":true}"#),
        ("gem-429", r#"{"status":429,"retry_after":7}"#),
        ("gem-503", r#"{"status":503}"#),
        ("gem-long", r#"{"prompt_too_long":true}"#),
        ("gem-safety", r#"{"safety_block":true}"#),
        ("gem-blocked", r#"{"prompt_blocked":true}"#),
        (
            "gem-broken",
            r#"{"stream_error_after_chunks":2,"words":30}"#,
        ),
        ("gem-cut", r#"{"disconnect_after_chunks":2,"words":30}"#),
    ] {
        knob_providers.push_str(&format!(
            "  {name}:\n    type: gemini\n    base_url: \"{base}/v1beta\"\n    \
             api_key: ${{UPSTREAM_KEY}}\n    headers:\n      x-mock-knobs: '{knobs}'\n"
        ));
    }
    format!(
        r#"
providers:
{knob_providers}
  gem:
    type: gemini
    base_url: "{base}/v1beta"
    api_key: ${{UPSTREAM_KEY}}
  gem-badkey:
    type: gemini
    base_url: "{base}/v1beta"
    api_key: AIza-wrong-key-9876
  vtx:
    type: vertex
    base_url: "{base}/v1/projects/my-project/locations/us-central1/publishers/google"
    api_key: ${{UPSTREAM_KEY}}
  vtx-badtoken:
    type: vertex
    base_url: "{base}/v1/projects/my-project/locations/us-central1/publishers/google"
    api_key: ya29.expired-token
models:
  g:
    deployments:
      - provider: gem
        model: gemini-2.5-flash
  g3:
    deployments:
      - provider: gem
        model: gemini-3-flash-preview
  v:
    deployments:
      - provider: vtx
        model: gemini-2.5-pro
  emb:
    deployments:
      - provider: gem
        model: text-embedding-004
  vemb:
    deployments:
      - provider: vtx
        model: gemini-embedding-001
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

async fn messages(gw: &Gateway, body: &str) -> Resp {
    send(
        Method::POST,
        &format!("{}/v1/messages", gw.url),
        &[("anthropic-version", "2023-06-01")],
        body.to_owned(),
    )
    .await
}

/// The chunks of an OpenAI stream (without `[DONE]`), checking it ends with `[DONE]`.
fn chunks(r: &Resp) -> Vec<Value> {
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

/// The echo the mock answered with, parsed.
fn echo_of(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    serde_json::from_str(&content).unwrap()
}

const WEATHER: &str = r#"{"type":"function","function":{"name":"get_weather","description":"Weather for a city.","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":["string","null"],"enum":["c","f",null]}},"required":["city"],"additionalProperties":false}}}"#;

// === OpenAI clients ===

#[tokio::test]
async fn chat_completions_reach_gemini_and_come_back() {
    let gw = gateway().await;
    let r = chat(
        &gw,
        r#"{"model":"g","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"Tell me about bridges"}],"max_tokens":200,"temperature":0.3}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "g");
    assert!(v["id"].as_str().unwrap().len() > 10);
    let choice = &v["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(choice["message"]["content"].as_str().unwrap().len() > 10);
    assert_eq!(choice["finish_reason"], "stop");
    let u = &v["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(u["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(r.header("x-switchyard-provider"), Some("gem"));
    assert_eq!(r.header("x-switchyard-model"), Some("gemini-2.5-flash"));

    // A token cap cuts the answer: `length`.
    let r = chat(
        &gw,
        r#"{"model":"g","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":3,"provider_options":{"gemini":{"mock":{"words":40}}}}"#,
    )
    .await;
    assert_eq!(
        r.json()["choices"][0]["finish_reason"],
        "length",
        "{}",
        r.text()
    );

    // Several candidates are several choices.
    let r = chat(
        &gw,
        r#"{"model":"g","messages":[{"role":"user","content":"hi"}],"n":2}"#,
    )
    .await;
    let v = r.json();
    assert_eq!(v["choices"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["choices"][1]["index"], 1);
}

#[tokio::test]
async fn requests_arrive_in_gemini_form() {
    let gw = gateway().await;
    let body = r#"{"model":"gem-echo/gemini-2.5-flash","messages":[
        {"role":"system","content":"be brief"},
        {"role":"user","content":[{"type":"text","text":"what are these?"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
            {"type":"image_url","image_url":{"url":"https://example.com/photos/cat.jpg?size=large"}}]},
        {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"{\"temp_c\":21}"}],
        "tools":[WEATHER],
        "stop":["END"],"seed":7,"top_p":0.9,"presence_penalty":0.1,"user":"u-42",
        "provider_options":{"gemini":{"safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_ONLY_HIGH"}]}}}"#
        .replace("WEATHER", WEATHER);
    let echo = echo_of(&chat(&gw, &body).await);
    assert_eq!(
        echo["path"],
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert!(echo["headers"]["x-goog-api-key"].is_string());
    assert!(echo["headers"].get("authorization").is_none());
    let sent = &echo["body"];
    assert_eq!(sent["systemInstruction"]["parts"][0]["text"], "be brief");
    let user = &sent["contents"][0]["parts"];
    assert_eq!(user[1]["inlineData"]["mimeType"], "image/png");
    assert_eq!(user[2]["fileData"]["mimeType"], "image/jpeg");
    assert_eq!(
        sent["contents"][1]["parts"][0]["functionCall"],
        json!({"name": "get_weather", "args": {"city": "Paris"}})
    );
    assert_eq!(
        sent["contents"][2]["parts"][0]["functionResponse"],
        json!({"name": "get_weather", "response": {"temp_c": 21}})
    );
    let decl = &sent["tools"][0]["functionDeclarations"][0];
    assert_eq!(decl["parameters"]["properties"]["unit"]["type"], "STRING");
    assert_eq!(decl["parameters"]["properties"]["unit"]["nullable"], true);
    let g = &sent["generationConfig"];
    assert_eq!(g["stopSequences"], json!(["END"]));
    assert_eq!(g["seed"], 7);
    assert_eq!(sent["safetySettings"][0]["threshold"], "BLOCK_ONLY_HIGH");
    assert!(!sent.to_string().contains("u-42"));

    // An image URL Gemini could not type is refused up front, naming the field.
    let r = chat(
        &gw,
        r#"{"model":"g","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/render?id=9"}}]}]}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error()["param"], "messages[0].content[0].image_url.url");
    let r = chat(
        &gw,
        r#"{"model":"g","messages":[{"role":"user","content":"x"}],"logprobs":true}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["param"], "logprobs");
}

#[tokio::test]
async fn streams_end_with_usage_and_done() {
    let gw = gateway().await;
    let r = chat(
        &gw,
        r#"{"model":"g","messages":[{"role":"user","content":"Tell me about bridges"}],"stream":true,"stream_options":{"include_usage":true},"provider_options":{"gemini":{"mock":{"words":25}}}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let cs = chunks(&r);
    assert!(cs.len() >= 5, "{}", r.text());
    assert_eq!(cs[0]["choices"][0]["delta"]["role"], "assistant");
    let mut text = String::new();
    for c in &cs {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "g");
        assert_eq!(c["id"], cs[0]["id"]);
        text.push_str(c["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
    }
    assert_eq!(text.split(' ').count(), 25, "{text}");
    let finishes: Vec<&str> = cs
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finishes, ["stop"]);
    let last = cs.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], 25);

    // Cut short before Gemini's last event: an error event, never a silent end.
    let r = chat(
        &gw,
        &chat_body("gem-cut/gemini-2.5-flash", r#""stream":true"#),
    )
    .await;
    let data = sse_data(&r.body);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{}", r.text());
    // An error event from Gemini mid-stream becomes OpenAI's error event.
    let r = chat(
        &gw,
        &chat_body("gem-broken/gemini-2.5-flash", r#""stream":true"#),
    )
    .await;
    let data = sse_data(&r.body);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "overloaded_error", "{}", r.text());
}

#[tokio::test]
async fn tool_calls_round_trip_streamed_or_not() {
    let gw = gateway().await;
    let body = r#"{"model":"g3","messages":[{"role":"user","content":"weather in Paris?"}],"tools":[WEATHER],"tool_choice":"required"}"#
        .replace("WEATHER", WEATHER);
    let r = chat(&gw, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
    let call = v["choices"][0]["message"]["tool_calls"][0].clone();
    assert!(call["id"].as_str().unwrap().starts_with("call_"), "{call}");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{args}");
    // Gemini 3 signed the call; the signature rides along for the client to send back.
    let signature = call["extra_content"]["google"]["thought_signature"].clone();
    assert!(signature.is_string(), "{call}");

    // The result goes back: with the signature kept, and with it dropped (the gateway then
    // sends Google's documented placeholder), Gemini 3 accepts the history and answers.
    let mut stripped = call.clone();
    stripped.as_object_mut().unwrap().remove("extra_content");
    for c in [call, stripped] {
        let followup = json!({"model": "g3", "tools": [serde_json::from_str::<Value>(WEATHER).unwrap()],
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [c]},
            {"role": "tool", "tool_call_id": c["id"], "content": "{\"temp_c\": 21}"}
        ]});
        let r = chat(&gw, &followup.to_string()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.json()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .len()
                > 3
        );
    }

    // Streamed: the call arrives as tool-call deltas that join into JSON arguments.
    let r = chat(
        &gw,
        &body.replace("\"tool_choice\"", "\"stream\":true,\"tool_choice\""),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cs = chunks(&r);
    let (mut id, mut name, mut args) = (None, None, String::new());
    for c in &cs {
        if let Some(tc) = c["choices"][0]["delta"]["tool_calls"].get(0) {
            assert_eq!(tc["index"], 0);
            id = id.or(tc["id"].as_str().map(str::to_owned));
            name = name.or(tc["function"]["name"].as_str().map(str::to_owned));
            args.push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert!(id.unwrap().starts_with("call_"));
    assert_eq!(name.as_deref(), Some("get_weather"));
    assert!(serde_json::from_str::<Value>(&args).unwrap()["city"].is_string());
    assert!(cs
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
}

#[tokio::test]
async fn json_schema_answers_are_json() {
    let gw = gateway().await;
    let r = chat(
        &gw,
        r#"{"model":"g","messages":[{"role":"user","content":"a person"}],
        "response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0},"tags":{"type":"array","items":{"type":"string"}}},"required":["name","age","tags"],"additionalProperties":false}}}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let person: Value =
        serde_json::from_str(v["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert!(
        person["name"].is_string() && person["age"].is_i64() && person["tags"].is_array(),
        "{person}"
    );

    // A schema Gemini cannot take is refused up front, naming the keyword.
    let r = chat(
        &gw,
        r#"{"model":"g","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object","properties":{"a":{"not":{"type":"string"}}}}}}}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.error()["param"],
        "response_format.json_schema.schema.properties.a.not"
    );
}

#[tokio::test]
async fn safety_blocks_are_content_filter_with_their_category() {
    let gw = gateway().await;
    let r = chat(&gw, &chat_body("gem-safety/gemini-2.5-flash", "")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let choice = r.json()["choices"][0].clone();
    assert_eq!(choice["finish_reason"], "content_filter");
    assert_eq!(choice["native_finish_reason"], "SAFETY");
    let blocked: Vec<&Value> = choice["safety_ratings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["blocked"] == true)
        .collect();
    assert_eq!(blocked[0]["category"], "HARM_CATEGORY_DANGEROUS_CONTENT");
    assert!(choice["message"]["content"].is_null());
    assert!(choice["message"]["refusal"]
        .as_str()
        .unwrap()
        .contains("HARM_CATEGORY_DANGEROUS_CONTENT"));

    let r = chat(
        &gw,
        &chat_body("gem-safety/gemini-2.5-flash", r#""stream":true"#),
    )
    .await;
    let cs = chunks(&r);
    let finish = cs
        .iter()
        .find(|c| c["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(finish["choices"][0]["native_finish_reason"], "SAFETY");

    // A refused prompt is answered the same way, naming Gemini's block reason.
    let r = chat(&gw, &chat_body("gem-blocked/gemini-2.5-flash", "")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let choice = r.json()["choices"][0].clone();
    assert_eq!(choice["finish_reason"], "content_filter");
    assert_eq!(choice["native_finish_reason"], "SAFETY");
    assert!(choice["message"]["refusal"]
        .as_str()
        .unwrap()
        .contains("prompt"));
    let r = chat(
        &gw,
        &chat_body(
            "gem-blocked/gemini-2.5-flash",
            r#""stream":true,"stream_options":{"include_usage":true}"#,
        ),
    )
    .await;
    let cs = chunks(&r);
    assert!(cs
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "content_filter"));
    assert!(
        cs.last().unwrap()["usage"]["prompt_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn gemini_errors_are_normalised() {
    let gw = gateway().await;
    // RESOURCE_EXHAUSTED: 503 for the client, with the retry delay Google put in the body as
    // Retry-After.
    let r = chat(&gw, &chat_body("gem-429/gemini-2.5-flash", "")).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.header("x-switchyard-upstream-status"), Some("429"));
    let e = r.error();
    assert_eq!(e["code"], "rate_limit_exceeded");
    assert!(e["message"].as_str().unwrap().contains("quota"));

    let r = chat(&gw, &chat_body("gem-503/gemini-2.5-flash", "")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.error()["type"], "overloaded_error");

    let r = chat(&gw, &chat_body("gem-long/gemini-2.5-flash", "")).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error()["code"], "context_length_exceeded");

    // A rejected key is the gateway's problem (502) and its body, which can echo the key, is
    // not relayed.
    let r = chat(&gw, &chat_body("gem-badkey/gemini-2.5-flash", "")).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(!r.text().contains("AIza-wrong-key-9876"));
    assert!(!r.text().contains("API key not valid"));
    let r = chat(&gw, &chat_body("vtx-badtoken/gemini-2.5-pro", "")).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.header("x-switchyard-upstream-status"), Some("401"));

    // Gemini's own validation errors come back as 400s with Google's message.
    let r = chat(
        &gw,
        r#"{"model":"g","messages":[{"role":"user","content":"x"}],"provider_options":{"gemini":{"generationConfig":{"candidateCount":20}}}}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error()["message"]
        .as_str()
        .unwrap()
        .contains("candidate_count"));
}

#[tokio::test]
async fn vertex_ai_uses_its_bearer_token_and_paths() {
    let gw = gateway().await;
    let r = chat(&gw, &chat_body("v", r#""max_tokens":50"#)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchyard-provider"), Some("vtx"));
    assert_eq!(r.json()["choices"][0]["finish_reason"], "stop");
    let r = chat(&gw, &chat_body("v", r#""stream":true"#)).await;
    assert_eq!(r.status, 200);
    assert!(chunks(&r).len() >= 3);
}

// === embeddings ===

#[tokio::test]
async fn embeddings_use_embed_content_and_batches() {
    let gw = gateway().await;
    let url = format!("{}/v1/embeddings", gw.url);
    let r = post(&url, r#"{"model":"emb","input":"hello","dimensions":16}"#).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "emb");
    assert_eq!(v["data"][0]["object"], "embedding");
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 16);

    let r = post(
        &url,
        r#"{"model":"emb","input":["a","b","c"],"encoding_format":"base64"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["index"], i);
        let bytes = decode_base64(d["embedding"].as_str().unwrap());
        assert_eq!(bytes.len(), 768 * 4);
    }

    // Vertex AI: one input per request.
    let r = post(&url, r#"{"model":"vemb","input":"hello"}"#).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let r = post(&url, r#"{"model":"vemb","input":["a","b"]}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["param"], "input");
    let r = post(&url, r#"{"model":"emb","input":[[1,2,3]]}"#).await;
    assert_eq!(r.status, 400);
}

/// Standard padded base64, decoded.
fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let pad = chunk.iter().filter(|c| **c == b'=').count();
        let n = chunk
            .iter()
            .map(|c| if *c == b'=' { 0 } else { value(*c) })
            .fold(0u32, |acc, v| (acc << 6) | v);
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    out
}

// === Anthropic clients ===

#[tokio::test]
async fn anthropic_clients_reach_gemini_by_composition() {
    let gw = gateway().await;
    let body = r#"{"model":"g","max_tokens":200,"system":"be brief","messages":[{"role":"user","content":"hi"}]}"#;
    let r = messages(&gw, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "g");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let r = messages(
        &gw,
        &body.replace("\"system\"", "\"stream\":true,\"system\""),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let names: Vec<String> = r
        .text()
        .split("\n\n")
        .filter_map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("event: "))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(names[0], "message_start");
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(r.text().contains(r#""stop_reason":"end_turn""#));

    // Tools: an Anthropic tool, a Gemini function call, a tool_use block back.
    let r = messages(
        &gw,
        r#"{"model":"g","max_tokens":200,"messages":[{"role":"user","content":"weather?"}],
        "tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}],
        "tool_choice":{"type":"any"}}"#,
    )
    .await;
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
    assert!(block["input"]["city"].is_string());

    // Safety stops are Anthropic refusals; errors are Anthropic-shaped.
    let r = messages(
        &gw,
        r#"{"model":"gem-safety/gemini-2.5-flash","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.json()["stop_reason"], "refusal", "{}", r.text());
    let r = messages(
        &gw,
        r#"{"model":"gem-long/gemini-2.5-flash","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("prompt is too long"));
    let r = messages(
        &gw,
        r#"{"model":"gem-429/gemini-2.5-flash","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.header("retry-after"), Some("7"));
    // A mid-stream failure ends an Anthropic stream with an `error` event.
    let r = messages(
        &gw,
        r#"{"model":"gem-broken/gemini-2.5-flash","max_tokens":200,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let last = r
        .text()
        .trim_end()
        .rsplit("\n\n")
        .next()
        .unwrap()
        .to_owned();
    assert!(last.starts_with("event: error"), "{}", r.text());
}

// === the built-in demo and the official SDK ===

#[tokio::test]
async fn demo_gemini_is_in_the_embedded_default() {
    let cfg = switchyard_core::config::embedded_default(&HashMap::<String, String>::new());
    let prepared = Prepared::new(cfg).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(prepared.serve(listener, async move {
        let _ = rx.await;
    }));
    let r = post(
        &format!("{url}/v1/chat/completions"),
        &chat_body("demo-gemini", r#""stream":true"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchyard-provider"), Some("mock-gemini"));
    assert!(chunks(&r).iter().all(|c| c["model"] == "demo-gemini"));
    let r = post(
        &format!("{url}/v1/embeddings"),
        r#"{"model":"mock-gemini/text-embedding-004","input":["a","b"]}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    server.abort();
}

#[tokio::test]
async fn openai_python_sdk_against_gemini() {
    let mock = keyed_mock().await;
    let cfg = format!(
        "{}auth:\n  master_key: {}\n",
        config(&mock),
        crate::sdk::KEY
    );
    crate::sdk::openai_sdk_against(&cfg, "g", "gem").await;
}

/// Anthropic's Python SDK against a Gemini alias: its event accumulator must accept the
/// composed Messages stream, tools included.
#[tokio::test]
async fn anthropic_python_sdk_against_gemini() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import anthropic"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
            "python3 with the `anthropic` package is needed in CI"
        );
        eprintln!("skipped: python3 with the `anthropic` package is not installed");
        return;
    }
    let mock = keyed_mock().await;
    let cfg = format!(
        "{}auth:\n  master_key: {}\n",
        config(&mock),
        crate::sdk::KEY
    );
    let gw = Gateway::start(&cfg).await;
    let script = r#"
import sys
import anthropic
client = anthropic.Anthropic(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0, timeout=20)
messages = [{"role": "user", "content": "Say hello in five words."}]
msg = client.messages.create(model="g", max_tokens=200, system="Be brief.", messages=messages)
assert msg.model == "g" and msg.content[0].type == "text" and msg.content[0].text, msg
assert msg.stop_reason == "end_turn" and msg.usage.output_tokens > 0, msg
with client.messages.stream(model="g", max_tokens=200, messages=messages) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
assert text and final.stop_reason == "end_turn" and final.usage.output_tokens > 0, final
tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
with client.messages.stream(model="g", max_tokens=200, messages=messages, tools=[tool],
                            tool_choice={"type": "tool", "name": "get_weather"}) as stream:
    final = stream.get_final_message()
use = [b for b in final.content if b.type == "tool_use"][0]
assert final.stop_reason == "tool_use" and use.name == "get_weather" and use.input["city"], final
followup = messages + [
    {"role": "assistant", "content": [b.model_dump() for b in final.content]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "21C"}]},
]
msg = client.messages.create(model="g", max_tokens=200, messages=followup, tools=[tool])
assert msg.content[0].text, msg
try:
    client.messages.create(model="gem-long/gemini-2.5-flash", max_tokens=20, messages=messages)
    raise AssertionError("expected an error")
except anthropic.BadRequestError as e:
    assert "prompt is too long" in str(e), e
print("ok")
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", script, &gw.url, crate::sdk::KEY]);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "SDK script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
