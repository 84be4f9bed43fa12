//! AWS Bedrock as a provider (issue 3, point 4), through the running gateway against the
//! mock's Bedrock face: SigV4-signed Converse and ConverseStream (binary eventstream), tools,
//! images, errors, Anthropic clients, credentials from the environment, the built-in demo.

use std::collections::HashMap;

use http::Method;
use serde_json::Value;

use crate::harness::*;

const MOCK_KEY_ID: &str = switchyard_mock::BEDROCK_ACCESS_KEY_ID;
const MOCK_SECRET: &str = switchyard_mock::BEDROCK_SECRET_ACCESS_KEY;
/// A model id with the `.` and `:` that must be encoded in the path and signed as such.
const MODEL: &str = "amazon.nova-pro-v1:0";

/// `nova` on the mock's Bedrock face, signed with the mock's test key (whose signatures the
/// mock verifies). `aws-<knob>` providers send a fixed knob in `x-mock-knobs`, since a
/// translated request has no place for the body's `"mock"` field.
fn config(base: &str) -> String {
    let mut providers = String::new();
    for (name, knobs, secret) in [
        ("aws", "", MOCK_SECRET),
        ("aws-echo", r#"{"echo":true}"#, MOCK_SECRET),
        ("aws-429", r#"{"status":429,"retry_after":7}"#, MOCK_SECRET),
        ("aws-long", r#"{"prompt_too_long":true}"#, MOCK_SECRET),
        (
            "aws-broken",
            r#"{"stream_exception_after_chunks":3}"#,
            MOCK_SECRET,
        ),
        ("aws-guard", r#"{"guardrail":true}"#, MOCK_SECRET),
        ("aws-503", r#"{"status":503}"#, MOCK_SECRET),
        ("aws-wrong-secret", "", "not-the-secret"),
    ] {
        providers.push_str(&format!(
            "  {name}:\n    type: bedrock\n    base_url: \"{base}\"\n    region: us-east-1\n    \
             aws_access_key_id: {MOCK_KEY_ID}\n    aws_secret_access_key: \"{secret}\"\n"
        ));
        if !knobs.is_empty() {
            providers.push_str(&format!("    headers:\n      x-mock-knobs: '{knobs}'\n"));
        }
    }
    format!(
        "providers:\n{providers}models:\n  nova:\n    deployments:\n      - provider: aws\n        \
         model: \"{MODEL}\"\n"
    )
}

async fn gateway() -> Gateway {
    let mock = mock(Default::default()).await;
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

fn anthropic_events(r: &Resp) -> Vec<(String, Value)> {
    r.text()
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: ")).unwrap();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

/// The echo the mock returned as the message content.
fn echo_of(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    serde_json::from_str(&content).unwrap()
}

const WEATHER_TOOL: &str = r#"{"type":"function","function":{"name":"get_weather","description":"Weather for a city.","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}"#;

#[tokio::test]
async fn chat_completion_through_converse() {
    let gw = gateway().await;
    let r = chat(&gw, &chat_body("nova", r#""max_tokens":200"#)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "nova");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
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
    assert_eq!(r.header("x-switchyard-provider"), Some("aws"));
    assert_eq!(r.header("x-switchyard-model"), Some(MODEL));
    // Bedrock's x-amzn-RequestId.
    assert_eq!(
        r.header("x-switchyard-upstream-request-id").map(str::len),
        Some(36)
    );

    // max_tokens reaches inferenceConfig and cuts the answer.
    let r = chat(&gw, &chat_body("nova", r#""max_tokens":3"#)).await;
    assert_eq!(
        r.json()["choices"][0]["finish_reason"],
        "length",
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn request_features_arrive_in_converse_form_signed() {
    let gw = gateway().await;
    let body = format!(
        r#"{{"model":"aws-echo/{MODEL}","messages":[
        {{"role":"system","content":"be brief"}},
        {{"role":"user","content":[{{"type":"text","text":"what is this?"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,iVBORw0KGgo="}}}}]}},
        {{"role":"assistant","content":null,"tool_calls":[{{"id":"tooluse_1","type":"function","function":{{"name":"get_weather","arguments":"{{\"city\":\"Paris\"}}"}}}}]}},
        {{"role":"tool","tool_call_id":"tooluse_1","content":"sunny"}}],
        "tools":[{WEATHER_TOOL}],"stop":["END"],"temperature":0.5,"max_tokens":300,
        "provider_options":{{"bedrock":{{"additionalModelRequestFields":{{"top_k":5}}}}}}}}"#
    );
    let echo = echo_of(&chat(&gw, &body).await);
    assert_eq!(
        echo["path"], "/model/amazon.nova-pro-v1%3A0/converse",
        "{echo}"
    );
    assert_eq!(echo["model_id"], MODEL);
    let sent = &echo["body"];
    assert_eq!(sent["system"], serde_json::json!([{"text": "be brief"}]));
    assert_eq!(
        sent["inferenceConfig"],
        serde_json::json!({"maxTokens": 300, "temperature": 0.5, "stopSequences": ["END"]})
    );
    assert_eq!(
        sent["messages"][0]["content"][1],
        serde_json::json!({"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}})
    );
    assert_eq!(
        sent["messages"][1]["content"][0]["toolUse"],
        serde_json::json!({"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(
        sent["messages"][2]["content"][0]["toolResult"]["toolUseId"],
        "tooluse_1"
    );
    assert_eq!(
        sent["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "get_weather"
    );
    assert_eq!(
        sent["additionalModelRequestFields"],
        serde_json::json!({"top_k": 5})
    );
    assert!(sent.get("model").is_none() && sent.get("provider_options").is_none());
    // Signed the way AWS expects (and the mock verified the signature).
    let auth = echo["headers"]["authorization"].as_str().unwrap();
    assert!(
        auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={MOCK_KEY_ID}/"))
            && auth.contains("/us-east-1/bedrock/aws4_request, SignedHeaders="),
        "{auth}"
    );
    assert!(
        auth.contains("host;") && auth.contains("x-amz-content-sha256;x-amz-date"),
        "{auth}"
    );
    assert!(auth.ends_with("Signature=[hidden]"), "{auth}");
    assert_eq!(echo["headers"]["x-amz-date"].as_str().unwrap().len(), 16);
}

#[tokio::test]
async fn streams_end_with_usage_and_done() {
    let gw = gateway().await;
    let r = chat(
        &gw,
        &chat_body(
            "nova",
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
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let mut text = String::new();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "nova");
        if let Some(choice) = c["choices"].get(0) {
            text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        }
    }
    assert!(text.len() > 3);
    let finish: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .map(|c| &c["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&Value::from("stop")]);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"].as_array().unwrap().len(), 0, "{last}");
    assert!(last["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert!(last["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn forced_tool_calls_both_ways() {
    let gw = gateway().await;
    let body = format!(
        r#"{{"model":"nova","messages":[{{"role":"user","content":"weather in Paris?"}}],
        "tools":[{WEATHER_TOOL}],"tool_choice":"required"}}"#
    );
    let r = chat(&gw, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("tooluse_"), "{v}");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{args}");

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
        if let Some(tc) = c["choices"][0]["delta"]["tool_calls"].get(0) {
            assert_eq!(tc["index"], 0);
            if let Some(i) = tc["id"].as_str() {
                id = Some(i.to_owned());
            }
            args.push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert!(id.unwrap().starts_with("tooluse_"));
    let args: Value = serde_json::from_str(&args).unwrap();
    assert!(args["city"].is_string(), "{args}");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));

    // response_format json_schema: a forced tool whose input comes back as the content.
    let body = r#"{"model":"nova","messages":[{"role":"user","content":"a person"}],
        "response_format":{"type":"json_schema","json_schema":{"name":"person","schema":{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}}}}"#;
    let r = chat(&gw, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    let person: Value =
        serde_json::from_str(v["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert!(
        person["name"].is_string() && person["age"].is_number(),
        "{person}"
    );
}

#[tokio::test]
async fn images_must_be_inline_and_embeddings_are_refused() {
    let gw = gateway().await;
    let body = r#"{"model":"nova","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}"#;
    let r = chat(&gw, body).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let e = r.error();
    assert_eq!(e["param"], "messages[0].content[0].image_url.url");
    assert!(
        e["message"].as_str().unwrap().contains("cannot fetch"),
        "{e}"
    );

    let r = post(
        &format!("{}/v1/embeddings", gw.url),
        r#"{"model":"nova","input":"hello"}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.error()["message"]
            .as_str()
            .unwrap()
            .contains("not supported for this provider type"),
        "{}",
        r.text()
    );

    // Something Converse cannot do is refused up front, naming the field.
    let r = chat(&gw, &chat_body("nova", r#""n":2"#)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["param"], "n");
}

#[tokio::test]
async fn bedrock_errors_are_normalised() {
    let gw = gateway().await;
    // ThrottlingException 429: the retryable 503 with the provider's Retry-After.
    let r = chat(&gw, &chat_body(&format!("aws-429/{MODEL}"), "")).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.header("x-switchyard-upstream-status"), Some("429"));
    let e = r.error();
    assert_eq!(e["code"], "rate_limit_exceeded");
    assert!(
        e["message"].as_str().unwrap().contains("Too many requests"),
        "{e}"
    );

    // ValidationException "Input is too long": context_length_exceeded.
    let r = chat(&gw, &chat_body(&format!("aws-long/{MODEL}"), "")).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error()["code"], "context_length_exceeded");

    // ServiceUnavailableException.
    let r = chat(&gw, &chat_body(&format!("aws-503/{MODEL}"), "")).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.error()["type"], "overloaded_error");

    // A bad signature: 403 InvalidSignatureException, never relayed.
    let r = chat(&gw, &chat_body(&format!("aws-wrong-secret/{MODEL}"), "")).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.header("x-switchyard-upstream-status"), Some("403"));
    assert!(
        !r.text().contains("signature we calculated"),
        "{}",
        r.text()
    );

    // An exception message mid-stream ends the stream with an OpenAI error event.
    let r = chat(
        &gw,
        &chat_body(&format!("aws-broken/{MODEL}"), r#""stream":true"#),
    )
    .await;
    assert_eq!(r.status, 200);
    let data = sse_data(&r.body);
    assert!(data.len() >= 2, "{}", r.text());
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(
        last["error"]["code"],
        "ModelStreamErrorException",
        "{}",
        r.text()
    );
    assert!(!r.text().contains("[DONE]"));

    // A guardrail intervention is a content filter stop.
    let r = chat(&gw, &chat_body(&format!("aws-guard/{MODEL}"), "")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["finish_reason"], "content_filter");
}

#[tokio::test]
async fn anthropic_clients_reach_bedrock() {
    let gw = gateway().await;
    let body = r#"{"model":"nova","max_tokens":200,"system":"be brief","messages":[{"role":"user","content":"hi"}]}"#;
    let r = messages(&gw, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "nova");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(r.header("x-switchyard-provider"), Some("aws"));

    let r = messages(
        &gw,
        &body.replace("\"system\"", "\"stream\":true,\"system\""),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let events = anthropic_events(&r);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "message_start");
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

    // Tools: an Anthropic tool definition, a Bedrock toolUse, an Anthropic tool_use block.
    let body = r#"{"model":"nova","max_tokens":200,"messages":[{"role":"user","content":"weather?"}],
        "tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}],
        "tool_choice":{"type":"any"}}"#;
    let r = messages(&gw, body).await;
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
    assert!(block["id"].as_str().unwrap().starts_with("tooluse_"));
    assert!(block["input"]["city"].is_string(), "{v}");

    // A mid-stream exception ends an Anthropic stream with an `error` event.
    let failing = format!(
        r#"{{"model":"aws-broken/{MODEL}","max_tokens":20,"stream":true,"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    let r = messages(&gw, &failing).await;
    assert_eq!(r.status, 200);
    let events = anthropic_events(&r);
    assert_eq!(events.last().unwrap().0, "error", "{}", r.text());

    // And a throttled request is an Anthropic-shaped error.
    let r = messages(
        &gw,
        &format!(
            r#"{{"model":"aws-429/{MODEL}","max_tokens":20,"messages":[{{"role":"user","content":"hi"}}]}}"#
        ),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["type"], "error");
}

/// A Bedrock provider without credentials in its config takes AWS's usual variables.
#[tokio::test]
async fn credentials_and_region_from_the_environment() {
    let mock = mock(Default::default()).await;
    let yaml = format!(
        "providers:\n  aws:\n    type: bedrock\n    base_url: \"{mock}\"\nmodels:\n  nova:\n    \
         deployments:\n      - provider: aws\n        model: \"{MODEL}\"\n"
    );
    let env: HashMap<String, String> = [
        ("AWS_ACCESS_KEY_ID", MOCK_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", MOCK_SECRET),
        ("AWS_SESSION_TOKEN", "session-token-from-env"),
        ("AWS_DEFAULT_REGION", "eu-west-3"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let gw = Gateway::start_with_env(&yaml, env.clone()).await;
    let r = chat(&gw, &chat_body("nova", r#""mock":{"echo":true}"#)).await;
    // Knobs in the body do not survive translation: the reply is ordinary text.
    assert_eq!(r.status, 200, "{}", r.text());

    // Missing credentials are a config error naming the key.
    let mut partial = env.clone();
    partial.remove("AWS_SECRET_ACCESS_KEY");
    let err = switchyard_core::config::from_yaml(&yaml, &partial)
        .unwrap_err()
        .to_string();
    assert!(err.contains("providers.aws.aws_secret_access_key"), "{err}");
    let mut no_region = env;
    no_region.remove("AWS_DEFAULT_REGION");
    let err = switchyard_core::config::from_yaml(&yaml, &no_region)
        .unwrap_err()
        .to_string();
    assert!(err.contains("providers.aws.region"), "{err}");
    assert!(err.contains("AWS_REGION"), "{err}");
}

/// The binary's embedded default: `demo-bedrock` on the built-in mock, and a `bedrock`
/// provider from AWS's variables (pointed at a test mock with `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`).
#[tokio::test]
async fn embedded_default_has_demo_bedrock_and_env_bedrock() {
    let mock = mock(Default::default()).await;
    let port = crate::cli::free_port();
    let mut cmd = crate::cli::bin();
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("AWS_ACCESS_KEY_ID", MOCK_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", MOCK_SECRET)
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &mock);
    let mut gw = crate::cli::Proc::spawn(cmd, port).await;

    let r = chat_raw(&gw.url, &chat_body("demo-bedrock", r#""stream":true"#)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchyard-provider"), Some("mock-bedrock"));
    assert!(r.text().ends_with("data: [DONE]\n\n"), "{}", r.text());

    let r = chat_raw(&gw.url, &chat_body(&format!("bedrock/{MODEL}"), "")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchyard-provider"), Some("bedrock"));
    let _ = gw.child.kill();
}

async fn chat_raw(url: &str, body: &str) -> Resp {
    post(&format!("{url}/v1/chat/completions"), body).await
}

#[tokio::test]
async fn openai_python_sdk_against_bedrock() {
    let mock = mock(Default::default()).await;
    let cfg = format!(
        "{}auth:\n  master_key: {}\n",
        config(&mock),
        crate::sdk::KEY
    );
    crate::sdk::openai_sdk_against(&cfg, "nova", "aws").await;
}

/// An eventstream message as ConverseStream frames events.
fn frame(kind: &str, payload: &str) -> Vec<u8> {
    use switchyard_types::bedrock::eventstream::{encode, Header, HeaderValue, Message};
    let header = |name, value| Header {
        name,
        value: HeaderValue::String(value),
    };
    encode(&Message {
        headers: vec![
            header(":event-type", kind),
            header(":content-type", "application/json"),
            header(":message-type", "event"),
        ],
        payload: payload.as_bytes(),
    })
    .unwrap()
}

/// A scripted Bedrock answering every stream with `body`, and a gateway in front of it.
async fn scripted_stream(body: Vec<u8>) -> Gateway {
    let base = scripted(move |_req| {
        let body = body.clone();
        async move {
            http::Response::builder()
                .header("content-type", "application/vnd.amazon.eventstream")
                .body(axum::body::Body::from(body))
                .unwrap()
        }
    })
    .await;
    Gateway::start(&config(&base)).await
}

#[tokio::test]
async fn the_relay_frames_eventstream_and_knows_when_it_is_complete() {
    let start = [
        frame("messageStart", r#"{"role":"assistant"}"#),
        frame(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abc"}"#,
        ),
    ]
    .concat();
    let stop = frame("messageStop", r#"{"stopReason":"max_tokens"}"#);
    let stream_body = chat_body(
        "nova",
        r#""stream":true,"stream_options":{"include_usage":true}"#,
    );

    // Ends after messageStop without the usage metadata: still complete.
    let gw = scripted_stream([start.clone(), stop.clone()].concat()).await;
    let r = chat(&gw, &stream_body).await;
    let chunks = openai_chunks(&r);
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hi");
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 0);

    // Ends without messageStop: broken off, an error event.
    let gw = scripted_stream(start.clone()).await;
    let r = chat(&gw, &stream_body).await;
    let data = sse_data(&r.body);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{}", r.text());

    // Ends inside a message: an error event, the half message never relayed.
    let mut cut = [start.clone(), stop.clone()].concat();
    cut.truncate(cut.len() - 5);
    let gw = scripted_stream(cut).await;
    let r = chat(&gw, &stream_body).await;
    let data = sse_data(&r.body);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("inside a message"),
        "{}",
        r.text()
    );
    assert!(
        !r.text().contains("finish_reason\":\"length"),
        "{}",
        r.text()
    );

    // A corrupted CRC: malformed upstream, an error event.
    let mut bad = [start, stop].concat();
    let at = bad.len() - 1;
    bad[at] ^= 0x55;
    let gw = scripted_stream(bad).await;
    let r = chat(&gw, &stream_body).await;
    let data = sse_data(&r.body);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{}", r.text());
    assert!(!r.text().contains("[DONE]"));
}
