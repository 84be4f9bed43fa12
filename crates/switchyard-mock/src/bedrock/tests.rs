//! The Bedrock face over real HTTP, its output checked against hand-written fixtures of the
//! Converse API (from AWS's API reference), its eventstream framing decoded byte by byte, and
//! its SigV4 checks.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use super::auth;
use super::eventstream::crc32;
use super::{BEDROCK_ACCESS_KEY_ID, BEDROCK_SECRET_ACCESS_KEY};
use crate::tests::{collect, start, Mock};
use crate::MockConfig;

const CONVERSE_FIXTURE: &str = include_str!("../../fixtures/bedrock/converse.json");
const TOOL_USE_FIXTURE: &str = include_str!("../../fixtures/bedrock/converse_tool_use.json");
const STREAM_FIXTURE: &str = include_str!("../../fixtures/bedrock/converse_stream.json");
const TOOL_STREAM_FIXTURE: &str =
    include_str!("../../fixtures/bedrock/converse_stream_tool_use.json");
const EXCEPTION_FIXTURE: &str =
    include_str!("../../fixtures/bedrock/exception_model_stream_error.json");
const THROTTLING_FIXTURE: &str = include_str!("../../fixtures/bedrock/error_throttling.json");
const VALIDATION_FIXTURE: &str = include_str!("../../fixtures/bedrock/error_validation.json");
const SIGNATURE_FIXTURE: &str = include_str!("../../fixtures/bedrock/error_invalid_signature.json");

const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";
const PATH: &str = "/model/amazon.nova-pro-v1%3A0/converse";
const STREAM_PATH: &str = "/model/amazon.nova-pro-v1%3A0/converse-stream";

fn now() -> u64 {
    crate::unix_millis() / 1000
}

/// `unix` as `YYYYMMDDTHHMMSSZ` (the inverse of `auth::parse_amz_date`, tested below).
fn amz_date(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Headers for a request signed with `key_id`/`secret`, scoped to `service`, at `unix`.
fn signed(
    path: &str,
    body: &[u8],
    extra: &[(&str, &str)],
    key_id: &str,
    secret: &str,
    service: &str,
    unix: u64,
) -> Vec<(String, String)> {
    let date = amz_date(unix);
    let mut headers = vec![
        ("host".to_owned(), HOST.to_owned()),
        ("x-amz-date".to_owned(), date.clone()),
    ];
    for (k, v) in extra {
        headers.push(((*k).to_owned(), (*v).to_owned()));
    }
    headers.sort();
    let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let mut req = http::Request::builder().method(Method::POST).uri(path);
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let (parts, ()) = req.body(()).unwrap().into_parts();
    let payload_hash = auth::hex(&sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        body,
    )));
    let canonical = auth::canonical_request(&parts, &names, &payload_hash);
    let scope = format!("{}/us-east-1/{service}/aws4_request", &date[..8]);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        auth::hex(&sha2::Digest::finalize(sha2::Digest::chain_update(
            <sha2::Sha256 as sha2::Digest>::new(),
            canonical.as_bytes()
        )))
    );
    let mut key = auth::hmac(format!("AWS4{secret}").as_bytes(), &date[..8]);
    for part in ["us-east-1", service, "aws4_request"] {
        key = auth::hmac(&key, part);
    }
    let signature = auth::hex(&auth::hmac(&key, &to_sign));
    headers.push((
        "authorization".to_owned(),
        format!(
            "AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={}, Signature={signature}",
            names.join(";")
        ),
    ));
    headers
}

async fn send_signed(
    mock: &Mock,
    path: &str,
    body: &Value,
    extra: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    let bytes = serde_json::to_vec(body).unwrap();
    let headers = signed(
        path,
        &bytes,
        extra,
        BEDROCK_ACCESS_KEY_ID,
        BEDROCK_SECRET_ACCESS_KEY,
        "bedrock",
        now(),
    );
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    collect(mock.send(Method::POST, path, &refs, Some(&bytes)).await).await
}

