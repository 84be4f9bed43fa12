//! Tests: the mock runs on an ephemeral loopback port and is driven over real HTTP, and its
//! output is checked against hand-written fixtures of OpenAI's wire format.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::{limits, sse, text, MockConfig};

const CHAT_FIXTURE: &str = include_str!("../fixtures/openai/chat_completion.json");
const STREAM_FIXTURE: &str = include_str!("../fixtures/openai/chat_completion_stream.sse");
const EMBEDDINGS_FIXTURE: &str = include_str!("../fixtures/openai/embeddings.json");
const MODELS_FIXTURE: &str = include_str!("../fixtures/openai/models.json");
const ERROR_429_FIXTURE: &str = include_str!("../fixtures/openai/error_429.json");
const ERROR_400_FIXTURE: &str = include_str!("../fixtures/openai/error_400.json");

// === harness ===

/// A running mock; aborted when dropped so tests never leak servers. Shared with the
/// provider modules' own tests.
pub(crate) struct Mock {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn start(cfg: MockConfig) -> Mock {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(crate::serve(listener, cfg));
    let client = Client::builder(TokioExecutor::new()).build_http();
    Mock { addr, task, client }
}

impl Mock {
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> http::Response<Incoming> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = Full::new(Bytes::copy_from_slice(body.unwrap_or_default()));
        self.client.request(req.body(body).unwrap()).await.unwrap()
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> http::Response<Incoming> {
        self.send(
            Method::POST,
            path,
            &[],
            Some(&serde_json::to_vec(body).unwrap()),
        )
        .await
    }

