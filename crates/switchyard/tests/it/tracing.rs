//! OpenTelemetry traces: an in-process OTLP/HTTP receiver checks span names, GenAI attributes
//! and parent/child links, and the `traceparent` sent upstream (issue 7, point 6).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Method, Response};
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::Value;

use crate::harness::*;

const ANSWER: &str = r#"{"id":"c1","object":"chat.completion","created":1,"model":"up-model","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}"#;
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// A collector that keeps every span it receives.
async fn collector() -> (String, Arc<Mutex<Vec<Value>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&spans);
    let url = scripted(move |req: http::Request<Body>| {
        let seen = Arc::clone(&seen);
        async move {
            assert_eq!(req.uri().path(), "/v1/traces");
            assert_eq!(req.headers()["content-type"], "application/json");
            assert_eq!(req.headers()["x-collector-token"], "t0ken");
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let doc: Value = serde_json::from_slice(&body).unwrap();
            let rs = &doc["resourceSpans"][0];
            assert_eq!(
                rs["resource"]["attributes"][0]["value"]["stringValue"],
                "gw-test"
            );
            for s in rs["scopeSpans"][0]["spans"].as_array().unwrap() {
                seen.lock().push(s.clone());
            }
            Response::new(Body::from("{}"))
        }
    })
    .await;
    (url, spans)
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

fn str_attr<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    attr(span, key).and_then(|v| v["stringValue"].as_str())
}

async fn wait_for(spans: &Mutex<Vec<Value>>, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        if spans.lock().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    spans.lock().clone()
}

