//! OpenAI's Responses API through the running gateway (issue 8, points 1 and 7): pass-through
//! to OpenAI-type deployments, translation for Anthropic, Gemini and Bedrock, stored responses
//! per tenant, and the official Python SDK against each kind of deployment.

use std::process::Command;

use http::Method;
use serde_json::{json, Value};

use crate::harness::*;

const KEY_A: &str = "sk-team-a-0123456789";
const KEY_B: &str = "sk-team-b-0123456789";
const MOCK_KEY_ID: &str = switchyard_mock::BEDROCK_ACCESS_KEY_ID;
const MOCK_SECRET: &str = switchyard_mock::BEDROCK_SECRET_ACCESS_KEY;

/// One provider of each type on the keyed mock, each behind an alias, plus `echo-*` providers
/// whose mock face echoes the upstream request (set by header: a translated request has no
/// place for the body's `mock` knobs). Two virtual keys and the SDK's master key.
fn config(base: &str) -> String {
    let mut providers = String::new();
    for (suffix, headers) in [
        ("", ""),
        (
            "-echo",
            "    headers:\n      x-mock-knobs: '{\"echo\":true}'\n",
        ),
    ] {
        providers.push_str(&format!(
            "  oai{suffix}:\n    type: openai\n    base_url: \"{base}/v1\"\n    api_key: ${{UPSTREAM_KEY}}\n{headers}\
             \x20 claude{suffix}:\n    type: anthropic\n    base_url: \"{base}/v1\"\n    api_key: ${{UPSTREAM_KEY}}\n{headers}\
             \x20 gem{suffix}:\n    type: gemini\n    base_url: \"{base}/v1beta\"\n    api_key: ${{UPSTREAM_KEY}}\n{headers}\
             \x20 aws{suffix}:\n    type: bedrock\n    base_url: \"{base}\"\n    region: us-east-1\n    \
             aws_access_key_id: {MOCK_KEY_ID}\n    aws_secret_access_key: \"{MOCK_SECRET}\"\n{headers}"
        ));
    }
    let mut models = String::new();
    for (alias, provider, model) in [
        ("demo", "oai", "mock-gpt"),
        ("smart", "claude", "claude-sonnet-4-5"),
        ("g", "gem", "gemini-2.5-flash"),
        ("nova", "aws", "amazon.nova-pro-v1:0"),
        ("echo-demo", "oai-echo", "mock-gpt"),
        ("echo-smart", "claude-echo", "claude-sonnet-4-5"),
        ("echo-g", "gem-echo", "gemini-2.5-flash"),
        ("echo-nova", "aws-echo", "amazon.nova-pro-v1:0"),
    ] {
        models.push_str(&format!(
            "  {alias}:\n    deployments:\n      - provider: {provider}\n        model: \"{model}\"\n"
        ));
    }
    format!(
        "providers:\n{providers}models:\n{models}auth:\n  master_key: {}\n  virtual_keys:\n    \
         - name: team-a\n      key: {KEY_A}\n    - name: team-b\n      key: {KEY_B}\n",
        crate::sdk::KEY
    )
}

