#![allow(clippy::unwrap_used)]

use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::tests::{chat_body, collect, start, Mock};
use crate::MockConfig;

async fn call(mock: &Mock, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
    let (status, _, raw) = collect(mock.send(method, path, &[], bytes.as_deref()).await).await;
    (status, serde_json::from_slice(&raw).unwrap())
}

async fn create(mock: &Mock, extra: Value) -> Value {
    let (status, _, body) = mock
        .post_json("/v1/chat/completions", &chat_body(extra))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn ids(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn stored_completions_are_listed_read_updated_and_deleted() {
    let mock = start(MockConfig::default()).await;
    let a = create(&mock, json!({"store": true, "metadata": {"env": "prod"}})).await;
    let streamed_body = chat_body(json!({"store": true, "model": "other-gpt", "stream": true}));
    let (status, _, chunks) =
        collect(mock.post("/v1/chat/completions", &streamed_body).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(chunks.starts_with(b"data: "));
    // `store` absent (OpenAI's default false) keeps nothing.
    let unstored = create(&mock, json!({})).await;
    let a_id = a["id"].as_str().unwrap();

    let (status, all) = call(&mock, Method::GET, "/v1/chat/completions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["object"], "list");
    assert_eq!(all["has_more"], false);
    assert_eq!(ids(&all).len(), 2, "{all}");
    assert_eq!(ids(&all)[0], a_id);
    assert_eq!(all["first_id"], a_id);
    let streamed = ids(&all)[1].to_owned();
    // The streamed one is kept whole, as its chunks would assemble.
    let (status, got) = call(
        &mock,
        Method::GET,
        &format!("/v1/chat/completions/{streamed}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["object"], "chat.completion");
    assert_eq!(got["model"], "other-gpt");
    assert!(got["choices"][0]["message"]["content"].is_string());

    // Filters, paging, order.
    let (_, by_model) = call(
        &mock,
        Method::GET,
        "/v1/chat/completions?model=other-gpt",
        None,
    )
    .await;
    assert_eq!(ids(&by_model), [streamed.as_str()]);
    let (_, by_meta) = call(
        &mock,
        Method::GET,
        "/v1/chat/completions?metadata%5Benv%5D=prod",
        None,
    )
    .await;
    assert_eq!(ids(&by_meta), [a_id]);
    let (_, first) = call(&mock, Method::GET, "/v1/chat/completions?limit=1", None).await;
    assert_eq!(ids(&first), [a_id]);
    assert_eq!(first["has_more"], true);
    let (_, next) = call(
        &mock,
        Method::GET,
        &format!("/v1/chat/completions?limit=1&after={a_id}"),
        None,
    )
    .await;
    assert_eq!(ids(&next), [streamed.as_str()]);
    assert_eq!(next["has_more"], false);
    let (_, desc) = call(&mock, Method::GET, "/v1/chat/completions?order=desc", None).await;
    assert_eq!(ids(&desc), [streamed.as_str(), a_id]);
    let (status, _) = call(&mock, Method::GET, "/v1/chat/completions?limit=0", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Retrieve carries the metadata; update replaces it.
    let path = format!("/v1/chat/completions/{a_id}");
    let (_, got) = call(&mock, Method::GET, &path, None).await;
    assert_eq!(got["id"], a_id);
    assert_eq!(got["metadata"], json!({"env": "prod"}));
    assert_eq!(got["choices"], a["choices"]);
    let (status, updated) = call(
        &mock,
        Method::POST,
        &path,
        Some(json!({"metadata": {"env": "dev"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["metadata"], json!({"env": "dev"}));
    let (status, _) = call(&mock, Method::POST, &path, Some(json!({"metadata": 3}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Messages: the request's, with ids, oldest first.
    let (status, messages) = call(&mock, Method::GET, &format!("{path}/messages"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(messages["object"], "list");
    let data = messages["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], format!("{a_id}-0").as_str());
    assert_eq!(data[0]["role"], "system");
    assert_eq!(data[1]["content"], "Tell me about bridges.");
    assert_eq!(data[1]["content_parts"], Value::Null);
    let (_, last) = call(
        &mock,
        Method::GET,
        &format!("{path}/messages?order=desc&limit=1"),
        None,
    )
    .await;
    assert_eq!(last["data"][0]["role"], "user");
    assert_eq!(last["has_more"], true);

    // Delete, then it is gone everywhere.
    let (status, receipt) = call(&mock, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        receipt,
        json!({"object": "chat.completion.deleted", "id": a_id, "deleted": true})
    );
    for (method, p) in [
        (Method::GET, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::GET, format!("{path}/messages")),
        (
            Method::GET,
            format!("/v1/chat/completions/{}", unstored["id"].as_str().unwrap()),
        ),
    ] {
        let (status, err) = call(&mock, method, &p, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
        assert_eq!(err["error"]["type"], "invalid_request_error");
    }
    let (_, all) = call(&mock, Method::GET, "/v1/chat/completions", None).await;
    assert_eq!(ids(&all), [streamed.as_str()]);
}

#[tokio::test]
async fn content_parts_are_kept_and_azure_v1_serves_the_same() {
    let mock = start(MockConfig::default()).await;
    let body = json!({
        "store": true,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}],
    });
    let made = create(&mock, body).await;
    let id = made["id"].as_str().unwrap();
    let (status, messages) = call(
        &mock,
        Method::GET,
        &format!("/openai/v1/chat/completions/{id}/messages"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(messages["data"][0]["content"], "one\ntwo");
    assert_eq!(messages["data"][0]["content_parts"][1]["text"], "two");
    let (_, list) = call(&mock, Method::GET, "/openai/v1/chat/completions", None).await;
    assert_eq!(ids(&list), [id]);
    let (status, _) = call(
        &mock,
        Method::PUT,
        &format!("/v1/chat/completions/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}
