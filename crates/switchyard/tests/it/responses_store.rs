//! Stored responses in the gateway's persistent store (issue 8, point 1): a conversation on a
//! translated provider continues with `previous_response_id` after a restart on the same
//! SQLite file, streamed turns included, and stays per tenant.

use http::Method;
use serde_json::{json, Value};

use crate::harness::*;

const KEY_A: &str = "sk-team-a-0123456789";
const KEY_B: &str = "sk-team-b-0123456789";

/// An Anthropic deployment on the mock that echoes what it was sent, with the request log
/// off (the response store opens the store on its own) and an explicit SQLite file.
fn config(base: &str, db: &std::path::Path) -> String {
    format!(
        "providers:\n  claude:\n    type: anthropic\n    base_url: \"{base}/v1\"\n    \
         api_key: ${{UPSTREAM_KEY}}\n    headers:\n      x-mock-knobs: '{{\"echo\":true}}'\n\
         models:\n  smart:\n    deployments:\n      - provider: claude\n        \
         model: claude-sonnet-4-5\n\
         auth:\n  virtual_keys:\n    - name: team-a\n      key: {KEY_A}\n    \
         - name: team-b\n      key: {KEY_B}\n\
         request_log:\n  enabled: false\n\
         store:\n  sqlite: \"{}\"\n",
        db.display()
    )
}

async fn post(gw: &Gateway, key: &str, body: &Value) -> Resp {
    send(
        Method::POST,
        &format!("{}/v1/responses", gw.url),
        &[("authorization", &format!("Bearer {key}"))],
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

async fn get(gw: &Gateway, key: &str, path: &str) -> Resp {
    send(
        Method::GET,
        &format!("{}/v1/responses/{path}", gw.url),
        &[("authorization", &format!("Bearer {key}"))],
        Vec::new(),
    )
    .await
}

/// The text the echoing mock sent back: the upstream request it got.
fn echoed(response: &Value) -> String {
    response["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The id of the response in a Responses stream's `response.completed` event.
fn completed_id(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let event = text
        .split_terminator("\n\n")
        .find(|e| e.contains("event: response.completed"))
        .unwrap_or_else(|| panic!("no response.completed in {text}"));
    let data = event
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    let v: Value = serde_json::from_str(data).unwrap();
    v["response"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_translated_conversation_continues_after_a_restart_on_the_same_sqlite_file() {
    let mock = keyed_mock().await;
    let dir = temp_dir("responses-store");
    let db = dir.join("gateway.db");

    let gw = Gateway::start(&config(&mock, &db)).await;
    // Turn one, streamed: recorded in the background from the stream.
    let one = post(
        &gw,
        KEY_A,
        &json!({"model": "smart", "input": "the first question", "stream": true}),
    )
    .await;
    assert_eq!(one.status, 200, "{}", one.text());
    let one_id = completed_id(&one.body);
    // Continued at once (read your writes), on the same gateway.
    let two = post(
        &gw,
        KEY_A,
        &json!({"model": "smart", "input": "the second question",
                "previous_response_id": one_id}),
    )
    .await;
    assert_eq!(two.status, 200, "{}", two.text());
    let two = two.json();
    let two_id = two["id"].as_str().unwrap().to_owned();
    assert!(echoed(&two).contains("the first question"), "{two}");
    gw.shutdown().await;

    // A new gateway process on the same file.
    let gw = Gateway::start(&config(&mock, &db)).await;
    let three = post(
        &gw,
        KEY_A,
        &json!({"model": "smart", "input": "the third question",
                "previous_response_id": two_id}),
    )
    .await;
    assert_eq!(three.status, 200, "{}", three.text());
    let three = three.json();
    assert_eq!(three["previous_response_id"], two_id.as_str());
    let sent = echoed(&three);
    let order: Vec<usize> = [
        "the first question",
        "the second question",
        "the third question",
    ]
    .iter()
    .map(|q| sent.find(q).unwrap_or_else(|| panic!("{q} not in {sent}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{sent}");

    // Retrieve and input items survive too, for the tenant that made them only.
    let got = get(&gw, KEY_A, &one_id).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["id"], one_id.as_str());
    let items = get(&gw, KEY_A, &format!("{two_id}/input_items")).await;
    assert_eq!(items.status, 200, "{}", items.text());
    assert_eq!(
        items.json()["data"][0]["content"][0]["text"],
        "the second question"
    );
    for path in [one_id.clone(), format!("{two_id}/input_items")] {
        let other = get(&gw, KEY_B, &path).await;
        assert_eq!(other.status, 404, "{path}: {}", other.text());
    }
    let stolen = post(
        &gw,
        KEY_B,
        &json!({"model": "smart", "input": "x", "previous_response_id": two_id}),
    )
    .await;
    assert_eq!(stolen.status, 404, "{}", stolen.text());

    // A delete is durable as well.
    let deleted = send(
        Method::DELETE,
        &format!("{}/v1/responses/{one_id}", gw.url),
        &[("authorization", &format!("Bearer {KEY_A}"))],
        Vec::new(),
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    gw.shutdown().await;
    let gw = Gateway::start(&config(&mock, &db)).await;
    assert_eq!(get(&gw, KEY_A, &one_id).await.status, 404);
    assert_eq!(get(&gw, KEY_A, &two_id).await.status, 200);
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
