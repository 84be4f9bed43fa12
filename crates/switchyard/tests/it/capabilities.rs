//! Capability records (issue 3, point 6): a request that needs what its target lacks gets a
//! 400 before any upstream call, and an alias skips deployments that cannot serve it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use http::{Method, Response};

use crate::harness::*;

/// An upstream that counts its calls and answers every one with a fixed chat completion.
async fn counting_upstream() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let url = scripted(move |_req| {
        let seen = Arc::clone(&seen);
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            let body = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap()
        }
    })
    .await;
    (url, calls)
}

fn config(base: &str) -> String {
    format!(
        r#"
providers:
  old:
    type: openai
    base_url: "{base}/v1"
  custom:
    type: openai
    base_url: "{base}/v1"
models:
  legacy:
    deployments:
      - provider: old
        model: gpt-3.5-turbo
  tuned:
    deployments:
      - provider: custom
        model: my-finetune
  mixed:
    deployments:
      - provider: old
        model: gpt-3.5-turbo
        weight: 1000000
      - provider: custom
        model: gpt-4o
        weight: 1
capabilities:
  custom/my-finetune:
    tools: false
    max_output: 512
    context_window: 2048
"#
    )
}

/// A chat body for `model`; `extra` holds more members (with a leading comma), and replaces
/// the default `messages` when it has its own.
fn chat(model: &str, extra: &str) -> String {
    let messages = if extra.contains("\"messages\"") {
        ""
    } else {
        r#","messages":[{"role":"user","content":"Say hello"}]"#
    };
    format!(r#"{{"model":"{model}"{messages}{extra}}}"#)
}

#[tokio::test]
async fn missing_capabilities_are_refused_before_any_upstream_call() {
    let (up, calls) = counting_upstream().await;
    let gw = Gateway::start(&config(&up)).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let image = r#","messages":[{"role":"user","content":[{"type":"text","text":"what?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]"#;
    let cases = [
        (
            chat("legacy", image),
            "messages[0].content[1]",
            "unsupported_capability",
            "image inputs",
        ),
        (
            chat(
                "legacy",
                r#","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}"#,
            ),
            "response_format",
            "unsupported_capability",
            "JSON schema",
        ),
        (
            chat("legacy", r#","max_tokens":5000"#),
            "max_tokens",
            "invalid_value",
            "at most 4096",
        ),
        (
            chat(
                "tuned",
                r#","tools":[{"type":"function","function":{"name":"f"}}]"#,
            ),
            "tools",
            "unsupported_capability",
            "does not support tools",
        ),
        (
            chat("tuned", r#","max_completion_tokens":513"#),
            "max_completion_tokens",
            "invalid_value",
            "at most 512",
        ),
    ];
    for (body, param, code, words) in cases {
        let r = post(&url, &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let e = r.error();
        assert_eq!(e["type"], "invalid_request_error");
        assert_eq!(e["param"], param, "{e}");
        assert_eq!(e["code"], code, "{e}");
        let msg = e["message"].as_str().unwrap();
        assert!(msg.contains(words), "{msg}");
    }
    // The prompt alone (16,400 bytes of text, at least 2,050 tokens) overflows a 2,048 window.
    let long = format!(
        r#"{{"model":"tuned","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(16_400)
    );
    let r = post(&url, &long).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["code"], "context_length_exceeded");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no request reached the upstream"
    );

    // Requests within the records are served.
    let r = post(&url, &chat("tuned", r#","max_tokens":512"#)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_alias_skips_deployments_that_cannot_serve_the_request() {
    let (up, _calls) = counting_upstream().await;
    let gw = Gateway::start(&config(&up)).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    // `mixed` almost always draws gpt-3.5-turbo first, which has no vision: gpt-4o serves.
    let image = r#","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]"#;
    for _ in 0..3 {
        let r = post(&url, &chat("mixed", image)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-switchyard-provider"), Some("custom"));
    }
}

#[tokio::test]
async fn anthropic_clients_get_the_refusal_in_their_shape() {
    let (up, calls) = counting_upstream().await;
    let gw = Gateway::start(&config(&up)).await;
    let body = r#"{"model":"legacy","max_tokens":10,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}"#;
    let r = send(
        Method::POST,
        &format!("{}/v1/messages", gw.url),
        &[("anthropic-version", "2023-06-01")],
        body.to_owned(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image inputs"),
        "{v}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bad_capability_entries_are_config_errors_naming_the_key() {
    let yaml = "capabilities:\n  m:\n    max_output: 10\n    context_window: 5\n";
    let err = switchyard_core::config::from_yaml(yaml, &std::collections::HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("capabilities.m.max_output") && err.contains("line 3"),
        "{err}"
    );
    let yaml = "capabilities:\n  m:\n    vison: false\n";
    let err = switchyard_core::config::from_yaml(yaml, &std::collections::HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("vison"), "{err}");
}
