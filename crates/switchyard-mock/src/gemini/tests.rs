//! Tests for Gemini's format: the mock runs on an ephemeral loopback port and is driven over
//! real HTTP, and its output is checked against hand-written fixtures of Google's wire format
//! (key order, pretty-printing, SSE framing and compact event JSON included).

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};

use crate::tests::{collect, start, Mock};
use crate::MockConfig;

const TEXT: &str = include_str!("../../fixtures/gemini/generate_content.json");
const CALL: &str = include_str!("../../fixtures/gemini/generate_content_function_call.json");
const SAFETY: &str = include_str!("../../fixtures/gemini/generate_content_safety.json");
const BLOCKED: &str = include_str!("../../fixtures/gemini/generate_content_prompt_blocked.json");
const STREAM: &str = include_str!("../../fixtures/gemini/stream.sse");
const STREAM_CALL: &str = include_str!("../../fixtures/gemini/stream_function_call.sse");
const EMBED: &str = include_str!("../../fixtures/gemini/embed_content.json");
const BATCH: &str = include_str!("../../fixtures/gemini/batch_embed_contents.json");
const COUNT: &str = include_str!("../../fixtures/gemini/count_tokens.json");
const E429: &str = include_str!("../../fixtures/gemini/error_429.json");
const E400: &str = include_str!("../../fixtures/gemini/error_400.json");
const EKEY: &str = include_str!("../../fixtures/gemini/error_api_key_invalid.json");

const KEY: &str = "AIza-mock-key";
const STUDIO: &str = "/v1beta/models/gemini-2.5-flash";
const VERTEX: &str =
    "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash";

// === harness ===