async fn gateway() -> Gateway {
    let mock = keyed_mock().await;
    Gateway::start(&config(&mock)).await
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

async fn create(gw: &Gateway, key: &str, body: &Value) -> Resp {
    send(
        Method::POST,
        &format!("{}/v1/responses", gw.url),
        &[("authorization", &bearer(key))],
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

async fn call(gw: &Gateway, key: &str, method: Method, path: &str) -> Resp {
    send(
        method,
        &format!("{}/v1/responses/{path}", gw.url),
        &[("authorization", &bearer(key))],
        Vec::new(),
    )
    .await
}

/// `(event name, payload)` of each event of a Responses stream.
fn events(body: &[u8]) -> Vec<(String, Value)> {
    String::from_utf8_lossy(body)
        .split_terminator("\n\n")
        .map(|e| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn openai_type_deployments_get_the_clients_bytes_with_only_the_model_replaced() {
    // A scripted upstream records what it got and answers with odd but valid JSON spacing.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
    let upstream = scripted(move |req: http::Request<axum::body::Body>| {
        let seen = seen_tx.clone();
        async move {
            use http_body_util::BodyExt;
            let path = req.uri().path().to_owned();
            let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
            let stream = String::from_utf8_lossy(&body).contains("\"stream\":true");
            seen.send((path, body)).unwrap();
            if stream {
                let sse = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_up1\",\"model\":\"gpt-up\" ,\"status\":\"in_progress\"}}\n\n\
                           event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"the model\"}\n\n\
                           event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_up1\",\"model\":\"gpt-up\",\"usage\":{\"input_tokens\":2,\"output_tokens\":3,\"total_tokens\":5}}}\n\n";
                http::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(axum::body::Body::from(sse))
                    .unwrap()
            } else {
                http::Response::builder()
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(
                        "{\"id\":\"resp_up2\", \"object\":\"response\",\"model\":\"gpt-up\",\"output\":[],\"x_new_field\":[1,2.50]}",
                    ))
                    .unwrap()
            }
        }
    })
    .await;
    let gw = Gateway::start(&format!(
        "providers:\n  up:\n    type: openai\n    base_url: \"{upstream}/v1\"\nmodels:\n  demo:\n    \
         deployments:\n      - provider: up\n        model: gpt-up\n"
    ))
    .await;
    let sent = r#"{"model":"demo",  "input":[{"role":"user","content":"hi"}],"x_future_param":{"a":[1,2]}}"#;
    let r = post(&format!("{}/v1/responses", gw.url), sent).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        "{\"id\":\"resp_up2\", \"object\":\"response\",\"model\":\"demo\",\"output\":[],\"x_new_field\":[1,2.50]}"
    );
    let (path, body) = seen_rx.recv().await.unwrap();
    assert_eq!(path, "/v1/responses");
    assert_eq!(
        String::from_utf8(body).unwrap(),
        sent.replace("\"demo\"", "\"gpt-up\"")
    );
    let r = post(
        &format!("{}/v1/responses", gw.url),
        r#"{"model":"demo","input":"hi","stream":true}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_up1\",\"model\":\"demo\" ,\"status\":\"in_progress\"}}\n\n\
         event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"the model\"}\n\n\
         event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_up1\",\"model\":\"demo\",\"usage\":{\"input_tokens\":2,\"output_tokens\":3,\"total_tokens\":5}}}\n\n"
    );
    let (path, _) = seen_rx.recv().await.unwrap();
    assert_eq!(path, "/v1/responses");
}

#[tokio::test]
async fn translated_deployments_answer_in_the_responses_format() {
    let gw = gateway().await;
    for alias in ["smart", "g", "nova"] {
        let r = create(
            &gw,
            KEY_A,
            &json!({"model": alias, "input": "Hello there",
            "instructions": "Be brief."}),
        )
        .await;
        assert_eq!(r.status, 200, "{alias}: {}", r.text());
        let v = r.json();
        assert!(v["id"].as_str().unwrap().starts_with("resp_"), "{v}");
        assert_eq!(v["object"], "response");
        assert_eq!(v["model"], alias);
        assert_eq!(v["status"], "completed");
        assert_eq!(v["instructions"], "Be brief.");
        assert_eq!(v["output"][0]["type"], "message", "{v}");
        assert!(!v["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .is_empty());
        assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0, "{v}");

        let r = create(
            &gw,
            KEY_A,
            &json!({"model": alias, "input": "Hello", "stream": true}),
        )
        .await;
        assert_eq!(r.status, 200, "{alias}: {}", r.text());
        let evs = events(&r.body);
        assert_eq!(evs.first().unwrap().0, "response.created", "{alias}");
        assert_eq!(
            evs.last().unwrap().0,
            "response.completed",
            "{alias}: {evs:?}"
        );
        for (i, (name, e)) in evs.iter().enumerate() {
            assert_eq!(e["sequence_number"], i as u64, "{alias}");
            assert_eq!(e["type"], name.as_str());
        }
        let done = &evs.last().unwrap().1["response"];
        assert_eq!(done["model"], alias);
        assert!(
            done["usage"]["total_tokens"].as_u64().unwrap() > 0,
            "{alias}: {done}"
        );
    }
    // Both requests per alias were counted, with their tokens (a stream counts when its body
    // ends, a moment after the client read it).
    let counted = |text: &str, a: &str| {
        text.lines().any(|l| {
            l.starts_with("switchyard_requests_total{")
                && l.contains(&format!("alias=\"{a}\""))
                && l.ends_with("outcome=\"completed\"} 2")
        })
    };
    let mut text = String::new();
    for _ in 0..100 {
        text = get(
            &format!("{}/metrics", gw.url),
            &[("authorization", &bearer(KEY_A))],
        )
        .await
        .text();
        if ["smart", "g", "nova"].iter().all(|a| counted(&text, a)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for a in ["smart", "g", "nova"] {
        assert!(counted(&text, a), "{a}: {text}");
        let tokens = text.lines().any(|l| {
            l.starts_with("switchyard_tokens_total{")
                && l.contains(&format!("alias=\"{a}\""))
                && l.contains("type=\"completion\"")
                && !l.ends_with(" 0")
        });
        assert!(tokens, "{a}: {text}");
    }
}

#[tokio::test]
async fn features_a_translated_deployment_cannot_express_are_400s_naming_both() {
    let gw = gateway().await;
    let cases = [
        (
            "smart",
            json!({"tools": [{"type": "web_search"}]}),
            "tools[0].type",
            "web_search",
            "claude/claude-sonnet-4-5",
        ),
        (
            "g",
            json!({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}),
            "tools[0].type",
            "code_interpreter",
            "gem/gemini-2.5-flash",
        ),
        (
            "nova",
            json!({"background": true}),
            "background",
            "background",
            "aws/amazon.nova-pro-v1:0",
        ),
        (
            "nova",
            json!({"reasoning": {"effort": "high"}}),
            "reasoning.effort",
            "reasoning.effort",
            "aws/amazon.nova-pro-v1:0",
        ),
        (
            "smart",
            json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0].type",
            "item_reference",
            "claude/claude-sonnet-4-5",
        ),
        (
            "smart",
            json!({"tool_choice": {"type": "file_search"}}),
            "tool_choice.type",
            "file_search",
            "claude/claude-sonnet-4-5",
        ),
    ];
    for (alias, extra, param, feature, deployment) in cases {
        let mut body = json!({"model": alias, "input": "hi"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = create(&gw, KEY_A, &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let e = r.error();
        assert_eq!(e["param"], param, "{e}");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains(feature) && message.contains(deployment),
            "{message}"
        );
    }
    // The same requests reach an OpenAI-type deployment untouched (the mock serves them).
    let r = create(
        &gw,
        KEY_A,
        &json!({"model": "demo", "input": "hi", "reasoning": {"effort": "high"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn continuation_on_a_translated_deployment_replays_the_conversation() {
    let gw = gateway().await;
    for alias in ["echo-smart", "echo-g", "echo-nova"] {
        let one = create(
            &gw,
            KEY_A,
            &json!({"model": alias, "input": "the first question"}),
        )
        .await;
        assert_eq!(one.status, 200, "{}", one.text());
        let one = one.json();
        let two = create(
            &gw,
            KEY_A,
            &json!({"model": alias, "input": "the second question",
            "previous_response_id": one["id"]}),
        )
        .await;
        assert_eq!(two.status, 200, "{}", two.text());
        let two = two.json();
        assert_eq!(two["previous_response_id"], one["id"]);
        let sent = two["output"][0]["content"][0]["text"].as_str().unwrap();
        let first = sent
            .find("the first question")
            .unwrap_or_else(|| panic!("{alias}: {sent}"));
        let second = sent.find("the second question").unwrap();
        assert!(first < second, "{alias}: {sent}");
        // The first answer went back as the assistant turn between them.
        let upstream: Value = serde_json::from_str(sent).unwrap();
        assert!(
            upstream["body"].to_string().contains("assistant")
                || upstream["body"].to_string().contains("model"),
            "{alias}: {upstream}"
        );
        // The continuation's own input items are listed, not the earlier ones.
        let items = call(
            &gw,
            KEY_A,
            Method::GET,
            &format!("{}/input_items", two["id"].as_str().unwrap()),
        )
        .await;
        assert_eq!(items.status, 200);
        let items = items.json();
        assert_eq!(items["data"].as_array().unwrap().len(), 1, "{items}");
        assert_eq!(
            items["data"][0]["content"][0]["text"],
            "the second question"
        );
    }
}

#[tokio::test]
async fn a_translated_conversation_continues_on_an_openai_type_deployment_as_input() {
    let gw = gateway().await;
    let one = create(
        &gw,
        KEY_A,
        &json!({"model": "smart", "input": "the first question"}),
    )
    .await;
    let one = one.json();
    let answer = one["output"][0]["content"][0]["text"].as_str().unwrap();
    let two = create(
        &gw,
        KEY_A,
        &json!({"model": "echo-demo", "input": "the second question",
        "previous_response_id": one["id"]}),
    )
    .await;
    assert_eq!(two.status, 200, "{}", two.text());
    let two = two.json();
    let echo: Value =
        serde_json::from_str(two["output"][0]["content"][0]["text"].as_str().unwrap()).unwrap();
    // The upstream never saw the gateway's ids: the conversation arrives as plain input.
    assert!(echo["body"].get("previous_response_id").is_none(), "{echo}");
    assert_eq!(
        echo["body"]["input"],
        json!([
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "the first question"}]},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "the second question"}
        ])
    );
}

#[tokio::test]
async fn stored_responses_belong_to_the_key_that_made_them() {
    let gw = gateway().await;
    for alias in ["smart", "demo"] {
        let made = create(
            &gw,
            KEY_A,
            &json!({"model": alias, "input": "private to team a"}),
        )
        .await;
        assert_eq!(made.status, 200, "{}", made.text());
        let made = made.json();
        let id = made["id"].as_str().unwrap();

        let own = call(&gw, KEY_A, Method::GET, id).await;
        assert_eq!(own.status, 200, "{alias}: {}", own.text());
        assert_eq!(own.json()["id"], id);
        assert_eq!(own.json()["model"], alias);
        let items = call(&gw, KEY_A, Method::GET, &format!("{id}/input_items")).await;
        assert_eq!(items.status, 200, "{}", items.text());

        // Team B sees nothing of it, by any route.
        for (method, path) in [
            (Method::GET, id.to_owned()),
            (Method::GET, format!("{id}/input_items")),
            (Method::DELETE, id.to_owned()),
            (Method::POST, format!("{id}/cancel")),
        ] {
            let r = call(&gw, KEY_B, method.clone(), &path).await;
            assert_eq!(r.status, 404, "{alias} {method} {path}: {}", r.text());
            assert!(r.error()["message"].as_str().unwrap().contains(id));
        }
        let r = create(
            &gw,
            KEY_B,
            &json!({"model": alias, "input": "x", "previous_response_id": id}),
        )
        .await;
        assert_eq!(r.status, 404, "{}", r.text());
        assert_eq!(r.error()["param"], "previous_response_id");
        // Nor does the master key: it is a tenant like any other.
        let r = call(&gw, crate::sdk::KEY, Method::GET, id).await;
        assert_eq!(r.status, 404);

        // Team A's record survived team B's delete, and goes with its own.
        let r = call(&gw, KEY_A, Method::DELETE, id).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"id": id, "object": "response", "deleted": true})
        );
        assert_eq!(call(&gw, KEY_A, Method::GET, id).await.status, 404);
    }
}

#[tokio::test]
async fn stored_openai_responses_are_forwarded_to_their_deployment() {
    let gw = gateway().await;
    let made = create(
        &gw,
        KEY_A,
        &json!({"model": "demo", "input": [{"role": "user", "content": "one"}]}),
    )
    .await;
    let id = made.json()["id"].as_str().unwrap().to_owned();
    // The mock holds it (its id, its items); the gateway forwards and renames the model.
    let items = call(
        &gw,
        KEY_A,
        Method::GET,
        &format!("{id}/input_items?order=asc&limit=5"),
    )
    .await;
    assert_eq!(items.status, 200, "{}", items.text());
    assert_eq!(items.json()["data"][0]["content"][0]["text"], "one");
    let next = create(
        &gw,
        KEY_A,
        &json!({"model": "demo", "input": "two", "previous_response_id": id}),
    )
    .await;
    assert_eq!(next.status, 200, "{}", next.text());
    assert_eq!(next.json()["previous_response_id"], id.as_str());
    // Cancel: a synchronous response cannot be (the upstream's 400), a background one can.
    let r = call(&gw, KEY_A, Method::POST, &format!("{id}/cancel")).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let bg = create(
        &gw,
        KEY_A,
        &json!({"model": "demo", "input": "x", "background": true}),
    )
    .await;
    let bg = bg.json();
    assert_eq!(bg["status"], "queued");
    let r = call(
        &gw,
        KEY_A,
        Method::POST,
        &format!("{}/cancel", bg["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "cancelled");
    assert_eq!(r.json()["model"], "demo");
    // A translated response is not background: cancelling it is a 400 from the gateway.
    let t = create(&gw, KEY_A, &json!({"model": "smart", "input": "x"}))
        .await
        .json();
    let r = call(
        &gw,
        KEY_A,
        Method::POST,
        &format!("{}/cancel", t["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // `store: false`: nothing is kept, so nothing can be fetched.
    for alias in ["demo", "smart"] {
        let r = create(
            &gw,
            KEY_A,
            &json!({"model": alias, "input": "x", "store": false}),
        )
        .await;
        let id = r.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(
            call(&gw, KEY_A, Method::GET, &id).await.status,
            404,
            "{alias}"
        );
    }
}

#[tokio::test]
async fn a_continuation_of_an_upstream_response_stays_at_its_provider() {
    let mock = keyed_mock().await;
    // `both` may go to either provider; the continuation of an OpenAI-kept response must not
    // land on Anthropic.
    let cfg = config(&mock).replace(
        "models:\n",
        "models:\n  both:\n    deployments:\n      - provider: claude\n        model: claude-sonnet-4-5\n      \
         - provider: oai\n        model: mock-gpt\n",
    );
    let gw = Gateway::start(&cfg).await;
    let first = create(&gw, KEY_A, &json!({"model": "demo", "input": "x"}))
        .await
        .json();
    let r = create(
        &gw,
        KEY_A,
        &json!({"model": "both", "input": "y", "previous_response_id": first["id"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchyard-provider"), Some("oai"));
    let r = create(
        &gw,
        KEY_A,
        &json!({"model": "smart", "input": "y", "previous_response_id": first["id"]}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error()["message"].as_str().unwrap().contains("`oai`"));
}

#[tokio::test]
async fn bad_requests_get_openai_errors() {
    let gw = gateway().await;
    let r = create(&gw, KEY_A, &json!({"input": "no model"})).await;
    assert_eq!(r.status, 400);
    assert!(r.error()["message"].as_str().unwrap().contains("model"));
    let r = create(&gw, KEY_A, &json!({"model": "demo", "stream": "yes"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["param"], "stream");
    let r = call(&gw, KEY_A, Method::GET, "resp_unknown").await;
    assert_eq!(r.status, 404);
    let r = call(&gw, KEY_A, Method::GET, "resp_unknown/input_items?limit=0").await;
    assert_eq!(r.status, 404);
    let made = create(&gw, KEY_A, &json!({"model": "smart", "input": "x"}))
        .await
        .json();
    let id = made["id"].as_str().unwrap();
    let r = call(
        &gw,
        KEY_A,
        Method::GET,
        &format!("{id}/input_items?limit=0"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["param"], "limit");
    let r = send(
        Method::GET,
        &format!("{}/v1/responses/{id}", gw.url),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 401);
}

fn python_sdk_ready() -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import openai"])
        .output();
    probe.is_ok_and(|o| o.status.success())
}

async fn sdk_against(alias: &str, provider: &str, echo: Option<&str>) {
    if !python_sdk_ready() {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("SDK test cannot run in CI: python3 with `openai` is missing");
        }
        eprintln!("skipped: python3 with the `openai` package is not installed");
        return;
    }
    let gw = gateway().await;
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/openai_responses.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .arg(format!("{}/v1", gw.url))
        .arg(crate::sdk::KEY)
        .arg(alias)
        .arg(provider);
    if let Some(e) = echo {
        cmd.arg(e);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "SDK script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn python_sdk_responses_against_openai() {
    sdk_against("demo", "oai", None).await;
}

#[tokio::test]
async fn python_sdk_responses_against_anthropic() {
    sdk_against("smart", "claude", Some("echo-smart")).await;
}

#[tokio::test]
async fn python_sdk_responses_against_gemini() {
    sdk_against("g", "gem", Some("echo-g")).await;
}

#[tokio::test]
async fn python_sdk_responses_against_bedrock() {
    sdk_against("nova", "aws", Some("echo-nova")).await;
}

#[tokio::test]
async fn azure_deployments_use_the_v1_responses_surface() {
    let mock = keyed_mock().await;
    let gw = Gateway::start(&format!(
        "providers:\n  az:\n    type: azure\n    base_url: \"{mock}\"\n    api_key: ${{UPSTREAM_KEY}}\n    \
         api_version: \"2024-10-21\"\nmodels:\n  chat:\n    deployments:\n      - provider: az\n        \
         model: my-gpt4o\n"
    ))
    .await;
    let r = post(
        &format!("{}/v1/responses", gw.url),
        r#"{"model":"chat","input":"hi","mock":{"echo":true}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "chat");
    let echo: Value =
        serde_json::from_str(v["output"][0]["content"][0]["text"].as_str().unwrap()).unwrap();
    // Azure's v1 surface: no deployment in the path, the deployment named by `model`, the
    // key in `api-key`.
    assert_eq!(echo["path"], "/openai/v1/responses");
    assert_eq!(echo["query"], Value::Null);
    assert_eq!(echo["body"]["model"], "my-gpt4o");
    assert_eq!(echo["headers"]["api-key"], UPSTREAM_KEY);
    let id = v["id"].as_str().unwrap();
    let r = get(&format!("{}/v1/responses/{id}", gw.url), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "chat");
}
