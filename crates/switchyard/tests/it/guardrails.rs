//! Guardrails through the running gateway: a blocked request never reaches the provider and
//! gets the client API's error shape without echoing what matched; redaction reaches the
//! provider, the request log and the cache; answers are checked before they are relayed; what
//! fired is recorded and counted.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{Method, Response};
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::Value;

use crate::harness::*;

const ADMIN_KEY: &str = "admin-key-for-the-guardrail-tests";
const MASTER: &str = "sk-guardrails-master-key-01";

/// What the upstream saw, and the answer it gives (a chat completion with `content`).
#[derive(Clone, Default)]
struct Upstream {
    seen: Arc<Mutex<Vec<Bytes>>>,
    content: Arc<Mutex<String>>,
}

impl Upstream {
    async fn start(&self) -> String {
        let me = self.clone();
        scripted(move |req: http::Request<Body>| {
            let me = me.clone();
            async move {
                let body = req.into_body().collect().await.unwrap().to_bytes();
                me.seen.lock().push(body);
                let answer = serde_json::json!({
                    "id": "chatcmpl-guard",
                    "object": "chat.completion",
                    "created": 1,
                    "model": "up-model",
                    "choices": [{"index": 0, "finish_reason": "stop",
                        "message": {"role": "assistant", "content": *me.content.lock()}}],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
                });
                Response::builder()
                    .header("content-type", "application/json")
                    .body(Body::from(answer.to_string()))
                    .unwrap()
            }
        })
        .await
    }

    fn calls(&self) -> usize {
        self.seen.lock().len()
    }

    fn last(&self) -> String {
        String::from_utf8_lossy(self.seen.lock().last().unwrap()).into_owned()
    }
}

fn config(base: &str, rules: &str) -> String {
    format!(
        r#"
auth:
  master_key: {MASTER}
providers:
  up:
    type: openai
    base_url: "{base}/v1"
    api_key: sk-up
models:
  demo:
    deployments:
      - provider: up
        model: up-model
        price: {{input: 1, output: 2}}
  free:
    deployments:
      - provider: up
        model: up-model
request_log:
  flush_interval: 20ms
  bodies: full
admin:
  key: {ADMIN_KEY}
cache:
  enabled: true
guardrails:
{rules}
"#
    )
}

const RULES: &str = r#"
  - name: no-secrets
    patterns: ['(?i)project\s+nightingale']
    models: [demo]
  - name: pii
    detect: [email, phone, credit_card]
    action: redact
    on: both
    models: [demo]
  - name: no-ssn-out
    detect: [us_ssn]
    on: output
    models: [demo]
"#;

async fn chat(gw: &Gateway, body: &str, extra: &[(&str, &str)]) -> Resp {
    let auth = format!("Bearer {MASTER}");
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    send(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &headers,
        body.to_owned(),
    )
    .await
}