fn converse_body(extra: Value) -> Value {
    let mut body = json!({
        "messages": [{"role": "user", "content": [{"text": "Tell me about bridges."}]}],
        "inferenceConfig": {"maxTokens": 256}
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn weather_tools(choice: Value) -> Value {
    json!({"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather.",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}},
                                 "required": ["city"]}}}}],
           "toolChoice": choice})
}

/// Asserts every key of `actual` is in `fixture` with the same JSON type, recursively (array
/// elements against the fixture's element with the same keys, or its first), and that every
/// key the fixture always has is there. `input` objects only need to be objects.
fn assert_shape(actual: &Value, fixture: &Value, path: &str) {
    match (actual, fixture) {
        (Value::Object(a), Value::Object(f)) => {
            for (k, v) in a {
                let here = format!("{path}.{k}");
                let peer = f
                    .get(k)
                    .unwrap_or_else(|| panic!("unexpected key {here} in {actual}"));
                if k != "input" {
                    assert_shape(v, peer, &here);
                }
            }
        }
        (Value::Array(a), Value::Array(f)) => {
            for (i, item) in a.iter().enumerate() {
                let peer = f
                    .iter()
                    .find(|p| keys(p) == keys(item))
                    .or(f.first())
                    .unwrap_or_else(|| panic!("fixture array at {path} is empty"));
                assert_shape(item, peer, &format!("{path}[{i}]"));
            }
        }
        (a, f) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(f),
            "type differs at {path}: {a} vs {f}"
        ),
    }
}

fn keys(v: &Value) -> Vec<&String> {
    v.as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default()
}

/// One decoded eventstream message: string headers and a JSON payload.
#[derive(Debug)]
struct Msg {
    headers: Vec<(String, String)>,
    payload: Value,
}

impl Msg {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Splits and decodes an eventstream body, checking lengths and both CRCs of every message.
fn decode_all(mut body: &[u8]) -> Vec<Msg> {
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let mut out = Vec::new();
    while !body.is_empty() {
        let total = be(&body[0..4]);
        let headers_len = be(&body[4..8]);
        let msg = &body[..total];
        assert_eq!(be(&msg[8..12]) as u32, crc32(&msg[..8]), "prelude CRC");
        assert_eq!(
            be(&msg[total - 4..]) as u32,
            crc32(&msg[..total - 4]),
            "message CRC"
        );
        let mut h = &msg[12..12 + headers_len];
        let mut headers = Vec::new();
        while !h.is_empty() {
            let n = usize::from(h[0]);
            let name = String::from_utf8(h[1..1 + n].to_vec()).unwrap();
            assert_eq!(h[1 + n], 7, "string header");
            let len = usize::from(u16::from_be_bytes([h[2 + n], h[3 + n]]));
            let value = String::from_utf8(h[4 + n..4 + n + len].to_vec()).unwrap();
            headers.push((name, value));
            h = &h[4 + n + len..];
        }
        let payload = serde_json::from_slice(&msg[12 + headers_len..total - 4]).unwrap();
        out.push(Msg { headers, payload });
        body = &body[total..];
    }
    out
}

/// Asserts each message has the headers and payload shape of the fixture message of the
/// same event (or exception) type.
fn assert_stream_matches(ours: &[Msg], fixture: &Value) {
    let fixture = fixture.as_array().unwrap();
    for m in ours {
        let kind = m.header(":event-type");
        let peer = fixture
            .iter()
            .filter(|f| f["headers"][":event-type"] == kind)
            .find(|f| keys(&f["payload"]["delta"]) == keys(&m.payload["delta"]))
            .unwrap_or_else(|| panic!("fixture has no {kind} like {:?}", m.payload));
        for (k, v) in peer["headers"].as_object().unwrap() {
            assert_eq!(m.header(k), v.as_str().unwrap(), "{kind} header {k}");
        }
        assert_eq!(m.headers.len(), 3, "{kind}: {:?}", m.headers);
        assert_shape(&m.payload, &peer["payload"], kind);
    }
}

#[test]
fn crc_matches_the_standard_check_value_and_aws_vectors() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    // AWS's empty_message vector: prelude CRC 0x05c248eb, message CRC 0x7d98c8ff.
    let prelude = [0, 0, 0, 16, 0, 0, 0, 0];
    assert_eq!(crc32(&prelude), 0x05c2_48eb);
    let mut msg = prelude.to_vec();
    msg.extend_from_slice(&0x05c2_48ebu32.to_be_bytes());
    assert_eq!(crc32(&msg), 0x7d98_c8ff);
}

