use serde_json::{json, Value};

use super::*;
use crate::config::{Endpoint, ProviderKind, Secret};
use crate::error::UpstreamErrorKind;

const STUDIO: &str = "https://generativelanguage.googleapis.com/v1beta";
const VERTEX: &str =
    "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google";

fn adapter(flavor: Flavor) -> Gemini {
    let (kind, base) = match flavor {
        Flavor::AiStudio => (ProviderKind::Gemini, STUDIO),
        Flavor::Vertex => (ProviderKind::Vertex, VERTEX),
    };
    let cfg = ProviderConfig {
        name: Arc::from("gem"),
        kind,
        endpoint: Endpoint::Url(base.into()),
        api_key: Some(Secret::new("AIza-secret".into())),
        headers: Vec::new(),
    };
    Gemini::new(&cfg, base, flavor).unwrap()
}

fn build(flavor: Flavor, op: Operation, body: &[u8], model: &str) -> UpstreamRequest {
    adapter(flavor)
        .build_request(&Exchange {
            op,
            body,
            headers: &HeaderMap::new(),
            model,
            client_model: &Arc::from("smart"),
        })
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Feeds an SSE body (Google's `\r\n\r\n` framing) event by event, as the relay cuts it.
fn events(reply: &mut dyn Reply, stream: &str) -> (Vec<StreamStatus>, String) {
    let mut out = BytesMut::new();
    let mut statuses = Vec::new();
    for event in stream.split("\r\n\r\n").filter(|e| !e.is_empty()) {
        statuses.push(reply.event(event.as_bytes(), &mut out).unwrap());
    }
    (statuses, String::from_utf8(out.to_vec()).unwrap())
}

fn data_payloads(out: &str) -> Vec<String> {
    out.split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(str::to_owned)
        .collect()
}

const STREAM: &str = concat!(
    r#"data: {"candidates": [{"content": {"parts": [{"text": "Hello"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 7,"totalTokenCount": 7},"modelVersion": "gemini-2.5-flash","responseId": "rid"}"#,
    "\r\n\r\n",
    r#"data: {"candidates": [{"content": {"parts": [{"text": " there"}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 3,"totalTokenCount": 10},"modelVersion": "gemini-2.5-flash","responseId": "rid"}"#,
    "\r\n\r\n",
);

#[test]
fn ai_studio_requests_use_the_api_key_header_and_model_urls() {
    let req = build(
        Flavor::AiStudio,
        Operation::ChatCompletions,
        br#"{"model":"smart","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"max_tokens":20}"#,
        "gemini-2.5-flash",
    );
    assert_eq!(
        req.uri.to_string(),
        format!("{STUDIO}/models/gemini-2.5-flash:generateContent")
    );
    assert_eq!(req.headers["x-goog-api-key"], "AIza-secret");
    assert!(req.headers["x-goog-api-key"].is_sensitive());
    assert!(req.headers.get("authorization").is_none());
    let sent: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        sent,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "generationConfig": {"maxOutputTokens": 20}
        })
    );
    // The key is never in the Debug output.
    assert!(!format!("{req:?}").contains("AIza-secret"));

    let req = build(
        Flavor::AiStudio,
        Operation::ChatCompletions,
        br#"{"model":"smart","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
        "tunedModels/my model",
    );
    assert_eq!(
        req.uri.to_string(),
        format!("{STUDIO}/tunedModels/my%20model:streamGenerateContent?alt=sse")
    );
}

#[test]
fn vertex_requests_use_a_bearer_token() {
    let req = build(
        Flavor::Vertex,
        Operation::ChatCompletions,
        br#"{"model":"smart","messages":[{"role":"user","content":"hi"}]}"#,
        "gemini-2.5-pro",
    );
    assert_eq!(
        req.uri.to_string(),
        format!("{VERTEX}/models/gemini-2.5-pro:generateContent")
    );
    assert_eq!(req.headers["authorization"], "Bearer AIza-secret");
    assert!(req.headers["authorization"].is_sensitive());
    assert!(req.headers.get("x-goog-api-key").is_none());
}