    pub(crate) async fn post_json(
        &self,
        path: &str,
        body: &Value,
    ) -> (StatusCode, HeaderMap, Value) {
        let resp = self.post(path, body).await;
        let (status, headers, bytes) = collect(resp).await;
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    pub(crate) async fn get_json(&self, path: &str) -> (StatusCode, HeaderMap, Value) {
        let (status, headers, bytes) = collect(self.send(Method::GET, path, &[], None).await).await;
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }
}

pub(crate) async fn collect(resp: http::Response<Incoming>) -> (StatusCode, HeaderMap, Bytes) {
    let (parts, body) = resp.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

pub(crate) fn chat_body(extra: Value) -> Value {
    let mut body = json!({
        "model": "mock-gpt",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Tell me about bridges."}
        ]
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            body.insert(k.clone(), v.clone());
        }
    }
    body
}

/// Asserts `actual` has the fixture's structure: the same keys and the same JSON types,
/// recursively. Array elements are compared with the fixture's first element.
pub(crate) fn assert_same_shape(actual: &Value, fixture: &Value, path: &str) {
    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
    assert_eq!(
        kind(actual),
        kind(fixture),
        "type differs at {path}: {actual} vs {fixture}"
    );
    match (actual, fixture) {
        (Value::Object(a), Value::Object(f)) => {
            let ak: BTreeSet<_> = a.keys().collect();
            let fk: BTreeSet<_> = f.keys().collect();
            assert_eq!(ak, fk, "keys differ at {path}");
            for (k, v) in f {
                assert_same_shape(&a[k], v, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(f)) => {
            if let Some(first) = f.first() {
                for (i, item) in a.iter().enumerate() {
                    assert_same_shape(item, first, &format!("{path}[{i}]"));
                }
            }
        }
        _ => {}
    }
}

/// Asserts an OpenAI error body: the fixtures' envelope and key set, with `param` and `code`
/// allowed to be either a string or null (both fixtures show that they vary).
fn assert_error_shape(body: &Value) {
    for fixture_text in [ERROR_400_FIXTURE, ERROR_429_FIXTURE] {
        let f = fixture(fixture_text);
        let keys = |v: &Value| {
            v.as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(keys(body), keys(&f));
        assert_eq!(keys(&body["error"]), keys(&f["error"]));
    }
    let err = &body["error"];
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(err["type"].is_string(), "{body}");
    assert!(err["param"].is_string() || err["param"].is_null(), "{body}");
    assert!(err["code"].is_string() || err["code"].is_null(), "{body}");
}

pub(crate) fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Splits an SSE body into its JSON payloads, asserting OpenAI's exact framing: every event is
/// `data: <single-line JSON>\n\n` and the last one is `data: [DONE]\n\n`.
fn parse_sse(body: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "stream must end with [DONE]: {text:?}"
    );
    let events: Vec<&str> = text.split_terminator("\n\n").collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    assert_eq!(events.iter().filter(|e| **e == "data: [DONE]").count(), 1);
    events[..events.len() - 1]
        .iter()
        .map(|event| {
            let payload = event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("bad event {event:?}"));
            assert!(!payload.contains('\n'), "event spans lines: {event:?}");
            let value: Value = serde_json::from_str(payload).unwrap();
            // Compact JSON: re-serializing gives the same bytes back (modulo key order).
            assert_eq!(payload.len(), serde_json::to_string(&value).unwrap().len());
            value
        })
        .collect()
}

pub(crate) fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .unwrap()
}

pub(crate) fn assert_openai_headers(headers: &HeaderMap) {
    let id = header(headers, "x-request-id");
    let hex = id.strip_prefix("req_").unwrap();
    assert_eq!(hex.len(), 32);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    header(headers, "openai-processing-ms")
        .parse::<u64>()
        .unwrap();
    assert_eq!(header(headers, "openai-version"), "2020-10-01");
    for name in [
        "x-ratelimit-limit-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens",
    ] {
        header(headers, name).parse::<u64>().unwrap();
    }
    for name in ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"] {
        assert!(
            header(headers, name).ends_with('s'),
            "{name} not a duration"
        );
    }
}

// === chat completions ===

#[tokio::test]
async fn chat_matches_fixture() {
    let mock = start(MockConfig::default()).await;
    let (status, headers, body) = mock
        .post_json("/v1/chat/completions", &chat_body(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_openai_headers(&headers);
    assert_same_shape(&body, &fixture(CHAT_FIXTURE), "$");

    let id = body["id"]
        .as_str()
        .unwrap()
        .strip_prefix("chatcmpl-")
        .unwrap();
    assert!((24..=29).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(body["model"], "mock-gpt");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    let words = content.split(' ').count() as u64;
    assert!((12..=20).contains(&words), "{content}");
    assert!(content.ends_with('.'));
    let usage = &body["usage"];
    assert_eq!(usage["completion_tokens"], words);
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(usage["prompt_tokens"].as_u64().unwrap() + words)
    );

    // The same question gets the same answer.
    let (_, _, again) = mock
        .post_json("/v1/chat/completions", &chat_body(json!({})))
        .await;
    assert_eq!(again["choices"][0]["message"]["content"], content);
    assert_ne!(again["id"], body["id"]);
}

#[tokio::test]
async fn chat_stream_matches_fixture() {
    let mock = start(MockConfig::default()).await;
    let body = chat_body(json!({"stream": true, "stream_options": {"include_usage": true}}));
    let (status, headers, bytes) = collect(mock.post("/v1/chat/completions", &body).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, "content-type"),
        "text/event-stream; charset=utf-8"
    );
    assert_openai_headers(&headers);

    let ours = parse_sse(&bytes);
    let theirs = parse_sse(STREAM_FIXTURE.as_bytes());
    let (t_first, t_content, t_finish, t_usage) = (
        &theirs[0],
        &theirs[1],
        &theirs[theirs.len() - 2],
        &theirs[theirs.len() - 1],
    );
    assert!(ours.len() >= 4);
    assert_same_shape(&ours[0], t_first, "first");
    assert_eq!(
        ours[0]["choices"][0]["delta"],
        t_first["choices"][0]["delta"]
    );
    for chunk in &ours[1..ours.len() - 2] {
        assert_same_shape(chunk, t_content, "content");
    }
    assert_same_shape(&ours[ours.len() - 2], t_finish, "finish");
    assert_eq!(ours[ours.len() - 2]["choices"][0]["finish_reason"], "stop");
    assert_same_shape(&ours[ours.len() - 1], t_usage, "usage");
    assert_eq!(ours[ours.len() - 1]["choices"], json!([]));
    let first_id = &ours[0]["id"];
    assert!(ours
        .iter()
        .all(|c| &c["id"] == first_id && c["created"] == ours[0]["created"]));

    // The streamed text is exactly the non-streamed text.
    let streamed: String = ours[1..ours.len() - 2]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    let (_, _, plain) = mock
        .post_json("/v1/chat/completions", &chat_body(json!({})))
        .await;
    assert_eq!(plain["choices"][0]["message"]["content"], streamed.as_str());
    let usage = &ours[ours.len() - 1]["usage"];
    assert_eq!(
        usage["completion_tokens"].as_u64(),
        Some((ours.len() - 3) as u64)
    );
    assert_eq!(usage, &plain["usage"]);
}

#[tokio::test]
async fn chat_stream_without_usage_has_no_usage_key() {
    let mock = start(MockConfig::default()).await;
    let body = chat_body(json!({"stream": true, "mock": {"words": 3}}));
    let (_, _, bytes) = collect(mock.post("/v1/chat/completions", &body).await).await;
    let chunks = parse_sse(&bytes);
    assert_eq!(chunks.len(), 5, "role, three words, finish");
    assert!(chunks
        .iter()
        .all(|c| c.get("usage").is_none() && c["choices"].as_array().unwrap().len() == 1));
}

#[tokio::test]
async fn chat_honours_n_and_max_tokens() {
    let mock = start(MockConfig::default()).await;
    let body = chat_body(json!({"n": 3, "max_completion_tokens": 5, "mock": {"words": 9}}));
    let (status, _, resp) = mock.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::OK);
    let choices = resp["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    for (i, choice) in choices.iter().enumerate() {
        assert_eq!(choice["index"], i);
        assert_eq!(choice["finish_reason"], "length");
        assert_eq!(
            choice["message"]["content"]
                .as_str()
                .unwrap()
                .split(' ')
                .count(),
            5
        );
    }
    assert_eq!(resp["usage"]["completion_tokens"], 15);

    let (_, _, resp) = mock
        .post_json(
            "/v1/chat/completions",
            &chat_body(json!({"max_tokens": 50, "mock": {"words": 4}})),
        )
        .await;
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");

    // Streams interleave choices and finish each one.
    let body = chat_body(json!({"n": 2, "stream": true, "mock": {"words": 2}}));
    let (_, _, bytes) = collect(mock.post("/v1/chat/completions", &body).await).await;
    let chunks = parse_sse(&bytes);
    let indexes: Vec<u64> = chunks
        .iter()
        .map(|c| c["choices"][0]["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1, 0, 1, 0, 1, 0, 1]);
}

fn weather_tools() -> Value {
    json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "integer"}
                },
                "required": ["city"]
            }
        }
    }])
}

