use super::*;
use crate::config::{Endpoint, ProviderKind, Secret};
use crate::error::UpstreamErrorKind;

fn adapter() -> Anthropic {
    let cfg = ProviderConfig {
        name: Arc::from("claude"),
        kind: ProviderKind::Anthropic { api_version: None },
        endpoint: Endpoint::Url("http://x/v1".into()),
        api_key: Some(Secret::new("sk-ant-secret".into())),
        headers: Vec::new(),
    };
    Anthropic::new(&cfg, "http://x/v1", None).unwrap()
}

fn build(op: Operation, body: &[u8], headers: &HeaderMap) -> UpstreamRequest {
    adapter()
        .build_request(&Exchange {
            op,
            body,
            headers,
            model: "claude-sonnet-4-5",
            client_model: &Arc::from("smart"),
        })
        .unwrap()
}

fn events(reply: &mut dyn Reply, stream: &str) -> (Vec<StreamStatus>, String) {
    let mut out = BytesMut::new();
    let mut statuses = Vec::new();
    for event in stream.split("\n\n").filter(|e| !e.is_empty()) {
        statuses.push(reply.event(event.as_bytes(), &mut out).unwrap());
    }
    (statuses, String::from_utf8(out.to_vec()).unwrap())
}

#[test]
fn anthropic_clients_pass_through_with_their_protocol_headers() {
    let mut client = HeaderMap::new();
    client.insert(
        "anthropic-beta",
        HeaderValue::from_static("prompt-caching-2024-07-31"),
    );
    client.insert("anthropic-version", HeaderValue::from_static("2023-01-01"));
    client.insert("x-api-key", HeaderValue::from_static("client-key"));
    let body = br#"{"model":"smart","max_tokens":10,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"hi"}]}"#;
    let req = build(Operation::Messages, body, &client);
    assert_eq!(req.uri.to_string(), "http://x/v1/messages");
    assert_eq!(
        &req.body[..],
        &br#"{"model":"claude-sonnet-4-5","max_tokens":10,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"hi"}]}"#[..]
    );
    assert_eq!(req.headers["anthropic-beta"], "prompt-caching-2024-07-31");
    assert_eq!(req.headers["anthropic-version"], "2023-01-01");
    // The gateway's own credential, never the client's.
    assert_eq!(req.headers["x-api-key"], "sk-ant-secret");
    assert!(req.headers["x-api-key"].is_sensitive());

    let plain = build(Operation::Messages, body, &HeaderMap::new());
    assert_eq!(plain.headers["anthropic-version"], API_VERSION);
    assert!(plain.headers.get("anthropic-beta").is_none());
}

#[test]
fn passthrough_renames_the_model_and_reads_usage() {
    let mut reply = build(
        Operation::Messages,
        br#"{"model":"smart","max_tokens":10,"messages":[]}"#,
        &HeaderMap::new(),
    )
    .reply;
    let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":2,"cache_read_input_tokens":3,"output_tokens":4}}"#;
    let out = reply.body(body).unwrap();
    let text = std::str::from_utf8(&out.body).unwrap();
    assert!(text.contains(r#""model":"smart""#), "{text}");
    let usage = out.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens,
            usage.cache_write_tokens
        ),
        (15, 4, 3, 2)
    );
}

#[test]
fn passthrough_streams_keep_events_and_rename_the_model() {
    let mut reply = build(
        Operation::Messages,
        br#"{"model":"smart","max_tokens":10,"messages":[],"stream":true}"#,
        &HeaderMap::new(),
    )
    .reply;
    let stream = concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}"#,
        "\n\n",
        "event: ping\n",
        r#"data: {"type": "ping"}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        "\n\n",
        "event: message_delta\n",
        r#"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
        "\n\n",
        "event: message_stop\n",
        r#"data: {"type":"message_stop"}"#,
        "\n\n",
    );
    let (statuses, out) = events(&mut *reply, stream);
    assert_eq!(statuses.last(), Some(&StreamStatus::Done));
    assert!(out.contains(r#""model":"smart""#), "{out}");
    assert!(!out.contains("claude-sonnet-4-5"), "{out}");
    // Every other event is byte for byte what the provider sent.
    assert!(
        out.contains("event: ping\ndata: {\"type\": \"ping\"}\n\n"),
        "{out}"
    );
    assert!(out.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    let usage = reply.usage().unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (25, 15));
}

#[test]
fn openai_clients_are_translated_both_ways() {
    let req = build(
        Operation::ChatCompletions,
        br#"{"model":"smart","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
        &HeaderMap::new(),
    );
    let sent: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(sent["system"], "be brief");
    assert_eq!(sent["max_tokens"], 4096);
    assert_eq!(sent["stream"], true);
    let mut reply = req.reply;
    let stream = concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":7,"output_tokens":1}}}"#,
        "\n\n",
        "event: content_block_start\n",
        r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
        "\n\n",
        "event: content_block_stop\n",
        r#"data: {"type":"content_block_stop","index":0}"#,
        "\n\n",
        "event: message_delta\n",
        r#"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}}"#,
        "\n\n",
        "event: message_stop\n",
        r#"data: {"type":"message_stop"}"#,
        "\n\n",
    );
    let (statuses, out) = events(&mut *reply, stream);
    assert_eq!(statuses.last(), Some(&StreamStatus::Done));
    assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
    assert!(!out.contains("event:"), "{out}");
    let chunks: Vec<serde_json::Value> = out
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["model"] == "smart"));
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["delta"]["content"] == "Hello"));
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let last = chunks.last().unwrap();
    assert_eq!(last["usage"]["prompt_tokens"], 7);
    assert_eq!(last["usage"]["completion_tokens"], 3);
    assert_eq!(reply.usage().unwrap().total_tokens, 10);
}

