//! Cost accounting, budgets and spend reports (issue 6, points 1, 5 and 6) through the running
//! gateway: scripted upstreams report fixed usage in each provider's format, `price:` overrides
//! give round prices, so every cost below is computed by hand.

use std::sync::Arc;

use http::Method;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::harness::*;

const ADMIN_KEY: &str = "admin-key-0123456789abcdef";
const ALICE: &str = "sk-alice-0123456789abcdef";
const BOB: &str = "sk-bob-0123456789abcdef0";

/// A scripted upstream answering every request with `body` (JSON).
async fn fixed(body: Value) -> String {
    scripted(move |_req| {
        let body = body.clone();
        async move {
            http::Response::builder()
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_string()))
                .unwrap()
        }
    })
    .await
}

fn openai_reply(prompt: u64, completion: u64, cached: u64) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion,
                  "prompt_tokens_details": {"cached_tokens": cached}}
    })
}

fn store_yaml(dir: &std::path::Path) -> String {
    format!(
        "store:\n  sqlite: \"{}\"\nrequest_log:\n  flush_interval: 20ms\n  spill_dir: \"{}\"\n\
         admin:\n  key: {ADMIN_KEY}\n",
        dir.join("sy.db").display(),
        dir.join("spill").display()
    )
}

async fn chat_as(gw: &Gateway, key: Option<&str>, tags: Option<&str>, body: &str) -> Resp {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut h: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        h.push(("authorization", a));
    }
    if let Some(t) = tags {
        h.push(("x-switchyard-tags", t));
    }
    send(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &h,
        body.to_owned(),
    )
    .await
}

async fn admin(gw: &Gateway, path: &str) -> Value {
    let r = get(
        &format!("{}{path}", gw.url),
        &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
    )
    .await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

/// The stored records once `n` have reached the store.
async fn records(gw: &Gateway, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let v = admin(gw, "/admin/requests?limit=1000").await;
        let data = v["data"].as_array().unwrap().clone();
        if data.len() >= n {
            return data;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the request log did not reach {n} records");
}

fn header_usd(r: &Resp) -> f64 {
    r.header("x-switchyard-cost-usd")
        .unwrap_or_else(|| panic!("no cost header: {:?}", r.headers))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn cost_of_each_providers_usage_format_by_hand() {
    // OpenAI: 1000 prompt of which 400 cached, 200 out at input 1, cached 0.5, output 4 /M:
    // 600×1 + 400×0.5 + 200×4 = 1600 → $0.0016.
    let oai = fixed(openai_reply(1000, 200, 400)).await;
    // Anthropic: 100 plain in, 1000 cache read, 200 cache write, 50 out at 3 / 0.3 / 3.75 / 15:
    // 300 + 300 + 750 + 750 = 2100 → $0.0021.
    let ant = fixed(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 1000,
                  "cache_creation_input_tokens": 200}
    }))
    .await;
    // Gemini: 2000 prompt of which 500 cached, 100 out + 20 thinking at 1 / 0.25 / 10:
    // 1500 + 125 + 1200 = 2825 → $0.002825.
    let gem = fixed(json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 2000, "candidatesTokenCount": 100,
                          "thoughtsTokenCount": 20, "totalTokenCount": 2120,
                          "cachedContentTokenCount": 500},
        "modelVersion": "gemini-x"
    }))
    .await;
    // Bedrock: 300 plain in, 100 cache read, 50 cache write, 100 out at 2 / 0.2 / 2.5 / 8:
    // 600 + 20 + 125 + 800 = 1545 → $0.001545.
    let bed = fixed(json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 300, "outputTokens": 100, "totalTokens": 550,
                  "cacheReadInputTokens": 100, "cacheWriteInputTokens": 50},
        "metrics": {"latencyMs": 1}
    }))
    .await;
    let dir = temp_dir("budget-cost");
    let yaml = format!(
        r#"
providers:
  oai: {{type: openai, base_url: "{oai}/v1", api_key: k}}
  ant: {{type: anthropic, base_url: "{ant}/v1", api_key: k}}
  gem: {{type: gemini, base_url: "{gem}/v1beta", api_key: k}}
  bed: {{type: bedrock, base_url: "{bed}", region: us-east-1, aws_access_key_id: AKIDEXAMPLE, aws_secret_access_key: secret}}
  free: {{type: openai, base_url: "{oai}/v1", api_key: k}}
models:
  o: {{deployments: [{{provider: oai, model: m1, price: {{input: 1, output: 4, cached_input: 0.5}}}}]}}
  a: {{deployments: [{{provider: ant, model: claude-x, price: {{input: 3, output: 15, cached_input: 0.3, cache_write: 3.75}}}}]}}
  g: {{deployments: [{{provider: gem, model: gemini-x, price: {{input: 1, output: 10, cached_input: 0.25}}}}]}}
  b: {{deployments: [{{provider: bed, model: "amazon.nova-x", price: {{input: 2, output: 8, cached_input: 0.2, cache_write: 2.5}}}}]}}
  u: {{deployments: [{{provider: free, model: no-such-model-anywhere}}]}}
{}"#,
        store_yaml(&dir)
    );
    let gw = Gateway::start(&yaml).await;
    let mut expected = Vec::new();
    for (alias, usd) in [
        ("o", 0.0016),
        ("a", 0.0021),
        ("g", 0.002825),
        ("b", 0.001545),
    ] {
        let r = chat_as(&gw, None, None, &chat_body(alias, "")).await;
        assert_eq!(r.status, 200, "{alias}: {}", r.text());
        assert!(
            (header_usd(&r) - usd).abs() < 1e-12,
            "{alias}: {:?}",
            r.headers
        );
        expected.push((alias, (usd * 1e9_f64).round() as i64));
    }
    // An unpriced deployment: no header, and the record says the cost is unknown.
    let r = chat_as(&gw, None, None, &chat_body("u", "")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("x-switchyard-cost-usd").is_none());
    let recs = records(&gw, 5).await;
    for (alias, nanos) in expected {
        let rec = recs.iter().find(|r| r["alias"] == alias).unwrap();
        assert_eq!(rec["cost_nanos"], nanos, "{rec}");
        assert_eq!(rec["cost_known"], true);
    }
    let unpriced = recs.iter().find(|r| r["alias"] == "u").unwrap();
    assert_eq!(unpriced["cost_known"], false, "{unpriced}");
    assert_eq!(unpriced["cost_usd"], Value::Null);
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn budget_yaml(base: &str, dir: &std::path::Path, budgets: &str) -> String {
    format!(
        r#"
providers:
  up: {{type: openai, base_url: "{base}/v1", api_key: k}}
models:
  big: {{deployments: [{{provider: up, model: big-m, price: {{input: 1, output: 10}}}}]}}
  small: {{deployments: [{{provider: up, model: small-m, price: {{input: 0.1, output: 1}}}}]}}
auth:
  virtual_keys:
    - {{name: alice-key, key: {ALICE}, team: search}}
    - {{name: bob-key, key: {BOB}, team: ads}}
{}budgets:
{budgets}"#,
        store_yaml(dir)
    )
}

