//! The Responses API's model-addressed sub-resources (issue 8, point 1):
//! `POST /v1/responses/input_tokens` and `POST /v1/responses/compact`, routed by `model` to
//! an OpenAI-type deployment; `input_tokens` counted by Anthropic's and Gemini's own counters
//! on their deployments; a clear 400 for what a translated deployment cannot answer; and the
//! official SDK on both.

use std::process::Command;

use http::Method;
use serde_json::json;

use crate::harness::*;

const KEY_A: &str = "sk-team-a-0123456789";

/// An OpenAI-type deployment, an Anthropic one, a Gemini one and a Bedrock one.
fn config(base: &str) -> String {
    format!(
        "providers:\n  oai:\n    type: openai\n    base_url: \"{base}/v1\"\n    \
         api_key: ${{UPSTREAM_KEY}}\n  claude:\n    type: anthropic\n    base_url: \"{base}/v1\"\n    \
         api_key: ${{UPSTREAM_KEY}}\n  gem:\n    type: gemini\n    base_url: \"{base}/v1beta\"\n    \
         api_key: ${{UPSTREAM_KEY}}\n  aws:\n    type: bedrock\n    base_url: \"{base}\"\n    \
         region: us-east-1\n    aws_access_key_id: {}\n    aws_secret_access_key: \"{}\"\n\
         models:\n  demo:\n    deployments:\n      - provider: oai\n        model: mock-gpt\n  \
         smart:\n    deployments:\n      - provider: claude\n        model: claude-sonnet-4-5\n  \
         flash:\n    deployments:\n      - provider: gem\n        model: gemini-2.5-flash\n  \
         nova:\n    deployments:\n      - provider: aws\n        model: amazon.nova-lite-v1:0\n\
         auth:\n  master_key: {}\n  virtual_keys:\n    - name: team-a\n      key: {KEY_A}\n",
        switchyard_mock::BEDROCK_ACCESS_KEY_ID,
        switchyard_mock::BEDROCK_SECRET_ACCESS_KEY,
        crate::sdk::KEY
    )
}

async fn post(gw: &Gateway, tail: &str, body: &[u8]) -> Resp {
    send(
        Method::POST,
        &format!("{}/v1/responses/{tail}", gw.url),
        &[("authorization", &format!("Bearer {KEY_A}"))],
        body.to_vec(),
    )
    .await
}