#[test]
fn untranslatable_requests_are_client_errors_naming_the_field() {
    let err = adapter()
        .build_request(&Exchange {
            op: Operation::ChatCompletions,
            body: br#"{"model":"smart","messages":[{"role":"user","content":"hi"}],"n":2}"#,
            headers: &HeaderMap::new(),
            model: "claude",
            client_model: &Arc::from("smart"),
        })
        .unwrap_err();
    match err {
        GatewayError::InvalidField { param, .. } => assert_eq!(param, "n"),
        other => panic!("{other:?}"),
    }
    let err = adapter()
        .build_request(&Exchange {
            op: Operation::Embeddings,
            body: br#"{"model":"smart","input":"x"}"#,
            headers: &HeaderMap::new(),
            model: "claude",
            client_model: &Arc::from("smart"),
        })
        .unwrap_err();
    assert!(matches!(err, GatewayError::InvalidField { .. }));
}

#[test]
fn errors_become_openai_shaped_but_credential_errors_are_never_relayed() {
    let a = adapter();
    let body = br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
    match a.classify_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), body) {
        GatewayError::Upstream(u) => match u.kind {
            UpstreamErrorKind::Http {
                openai_body: Some(b),
                ..
            } => {
                let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
                assert_eq!(v["error"]["code"], "context_length_exceeded");
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let auth = br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-12"}}"#;
    match a.classify_error(StatusCode::UNAUTHORIZED, &HeaderMap::new(), auth) {
        GatewayError::Upstream(u) => match u.kind {
            UpstreamErrorKind::Http { openai_body, .. } => assert!(openai_body.is_none()),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn responses_input_tokens_are_counted_by_count_tokens_with_only_its_members() {
    let body = br#"{"model":"smart","instructions":"Be brief.","input":"hi there","max_output_tokens":50,"temperature":0.2,"tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{}}}]}"#;
    let req = adapter()
        .responses_input_tokens(&Exchange {
            op: Operation::Responses,
            body,
            headers: &HeaderMap::new(),
            model: "claude-sonnet-4-5",
            client_model: &Arc::from("smart"),
        })
        .unwrap()
        .unwrap();
    assert_eq!(req.uri.to_string(), "http://x/v1/messages/count_tokens");
    assert_eq!(req.headers["x-api-key"], "sk-ant-secret");
    let sent: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    let mut keys: Vec<&str> = sent
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    // `max_tokens` and the sampling settings are refused by `count_tokens`: not sent.
    assert_eq!(keys, ["messages", "model", "system", "tools"], "{sent}");
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    assert_eq!(sent["messages"][0]["content"], "hi there");
    let mut reply = req.reply;
    let out = reply.body(br#"{"input_tokens":42}"#).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.body).unwrap(),
        serde_json::json!({"object": "response.input_tokens", "input_tokens": 42})
    );
    assert!(out.usage.is_none());
    assert!(reply.body(b"not json").is_err());
}

#[test]
fn responses_input_tokens_refuse_what_the_translation_cannot_express() {
    let body = br#"{"model":"smart","input":[{"type":"item_reference","id":"x"}]}"#;
    let err = adapter()
        .responses_input_tokens(&Exchange {
            op: Operation::Responses,
            body,
            headers: &HeaderMap::new(),
            model: "claude-sonnet-4-5",
            client_model: &Arc::from("smart"),
        })
        .unwrap()
        .err()
        .unwrap();
    assert!(
        matches!(&err, GatewayError::Unsupported { message, .. } if message.contains("claude/claude-sonnet-4-5")),
        "{err:?}"
    );
}
