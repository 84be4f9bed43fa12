//! Bad input and upstream failures get OpenAI-shaped errors with the right status (point 7).

use axum::body::Body;
use http::{Method, Response};

use crate::harness::*;

async fn gw() -> Gateway {
    Gateway::for_upstream(&keyed_mock().await).await
}

fn chat_url(gw: &Gateway) -> String {
    format!("{}/v1/chat/completions", gw.url)
}

#[tokio::test]
async fn malformed_json_says_where() {
    let gw = gw().await;
    let r = post(&chat_url(&gw), "{\"model\": \"demo\",\n \"messages\": [}").await;
    assert_eq!(r.status, 400);
    let e = r.error();
    assert_eq!(e["type"], "invalid_request_error");
    assert_eq!(e["code"], "invalid_json");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("line 2") && msg.contains("column"), "{msg}");
    for body in [
        "",
        "   ",
        "[1,2]",
        "{\"model\":\"demo\"} trailing",
        "nul",
        "\u{0}",
    ] {
        let r = post(&chat_url(&gw), body).await;
        assert_eq!(r.status, 400, "{body:?}: {}", r.text());
        r.error();
    }
}

/// serde would build a request struct from an array's members in field order; a body that is
/// not an object is refused on every model-serving API, in that API's error shape.
#[tokio::test]
async fn a_body_that_is_not_an_object_is_refused() {
    let gw = gw().await;
    let array = r#"["demo",[{"role":"user","content":"x"}]]"#;
    for path in ["/v1/chat/completions", "/v1/embeddings", "/v1/completions"] {
        let r = post(&format!("{}{path}", gw.url), array).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let e = r.error();
        assert_eq!(e["code"], "invalid_value", "{path}");
        assert_eq!(
            e["message"], "The request body must be a JSON object.",
            "{path}"
        );
    }
    let r = post(&format!("{}/v1/messages", gw.url), array).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    for body in ["\"demo\"", "42", "null", " true"] {
        let r = post(&chat_url(&gw), body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(
            r.error()["message"],
            "The request body must be a JSON object.",
            "{body}"
        );
    }
    // Not JSON at all is still a parse error that says where.
    let r = post(&chat_url(&gw), "nul").await;
    assert_eq!(r.error()["code"], "invalid_json");
}

#[tokio::test]
async fn wrong_field_types_name_the_field() {
    let gw = gw().await;
    let cases = [
        (
            r#"{"model":"demo","messages":[{"role":7,"content":"x"}]}"#,
            "messages[0].role",
        ),
        (r#"{"model":"demo","messages":"hi"}"#, "messages"),
        (
            r#"{"model":"demo","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
            "stream",
        ),
        (
            r#"{"model":"demo","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
            "temperature",
        ),
        (
            r#"{"model":"demo","messages":[{"role":"user","content":{"a":1}}]}"#,
            "messages[0].content",
        ),
        (r#"{"model":"demo","messages":[]}"#, "messages"),
        (
            r#"{"model":5,"messages":[{"role":"user","content":"x"}]}"#,
            "model",
        ),
    ];
    for (body, param) in cases {
        let r = post(&chat_url(&gw), body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.error()["param"], param, "{body}");
    }
    let r = post(
        &chat_url(&gw),
        r#"{"messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.error()["message"].as_str().unwrap().contains("model"));
    let r = post(
        &format!("{}/v1/embeddings", gw.url),
        r#"{"model":"demo","input":[]}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["param"], "input");
}

#[tokio::test]
async fn unknown_alias_is_404_listing_the_available_ones() {
    let gw = gw().await;
    let r = post(&chat_url(&gw), &chat_body("gpt-5-turbo-max", "")).await;
    assert_eq!(r.status, 404);
    let e = r.error();
    assert_eq!(e["code"], "model_not_found");
    assert_eq!(e["param"], "model");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("gpt-5-turbo-max") && msg.contains("demo"),
        "{msg}"
    );
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let mock = keyed_mock().await;
    let mut cfg = config_for(&mock);
    cfg.push_str("server:\n  max_body_size: 1KiB\n");
    let gw = Gateway::start(&cfg).await;
    let big = chat_body("demo", &format!(r#""pad":"{}""#, "x".repeat(4096)));
    let r = post(&chat_url(&gw), &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error()["code"], "request_too_large");
    let r = post(&chat_url(&gw), &chat_body("demo", "")).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn unknown_urls_and_methods() {
    let gw = gw().await;
    let r = post(&format!("{}/v1/nope", gw.url), "{}").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error()["code"], "unknown_url");
    assert!(r.header("x-request-id").is_some());
    // (`GET` lists stored chat completions; nothing takes `PUT`.)
    let r = send(http::Method::PUT, &chat_url(&gw), &[], "{}").await;
    assert_eq!(r.status, 405);
    r.error();
    let r = get(&format!("{}/health", gw.url), &[]).await;
    assert_eq!(r.status, 200);
}

async fn upstream_case(knobs: &str) -> Resp {
    let gw = gw().await;
    post(
        &chat_url(&gw),
        &chat_body("demo", &format!(r#""mock":{knobs}"#)),
    )
    .await
}

#[tokio::test]
async fn upstream_server_errors_are_502_keeping_openai_bodies() {
    let r = upstream_case(r#"{"status":500}"#).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.header("x-switchyard-upstream-status"), Some("500"));
    assert_eq!(r.header("x-switchyard-provider"), Some("mock"));
    r.error();
}

#[tokio::test]
async fn upstream_rate_limits_and_overload_are_503_with_retry_after() {
    let r = upstream_case(r#"{"status":429,"retry_after":3}"#).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(r.header("x-switchyard-upstream-status"), Some("429"));
    assert_eq!(
        r.error()["code"],
        "rate_limit_exceeded",
        "the provider's own error body is kept"
    );
    let r = upstream_case(r#"{"status":503}"#).await;
    assert_eq!(r.status, 503);
}

#[tokio::test]
async fn upstream_request_errors_keep_their_status() {
    let r = upstream_case(r#"{"status":400}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("x-switchyard-upstream-status"), Some("400"));
    r.error();
}

#[tokio::test]
async fn upstream_credential_errors_are_502_and_never_relay_the_body() {
    let r = upstream_case(r#"{"status":401}"#).await;
    assert_eq!(r.status, 502);
    let e = r.error();
    assert_eq!(e["code"], "upstream_http_401");
    assert!(
        !r.text().contains("sk-"),
        "upstream key fragments must not reach clients: {}",
        r.text()
    );
}

#[tokio::test]
async fn non_openai_upstream_bodies_are_replaced_by_a_short_reason() {
    let r =
        upstream_case(r#"{"status":502,"raw_error_body":"<html><body>Bad Gateway</body></html>"}"#)
            .await;
    assert_eq!(r.status, 502);
    let e = r.error();
    assert_eq!(e["type"], "upstream_error");
    assert_eq!(e["code"], "upstream_http_502");
    assert!(!r.text().contains("<html>"));
}

#[tokio::test]
async fn malformed_upstream_success_is_502() {
    let r = upstream_case(r#"{"malformed":true}"#).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.error()["code"], "upstream_malformed_response");
}

#[tokio::test]
async fn unreachable_upstream_is_502() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let gw = Gateway::for_upstream(&dead).await;
    let r = post(&chat_url(&gw), &chat_body("demo", "")).await;
    assert_eq!(r.status, 502);
    let e = r.error();
    assert_eq!(e["code"], "upstream_connect_error");
    assert!(!r.text().contains(crate::harness::UPSTREAM_KEY));
}

#[tokio::test]
async fn slow_upstream_hits_the_first_byte_timeout_504() {
    let mock = keyed_mock().await;
    let mut cfg = config_for(&mock);
    cfg.push_str("server:\n  timeouts:\n    first_byte: 200ms\n");
    let gw = Gateway::start(&cfg).await;
    let r = post(
        &chat_url(&gw),
        &chat_body("demo", r#""mock":{"latency_ms":2000}"#),
    )
    .await;
    assert_eq!(r.status, 504);
    assert_eq!(r.error()["code"], "upstream_timeout");
}

#[tokio::test]
async fn upstream_without_json_content_type_is_still_validated() {
    let up = scripted(|_req| async {
        Response::builder()
            .status(200)
            .body(Body::from("not json at all"))
            .unwrap()
    })
    .await;
    let gw = Gateway::for_upstream(&up).await;
    let r = post(&chat_url(&gw), &chat_body("demo", "")).await;
    assert_eq!(r.status, 502);
}

#[tokio::test]
async fn arbitrary_bodies_never_crash_the_gateway() {
    let gw = gw().await;
    // A deterministic pseudo-random corpus of mutated requests: every answer must be a
    // well-formed response (no panic, no dropped connection).
    let seed = chat_body(
        "demo",
        r#""stream":false,"n":1,"tools":[{"type":"function","function":{"name":"f"}}]"#,
    );
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for i in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut bytes = seed.clone().into_bytes();
        let n = (x % 4 + 1) as usize;
        for k in 0..n {
            let pos = ((x >> (k * 8)) as usize) % bytes.len();
            bytes[pos] = (x >> (k * 5)) as u8;
        }
        if i % 3 == 0 {
            bytes.truncate((x as usize) % bytes.len());
        }
        let r = send(Method::POST, &chat_url(&gw), &[], bytes).await;
        assert!(
            [200, 400, 404].contains(&r.status.as_u16()),
            "case {i}: {} {}",
            r.status,
            r.text()
        );
        if r.status != 200 {
            r.error();
        }
    }
}
