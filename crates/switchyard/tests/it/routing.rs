//! Routing policies through the running gateway (issue 5): strategies, rules, sticky splits,
//! classifier routing (heuristic and LLM judge), the route header, `POST /v1/route/explain`,
//! `GET /v1/deployments/stats`, quota-aware draining and config reload (in-process and SIGHUP).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use switchyard_core::config::from_yaml;
use switchyard_core::server::reload::Reloader;
use switchyard_core::Prepared;
use tokio::net::TcpListener;

use crate::cli::{bin, free_port, write_temp, Proc};
use crate::harness::*;

/// `n` plain mocks (no key), each its own provider `p0`, `p1`, ... in the returned YAML.
async fn mocks(n: usize) -> String {
    let mut yaml = String::from("providers:\n");
    for i in 0..n {
        let url = mock(switchyard_mock::MockConfig::default()).await;
        yaml.push_str(&format!(
            "  p{i}:\n    type: openai\n    base_url: \"{url}/v1\"\n"
        ));
    }
    yaml
}

/// A provider entry for a mock whose every answer waits `ms`.
async fn slow_provider(name: &str, ms: u64) -> String {
    // A quota whose window outlasts the test, so the remaining count the stats show cannot
    // reset between the requests and the read (the mock's default window is milliseconds).
    let url = mock(switchyard_mock::MockConfig {
        quota: Some(switchyard_mock::RequestQuota {
            limit: 10_000,
            window: std::time::Duration::from_secs(600),
        }),
        ..Default::default()
    })
    .await;
    format!(
        "  {name}:\n    type: openai\n    base_url: \"{url}/v1\"\n    headers:\n      x-mock-knobs: '{{\"latency_ms\":{ms}}}'\n"
    )
}

