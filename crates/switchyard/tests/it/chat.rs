//! Chat completions, embeddings and models through the gateway (issue 2, points 2, 4, 6).

use axum::body::Body;
use http::{Method, Response};
use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn chat_completion_round_trip_renames_model_and_names_the_server() {
    let mock = keyed_mock().await;
    let gw = Gateway::for_upstream(&mock).await;
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &chat_body("demo", ""),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "demo");
    assert_eq!(v["object"], "chat.completion");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len()
            > 5
    );
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(r.header("x-switchyard-provider"), Some("mock"));
    assert_eq!(r.header("x-switchyard-model"), Some("mock-gpt"));
    assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()));
    assert!(r.header("x-switchyard-upstream-request-id").is_some());
    // Routes without the /v1 prefix work too.
    let r = post(
        &format!("{}/chat/completions", gw.url),
        &chat_body("demo", ""),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn request_bytes_are_forwarded_with_only_the_model_replaced() {
    let mock = keyed_mock().await;
    let gw = Gateway::for_upstream(&mock).await;
    let body = r#"{"model":"demo","messages":[{"role":"developer","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"future_param":{"nested":[1,2.50,"x"]},"temperature":0.2,"mock":{"echo":true}}"#;
    let r = send(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &[("x-request-id", "client-req-1")],
        body.to_owned(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-request-id"), Some("client-req-1"));
    let echo: Value = serde_json::from_str(
        r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let sent: Value =
        serde_json::from_str(&body.replace("\"model\":\"demo\"", "\"model\":\"mock-gpt\""))
            .unwrap();
    assert_eq!(
        echo["body"], sent,
        "the upstream must get every field, only the model changed"
    );
    assert_eq!(
        echo["headers"]["authorization"],
        format!("Bearer {UPSTREAM_KEY}")
    );
    assert_eq!(echo["headers"]["x-extra"], "extra-value");
    assert_eq!(echo["path"], "/v1/chat/completions");
    // The client's own credentials never travel upstream.
    let echo_text = echo.to_string();
    assert!(!echo_text.contains("client-key"));
}

#[tokio::test]
async fn responses_are_byte_faithful_apart_from_the_model() {
    const BODY: &str = "{\n  \"id\": \"chatcmpl-1\",\n  \"object\": \"chat.completion\",\n  \"created\": 1,\n  \"model\": \"gpt-4o-2024-08-06\",\n  \"choices\": [],\n  \"usage\": {\"prompt_tokens\": 1, \"completion_tokens\": 2, \"total_tokens\": 3},\n  \"x_vendor\": 1.50\n}\n";
    let up = scripted(|_req| async {
        Response::builder()
            .header("content-type", "application/json")
            .header("x-request-id", "up-1")
            .body(Body::from(BODY))
            .unwrap()
    })
    .await;
    let gw = Gateway::for_upstream(&up).await;
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &chat_body("demo", ""),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), BODY.replace("gpt-4o-2024-08-06", "demo"));
    assert_eq!(r.header("x-switchyard-upstream-request-id"), Some("up-1"));
}

#[tokio::test]
async fn embeddings_and_models() {
    let mock = keyed_mock().await;
    let gw = Gateway::for_upstream(&mock).await;
    let r = post(
        &format!("{}/v1/embeddings", gw.url),
        r#"{"model":"demo","input":["a","b"],"dimensions":8}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "demo");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(r.header("x-switchyard-provider"), Some("mock"));

    let r = get(&format!("{}/v1/models", gw.url), &[]).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "demo");
    assert_eq!(v["data"][0]["object"], "model");
    let r = get(&format!("{}/v1/models/demo", gw.url), &[]).await;
    assert_eq!(r.json()["id"], "demo");
    let r = get(&format!("{}/v1/models/nope", gw.url), &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error()["code"], "model_not_found");
}

#[tokio::test]
async fn provider_prefix_routes_reach_a_provider_directly() {
    let mock = keyed_mock().await;
    let gw = Gateway::for_upstream(&mock).await;
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &chat_body("mock/some-model", r#""mock":{"echo":true}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "mock/some-model");
    assert_eq!(r.header("x-switchyard-route"), Some("provider-prefix"));
    let echo: Value = serde_json::from_str(
        r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(echo["body"]["model"], "some-model");
}

#[tokio::test]
async fn azure_deployments_use_deployment_urls_and_api_key() {
    let mock = keyed_mock().await;
    let gw = Gateway::start(&format!(
        "providers:\n  az:\n    type: azure\n    base_url: \"{mock}\"\n    api_key: ${{UPSTREAM_KEY}}\n    api_version: \"2024-10-21\"\nmodels:\n  chat:\n    deployments:\n      - provider: az\n        model: my-gpt4o\n"
    ))
    .await;
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &chat_body("chat", r#""mock":{"echo":true}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let echo: Value = serde_json::from_str(
        r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        echo["path"],
        "/openai/deployments/my-gpt4o/chat/completions"
    );
    assert!(echo["query"]
        .as_str()
        .unwrap()
        .contains("api-version=2024-10-21"));
    assert_eq!(echo["headers"]["api-key"], UPSTREAM_KEY);
    assert!(echo["headers"].get("authorization").is_none());
    let r = post(
        &format!("{}/v1/embeddings", gw.url),
        r#"{"model":"chat","input":"x"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn weighted_aliases_spread_traffic() {
    let a = keyed_mock().await;
    let b = keyed_mock().await;
    let gw = Gateway::start(&format!(
        "providers:\n  a:\n    type: openai\n    base_url: \"{a}/v1\"\n    api_key: ${{UPSTREAM_KEY}}\n  b:\n    type: openai\n    base_url: \"{b}/v1\"\n    api_key: ${{UPSTREAM_KEY}}\nmodels:\n  split:\n    deployments:\n      - {{provider: a, model: m, weight: 1}}\n      - {{provider: b, model: m, weight: 1}}\n"
    ))
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let r = post(
            &format!("{}/v1/chat/completions", gw.url),
            &chat_body("split", ""),
        )
        .await;
        assert_eq!(r.status, 200);
        seen.insert(r.header("x-switchyard-provider").unwrap().to_owned());
    }
    assert_eq!(
        seen.len(),
        2,
        "both deployments should serve some of 40 requests"
    );
}

#[tokio::test]
async fn provider_options_for_openai_are_merged_and_never_forwarded() {
    let mock = keyed_mock().await;
    let gw = Gateway::for_upstream(&mock).await;
    let body = r#"{"model":"demo","messages":[{"role":"user","content":"hi"}],"mock":{"echo":true},
        "provider_options":{"openai":{"service_tier":"flex","prediction":{"type":"content","content":"x"}},"anthropic":{"top_k":3}}}"#;
    let r = post(&format!("{}/v1/chat/completions", gw.url), body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let echo: Value = serde_json::from_str(
        r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let sent = &echo["body"];
    assert_eq!(sent["service_tier"], "flex", "{sent}");
    assert_eq!(sent["prediction"]["content"], "x", "{sent}");
    assert_eq!(sent["model"], "mock-gpt");
    assert!(
        sent.get("provider_options").is_none() && sent.get("top_k").is_none(),
        "{sent}"
    );
}