#[tokio::test]
async fn request_and_attempt_spans_link_to_the_client_trace() {
    let (collector, spans) = collector().await;
    let failing = scripted(|_req| async {
        Response::builder()
            .status(503)
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"error":{"message":"busy","type":"server_error","param":null,"code":null}}"#,
            ))
            .unwrap()
    })
    .await;
    let upstream_traceparent = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&upstream_traceparent);
    let good = scripted(move |req: http::Request<Body>| {
        let seen = Arc::clone(&seen);
        async move {
            if let Some(v) = req.headers().get("traceparent") {
                seen.lock().push(v.to_str().unwrap().to_owned());
            }
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(ANSWER))
                .unwrap()
        }
    })
    .await;
    let cfg = format!(
        r#"
telemetry:
  otlp:
    endpoint: "{collector}"
    service_name: gw-test
    headers:
      x-collector-token: t0ken
providers:
  bad:
    type: openai
    base_url: "{failing}/v1"
  good:
    type: openai
    base_url: "{good}/v1"
models:
  traced:
    deployments:
      - {{provider: bad, model: m-bad, weight: 1}}
      - {{provider: good, model: m-good, weight: 0}}
"#
    );
    let gw = Gateway::start(&cfg).await;
    let url = format!("{}/v1/chat/completions", gw.url);

    // An unsampled client trace is respected: nothing is exported for it.
    let unsampled = format!("00-{}-{CLIENT_SPAN}-00", "11".repeat(16));
    let r = send(
        Method::POST,
        &url,
        &[("traceparent", &unsampled)],
        chat_body("traced", ""),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let sampled = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let r = send(
        Method::POST,
        &url,
        &[("traceparent", &sampled)],
        chat_body("traced", ""),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchyard-attempts"), Some("2"));

    let spans = wait_for(&spans, 3).await;
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert!(
        spans.iter().all(|s| s["traceId"] == CLIENT_TRACE),
        "{spans:#?}"
    );
    let server = spans.iter().find(|s| s["kind"] == 2).unwrap();
    assert_eq!(server["parentSpanId"], CLIENT_SPAN);
    assert_eq!(server["name"], "chat traced");
    assert_eq!(str_attr(server, "gen_ai.operation.name"), Some("chat"));
    assert_eq!(str_attr(server, "gen_ai.request.model"), Some("traced"));
    assert_eq!(str_attr(server, "gen_ai.response.model"), Some("m-good"));
    assert_eq!(str_attr(server, "gen_ai.provider.name"), Some("openai"));
    assert_eq!(
        attr(server, "gen_ai.usage.input_tokens").unwrap()["intValue"],
        "11"
    );
    assert_eq!(
        attr(server, "gen_ai.usage.output_tokens").unwrap()["intValue"],
        "7"
    );
    assert_eq!(
        attr(server, "http.response.status_code").unwrap()["intValue"],
        "200"
    );
    assert_eq!(server["status"]["code"], 1);

    let mut attempts: Vec<&Value> = spans.iter().filter(|s| s["kind"] == 3).collect();
    attempts.sort_by_key(|s| {
        s["startTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    });
    assert_eq!(attempts.len(), 2);
    for a in &attempts {
        assert_eq!(a["parentSpanId"], server["spanId"]);
    }
    assert_eq!(attempts[0]["name"], "chat m-bad");
    assert_eq!(str_attr(attempts[0], "error.type"), Some("overloaded"));
    assert_eq!(attempts[0]["status"]["code"], 2);
    assert_eq!(attempts[1]["name"], "chat m-good");
    assert_eq!(str_attr(attempts[1], "switchyard.provider"), Some("good"));
    assert_eq!(attempts[1]["status"]["code"], 1);
    let start = |s: &Value| {
        s["startTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let end = |s: &Value| {
        s["endTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(start(server) <= start(attempts[0]) && end(attempts[1]) <= end(server));

    // The upstream that answered saw the trace, with its own attempt span as the caller.
    let tps = upstream_traceparent.lock().clone();
    assert_eq!(tps.len(), 2, "{tps:?}");
    assert_eq!(
        tps[1],
        format!(
            "00-{CLIENT_TRACE}-{}-01",
            attempts[1]["spanId"].as_str().unwrap()
        )
    );
    // Nothing of the unsampled trace reached the collector.
    assert!(!format!("{spans:?}").contains(&"11".repeat(16)));
}

#[tokio::test]
async fn streams_and_failures_are_traced_without_a_client_trace() {
    let (collector, spans) = collector().await;
    let mock = keyed_mock().await;
    let cfg = format!(
        "telemetry:\n  otlp:\n    endpoint: \"{collector}/v1/traces\"\n    service_name: gw-test\n    headers: {{x-collector-token: t0ken}}\n{}",
        config_for(&mock)
    );
    let gw = Gateway::start(&cfg).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let r = post(
        &url,
        &chat_body(
            "demo",
            r#""stream":true,"stream_options":{"include_usage":true}"#,
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = post(&url, &chat_body("nope", "")).await;
    assert_eq!(r.status, 404);

    let spans = wait_for(&spans, 3).await;
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let servers: Vec<&Value> = spans.iter().filter(|s| s["kind"] == 2).collect();
    assert_eq!(servers.len(), 2);
    let stream = servers
        .iter()
        .find(|s| str_attr(s, "gen_ai.request.model") == Some("demo"))
        .unwrap();
    assert!(stream.get("parentSpanId").is_none(), "{stream}");
    assert_eq!(
        attr(stream, "gen_ai.request.stream").unwrap()["boolValue"],
        true
    );
    assert!(attr(stream, "gen_ai.usage.output_tokens").is_some());
    let attempt = spans.iter().find(|s| s["kind"] == 3).unwrap();
    assert_eq!(attempt["parentSpanId"], stream["spanId"]);
    assert_eq!(attempt["traceId"], stream["traceId"]);
    let failed = servers
        .iter()
        .find(|s| str_attr(s, "gen_ai.request.model") == Some("nope"))
        .unwrap();
    assert_eq!(failed["status"]["code"], 2);
    assert_eq!(str_attr(failed, "error.type"), Some("not_found"));
    assert_eq!(
        attr(failed, "http.response.status_code").unwrap()["intValue"],
        "404"
    );
    assert_ne!(failed["traceId"], stream["traceId"]);
}
