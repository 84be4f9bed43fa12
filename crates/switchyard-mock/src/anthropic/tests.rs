//! Tests for Anthropic's format: the mock runs on an ephemeral loopback port and is driven
//! over real HTTP, and its output is checked against hand-written fixtures of the Messages
//! API's wire format, key order and SSE framing included.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt as _;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::tests::{assert_openai_headers, chat_body, collect, header, start, Mock};
use crate::{limits, MockConfig};

const MESSAGE_FIXTURE: &str = include_str!("../../fixtures/anthropic/message.json");
const TOOL_USE_FIXTURE: &str = include_str!("../../fixtures/anthropic/message_tool_use.json");
const STREAM_FIXTURE: &str = include_str!("../../fixtures/anthropic/message_stream.sse");
const TOOL_STREAM_FIXTURE: &str =
    include_str!("../../fixtures/anthropic/message_stream_tool_use.sse");
const ERROR_429_FIXTURE: &str = include_str!("../../fixtures/anthropic/error_429.json");
const OVERLOADED_FIXTURE: &str = include_str!("../../fixtures/anthropic/error_overloaded.json");
const MODELS_FIXTURE: &str = include_str!("../../fixtures/anthropic/models.json");

const VERSION: (&str, &str) = ("anthropic-version", "2023-06-01");

// === harness ===

/// A JSON document that remembers key order (serde_json's `Value` sorts keys here), so shape
/// checks can compare the order fields are written in.
#[derive(Debug, Clone)]
enum Ordered {
    Null,
    Bool,
    Number,
    String(String),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Bool)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Number)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Number)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Number)
            }
            fn visit_str<E>(self, s: &str) -> Result<Ordered, E> {
                Ok(Ordered::String(s.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Ordered>()? {
                    entries.push((k, v));
                }
                Ok(Ordered::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

impl Ordered {
    fn parse(text: &str) -> Ordered {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("bad JSON {text:?}: {e}"))
    }

    fn kind(&self) -> &'static str {
        match self {
            Ordered::Null => "null",
            Ordered::Bool => "bool",
            Ordered::Number => "number",
            Ordered::String(_) => "string",
            Ordered::Array(_) => "array",
            Ordered::Object(_) => "object",
        }
    }

    fn get(&self, key: &str) -> Option<&Ordered> {
        match self {
            Ordered::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn type_tag(&self) -> Option<&str> {
        match self.get("type") {
            Some(Ordered::String(s)) => Some(s),
            _ => None,
        }
    }
}

/// Keys whose value is a string in some documents and `null` in others.
const NULLABLE: [&str; 4] = ["stop_reason", "stop_sequence", "first_id", "last_id"];

/// Asserts `actual` has the fixture's structure: the same keys in the same order and the same
/// JSON types, recursively. Array elements are compared with the fixture element of the same
/// `type` (or the first one); a tool's `input` only has to be an object, since its keys come
/// from the tool's schema.
fn assert_same_shape(actual: &Ordered, fixture: &Ordered, path: &str) {
    match (actual, fixture) {
        (Ordered::Object(a), Ordered::Object(f)) => {
            let ak: Vec<&str> = a.iter().map(|(k, _)| k.as_str()).collect();
            let fk: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(ak, fk, "keys or their order differ at {path}");
            for ((k, av), (_, fv)) in a.iter().zip(f) {
                let here = format!("{path}.{k}");
                if k == "input" && fv.kind() == "object" {
                    assert_eq!(av.kind(), "object", "{here}");
                } else if NULLABLE.contains(&k.as_str())
                    && matches!(
                        (av, fv),
                        (Ordered::Null, Ordered::String(_)) | (Ordered::String(_), Ordered::Null)
                    )
                {
                } else {
                    assert_same_shape(av, fv, &here);
                }
            }
        }
        (Ordered::Array(a), Ordered::Array(f)) => {
            for (i, item) in a.iter().enumerate() {
                let peer = f
                    .iter()
                    .find(|x| x.type_tag().is_some() && x.type_tag() == item.type_tag())
                    .or(f.first());
                if let Some(peer) = peer {
                    assert_same_shape(item, peer, &format!("{path}[{i}]"));
                }
            }
        }
        _ => assert_eq!(
            actual.kind(),
            fixture.kind(),
            "type differs at {path}: {actual:?} vs {fixture:?}"
        ),
    }
}

/// One SSE event: its name, its raw data line and the data parsed.
#[derive(Debug, Clone)]
struct Event {
    name: String,
    data: String,
    value: Value,
}

impl Event {
    /// A key telling events apart for shape comparison: the name plus the block or delta type.
    fn key(&self) -> String {
        let sub = self.value["content_block"]["type"]
            .as_str()
            .or(self.value["delta"]["type"].as_str())
            .unwrap_or("");
        format!("{}/{sub}", self.name)
    }
}

/// Splits an SSE body into events, asserting Anthropic's exact framing: every event is
/// `event: <name>\ndata: <single-line JSON>\n\n`, and the data's `type` is the event's name.
fn parse_events(body: &[u8]) -> Vec<Event> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.ends_with("\n\n"), "stream must end an event: {text:?}");
    text.split_terminator("\n\n")
        .map(|raw| {
            let (name_line, data_line) = raw
                .split_once('\n')
                .unwrap_or_else(|| panic!("event without data: {raw:?}"));
            let name = name_line
                .strip_prefix("event: ")
                .unwrap_or_else(|| panic!("bad event line {name_line:?}"));
            let data = data_line
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("bad data line {data_line:?}"));
            assert!(!data.contains('\n'), "event spans lines: {raw:?}");
            let value: Value = serde_json::from_str(data).unwrap();
            assert_eq!(value["type"], name, "{raw}");
            if name != "ping" {
                // Compact JSON: re-serializing gives the same length back.
                assert_eq!(data.len(), serde_json::to_string(&value).unwrap().len());
            }
            Event {
                name: name.to_owned(),
                data: data.to_owned(),
                value,
            }
        })
        .collect()
}

/// Asserts the documented event order: `message_start`; per block a start, deltas and a stop,
/// with one `ping` right after the first block starts; `message_delta`; `message_stop`.
fn assert_event_order(events: &[Event]) {
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(
        names.get(names.len().saturating_sub(2)..),
        Some(&["message_delta", "message_stop"][..]),
        "{names:?}"
    );
    let mut i = 1;
    let mut block = 0;
    while i < names.len() - 2 {
        assert_eq!(names[i], "content_block_start", "{names:?}");
        assert_eq!(events[i].value["index"], block, "{names:?}");
        i += 1;
        if block == 0 {
            assert_eq!(names[i], "ping", "{names:?}");
            i += 1;
        }
        while names[i] == "content_block_delta" {
            assert_eq!(events[i].value["index"], block);
            i += 1;
        }
        assert_eq!(names[i], "content_block_stop", "{names:?}");
        assert_eq!(events[i].value["index"], block);
        i += 1;
        block += 1;
    }
    assert!(block >= 1, "no content block: {names:?}");
    assert_eq!(names.iter().filter(|n| **n == "ping").count(), 1);
}

/// Asserts every event has the shape of the fixture event with the same name and block or
/// delta type, which must exist.
fn assert_events_match(ours: &[Event], fixture: &[Event]) {
    for event in ours {
        let peer = fixture
            .iter()
            .find(|f| f.key() == event.key())
            .unwrap_or_else(|| panic!("fixture has no {} event", event.key()));
        assert_same_shape(
            &Ordered::parse(&event.data),
            &Ordered::parse(&peer.data),
            &event.key(),
        );
    }
}

/// The text a stream's `text_delta`s add up to.
fn streamed_text(events: &[Event], delta_type: &str, field: &str) -> String {
    events
        .iter()
        .filter(|e| e.value["delta"]["type"] == delta_type)
        .map(|e| e.value["delta"][field].as_str().unwrap())
        .collect()
}

fn msg_body(extra: Value) -> Value {
    let mut body = json!({
        "model": "claude-mock-sonnet-4",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Tell me about bridges."}]
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            // `null` in `extra` removes the field, to test missing ones.
            if v.is_null() {
                body.remove(k);
            } else {
                body.insert(k.clone(), v.clone());
            }
        }
    }
    body
}

async fn send(
    mock: &Mock,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (StatusCode, HeaderMap, Bytes) {
    collect(mock.send(Method::POST, path, headers, Some(body)).await).await
}

/// POSTs `body` to `/v1/messages` with the version header; returns the raw bytes.
async fn post_raw(mock: &Mock, body: &Value) -> (StatusCode, HeaderMap, Bytes) {
    send(
        mock,
        "/v1/messages",
        &[VERSION],
        &serde_json::to_vec(body).unwrap(),
    )
    .await
}

/// A JSON response body, parsed but with its text kept, since `Value` forgets key order.
struct Json {
    value: Value,
    raw: String,
}

impl std::ops::Deref for Json {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.value
    }
}

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

fn json_of(bytes: &[u8]) -> Json {
    let raw = String::from_utf8(bytes.to_vec()).unwrap();
    let value = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{e}: {raw}"));
    Json { value, raw }
}

/// POSTs `body` to `/v1/messages` with the version header; returns parsed JSON.
async fn post(mock: &Mock, body: &Value) -> (StatusCode, HeaderMap, Json) {
    let (status, headers, bytes) = post_raw(mock, body).await;
    (status, headers, json_of(&bytes))
}

async fn get(mock: &Mock, path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Json) {
    let (status, headers, bytes) = collect(mock.send(Method::GET, path, headers, None).await).await;
    (status, headers, json_of(&bytes))
}

fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Asserts Anthropic's response headers are present and none of OpenAI's.
fn assert_anthropic_headers(headers: &HeaderMap) {
    let id = header(headers, "request-id");
    let rest = id.strip_prefix("req_011C").unwrap();
    assert_eq!(rest.len(), 20);
    assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(!header(headers, "anthropic-organization-id").is_empty());
    for family in ["requests", "tokens", "input-tokens", "output-tokens"] {
        header(headers, &format!("anthropic-ratelimit-{family}-limit"))
            .parse::<u64>()
            .unwrap();
        header(headers, &format!("anthropic-ratelimit-{family}-remaining"))
            .parse::<u64>()
            .unwrap();
        let reset = header(headers, &format!("anthropic-ratelimit-{family}-reset"));
        assert!(is_rfc3339(reset), "{family} reset {reset:?}");
    }
    for openai in [
        "x-request-id",
        "openai-version",
        "openai-processing-ms",
        "x-ratelimit-limit-requests",
    ] {
        assert!(headers.get(openai).is_none(), "unexpected {openai}");
    }
}

/// Asserts an Anthropic error: the fixtures' envelope, the given status and type, and a
/// `request_id` equal to the `request-id` header.
fn assert_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &Json,
    want: u16,
    kind: &str,
) -> String {
    assert_eq!(status.as_u16(), want, "{body}");
    assert_same_shape(
        &Ordered::parse(&body.raw),
        &Ordered::parse(ERROR_429_FIXTURE),
        "$",
    );
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert_eq!(body["request_id"], header(headers, "request-id"));
    assert_anthropic_headers(headers);
    body["error"]["message"].as_str().unwrap().to_owned()
}

