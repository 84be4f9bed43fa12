//! Stored chat completions (issue 8, point 4): a chat completion created with `store: true`
//! through the gateway is listed, read, updated, deleted and its messages listed through the
//! gateway, at the deployment that made it and for the tenant (the key's team, else the key)
//! that made it only; unknown ids and translated completions get clear errors; every call is
//! authenticated, rate limited and in the request log; the official SDK drives all of it.

use std::process::Command;

use http::Method;
use serde_json::{json, Value};

use crate::harness::*;

const ADMIN_KEY: &str = "admin-key-for-stored-chat-0123";
/// Two keys of team `alpha`, one of team `beta`, one without a team.
const ALICE: &str = "sk-alice-0123456789";
const ALICE2: &str = "sk-alice-two-0123456789";
const BOB: &str = "sk-bob-0123456789";
const SOLO: &str = "sk-solo-0123456789";

/// OpenAI-type aliases `demo` and `other` and an Anthropic one, `smart`, on the keyed mock;
/// the request log on (in `db`'s directory) with the admin API; `extra` appended.
fn config(mock: &str, db: &std::path::Path, extra: &str) -> String {
    format!(
        "providers:\n  oai:\n    type: openai\n    base_url: \"{mock}/v1\"\n    \
         api_key: ${{UPSTREAM_KEY}}\n  claude:\n    type: anthropic\n    \
         base_url: \"{mock}/v1\"\n    api_key: ${{UPSTREAM_KEY}}\n\
         models:\n  demo:\n    deployments:\n      - provider: oai\n        model: mock-gpt\n  \
         other:\n    deployments:\n      - provider: oai\n        model: mock-gpt-2\n  \
         smart:\n    deployments:\n      - provider: claude\n        model: claude-sonnet-4-5\n\
         auth:\n  master_key: {}\n  virtual_keys:\n    \
         - {{name: alice, key: {ALICE}, team: alpha}}\n    \
         - {{name: alice2, key: {ALICE2}, team: alpha}}\n    \
         - {{name: bob, key: {BOB}, team: beta}}\n    \
         - {{name: solo, key: {SOLO}}}\n\
         store:\n  sqlite: \"{}\"\n\
         request_log:\n  flush_interval: 20ms\n  spill_dir: \"{}\"\n\
         admin:\n  key: {ADMIN_KEY}\n{extra}",
        crate::sdk::KEY,
        db.display(),
        db.with_extension("spill").display(),
    )
}

async fn start(extra: &str) -> (String, Gateway, std::path::PathBuf) {
    let mock = keyed_mock().await;
    let dir = temp_dir("stored-chat");
    let gw = Gateway::start(&config(&mock, &dir.join("sy.db"), extra)).await;
    (mock, gw, dir)
}

async fn call(gw: &Gateway, key: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
    let body = body
        .map(|b| serde_json::to_vec(&b).unwrap())
        .unwrap_or_default();
    send(
        method,
        &format!("{}{path}", gw.url),
        &[("authorization", &format!("Bearer {key}"))],
        body,
    )
    .await
}

/// A `GET` of `path` as `key`.
async fn get_as(gw: &Gateway, key: &str, path: &str) -> Resp {
    call(gw, key, Method::GET, path, None).await
}