/// A gateway with a handle to reload its config.
struct Live {
    url: String,
    reloader: Reloader,
    _stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(yaml: &str) -> Live {
    let cfg = from_yaml(yaml, &HashMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let prepared = Prepared::new(cfg).await.unwrap();
    let reloader = prepared.reloader();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(prepared.serve(listener, async move {
        let _ = rx.await;
    }));
    Live {
        url,
        reloader,
        _stop: tx,
        task,
    }
}

async fn chat(url: &str, model: &str, headers: &[(&str, &str)], extra: &str) -> Resp {
    send(
        Method::POST,
        &format!("{url}/v1/chat/completions"),
        headers,
        chat_body(model, extra),
    )
    .await
}

fn deployment(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("x-switchyard-deployment").unwrap().to_owned()
}

#[tokio::test]
async fn strategies_order_deployments_and_say_so_in_the_route_header() {
    let providers = mocks(3).await;
    let yaml = format!(
        "{providers}models:
  prio:
    deployments:
      - {{provider: p0, model: first, weight: 1}}
      - {{provider: p1, model: second, weight: 50}}
    routing: {{strategy: priority}}
  rr:
    deployments:
      - {{provider: p0, model: a}}
      - {{provider: p1, model: b}}
      - {{provider: p2, model: c}}
    routing: {{strategy: round_robin}}
  cheap:
    deployments:
      - {{provider: p0, model: gpt-4o}}
      - {{provider: p1, model: house, price: {{input: 0.05, output: 0.1}}}}
      - {{provider: p2, model: unpriced}}
    routing: {{strategy: cheapest}}
  idle:
    deployments:
      - {{provider: p0, model: x}}
      - {{provider: p1, model: y}}
    routing: {{strategy: least_inflight}}
"
    );
    let gw = start(&yaml).await;
    for _ in 0..5 {
        let r = chat(&gw.url, "prio", &[], "").await;
        assert_eq!(deployment(&r), "p0/first");
        assert_eq!(r.header("x-switchyard-route"), Some("alias:priority"));
    }
    let mut turns = Vec::new();
    for _ in 0..6 {
        let r = chat(&gw.url, "rr", &[], "").await;
        assert_eq!(r.header("x-switchyard-route"), Some("alias:round_robin"));
        turns.push(deployment(&r));
    }
    assert_eq!(
        turns[..3].iter().collect::<HashSet<_>>().len(),
        3,
        "{turns:?}"
    );
    assert_eq!(turns[..3], turns[3..], "{turns:?}");
    let r = chat(&gw.url, "cheap", &[], "").await;
    assert_eq!(deployment(&r), "p1/house");
    assert_eq!(r.header("x-switchyard-route"), Some("alias:cheapest"));
    // Sequential requests leave nothing in flight: least-in-flight still serves both.
    let r = chat(&gw.url, "idle", &[], "").await;
    assert!(deployment(&r).starts_with('p'));
    assert_eq!(r.header("x-switchyard-route"), Some("alias:least_inflight"));
}

#[tokio::test]
async fn latency_strategy_learns_which_deployment_is_fast() {
    let yaml = format!(
        "providers:\n{}{}models:\n  fast:\n    deployments:\n      - {{provider: slow, model: s}}\n      - {{provider: quick, model: q}}\n    routing: {{strategy: latency}}\n",
        slow_provider("slow", 60).await,
        slow_provider("quick", 0).await,
    );
    let gw = start(&yaml).await;
    // Unmeasured deployments are tried first, so both get measured.
    let mut seen = HashSet::new();
    for _ in 0..4 {
        seen.insert(deployment(&chat(&gw.url, "fast", &[], "").await));
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    for _ in 0..10 {
        let r = chat(&gw.url, "fast", &[], "").await;
        assert_eq!(deployment(&r), "quick/q");
        assert_eq!(r.header("x-switchyard-route"), Some("alias:latency"));
    }
}

#[tokio::test]
async fn scored_routing_respects_constraints_and_refuses_when_none_fit() {
    let providers = mocks(2).await;
    let yaml = format!(
        "{providers}models:
  smart:
    deployments:
      - {{provider: p0, model: gpt-4o, quality: 5}}
      - {{provider: p1, model: gpt-3.5-turbo, quality: 2}}
    routing:
      strategy: scored
      weights: {{cost: 1, latency: 1, errors: 2, quality: 0.2}}
      constraints: {{max_cost: 0.002}}
"
    );
    let gw = start(&yaml).await;
    let r = chat(&gw.url, "smart", &[], "").await;
    assert_eq!(deployment(&r), "p1/gpt-3.5-turbo");
    assert_eq!(r.header("x-switchyard-route"), Some("alias:scored"));
    // gpt-3.5-turbo has no vision and gpt-4o is over the cost cap for 4000 tokens out.
    let image = r#""max_tokens":4000,"messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]"#;
    let body = format!(r#"{{"model":"smart",{image}}}"#);
    let r = send(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        body,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let e = r.error();
    assert_eq!(e["code"], "no_deployment_satisfies_constraints");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("max_cost") && msg.contains("vision"), "{msg}");
}

#[tokio::test]
async fn rules_route_by_key_team_user_tags_headers_and_features() {
    let providers = mocks(3).await;
    let yaml = format!(
        "auth:
  virtual_keys:
    - {{name: lab, key: sk-lab-key-1, team: research}}
    - {{name: app, key: sk-app-key-1}}
{providers}models:
  big:
    deployments: [{{provider: p1, model: big}}]
  chat:
    deployments:
      - {{provider: p0, model: small}}
      - {{provider: p2, model: tooly}}
    routing:
      rules:
        - name: research-gold
          when: {{team: [research], tags: {{tier: gold}}}}
          alias: big
        - name: vip
          when: {{user: [alice]}}
          alias: big
        - name: urgent
          when: {{headers: {{x-priority: high}}, stream: false}}
          alias: big
        - name: tools
          when: {{has_tools: true}}
          deployments: [p2/tooly]
        - name: app-key
          when: {{key: [app], prompt_tokens: {{max: 100}}}}
          deployments: [p0/small]
"
    );
    let gw = start(&yaml).await;
    let lab = ("authorization", "Bearer sk-lab-key-1");
    let app = ("authorization", "Bearer sk-app-key-1");
    let r = chat(
        &gw.url,
        "chat",
        &[lab, ("x-switchyard-tags", "tier=gold")],
        "",
    )
    .await;
    assert_eq!(deployment(&r), "p1/big");
    assert_eq!(
        r.header("x-switchyard-route"),
        Some("rule:research-gold>alias")
    );
    // The same team without the tag does not match.
    let r = chat(
        &gw.url,
        "chat",
        &[lab, ("x-switchyard-tags", "tier=silver")],
        "",
    )
    .await;
    assert_ne!(
        r.header("x-switchyard-route"),
        Some("rule:research-gold>alias")
    );
    // The body's `user` (or the header) names the user.
    let r = chat(&gw.url, "chat", &[app], r#""user":"alice""#).await;
    assert_eq!(r.header("x-switchyard-route"), Some("rule:vip>alias"));
    let r = chat(&gw.url, "chat", &[app, ("x-switchyard-user", "alice")], "").await;
    assert_eq!(r.header("x-switchyard-route"), Some("rule:vip>alias"));
    let r = chat(&gw.url, "chat", &[app, ("x-priority", "high")], "").await;
    assert_eq!(r.header("x-switchyard-route"), Some("rule:urgent>alias"));
    let tools =
        r#""tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#;
    let r = chat(&gw.url, "chat", &[app], tools).await;
    assert_eq!(deployment(&r), "p2/tooly");
    assert_eq!(
        r.header("x-switchyard-route"),
        Some("rule:tools>alias:weighted")
    );
    let r = chat(&gw.url, "chat", &[app], "").await;
    assert_eq!(deployment(&r), "p0/small");
    assert_eq!(
        r.header("x-switchyard-route"),
        Some("rule:app-key>alias:weighted")
    );
    // A malformed tag is a 400 naming it.
    let r = chat(
        &gw.url,
        "chat",
        &[app, ("x-switchyard-tags", "tier=gold!")],
        "",
    )
    .await;
    assert_eq!(r.status, 400);
    let e = r.error();
    assert_eq!(e["param"], "x-switchyard-tags");
    assert!(e["message"].as_str().unwrap().contains("gold!"), "{e}");
}

#[tokio::test]
async fn percentage_split_is_sticky_per_user() {
    let providers = mocks(2).await;
    let yaml = format!(
        "{providers}models:
  old:
    deployments: [{{provider: p0, model: old-model}}]
  new:
    deployments: [{{provider: p1, model: new-model}}]
  chat:
    routing:
      rules:
        - name: migration
          split:
            - {{alias: old, percent: 50}}
            - {{alias: new, percent: 50}}
"
    );
    let gw = start(&yaml).await;
    let mut arms = HashSet::new();
    for i in 0..30 {
        let user = format!("user-{i}");
        let hdr = [("x-switchyard-user", user.as_str())];
        let first = deployment(&chat(&gw.url, "chat", &hdr, "").await);
        for _ in 0..2 {
            assert_eq!(
                deployment(&chat(&gw.url, "chat", &hdr, "").await),
                first,
                "{user}"
            );
        }
        let r = chat(&gw.url, "chat", &hdr, "").await;
        let route = r.header("x-switchyard-route").unwrap();
        assert!(route.starts_with("split:migration="), "{route}");
        arms.insert(first);
    }
    assert_eq!(arms.len(), 2, "both arms serve someone: {arms:?}");
}

#[tokio::test]
async fn heuristic_classifier_sends_prompts_by_label() {
    let providers = mocks(3).await;
    let yaml = format!(
        "{providers}models:
  cheap:
    deployments: [{{provider: p0, model: small}}]
  smart:
    deployments: [{{provider: p1, model: large}}]
  coder:
    deployments: [{{provider: p2, model: code}}]
  auto:
    routing:
      classifier:
        labels: {{simple: cheap, complex: smart, code: coder}}
        default: complex
"
    );
    let gw = start(&yaml).await;
    let ask = |text: &str| {
        json!({"model":"auto","messages":[{"role":"user","content":text}]}).to_string()
    };
    let url = format!("{}/v1/chat/completions", gw.url);
    let r = send(Method::POST, &url, &[], ask("What's the capital of Peru?")).await;
    assert_eq!(deployment(&r), "p0/small");
    assert_eq!(
        r.header("x-switchyard-route"),
        Some("classifier:simple/heuristic>alias")
    );
    let r = send(
        Method::POST,
        &url,
        &[],
        ask(
            "Why does this Rust code not compile?\n```rust\nfn main() { let x: i32 = \"a\"; }\n```",
        ),
    )
    .await;
    assert_eq!(deployment(&r), "p2/code");
    assert_eq!(
        r.header("x-switchyard-route"),
        Some("classifier:code/heuristic>alias")
    );
    let r = send(
        Method::POST,
        &url,
        &[],
        ask("Compare two pricing strategies for a subscription product and explain why one would retain customers better, step by step, with the trade-offs."),
    )
    .await;
    assert_eq!(deployment(&r), "p1/large");
    // The response names the client's model.
    assert_eq!(r.json()["model"], "auto");
}

/// A judge model: answers `code` for prompts mentioning rust, waits 3 s for prompts saying
/// "slow", `simple` otherwise; counts its calls.
async fn judge(calls: Arc<AtomicUsize>) -> String {
    scripted(move |req: Request<Body>| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let v: Value = serde_json::from_slice(&body).unwrap();
            let prompt = v["messages"][1]["content"].as_str().unwrap_or("").to_owned();
            assert_eq!(v["max_tokens"], 4);
            if prompt.contains("slow") {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            let label = if prompt.contains("rust") { "Code" } else { "simple" };
            let answer = json!({
                "id": "chatcmpl-judge", "object": "chat.completion", "created": 1,
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": label}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 120, "completion_tokens": 1, "total_tokens": 121},
            });
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(answer.to_string()))
                .unwrap()
        }
    })
    .await
}

#[tokio::test]
async fn judge_classifier_labels_through_the_gateway_with_cache_timeout_and_default() {
    let calls = Arc::new(AtomicUsize::new(0));
    let judge_url = judge(Arc::clone(&calls)).await;
    let providers = mocks(2).await;
    let yaml = format!(
        "{providers}  judge:\n    type: openai\n    base_url: \"{judge_url}/v1\"\nmodels:
  judge-model:
    deployments: [{{provider: judge, model: gpt-4o-mini}}]
  cheap:
    deployments: [{{provider: p0, model: small}}]
  coder:
    deployments: [{{provider: p1, model: code}}]
  auto:
    routing:
      classifier:
        labels: {{simple: cheap, code: coder}}
        default: code
        judge: {{model: judge-model, timeout: 300ms, cache_size: 16}}
"
    );
    let gw = start(&yaml).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let ask = |text: &str| {
        json!({"model":"auto","messages":[{"role":"user","content":text}]}).to_string()
    };
    let r = send(Method::POST, &url, &[], ask("help me with rust lifetimes")).await;
    assert_eq!(deployment(&r), "p1/code");
    assert_eq!(
        r.header("x-switchyard-route"),
        Some("classifier:code/judge>alias")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The same prompt again: answered from the cache, no second judge call.
    let r = send(Method::POST, &url, &[], ask("help me with rust lifetimes")).await;
    assert_eq!(
        r.header("x-switchyard-route"),
        Some("classifier:code/cache>alias")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let r = send(Method::POST, &url, &[], ask("hello there")).await;
    assert_eq!(deployment(&r), "p0/small");
    assert_eq!(
        r.header("x-switchyard-route"),
        Some("classifier:simple/judge>alias")
    );
    // A judge slower than its timeout: the default label, and the request is not held up.
    let r = send(Method::POST, &url, &[], ask("a slow one")).await;
    assert_eq!(deployment(&r), "p1/code");
    assert_eq!(
        r.header("x-switchyard-route"),
        Some("classifier:code/default>alias")
    );
    // The judge's own calls are requests like any other in /metrics (and the request log):
    // two answered, one abandoned at the timeout.
    let judged = r#"alias="judge-model",provider="judge",model="gpt-4o-mini""#;
    let mut text = String::new();
    for _ in 0..50 {
        text = get(&format!("{}/metrics", gw.url), &[]).await.text();
        if text.contains(&format!("{{{judged},outcome=\"client_cancelled\"}} 1")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for (outcome, n) in [("completed", 2), ("client_cancelled", 1)] {
        let line = format!("switchyard_requests_total{{{judged},outcome=\"{outcome}\"}} {n}");
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
}

#[tokio::test]
async fn explain_is_a_dry_run_listing_candidates_scores_and_constraints() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let upstream = scripted(move |_req: Request<Body>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Response::builder().status(500).body(Body::empty()).unwrap() }
    })
    .await;
    let yaml = format!(
        "providers:
  up:
    type: openai
    base_url: \"{upstream}/v1\"
models:
  smart:
    deployments:
      - {{provider: up, model: gpt-4o}}
      - {{provider: up, model: gpt-4o-mini}}
      - {{provider: up, model: gpt-3.5-turbo}}
    routing:
      strategy: scored
      constraints: {{max_cost: 0.001}}
      rules:
        - name: vip
          when: {{user: [alice]}}
          deployments: [up/gpt-4o]
"
    );
    let gw = start(&yaml).await;
    let url = format!("{}/v1/route/explain", gw.url);
    let r = post(&url, &chat_body("smart", r#""max_tokens":100"#)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["strategy"], "scored");
    assert_eq!(v["route"], "alias:scored");
    let cands = v["candidates"].as_array().unwrap();
    assert_eq!(cands.len(), 3);
    let by = |m: &str| cands.iter().find(|c| c["model"] == m).unwrap().clone();
    let big = by("gpt-4o");
    assert_eq!(big["eligible"], false);
    let failed: Vec<&Value> = big["constraints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["name"], "max_cost");
    assert!(failed[0]["detail"].as_str().unwrap().contains("over"));
    let mini = by("gpt-4o-mini");
    assert_eq!(mini["eligible"], true);
    assert!(mini["score"]["total"].is_number());
    assert!(mini["estimated_cost_usd"].as_f64().unwrap() > 0.0);
    assert!(mini["price"]["source"]
        .as_str()
        .unwrap()
        .contains("openai.com"));
    let chosen = v["decision"]["deployment"].as_str().unwrap();
    assert!(cands
        .iter()
        .any(|c| c["chosen"] == true && c["deployment"] == chosen));
    assert_eq!(v["decision"]["order"].as_array().unwrap().len(), 2);
    assert_eq!(v["request"]["max_tokens"], 100);
    // A rule narrowing to a violator: nothing is left, and explain says why.
    let r = post(&url, &chat_body("smart", r#""user":"alice""#)).await;
    let v = r.json();
    assert_eq!(v["rule"], "rule:vip");
    assert_eq!(v["decision"]["deployment"], Value::Null);
    assert!(v["decision"]["refused"]
        .as_str()
        .unwrap()
        .contains("max_cost"));
    // No upstream call was made.
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // Bad input gets OpenAI-shaped errors.
    let r = post(&url, "{nope").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["code"], "invalid_json");
    let r = post(&url, r#"{"model":"smart","messages":[]}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["param"], "messages");
    let r = post(&url, &chat_body("nope", "")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error()["code"], "model_not_found");
}

#[tokio::test]
async fn quota_aware_routing_drains_a_deployment_without_a_single_429() {
    let limited = mock(switchyard_mock::MockConfig {
        quota: Some(switchyard_mock::RequestQuota {
            limit: 5,
            window: Duration::from_secs(600),
        }),
        ..Default::default()
    })
    .await;
    let spare = mock(switchyard_mock::MockConfig::default()).await;
    let yaml = format!(
        "providers:
  limited:
    type: openai
    base_url: \"{limited}/v1\"
  spare:
    type: openai
    base_url: \"{spare}/v1\"
models:
  chat:
    deployments:
      - {{provider: limited, model: m}}
      - {{provider: spare, model: m, weight: 0}}
    routing: {{strategy: quota}}
resilience:
  max_attempts: 1
"
    );
    let gw = start(&yaml).await;
    let mut served: HashMap<String, usize> = HashMap::new();
    for _ in 0..20 {
        let r = chat(&gw.url, "chat", &[], "").await;
        assert_eq!(r.status, 200, "a client saw {}: {}", r.status, r.text());
        assert_eq!(
            r.header("x-switchyard-attempts"),
            Some("1"),
            "no retry was needed"
        );
        *served.entry(deployment(&r)).or_default() += 1;
    }
    assert_eq!(served["limited/m"], 5, "{served:?}");
    assert_eq!(served["spare/m"], 15, "{served:?}");
    // The limited deployment was used to its last request, and never rate limited.
    let direct = post(
        &format!("{limited}/v1/chat/completions"),
        &chat_body("m", ""),
    )
    .await;
    assert_eq!(direct.status, 429);
    let stats = get(&format!("{}/v1/deployments/stats", gw.url), &[])
        .await
        .json();
    let row = stats["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["deployment"] == "limited/m")
        .unwrap()
        .clone();
    assert_eq!(row["stats"]["failures"], 0, "{row}");
    assert_eq!(row["stats"]["requests"], 5, "{row}");
    assert_eq!(row["stats"]["quota"]["remaining_requests"], 0, "{row}");
    assert_eq!(row["stats"]["quota"]["limit_requests"], 5, "{row}");
    assert_eq!(row["stats"]["quota_low"], true, "{row}");
}

#[tokio::test]
async fn stats_endpoint_reports_live_figures_fed_by_every_request() {
    let plain = mock(switchyard_mock::MockConfig::default()).await;
    let yaml = format!(
        "providers:\n{}{}  plain:\n    type: openai\n    base_url: \"{plain}/v1\"\nmodels:\n  a:\n    deployments:\n      - {{provider: s, model: slowish}}\n      - {{provider: f, model: gpt-4o-mini}}\n    routing: {{strategy: round_robin}}\n  st:\n    deployments: [{{provider: plain, model: streamer}}]\n",
        slow_provider("s", 80).await,
        slow_provider("f", 0).await,
    );
    let gw = start(&yaml).await;
    for _ in 0..6 {
        chat(&gw.url, "a", &[], "").await;
    }
    // A stream holds its deployment "in flight" until it ends.
    let resp = open(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        chat_body(
            "st",
            r#""stream":true,"mock":{"words":6,"chunk_delay_ms":150}"#,
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v = get(&format!("{}/v1/deployments/stats", gw.url), &[])
        .await
        .json();
    let rows = v["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let in_flight: u64 = rows
        .iter()
        .map(|r| r["stats"]["in_flight"].as_u64().unwrap())
        .sum();
    assert_eq!(in_flight, 1, "{v}");
    let slow = rows.iter().find(|r| r["provider"] == "s").unwrap();
    let fast = rows.iter().find(|r| r["provider"] == "f").unwrap();
    assert_eq!(slow["stats"]["requests"], 3, "{slow}");
    assert_eq!(fast["stats"]["requests"], 3, "{fast}");
    assert!(
        slow["stats"]["latency_ms"].as_f64().unwrap() >= 75.0,
        "{slow}"
    );
    assert!(
        fast["stats"]["latency_ms"].as_f64().unwrap()
            < slow["stats"]["latency_ms"].as_f64().unwrap()
    );
    assert!(slow["stats"]["ttft_ms"].is_number());
    assert_eq!(slow["stats"]["error_rate"], 0.0);
    assert_eq!(slow["stats"]["breaker"], "closed");
    assert!(
        slow["stats"]["quota"]["remaining_requests"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(fast["price"]["input"].is_number());
    assert_eq!(
        slow["price"],
        Value::Null,
        "unknown price is shown as unknown"
    );
    let (_, err) = frames(&mut resp.into_body()).await;
    assert!(err.is_none());
    // The gateway lets go of the stream just after the client read its end.
    let mut in_flight = u64::MAX;
    for _ in 0..100 {
        let v = get(&format!("{}/v1/deployments/stats", gw.url), &[])
            .await
            .json();
        in_flight = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["stats"]["in_flight"].as_u64().unwrap())
            .sum();
        if in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(in_flight, 0);
}

#[tokio::test]
async fn reload_swaps_routes_keeps_in_flight_streams_and_rejects_bad_configs() {
    let providers = mocks(2).await;
    let first = format!(
        "{providers}models:\n  chat:\n    deployments: [{{provider: p0, model: before}}]\n"
    );
    let gw = start(&first).await;
    assert_eq!(
        deployment(&chat(&gw.url, "chat", &[], "").await),
        "p0/before"
    );
    // A stream started before the reload ends on the old route.
    let resp = open(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        chat_body(
            "chat",
            r#""stream":true,"mock":{"words":5,"chunk_delay_ms":60}"#,
        ),
    )
    .await;
    assert_eq!(resp.headers()["x-switchyard-deployment"], "p0/before");
    let second = format!(
        "{providers}models:\n  chat:\n    deployments: [{{provider: p1, model: after}}]\n  extra:\n    deployments: [{{provider: p0, model: more}}]\n"
    );
    let generation = gw
        .reloader
        .reload(from_yaml(&second, &HashMap::new()).unwrap())
        .unwrap();
    assert_eq!(generation, 1);
    assert_eq!(
        deployment(&chat(&gw.url, "chat", &[], "").await),
        "p1/after"
    );
    assert_eq!(
        deployment(&chat(&gw.url, "extra", &[], "").await),
        "p0/more"
    );
    let (frames, err) = frames(&mut resp.into_body()).await;
    assert!(err.is_none());
    assert!(String::from_utf8_lossy(&concat(&frames)).ends_with("data: [DONE]\n\n"));
    // A file that fails validation changes nothing.
    let bad = write_temp(
        "bad.yaml",
        "models:\n  chat:\n    deployments: [{provider: nope, model: x}]\n",
    );
    let e = gw
        .reloader
        .reload_file(bad.to_str().unwrap(), &HashMap::<String, String>::new())
        .unwrap_err();
    assert!(e.contains("unknown provider `nope`"), "{e}");
    assert_eq!(gw.reloader.generation(), 1);
    assert_eq!(
        deployment(&chat(&gw.url, "chat", &[], "").await),
        "p1/after"
    );
    let models = get(&format!("{}/v1/models", gw.url), &[]).await.json();
    assert_eq!(models["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn sighup_reloads_the_config_file_and_a_bad_file_keeps_the_old_one() {
    let mock_url = keyed_mock().await;
    let port = free_port();
    let with = |model: &str| {
        format!(
            "{}server:\n  listen: \"127.0.0.1:{port}\"\n",
            config_for(&mock_url).replace("mock-gpt", model)
        )
    };
    let path = write_temp("hup.yaml", &with("first-model"));
    let mut cmd = bin();
    cmd.args(["serve", "--config"])
        .arg(&path)
        .env("UPSTREAM_KEY", UPSTREAM_KEY);
    let gw = Proc::spawn(cmd, port).await;
    let model_of = |r: &Resp| r.header("x-switchyard-model").map(str::to_owned);
    let r = chat(&gw.url, "demo", &[], "").await;
    assert_eq!(model_of(&r).as_deref(), Some("first-model"));
    std::fs::write(&path, with("second-model")).unwrap();
    gw.signal("HUP");
    let mut switched = false;
    for _ in 0..100 {
        let r = chat(&gw.url, "demo", &[], "").await;
        assert_eq!(r.status, 200, "served throughout the reload");
        if model_of(&r).as_deref() == Some("second-model") {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(switched, "SIGHUP did not reload the config");
    std::fs::write(&path, "models: [not a map").unwrap();
    gw.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = chat(&gw.url, "demo", &[], "").await;
    assert_eq!(model_of(&r).as_deref(), Some("second-model"));
    let logged = gw.lines.lock().join("\n");
    assert!(logged.contains("config reload failed"), "{logged}");
}