async fn record(gw: &Gateway, request_id: &str) -> Value {
    for _ in 0..100 {
        let r = get(
            &format!("{}/admin/requests/{request_id}", gw.url),
            &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
        )
        .await;
        if r.status == 200 {
            return r.json();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("{request_id} was never recorded");
}

#[tokio::test]
async fn a_blocked_request_never_reaches_the_provider() {
    let up = Upstream::default();
    let gw = Gateway::start(&config(&up.start().await, RULES)).await;
    let body = r#"{"model":"demo","messages":[{"role":"user","content":"Status of Project  Nightingale?"}]}"#;
    let r = chat(&gw, body, &[("x-request-id", "blocked-1")]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let err = r.error();
    assert_eq!(err["type"], "invalid_request_error");
    assert_eq!(err["code"], "content_blocked");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("`no-secrets`"), "{message}");
    assert!(message.contains("a blocked pattern"), "{message}");
    assert!(!message.to_lowercase().contains("nightingale"), "{message}");
    assert_eq!(up.calls(), 0);

    let rec = record(&gw, "blocked-1").await;
    assert_eq!(rec["status"], 400);
    assert_eq!(rec["error_kind"], "guardrail_blocked");
    assert_eq!(rec["guardrail_outcome"], "input:block:no-secrets");
    assert_eq!(rec["attempt_count"], 0);

    // Another alias is not covered by the rule: served, and recorded without an outcome.
    let free = body.replace("\"demo\"", "\"free\"");
    let r = chat(&gw, &free, &[("x-request-id", "free-1")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.calls(), 1);
    assert_eq!(
        record(&gw, "free-1").await["guardrail_outcome"],
        Value::Null
    );

    // Anthropic clients get their own error shape.
    let r = send(
        Method::POST,
        &format!("{}/v1/messages", gw.url),
        &[("x-api-key", MASTER)],
        r#"{"model":"demo","max_tokens":9,"system":[{"type":"text","text":"about project nightingale"}],"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no-secrets"));
    assert_eq!(up.calls(), 1);
}

#[tokio::test]
async fn redaction_reaches_the_provider_the_log_and_the_cache_and_nothing_else_changes() {
    let up = Upstream::default();
    *up.content.lock() = "Noted.".into();
    let gw = Gateway::start(&config(&up.start().await, RULES)).await;
    let body = r#"{"model":"demo", "messages":[{"role":"user","content":"Mail ann@example.com or call +44 20 7946 0958"}], "x_unknown":{"keep":[1, 2.50]}}"#;
    let r = chat(&gw, body, &[("x-request-id", "redact-1")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    let want = body.replace(
        "Mail ann@example.com or call +44 20 7946 0958",
        "Mail [REDACTED:EMAIL] or call [REDACTED:PHONE]",
    );
    // Byte for byte the client's body, but for the redacted text and the model name.
    assert_eq!(sent.replace("\"up-model\"", "\"demo\""), want);
    let rec = record(&gw, "redact-1").await;
    assert_eq!(rec["guardrail_outcome"], "input:redact:pii");
    let logged = rec["request_body"].as_str().unwrap();
    assert!(
        !logged.contains("ann@") && logged.contains("[REDACTED:EMAIL]"),
        "{logged}"
    );

    // The same request again is a cache hit: its key is the redacted request.
    let again = chat(&gw, body, &[]).await;
    assert_eq!(again.header("x-switchyard-cache"), Some("hit"));
    assert_eq!(up.calls(), 1);

    // A request with nothing to redact passes, and says so.
    let clean = body.replace("Mail ann@example.com or call +44 20 7946 0958", "hello");
    let r = chat(&gw, &clean, &[("x-request-id", "clean-1")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(record(&gw, "clean-1").await["guardrail_outcome"], "passed");

    // Streams are redacted on the way in too.
    let stream = body.replacen('{', r#"{"stream":true,"#, 1);
    let _ = chat(&gw, &stream, &[]).await;
    assert!(!up.last().contains("ann@"), "{}", up.last());
}

#[tokio::test]
async fn answers_are_checked_before_they_are_relayed() {
    let up = Upstream::default();
    let gw = Gateway::start(&config(&up.start().await, RULES)).await;

    *up.content.lock() = "Sure: write to ops@example.com.".into();
    let r = chat(
        &gw,
        r#"{"model":"demo","messages":[{"role":"user","content":"who?"}]}"#,
        &[("x-request-id", "out-redact")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Sure: write to [REDACTED:EMAIL]."
    );
    // The length the client was told is the length it got.
    if let Some(len) = r.header("content-length") {
        assert_eq!(len.parse::<usize>().unwrap(), r.body.len());
    }
    let rec = record(&gw, "out-redact").await;
    assert_eq!(rec["guardrail_outcome"], "output:redact:pii");
    assert!(!rec["response_body"].as_str().unwrap().contains("ops@"));
    // The cache keeps what the client received.
    let hit = chat(
        &gw,
        r#"{"model":"demo","messages":[{"role":"user","content":"who?"}]}"#,
        &[],
    )
    .await;
    assert_eq!(hit.header("x-switchyard-cache"), Some("hit"));
    assert_eq!(hit.body, r.body);

    *up.content.lock() = "His SSN is 123-45-6789.".into();
    let r = chat(
        &gw,
        r#"{"model":"demo","messages":[{"role":"user","content":"ssn?"}]}"#,
        &[("x-request-id", "out-block")],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let message = r.error()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("answer was blocked"), "{message}");
    assert!(!message.contains("123-45"), "{message}");
    // The provider was paid for the answer: its usage and cost stay in the record.
    let rec = record(&gw, "out-block").await;
    assert_eq!(rec["guardrail_outcome"], "output:block:no-ssn-out");
    assert_eq!(rec["prompt_tokens"], 11);
    assert!(rec["cost_nanos"].as_i64().unwrap() > 0, "{rec}");
    // ... and a blocked answer is never cached.
    let again = chat(
        &gw,
        r#"{"model":"demo","messages":[{"role":"user","content":"ssn?"}]}"#,
        &[],
    )
    .await;
    assert_eq!(again.status, 400);
    assert_eq!(again.header("x-switchyard-cache"), Some("miss"));

    let metrics = get(
        &format!("{}/metrics", gw.url),
        &[("authorization", &format!("Bearer {MASTER}"))],
    )
    .await
    .text();
    for series in [
        r#"switchyard_guardrail_triggers_total{rule="pii",action="redact",stage="output"} 1"#,
        r#"switchyard_guardrail_triggers_total{rule="no-ssn-out",action="block",stage="output"} 2"#,
        r#"switchyard_request_errors_total{alias="demo",kind="guardrail_blocked"} 2"#,
    ] {
        assert!(metrics.contains(series), "{series}\n{metrics}");
    }
}

#[tokio::test]
async fn a_config_reload_replaces_the_rules() {
    let up = Upstream::default();
    let base = up.start().await;
    let env: std::collections::HashMap<String, String> = Default::default();
    let reloader = Arc::new(Mutex::new(None));
    let keep = Arc::clone(&reloader);
    let gw = Gateway::start_inspecting(&config(&base, RULES), env.clone(), move |p| {
        *keep.lock() = Some(p.reloader());
    })
    .await;
    let body = r#"{"model":"demo","messages":[{"role":"user","content":"the bluebird plan"}]}"#;
    assert_eq!(chat(&gw, body, &[]).await.status, 200);

    let stricter = format!("{RULES}  - name: birds\n    patterns: ['(?i)bluebird']\n");
    let yaml = format!(
        "{}\nstore:\n  sqlite: \"{}\"\n",
        config(&base, &stricter),
        temp_dir("reload").join("s.db").display()
    );
    let cfg = switchyard_core::config::from_yaml(&yaml, &env).unwrap();
    let reloader = reloader.lock().take().unwrap();
    reloader.reload(cfg).unwrap();
    // Another body, so the earlier answer is not served from the cache.
    let body = body.replace("plan", "plan, again");
    let r = chat(&gw, &body, &[]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error()["message"].as_str().unwrap().contains("`birds`"));
}