async fn create(gw: &Gateway, key: &str, body: Value) -> Value {
    let r = call(gw, key, Method::POST, "/v1/chat/completions", Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn stored(model: &str, extra: Value) -> Value {
    let mut body = json!({
        "model": model,
        "store": true,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is a switchyard?"}
        ]
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The id of a streamed completion, from its first chunk.
fn stream_id(body: &[u8]) -> String {
    let first = sse_data(body).into_iter().next().unwrap();
    let v: Value = serde_json::from_str(&first).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_stored_completion_is_listed_read_updated_and_deleted_through_the_gateway() {
    let (_mock, gw, dir) = start("").await;
    let first = create(
        &gw,
        ALICE,
        stored("demo", json!({"metadata": {"env": "prod"}})),
    )
    .await;
    let first_id = first["id"].as_str().unwrap().to_owned();
    // Read at once (the record is not waiting for any flush), with the client's model name.
    let got = get_as(&gw, ALICE, &format!("/v1/chat/completions/{first_id}")).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.header("x-switchyard-provider"), Some("oai"));
    let got = got.json();
    assert_eq!(got["id"], first_id.as_str());
    assert_eq!(got["object"], "chat.completion");
    assert_eq!(got["model"], "demo");
    assert_eq!(got["choices"], first["choices"]);
    assert_eq!(got["metadata"], json!({"env": "prod"}));

    // A streamed one, on another alias, is listed as soon as its stream has been read.
    let streamed = call(
        &gw,
        ALICE,
        Method::POST,
        "/v1/chat/completions",
        Some(stored("other", json!({"stream": true}))),
    )
    .await;
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    let second_id = stream_id(&streamed.body);
    let list = get_as(&gw, ALICE, "/v1/chat/completions").await;
    assert_eq!(list.status, 200, "{}", list.text());
    let list = list.json();
    assert_eq!(list["object"], "list");
    assert_eq!(ids(&list), [first_id.as_str(), second_id.as_str()]);
    assert_eq!(list["first_id"], first_id.as_str());
    assert_eq!(list["last_id"], second_id.as_str());
    assert_eq!(list["has_more"], false);
    assert_eq!(list["data"][1]["model"], "other");

    // Filters and paging.
    let by_model = get_as(&gw, ALICE, "/v1/chat/completions?model=other").await;
    assert_eq!(ids(&by_model.json()), [second_id.as_str()]);
    let page = get_as(&gw, ALICE, "/v1/chat/completions?limit=1&order=desc")
        .await
        .json();
    assert_eq!(ids(&page), [second_id.as_str()]);
    assert_eq!(page["has_more"], true);
    let rest = get_as(
        &gw,
        ALICE,
        &format!("/v1/chat/completions?limit=1&order=desc&after={second_id}"),
    )
    .await
    .json();
    assert_eq!(ids(&rest), [first_id.as_str()]);
    assert_eq!(rest["has_more"], false);

    // Update: the metadata, which the list then filters on.
    let path = format!("/v1/chat/completions/{second_id}");
    let updated = call(
        &gw,
        ALICE,
        Method::POST,
        &path,
        Some(json!({"metadata": {"env": "prod", "run": "7"}})),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.json()["metadata"]["run"], "7");
    assert_eq!(updated.json()["model"], "other");
    let prod = get_as(&gw, ALICE, "/v1/chat/completions?metadata%5Benv%5D=prod")
        .await
        .json();
    assert_eq!(ids(&prod), [first_id.as_str(), second_id.as_str()]);
    let run7 = get_as(
        &gw,
        ALICE,
        "/v1/chat/completions?metadata[env]=prod&metadata[run]=7",
    )
    .await
    .json();
    assert_eq!(ids(&run7), [second_id.as_str()]);

    // Messages: the request's, forwarded with the query.
    let messages = get_as(&gw, ALICE, &format!("{path}/messages?limit=1")).await;
    assert_eq!(messages.status, 200, "{}", messages.text());
    let messages = messages.json();
    assert_eq!(messages["data"][0]["id"], format!("{second_id}-0").as_str());
    assert_eq!(messages["data"][0]["content"], "Be brief.");
    assert_eq!(messages["has_more"], true);

    // Delete: the upstream's receipt, then gone for the gateway too.
    let deleted = call(&gw, ALICE, Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(
        deleted.json(),
        json!({"object": "chat.completion.deleted", "id": second_id, "deleted": true})
    );
    let gone = get_as(&gw, ALICE, &path).await;
    assert_eq!(gone.status, 404, "{}", gone.text());
    let list = get_as(&gw, ALICE, "/v1/chat/completions").await.json();
    assert_eq!(ids(&list), [first_id.as_str()]);
    // A cursor naming the deleted completion still pages on.
    let after_deleted = get_as(
        &gw,
        ALICE,
        &format!("/v1/chat/completions?order=desc&after={second_id}"),
    )
    .await;
    assert_eq!(after_deleted.status, 200, "{}", after_deleted.text());
    assert_eq!(ids(&after_deleted.json()), [first_id]);
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn another_team_cannot_see_list_update_or_delete_a_completion_and_the_same_team_can() {
    let (_mock, gw, dir) = start("").await;
    let made = create(
        &gw,
        ALICE,
        stored("demo", json!({"metadata": {"who": "alice"}})),
    )
    .await;
    let id = made["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/chat/completions/{id}");
    let never = "/v1/chat/completions/chatcmpl-never-made-here";
    for key in [BOB, SOLO] {
        for (method, tail, body) in [
            (Method::GET, "", None),
            (
                Method::POST,
                "",
                Some(json!({"metadata": {"who": "mallory"}})),
            ),
            (Method::DELETE, "", None),
            (Method::GET, "/messages", None),
        ] {
            let p = format!("{path}{tail}");
            let r = call(&gw, key, method.clone(), &p, body.clone()).await;
            assert_eq!(r.status, 404, "{method} {p}: {}", r.text());
            // Exactly what an id that never existed gets: nothing says it exists.
            let n = call(&gw, key, method.clone(), &format!("{never}{tail}"), body).await;
            assert_eq!(n.status, 404, "{method} {never}{tail}: {}", n.text());
            let (e, ne) = (r.error(), n.error());
            assert_eq!(e["type"], ne["type"]);
            assert_eq!(e["code"], ne["code"]);
            assert_eq!(
                e["message"],
                format!("Chat completion with id '{id}' not found.").as_str()
            );
        }
        let list = get_as(&gw, key, "/v1/chat/completions").await;
        assert_eq!(list.status, 200, "{}", list.text());
        assert!(ids(&list.json()).is_empty());
        // Nor can its cursor be used to probe.
        let probe = get_as(&gw, key, &format!("/v1/chat/completions?after={id}")).await;
        assert_eq!(probe.status, 400, "{}", probe.text());
        assert_eq!(probe.error()["param"], "after");
    }
    // The completion is untouched, and another key of the same team shares it.
    let got = get_as(&gw, ALICE2, &path).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["metadata"], json!({"who": "alice"}));
    assert_eq!(
        ids(&get_as(&gw, ALICE2, "/v1/chat/completions").await.json()),
        [id.as_str()]
    );
    // A key without a team is a tenant of its own.
    let solo = create(&gw, SOLO, stored("demo", json!({}))).await;
    let solo_id = solo["id"].as_str().unwrap();
    assert_eq!(
        ids(&get_as(&gw, SOLO, "/v1/chat/completions").await.json()),
        [solo_id]
    );
    assert_eq!(
        ids(&get_as(&gw, ALICE, "/v1/chat/completions").await.json()),
        [id]
    );
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn unknown_unstored_and_translated_completions_get_clear_errors() {
    let (_mock, gw, dir) = start("").await;
    // Never made, or made without `store: true`: 404 in OpenAI's shape.
    let unstored = create(
        &gw,
        ALICE,
        json!({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    for id in [
        "chatcmpl-unknown".to_owned(),
        unstored["id"].as_str().unwrap().to_owned(),
        "has%20space".to_owned(),
    ] {
        let r = get_as(&gw, ALICE, &format!("/v1/chat/completions/{id}")).await;
        assert_eq!(r.status, 404, "{id}: {}", r.text());
        assert_eq!(r.error()["type"], "invalid_request_error");
    }
    // Made by the Anthropic deployment: a 400 naming it, for every endpoint; not listed.
    let translated = create(&gw, ALICE, stored("smart", json!({}))).await;
    let id = translated["id"].as_str().unwrap();
    let path = format!("/v1/chat/completions/{id}");
    for (method, p, body) in [
        (Method::GET, path.clone(), None),
        (Method::POST, path.clone(), Some(json!({"metadata": {}}))),
        (Method::DELETE, path.clone(), None),
        (Method::GET, format!("{path}/messages"), None),
    ] {
        let r = call(&gw, ALICE, method.clone(), &p, body).await;
        assert_eq!(r.status, 400, "{method} {p}: {}", r.text());
        let e = r.error();
        let message = e["message"].as_str().unwrap();
        assert!(message.contains("claude/claude-sonnet-4-5"), "{message}");
        assert!(
            message.contains("does not keep chat completions"),
            "{message}"
        );
    }
    let list = get_as(&gw, ALICE, "/v1/chat/completions").await;
    assert!(ids(&list.json()).is_empty());
    // Bad input: the API's own 400s naming the parameter.
    let made = create(&gw, ALICE, stored("demo", json!({}))).await;
    let path = format!("/v1/chat/completions/{}", made["id"].as_str().unwrap());
    for (method, p, body, param) in [
        (
            Method::POST,
            path.clone(),
            Some(json!({"metadata": {"n": 1}})),
            "metadata",
        ),
        (
            Method::POST,
            path.clone(),
            Some(json!({"other": true})),
            "metadata",
        ),
        (
            Method::GET,
            "/v1/chat/completions?limit=0".to_owned(),
            None,
            "limit",
        ),
        (
            Method::GET,
            "/v1/chat/completions?order=up".to_owned(),
            None,
            "order",
        ),
    ] {
        let r = call(&gw, ALICE, method, &p, body).await;
        assert_eq!(r.status, 400, "{p}: {}", r.text());
        assert_eq!(r.error()["param"], param, "{p}");
    }
    // Without a key, as for every endpoint.
    let r = send(Method::GET, &format!("{}{path}", gw.url), &[], Vec::new()).await;
    assert_eq!(r.status, 401);
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn every_call_is_in_the_request_log_and_admitted_by_the_rate_limits() {
    // Team beta may make one request a minute (burst 1): its create is the one.
    let (_mock, gw, dir) = start("limits:\n  teams:\n    beta: {rpm: 1}\n").await;
    let made = create(&gw, ALICE, stored("demo", json!({}))).await;
    let id = made["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/chat/completions/{id}");
    let got = get_as(&gw, ALICE, &path).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let listed = get_as(&gw, ALICE2, "/v1/chat/completions").await;
    assert_eq!(listed.status, 200);
    let bobs = create(&gw, BOB, stored("demo", json!({}))).await;
    let bobs = format!("/v1/chat/completions/{}", bobs["id"].as_str().unwrap());
    // Limited before anything is looked up: its own completion and another team's alike.
    for p in [&bobs, &path] {
        let limited = get_as(&gw, BOB, p).await;
        assert_eq!(limited.status, 429, "{}", limited.text());
        assert_eq!(limited.header("x-ratelimit-limit-requests"), Some("1"));
        assert_eq!(limited.error()["code"], "rate_limit_exceeded");
    }
    let listed = get_as(&gw, BOB, "/v1/chat/completions").await;
    assert_eq!(listed.status, 429, "{}", listed.text());

    // `/metrics` counts them with the completion's alias and deployment: two creates and the
    // read.
    let metrics = get(
        &format!("{}/metrics", gw.url),
        &[("authorization", &format!("Bearer {}", crate::sdk::KEY))],
    )
    .await;
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    let series = r#"switchyard_requests_total{alias="demo",provider="oai",model="mock-gpt",outcome="completed"} "#;
    let count = metrics
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(series).map(str::to_owned));
    assert_eq!(count.as_deref(), Some("3"), "{}", metrics.text());

    let records = loop_records(&gw, 7).await;
    let stored_calls: Vec<&Value> = records
        .iter()
        .filter(|r| r["operation"] == "chat.completions.resource")
        .collect();
    assert_eq!(stored_calls.len(), 5, "{records:?}");
    let read = stored_calls
        .iter()
        .find(|r| r["key_name"] == "alice" && r["status"] == 200)
        .unwrap();
    assert_eq!(read["provider"], "oai");
    assert_eq!(read["model"], "mock-gpt");
    assert_eq!(read["alias"], "demo");
    assert_eq!(read["team"], "alpha");
    assert_eq!(read["route"], "stored_chat_completion");
    // Reading a stored completion costs nothing.
    assert!(
        read["cost_nanos"].is_null() || read["cost_nanos"] == 0,
        "{read}"
    );
    assert_eq!(
        stored_calls
            .iter()
            .filter(|r| r["key_name"] == "bob" && r["status"] == 429)
            .count(),
        3
    );
    assert!(stored_calls
        .iter()
        .any(|r| r["key_name"] == "alice2" && r["status"] == 200 && r["team"] == "alpha"));
    let creates = records
        .iter()
        .filter(|r| r["operation"] == "chat.completions")
        .count();
    assert_eq!(creates, 2);
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// The request log's records once `n` have reached the store.
async fn loop_records(gw: &Gateway, n: usize) -> Vec<Value> {
    for _ in 0..400 {
        let r = get(
            &format!("{}/admin/requests?limit=1000", gw.url),
            &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let data = r.json()["data"].as_array().unwrap().clone();
        if data.len() >= n {
            return data;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the request log did not reach {n} records");
}

#[tokio::test]
async fn a_completion_gone_upstream_is_gone_and_the_list_fills_its_place() {
    let (mock, gw, dir) = start("").await;
    let mut made = Vec::new();
    for _ in 0..3 {
        let c = create(&gw, ALICE, stored("demo", json!({}))).await;
        made.push(c["id"].as_str().unwrap().to_owned());
    }
    // Deleted at the upstream directly, behind the gateway's back.
    let r = send(
        Method::DELETE,
        &format!("{mock}/v1/chat/completions/{}", made[1]),
        &[("authorization", &format!("Bearer {UPSTREAM_KEY}"))],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let page = get_as(&gw, ALICE, "/v1/chat/completions?limit=2").await;
    assert_eq!(page.status, 200, "{}", page.text());
    let page = page.json();
    assert_eq!(ids(&page), [made[0].clone(), made[2].clone()]);
    assert_eq!(page["has_more"], false);
    let gone = get_as(&gw, ALICE, &format!("/v1/chat/completions/{}", made[1])).await;
    assert_eq!(gone.status, 404, "{}", gone.text());
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn records_survive_a_gateway_restart_on_the_same_store() {
    let mock = keyed_mock().await;
    let dir = temp_dir("stored-chat");
    let db = dir.join("sy.db");
    let gw = Gateway::start(&config(&mock, &db, "")).await;
    let made = create(&gw, ALICE, stored("demo", json!({}))).await;
    let id = made["id"].as_str().unwrap().to_owned();
    gw.shutdown().await;
    let gw = Gateway::start(&config(&mock, &db, "")).await;
    let got = get_as(&gw, ALICE, &format!("/v1/chat/completions/{id}")).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let other = get_as(&gw, BOB, &format!("/v1/chat/completions/{id}")).await;
    assert_eq!(other.status, 404);
    assert_eq!(
        ids(&get_as(&gw, ALICE, "/v1/chat/completions").await.json()),
        [id]
    );
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn python_sdk_drives_stored_chat_completions() {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import openai; openai.OpenAI(api_key='x').chat.completions.messages",
        ])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return crate::sdk::skip_or_fail(
            "python3 with an `openai` package that has stored chat completions is not installed",
        );
    }
    let (_mock, gw, dir) = start("").await;
    let mut cmd = Command::new("python3");
    cmd.arg(crate::sdk::sdk_dir().join("openai_stored_chat.py"))
        .arg(format!("{}/v1", gw.url))
        .arg(ALICE)
        .arg(BOB)
        .arg("demo")
        .arg("smart");
    crate::sdk::run(cmd).await;
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
