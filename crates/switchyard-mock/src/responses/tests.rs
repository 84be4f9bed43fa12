#![allow(clippy::unwrap_used)]

use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::tests::{assert_same_shape, collect, fixture, start};
use crate::MockConfig;

const RESPONSE_FIXTURE: &str = include_str!("../../fixtures/openai/response.json");
const STREAM_FIXTURE: &str = include_str!("../../fixtures/openai/response_stream.sse");

/// `(event name, payload)` of every event, checking the framing: `event:` then one `data:`.
fn events(body: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(body).unwrap();
    text.split_terminator("\n\n")
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name.as_str());
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn response_object_has_openais_shape() {
    let mock = start(MockConfig::default()).await;
    let (status, _, body) = mock
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "Hi", "instructions": "Answer in one sentence."}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&body, &fixture(RESPONSE_FIXTURE), "$");
    assert_eq!(body["model"], "gpt-4.1");
    assert_eq!(body["status"], "completed");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn stream_has_the_fixtures_event_sequence() {
    let mock = start(MockConfig::default()).await;
    let resp = mock
        .post(
            "/v1/responses",
            &json!({"model": "gpt-4.1", "input": "Hi", "stream": true, "mock": {"words": 2}}),
        )
        .await;
    let (status, headers, body) = collect(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let got = events(&body);
    let want = events(STREAM_FIXTURE.as_bytes());
    let names = |v: &[(String, Value)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want));
    for (i, ((_, g), (_, w))) in got.iter().zip(&want).enumerate() {
        assert_eq!(g["sequence_number"], i as u64);
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(g), keys(w), "event {i}");
    }
    let text: String = got
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, e)| e["delta"].as_str().unwrap().to_owned())
        .collect();
    let (_, done) = got.last().unwrap();
    assert_eq!(
        done["response"]["output"][0]["content"][0]["text"],
        text.as_str()
    );
}

#[tokio::test]
async fn forced_function_call_streams_arguments() {
    let mock = start(MockConfig::default()).await;
    let tools = json!([{"type": "function", "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let (_, _, body) = mock
        .post_json(
            "/v1/responses",
            &json!({"model": "m", "input": "x", "tools": tools,
            "tool_choice": {"type": "function", "name": "get_weather"}}),
        )
        .await;
    let call = &body["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["name"], "get_weather");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string());
    let resp = mock
        .post(
            "/v1/responses",
            &json!({"model": "m", "input": "x", "tools": tools,
            "tool_choice": "required", "stream": true}),
        )
        .await;
    let got = events(&collect(resp).await.2);
    let joined: String = got
        .iter()
        .filter(|(n, _)| n == "response.function_call_arguments.delta")
        .map(|(_, e)| e["delta"].as_str().unwrap().to_owned())
        .collect();
    let done = got
        .iter()
        .find(|(n, _)| n == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(done.1["arguments"], joined.as_str());
}

#[tokio::test]
async fn stored_responses_can_be_read_listed_continued_and_deleted() {
    let mock = start(MockConfig::default()).await;
    let (_, _, first) = mock
        .post_json(
            "/v1/responses",
            &json!({"model": "m", "input": [{"role": "user", "content": "one"}]}),
        )
        .await;
    let id = first["id"].as_str().unwrap();
    let (status, _, got) = mock.get_json(&format!("/v1/responses/{id}")).await;
    assert_eq!((status, &got), (StatusCode::OK, &first));
    let (_, _, items) = mock
        .get_json(&format!("/v1/responses/{id}/input_items"))
        .await;
    assert_eq!(items["object"], "list");
    assert_eq!(
        items["data"][0]["content"][0],
        json!({"type": "input_text", "text": "one"})
    );
    let (status, _, next) = mock
        .post_json(
            "/v1/responses",
            &json!({"model": "m", "input": "two", "previous_response_id": id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(next["previous_response_id"], id);
    let (status, _, err) = mock
        .post_json(
            "/v1/responses",
            &json!({"model": "m", "input": "x", "previous_response_id": "resp_nope"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"]["code"], "previous_response_not_found");
    // A synchronous response cannot be cancelled; a background one can.
    let (status, _, _) = collect(
        mock.send(
            Method::POST,
            &format!("/v1/responses/{id}/cancel"),
            &[],
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, _, queued) = mock
        .post_json(
            "/v1/responses",
            &json!({"model": "m", "input": "x", "background": true}),
        )
        .await;
    assert_eq!(queued["status"], "queued");
    let bg = queued["id"].as_str().unwrap();
    let (status, _, bytes) = collect(
        mock.send(
            Method::POST,
            &format!("/v1/responses/{bg}/cancel"),
            &[],
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap()["status"],
        "cancelled"
    );
    let (status, _, bytes) = collect(
        mock.send(Method::DELETE, &format!("/v1/responses/{id}"), &[], None)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap(),
        json!({"id": id, "object": "response", "deleted": true})
    );
    let (status, _, _) = mock.get_json(&format!("/v1/responses/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // `store: false` keeps nothing.
    let (_, _, unstored) = mock
        .post_json(
            "/v1/responses",
            &json!({"model": "m", "input": "x", "store": false}),
        )
        .await;
    let (status, _, _) = mock
        .get_json(&format!(
            "/v1/responses/{}",
            unstored["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn echo_json_schema_and_limits() {
    let mock = start(MockConfig::default()).await;
    let (_, _, echoed) = mock
        .post_json(
            "/v1/responses",
            &json!({"model": "m", "input": "x", "mock": {"echo": true}}),
        )
        .await;
    let echo: Value =
        serde_json::from_str(echoed["output"][0]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(echo["path"], "/v1/responses");
    assert_eq!(echo["body"]["input"], "x");
    let (_, _, structured) = mock
        .post_json(
            "/v1/responses",
            &json!({"model": "m", "input": "x", "text": {"format": {
            "type": "json_schema", "name": "p", "schema": {"type": "object",
            "properties": {"n": {"type": "integer"}}}}}}),
        )
        .await;
    let parsed: Value = serde_json::from_str(
        structured["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(parsed["n"], 42);
    let (_, _, cut) = mock
        .post_json(
            "/v1/responses",
            &json!({"model": "m", "input": "x", "max_output_tokens": 3, "mock": {"words": 50}}),
        )
        .await;
    assert_eq!(cut["status"], "incomplete");
    assert_eq!(cut["incomplete_details"]["reason"], "max_output_tokens");
    let (status, _, err) = mock
        .post_json("/v1/responses", &json!({"model": "m"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["param"], "input");
}
