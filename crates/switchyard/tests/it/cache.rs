//! The response cache through the running gateway: hits only within a tenant, client control
//! headers, what is never kept, expiry, what hits record and count (zero cost, `/metrics`),
//! and the Redis backend shared by two gateways (and failing open when Redis is away).

use std::time::Duration;

use http::Method;
use serde_json::Value;

use crate::harness::*;

const ADMIN_KEY: &str = "admin-key-for-the-cache-tests";
const A1: &str = "sk-cache-team-a-key-0001";
const A2: &str = "sk-cache-team-a-key-0002";
const B1: &str = "sk-cache-team-b-key-0001";
const SOLO: &str = "sk-cache-no-team-key-001";

/// The embedded mock behind `demo` and `other`, keys in two teams and one without, and
/// `cache:` as given.
fn config(cache: &str) -> String {
    format!(
        r#"
auth:
  master_key: sk-cache-master-key-0001
  virtual_keys:
    - {{name: a1, key: {A1}, team: a}}
    - {{name: a2, key: {A2}, team: a}}
    - {{name: b1, key: {B1}, team: b}}
    - {{name: solo, key: {SOLO}}}
providers:
  m:
    type: mock
models:
  demo:
    deployments:
      - provider: m
        model: mock-gpt
        price: {{input: 2.5, output: 10}}
  other:
    deployments:
      - provider: m
        model: mock-gpt
  resumable:
    stream_resume: true
    deployments:
      - provider: m
        model: mock-gpt
request_log:
  flush_interval: 20ms
admin:
  key: {ADMIN_KEY}
cache:
{cache}
"#
    )
}

async fn call(gw: &Gateway, path: &str, key: &str, body: &str, extra: &[(&str, &str)]) -> Resp {
    let auth = format!("Bearer {key}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    send(
        Method::POST,
        &format!("{}{path}", gw.url),
        &headers,
        body.to_owned(),
    )
    .await
}

async fn chat(gw: &Gateway, key: &str, body: &str, extra: &[(&str, &str)]) -> Resp {
    call(gw, "/v1/chat/completions", key, body, extra).await
}