#[tokio::test]
async fn chat_tool_call() {
    let mock = start(MockConfig::default()).await;
    let forced = json!({"type": "function", "function": {"name": "get_weather"}});
    let body = chat_body(json!({"tools": weather_tools(), "tool_choice": forced}));
    let (status, _, resp) = mock.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::OK);
    let choice = &resp["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string());
    assert_eq!(args["unit"], "celsius");
    assert_eq!(args["days"], 42);

    // "auto" answers in text unless the knob forces a call.
    let (_, _, resp) = mock
        .post_json(
            "/v1/chat/completions",
            &chat_body(json!({"tools": weather_tools(), "tool_choice": "auto"})),
        )
        .await;
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");

    // Streaming: a start delta with id and name, then argument fragments that join up.
    let body =
        chat_body(json!({"tools": weather_tools(), "stream": true, "mock": {"tool_call": true}}));
    let (_, _, bytes) = collect(mock.post("/v1/chat/completions", &body).await).await;
    let chunks = parse_sse(&bytes);
    let start = &chunks[0]["choices"][0]["delta"];
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["content"], Value::Null);
    assert_eq!(start["tool_calls"][0]["index"], 0);
    assert!(start["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("call_"));
    assert_eq!(start["tool_calls"][0]["type"], "function");
    assert_eq!(start["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(start["tool_calls"][0]["function"]["arguments"], "");
    let fragments = &chunks[1..chunks.len() - 1];
    assert!(fragments.len() > 1);
    let joined: String = fragments
        .iter()
        .map(|c| {
            let call = &c["choices"][0]["delta"]["tool_calls"][0];
            assert_eq!(call["index"], 0);
            call["function"]["arguments"].as_str().unwrap()
        })
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&joined).unwrap(), args);
    assert_eq!(
        chunks[chunks.len() - 1]["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn chat_validation_errors_match_fixture() {
    let mock = start(MockConfig::default()).await;
    let error_fixture = fixture(ERROR_400_FIXTURE);

    let (status, headers, body) = mock
        .post_json("/v1/chat/completions", &json!({"model": "m"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_openai_headers(&headers);
    assert_same_shape(&body, &error_fixture, "$");
    assert_eq!(body["error"]["param"], "messages");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let (status, _, body) = mock
        .post_json(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["param"], "model");

    let resp = mock
        .send(
            Method::POST,
            "/v1/chat/completions",
            &[],
            Some(b"{not json"),
        )
        .await;
    let (status, _, bytes) = collect(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["code"].is_null());
}

// === embeddings ===

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        }
    };
    let mut out = Vec::new();
    for quad in s.as_bytes().chunks(4) {
        let pad = quad.iter().filter(|&&c| c == b'=').count();
        let n = quad
            .iter()
            .take(4 - pad)
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | val(c) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    out
}

#[tokio::test]
async fn embeddings_match_fixture() {
    let mock = start(MockConfig::default()).await;
    let (status, headers, body) = mock
        .post_json(
            "/v1/embeddings",
            &json!({"model": "mock-embed", "input": "hello world"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_openai_headers(&headers);
    assert_same_shape(&body, &fixture(EMBEDDINGS_FIXTURE), "$");
    let v: Vec<f64> = body["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(v.len(), 1536);
    let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "{norm}");
    assert_eq!(body["usage"]["prompt_tokens"], 3);

    // Deterministic per input, independent of the batch it is in; base64 is the same floats.
    let (_, _, batch) = mock
        .post_json(
            "/v1/embeddings",
            &json!({"model": "m", "input": ["other", "hello world"], "encoding_format": "base64"}),
        )
        .await;
    assert_eq!(batch["data"].as_array().unwrap().len(), 2);
    assert_eq!(batch["data"][1]["index"], 1);
    let bytes = decode_base64(batch["data"][1]["embedding"].as_str().unwrap());
    let floats: Vec<f32> = bytes
        .chunks(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(floats.len(), 1536);
    for (a, b) in floats.iter().zip(&v) {
        assert!((f64::from(*a) - b).abs() < 1e-6);
    }

    let (status, _, tokens) = mock
        .post_json(
            "/v1/embeddings",
            &json!({"model": "m", "input": [1, 2, 3], "dimensions": 8}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tokens["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(tokens["usage"]["total_tokens"], 3);
    let (status, _, nested) = mock
        .post_json(
            "/v1/embeddings",
            &json!({"model": "m", "input": [[1, 2], [3]], "dimensions": 4}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(nested["data"].as_array().unwrap().len(), 2);
    assert_eq!(nested["usage"]["prompt_tokens"], 3);

    for bad in [
        json!(""),
        json!([]),
        json!([""]),
        json!({"x": 1}),
        Value::Null,
    ] {
        let (status, _, body) = mock
            .post_json("/v1/embeddings", &json!({"model": "m", "input": bad}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_error_shape(&body);
    }
}

// === models, routing ===

#[tokio::test]
async fn models_match_fixture() {
    let mock = start(MockConfig::default()).await;
    let (status, headers, body) = mock.get_json("/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    assert_openai_headers(&headers);
    assert_same_shape(&body, &fixture(MODELS_FIXTURE), "$");
    assert_eq!(body["data"][0]["id"], "mock-gpt");
    assert_eq!(body["data"][1]["id"], "mock-embed");

    let (status, _, model) = mock.get_json("/v1/models/ft:gpt-4o:acme").await;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&model, &fixture(MODELS_FIXTURE)["data"][0], "$");
    assert_eq!(model["id"], "ft:gpt-4o:acme");

    let (status, _, err) = mock.get_json("/v1/models/missing-model").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_shape(&err);
    assert_eq!(err["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn unknown_path_and_wrong_method() {
    let mock = start(MockConfig::default()).await;
    let (status, headers, body) = mock.get_json("/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_openai_headers(&headers);
    assert_error_shape(&body);

    // (`GET` lists stored chat completions; nothing takes `PUT`.)
    let (status, headers, body) = collect(
        mock.send(Method::PUT, "/v1/chat/completions", &[], None)
            .await,
    )
    .await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_openai_headers(&headers);
    assert_error_shape(&body);
}

// === knobs ===

#[tokio::test]
async fn knob_status_429_with_retry_after() {
    let mock = start(MockConfig::default()).await;
    let body = chat_body(json!({"mock": {"status": 429, "retry_after": 7}}));
    let (status, headers, body) = mock.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_same_shape(&body, &fixture(ERROR_429_FIXTURE), "$");
    assert_error_shape(&body);
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(header(&headers, "retry-after"), "7");
    assert_eq!(header(&headers, "x-ratelimit-reset-requests"), "7s");
    assert_eq!(header(&headers, "x-ratelimit-remaining-requests"), "0");
    assert_openai_headers(&headers);

    // A 429 always carries Retry-After.
    let (_, headers, _) = mock
        .post_json("/v1/embeddings", &json!({"mock": {"status": 429}}))
        .await;
    assert_eq!(header(&headers, "retry-after"), "1");
}

#[tokio::test]
async fn knob_status_other_codes() {
    let mock = start(MockConfig::default()).await;
    let cases = [
        (400, "invalid_request_error", Value::Null),
        (401, "invalid_request_error", json!("invalid_api_key")),
        (404, "invalid_request_error", json!("model_not_found")),
        (500, "server_error", Value::Null),
        (503, "server_error", Value::Null),
    ];
    for (code, kind, err_code) in cases {
        let (status, headers, body) = mock
            .post_json(
                "/v1/chat/completions",
                &json!({"mock": {"status": code, "retry_after": 2}}),
            )
            .await;
        assert_eq!(status.as_u16(), code);
        assert_error_shape(&body);
        assert_eq!(body["error"]["type"], kind, "{code}");
        assert_eq!(body["error"]["code"], err_code, "{code}");
        assert_eq!(header(&headers, "retry-after"), "2");
    }
    let (_, _, body) = mock
        .post_json("/v1/chat/completions", &json!({"mock": {"status": 503}}))
        .await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("The server is overloaded"));
    // Not an HTTP status at all: the knob itself is rejected.
    let (status, _, _) = mock
        .post_json("/v1/chat/completions", &json!({"mock": {"status": 1000}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Unknown knobs are rejected, so typos in tests do not go unnoticed.
    let (status, _, _) = mock
        .post_json(
            "/v1/chat/completions",
            &chat_body(json!({"mock": {"stauts": 500}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn knob_raw_error_body() {
    let mock = start(MockConfig::default()).await;
    let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    let resp = mock
        .post(
            "/v1/chat/completions",
            &json!({"mock": {"raw_error_body": html}}),
        )
        .await;
    let (status, headers, bytes) = collect(resp).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    assert_eq!(&bytes[..], html.as_bytes());
    assert_openai_headers(&headers);

    let resp = mock
        .post(
            "/v1/embeddings",
            &json!({"mock": {"raw_error_body": "busy", "status": 503}}),
        )
        .await;
    let (status, _, bytes) = collect(resp).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(&bytes[..], b"busy");
}

#[tokio::test]
async fn knob_malformed() {
    let mock = start(MockConfig::default()).await;
    let resp = mock
        .post(
            "/v1/chat/completions",
            &chat_body(json!({"mock": {"malformed": true}})),
        )
        .await;
    let (status, headers, bytes) = collect(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());

    let body = chat_body(json!({"stream": true, "mock": {"malformed": true, "words": 2}}));
    let (status, _, bytes) = collect(mock.post("/v1/chat/completions", &body).await).await;
    assert_eq!(status, StatusCode::OK);
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    let broken = text
        .split_terminator("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|p| *p != "[DONE]" && serde_json::from_str::<Value>(p).is_err())
        .count();
    assert_eq!(broken, 1);
}

#[tokio::test]
async fn knob_disconnect_after_chunks() {
    let mock = start(MockConfig::default()).await;
    let body =
        chat_body(json!({"stream": true, "mock": {"disconnect_after_chunks": 2, "words": 10}}));
    let resp = mock.post("/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut received = Vec::new();
    let err = loop {
        match body.frame().await {
            Some(Ok(frame)) => received.extend_from_slice(&frame.into_data().unwrap()),
            Some(Err(e)) => break e,
            None => panic!("stream ended cleanly; expected an aborted connection"),
        }
    };
    // hyper reports the cut as an unexpected EOF inside the chunked body.
    assert!(
        format!("{err:?}").contains("UnexpectedEof") || err.is_incomplete_message(),
        "{err:?}"
    );
    let text = std::str::from_utf8(&received).unwrap();
    assert_eq!(text.matches("data: ").count(), 2);
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn knob_stall_after_chunks() {
    let mock = start(MockConfig::default()).await;
    let body = chat_body(json!({"stream": true, "mock": {"stall_after_chunks": 2}}));
    let resp = mock.post("/v1/chat/completions", &body).await;
    let mut body = resp.into_body();
    let mut received = Vec::new();
    while received.windows(6).filter(|w| w == b"data: ").count() < 2 {
        let frame = body.frame().await.unwrap().unwrap();
        received.extend_from_slice(&frame.into_data().unwrap());
    }
    let next = tokio::time::timeout(Duration::from_millis(200), body.frame()).await;
    assert!(
        next.is_err(),
        "stream should stall with the connection open"
    );
}

#[tokio::test]
async fn knob_echo() {
    let mock = start(MockConfig::default()).await;
    let body = chat_body(json!({"mock": {"echo": true}, "vendor_field": {"keep": [1, 2]}}));
    let bytes = serde_json::to_vec(&body).unwrap();
    let headers = [("authorization", "Bearer sk-test"), ("x-custom", "yes")];
    let resp = mock
        .send(
            Method::POST,
            "/v1/chat/completions?trace=1",
            &headers,
            Some(&bytes),
        )
        .await;
    let (status, _, resp) = collect(resp).await;
    assert_eq!(status, StatusCode::OK);
    let resp: Value = serde_json::from_slice(&resp).unwrap();
    let content = resp["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        !content.contains('\n') && !content.contains(": "),
        "compact JSON expected"
    );
    let echo: Value = serde_json::from_str(content).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/v1/chat/completions");
    assert_eq!(echo["query"], "trace=1");
    assert_eq!(echo["headers"]["authorization"], "Bearer sk-test");
    assert_eq!(echo["headers"]["x-custom"], "yes");
    assert_eq!(echo["headers"]["content-type"], "application/json");
    assert!(echo["headers"]["host"].is_string());
    assert_eq!(echo["body"], body);

    // Streaming echoes in a single content chunk.
    let body = chat_body(json!({"stream": true, "mock": {"echo": true}}));
    let (_, _, bytes) = collect(mock.post("/v1/chat/completions", &body).await).await;
    let chunks = parse_sse(&bytes);
    assert_eq!(chunks.len(), 3);
    let echo: Value = serde_json::from_str(
        chunks[1]["choices"][0]["delta"]["content"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(echo["body"], body);
    assert_eq!(echo["query"], Value::Null);
}

#[tokio::test]
async fn latency_applies() {
    let mock = start(MockConfig {
        latency: Duration::from_millis(80),
        ..MockConfig::default()
    })
    .await;
    let t = Instant::now();
    let (status, _, _) = mock
        .post_json("/v1/chat/completions", &chat_body(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(80));

    // The knob overrides the configured latency, and applies before stream headers too.
    let t = Instant::now();
    let resp = mock
        .post(
            "/v1/chat/completions",
            &chat_body(json!({"stream": true, "mock": {"latency_ms": 150}})),
        )
        .await;
    assert!(t.elapsed() >= Duration::from_millis(150));
    collect(resp).await;

    let t = Instant::now();
    mock.post_json(
        "/v1/chat/completions",
        &chat_body(json!({"mock": {"latency_ms": 0}})),
    )
    .await;
    assert!(t.elapsed() < Duration::from_millis(80));
}

#[tokio::test]
async fn chunk_delay_spaces_events() {
    let mock = start(MockConfig::default()).await;
    let body = chat_body(json!({"stream": true, "mock": {"words": 3, "chunk_delay_ms": 25}}));
    let t = Instant::now();
    let resp = mock.post("/v1/chat/completions", &body).await;
    let mut body = resp.into_body();
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        frames.push(frame.unwrap().into_data().unwrap());
    }
    // Six events (role, 3 words, finish, [DONE]) with a delay between each pair.
    assert!(t.elapsed() >= Duration::from_millis(5 * 25));
    let joined: Vec<u8> = frames.concat();
    assert_eq!(parse_sse(&joined).len(), 5);
}

#[tokio::test]
async fn api_key_enforced() {
    let mock = start(MockConfig {
        api_key: Some("sk-right".into()),
        ..MockConfig::default()
    })
    .await;
    let bytes = serde_json::to_vec(&chat_body(json!({}))).unwrap();
    let post = |headers: &'static [(&'static str, &'static str)], path: &'static str| {
        let mock = &mock;
        let bytes = &bytes;
        async move {
            let (status, headers, body) =
                collect(mock.send(Method::POST, path, headers, Some(bytes)).await).await;
            (
                status,
                headers,
                serde_json::from_slice::<Value>(&body).unwrap(),
            )
        }
    };

    let (status, headers, body) = post(&[], "/v1/chat/completions").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_openai_headers(&headers);
    assert_error_shape(&body);

    let (status, _, body) = post(
        &[("authorization", "Bearer sk-wrong")],
        "/v1/chat/completions",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "invalid_api_key");

    let (status, _, _) = post(
        &[("authorization", "Bearer sk-right")],
        "/v1/chat/completions",
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, _) = post(&[("api-key", "sk-right")], "/v1/chat/completions").await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, _) = post(&[], "/v1/models").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let resp = mock.send(Method::GET, "/v1/models", &[], None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = mock
        .send(
            Method::GET,
            "/v1/models",
            &[("authorization", "Bearer sk-right")],
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn azure_routes() {
    let mock = start(MockConfig {
        api_key: Some("az-key".into()),
        ..MockConfig::default()
    })
    .await;
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});
    let bytes = serde_json::to_vec(&body).unwrap();
    let path = "/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21";
    let resp = mock
        .send(Method::POST, path, &[("api-key", "az-key")], Some(&bytes))
        .await;
    let (status, _, resp) = collect(resp).await;
    assert_eq!(status, StatusCode::OK);
    let resp: Value = serde_json::from_slice(&resp).unwrap();
    assert_same_shape(&resp, &fixture(CHAT_FIXTURE), "$");
    assert_eq!(resp["model"], "my-gpt");

    let resp = mock
        .send(Method::POST, path, &[("api-key", "nope")], Some(&bytes))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // A model in the body wins over the deployment name.
    let bytes = serde_json::to_vec(&json!({"model": "gpt-x", "input": "hi"})).unwrap();
    let path = "/openai/deployments/my-embed/embeddings?api-version=2024-10-21";
    let resp = mock
        .send(Method::POST, path, &[("api-key", "az-key")], Some(&bytes))
        .await;
    let (status, _, resp) = collect(resp).await;
    assert_eq!(status, StatusCode::OK);
    let resp: Value = serde_json::from_slice(&resp).unwrap();
    assert_same_shape(&resp, &fixture(EMBEDDINGS_FIXTURE), "$");
    assert_eq!(resp["model"], "gpt-x");
}

#[tokio::test]
async fn rate_limit_headers_count_down() {
    let mock = start(MockConfig::default()).await;
    let (_, first, _) = mock
        .post_json("/v1/chat/completions", &chat_body(json!({})))
        .await;
    let (_, second, _) = mock
        .post_json("/v1/chat/completions", &chat_body(json!({})))
        .await;
    assert_eq!(
        header(&first, "x-ratelimit-limit-requests"),
        limits::LIMIT_REQUESTS.to_string()
    );
    assert_eq!(
        header(&first, "x-ratelimit-limit-tokens"),
        limits::LIMIT_TOKENS.to_string()
    );
    let remaining = |h: &HeaderMap| {
        header(h, "x-ratelimit-remaining-requests")
            .parse::<u64>()
            .unwrap()
    };
    // Unless a minute boundary fell between the two calls, the budget went down by one.
    assert!(
        remaining(&second) < remaining(&first) || remaining(&second) == limits::LIMIT_REQUESTS - 1
    );
    assert!(
        header(&first, "x-ratelimit-remaining-tokens")
            .parse::<u64>()
            .unwrap()
            < limits::LIMIT_TOKENS
    );
}

// === units ===

#[test]
fn rate_window_counts_and_resets() {
    let w = limits::RateWindow::default();
    let t0 = 120_000; // the start of a minute
    let a = w.record(t0, 100, 0);
    assert_eq!(a.remaining_requests, limits::LIMIT_REQUESTS - 1);
    assert_eq!(a.remaining_tokens, limits::LIMIT_TOKENS - 100);
    assert_eq!(a.reset_requests_ms, 6); // one request refills in 60s / 10 000
    let b = w.record(t0 + 10, 0, 0);
    assert_eq!(b.remaining_requests, limits::LIMIT_REQUESTS - 2);
    let c = w.record(t0 + 60_000, 0, 0);
    assert_eq!(
        c.remaining_requests,
        limits::LIMIT_REQUESTS - 1,
        "new minute, new budget"
    );
}

#[test]
fn durations_format_like_openai() {
    for (ms, want) in [
        (0, "0s"),
        (6, "6ms"),
        (120, "120ms"),
        (1000, "1s"),
        (8640, "8.64s"),
        (59_999, "59.999s"),
        (360_000, "6m0s"),
        (3_723_500, "1h2m3.5s"),
    ] {
        assert_eq!(limits::format_duration_ms(ms), want);
    }
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (input, want) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(text::base64(input.as_bytes()), want);
        assert_eq!(decode_base64(want), input.as_bytes());
    }
}

#[test]
fn fake_text_is_deterministic_english() {
    for words in [0, 1, 5, 12, 20, 57] {
        let t = text::fake_text(42, words);
        assert_eq!(t, text::fake_text(42, words));
        let count = if t.is_empty() {
            0
        } else {
            t.split(' ').count()
        };
        assert_eq!(count, words as usize);
        assert!(
            words == 0 || (t.ends_with('.') && t.starts_with(|c: char| c.is_ascii_uppercase()))
        );
    }
    assert_ne!(text::fake_text(1, 12), text::fake_text(2, 12));
    for seed in 0..50 {
        assert!((12..=20).contains(&text::default_word_count(seed)));
    }
}

#[test]
fn json_strings_escape_like_serde() {
    for s in [
        "plain",
        "quo\"te",
        "back\\slash",
        "new\nline",
        "tab\t",
        "\u{1}ctl",
        "ünï",
    ] {
        let mut buf = Vec::new();
        text::push_json_str(&mut buf, s);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            serde_json::to_string(s).unwrap()
        );
    }
}

#[test]
fn ids_have_openai_shape() {
    let a = text::random_id("chatcmpl-", 29);
    let b = text::random_id("chatcmpl-", 29);
    assert_ne!(a, b);
    assert_eq!(a.len(), "chatcmpl-".len() + 29);
    assert!(a["chatcmpl-".len()..]
        .bytes()
        .all(|c| c.is_ascii_alphanumeric()));
}

#[tokio::test]
async fn event_body_yields_one_event_per_frame() {
    let mut buf = sse::EventBuf::default();
    for event in ["data: a\n\n", "data: bb\n\n", "data: [DONE]\n\n"] {
        buf.buf().extend_from_slice(event.as_bytes());
        buf.end_event();
    }
    let mut body = buf.into_body(Duration::from_millis(1), None, sse::Ending::Finish);
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        frames.push(frame.unwrap().into_data().unwrap());
    }
    assert_eq!(frames, ["data: a\n\n", "data: bb\n\n", "data: [DONE]\n\n"]);

    let mut buf = sse::EventBuf::default();
    for _ in 0..3 {
        buf.buf().extend_from_slice(b"data: x\n\n");
        buf.end_event();
    }
    let mut body = buf.into_body(Duration::ZERO, Some(1), sse::Ending::Abort);
    assert!(body.frame().await.unwrap().is_ok());
    assert!(body.frame().await.unwrap().is_err());
    assert!(body.frame().await.is_none());
}