#[tokio::test]
async fn hard_stop_names_the_budget_and_survives_a_restart() {
    // Each request: 0 prompt + 100 out at 10/M = $0.001.
    let up = fixed(openai_reply(0, 100, 0)).await;
    let dir = temp_dir("budget-stop");
    let yaml = budget_yaml(
        &up,
        &dir,
        "  limits:\n    - {scope: team:search, limit_usd: 0.003, period: month}\n",
    );
    let body = chat_body("big", r#""max_tokens": 100"#);
    let gw = Gateway::start(&yaml).await;
    for _ in 0..3 {
        let r = chat_as(&gw, Some(ALICE), None, &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = chat_as(&gw, Some(ALICE), None, &body).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let e = r.error();
    assert_eq!(e["code"], "budget_exceeded");
    assert_eq!(e["type"], "insufficient_quota");
    // Calls that skip the full pipeline (a stored resource here) are refused the same way.
    let auth = format!("Bearer {ALICE}");
    let side = get(
        &format!("{}/v1/responses/resp_nope", gw.url),
        &[("authorization", auth.as_str())],
    )
    .await;
    assert_eq!(side.status, 429, "{}", side.text());
    assert_eq!(side.error()["code"], "budget_exceeded");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("month budget of team:search"), "{msg}");
    assert!(!msg.contains(ALICE));
    // Another team is not affected.
    let r = chat_as(&gw, Some(BOB), None, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let st = admin(&gw, "/admin/budgets").await;
    assert_eq!(st["data"][0]["spent_nanos"], 3_000_000, "{st}");
    records(&gw, 5).await;
    gw.shutdown().await;
    // The ledger is in the store: a new gateway still refuses.
    let gw = Gateway::start(&yaml).await;
    let r = chat_as(&gw, Some(ALICE), None, &body).await;
    assert_eq!(r.status, 429, "{}", r.text());
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn soft_cap_downgrades_to_the_cheaper_alias() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s2 = Arc::clone(&seen);
    let up = scripted(move |req: http::Request<axum::body::Body>| {
        let seen = Arc::clone(&s2);
        async move {
            let b = http_body_util::BodyExt::collect(req.into_body())
                .await
                .unwrap()
                .to_bytes();
            let v: Value = serde_json::from_slice(&b).unwrap();
            seen.lock().push(v["model"].as_str().unwrap().to_owned());
            http::Response::builder()
                .header("content-type", "application/json")
                .body(axum::body::Body::from(openai_reply(0, 100, 0).to_string()))
                .unwrap()
        }
    })
    .await;
    let dir = temp_dir("budget-soft");
    let yaml = budget_yaml(
        &up,
        &dir,
        "  limits:\n    - {scope: \"tag:feature=search\", limit_usd: 1, period: day, \
         soft_cap_usd: 0.002, downgrade_to: small}\n",
    );
    let gw = Gateway::start(&yaml).await;
    let body = chat_body("big", r#""max_tokens": 100"#);
    let mut downgraded = Vec::new();
    for _ in 0..4 {
        let r = chat_as(&gw, Some(ALICE), Some("feature=search"), &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        downgraded.push(r.header("x-switchyard-budget-downgrade").map(str::to_owned));
    }
    // $0.001 each on `big`: past $0.002 spent, requests go to `small`.
    assert_eq!(
        downgraded,
        vec![
            None,
            None,
            Some("small".to_owned()),
            Some("small".to_owned())
        ]
    );
    assert_eq!(*seen.lock(), vec!["big-m", "big-m", "small-m", "small-m"]);
    // Untagged requests are not under that budget.
    let r = chat_as(&gw, Some(ALICE), None, &body).await;
    assert!(r.header("x-switchyard-budget-downgrade").is_none());
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A webhook receiver that keeps every alert posted to it: its base URL and the alerts.
async fn alert_hook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let alerts = Arc::new(Mutex::new(Vec::<Value>::new()));
    let a2 = Arc::clone(&alerts);
    let hook = scripted(move |req: http::Request<axum::body::Body>| {
        let alerts = Arc::clone(&a2);
        async move {
            let b = http_body_util::BodyExt::collect(req.into_body())
                .await
                .unwrap()
                .to_bytes();
            alerts.lock().push(serde_json::from_slice(&b).unwrap());
            http::Response::new(axum::body::Body::empty())
        }
    })
    .await;
    (hook, alerts)
}

/// Waits for at least `at_least` alerts, and a moment more for any extra one (which the tests
/// must see to fail); returns them and their thresholds, sorted.
async fn settled_alerts(alerts: &Mutex<Vec<Value>>, at_least: usize) -> (Vec<Value>, Vec<u64>) {
    for _ in 0..200 {
        if alerts.lock().len() >= at_least {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let got = alerts.lock().clone();
    let mut pcts: Vec<u64> = got
        .iter()
        .map(|a| a["budget"]["threshold_pct"].as_u64().unwrap())
        .collect();
    pcts.sort_unstable();
    (got, pcts)
}

#[tokio::test]
async fn each_alert_threshold_fires_once_per_period() {
    let (hook, alerts) = alert_hook().await;
    let up = fixed(openai_reply(0, 100, 0)).await;
    let dir = temp_dir("budget-alert");
    let yaml = budget_yaml(
        &up,
        &dir,
        &format!(
            "  alert_webhook: \"{hook}/hook\"\n  limits:\n    - {{scope: key:bob-key, \
             limit_usd: 0.01, period: week, alerts: [50, 80, 100]}}\n"
        ),
    );
    let gw = Gateway::start(&yaml).await;
    let body = chat_body("big", r#""max_tokens": 100"#);
    // 10 requests of $0.001 reach 50%, 80% and 100%; the 11th is refused.
    for _ in 0..10 {
        let r = chat_as(&gw, Some(BOB), None, &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(chat_as(&gw, Some(BOB), None, &body).await.status, 429);
    let (got, pcts) = settled_alerts(&alerts, 3).await;
    assert_eq!(pcts, vec![50, 80, 100], "{got:?}");
    for a in &got {
        assert_eq!(a["type"], "budget.threshold");
        assert_eq!(a["budget"]["scope"], "key:bob-key");
        assert_eq!(a["budget"]["period"], "week");
        assert!(!a.to_string().contains(BOB));
    }
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn five_hundred_concurrent_requests_cannot_overspend_past_the_bound() {
    // $0.001 a request (100 out at 10/M); the reservation is the prompt estimate at 1/M plus
    // 100 out at 10/M, so at most $0.002 for these short prompts.
    let up = fixed(openai_reply(0, 100, 0)).await;
    let dir = temp_dir("budget-500");
    let limit_nanos: i64 = 25_000_000;
    let yaml = budget_yaml(
        &up,
        &dir,
        "  limits:\n    - {scope: team:search, limit_usd: 0.025, period: day}\n",
    );
    let gw = Gateway::start(&yaml).await;
    let body = chat_body("big", r#""max_tokens": 100"#);
    // Nearly exhausted: $0.020 spent.
    for _ in 0..20 {
        assert_eq!(chat_as(&gw, Some(ALICE), None, &body).await.status, 200);
    }
    let url = gw.url.clone();
    let mut tasks = Vec::new();
    for _ in 0..500 {
        let url = url.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            send(
                Method::POST,
                &format!("{url}/v1/chat/completions"),
                &[("authorization", &format!("Bearer {ALICE}"))],
                body,
            )
            .await
            .status
            .as_u16()
        }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => refused += 1,
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!(ok + refused, 500);
    assert!(ok >= 1 && refused >= 490, "ok {ok}, refused {refused}");
    let st = admin(&gw, "/admin/budgets").await;
    let spent = st["data"][0]["spent_nanos"].as_i64().unwrap();
    assert_eq!(st["data"][0]["reserved_nanos"], 0, "{st}");
    assert_eq!(spent, (20 + ok) * 1_000_000);
    // The documented bound: at most one reservation (< $0.002) over the limit.
    assert!(spent - limit_nanos < 2_000_000, "spent {spent}");
    // Every record's cost is in the ledger, exactly.
    let recs = records(&gw, 520).await;
    let recorded: i64 = recs.iter().filter_map(|r| r["cost_nanos"].as_i64()).sum();
    gw.shutdown().await;
    let store = switchyard_core::store::Store::open(&switchyard_core::store::StoreConfig::Sqlite {
        path: dir.join("sy.db"),
        timeout: std::time::Duration::from_secs(5),
    })
    .await
    .unwrap();
    let rows = store
        .query("SELECT SUM(spent_nanos) FROM budget_ledger".into(), vec![])
        .await
        .unwrap();
    let ledger = rows[0][0].as_i64().unwrap();
    assert_eq!(ledger, recorded);
    assert_eq!(ledger, spent);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn spend_reports_by_team_tag_key_and_day() {
    let up = fixed(openai_reply(0, 100, 0)).await;
    let dir = temp_dir("budget-spend");
    let yaml = budget_yaml(
        &up,
        &dir,
        "  limits:\n    - {scope: team:nobody, limit_usd: 1, period: day}\n",
    );
    let gw = Gateway::start(&yaml).await;
    let big = chat_body("big", r#""max_tokens": 100"#);
    let small = chat_body("small", r#""max_tokens": 100"#);
    // alice/search: 2 × big with feature=search ($0.002), 1 × small untagged ($0.0001);
    // bob/ads: 3 × big with feature=ads ($0.003).
    for _ in 0..2 {
        chat_as(&gw, Some(ALICE), Some("feature=search,env=prod"), &big).await;
    }
    chat_as(&gw, Some(ALICE), None, &small).await;
    for _ in 0..3 {
        chat_as(&gw, Some(BOB), Some("feature=ads"), &big).await;
    }
    records(&gw, 6).await;
    let v = admin(&gw, "/admin/spend?by=team,tag:feature&since=7d").await;
    assert_eq!(v["by"], json!(["team", "tag:feature"]));
    assert_eq!(v["total_cost_nanos"], 5_100_000, "{v}");
    let rows = v["data"].as_array().unwrap();
    let find = |team: &str, f: Value| {
        rows.iter()
            .find(|r| r["team"] == team && r["tag:feature"] == f)
            .unwrap_or_else(|| panic!("no {team}/{f} in {v}"))
            .clone()
    };
    assert_eq!(find("search", json!("search"))["cost_nanos"], 2_000_000);
    assert_eq!(find("search", Value::Null)["cost_nanos"], 100_000);
    assert_eq!(find("ads", json!("ads"))["count"], 3);
    // Key, alias, provider, model and a day bucket.
    let v = admin(&gw, "/admin/spend?by=key,alias,provider,model,day&since=1d").await;
    let rows = v["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{v}");
    assert!(rows
        .iter()
        .all(|r| r["bucket"].is_string() && r["provider"] == "up"));
    let bob = rows.iter().find(|r| r["key"] == "bob-key").unwrap();
    assert_eq!(
        (bob["model"].clone(), bob["cost_usd"].clone()),
        (json!("big-m"), json!(0.003))
    );
    // Bad input names the parameter.
    let r = get(
        &format!("{}/admin/spend?by=tag:", gw.url),
        &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["param"], "by");
    gw.shutdown().await;

    // The CLI reads the same store.
    let cfg = dir.join("cfg.yaml");
    std::fs::write(&cfg, &yaml).unwrap();
    let run = |format: &str| {
        let out = crate::cli::bin()
            .args(["spend", "--config"])
            .arg(&cfg)
            .args([
                "--by",
                "team,tag:feature",
                "--since",
                "7d",
                "--format",
                format,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let j: Value = serde_json::from_str(&run("json")).unwrap();
    assert_eq!(j["total_cost_usd"], json!(0.0051), "{j}");
    let csv = run("csv");
    assert!(csv.starts_with("team,tag:feature,count,"), "{csv}");
    assert!(csv.contains("ads,ads,3,"), "{csv}");
    let table = run("table");
    assert!(
        table.contains("tag:feature") && table.contains("search"),
        "{table}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_stream_without_usage_is_estimated_and_flagged() {
    let mock = mock(switchyard_mock::MockConfig::default()).await;
    let dir = temp_dir("budget-est");
    let yaml = format!(
        "{}{}",
        config_for(&mock).replace(
            "        model: mock-gpt\n",
            "        model: mock-gpt\n        price: {input: 1, output: 10}\n"
        ),
        store_yaml(&dir)
    );
    let gw = Gateway::start(&yaml).await;
    // Without include_usage the provider reports nothing: the gateway estimates.
    let r = chat_as(&gw, None, None, &chat_body("demo", r#""stream":true"#)).await;
    assert_eq!(r.status, 200);
    assert!(r.header("x-switchyard-cost-usd").is_none());
    let streamed: String = sse_data(&r.body)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(!streamed.is_empty());
    // With it, the provider's numbers are used.
    let r = chat_as(
        &gw,
        None,
        Some("mode=reported"),
        &chat_body(
            "demo",
            r#""stream":true,"stream_options":{"include_usage":true}"#,
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    let recs = records(&gw, 2).await;
    let est = recs.iter().find(|r| r["tags"] == json!([])).unwrap();
    assert_eq!(est["usage_estimated"], true, "{est}");
    assert_eq!(est["cost_known"], true, "{est}");
    // The completion estimate follows the streamed text: 4 bytes a token, rounded up.
    let expect = (streamed.len() as u64).div_ceil(4);
    assert_eq!(est["completion_tokens"], expect, "{est}");
    assert!(est["prompt_tokens"].as_u64().unwrap() > 0);
    let rep = recs.iter().find(|r| r["tags"] != json!([])).unwrap();
    assert_eq!(rep["usage_estimated"], false, "{rep}");
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn hedged_requests_settle_their_reservation_once() {
    const SSE: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\
        \"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\
        \"hi\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\
        \"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":0,\
        \"completion_tokens\":100,\"total_tokens\":100}}\n\ndata: [DONE]\n\n";
    let answer = |slow: bool| {
        move |req: http::Request<axum::body::Body>| async move {
            if slow {
                tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            }
            let b = http_body_util::BodyExt::collect(req.into_body())
                .await
                .unwrap()
                .to_bytes();
            let v: Value = serde_json::from_slice(&b).unwrap();
            if v["stream"] == true {
                http::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(axum::body::Body::from(SSE))
                    .unwrap()
            } else {
                http::Response::builder()
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(openai_reply(0, 100, 0).to_string()))
                    .unwrap()
            }
        }
    };
    let slow = scripted(answer(true)).await;
    let fast = scripted(answer(false)).await;
    let dir = temp_dir("budget-hedge");
    let yaml = format!(
        r#"
providers:
  slow: {{type: openai, base_url: "{slow}/v1", api_key: k}}
  fast: {{type: openai, base_url: "{fast}/v1", api_key: k}}
models:
  h:
    deployments:
      - {{provider: slow, model: m, price: {{input: 1, output: 10}}}}
      - {{provider: fast, model: m, price: {{input: 1, output: 10}}}}
    routing: {{strategy: priority}}
    hedge: {{after: 20ms}}
auth:
  virtual_keys:
    - {{name: alice-key, key: {ALICE}, team: search}}
{}budgets:
  limits:
    - {{scope: team:search, limit_usd: 1, period: day}}
"#,
        store_yaml(&dir)
    );
    let gw = Gateway::start(&yaml).await;
    let r = chat_as(
        &gw,
        Some(ALICE),
        None,
        &chat_body("h", r#""max_tokens": 100"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = chat_as(
        &gw,
        Some(ALICE),
        None,
        &chat_body("h", r#""max_tokens": 100,"stream":true"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let recs = records(&gw, 2).await;
    assert!(recs.iter().all(|r| r["provider"] == "fast"), "{recs:?}");
    let st = admin(&gw, "/admin/budgets").await;
    assert_eq!(st["data"][0]["spent_nanos"], 2_000_000, "{st}");
    assert_eq!(st["data"][0]["reserved_nanos"], 0, "{st}");
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A gateway with store keys and no `budgets:` section at all: keys bring their own.
fn keys_yaml(base: &str, dir: &std::path::Path) -> String {
    format!(
        r#"
providers:
  up: {{type: openai, base_url: "{base}/v1", api_key: k}}
models:
  big: {{deployments: [{{provider: up, model: big-m, price: {{input: 1, output: 10}}}}]}}
keys:
  enabled: true
  refresh: 1h
{}"#,
        store_yaml(dir)
    )
}

async fn admin_send(gw: &Gateway, method: Method, path: &str, body: Value) -> Resp {
    send(
        method,
        &format!("{}{path}", gw.url),
        &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
        body.to_string(),
    )
    .await
}

/// The ledger's settled spend of `scope`, once it reaches `want` (writes follow the settle).
async fn ledger_spent(dir: &std::path::Path, scope: &str, want: i64) -> i64 {
    let store = switchyard_core::store::Store::open(&switchyard_core::store::StoreConfig::Sqlite {
        path: dir.join("sy.db"),
        timeout: std::time::Duration::from_secs(5),
    })
    .await
    .unwrap();
    let mut spent = 0;
    for _ in 0..200 {
        let mut p = switchyard_core::store::Params::new(store.dialect());
        let sql = format!(
            "SELECT SUM(spent_nanos) FROM budget_ledger WHERE scope = {}",
            p.push(scope)
        );
        let rows = store.query(sql, p.values).await.unwrap();
        spent = rows[0][0].as_i64().unwrap_or(0);
        if spent == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    spent
}

fn budget_of<'a>(st: &'a Value, scope: &str) -> Option<&'a Value> {
    st["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["scope"] == scope)
}

#[tokio::test]
async fn a_key_budget_set_through_the_admin_api_is_enforced_and_survives_a_restart() {
    // Each request: 100 out at 10/M = $0.001.
    let up = fixed(openai_reply(0, 100, 0)).await;
    let dir = temp_dir("budget-key");
    let yaml = keys_yaml(&up, &dir);
    let body = chat_body("big", r#""max_tokens": 100"#);
    let gw = Gateway::start(&yaml).await;
    // Without a budget section, nothing is budgeted yet.
    assert_eq!(admin(&gw, "/admin/budgets").await["data"], json!([]));
    let created = admin_send(
        &gw,
        Method::POST,
        "/admin/keys",
        json!({"name": "capped", "team": "search", "budget_usd": 0.003, "budget_period": "day"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let created = created.json();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    // `keys.refresh` is an hour: the budget applies because the admin change reloaded the keys.
    for _ in 0..3 {
        let r = chat_as(&gw, Some(&key), None, &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = chat_as(&gw, Some(&key), None, &body).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let e = r.error();
    assert_eq!(e["code"], "budget_exceeded");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("day budget of key:capped (USD 0.003)"),
        "{msg}"
    );
    assert!(!msg.contains(&key) && !msg.contains(&id), "{msg}");
    let st = admin(&gw, "/admin/budgets").await;
    let b = budget_of(&st, "key:capped").unwrap_or_else(|| panic!("{st}"));
    assert_eq!(b["spent_nanos"], 3_000_000, "{st}");
    assert_eq!(b["source"], "key");
    assert_eq!(b["key_id"], id.as_str());
    assert_eq!(b["limit_usd"], 0.003);
    assert!(!st.to_string().contains(&key));

    // Raising the budget lets the key go on at once, with its spend kept.
    let r = admin_send(
        &gw,
        Method::PATCH,
        "/admin/keys/capped",
        json!({"budget_usd": 0.005}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for _ in 0..2 {
        let r = chat_as(&gw, Some(&key), None, &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(chat_as(&gw, Some(&key), None, &body).await.status, 429);
    // Lowering it below the spend stops it.
    let r = admin_send(
        &gw,
        Method::PATCH,
        "/admin/keys/capped",
        json!({"budget_usd": 0.004}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(chat_as(&gw, Some(&key), None, &body).await.status, 429);
    records(&gw, 8).await;
    gw.shutdown().await;
    assert_eq!(
        ledger_spent(&dir, &format!("key-id:{id}"), 5_000_000).await,
        5_000_000
    );

    // A new gateway reads the spend from the ledger: shown before any request, and enforced.
    let gw = Gateway::start(&yaml).await;
    let st = admin(&gw, "/admin/budgets").await;
    let b = budget_of(&st, "key:capped").unwrap_or_else(|| panic!("{st}"));
    assert_eq!(b["spent_nanos"], 5_000_000, "{st}");
    assert_eq!(b["limit_usd"], 0.004);
    let r = chat_as(&gw, Some(&key), None, &body).await;
    assert_eq!(r.status, 429, "{}", r.text());
    // /metrics counts key budgets without naming them.
    let m = get(&format!("{}/metrics", gw.url), &[]).await.text();
    assert!(m.contains("\nswitchyard_key_budgets 1\n"), "{m}");
    assert!(
        m.contains("switchyard_key_budgets_used{ratio=\"1\"} 1"),
        "{m}"
    );
    assert!(!m.contains("capped"), "{m}");
    // Removing the budget lifts the stop; revoking the key removes it from the list.
    let r = admin_send(
        &gw,
        Method::PATCH,
        "/admin/keys/capped",
        json!({"budget_usd": null}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(chat_as(&gw, Some(&key), None, &body).await.status, 200);
    let r = admin_send(
        &gw,
        Method::PATCH,
        "/admin/keys/capped",
        json!({"budget_usd": 1}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(budget_of(&admin(&gw, "/admin/budgets").await, "key:capped").is_some());
    let r = admin_send(&gw, Method::POST, "/admin/keys/capped/revoke", Value::Null).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(admin(&gw, "/admin/budgets").await["data"], json!([]));
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_new_york_day_resets_at_new_york_midnight_and_metrics_show_it() {
    let up = fixed(openai_reply(0, 100, 0)).await;
    let dir = temp_dir("budget-tz");
    let yaml = budget_yaml(
        &up,
        &dir,
        "  time_zone: America/New_York\n  limits:\n    \
         - {scope: team:search, limit_usd: 0.002, period: day}\n",
    );
    let mut budgets = None;
    let gw = Gateway::start_inspecting(&yaml, Default::default(), |p| {
        budgets = p.budgets().cloned();
    })
    .await;
    let budgets = budgets.unwrap();
    // 2024-11-03 is New York's 25-hour day (EDT → EST): it ends at 05:00 UTC on the 4th,
    // an hour after midnight at its morning offset (-04:00).
    let nov4_utc = 1_730_678_400_000_i64; // 2024-11-04T00:00:00Z
    let hour = 3_600_000;
    budgets.set_clock(Some(nov4_utc + 3 * hour));
    let body = chat_body("big", r#""max_tokens": 100"#);
    for _ in 0..2 {
        let r = chat_as(&gw, Some(ALICE), None, &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(chat_as(&gw, Some(ALICE), None, &body).await.status, 429);
    let st = admin(&gw, "/admin/budgets").await;
    assert_eq!(st["data"][0]["time_zone"], "America/New_York", "{st}");
    assert_eq!(
        st["data"][0]["period_start"], "2024-11-03T04:00:00.000Z",
        "{st}"
    );
    assert_eq!(
        st["data"][0]["period_end"], "2024-11-04T05:00:00.000Z",
        "{st}"
    );
    let scrape = || async {
        get(
            &format!("{}/metrics", gw.url),
            &[("authorization", &format!("Bearer {ALICE}"))],
        )
        .await
        .text()
    };
    let m = scrape().await;
    let labels = r#"{budget="team:search",period="day"}"#;
    for (series, want) in [
        ("switchyard_budget_spent_usd", "0.002"),
        ("switchyard_budget_limit_usd", "0.002"),
        ("switchyard_budget_used_ratio", "1"),
        ("switchyard_budget_reserved_usd", "0"),
    ] {
        assert!(
            m.contains(&format!("\n{series}{labels} {want}\n")),
            "{series} != {want} in\n{m}"
        );
    }
    assert!(m.contains("\nswitchyard_key_budgets 0\n"), "{m}");
    // 04:00 UTC would be midnight at a fixed -04:00: still the same New York day.
    budgets.set_clock(Some(nov4_utc + 4 * hour));
    assert_eq!(chat_as(&gw, Some(ALICE), None, &body).await.status, 429);
    budgets.set_clock(Some(nov4_utc + 5 * hour - 1));
    assert_eq!(chat_as(&gw, Some(ALICE), None, &body).await.status, 429);
    // New York midnight: a new day, a new budget.
    budgets.set_clock(Some(nov4_utc + 5 * hour));
    let r = chat_as(&gw, Some(ALICE), None, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = scrape().await;
    assert!(
        m.contains(&format!("\nswitchyard_budget_spent_usd{labels} 0.001\n")),
        "{m}"
    );
    let st = admin(&gw, "/admin/budgets").await;
    assert_eq!(
        st["data"][0]["period_start"], "2024-11-04T05:00:00.000Z",
        "{st}"
    );
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_time_zone_fails_the_check_naming_key_and_line() {
    let dir = temp_dir("budget-badtz");
    let cfg = dir.join("cfg.yaml");
    let yaml = "providers:\n  up: {type: openai, base_url: \"http://127.0.0.1:9/v1\", api_key: k}\n\
                models:\n  m: {deployments: [{provider: up, model: x, price: {input: 1, output: 1}}]}\n\
                budgets:\n  time_zone: Europe/Paris\n  limits:\n    \
                - {scope: team:t, limit_usd: 1, period: day, time_zone: Pacific/Chatham}\n";
    std::fs::write(&cfg, yaml).unwrap();
    let check = || {
        crate::cli::bin()
            .args(["check", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let out = check();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&cfg, yaml.replace("Europe/Paris", "Europe/Atlantis")).unwrap();
    let out = check();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("budgets.time_zone")
            && err.contains("line 6")
            && err.contains("`Europe/Atlantis` is not a time zone"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_key_made_elsewhere_is_budgeted_after_a_refresh_and_alerts_at_key_alerts() {
    let (hook, alerts) = alert_hook().await;
    let up = fixed(openai_reply(0, 100, 0)).await;
    let dir = temp_dir("budget-key-alert");
    let yaml = format!(
        "{}budgets:\n  alert_webhook: \"{hook}/hook\"\n  key_alerts: [50, 100]\n",
        keys_yaml(&up, &dir).replace("refresh: 1h", "refresh: 100ms")
    );
    let gw = Gateway::start(&yaml).await;
    // Another process (the CLI, another replica) creates the key in the shared store.
    let store = switchyard_core::store::Store::open(&switchyard_core::store::StoreConfig::Sqlite {
        path: dir.join("sy.db"),
        timeout: std::time::Duration::from_secs(5),
    })
    .await
    .unwrap();
    let fields: switchyard_core::keys::KeyFields =
        serde_json::from_value(json!({"name": "elsewhere", "budget_usd": 0.002})).unwrap();
    let (rec, key) = switchyard_core::keys::KeyStore::new(store)
        .create(fields)
        .await
        .unwrap();
    let mut listed = None;
    for _ in 0..200 {
        let st = admin(&gw, "/admin/budgets").await;
        if let Some(b) = budget_of(&st, "key:elsewhere") {
            listed = Some(b.clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let listed = listed.expect("the key's budget never appeared");
    assert_eq!(listed["period"], "month");
    let body = chat_body("big", r#""max_tokens": 100"#);
    for _ in 0..2 {
        let r = chat_as(&gw, Some(&key), None, &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(chat_as(&gw, Some(&key), None, &body).await.status, 429);
    let (got, pcts) = settled_alerts(&alerts, 2).await;
    assert_eq!(pcts, vec![50, 100], "{got:?}");
    for a in &got {
        assert_eq!(a["budget"]["scope"], "key:elsewhere");
        assert_eq!(a["budget"]["key_id"], rec.id.as_str());
        assert_eq!(a["budget"]["time_zone"], "UTC");
        assert!(!a.to_string().contains(&key));
    }
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