fn weather_tools() -> Value {
    json!([
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "integer", "minimum": 1, "maximum": 7},
                    "when": {"type": "string", "format": "date"},
                    "detail": {
                        "type": "object",
                        "properties": {"wind": {"type": "boolean"}, "hours": {"type": "array", "items": {"type": "number"}}},
                        "required": ["wind"]
                    }
                },
                "required": ["city"]
            }
        },
        {
            "name": "get_time",
            "description": "Local time",
            "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}
        }
    ])
}

// === messages ===

#[tokio::test]
async fn message_matches_fixture() {
    let mock = start(MockConfig::default()).await;
    let (status, headers, bytes) = post_raw(&mock, &msg_body(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_anthropic_headers(&headers);
    let text = std::str::from_utf8(&bytes).unwrap();
    assert_same_shape(&Ordered::parse(text), &Ordered::parse(MESSAGE_FIXTURE), "$");

    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let id = body["id"].as_str().unwrap().strip_prefix("msg_01").unwrap();
    assert!(id.len() == 22 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(body["model"], "claude-mock-sonnet-4");
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    let content = body["content"][0]["text"].as_str().unwrap();
    let words = content.split(' ').count() as u64;
    assert!((12..=20).contains(&words), "{content}");
    let usage = &body["usage"];
    assert_eq!(usage["output_tokens"], words);
    assert!(usage["input_tokens"].as_u64().unwrap() > 3);
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 0);

    // The same question gets the same answer; a different one does not.
    let (_, _, again) = post(&mock, &msg_body(json!({}))).await;
    assert_eq!(again["content"][0]["text"], content);
    assert_ne!(again["id"], body["id"]);
    let other = msg_body(json!({"messages": [{"role": "user", "content": "Something else"}]}));
    let (_, _, other) = post(&mock, &other).await;
    assert_ne!(other["content"][0]["text"], content);

    // Block content and a system prompt are accepted; the `words` knob sets the length.
    let body = msg_body(json!({
        "system": [{"type": "text", "text": "Be terse."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "More?"}
        ],
        "temperature": 0.5, "top_p": 0.9, "top_k": 40, "metadata": {"user_id": "u-1"},
        "mock": {"words": 5}
    }));
    let (status, _, resp) = post(&mock, &body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(
        resp["content"][0]["text"]
            .as_str()
            .unwrap()
            .split(' ')
            .count(),
        5
    );
}

#[tokio::test]
async fn stream_matches_fixture() {
    let mock = start(MockConfig::default()).await;
    let (status, headers, bytes) = post_raw(&mock, &msg_body(json!({"stream": true}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, "content-type"),
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    assert_anthropic_headers(&headers);

    let ours = parse_events(&bytes);
    let theirs = parse_events(STREAM_FIXTURE.as_bytes());
    assert_event_order(&ours);
    assert_event_order(&theirs);
    assert_events_match(&ours, &theirs);
    // The ping is byte for byte the documented one.
    let ping = ours.iter().find(|e| e.name == "ping").unwrap();
    let their_ping = theirs.iter().find(|e| e.name == "ping").unwrap();
    assert_eq!(ping.data, their_ping.data);

    let start = &ours[0].value["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(start["usage"]["output_tokens"], 1);
    assert_eq!(start["model"], "claude-mock-sonnet-4");

    // The streamed text is exactly the non-streamed text, in several small pieces.
    let deltas = ours.iter().filter(|e| e.name == "content_block_delta");
    assert!(deltas.count() >= 12);
    let streamed = streamed_text(&ours, "text_delta", "text");
    let (_, _, plain) = post(&mock, &msg_body(json!({}))).await;
    assert_eq!(plain["content"][0]["text"], streamed.as_str());
    assert_eq!(
        start["usage"]["input_tokens"],
        plain["usage"]["input_tokens"]
    );
    let delta = &ours[ours.len() - 2].value;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["delta"]["stop_sequence"], Value::Null);
    assert_eq!(
        delta["usage"]["output_tokens"],
        plain["usage"]["output_tokens"]
    );
}

#[tokio::test]
async fn max_tokens_truncates() {
    let mock = start(MockConfig::default()).await;
    let body = msg_body(json!({"max_tokens": 4, "mock": {"words": 10}}));
    let (_, _, resp) = post(&mock, &body).await;
    assert_eq!(resp["stop_reason"], "max_tokens");
    let text = resp["content"][0]["text"].as_str().unwrap();
    assert_eq!(text.split(' ').count(), 4, "{text}");
    assert!(!text.ends_with(' '));
    assert_eq!(resp["usage"]["output_tokens"], 4);
    // The cut text is the start of the full answer.
    let (_, _, full) = post(&mock, &msg_body(json!({"mock": {"words": 10}}))).await;
    assert!(full["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with(text));

    let (_, _, bytes) = post_raw(
        &mock,
        &msg_body(json!({"max_tokens": 4, "stream": true, "mock": {"words": 10}})),
    )
    .await;
    let events = parse_events(&bytes);
    assert_eq!(streamed_text(&events, "text_delta", "text"), text);
    let delta = &events[events.len() - 2].value;
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(delta["usage"]["output_tokens"], 4);

    // Exactly enough room is not a truncation.
    let (_, _, resp) = post(
        &mock,
        &msg_body(json!({"max_tokens": 10, "mock": {"words": 10}})),
    )
    .await;
    assert_eq!(resp["stop_reason"], "end_turn");
}

#[tokio::test]
async fn stop_sequences_cut_the_reply() {
    let mock = start(MockConfig::default()).await;
    let (_, _, full) = post(&mock, &msg_body(json!({"mock": {"words": 12}}))).await;
    let text = full["content"][0]["text"].as_str().unwrap().to_owned();
    // A sequence taken from the middle of the known answer.
    let words: Vec<&str> = text.split(' ').collect();
    let seq = format!(" {}", words[5]);
    let at = text.find(&seq).unwrap();
    let body = msg_body(json!({"stop_sequences": ["never-appears", seq], "mock": {"words": 12}}));
    let (status, _, resp) = post(&mock, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resp["stop_reason"], "stop_sequence");
    assert_eq!(resp["stop_sequence"], seq.as_str());
    assert_eq!(resp["content"][0]["text"], &text[..at]);

    let mut stream_body = body.clone();
    stream_body["stream"] = json!(true);
    let (_, _, bytes) = post_raw(&mock, &stream_body).await;
    let events = parse_events(&bytes);
    assert_eq!(streamed_text(&events, "text_delta", "text"), &text[..at]);
    let delta = &events[events.len() - 2].value["delta"];
    assert_eq!(delta["stop_reason"], "stop_sequence");
    assert_eq!(delta["stop_sequence"], seq.as_str());

    // Sequences that never appear change nothing.
    let body = msg_body(json!({"stop_sequences": ["zzz"], "mock": {"words": 12}}));
    let (_, _, resp) = post(&mock, &body).await;
    assert_eq!(resp["stop_reason"], "end_turn");
    assert_eq!(resp["content"][0]["text"], text.as_str());
}

// === tools ===

#[tokio::test]
async fn tool_choice_forces_tool_use() {
    let mock = start(MockConfig::default()).await;
    let forced = json!({"type": "tool", "name": "get_weather"});
    let body = msg_body(json!({"tools": weather_tools(), "tool_choice": forced}));
    let (status, _, bytes) = post_raw(&mock, &body).await;
    assert_eq!(status, StatusCode::OK);
    let text = std::str::from_utf8(&bytes).unwrap();
    assert_same_shape(
        &Ordered::parse(text),
        &Ordered::parse(TOOL_USE_FIXTURE),
        "$",
    );
    let resp: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(resp["stop_reason"], "tool_use");
    let content = resp["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    let call = &content[0];
    assert_eq!(call["type"], "tool_use");
    let id = call["id"]
        .as_str()
        .unwrap()
        .strip_prefix("toolu_01")
        .unwrap();
    assert_eq!(id.len(), 22);
    assert_eq!(call["name"], "get_weather");
    // The input fits the schema.
    let input = &call["input"];
    assert!(input["city"].is_string());
    assert_eq!(input["unit"], "celsius");
    let days = input["days"].as_i64().unwrap();
    assert!((1..=7).contains(&days), "{days}");
    assert_eq!(input["when"].as_str().unwrap().len(), "2025-01-15".len());
    assert_eq!(input["detail"]["wind"], true);
    assert!(input["detail"]["hours"][0].is_number());
    assert!(resp["usage"]["output_tokens"].as_u64().unwrap() > 5);

    // Deterministic input for the same request.
    let (_, _, again) = post(&mock, &body).await;
    assert_eq!(again["content"][0]["input"], *input);
    assert_ne!(again["content"][0]["id"], call["id"]);

    // "any" picks the first tool; "auto" answers in text unless the knob forces a call.
    let any = msg_body(json!({"tools": weather_tools(), "tool_choice": {"type": "any"}}));
    let (_, _, resp) = post(&mock, &any).await;
    assert_eq!(resp["content"][0]["name"], "get_weather");
    let auto = msg_body(json!({"tools": weather_tools(), "tool_choice": {"type": "auto"}}));
    let (_, _, resp) = post(&mock, &auto).await;
    assert_eq!(resp["stop_reason"], "end_turn");
    assert_eq!(resp["content"][0]["type"], "text");
    let knob = msg_body(json!({"tools": weather_tools(), "mock": {"tool_call": true}}));
    let (_, _, resp) = post(&mock, &knob).await;
    assert_eq!(resp["stop_reason"], "tool_use");
    assert_eq!(resp["content"][0]["name"], "get_weather");
    // With no tools declared, the knob still produces a call.
    let (_, _, resp) = post(&mock, &msg_body(json!({"mock": {"tool_call": true}}))).await;
    assert_eq!(resp["content"][0]["name"], "mock_tool");
    assert_eq!(resp["content"][0]["input"], json!({}));
}

#[tokio::test]
async fn parallel_tool_calls_knob() {
    let mock = start(MockConfig::default()).await;
    let body = msg_body(json!({"tools": weather_tools(), "mock": {"parallel_tool_calls": 3}}));
    let (_, _, resp) = post(&mock, &body).await;
    assert_eq!(resp["stop_reason"], "tool_use");
    let names: Vec<&str> = resp["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_weather", "get_time", "get_weather"]);
    let ids: std::collections::HashSet<&str> = resp["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);

    // Starting from a named tool; capped at one by disable_parallel_tool_use.
    let body = msg_body(json!({
        "tools": weather_tools(),
        "tool_choice": {"type": "tool", "name": "get_time"},
        "mock": {"parallel_tool_calls": 2}
    }));
    let (_, _, resp) = post(&mock, &body).await;
    assert_eq!(resp["content"][0]["name"], "get_time");
    assert_eq!(resp["content"][1]["name"], "get_weather");
    let body = msg_body(json!({
        "tools": weather_tools(),
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "mock": {"parallel_tool_calls": 4}
    }));
    let (_, _, resp) = post(&mock, &body).await;
    assert_eq!(resp["content"].as_array().unwrap().len(), 1);

    // Streams: one start/deltas/stop triple per call, indices in order.
    let body = msg_body(
        json!({"tools": weather_tools(), "stream": true, "mock": {"parallel_tool_calls": 2}}),
    );
    let (_, _, bytes) = post_raw(&mock, &body).await;
    let events = parse_events(&bytes);
    assert_event_order(&events);
    let starts: Vec<&Value> = events
        .iter()
        .filter(|e| e.name == "content_block_start")
        .map(|e| &e.value)
        .collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[1]["index"], 1);
    assert_eq!(starts[1]["content_block"]["name"], "get_time");
}

#[tokio::test]
async fn tool_stream_matches_fixture_and_fragments_join() {
    let mock = start(MockConfig::default()).await;
    let body = msg_body(json!({"tools": weather_tools(), "tool_choice": {"type": "any"}}));
    let (_, _, plain) = post(&mock, &body).await;
    let mut stream_body = body.clone();
    stream_body["stream"] = json!(true);
    let (status, _, bytes) = post_raw(&mock, &stream_body).await;
    assert_eq!(status, StatusCode::OK);
    let ours = parse_events(&bytes);
    let theirs = parse_events(TOOL_STREAM_FIXTURE.as_bytes());
    assert_event_order(&ours);
    assert_event_order(&theirs);
    assert_events_match(&ours, &theirs);

    let start = &ours[1].value["content_block"];
    assert_eq!(start["type"], "tool_use");
    assert_eq!(start["name"], "get_weather");
    assert_eq!(start["input"], json!({}));
    assert!(start["id"].as_str().unwrap().starts_with("toolu_01"));
    let fragments: Vec<&str> = ours
        .iter()
        .filter(|e| e.value["delta"]["type"] == "input_json_delta")
        .map(|e| e.value["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(
        fragments[0], "",
        "the first fragment is empty, as documented"
    );
    assert!(fragments.len() > 3, "{fragments:?}");
    let joined: String = fragments.concat();
    let input: Value = serde_json::from_str(&joined).unwrap();
    assert_eq!(input, plain["content"][0]["input"]);
    let delta = &ours[ours.len() - 2].value;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        delta["usage"]["output_tokens"],
        plain["usage"]["output_tokens"]
    );
}

// === thinking ===

#[tokio::test]
async fn thinking_block_comes_first() {
    let mock = start(MockConfig::default()).await;
    let body = msg_body(json!({
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048}
    }));
    let (status, _, bytes) = post_raw(&mock, &body).await;
    assert_eq!(status, StatusCode::OK);
    let shape = Ordered::parse(std::str::from_utf8(&bytes).unwrap());
    let Some(Ordered::Array(content)) = shape.get("content") else {
        panic!("no content");
    };
    // Hand-written from the documented thinking block.
    let doc =
        Ordered::parse(r#"{"type":"thinking","thinking":"Let me see.","signature":"EqQBCgIYAh"}"#);
    assert_same_shape(&content[0], &doc, "content[0]");
    let resp: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(resp["content"][1]["type"], "text");
    let thinking = resp["content"][0]["thinking"].as_str().unwrap();
    let text = resp["content"][1]["text"].as_str().unwrap();
    assert!(!thinking.is_empty() && thinking != text);
    assert!(resp["content"][0]["signature"].as_str().unwrap().len() > 40);
    let tokens = thinking.split(' ').count() + text.split(' ').count();
    assert_eq!(resp["usage"]["output_tokens"], tokens as u64);

    // Streaming: thinking deltas, then one signature delta, then the text block.
    let mut stream_body = body.clone();
    stream_body["stream"] = json!(true);
    let (_, _, bytes) = post_raw(&mock, &stream_body).await;
    let events = parse_events(&bytes);
    assert_event_order(&events);
    assert_eq!(
        events[1].data,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#
    );
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e.value["index"] == 0 && e.name == "content_block_delta")
        .map(|e| e.value["delta"]["type"].as_str().unwrap())
        .collect();
    assert!(kinds.len() > 2);
    assert_eq!(kinds.last(), Some(&"signature_delta"));
    assert!(kinds[..kinds.len() - 1]
        .iter()
        .all(|k| *k == "thinking_delta"));
    assert_eq!(
        streamed_text(&events, "thinking_delta", "thinking"),
        thinking
    );
    assert_eq!(
        streamed_text(&events, "signature_delta", "signature"),
        resp["content"][0]["signature"].as_str().unwrap()
    );
    assert_eq!(streamed_text(&events, "text_delta", "text"), text);

    // Thinking with a forced tool call is refused, as the API does.
    let body = msg_body(json!({
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": weather_tools(),
        "tool_choice": {"type": "any"}
    }));
    let (status, headers, resp) = post(&mock, &body).await;
    assert_error(status, &headers, &resp, 400, "invalid_request_error");
    // Thinking and an unforced tool call go together: thinking first, then tool_use.
    let body = msg_body(json!({
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": weather_tools(),
        "mock": {"tool_call": true}
    }));
    let (_, _, resp) = post(&mock, &body).await;
    assert_eq!(resp["content"][0]["type"], "thinking");
    assert_eq!(resp["content"][1]["type"], "tool_use");
}

// === prompt caching and token counting ===

#[tokio::test]
async fn cache_control_reports_cache_tokens() {
    let mock = start(MockConfig::default()).await;
    let long = "word ".repeat(400);
    let plain = msg_body(json!({"system": [{"type": "text", "text": long}]}));
    let (_, _, base) = post(&mock, &plain).await;
    let total = base["usage"]["input_tokens"].as_u64().unwrap();
    assert_eq!(base["usage"]["cache_creation_input_tokens"], 0);

    let cached = msg_body(json!({
        "system": [{"type": "text", "text": long, "cache_control": {"type": "ephemeral"}}]
    }));
    let (_, _, resp) = post(&mock, &cached).await;
    let usage = &resp["usage"];
    let created = usage["cache_creation_input_tokens"].as_u64().unwrap();
    let input = usage["input_tokens"].as_u64().unwrap();
    assert!(created > 400, "{usage}");
    assert!(input > 0 && input < 30, "{usage}");
    assert_eq!(usage["cache_read_input_tokens"], 0);
    // The cache_control marker itself adds a few characters to the estimate.
    assert!(created + input >= total);

    // The knob simulates the repeat request: the prefix is read, not written.
    let mut repeat = cached.clone();
    repeat["mock"] = json!({"cache_read_tokens": created});
    let (_, _, resp) = post(&mock, &repeat).await;
    assert_eq!(resp["usage"]["cache_read_input_tokens"], created);
    assert_eq!(resp["usage"]["cache_creation_input_tokens"], 0);
    assert_eq!(resp["usage"]["input_tokens"], input);

    // Breakpoints on tools and message blocks count too, up to the last one.
    let body = msg_body(json!({
        "tools": [{"name": "t", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": long, "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "and now?"}
        ]
    }));
    let (_, _, resp) = post(&mock, &body).await;
    assert!(
        resp["usage"]["cache_creation_input_tokens"]
            .as_u64()
            .unwrap()
            > 400
    );

    // Streams report the same split in message_start.
    let mut stream = cached.clone();
    stream["stream"] = json!(true);
    let (_, _, bytes) = post_raw(&mock, &stream).await;
    let events = parse_events(&bytes);
    let start_usage = &events[0].value["message"]["usage"];
    assert_eq!(start_usage["cache_creation_input_tokens"], created);
    assert_eq!(start_usage["input_tokens"], input);
}

#[tokio::test]
async fn count_tokens_matches_messages() {
    let mock = start(MockConfig::default()).await;
    let body = msg_body(json!({"system": "Be brief.", "tools": weather_tools()}));
    let (_, _, resp) = post(&mock, &body).await;
    let mut count_body = body.clone();
    count_body.as_object_mut().unwrap().remove("max_tokens");
    let (status, headers, bytes) = send(
        &mock,
        "/v1/messages/count_tokens",
        &[VERSION],
        &serde_json::to_vec(&count_body).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_anthropic_headers(&headers);
    assert_eq!(
        std::str::from_utf8(&bytes).unwrap(),
        format!("{{\"input_tokens\":{}}}", resp["usage"]["input_tokens"])
    );

    // With a cache breakpoint the count is still the whole prompt.
    let cached = msg_body(json!({
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    }));
    let (_, _, resp) = post(&mock, &cached).await;
    let (_, _, bytes) = send(
        &mock,
        "/v1/messages/count_tokens",
        &[VERSION],
        &serde_json::to_vec(&cached).unwrap(),
    )
    .await;
    let count: Value = serde_json::from_slice(&bytes).unwrap();
    let usage = &resp["usage"];
    assert_eq!(
        count["input_tokens"].as_u64(),
        Some(
            usage["input_tokens"].as_u64().unwrap()
                + usage["cache_creation_input_tokens"].as_u64().unwrap()
        )
    );

    // Validation applies, and the version header is required here too.
    let (status, headers, bytes) = send(
        &mock,
        "/v1/messages/count_tokens",
        &[VERSION],
        br#"{"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    let err = json_of(&bytes);
    let message = assert_error(status, &headers, &err, 400, "invalid_request_error");
    assert_eq!(message, "model: Field required");
    let (status, _, _) = send(&mock, "/v1/messages/count_tokens", &[], b"{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

// === headers, auth, validation ===

#[tokio::test]
async fn version_header_required() {
    let mock = start(MockConfig::default()).await;
    let bytes = serde_json::to_vec(&msg_body(json!({}))).unwrap();
    let (status, headers, body) = send(&mock, "/v1/messages", &[], &bytes).await;
    let body = json_of(&body);
    let message = assert_error(status, &headers, &body, 400, "invalid_request_error");
    assert_eq!(message, "anthropic-version: header is required");

    let (status, headers, body) = send(
        &mock,
        "/v1/messages",
        &[("anthropic-version", "2024-99-99")],
        &bytes,
    )
    .await;
    let body = json_of(&body);
    let message = assert_error(status, &headers, &body, 400, "invalid_request_error");
    assert_eq!(
        message,
        "anthropic-version: \"2024-99-99\" is not a valid version"
    );

    let (status, _, _) = send(
        &mock,
        "/v1/messages",
        &[("anthropic-version", "2023-01-01")],
        &bytes,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn x_api_key_enforced() {
    let mock = start(MockConfig {
        api_key: Some("sk-ant-right".into()),
        ..MockConfig::default()
    })
    .await;
    let bytes = serde_json::to_vec(&msg_body(json!({}))).unwrap();
    for (headers, want) in [
        (vec![VERSION], "x-api-key header is required"),
        (
            vec![VERSION, ("x-api-key", "sk-ant-wrong")],
            "invalid x-api-key",
        ),
        // A bearer token is not how Anthropic authenticates.
        (
            vec![VERSION, ("authorization", "Bearer sk-ant-right")],
            "x-api-key header is required",
        ),
    ] {
        let (status, resp_headers, body) = send(&mock, "/v1/messages", &headers, &bytes).await;
        let body = json_of(&body);
        let message = assert_error(status, &resp_headers, &body, 401, "authentication_error");
        assert_eq!(message, want);
    }
    let (status, _, _) = send(
        &mock,
        "/v1/messages",
        &[VERSION, ("x-api-key", "sk-ant-right")],
        &bytes,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // OpenAI routes keep their own scheme and shape.
    let chat = serde_json::to_vec(&chat_body(json!({}))).unwrap();
    let (status, headers, body) = send(
        &mock,
        "/v1/chat/completions",
        &[("x-api-key", "sk-ant-right")],
        &chat,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_openai_headers(&headers);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body["error"]["message"].is_string() && body.get("type").is_none());
    let (status, _, _) = send(
        &mock,
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-ant-right")],
        &chat,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let mock = start(MockConfig::default()).await;
    let user = |content: Value| json!({"role": "user", "content": content});
    let cases: Vec<(Value, &str)> = vec![
        (msg_body(json!({"model": null})), "model: Field required"),
        (
            msg_body(json!({"model": 7})),
            "model: Input should be a valid string",
        ),
        (
            msg_body(json!({"max_tokens": null})),
            "max_tokens: Field required",
        ),
        (
            msg_body(json!({"max_tokens": "many"})),
            "max_tokens: Input should be a valid integer",
        ),
        (
            msg_body(json!({"max_tokens": 1.5})),
            "max_tokens: Input should be a valid integer",
        ),
        (
            msg_body(json!({"max_tokens": 0})),
            "max_tokens: Input should be greater than or equal to 1",
        ),
        (
            msg_body(json!({"messages": null})),
            "messages: Field required",
        ),
        (
            msg_body(json!({"messages": "hi"})),
            "messages: Input should be a valid list",
        ),
        (
            msg_body(json!({"messages": []})),
            "messages: at least one message is required",
        ),
        (
            msg_body(json!({"messages": [3]})),
            "messages.0: Input should be a valid dictionary",
        ),
        (
            msg_body(json!({"messages": [{"role": "system", "content": "x"}]})),
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            msg_body(json!({"messages": [{"content": "x"}]})),
            "messages.0.role: Field required",
        ),
        (
            msg_body(json!({"messages": [{"role": "user"}]})),
            "messages.0.content: Field required",
        ),
        (
            msg_body(json!({"messages": [user(json!(5))]})),
            "messages.0.content: Input should be a valid string or a list of content blocks",
        ),
        (
            msg_body(json!({"messages": [user(json!([{"text": "x"}]))]})),
            "messages.0.content.0.type: Field required",
        ),
        (
            msg_body(json!({"messages": [user(json!([{"type": "text"}]))]})),
            "messages.0.content.0.text.text: Field required",
        ),
        (
            msg_body(json!({"messages": [user(json!([{"type": "text", "text": ""}]))]})),
            "messages: text content blocks must be non-empty",
        ),
        (
            msg_body(json!({"messages": [user(json!(""))]})),
            "messages.0: all messages must have non-empty content except for the optional final \
             assistant message",
        ),
        (
            msg_body(json!({"system": 5})),
            "system: Input should be a valid string or a list of text blocks",
        ),
        (
            msg_body(json!({"system": [{"type": "image", "source": {}}]})),
            "system.0.type: Input should be 'text'",
        ),
        (
            msg_body(json!({"stop_sequences": "x"})),
            "stop_sequences: Input should be a valid list",
        ),
        (
            msg_body(json!({"stop_sequences": ["a", 1]})),
            "stop_sequences.1: Input should be a valid string",
        ),
        (
            msg_body(json!({"stream": "yes"})),
            "stream: Input should be a valid boolean",
        ),
        (
            msg_body(json!({"tools": {}})),
            "tools: Input should be a valid list",
        ),
        (
            msg_body(json!({"tools": [{"input_schema": {}}]})),
            "tools.0.name: Field required",
        ),
        (
            msg_body(json!({"tools": [{"name": "t"}]})),
            "tools.0.custom.input_schema: Field required",
        ),
        (
            msg_body(json!({"tools": weather_tools(), "tool_choice": {"type": "tool"}})),
            "tool_choice.tool.name: Field required",
        ),
        (
            msg_body(json!({"tool_choice": {"type": "any"}})),
            "tool_choice: tool_choice may only be specified while providing tools",
        ),
        (
            msg_body(
                json!({"thinking": {"type": "enabled", "budget_tokens": 100}, "max_tokens": 5000}),
            ),
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            msg_body(
                json!({"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 2000}),
            ),
            "`max_tokens` must be greater than `thinking.budget_tokens`.",
        ),
        (
            msg_body(json!({"temperature": 1.5})),
            "temperature: Input should be less than or equal to 1",
        ),
        (
            msg_body(json!({"metadata": []})),
            "metadata: Input should be a valid dictionary",
        ),
        (
            msg_body(json!({"messages": [
                user(json!("hi")),
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}]},
                user(json!("no result"))
            ]})),
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately \
             after: toolu_1. Each `tool_use` block must have a corresponding `tool_result` block \
             in the next message.",
        ),
        (
            msg_body(json!({"messages": [
                user(json!([{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]))
            ]})),
            "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: \
             toolu_9. Each `tool_result` block must have a corresponding `tool_use` block in the \
             previous message.",
        ),
    ];
    for (body, want) in cases {
        let (status, headers, resp) = post(&mock, &body).await;
        let message = assert_error(status, &headers, &resp, 400, "invalid_request_error");
        assert_eq!(message, want, "{body}");
    }

    // A correct tool round trip passes, and a final empty assistant turn (prefill) is fine.
    let body = msg_body(json!({"tools": weather_tools(), "messages": [
        user(json!("weather?")),
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}
        ]},
        user(json!([{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}])),
        {"role": "assistant", "content": ""}
    ]}));
    let (status, _, resp) = post(&mock, &body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");

    // Malformed JSON and non-object bodies.
    for (bad, prefix) in [
        (&b"{not json"[..], "The request body is not valid JSON: "),
        (b"", "The request body is not valid JSON: "),
        (b"[1,2]", "The request body must be a JSON object: "),
        (b"\"str\"", "The request body must be a JSON object: "),
    ] {
        let (status, headers, bytes) = send(&mock, "/v1/messages", &[VERSION], bad).await;
        let resp = json_of(&bytes);
        let message = assert_error(status, &headers, &resp, 400, "invalid_request_error");
        assert!(message.starts_with(prefix), "{message}");
    }
}

#[tokio::test]
async fn headers_count_down_and_match_request_ids() {
    let mock = start(MockConfig::default()).await;
    let (_, first, _) = post(&mock, &msg_body(json!({}))).await;
    let (_, second, _) = post(&mock, &msg_body(json!({}))).await;
    assert_anthropic_headers(&first);
    assert_ne!(header(&first, "request-id"), header(&second, "request-id"));
    assert_eq!(
        header(&first, "anthropic-ratelimit-requests-limit"),
        limits::LIMIT_REQUESTS.to_string()
    );
    assert_eq!(
        header(&first, "anthropic-ratelimit-input-tokens-limit"),
        limits::LIMIT_INPUT_TOKENS.to_string()
    );
    assert_eq!(
        header(&first, "anthropic-ratelimit-output-tokens-limit"),
        limits::LIMIT_OUTPUT_TOKENS.to_string()
    );
    let num = |h: &HeaderMap, name: &str| header(h, name).parse::<u64>().unwrap();
    let remaining = |h: &HeaderMap| num(h, "anthropic-ratelimit-requests-remaining");
    // Unless a minute boundary fell between the two calls, the budget went down by one.
    assert!(
        remaining(&second) < remaining(&first) || remaining(&second) == limits::LIMIT_REQUESTS - 1
    );
    assert!(
        num(&first, "anthropic-ratelimit-output-tokens-remaining") < limits::LIMIT_OUTPUT_TOKENS
    );
    assert!(num(&first, "anthropic-ratelimit-input-tokens-remaining") < limits::LIMIT_INPUT_TOKENS);

    // OpenAI routes on the same mock keep OpenAI's headers only.
    let (_, headers, _) = mock
        .post_json("/v1/chat/completions", &chat_body(json!({})))
        .await;
    assert_openai_headers(&headers);
    assert!(headers.get("request-id").is_none());
    assert!(headers.get("anthropic-ratelimit-requests-limit").is_none());
}

// === models and routing ===

#[tokio::test]
async fn models_in_both_shapes() {
    let mock = start(MockConfig::default()).await;
    let (status, headers, body) = get(&mock, "/v1/models", &[VERSION]).await;
    assert_eq!(status, StatusCode::OK);
    assert_anthropic_headers(&headers);
    assert_same_shape(
        &Ordered::parse(&body.raw),
        &Ordered::parse(MODELS_FIXTURE),
        "$",
    );
    assert!(body.raw.contains("claude-mock-sonnet-4"));
    let data = body["data"].as_array().unwrap();
    assert_eq!(body["has_more"], false);
    assert_eq!(body["first_id"], data[0]["id"]);
    assert_eq!(body["last_id"], data[data.len() - 1]["id"]);
    assert!(data
        .iter()
        .all(|m| is_rfc3339(m["created_at"].as_str().unwrap())));

    // Pagination.
    let (_, _, page) = get(&mock, "/v1/models?limit=1", &[VERSION]).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["has_more"], true);
    let next = format!(
        "/v1/models?limit=1&after_id={}",
        page["last_id"].as_str().unwrap()
    );
    let (_, _, page2) = get(&mock, &next, &[VERSION]).await;
    assert_eq!(page2["data"][0]["id"], data[1]["id"]);
    let back = format!("/v1/models?before_id={}", data[2]["id"].as_str().unwrap());
    let (_, _, page3) = get(&mock, &back, &[VERSION]).await;
    assert_eq!(page3["data"].as_array().unwrap().len(), 2);
    assert_eq!(page3["has_more"], false);
    let (status, headers, err) = get(&mock, "/v1/models?limit=0", &[VERSION]).await;
    assert_error(status, &headers, &err, 400, "invalid_request_error");

    // x-api-key without Authorization also selects Anthropic's shape (and its version rule).
    let (status, headers, err) = get(&mock, "/v1/models", &[("x-api-key", "k")]).await;
    let message = assert_error(status, &headers, &err, 400, "invalid_request_error");
    assert_eq!(message, "anthropic-version: header is required");

    // One model, and a missing one.
    let (status, _, model) = get(&mock, "/v1/models/claude-opus-9", &[VERSION]).await;
    assert_eq!(status, StatusCode::OK);
    let doc = Ordered::parse(MODELS_FIXTURE);
    let Some(Ordered::Array(models)) = doc.get("data") else {
        panic!("fixture has no data");
    };
    assert_same_shape(&Ordered::parse(&model.raw), &models[0], "$");
    assert_eq!(model["id"], "claude-opus-9");
    assert_eq!(model["display_name"], "Claude Opus 9");
    let (status, headers, err) = get(&mock, "/v1/models/missing-model", &[VERSION]).await;
    let message = assert_error(status, &headers, &err, 404, "not_found_error");
    assert_eq!(message, "model: missing-model");

    // Without Anthropic headers, OpenAI's shape, unchanged.
    let (status, headers, body) = get(&mock, "/v1/models", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_openai_headers(&headers);
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], "mock-gpt");
    let (_, headers, body) = get(
        &mock,
        "/v1/models/gpt-x",
        &[("authorization", "Bearer k"), ("x-api-key", "k")],
    )
    .await;
    assert_openai_headers(&headers);
    assert_eq!(body["object"], "model");
}

#[tokio::test]
async fn unknown_routes_under_messages() {
    let mock = start(MockConfig::default()).await;
    for path in ["/v1/messages/batches", "/v1/messages/x/y"] {
        let (status, headers, body) = get(&mock, path, &[]).await;
        let message = assert_error(status, &headers, &body, 404, "not_found_error");
        assert_eq!(message, "Not Found");
    }
    let (status, headers, body) = get(&mock, "/v1/messages", &[VERSION]).await;
    assert_error(status, &headers, &body, 405, "invalid_request_error");
    let (status, headers, body) = get(&mock, "/v1/messages/count_tokens", &[]).await;
    assert_error(status, &headers, &body, 405, "invalid_request_error");
    // Other unknown paths: Anthropic's shape for Anthropic clients, OpenAI's otherwise.
    let (status, headers, body) = get(&mock, "/v1/complete", &[VERSION]).await;
    assert_error(status, &headers, &body, 404, "not_found_error");
    let (status, headers, body) = get(&mock, "/v1/nope", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_openai_headers(&headers);
    assert!(body["error"]["message"].is_string() && body.get("type").is_none());
}

// === knobs ===

#[tokio::test]
async fn knob_status_maps_to_error_types() {
    let mock = start(MockConfig::default()).await;
    let cases = [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ];
    for (code, kind) in cases {
        let body = msg_body(json!({"mock": {"status": code, "retry_after": 3}}));
        let (status, headers, resp) = post(&mock, &body).await;
        let message = assert_error(status, &headers, &resp, code, kind);
        assert!(!message.is_empty());
        assert_eq!(header(&headers, "retry-after"), "3", "{code}");
    }
    let (_, _, resp) = post(&mock, &msg_body(json!({"mock": {"status": 404}}))).await;
    assert_eq!(resp["error"]["message"], "model: claude-mock-sonnet-4");

    // 429 and 529 bodies have the fixtures' shape; a 429 always says when to come back and
    // reports the request budget as spent until then.
    let (status, headers, bytes) = post_raw(&mock, &json!({"mock": {"status": 429}})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_same_shape(
        &Ordered::parse(std::str::from_utf8(&bytes).unwrap()),
        &Ordered::parse(ERROR_429_FIXTURE),
        "$",
    );
    assert_eq!(header(&headers, "retry-after"), "1");
    assert_eq!(
        header(&headers, "anthropic-ratelimit-requests-remaining"),
        "0"
    );
    let before = crate::unix_millis();
    let (_, headers, _) = post(&mock, &json!({"mock": {"status": 429, "retry_after": 120}})).await;
    let reset = header(&headers, "anthropic-ratelimit-requests-reset");
    // RFC 3339 instants of one format sort as strings.
    let lo = limits::format_rfc3339(before + 119_000);
    let hi = limits::format_rfc3339(crate::unix_millis() + 121_000);
    assert!(
        lo.as_str() <= reset && reset <= hi.as_str(),
        "{lo} <= {reset} <= {hi}"
    );
    let (status, _, bytes) = post_raw(&mock, &json!({"mock": {"status": 529}})).await;
    assert_eq!(status.as_u16(), 529);
    let overloaded: Value = serde_json::from_slice(&bytes).unwrap();
    assert_same_shape(
        &Ordered::parse(std::str::from_utf8(&bytes).unwrap()),
        &Ordered::parse(OVERLOADED_FIXTURE),
        "$",
    );
    assert_eq!(overloaded["error"]["message"], "Overloaded");

    // Knobs that are not statuses, or not knobs, are rejected.
    let (status, headers, resp) = post(&mock, &msg_body(json!({"mock": {"status": 1000}}))).await;
    assert_error(status, &headers, &resp, 400, "invalid_request_error");
    let (status, headers, resp) = post(&mock, &msg_body(json!({"mock": {"stauts": 500}}))).await;
    let message = assert_error(status, &headers, &resp, 400, "invalid_request_error");
    assert!(message.starts_with("mock: unknown field"), "{message}");
}

#[tokio::test]
async fn knob_prompt_too_long() {
    let mock = start(MockConfig::default()).await;
    let (status, headers, resp) =
        post(&mock, &msg_body(json!({"mock": {"prompt_too_long": true}}))).await;
    let message = assert_error(status, &headers, &resp, 400, "invalid_request_error");
    assert_eq!(
        message,
        "prompt is too long: 210000 tokens > 200000 maximum"
    );
    let (status, _, _) = send(
        &mock,
        "/v1/messages/count_tokens",
        &[VERSION],
        br#"{"mock":{"prompt_too_long":true}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn knob_raw_error_body_and_malformed() {
    let mock = start(MockConfig::default()).await;
    let html = "<html><body>502 Bad Gateway</body></html>";
    let (status, headers, bytes) =
        post_raw(&mock, &json!({"mock": {"raw_error_body": html}})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    assert_eq!(&bytes[..], html.as_bytes());
    assert_anthropic_headers(&headers);

    let (status, _, bytes) = post_raw(&mock, &msg_body(json!({"mock": {"malformed": true}}))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());
    assert!(bytes.starts_with(b"{\"id\":\"msg_01"));

    let body = msg_body(json!({"stream": true, "mock": {"malformed": true, "words": 2}}));
    let (status, _, bytes) = post_raw(&mock, &body).await;
    assert_eq!(status, StatusCode::OK);
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    let broken = text
        .split_terminator("\n\n")
        .filter_map(|e| e.split_once("\ndata: ").map(|(_, d)| d))
        .filter(|d| serde_json::from_str::<Value>(d).is_err())
        .count();
    assert_eq!(broken, 1);
}

/// Reads frames until the stream fails, returning what arrived before the failure.
async fn read_until_error(resp: http::Response<hyper::body::Incoming>) -> String {
    let mut body = resp.into_body();
    let mut received = Vec::new();
    let err = loop {
        match body.frame().await {
            Some(Ok(frame)) => received.extend_from_slice(&frame.into_data().unwrap()),
            Some(Err(e)) => break e,
            None => panic!("stream ended cleanly; expected an aborted connection"),
        }
    };
    assert!(
        format!("{err:?}").contains("UnexpectedEof") || err.is_incomplete_message(),
        "{err:?}"
    );
    String::from_utf8(received).unwrap()
}

#[tokio::test]
async fn knob_stream_faults() {
    let mock = start(MockConfig::default()).await;
    let stream = |knobs: Value| {
        serde_json::to_vec(&msg_body(json!({"stream": true, "mock": knobs}))).unwrap()
    };

    // disconnect_after_chunks: that many whole events, then a cut connection.
    let resp = mock
        .send(
            Method::POST,
            "/v1/messages",
            &[VERSION],
            Some(&stream(json!({"disconnect_after_chunks": 3, "words": 10}))),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = read_until_error(resp).await;
    assert_eq!(text.matches("event: ").count(), 3);
    assert!(text.ends_with("\n\n") && !text.contains("message_stop"));

    // stall_after_chunks: that many events, then silence with the connection open.
    let resp = mock
        .send(
            Method::POST,
            "/v1/messages",
            &[VERSION],
            Some(&stream(json!({"stall_after_chunks": 2}))),
        )
        .await;
    let mut body = resp.into_body();
    let mut received = Vec::new();
    while received.windows(7).filter(|w| w == b"event: ").count() < 2 {
        let frame = body.frame().await.unwrap().unwrap();
        received.extend_from_slice(&frame.into_data().unwrap());
    }
    let next = tokio::time::timeout(Duration::from_millis(200), body.frame()).await;
    assert!(
        next.is_err(),
        "stream should stall with the connection open"
    );

    // stream_error_after_chunks: that many events, an overloaded error event, a clean end.
    let (status, _, bytes) = send(
        &mock,
        "/v1/messages",
        &[VERSION],
        &stream(json!({"stream_error_after_chunks": 4})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let events = parse_events(&bytes);
    assert_eq!(events.len(), 5);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "error"
        ]
    );
    assert_eq!(
        events[4].data,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
    );

    // Chunk delay spaces the events out.
    let t = Instant::now();
    let (_, _, bytes) = send(
        &mock,
        "/v1/messages",
        &[VERSION],
        &stream(json!({"words": 2, "chunk_delay_ms": 20})),
    )
    .await;
    let events = parse_events(&bytes);
    assert_eq!(events.len(), 8);
    assert!(t.elapsed() >= Duration::from_millis(7 * 20));
}

#[tokio::test]
async fn knob_echo_describes_the_request() {
    let mock = start(MockConfig::default()).await;
    let body = msg_body(json!({
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Weather?"}
        ],
        "tools": weather_tools(),
        "tool_choice": {"type": "auto"},
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-42"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "max_tokens": 2048,
        "mock": {"echo": true},
        "vendor_field": {"keep": [1, 2]}
    }));
    let bytes = serde_json::to_vec(&body).unwrap();
    let headers = [
        VERSION,
        (
            "anthropic-beta",
            "prompt-caching-2024-07-31,output-128k-2025-02-19",
        ),
        ("x-custom", "yes"),
    ];
    let (status, _, resp) = send(&mock, "/v1/messages?beta=true", &headers, &bytes).await;
    assert_eq!(status, StatusCode::OK);
    let resp: Value = serde_json::from_slice(&resp).unwrap();
    // Thinking comes first even for an echo; the echo is the text block.
    assert_eq!(resp["content"][0]["type"], "thinking");
    let content = resp["content"][1]["text"].as_str().unwrap();
    assert!(
        !content.contains('\n') && !content.contains(": "),
        "compact JSON expected"
    );
    let echo: Value = serde_json::from_str(content).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/v1/messages");
    assert_eq!(echo["query"], "beta=true");
    assert_eq!(echo["anthropic_version"], "2023-06-01");
    assert_eq!(
        echo["anthropic_beta"],
        "prompt-caching-2024-07-31,output-128k-2025-02-19"
    );
    assert_eq!(echo["headers"]["x-custom"], "yes");
    assert_eq!(echo["model"], "claude-mock-sonnet-4");
    assert_eq!(echo["max_tokens"], 2048);
    assert_eq!(echo["stream"], false);
    assert_eq!(echo["system"], body["system"]);
    assert_eq!(
        echo["messages"],
        json!([
            {"role": "user", "content": "blocks", "blocks": ["text", "image"]},
            {"role": "assistant", "content": "string", "blocks": []},
            {"role": "user", "content": "string", "blocks": []}
        ])
    );
    assert_eq!(echo["tools"], json!(["get_weather", "get_time"]));
    assert_eq!(echo["tool_choice"], json!({"type": "auto"}));
    assert_eq!(echo["stop_sequences"], json!(["END"]));
    assert_eq!(echo["metadata"], json!({"user_id": "u-42"}));
    assert_eq!(echo["thinking"], body["thinking"]);
    assert_eq!(echo["body"], body);

    // Streaming echoes in a single text delta; absent fields are null.
    let body = msg_body(json!({"stream": true, "mock": {"echo": true}}));
    let (_, _, bytes) = post_raw(&mock, &body).await;
    let events = parse_events(&bytes);
    assert_event_order(&events);
    let deltas: Vec<&Event> = events
        .iter()
        .filter(|e| e.name == "content_block_delta")
        .collect();
    assert_eq!(deltas.len(), 1);
    let echo: Value =
        serde_json::from_str(deltas[0].value["delta"]["text"].as_str().unwrap()).unwrap();
    assert_eq!(echo["body"], body);
    assert_eq!(echo["stream"], true);
    assert_eq!(echo["anthropic_beta"], Value::Null);
    assert_eq!(echo["system"], Value::Null);
}

#[tokio::test]
async fn latency_applies() {
    let mock = start(MockConfig {
        latency: Duration::from_millis(60),
        ..MockConfig::default()
    })
    .await;
    let t = Instant::now();
    let (status, _, _) = post(&mock, &msg_body(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(60));
    let t = Instant::now();
    post(&mock, &msg_body(json!({"mock": {"latency_ms": 0}}))).await;
    assert!(t.elapsed() < Duration::from_millis(60));
}

// === robustness ===

#[tokio::test]
async fn odd_inputs_never_break_the_mock() {
    let mock = start(MockConfig::default()).await;
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let mut nested_schema = json!({"type": "string"});
    for _ in 0..40 {
        nested_schema =
            json!({"type": "object", "properties": {"x": nested_schema}, "required": ["x"]});
    }
    let bodies: Vec<Vec<u8>> = vec![
        b"\xff\xfe\x00".to_vec(),
        deep.into_bytes(),
        br#"{"model":"m","max_tokens":18446744073709551616,"messages":[{"role":"user","content":"x"}]}"#.to_vec(),
        br#"{"model":"m","max_tokens":-5,"messages":[{"role":"user","content":"x"}]}"#.to_vec(),
        br#"{"model":"m","max_tokens":1e300,"messages":[{"role":"user","content":"x"}]}"#.to_vec(),
        br#"{"model":"\u00e9\ud83d\ude00","max_tokens":3,"messages":[{"role":"user","content":"\u0000\n"}]}"#.to_vec(),
        br#"{"model":"m","model":"n","max_tokens":3,"messages":[]}"#.to_vec(),
        serde_json::to_vec(&msg_body(json!({"messages": [{"role": "user", "content": [null, 1, "x"]}]}))).unwrap(),
        serde_json::to_vec(&msg_body(json!({"tools": [{"name": "t", "input_schema": nested_schema}], "tool_choice": {"type": "any"}}))).unwrap(),
        serde_json::to_vec(&msg_body(json!({"tools": [{"name": "t", "input_schema": {"type": ["null"], "properties": 5, "required": [1, "a"], "minLength": 999999, "maxLength": 2, "minItems": 99, "minimum": 9, "maximum": 1}}], "tool_choice": {"type": "any"}}))).unwrap(),
        serde_json::to_vec(&msg_body(json!({"tool_choice": "any"}))).unwrap(),
        serde_json::to_vec(&msg_body(json!({"thinking": {"type": "adaptive"}, "max_tokens": 1}))).unwrap(),
        serde_json::to_vec(&msg_body(json!({"max_tokens": 1, "mock": {"words": 0}}))).unwrap(),
        serde_json::to_vec(&msg_body(json!({"stop_sequences": ["", " "], "mock": {"words": 4000000000u32}, "max_tokens": 3}))).unwrap(),
        serde_json::to_vec(&msg_body(json!({"stream": true, "mock": {"parallel_tool_calls": 4000000000u32, "stream_error_after_chunks": 0}}))).unwrap(),
        serde_json::to_vec(&msg_body(json!({"mock": {"cache_read_tokens": u64::MAX}}))).unwrap(),
    ];
    for body in bodies {
        for path in ["/v1/messages", "/v1/messages/count_tokens"] {
            let (status, _, bytes) = send(&mock, path, &[VERSION], &body).await;
            assert!(
                status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
                "{status} for {}",
                String::from_utf8_lossy(&body)
            );
            if status == StatusCode::BAD_REQUEST {
                let err: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(err["type"], "error");
            }
        }
    }
    // Still serving.
    let (status, _, _) = post(&mock, &msg_body(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
}

// === units ===

#[test]
fn rfc3339_formats_and_rounds_up() {
    assert_eq!(limits::format_rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(limits::format_rfc3339(1), "1970-01-01T00:00:01Z");
    assert_eq!(
        limits::format_rfc3339(951_782_400_000),
        "2000-02-29T00:00:00Z"
    );
    assert_eq!(
        limits::format_rfc3339(1_755_780_059_000),
        "2025-08-21T12:40:59Z"
    );
    assert_eq!(
        limits::format_rfc3339(4_102_444_799_000),
        "2099-12-31T23:59:59Z"
    );
}

#[test]
fn rate_window_splits_input_and_output() {
    let w = limits::RateWindow::default();
    let a = w.record(120_000, 100, 30);
    assert_eq!(a.remaining_tokens, limits::LIMIT_TOKENS - 100);
    assert_eq!(a.remaining_input_tokens, limits::LIMIT_INPUT_TOKENS - 70);
    assert_eq!(a.remaining_output_tokens, limits::LIMIT_OUTPUT_TOKENS - 30);
    // Output can never exceed the total.
    let b = w.record(120_001, 10, 50);
    assert_eq!(b.remaining_output_tokens, limits::LIMIT_OUTPUT_TOKENS - 40);
    assert_eq!(b.remaining_input_tokens, limits::LIMIT_INPUT_TOKENS - 70);
}

#[test]
fn fake_input_fits_schemas() {
    use super::schema::fake_input;
    let schema = json!({
        "type": "object",
        "properties": {
            "s": {"type": "string", "minLength": 12, "maxLength": 20},
            "e": {"type": "string", "format": "email"},
            "n": {"type": ["number", "null"], "exclusiveMaximum": 1},
            "i": {"type": "integer", "minimum": 100},
            "c": {"const": "fixed"},
            "d": {"type": "string", "default": "dflt"},
            "a": {"type": "array", "items": {"type": "integer"}, "minItems": 2},
            "o": {"anyOf": [{"type": "boolean"}, {"type": "string"}]}
        },
        "required": ["s", "undeclared"]
    });
    let v = fake_input(&schema, 7);
    assert_eq!(v, fake_input(&schema, 7));
    let s = v["s"].as_str().unwrap();
    assert!((12..=20).contains(&s.len()), "{s}");
    assert!(v["e"].as_str().unwrap().ends_with("@example.com"));
    assert!(v["n"].as_f64().unwrap() < 1.0);
    assert_eq!(v["i"], 100);
    assert_eq!(v["c"], "fixed");
    assert_eq!(v["d"], "dflt");
    assert_eq!(v["a"].as_array().unwrap().len(), 2);
    assert_eq!(v["o"], true);
    assert!(v["undeclared"].is_string());
    // Anything that is not an object schema still yields an object.
    assert_eq!(fake_input(&json!("nonsense"), 1), json!({}));
    assert_eq!(fake_input(&json!({"type": "string"}), 1), json!({}));
}