#[tokio::test]
async fn sub_resources_go_to_openai_type_deployments_with_only_the_model_replaced() {
    let mock = keyed_mock().await;
    let gw = Gateway::start(&config(&mock)).await;
    let r = post(
        &gw,
        "input_tokens",
        br#"{"model":"demo","input":"hello there"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "response.input_tokens");
    assert!(v["input_tokens"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(r.headers["x-switchyard-provider"], "oai");

    let r = post(
        &gw,
        "compact",
        br#"{"model":"demo","input":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "response.compaction");
    let kinds: Vec<&str> = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["message", "compaction"], "{v}");
}

#[tokio::test]
async fn sub_resources_a_translated_deployment_cannot_answer_are_400s_naming_it() {
    let mock = keyed_mock().await;
    let gw = Gateway::start(&config(&mock)).await;
    for (tail, model, deployment) in [
        ("compact", "smart", "claude/claude-sonnet-4-5"),
        ("compact", "flash", "gem/gemini-2.5-flash"),
        ("input_tokens", "nova", "aws/amazon.nova-lite-v1:0"),
    ] {
        let body = json!({"model": model, "input": "hi"});
        let r = post(&gw, tail, &serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(r.status, 400, "{tail}: {}", r.text());
        let e = r.error();
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("/v1/responses/{tail}")),
            "{message}"
        );
        assert!(message.contains(deployment), "{message}");
        assert_eq!(e["code"], "unsupported_endpoint");
    }
}

#[tokio::test]
async fn input_tokens_on_anthropic_and_gemini_are_counted_by_their_own_counters() {
    let mock = keyed_mock().await;
    let gw = Gateway::start(&config(&mock)).await;
    for (model, provider) in [("smart", "claude"), ("flash", "gem")] {
        let count = |body: serde_json::Value| {
            let gw = &gw;
            async move {
                let r = post(gw, "input_tokens", &serde_json::to_vec(&body).unwrap()).await;
                assert_eq!(r.status, 200, "{model}: {}", r.text());
                assert_eq!(r.header("x-switchyard-provider"), Some(provider));
                let v = r.json();
                assert_eq!(v["object"], "response.input_tokens", "{v}");
                v["input_tokens"].as_u64().unwrap()
            }
        };
        let short = count(json!({"model": model, "input": "hi"})).await;
        let long = count(json!({
            "model": model,
            "instructions": "Answer in one short sentence, please.",
            "input": [{"role": "user", "content": "a much longer question ".repeat(20)}],
        }))
        .await;
        assert!(long > short && short > 0, "{model}: {short} vs {long}");
    }
    // What the translation cannot express is the create's 400, naming the deployment.
    let r = post(
        &gw,
        "input_tokens",
        br#"{"model":"smart","input":[{"type":"item_reference","id":"msg_1"}]}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error()["message"]
        .as_str()
        .unwrap()
        .contains("claude/claude-sonnet-4-5"));
}

#[tokio::test]
async fn input_tokens_of_a_continued_conversation_count_the_gateway_kept_history() {
    let mock = keyed_mock().await;
    let gw = Gateway::start(&config(&mock)).await;
    let first = send(
        Method::POST,
        &format!("{}/v1/responses", gw.url),
        &[("authorization", &format!("Bearer {KEY_A}"))],
        serde_json::to_vec(&json!({
            "model": "smart",
            "input": "a long first question about rail yards ".repeat(30),
        }))
        .unwrap(),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first_id = first.json()["id"].as_str().unwrap().to_owned();
    let alone = post(
        &gw,
        "input_tokens",
        br#"{"model":"smart","input":"and then?"}"#,
    )
    .await;
    assert_eq!(alone.status, 200, "{}", alone.text());
    let continued = post(
        &gw,
        "input_tokens",
        &serde_json::to_vec(&json!({
            "model": "smart", "input": "and then?", "previous_response_id": first_id,
        }))
        .unwrap(),
    )
    .await;
    assert_eq!(continued.status, 200, "{}", continued.text());
    let (alone, continued) = (
        alone.json()["input_tokens"].as_u64().unwrap(),
        continued.json()["input_tokens"].as_u64().unwrap(),
    );
    assert!(continued > alone + 50, "{alone} vs {continued}");
    // An unknown previous response is the create's 404.
    let unknown = post(
        &gw,
        "input_tokens",
        br#"{"model":"smart","input":"x","previous_response_id":"resp_nope"}"#,
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert_eq!(unknown.error()["param"], "previous_response_id");
}

#[tokio::test]
async fn sub_resources_validate_their_body_and_are_not_response_ids() {
    let mock = keyed_mock().await;
    let gw = Gateway::start(&config(&mock)).await;
    for (body, param) in [
        (json!({"input": "hi"}), Some("model")),
        (json!({"model": 3}), Some("model")),
        (json!({"model": "nope", "input": "hi"}), Some("model")),
    ] {
        let r = post(&gw, "input_tokens", &serde_json::to_vec(&body).unwrap()).await;
        assert!(r.status == 400 || r.status == 404, "{body}: {}", r.text());
        if let Some(p) = param {
            assert_eq!(r.error()["param"], p, "{body}: {}", r.text());
        }
    }
    let r = post(&gw, "compact", b"not json").await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Without a key, as for every endpoint.
    let r = send(
        Method::POST,
        &format!("{}/v1/responses/input_tokens", gw.url),
        &[],
        br#"{"model":"demo"}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, 401);
    // The sub-resources are POST only; they are not response ids.
    let r = send(
        Method::GET,
        &format!("{}/v1/responses/input_tokens", gw.url),
        &[("authorization", &format!("Bearer {KEY_A}"))],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.error()["code"], "method_not_allowed");
}

#[tokio::test]
async fn python_sdk_counts_input_tokens_and_compacts() {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import openai; openai.OpenAI(api_key='x').responses.input_tokens",
        ])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return crate::sdk::skip_or_fail(
            "python3 with an `openai` package that has responses.input_tokens is not installed",
        );
    }
    let mock = keyed_mock().await;
    let gw = Gateway::start(&config(&mock)).await;
    let mut cmd = Command::new("python3");
    cmd.arg(crate::sdk::sdk_dir().join("openai_responses_sub.py"))
        .arg(format!("{}/v1", gw.url))
        .arg(crate::sdk::KEY)
        .arg("demo")
        .arg("smart")
        .arg("nova");
    crate::sdk::run(cmd).await;
}

#[tokio::test]
async fn the_upstream_gets_the_clients_bytes_and_the_client_gets_the_upstreams() {
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
    let upstream = scripted(move |req: http::Request<axum::body::Body>| {
        let seen = seen_tx.clone();
        async move {
            use http_body_util::BodyExt;
            let path = req.uri().path().to_owned();
            let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
            seen.send((path, body)).unwrap();
            http::Response::builder()
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    "{\"object\":\"response.input_tokens\",  \"input_tokens\":7,\"x_new\":1.50}",
                ))
                .unwrap()
        }
    })
    .await;
    let gw = Gateway::start(&format!(
        "providers:\n  up:\n    type: openai\n    base_url: \"{upstream}/v1\"\nmodels:\n  demo:\n    \
         deployments:\n      - provider: up\n        model: gpt-up\n"
    ))
    .await;
    let sent = r#"{"model":"demo",  "input":"hi","x_future":{"a":[1,2]}}"#;
    for tail in ["input_tokens", "compact"] {
        let r = send(
            Method::POST,
            &format!("{}/v1/responses/{tail}", gw.url),
            &[],
            sent.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.text(),
            "{\"object\":\"response.input_tokens\",  \"input_tokens\":7,\"x_new\":1.50}"
        );
        let (path, body) = seen_rx.recv().await.unwrap();
        assert_eq!(path, format!("/v1/responses/{tail}"));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            sent.replace("\"demo\"", "\"gpt-up\"")
        );
    }
}