#[test]
fn openai_streams_are_translated_and_end_on_the_finishing_event() {
    let req = build(
        Flavor::AiStudio,
        Operation::ChatCompletions,
        br#"{"model":"smart","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
        "gemini-2.5-flash",
    );
    let mut reply = req.reply;
    let (statuses, out) = events(&mut *reply, STREAM);
    assert_eq!(statuses, [StreamStatus::Continue, StreamStatus::Done]);
    let data = data_payloads(&out);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["model"] == "smart"));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello there");
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 10);
    assert_eq!(reply.usage().unwrap().completion_tokens, 3);

    // An error event ends the stream with OpenAI's error shape.
    let req = build(
        Flavor::AiStudio,
        Operation::ChatCompletions,
        br#"{"model":"smart","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
        "m",
    );
    let mut reply = req.reply;
    let (statuses, out) = events(
        &mut *reply,
        "data: {\"error\": {\"code\": 503, \"message\": \"overloaded\", \"status\": \"UNAVAILABLE\"}}\r\n\r\n",
    );
    assert_eq!(statuses, [StreamStatus::UpstreamError]);
    let v: Value = serde_json::from_str(&data_payloads(&out)[0]).unwrap();
    assert_eq!(v["error"]["message"], "overloaded");
}

#[test]
fn non_streamed_answers_are_chat_completions() {
    let mut reply = build(
        Flavor::AiStudio,
        Operation::ChatCompletions,
        br#"{"model":"smart","messages":[{"role":"user","content":"hi"}]}"#,
        "m",
    )
    .reply;
    let out = reply
        .body(br#"{"candidates": [{"content": {"parts": [{"text": "Hi!"}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 2,"candidatesTokenCount": 2,"totalTokenCount": 4},"responseId": "r"}"#)
        .unwrap();
    let v: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(v["model"], "smart");
    assert_eq!(v["choices"][0]["message"]["content"], "Hi!");
    assert_eq!(out.usage.unwrap().total_tokens, 4);
    assert!(reply.body(b"<html>").is_err());
}

#[test]
fn anthropic_clients_are_served_by_composition() {
    let req = build(
        Flavor::AiStudio,
        Operation::Messages,
        br#"{"model":"smart","max_tokens":50,"system":"be brief","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        "gemini-2.5-flash",
    );
    assert!(req
        .uri
        .to_string()
        .ends_with(":streamGenerateContent?alt=sse"));
    let sent: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(sent["systemInstruction"]["parts"][0]["text"], "be brief");
    assert_eq!(sent["generationConfig"]["maxOutputTokens"], 50);
    let mut reply = req.reply;
    let (statuses, out) = events(&mut *reply, STREAM);
    assert_eq!(statuses.last(), Some(&StreamStatus::Done));
    let names: Vec<&str> = out
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("event: ")))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(out.contains(r#""stop_reason":"end_turn""#), "{out}");
    assert!(out.contains(r#""output_tokens":3"#), "{out}");

    let mut reply = build(
        Flavor::AiStudio,
        Operation::Messages,
        br#"{"model":"smart","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}"#,
        "m",
    )
    .reply;
    let out = reply
        .body(br#"{"candidates": [{"finishReason": "SAFETY","index": 0,"safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT","probability": "HIGH","blocked": true}]}],"usageMetadata": {"promptTokenCount": 2,"totalTokenCount": 2}}"#)
        .unwrap();
    let v: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["stop_reason"], "refusal");
    assert!(v["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("HARM_CATEGORY_HARASSMENT"));
}

#[test]
fn embeddings_pick_the_method_by_input_count() {
    let req = build(
        Flavor::AiStudio,
        Operation::Embeddings,
        br#"{"model":"smart","input":"hello"}"#,
        "text-embedding-004",
    );
    assert!(req
        .uri
        .to_string()
        .ends_with("/models/text-embedding-004:embedContent"));
    let req = build(
        Flavor::AiStudio,
        Operation::Embeddings,
        br#"{"model":"smart","input":["a","b"]}"#,
        "text-embedding-004",
    );
    assert!(req
        .uri
        .to_string()
        .ends_with("/models/text-embedding-004:batchEmbedContents"));
    let mut reply = req.reply;
    let out = reply
        .body(br#"{"embeddings": [{"values": [0.1]}, {"values": [0.2]}]}"#)
        .unwrap();
    let v: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(v["data"][1]["embedding"][0], 0.2);
    assert_eq!(v["model"], "smart");

    let err = adapter(Flavor::Vertex)
        .build_request(&Exchange {
            op: Operation::Embeddings,
            body: br#"{"model":"smart","input":["a","b"]}"#,
            headers: &HeaderMap::new(),
            model: "text-embedding-005",
            client_model: &Arc::from("smart"),
        })
        .unwrap_err();
    assert!(matches!(err, GatewayError::InvalidField { ref param, .. } if param == "input"));
}

fn http(e: GatewayError) -> (StatusCode, FailureKind, Option<Value>, Option<HeaderValue>) {
    match e {
        GatewayError::Upstream(u) => match u.kind {
            UpstreamErrorKind::Http {
                status,
                failure,
                openai_body,
                retry_after,
            } => (
                status,
                failure,
                openai_body.map(|b| serde_json::from_slice(&b).unwrap()),
                retry_after,
            ),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn google_errors_are_normalised() {
    let a = adapter(Flavor::AiStudio);
    let quota =
        br#"{"error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]}}"#;
    let (status, kind, body, retry) =
        http(a.classify_error(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), quota));
    assert_eq!(
        (status, kind),
        (StatusCode::TOO_MANY_REQUESTS, FailureKind::RateLimited)
    );
    assert_eq!(body.unwrap()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(retry.unwrap(), "17");

    let mut with_header = HeaderMap::new();
    with_header.insert(RETRY_AFTER, HeaderValue::from_static("3"));
    let (_, _, _, retry) =
        http(a.classify_error(StatusCode::TOO_MANY_REQUESTS, &with_header, quota));
    assert_eq!(retry.unwrap(), "3");

    let key = br#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"},
                    {"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": "Invalid API key: AIza-secret"}]}}"#;
    let (status, kind, body, _) =
        http(a.classify_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), key));
    assert_eq!(
        (status, kind),
        (StatusCode::UNAUTHORIZED, FailureKind::Auth)
    );
    assert!(body.is_none());

    let denied = br#"{"error": {"code": 403, "message": "Permission denied on resource project p.", "status": "PERMISSION_DENIED"}}"#;
    let (status, kind, body, _) =
        http(a.classify_error(StatusCode::FORBIDDEN, &HeaderMap::new(), denied));
    assert_eq!((status, kind), (StatusCode::FORBIDDEN, FailureKind::Auth));
    assert!(body.is_none());

    for (status, body, want) in [
        (
            StatusCode::SERVICE_UNAVAILABLE,
            &br#"{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}"#[..],
            FailureKind::Overloaded,
        ),
        (
            StatusCode::BAD_REQUEST,
            br#"{"error": {"code": 400, "message": "The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}"#,
            FailureKind::ContextLengthExceeded,
        ),
        (
            StatusCode::NOT_FOUND,
            br#"{"error": {"code": 404, "message": "models/nope is not found for API version v1beta", "status": "NOT_FOUND"}}"#,
            FailureKind::NotFound,
        ),
        (
            StatusCode::GATEWAY_TIMEOUT,
            br#"{"error": {"code": 504, "message": "Deadline exceeded", "status": "DEADLINE_EXCEEDED"}}"#,
            FailureKind::Timeout,
        ),
        (
            StatusCode::BAD_REQUEST,
            br#"{"error": {"code": 400, "message": "User location is not supported for the API use.", "status": "FAILED_PRECONDITION"}}"#,
            FailureKind::InvalidRequest,
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}"#,
            FailureKind::UpstreamError,
        ),
        (StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>", FailureKind::UpstreamError),
    ] {
        let (s, kind, relayed, _) = http(a.classify_error(status, &HeaderMap::new(), body));
        assert_eq!((s, kind), (status, want), "{}", String::from_utf8_lossy(body));
        assert_eq!(relayed.is_some(), body.starts_with(b"{"));
    }
}

#[test]
fn responses_input_tokens_are_counted_by_count_tokens_in_each_flavors_shape() {
    let body = br#"{"model":"smart","instructions":"Be brief.","input":"hi there","max_output_tokens":50}"#;
    let count = |flavor| {
        adapter(flavor)
            .responses_input_tokens(&Exchange {
                op: Operation::Responses,
                body,
                headers: &HeaderMap::new(),
                model: "gemini-2.5-flash",
                client_model: &Arc::from("smart"),
            })
            .unwrap()
            .unwrap()
    };
    let studio = count(Flavor::AiStudio);
    assert_eq!(
        studio.uri.to_string(),
        format!("{STUDIO}/models/gemini-2.5-flash:countTokens")
    );
    let sent: serde_json::Value = serde_json::from_slice(&studio.body).unwrap();
    let inner = &sent["generateContentRequest"];
    assert_eq!(inner["model"], "models/gemini-2.5-flash");
    assert_eq!(inner["contents"][0]["parts"][0]["text"], "hi there");
    assert_eq!(inner["systemInstruction"]["parts"][0]["text"], "Be brief.");
    let vertex = count(Flavor::Vertex);
    let sent: serde_json::Value = serde_json::from_slice(&vertex.body).unwrap();
    let mut keys: Vec<&str> = sent
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["contents", "generationConfig", "systemInstruction"],
        "{sent}"
    );
    let mut reply = studio.reply;
    let out = reply
        .body(br#"{"totalTokens": 17, "promptTokensDetails": []}"#)
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.body).unwrap(),
        serde_json::json!({"object": "response.input_tokens", "input_tokens": 17})
    );
}