fn prompt(text: &str) -> String {
    format!(r#"{{"model":"demo","messages":[{{"role":"user","content":"{text}"}}]}}"#)
}

fn id(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_owned()
}

fn outcome(r: &Resp) -> Option<&str> {
    r.header("x-switchyard-cache")
}

#[tokio::test]
async fn answers_are_served_again_within_a_tenant_and_never_across() {
    let gw = Gateway::start(&config("  enabled: true\n  ttl: 1h")).await;
    let body = prompt("What is the capital of France?");

    let first = chat(&gw, A1, &body, &[]).await;
    assert_eq!(outcome(&first), Some("miss"));
    assert!(first.header("age").is_none());
    // The same team's other key gets the same answer, byte for byte, marked as a hit.
    let again = chat(&gw, A2, &body, &[]).await;
    assert_eq!(outcome(&again), Some("hit"));
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("content-type"), first.header("content-type"));
    assert_eq!(again.header("age"), Some("0"));
    assert_eq!(again.header("x-switchyard-provider"), Some("m"));
    assert_eq!(again.header("x-switchyard-deployment"), Some("m/mock-gpt"));
    assert!(again.header("x-request-id").is_some());
    assert_ne!(again.header("x-request-id"), first.header("x-request-id"));
    // Nothing was spent.
    assert_eq!(again.header("x-switchyard-cost-usd"), Some("0.000000000"));

    // Another team, and a key without a team, never see team a's answer.
    let other_team = chat(&gw, B1, &body, &[]).await;
    assert_eq!(outcome(&other_team), Some("miss"));
    assert_ne!(id(&other_team), id(&first));
    let solo = chat(&gw, SOLO, &body, &[]).await;
    assert_eq!(outcome(&solo), Some("miss"));
    assert_ne!(id(&solo), id(&first));
    assert_ne!(id(&solo), id(&other_team));
    // ... and each has its own entry now.
    assert_eq!(id(&chat(&gw, B1, &body, &[]).await), id(&other_team));

    // Any change to the body is another request: a space, another alias, a parameter.
    for changed in [
        body.replacen(':', ": ", 1),
        body.replace("\"demo\"", "\"other\""),
        body.replacen('{', r#"{"temperature":0,"#, 1),
    ] {
        let r = chat(&gw, A1, &changed, &[]).await;
        assert_eq!(outcome(&r), Some("miss"), "{changed}");
        assert_ne!(id(&r), id(&first));
    }
}

#[tokio::test]
async fn clients_refresh_or_bypass_and_bad_values_are_refused() {
    let gw = Gateway::start(&config("  enabled: true")).await;
    let body = prompt("refresh me");
    let first = id(&chat(&gw, A1, &body, &[]).await);

    let refreshed = chat(&gw, A1, &body, &[("x-switchyard-cache", "refresh")]).await;
    assert_eq!(outcome(&refreshed), Some("refresh"));
    let refreshed = id(&refreshed);
    assert_ne!(refreshed, first);
    // The refreshed answer replaced the old one.
    let hit = chat(&gw, A1, &body, &[]).await;
    assert_eq!((outcome(&hit), id(&hit)), (Some("hit"), refreshed.clone()));

    let bypass = chat(&gw, A1, &body, &[("cache-control", "no-store")]).await;
    assert_eq!(outcome(&bypass), Some("bypass"));
    assert_ne!(id(&bypass), refreshed);
    let no_cache = chat(&gw, A1, &body, &[("cache-control", "no-cache")]).await;
    assert_eq!(outcome(&no_cache), Some("refresh"));

    let bad = chat(&gw, A1, &body, &[("x-switchyard-cache", "sometimes")]).await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let err = bad.error();
    assert_eq!(err["type"], "invalid_request_error");
    assert_eq!(err["param"], "x-switchyard-cache");
    // Anthropic clients get their own error shape.
    let msg = call(
        &gw,
        "/v1/messages",
        A1,
        r#"{"model":"demo","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#,
        &[("x-switchyard-cache", "sometimes")],
    )
    .await;
    assert_eq!(msg.status, 400);
    assert_eq!(msg.json()["type"], "error");
    assert_eq!(msg.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn streams_are_replayed_whole_and_failures_and_stored_completions_never_kept() {
    let gw = Gateway::start(&config("  enabled: true")).await;
    // A completed stream is kept as the client received it, and replayed at once.
    let stream = prompt("stream").replacen(
        '{',
        r#"{"stream":true,"stream_options":{"include_usage":true},"#,
        1,
    );
    let first = chat(&gw, A1, &stream, &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(outcome(&first), Some("miss"));
    assert!(first.text().contains("data: [DONE]"), "{}", first.text());
    let again = chat(&gw, A1, &stream, &[]).await;
    assert_eq!(outcome(&again), Some("hit"));
    assert_eq!(again.body, first.body);
    assert_eq!(
        again.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(again.header("cache-control"), Some("no-cache"));
    // The same request without `stream` is another request.
    let plain = chat(&gw, A1, &prompt("stream"), &[]).await;
    assert_eq!(outcome(&plain), Some("miss"));
    // Anthropic streams too, in their own event format.
    let msg = r#"{"model":"demo","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let m1 = call(&gw, "/v1/messages", A1, msg, &[]).await;
    assert!(m1.text().contains("event: message_stop"), "{}", m1.text());
    let m2 = call(&gw, "/v1/messages", A1, msg, &[]).await;
    assert_eq!(outcome(&m2), Some("hit"));
    assert_eq!(m2.body, m1.body);

    // A stream that may resume on another deployment could be two answers spliced: not kept.
    let resumable = stream.replace("\"demo\"", "\"resumable\"");
    for _ in 0..2 {
        let r = chat(&gw, A1, &resumable, &[]).await;
        assert_eq!((r.status.as_u16(), outcome(&r)), (200, Some("miss")));
    }
    // A stream that breaks is not an answer to keep.
    let broken = prompt("broken").replacen(
        '{',
        r#"{"stream":true,"mock":{"disconnect_after_chunks":2},"#,
        1,
    );
    for _ in 0..2 {
        let r = chat(&gw, A1, &broken, &[]).await;
        assert_eq!(outcome(&r), Some("miss"), "{}", r.text());
    }
    // A `store: true` completion's point is the stored record upstream.
    let stored = prompt("stored").replacen('{', r#"{"store":true,"#, 1);
    let a = chat(&gw, A1, &stored, &[]).await;
    let b = chat(&gw, A1, &stored, &[]).await;
    assert_eq!(outcome(&b), Some("uncacheable"));
    assert_ne!(id(&a), id(&b));
    // An upstream failure is not an answer to keep.
    let failing = prompt("fail").replacen('{', r#"{"mock":{"status":500},"#, 1);
    for _ in 0..2 {
        let r = chat(&gw, A1, &failing, &[]).await;
        assert!(r.status.is_server_error(), "{}", r.text());
        assert_eq!(outcome(&r), Some("miss"));
    }
}

#[tokio::test]
async fn answers_larger_than_max_entry_size_are_not_kept() {
    let gw = Gateway::start(&config("  enabled: true\n  max_entry_size: 300")).await;
    let stream = prompt("long").replacen('{', r#"{"stream":true,"#, 1);
    for body in [prompt("long"), stream] {
        let a = chat(&gw, A1, &body, &[]).await;
        assert_eq!(a.status, 200);
        assert!(a.body.len() > 300, "{}", a.text());
        let b = chat(&gw, A1, &body, &[]).await;
        assert_eq!(outcome(&b), Some("miss"), "{body}");
    }
}

#[tokio::test]
async fn answers_expire_after_the_ttl() {
    let gw = Gateway::start(&config("  enabled: true\n  ttl: 1s")).await;
    let body = prompt("short-lived");
    let first = id(&chat(&gw, A1, &body, &[]).await);
    assert_eq!(id(&chat(&gw, A1, &body, &[]).await), first);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let later = chat(&gw, A1, &body, &[]).await;
    assert_eq!(outcome(&later), Some("miss"));
    assert_ne!(id(&later), first);
}

#[tokio::test]
async fn only_configured_models_and_the_other_apis_are_cached() {
    let gw = Gateway::start(&config("  enabled: true\n  models: [demo]")).await;
    // `other` is not in `models`: no cache, no header.
    let other = prompt("x").replace("\"demo\"", "\"other\"");
    let r = chat(&gw, A1, &other, &[]).await;
    assert_eq!(outcome(&r), None);
    assert_ne!(id(&r), id(&chat(&gw, A1, &other, &[]).await));

    // Embeddings, Anthropic messages and legacy completions are cached too.
    for (path, body) in [
        ("/v1/embeddings", r#"{"model":"demo","input":"cache me"}"#),
        (
            "/v1/messages",
            r#"{"model":"demo","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#,
        ),
        (
            "/v1/completions",
            r#"{"model":"demo","prompt":"once upon","max_tokens":5}"#,
        ),
    ] {
        let first = call(&gw, path, A1, body, &[]).await;
        assert_eq!(first.status, 200, "{path}: {}", first.text());
        assert_eq!(outcome(&first), Some("miss"), "{path}");
        let hit = call(&gw, path, A1, body, &[]).await;
        assert_eq!(outcome(&hit), Some("hit"), "{path}");
        assert_eq!(hit.body, first.body, "{path}");
    }
    // The Messages API's version header is part of the request.
    let body = r#"{"model":"demo","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
    let beta = call(&gw, "/v1/messages", A1, body, &[("anthropic-beta", "x-1")]).await;
    assert_eq!(outcome(&beta), Some("miss"));
}

async fn admin_json(gw: &Gateway, path: &str) -> Value {
    let r = get(
        &format!("{}{path}", gw.url),
        &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn hits_are_recorded_and_counted_at_zero_cost() {
    let gw = Gateway::start(&config("  enabled: true")).await;
    let body = prompt("count me");
    let miss = chat(&gw, A1, &body, &[("x-request-id", "cache-miss-1")]).await;
    assert_eq!(outcome(&miss), Some("miss"));
    let hit = chat(&gw, A1, &body, &[("x-request-id", "cache-hit-1")]).await;
    assert_eq!(outcome(&hit), Some("hit"));
    let off = chat(
        &gw,
        A1,
        &body,
        &[
            ("x-switchyard-cache", "off"),
            ("x-request-id", "cache-off-1"),
        ],
    )
    .await;
    assert_eq!(off.status, 200);

    let mut records = Value::Null;
    for _ in 0..100 {
        records = admin_json(&gw, "/admin/requests?key=a1").await;
        if records["data"].as_array().map_or(0, Vec::len) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let find = |rid: &str| -> Value {
        records["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["request_id"] == rid)
            .cloned()
            .unwrap_or_else(|| panic!("{rid} not recorded: {records}"))
    };
    let m = find("cache-miss-1");
    assert_eq!(m["cache_outcome"], "miss");
    assert!(m["cost_nanos"].as_i64().unwrap() > 0, "{m}");
    assert!(m["prompt_tokens"].as_i64().unwrap() > 0, "{m}");
    let h = find("cache-hit-1");
    assert_eq!(h["cache_outcome"], "hit");
    assert_eq!(h["status"], 200);
    assert_eq!(h["cost_known"], true);
    assert_eq!(h["cost_nanos"], 0);
    assert_eq!(h["prompt_tokens"], 0);
    assert_eq!(h["completion_tokens"], 0);
    assert_eq!(h["attempt_count"], 0, "{h}");
    assert_eq!(find("cache-off-1")["cache_outcome"], "bypass");
    // Aggregates split by what the cache did: the hit counted, at no cost.
    let agg = admin_json(&gw, "/admin/stats?by=cache&key=a1").await;
    let groups = agg["data"].as_array().unwrap_or_else(|| panic!("{agg}"));
    let hits = groups
        .iter()
        .find(|g| g["cache"] == "hit")
        .unwrap_or_else(|| panic!("{agg}"));
    assert_eq!(
        (hits["count"].as_i64(), hits["cost_usd"].as_f64()),
        (Some(1), Some(0.0))
    );
    let filtered = admin_json(&gw, "/admin/requests?cache=hit").await;
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1, "{filtered}");

    let metrics = get(
        &format!("{}/metrics", gw.url),
        &[("authorization", "Bearer sk-cache-master-key-0001")],
    )
    .await
    .text();
    for (result, n) in [("miss", 1), ("hit", 1), ("bypass", 1)] {
        let series =
            format!("switchyard_cache_requests_total{{alias=\"demo\",result=\"{result}\"}} {n}");
        assert!(metrics.contains(&series), "{series}\n{metrics}");
    }
    assert!(metrics.contains("switchyard_cache_entries 1"), "{metrics}");
    assert!(
        metrics.contains("switchyard_cache_stores_total 1"),
        "{metrics}"
    );
}

/// A unique key prefix in the shared Redis, so that runs and tests never meet.
fn redis_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("switchyard-it-cache:{}:{nanos}", std::process::id())
}

#[tokio::test]
async fn two_gateways_share_answers_through_redis_and_a_missing_redis_is_a_miss() {
    let prefix = redis_prefix();
    let cache = format!(
        "  enabled: true\n  backend: redis\n  redis_url: redis://127.0.0.1:6379\n  redis_prefix: \"{prefix}\"\n  redis_timeout: 500ms"
    );
    let one = Gateway::start(&config(&cache)).await;
    let two = Gateway::start(&config(&cache)).await;
    let body = prompt("shared across replicas");
    let first = chat(&one, A1, &body, &[]).await;
    assert_eq!(outcome(&first), Some("miss"));
    // The write goes out in the background: the other replica sees it a moment later.
    let mut seen = None;
    for _ in 0..50 {
        let r = chat(&two, A2, &body, &[]).await;
        if outcome(&r) == Some("hit") {
            seen = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.expect("the second gateway never saw the first one's answer");
    assert_eq!(seen.body, first.body);
    // Tenants stay apart in Redis too.
    assert_eq!(outcome(&chat(&two, B1, &body, &[]).await), Some("miss"));

    // Nothing listens on this port: every lookup is a miss, every request still served.
    let dead = config(
        "  enabled: true\n  backend: redis\n  redis_url: redis://127.0.0.1:1\n  redis_timeout: 100ms",
    );
    let gw = Gateway::start(&dead).await;
    for _ in 0..2 {
        let r = chat(&gw, A1, &body, &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(outcome(&r), Some("miss"));
    }
    let metrics = get(
        &format!("{}/metrics", gw.url),
        &[("authorization", "Bearer sk-cache-master-key-0001")],
    )
    .await
    .text();
    assert!(
        !metrics.contains("switchyard_cache_backend_errors_total 0"),
        "{metrics}"
    );
}
