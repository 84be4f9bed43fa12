//! Virtual keys in the store and rate limits, end to end: the admin API (its guard, create,
//! list, get, update, rotate with and without grace, revoke, expiry), allowed aliases, keys
//! surviving a restart, on SQLite and PostgreSQL; 429s with OpenAI's and Anthropic's shapes
//! and `x-ratelimit-*` headers; TPM charged by estimate and reconciled with usage.

use axum::body::Body;
use http::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;
use crate::reqlog::PgSchema;

const ADMIN_KEY: &str = "admin-key-for-the-key-tests-01";
const MASTER_KEY: &str = "master-key-for-the-key-tests";

fn config(base: &str, store: &str, extra: &str) -> String {
    format!(
        r#"
auth:
  master_key: {MASTER_KEY}
providers:
  mock:
    type: openai
    base_url: "{base}/v1"
    api_key: upstream
models:
  demo:
    deployments:
      - provider: mock
        model: mock-gpt
  other:
    deployments:
      - provider: mock
        model: mock-gpt
request_log:
  enabled: false
admin:
  key: {ADMIN_KEY}
keys:
  enabled: true
  refresh: 200ms
{store}
{extra}
"#
    )
}

async fn admin(gw: &Gateway, method: Method, path: &str, body: Value) -> Resp {
    let auth = format!("Bearer {ADMIN_KEY}");
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    send(
        method,
        &format!("{}{path}", gw.url),
        &[("authorization", &auth)],
        body,
    )
    .await
}

async fn chat(gw: &Gateway, key: &str, model: &str) -> Resp {
    let auth = format!("Bearer {key}");
    send(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &[("authorization", &auth)],
        chat_body(model, ""),
    )
    .await
}