/// JSON that remembers key order, for comparing shapes with the fixtures.
#[derive(Debug, Clone)]
enum Tree {
    Scalar(&'static str),
    Array(Vec<Tree>),
    Object(Vec<(String, Tree)>),
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tree;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Tree, E> {
                Ok(Tree::Scalar("null"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Tree, E> {
                Ok(Tree::Scalar("bool"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Tree, E> {
                Ok(Tree::Scalar("number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Tree, E> {
                Ok(Tree::Scalar("number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Tree, E> {
                Ok(Tree::Scalar("number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Tree, E> {
                Ok(Tree::Scalar("string"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                Ok(Tree::Array(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = map.next_entry::<String, Tree>()? {
                    v.push(entry);
                }
                Ok(Tree::Object(v))
            }
        }
        d.deserialize_any(V)
    }
}

fn tree(text: &str) -> Tree {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"))
}

/// Asserts `ours` has the fixture's shape: every key the fixture has (in the fixture's order;
/// optional keys may be missing), no key it lacks, the same JSON types. Array items are compared
/// with the fixture item whose keys match best. Function arguments only have to be objects.
fn assert_shape(ours: &Tree, fixture: &Tree, path: &str) {
    match (ours, fixture) {
        (Tree::Object(o), Tree::Object(f)) => {
            let mut last = 0;
            for (k, v) in o {
                let Some(pos) = f.iter().position(|(fk, _)| fk == k) else {
                    panic!("{path}: key `{k}` is not in the fixture");
                };
                assert!(
                    pos >= last,
                    "{path}: key `{k}` is out of the fixture's order"
                );
                last = pos;
                if k == "args" {
                    assert!(matches!(v, Tree::Object(_)), "{path}.args");
                    continue;
                }
                assert_shape(v, &f[pos].1, &format!("{path}.{k}"));
            }
        }
        (Tree::Array(o), Tree::Array(f)) => {
            for (i, item) in o.iter().enumerate() {
                let peer = best_peer(item, f);
                if let Some(peer) = peer {
                    assert_shape(item, peer, &format!("{path}[{i}]"));
                }
            }
        }
        (Tree::Scalar(a), Tree::Scalar(b)) => assert_eq!(a, b, "{path}"),
        _ => panic!("{path}: {ours:?} vs {fixture:?}"),
    }
}

fn best_peer<'a>(item: &Tree, candidates: &'a [Tree]) -> Option<&'a Tree> {
    let keys = |t: &Tree| -> Vec<String> {
        match t {
            Tree::Object(o) => o.iter().map(|(k, _)| k.clone()).collect(),
            _ => Vec::new(),
        }
    };
    let mine = keys(item);
    candidates
        .iter()
        .max_by_key(|c| keys(c).iter().filter(|k| mine.contains(k)).count())
}

/// Asserts Google's compact event style: one line, a space after every key's colon, nothing
/// after commas, no other whitespace outside strings.
fn assert_google_compact(line: &str) {
    assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
    let bytes = line.as_bytes();
    let (mut in_string, mut escaped) = (false, false);
    for (i, b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if *b == b'\\' {
                escaped = true;
            } else if *b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b':' => assert_eq!(
                bytes.get(i + 1),
                Some(&b' '),
                "no space after colon: {line}"
            ),
            b',' => assert!(bytes.get(i + 1) != Some(&b' '), "space after comma: {line}"),
            b' ' => assert_eq!(
                bytes.get(i.wrapping_sub(1)),
                Some(&b':'),
                "stray space: {line}"
            ),
            _ => {}
        }
    }
    serde_json::from_str::<Value>(line).unwrap();
}

/// Splits an `alt=sse` body into its data lines, asserting Google's framing.
fn sse_events(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.ends_with("\r\n\r\n"), "{text:?}");
    text.split_terminator("\r\n\r\n")
        .map(|e| {
            let data = e
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"));
            assert_google_compact(data);
            data.to_owned()
        })
        .collect()
}

/// Asserts a whole response is pretty-printed the way Google prints it.
fn assert_pretty(body: &[u8]) {
    let v: Value = serde_json::from_slice(body).unwrap();
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.starts_with("{\n  \""), "{text}");
    // Same bytes as serde's two-space pretty printer gives for the same key order.
    let reprinted = serde_json::to_string_pretty(&v).unwrap();
    assert_eq!(text.len(), reprinted.len(), "{text}");
}

async fn keyed() -> Mock {
    start(MockConfig {
        api_key: Some(KEY.into()),
        ..Default::default()
    })
    .await
}

async fn post(
    mock: &Mock,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut h = vec![("x-goog-api-key", KEY)];
    h.extend_from_slice(headers);
    collect(
        mock.send(
            Method::POST,
            path,
            &h,
            Some(&serde_json::to_vec(body).unwrap()),
        )
        .await,
    )
    .await
}

fn ask(extra: Value) -> Value {
    let mut body =
        json!({"contents": [{"role": "user", "parts": [{"text": "Tell me about bridges."}]}]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

fn weather_tools() -> Value {
    json!([{"functionDeclarations": [{
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "OBJECT", "properties": {
            "city": {"type": "STRING"},
            "days": {"type": "INTEGER", "minimum": 1, "maximum": 5}
        }, "required": ["city"]}
    }]}])
}

// === generateContent ===

#[tokio::test]
async fn text_answers_match_the_fixture() {
    let mock = keyed().await;
    let (status, headers, body) = post(
        &mock,
        &format!("{STUDIO}:generateContent"),
        &[],
        &ask(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(headers["content-type"], "application/json; charset=UTF-8");
    assert_eq!(headers["server"], "scaffolding on HTTPServer2");
    assert!(headers.get("x-request-id").is_none());
    assert_pretty(&body);
    let text = std::str::from_utf8(&body).unwrap();
    assert_shape(&tree(text), &tree(TEXT), "");
    let v: Value = serde_json::from_slice(&body).unwrap();
    let c = &v["candidates"][0];
    assert_eq!(c["finishReason"], "STOP");
    assert!(c["content"]["parts"][0]["text"].as_str().unwrap().len() > 10);
    let u = &v["usageMetadata"];
    assert_eq!(
        u["totalTokenCount"],
        u["promptTokenCount"].as_u64().unwrap() + u["candidatesTokenCount"].as_u64().unwrap()
    );
    assert_eq!(v["modelVersion"], "gemini-2.5-flash");

    // Generation config is honoured: words, token cap, stop sequences, candidates, thoughts.
    let body = ask(json!({"mock": {"words": 30}, "generationConfig": {"maxOutputTokens": 5}}));
    let (_, _, b) = post(&mock, &format!("{STUDIO}:generateContent"), &[], &body).await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 5);
    let body = ask(json!({"generationConfig": {"candidateCount": 2,
        "thinkingConfig": {"includeThoughts": true, "thinkingBudget": 1024}}}));
    let (_, _, b) = post(&mock, &format!("{STUDIO}:generateContent"), &[], &body).await;
    assert_shape(&tree(std::str::from_utf8(&b).unwrap()), &tree(TEXT), "");
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["candidates"].as_array().unwrap().len(), 2);
    assert_eq!(v["candidates"][1]["index"], 1);
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["thought"], true);
    assert!(v["usageMetadata"]["thoughtsTokenCount"].as_u64().unwrap() > 0);
    let body = ask(
        json!({"generationConfig": {"responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"name": {"type": "STRING"}, "age": {"type": "INTEGER"}}}}}),
    );
    let (_, _, b) = post(&mock, &format!("{STUDIO}:generateContent"), &[], &body).await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    let answer: Value = serde_json::from_str(
        v["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(
        answer["name"].is_string() && answer["age"].is_i64(),
        "{answer}"
    );
}

#[tokio::test]
async fn forced_function_calling_returns_function_calls() {
    let mock = keyed().await;
    let body = ask(json!({"tools": weather_tools(),
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "mock": {"parallel_tool_calls": 2}}));
    let path = "/v1beta/models/gemini-3-flash-preview:generateContent";
    let (status, _, b) = post(&mock, path, &[], &body).await;
    assert_eq!(status, StatusCode::OK, "{b:?}");
    assert_shape(&tree(std::str::from_utf8(&b).unwrap()), &tree(CALL), "");
    let v: Value = serde_json::from_slice(&b).unwrap();
    let parts = v["candidates"][0]["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    let args = &parts[0]["functionCall"]["args"];
    assert!(args["city"].is_string(), "{args}");
    let days = args["days"].as_i64().unwrap();
    assert!((1..=5).contains(&days), "{args}");
    // Gemini 3 signs the first call only.
    assert!(parts[0]["thoughtSignature"].is_string());
    assert!(parts[1].get("thoughtSignature").is_none());

    // Without forcing, the model talks; `NONE` never calls, even with the knob.
    let (_, _, b) = post(
        &mock,
        &format!("{STUDIO}:generateContent"),
        &[],
        &ask(json!({"tools": weather_tools()})),
    )
    .await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert!(v["candidates"][0]["content"]["parts"][0]["text"].is_string());
    let body = ask(
        json!({"tools": weather_tools(), "toolConfig": {"functionCallingConfig": {"mode": "NONE"}}, "mock": {"tool_call": true}}),
    );
    let (_, _, b) = post(&mock, &format!("{STUDIO}:generateContent"), &[], &body).await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert!(v["candidates"][0]["content"]["parts"][0]["text"].is_string());
}

#[tokio::test]
async fn safety_and_prompt_blocks_match_the_fixtures() {
    let mock = keyed().await;
    let (status, _, b) = post(
        &mock,
        &format!("{STUDIO}:generateContent"),
        &[],
        &ask(json!({"mock": {"safety_block": true}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_shape(&tree(std::str::from_utf8(&b).unwrap()), &tree(SAFETY), "");
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["candidates"][0]["finishReason"], "SAFETY");
    assert!(v["candidates"][0].get("content").is_none());
    let blocked: Vec<&Value> = v["candidates"][0]["safetyRatings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["blocked"] == true)
        .collect();
    assert_eq!(blocked[0]["category"], "HARM_CATEGORY_DANGEROUS_CONTENT");

    let (_, _, b) = post(
        &mock,
        &format!("{STUDIO}:generateContent"),
        &[],
        &ask(json!({"mock": {"prompt_blocked": true}})),
    )
    .await;
    assert_shape(&tree(std::str::from_utf8(&b).unwrap()), &tree(BLOCKED), "");
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["promptFeedback"]["blockReason"], "SAFETY");
    assert!(v.get("candidates").is_none());
}

// === streaming ===

#[tokio::test]
async fn sse_streams_match_the_fixture_framing_and_content() {
    // The fixtures themselves follow the rules the mock is held to.
    for fixture in [STREAM, STREAM_CALL] {
        sse_events(fixture.as_bytes());
    }
    let fixture_events: Vec<Tree> = sse_events(STREAM.as_bytes())
        .iter()
        .map(|e| tree(e))
        .collect();

    let mock = keyed().await;
    let body = ask(json!({"mock": {"words": 14}}));
    let path = format!("{STUDIO}:streamGenerateContent?alt=sse");
    let (status, headers, b) = post(&mock, &path, &[], &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/event-stream");
    let events = sse_events(&b);
    assert!(events.len() >= 3, "{events:?}");
    let mut text = String::new();
    for (i, e) in events.iter().enumerate() {
        let peer = if i + 1 == events.len() {
            fixture_events.last().unwrap()
        } else {
            &fixture_events[0]
        };
        assert_shape(&tree(e), peer, &format!("event {i}"));
        let v: Value = serde_json::from_str(e).unwrap();
        text.push_str(
            v["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap(),
        );
        let finish = &v["candidates"][0]["finishReason"];
        assert_eq!(finish.is_string(), i + 1 == events.len(), "{e}");
    }
    assert_eq!(text.split(' ').count(), 14, "{text}");

    // The whole answer to the same request has the same text.
    let (_, _, whole) = post(&mock, &format!("{STUDIO}:generateContent"), &[], &body).await;
    let v: Value = serde_json::from_slice(&whole).unwrap();
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], text);

    // Function calls stream whole, with the finish reason.
    let body = ask(
        json!({"tools": weather_tools(), "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}),
    );
    let path = "/v1beta/models/gemini-3-flash-preview:streamGenerateContent?alt=sse";
    let (_, _, b) = post(&mock, path, &[], &body).await;
    let events = sse_events(&b);
    let fixture = tree(sse_events(STREAM_CALL.as_bytes())[0].as_str());
    assert_eq!(events.len(), 1);
    assert_shape(&tree(&events[0]), &fixture, "call event");
}

#[tokio::test]
async fn streams_without_alt_sse_are_one_json_array() {
    let mock = keyed().await;
    let (status, headers, b) = post(
        &mock,
        &format!("{STUDIO}:streamGenerateContent"),
        &[],
        &ask(json!({"mock": {"words": 10}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let text = std::str::from_utf8(&b).unwrap();
    assert!(text.starts_with("[{\n") && text.ends_with("}\n]"), "{text}");
    assert!(text.contains("\n,\r\n{"), "{text}");
    let v: Vec<Value> = serde_json::from_slice(&b).unwrap();
    assert!(v.len() >= 2);
    assert_eq!(v.last().unwrap()["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn stream_knobs_break_streams_the_way_asked() {
    let mock = keyed().await;
    let path = format!("{STUDIO}:streamGenerateContent?alt=sse");
    let (_, _, b) = post(
        &mock,
        &path,
        &[],
        &ask(json!({"mock": {"words": 20, "stream_error_after_chunks": 2}})),
    )
    .await;
    let events = sse_events(&b);
    assert_eq!(events.len(), 3);
    let last: Value = serde_json::from_str(&events[2]).unwrap();
    assert_eq!(last["error"]["status"], "UNAVAILABLE");

    let (_, _, b) = post(
        &mock,
        &path,
        &[],
        &ask(json!({"mock": {"malformed": true}})),
    )
    .await;
    let text = String::from_utf8_lossy(&b);
    assert!(text.contains("unterminated"), "{text}");

    let resp = mock
        .send(
            Method::POST,
            &path,
            &[("x-goog-api-key", KEY)],
            Some(
                &serde_json::to_vec(&ask(
                    json!({"mock": {"words": 40, "disconnect_after_chunks": 2}}),
                ))
                .unwrap(),
            ),
        )
        .await;
    let (_, body) = resp.into_parts();
    let collected = http_body_util::BodyExt::collect(body).await;
    assert!(collected.is_err(), "the connection should break");

    let (_, _, b) = post(
        &mock,
        &path,
        &[],
        &ask(json!({"mock": {"safety_block": true}})),
    )
    .await;
    let events = sse_events(&b);
    let v: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(v["candidates"][0]["finishReason"], "SAFETY");
    let (_, _, b) = post(
        &mock,
        &path,
        &[],
        &ask(json!({"mock": {"prompt_blocked": true}})),
    )
    .await;
    let events = sse_events(&b);
    assert_eq!(events.len(), 1);
    assert_shape(&tree(&events[0]), &tree(BLOCKED), "blocked event");
}

// === embeddings and tokens ===

#[tokio::test]
async fn embeddings_match_the_fixtures() {
    let mock = keyed().await;
    let path = "/v1beta/models/text-embedding-004";
    let body = json!({"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 8});
    let (status, _, b) = post(&mock, &format!("{path}:embedContent"), &[], &body).await;
    assert_eq!(status, StatusCode::OK, "{b:?}");
    assert_shape(&tree(std::str::from_utf8(&b).unwrap()), &tree(EMBED), "");
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["embedding"]["values"].as_array().unwrap().len(), 8);

    let body = json!({"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}, "taskType": "RETRIEVAL_DOCUMENT"},
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}}
    ]});
    let (status, _, b) = post(&mock, &format!("{path}:batchEmbedContents"), &[], &body).await;
    assert_eq!(status, StatusCode::OK, "{b:?}");
    assert_shape(&tree(std::str::from_utf8(&b).unwrap()), &tree(BATCH), "");
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
    assert_eq!(v["embeddings"][0]["values"].as_array().unwrap().len(), 768);
    assert_ne!(v["embeddings"][0], v["embeddings"][1]);

    let bad =
        json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]});
    let (status, _, b) = post(&mock, &format!("{path}:batchEmbedContents"), &[], &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{b:?}");
    // Vertex AI has no batch method.
    let (status, _, _) = collect(
        mock.send(
            Method::POST,
            "/v1/projects/p/locations/l/publishers/google/models/text-embedding-005:batchEmbedContents",
            &[("authorization", &format!("Bearer {KEY}"))],
            Some(&serde_json::to_vec(&body).unwrap()),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _, b) = post(
        &mock,
        &format!("{STUDIO}:countTokens"),
        &[],
        &ask(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_shape(&tree(std::str::from_utf8(&b).unwrap()), &tree(COUNT), "");
}

// === errors and credentials ===

#[tokio::test]
async fn errors_match_google_shapes() {
    let mock = keyed().await;
    let path = format!("{STUDIO}:generateContent");
    let (status, headers, b) = post(
        &mock,
        &path,
        &[],
        &ask(json!({"mock": {"status": 429, "retry_after": 9}})),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        headers.get("retry-after").is_none(),
        "Google says it in the body"
    );
    assert_pretty(&b);
    assert_shape(&tree(std::str::from_utf8(&b).unwrap()), &tree(E429), "");
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(v["error"]["details"][2]["retryDelay"], "9s");

    for (status, want) in [
        (503, "UNAVAILABLE"),
        (500, "INTERNAL"),
        (404, "NOT_FOUND"),
        (504, "DEADLINE_EXCEEDED"),
    ] {
        let (s, _, b) = post(&mock, &path, &[], &ask(json!({"mock": {"status": status}}))).await;
        assert_eq!(s.as_u16(), status);
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error"]["status"], want);
        assert_eq!(v["error"]["code"], status);
    }
    let (_, _, b) = post(
        &mock,
        &path,
        &[],
        &ask(json!({"mock": {"prompt_too_long": true}})),
    )
    .await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("exceeds the maximum number of tokens"));

    // What Google rejects, the mock rejects, with Google's wording.
    let cases = [
        (
            json!({"contents": [{"role": "user", "parts": []}]}),
            "contents.parts must not be empty",
        ),
        (json!({"contents": []}), "contents is not specified"),
        (ask(json!({"temperatur": 1})), "Unknown name \"temperatur\""),
        (
            ask(json!({"generationConfig": {"max_output_tokens": 5}})),
            "Unknown name \"max_output_tokens\"",
        ),
        (
            json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}),
            "valid role",
        ),
        (
            json!({"contents": [{"parts": [{"text": ""}]}]}),
            "empty text",
        ),
        (
            json!({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "not base64!"}}]}]}),
            "Base64",
        ),
        (
            json!({"contents": [
                {"role": "user", "parts": [{"text": "x"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}, {"functionCall": {"name": "f", "args": {}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}
            ]}),
            "number of function response parts",
        ),
        (
            ask(
                json!({"tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {}}}]}]}),
            ),
            "non-empty for OBJECT",
        ),
        (
            ask(
                json!({"tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {"a": {"type": "ARRAY"}}}}]}]}),
            ),
            "items",
        ),
        (
            ask(
                json!({"tools": weather_tools(), "toolConfig": {"functionCallingConfig": {"mode": "AUTO", "allowedFunctionNames": ["get_weather"]}}}),
            ),
            "only be set when the Mode is ANY",
        ),
        (
            ask(json!({"generationConfig": {"responseSchema": {"type": "STRING"}}})),
            "response_mime_type",
        ),
        (
            ask(json!({"generationConfig": {"candidateCount": 9}})),
            "candidate_count",
        ),
    ];
    let e400 = tree(E400);
    for (body, words) in cases {
        let (status, _, b) = post(&mock, &path, &[], &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let text = std::str::from_utf8(&b).unwrap();
        let v: Value = serde_json::from_str(text).unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{body}\n{text}");
        assert_shape(&tree(text), &e400, "");
    }
    // Gemini 3 wants its signature back.
    let history = json!({"contents": [
        {"role": "user", "parts": [{"text": "x"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "1"}}}]}
    ]});
    let (status, _, b) = post(
        &mock,
        "/v1beta/models/gemini-3-pro-preview:generateContent",
        &[],
        &history,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&b).contains("thought_signature"));
    let mut signed = history.clone();
    signed["contents"][1]["parts"][0]["thoughtSignature"] =
        json!("skip_thought_signature_validator");
    let (status, _, b) = post(
        &mock,
        "/v1beta/models/gemini-3-pro-preview:generateContent",
        &[],
        &signed,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b:?}");
    let (status, _, _) = post(&mock, &path, &[], &history).await;
    assert_eq!(status, StatusCode::OK);

    // Unknown methods and paths are Google's 404s.
    let (status, _, b) = post(&mock, &format!("{STUDIO}:summarize"), &[], &ask(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["error"]["status"],
        "NOT_FOUND"
    );
    let (status, _, b) = post(&mock, "/v1beta/files/abc", &[], &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["error"]["status"],
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn credentials_are_checked_per_front_door() {
    let mock = keyed().await;
    let body = serde_json::to_vec(&ask(json!({}))).unwrap();
    let send = |path: String, headers: Vec<(&'static str, String)>| {
        let body = body.clone();
        let mock = &mock;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            collect(mock.send(Method::POST, &path, &h, Some(&body)).await).await
        }
    };
    let studio = format!("{STUDIO}:generateContent");
    let (s, _, _) = send(studio.clone(), vec![("x-goog-api-key", KEY.into())]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = send(format!("{studio}?key={KEY}"), vec![]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, b) = send(studio.clone(), vec![]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["error"]["status"],
        "PERMISSION_DENIED"
    );
    let (s, _, b) = send(
        studio.clone(),
        vec![("x-goog-api-key", "AIza-wrong".into())],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_shape(&tree(std::str::from_utf8(&b).unwrap()), &tree(EKEY), "");
    assert!(String::from_utf8_lossy(&b).contains("API_KEY_INVALID"));

    let vertex = format!("{VERTEX}:generateContent");
    let (s, _, _) = send(
        vertex.clone(),
        vec![("authorization", format!("Bearer {KEY}"))],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, b) = send(vertex.clone(), vec![("x-goog-api-key", KEY.into())]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["error"]["status"],
        "UNAUTHENTICATED"
    );
    let (s, _, _) = send(vertex, vec![("authorization", "Bearer nope".into())]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn echo_describes_the_request() {
    let mock = keyed().await;
    let body = ask(json!({"mock": {"echo": true}, "generationConfig": {"temperature": 0.5}}));
    let (_, _, b) = post(
        &mock,
        &format!("{STUDIO}:generateContent"),
        &[("x-extra", "1")],
        &body,
    )
    .await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    let echo: Value = serde_json::from_str(
        v["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(echo["model"], "gemini-2.5-flash");
    assert_eq!(echo["headers"]["x-extra"], "1");
    assert_eq!(echo["body"]["generationConfig"]["temperature"], 0.5);
}