#[test]
fn amz_dates_parse() {
    assert_eq!(
        auth::parse_amz_date("20150830T123600Z"),
        Some(1_440_938_160)
    );
    assert_eq!(auth::parse_amz_date("19700101T000000Z"), Some(0));
    assert_eq!(auth::parse_amz_date("20150830T123600"), None);
    assert_eq!(auth::parse_amz_date("20151330T123600Z"), None);
    assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
}

#[tokio::test]
async fn converse_matches_fixture() {
    let mock = start(MockConfig::default()).await;
    let (status, headers, body) = send_signed(&mock, PATH, &converse_body(json!({})), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-amzn-requestid"].len(), 36);
    let v: Value = serde_json::from_slice(&body).unwrap();
    let fixture: Value = serde_json::from_str(CONVERSE_FIXTURE).unwrap();
    assert_shape(&v, &fixture, "");
    assert_eq!(v["stopReason"], "end_turn");
    assert_eq!(v["output"]["message"]["role"], "assistant");
    let u = &v["usage"];
    assert_eq!(
        u["totalTokens"].as_u64(),
        Some(u["inputTokens"].as_u64().unwrap() + u["outputTokens"].as_u64().unwrap())
    );
}

#[tokio::test]
async fn forced_tool_choice_matches_the_tool_use_fixture() {
    let mock = start(MockConfig::default()).await;
    for choice in [json!({"any": {}}), json!({"tool": {"name": "get_weather"}})] {
        let body = converse_body(json!({ "toolConfig": weather_tools(choice) }));
        let (status, _, bytes) = send_signed(&mock, PATH, &body, &[]).await;
        assert_eq!(status, StatusCode::OK);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_shape(&v, &serde_json::from_str(TOOL_USE_FIXTURE).unwrap(), "");
        assert_eq!(v["stopReason"], "tool_use");
        let call = &v["output"]["message"]["content"][0]["toolUse"];
        assert!(call["toolUseId"].as_str().unwrap().starts_with("tooluse_"));
        assert_eq!(call["name"], "get_weather");
        assert!(call["input"]["city"].is_string(), "{v}");
    }
    // `auto` answers in text unless the knob asks for a call.
    let body = converse_body(json!({ "toolConfig": weather_tools(json!({"auto": {}})) }));
    let (_, _, bytes) = send_signed(&mock, PATH, &body, &[]).await;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["stopReason"], "end_turn");
    let (_, _, bytes) = send_signed(
        &mock,
        PATH,
        &body,
        &[("x-mock-knobs", r#"{"parallel_tool_calls":2}"#)],
    )
    .await;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        v["output"]["message"]["content"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn stream_matches_fixture_in_eventstream_framing() {
    let mock = start(MockConfig::default()).await;
    let (status, headers, body) = send_signed(
        &mock,
        STREAM_PATH,
        &converse_body(json!({"mock": {"words": 6}})),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let messages = decode_all(&body);
    assert_stream_matches(&messages, &serde_json::from_str(STREAM_FIXTURE).unwrap());
    let kinds: Vec<&str> = messages.iter().map(|m| m.header(":event-type")).collect();
    assert_eq!(kinds[0], "messageStart");
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["contentBlockStop", "messageStop", "metadata"]
    );
    let text: String = messages
        .iter()
        .filter_map(|m| m.payload["delta"]["text"].as_str())
        .collect();
    assert_eq!(text.split_whitespace().count(), 6, "{text}");
    assert_eq!(messages.last().unwrap().payload["usage"]["outputTokens"], 6);

    // The same request unstreamed says the same thing.
    let (_, _, whole) = send_signed(
        &mock,
        PATH,
        &converse_body(json!({"mock": {"words": 6}})),
        &[],
    )
    .await;
    let whole: Value = serde_json::from_slice(&whole).unwrap();
    assert_eq!(
        whole["output"]["message"]["content"][0]["text"],
        text.as_str()
    );
}

#[tokio::test]
async fn tool_stream_matches_fixture_and_fragments_join() {
    let mock = start(MockConfig::default()).await;
    let body = converse_body(json!({ "toolConfig": weather_tools(json!({"any": {}})) }));
    let (_, _, bytes) = send_signed(&mock, STREAM_PATH, &body, &[]).await;
    let messages = decode_all(&bytes);
    assert_stream_matches(
        &messages,
        &serde_json::from_str(TOOL_STREAM_FIXTURE).unwrap(),
    );
    let input: String = messages
        .iter()
        .filter_map(|m| m.payload["delta"]["toolUse"]["input"].as_str())
        .collect();
    let input: Value = serde_json::from_str(&input).unwrap();
    assert!(input["city"].is_string(), "{input}");
    let stop = messages
        .iter()
        .find(|m| m.header(":event-type") == "messageStop")
        .unwrap();
    assert_eq!(stop.payload["stopReason"], "tool_use");
}

#[tokio::test]
async fn stream_exceptions_guardrails_and_malformed_frames() {
    let mock = start(MockConfig::default()).await;
    let knobs = json!({"mock": {"stream_exception_after_chunks": 2}});
    let (_, _, bytes) = send_signed(&mock, STREAM_PATH, &converse_body(knobs), &[]).await;
    let messages = decode_all(&bytes);
    assert_eq!(messages.len(), 3);
    let last = &messages[2];
    let fixture: Value = serde_json::from_str(EXCEPTION_FIXTURE).unwrap();
    for (k, v) in fixture["headers"].as_object().unwrap() {
        assert_eq!(last.header(k), v.as_str().unwrap(), "{k}");
    }
    assert_shape(&last.payload, &fixture["payload"], "exception");

    let knobs = json!({"mock": {"guardrail": true}});
    let (_, _, bytes) = send_signed(&mock, PATH, &converse_body(knobs), &[]).await;
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["stopReason"], "guardrail_intervened");

    let knobs = json!({"mock": {"malformed": true}});
    let (_, _, bytes) = send_signed(&mock, STREAM_PATH, &converse_body(knobs), &[]).await;
    let first = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let second = u32::from_be_bytes([
        bytes[first],
        bytes[first + 1],
        bytes[first + 2],
        bytes[first + 3],
    ]) as usize;
    let msg = &bytes[first..first + second];
    let carried = u32::from_be_bytes([
        msg[second - 4],
        msg[second - 3],
        msg[second - 2],
        msg[second - 1],
    ]);
    assert_ne!(
        carried,
        crc32(&msg[..second - 4]),
        "the second message's CRC is broken"
    );
}

async fn error_of(status: StatusCode, headers: &HeaderMap, body: &[u8], fixture: &str) -> Value {
    let fixture: Value = serde_json::from_str(fixture).unwrap();
    assert_eq!(status.as_u16(), fixture["status"], "{body:?}");
    assert_eq!(
        headers["x-amzn-errortype"],
        fixture["x-amzn-ErrorType"].as_str().unwrap()
    );
    assert_eq!(headers["content-type"], "application/json");
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_shape(&v, &fixture["body"], "error");
    v
}

#[tokio::test]
async fn errors_in_bedrocks_shape() {
    let mock = start(MockConfig::default()).await;
    let knobs = json!({"mock": {"status": 429, "retry_after": 3}});
    let (status, headers, body) = send_signed(&mock, PATH, &converse_body(knobs), &[]).await;
    let v = error_of(status, &headers, &body, THROTTLING_FIXTURE).await;
    assert_eq!(headers["retry-after"], "3");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("Too many requests"));

    let starts_with_assistant =
        json!({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]});
    let (status, headers, body) = send_signed(&mock, PATH, &starts_with_assistant, &[]).await;
    let v = error_of(status, &headers, &body, VALIDATION_FIXTURE).await;
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("must start with a user message"));

    let knobs = json!({"mock": {"prompt_too_long": true}});
    let (status, _, body) = send_signed(&mock, PATH, &converse_body(knobs), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("Input is too long"));

    for (bad, needle) in [
        (
            converse_body(json!({"model": "x"})),
            "extraneous key [model]",
        ),
        (
            converse_body(json!({"toolConfig": {"tools": []}})),
            "at least one tool",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": []}}]}]}),
            "toolConfig field must be defined",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}]}),
            "alternate",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"image": {"format": "bmp", "source": {"bytes": "AA=="}}}]}]}),
            "format",
        ),
        (
            converse_body(json!({"inferenceConfig": {"maxTokens": 0}})),
            "maxTokens",
        ),
    ] {
        let (status, headers, body) = send_signed(&mock, PATH, &bad, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(headers["x-amzn-errortype"]
            .to_str()
            .unwrap()
            .starts_with("ValidationException:"));
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

#[tokio::test]
async fn sigv4_is_checked() {
    let mock = start(MockConfig::default()).await;
    let body = serde_json::to_vec(&converse_body(json!({}))).unwrap();
    let call = |headers: Vec<(String, String)>| {
        let body = body.clone();
        let mock = &mock;
        async move {
            let refs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            collect(mock.send(Method::POST, PATH, &refs, Some(&body)).await).await
        }
    };
    let good = |secret: &str, service: &str, key: &str, at: u64| {
        signed(PATH, &body, &[], key, secret, service, at)
    };

    let (status, _, _) = call(good(
        BEDROCK_SECRET_ACCESS_KEY,
        "bedrock",
        BEDROCK_ACCESS_KEY_ID,
        now(),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);

    // No Authorization at all.
    let (status, headers, _) = call(vec![("host".into(), HOST.into())]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .starts_with("MissingAuthenticationTokenException"));

    // The wrong secret for the mock's key.
    let (status, headers, body_bytes) =
        call(good("wrong", "bedrock", BEDROCK_ACCESS_KEY_ID, now())).await;
    error_of(status, &headers, &body_bytes, SIGNATURE_FIXTURE).await;

    // Scoped to another service, or signed 20 minutes ago.
    let (status, _, text) = call(good(
        BEDROCK_SECRET_ACCESS_KEY,
        "s3",
        BEDROCK_ACCESS_KEY_ID,
        now(),
    ))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&text).contains("'bedrock'"));
    let (status, _, text) = call(good(
        BEDROCK_SECRET_ACCESS_KEY,
        "bedrock",
        BEDROCK_ACCESS_KEY_ID,
        now() - 1200,
    ))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&text).contains("Signature expired"));

    // A body changed after signing.
    let mut tampered = good(
        BEDROCK_SECRET_ACCESS_KEY,
        "bedrock",
        BEDROCK_ACCESS_KEY_ID,
        now(),
    );
    tampered.push(("x-mock-knobs".into(), "{}".into()));
    let other_body =
        serde_json::to_vec(&converse_body(json!({"system": [{"text": "x"}]}))).unwrap();
    let refs: Vec<(&str, &str)> = tampered
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, _, _) = collect(
        mock.send(Method::POST, PATH, &refs, Some(&other_body))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A malformed Authorization: no SignedHeaders.
    let mut broken = good(
        BEDROCK_SECRET_ACCESS_KEY,
        "bedrock",
        BEDROCK_ACCESS_KEY_ID,
        now(),
    );
    let auth = broken.last_mut().unwrap();
    auth.1 = auth.1.replace("SignedHeaders=", "Signed=");
    let (status, headers, _) = call(broken).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .starts_with("IncompleteSignatureException"));

    // Another key id: only the structure can be checked, and it is fine.
    let (status, _, _) = call(good("anything", "bedrock", "AKIAOTHERKEY0000000", now())).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_under_model_answer_in_bedrocks_shape() {
    let mock = start(MockConfig::default()).await;
    let (status, headers, _) = collect(
        mock.send(Method::POST, "/model/x/invoke-agent", &[], Some(b"{}"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers.contains_key("x-amzn-errortype"));
}