/// The whole key lifecycle against the store `store_yaml` names; returns a key still valid.
async fn lifecycle(base: &str, store_yaml: &str) -> String {
    let gw = Gateway::start(&config(base, store_yaml, "")).await;

    // The admin guard: no key, a wrong key, a client key.
    let url = format!("{}/admin/keys", gw.url);
    assert_eq!(get(&url, &[]).await.status, StatusCode::UNAUTHORIZED);
    let wrong = get(&url, &[("authorization", "Bearer wrong-admin-key")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let master = format!("Bearer {MASTER_KEY}");
    let client = get(&url, &[("authorization", &master)]).await;
    assert_eq!(client.status, StatusCode::UNAUTHORIZED);

    // Create: the key is in this answer only.
    let created = admin(
        &gw,
        Method::POST,
        "/admin/keys",
        json!({"name": "search-svc", "team": "search", "user": "alice",
               "allowed_aliases": ["demo"], "rpm": 6000, "budget_usd": 25.0,
               "budget_period": "month", "tags": {"feature": "search"}}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let rec = created.json();
    let key = rec["key"].as_str().unwrap().to_owned();
    let id = rec["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-sy-") && key.len() > 60, "{key}");
    assert_eq!(rec["team"], "search");
    assert_eq!(rec["budget_period"], "month");

    let dup = admin(
        &gw,
        Method::POST,
        "/admin/keys",
        json!({"name": "search-svc"}),
    )
    .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let bad = admin(
        &gw,
        Method::POST,
        "/admin/keys",
        json!({"name": "x", "rpm": 0}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.error()["message"].as_str().unwrap().contains("rpm"));

    // List and get never show the key.
    let list = admin(&gw, Method::GET, "/admin/keys", Value::Null).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json()["data"].as_array().unwrap().len(), 1);
    assert!(!list.text().contains(&key));
    let one = admin(&gw, Method::GET, &format!("/admin/keys/{id}"), Value::Null).await;
    assert_eq!(one.json()["name"], "search-svc");
    assert!(one.json().get("key").is_none());
    let by_name = admin(&gw, Method::GET, "/admin/keys/search-svc", Value::Null).await;
    assert_eq!(by_name.json()["id"], id.as_str());
    let missing = admin(&gw, Method::GET, "/admin/keys/nope", Value::Null).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The key works at once, for its allowed alias only.
    let ok = chat(&gw, &key, "demo").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let denied = chat(&gw, &key, "other").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let e = denied.error();
    assert_eq!(e["code"], "model_not_allowed");
    assert!(e["message"].as_str().unwrap().contains("`other`"));
    assert!(!denied.text().contains(&key) && !denied.text().contains("search-svc"));

    // Update: allow every alias.
    let up = admin(
        &gw,
        Method::PATCH,
        &format!("/admin/keys/{id}"),
        json!({"allowed_aliases": null, "rpm": 12000}),
    )
    .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.text());
    assert_eq!(up.json()["rpm"], 12000);
    assert_eq!(up.json()["team"], "search");
    assert_eq!(chat(&gw, &key, "other").await.status, StatusCode::OK);

    // Rotate with a grace period: both secrets work.
    let rotated = admin(
        &gw,
        Method::POST,
        &format!("/admin/keys/{id}/rotate"),
        json!({"grace": "1h"}),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text());
    let key2 = rotated.json()["key"].as_str().unwrap().to_owned();
    assert_ne!(key2, key);
    assert_eq!(chat(&gw, &key, "demo").await.status, StatusCode::OK);
    assert_eq!(chat(&gw, &key2, "demo").await.status, StatusCode::OK);
    // Rotate with no grace: the previous secret stops at once.
    let rotated = admin(
        &gw,
        Method::POST,
        &format!("/admin/keys/{id}/rotate"),
        json!({"grace": "0s"}),
    )
    .await;
    let key3 = rotated.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(
        chat(&gw, &key2, "demo").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        chat(&gw, &key, "demo").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(chat(&gw, &key3, "demo").await.status, StatusCode::OK);

    // Expiry: a key past its expiry is refused; extending it revives it.
    let past = store_now_ms() - 1000;
    let exp = admin(
        &gw,
        Method::POST,
        "/admin/keys",
        json!({"name": "short-lived", "expires_at": past}),
    )
    .await;
    let short = exp.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(
        chat(&gw, &short, "demo").await.status,
        StatusCode::UNAUTHORIZED
    );
    admin(
        &gw,
        Method::PATCH,
        "/admin/keys/short-lived",
        json!({"expires_in": "1h"}),
    )
    .await;
    assert_eq!(chat(&gw, &short, "demo").await.status, StatusCode::OK);

    // Revoke: refused at once.
    let revoked = admin(
        &gw,
        Method::POST,
        "/admin/keys/short-lived/revoke",
        Value::Null,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.json()["revoked_at"].is_i64());
    let r = chat(&gw, &short, "demo").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error()["code"], "invalid_api_key");
    let del = admin(&gw, Method::DELETE, "/admin/keys/search-svc", Value::Null).await;
    assert_eq!(del.status, StatusCode::OK);
    assert_eq!(
        chat(&gw, &key3, "demo").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A last key that must survive the restart.
    let keep = admin(&gw, Method::POST, "/admin/keys", json!({"name": "keeper"})).await;
    let keep = keep.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(chat(&gw, &keep, "demo").await.status, StatusCode::OK);
    gw.shutdown().await;
    keep
}

fn store_now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test]
async fn keys_lifecycle_and_restart_on_sqlite() {
    let up = mock(Default::default()).await;
    let dir = temp_dir("keys");
    let store = format!("store:\n  sqlite: \"{}\"", dir.join("k.db").display());
    let keep = lifecycle(&up, &store).await;
    // A new gateway on the same file accepts the key from its first request.
    let gw = Gateway::start(&config(&up, &store, "")).await;
    assert_eq!(chat(&gw, &keep, "demo").await.status, StatusCode::OK);
    let list = admin(&gw, Method::GET, "/admin/keys", Value::Null).await;
    assert_eq!(list.json()["data"].as_array().unwrap().len(), 3);
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn keys_lifecycle_and_restart_on_postgres() {
    let up = mock(Default::default()).await;
    let schema = PgSchema::new("keys").await;
    let store = format!("store:\n  postgres: \"{}\"", schema.url(5432));
    let keep = lifecycle(&up, &store).await;
    let gw = Gateway::start(&config(&up, &store, "")).await;
    assert_eq!(chat(&gw, &keep, "demo").await.status, StatusCode::OK);
    gw.shutdown().await;
    schema.drop_schema().await;
}

#[tokio::test]
async fn replicas_sharing_a_store_converge_on_a_revocation() {
    let up = mock(Default::default()).await;
    let dir = temp_dir("keys-replicas");
    let store = format!("store:\n  sqlite: \"{}\"", dir.join("k.db").display());
    let a = Gateway::start(&config(&up, &store, "")).await;
    let b = Gateway::start(&config(&up, &store, "")).await;
    let created = admin(&a, Method::POST, "/admin/keys", json!({"name": "shared"})).await;
    let key = created.json()["key"].as_str().unwrap().to_owned();
    // B learns of the key within its refresh interval (200ms here).
    let mut seen = false;
    for _ in 0..50 {
        if chat(&b, &key, "demo").await.status == StatusCode::OK {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen, "replica B never accepted the new key");
    admin(&a, Method::POST, "/admin/keys/shared/revoke", Value::Null).await;
    assert_eq!(
        chat(&a, &key, "demo").await.status,
        StatusCode::UNAUTHORIZED
    );
    let mut refused = false;
    for _ in 0..50 {
        if chat(&b, &key, "demo").await.status == StatusCode::UNAUTHORIZED {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(refused, "replica B kept accepting a revoked key");
    a.shutdown().await;
    b.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn admin_keys_is_404_when_store_keys_are_off() {
    let up = mock(Default::default()).await;
    let yaml = config(&up, "", "").replace("keys:\n  enabled: true", "keys:\n  enabled: false");
    let gw = Gateway::start(&yaml).await;
    let r = admin(&gw, Method::GET, "/admin/keys", Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.error()["message"]
        .as_str()
        .unwrap()
        .contains("keys.enabled"));
}

#[tokio::test]
async fn rate_limits_answer_429_with_headers_in_each_apis_shape() {
    let up = mock(Default::default()).await;
    let extra = "limits:\n  teams:\n    ml: {rpm: 3}\n";
    let gw = Gateway::start(&config(&up, "", extra)).await;
    let created = admin(
        &gw,
        Method::POST,
        "/admin/keys",
        json!({"name": "k1", "team": "ml", "rpm": 2}),
    )
    .await;
    let k1 = created.json()["key"].as_str().unwrap().to_owned();
    let first = chat(&gw, &k1, "demo").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("x-ratelimit-limit-requests"), Some("2"));
    assert_eq!(first.header("x-ratelimit-remaining-requests"), Some("0"));
    assert!(first.header("x-ratelimit-reset-requests").is_some());

    // The key's burst is 1 request: the next one is over its limit.
    let over = chat(&gw, &k1, "demo").await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    let e = over.error();
    assert_eq!(e["code"], "rate_limit_exceeded");
    assert_eq!(e["type"], "requests");
    assert!(e["message"].as_str().unwrap().contains("key:k1"), "{e}");
    assert!(!over.text().contains(&k1));
    let retry: u64 = over.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "retry-after {retry}");
    assert_eq!(over.header("x-ratelimit-limit-requests"), Some("2"));
    assert_eq!(over.header("x-ratelimit-remaining-requests"), Some("0"));

    // Anthropic's shape on /v1/messages.
    let auth = format!("Bearer {k1}");
    let msg = send(
        Method::POST,
        &format!("{}/v1/messages", gw.url),
        &[("authorization", &auth)],
        r#"{"model":"demo","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(msg.status, StatusCode::TOO_MANY_REQUESTS);
    let body = msg.json();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(msg.header("retry-after").is_some());

    // The team's limit binds a second key of the same team: k2 is fresh, the team is not
    // (3 per minute, burst 1, one request used by k1).
    let created = admin(
        &gw,
        Method::POST,
        "/admin/keys",
        json!({"name": "k2", "team": "ml"}),
    )
    .await;
    let k2 = created.json()["key"].as_str().unwrap().to_owned();
    let team = chat(&gw, &k2, "demo").await;
    assert_eq!(team.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(team.error()["message"]
        .as_str()
        .unwrap()
        .contains("team:ml"));
    // A key of another team is not affected.
    let created = admin(&gw, Method::POST, "/admin/keys", json!({"name": "k3"})).await;
    let k3 = created.json()["key"].as_str().unwrap().to_owned();
    let free = chat(&gw, &k3, "demo").await;
    assert_eq!(free.status, StatusCode::OK);
    assert!(free.header("x-ratelimit-limit-requests").is_none());
}

/// An upstream reporting as completion tokens the request's `max_tokens`.
async fn usage_upstream() -> String {
    scripted(|req: http::Request<Body>| async move {
        use http_body_util::BodyExt;
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let completion = v["max_tokens"].as_u64().unwrap_or(1);
        let doc = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "mock-gpt",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": completion,
                      "total_tokens": 10 + completion}
        });
        Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(doc.to_string()))
            .unwrap()
    })
    .await
}

#[tokio::test]
async fn tpm_charges_the_estimate_then_reconciles_with_usage() {
    let up = usage_upstream().await;
    let gw = Gateway::start(&config(&up, "", "")).await;
    let created = admin(
        &gw,
        Method::POST,
        "/admin/keys",
        json!({"name": "t", "tpm": 1000}),
    )
    .await;
    let key = created.json()["key"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {key}");
    // About 2000 bytes: estimated at ~500 prompt tokens on admission.
    let text = "a".repeat(1900);
    let body = |max: u64| {
        format!(
            r#"{{"model":"demo","max_tokens":{max},"messages":[{{"role":"user","content":"{text}"}}]}}"#
        )
    };
    let url = format!("{}/v1/chat/completions", gw.url);
    let remaining = |r: &Resp| -> u64 {
        r.header("x-ratelimit-remaining-tokens")
            .unwrap()
            .parse()
            .unwrap()
    };
    let r1 = send(Method::POST, &url, &[("authorization", &auth)], body(5)).await;
    assert_eq!(r1.status, StatusCode::OK, "{}", r1.text());
    assert_eq!(r1.header("x-ratelimit-limit-tokens"), Some("1000"));
    // Charged the estimate (~500), not yet the usage.
    let after_estimate = remaining(&r1);
    assert!((450..=550).contains(&after_estimate), "{after_estimate}");
    // Reconciled to 15 real tokens: without the refund 2 x ~505 would be over 1000.
    let r2 = send(Method::POST, &url, &[("authorization", &auth)], body(5)).await;
    assert_eq!(r2.status, StatusCode::OK, "no refund: {}", r2.text());
    let left = remaining(&r2);
    assert!(
        left + 30 >= after_estimate,
        "{left} left after {after_estimate}"
    );
    // This one really uses 1510 tokens, far over its estimate: charged when it ends, so even
    // a tiny request is refused next (it would pass on the estimate alone).
    let r3 = send(Method::POST, &url, &[("authorization", &auth)], body(1500)).await;
    assert_eq!(r3.status, StatusCode::OK);
    let tiny = r#"{"model":"demo","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let r4 = send(Method::POST, &url, &[("authorization", &auth)], tiny).await;
    assert_eq!(r4.status, StatusCode::TOO_MANY_REQUESTS, "{}", r4.text());
    assert_eq!(r4.error()["type"], "tokens");
    assert_eq!(r4.header("x-ratelimit-limit-tokens"), Some("1000"));
    assert!(r4.header("retry-after").is_some());
}

#[tokio::test]
async fn cli_manages_keys_in_the_store_a_gateway_uses() {
    let up = mock(Default::default()).await;
    let dir = temp_dir("keys-cli");
    let store = format!("store:\n  sqlite: \"{}\"", dir.join("k.db").display());
    let yaml = config(&up, &store, "");
    let path = dir.join("switchyard.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let run = |args: &[&str]| {
        let out = crate::cli::bin()
            .args(args)
            .arg("--config")
            .arg(&path)
            .env("UPSTREAM_KEY", UPSTREAM_KEY)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let created = run(&[
        "keys", "create", "cli-key", "--team", "ml", "--alias", "demo", "--tag", "env=ci",
    ]);
    let json_part = created.split("\n#").next().unwrap();
    let v: Value = serde_json::from_str(json_part).unwrap();
    let key = v["key"].as_str().unwrap().to_owned();
    assert_eq!(v["allowed_aliases"], json!(["demo"]));
    let list = run(&["keys", "list"]);
    assert!(list.contains("cli-key") && !list.contains(&key), "{list}");

    let gw = Gateway::start(&yaml).await;
    assert_eq!(chat(&gw, &key, "demo").await.status, StatusCode::OK);
    assert_eq!(chat(&gw, &key, "other").await.status, StatusCode::FORBIDDEN);
    let rotated = run(&["keys", "rotate", "cli-key", "--grace", "0s"]);
    let v: Value = serde_json::from_str(rotated.split("\n#").next().unwrap()).unwrap();
    let new_key = v["key"].as_str().unwrap().to_owned();
    run(&["keys", "revoke", "cli-key"]);
    // The gateway follows within its refresh interval (200ms): the old secret, valid until
    // then, is refused once the gateway has read the changes; the new one is revoked too.
    let mut refused = false;
    for _ in 0..50 {
        if chat(&gw, &key, "demo").await.status == StatusCode::UNAUTHORIZED {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        refused,
        "the gateway kept a key rotated and revoked by the CLI"
    );
    let r = chat(&gw, &new_key, "demo").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn streamed_answers_carry_rate_limit_headers_too() {
    let up = mock(Default::default()).await;
    let gw = Gateway::start(&config(&up, "", "")).await;
    let created = admin(
        &gw,
        Method::POST,
        "/admin/keys",
        json!({"name": "s", "rpm": 6000, "tpm": 100000}),
    )
    .await;
    let key = created.json()["key"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {key}");
    let r = send(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &[("authorization", &auth)],
        chat_body("demo", r#""stream":true"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("data: [DONE]"));
    assert_eq!(r.header("x-ratelimit-limit-requests"), Some("6000"));
    assert_eq!(r.header("x-ratelimit-remaining-requests"), Some("99"));
    assert_eq!(r.header("x-ratelimit-limit-tokens"), Some("100000"));
}
