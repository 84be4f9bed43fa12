use super::*;
use crate::config::{Endpoint, ProviderKind, Secret};
use crate::error::UpstreamErrorKind;

/// Builds a request for `body` as the pipeline would.
fn build(p: &OpenAi, op: Operation, body: &[u8], model: &str) -> UpstreamRequest {
    p.build_request(&Exchange {
        op,
        body,
        headers: &HeaderMap::new(),
        model,
        client_model: &Arc::from("d"),
    })
    .unwrap()
}

/// The reply translator of a chat request whose client asked for model `d`.
fn reply(p: &OpenAi) -> Box<dyn Reply> {
    build(
        p,
        Operation::ChatCompletions,
        br#"{"model":"d","messages":[]}"#,
        "m",
    )
    .reply
}

fn event(r: &mut dyn Reply, e: &[u8]) -> (StreamStatus, String) {
    let mut out = BytesMut::new();
    let status = r.event(e, &mut out).unwrap();
    (status, String::from_utf8(out.to_vec()).unwrap())
}

fn cfg(key: Option<&str>) -> ProviderConfig {
    let mut h = HeaderValue::from_static("org-1");
    h.set_sensitive(true);
    ProviderConfig {
        name: Arc::from("p"),
        kind: ProviderKind::OpenAi,
        endpoint: Endpoint::Url("http://x/v1".into()),
        api_key: key.map(|k| Secret::new(k.into())),
        headers: vec![(http::HeaderName::from_static("openai-organization"), h)],
    }
}

#[test]
fn openai_request_replaces_only_the_model() {
    let p = OpenAi::new(&cfg(Some("sk-up")), "http://x/v1".into(), None).unwrap();
    let body = br#"{"model":"alias","messages":[{"role":"user","content":"hi"}],"future_param":{"x":[1,2]}}"#;
    let req = build(&p, Operation::ChatCompletions, body, "gpt-4o-mini");
    assert_eq!(req.uri.to_string(), "http://x/v1/chat/completions");
    assert_eq!(
        &req.body[..],
        br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"future_param":{"x":[1,2]}}"#
    );
    assert_eq!(req.headers["authorization"], "Bearer sk-up");
    assert!(req.headers["authorization"].is_sensitive());
    assert_eq!(req.headers["openai-organization"], "org-1");
}

#[test]
fn azure_uses_deployment_urls_and_api_key_header() {
    let p = OpenAi::new(
        &cfg(Some("az-key")),
        "https://r.openai.azure.com".into(),
        Some("2024-10-21".into()),
    )
    .unwrap();
    let req = build(
        &p,
        Operation::Embeddings,
        br#"{"model":"e","input":"x"}"#,
        "my dep",
    );
    assert_eq!(
        req.uri.to_string(),
        "https://r.openai.azure.com/openai/deployments/my%20dep/embeddings?api-version=2024-10-21"
    );
    assert_eq!(req.headers["api-key"], "az-key");
    assert!(req.headers.get("authorization").is_none());
}

#[test]
fn responses_keep_bytes_but_the_model() {
    let p = OpenAi::new(&cfg(None), "http://x/v1".into(), None).unwrap();
    let body = b"{\n  \"id\": \"c1\",\n  \"model\": \"gpt-4o-2024-08-06\",\n  \"x\": 1.0\n}";
    let out = reply(&p).body(body).unwrap();
    assert_eq!(
        &out.body[..],
        b"{\n  \"id\": \"c1\",\n  \"model\": \"d\",\n  \"x\": 1.0\n}"
    );
    assert_eq!(out.usage, None);
    let with_usage =
        br#"{"model":"m","usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}"#;
    assert_eq!(
        reply(&p)
            .body(with_usage)
            .unwrap()
            .usage
            .unwrap()
            .total_tokens,
        5
    );
    assert!(matches!(
        reply(&p).body(b"<html>"),
        Err(GatewayError::Upstream(_))
    ));
}

#[test]
fn stream_events_are_rewritten_line_by_line() {
    let p = OpenAi::new(&cfg(None), "http://x/v1".into(), None).unwrap();
    let mut r = reply(&p);
    assert_eq!(
        event(&mut *r, b": keep-alive\ndata: [DONE]"),
        (StreamStatus::Done, ": keep-alive\ndata: [DONE]\n\n".into())
    );
    let chunk = br#"data: {"id":"1","model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
    assert_eq!(
        event(&mut *r, chunk),
        (
            StreamStatus::Continue,
            "data: {\"id\":\"1\",\"model\":\"d\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n".into()
        )
    );
    assert_eq!(r.usage().unwrap().total_tokens, 3);
    assert_eq!(
        event(&mut *r, br#"data:{"error":{"message":"boom"}}"#).0,
        StreamStatus::UpstreamError
    );
    assert!(r.event(b"data: {not json", &mut BytesMut::new()).is_err());
}

#[test]
fn anthropic_clients_are_translated_both_ways() {
    let p = OpenAi::new(&cfg(None), "http://x/v1".into(), None).unwrap();
    let req = p
        .build_request(&Exchange {
            op: Operation::Messages,
            body: br#"{"model":"d","max_tokens":5,"system":"be brief","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
            headers: &HeaderMap::new(),
            model: "gpt-4o-mini",
            client_model: &Arc::from("d"),
        })
        .unwrap();
    assert_eq!(req.uri.to_string(), "http://x/v1/chat/completions");
    let sent: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["stream_options"]["include_usage"], true);

    let mut r = req.reply;
    let mut out = String::new();
    for chunk in [
        r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
        r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}"#,
    ] {
        let (status, text) = event(&mut *r, chunk.as_bytes());
        assert_eq!(status, StreamStatus::Continue);
        out.push_str(&text);
    }
    let (status, tail) = event(&mut *r, b"data: [DONE]");
    assert_eq!(status, StreamStatus::Done);
    out.push_str(&tail);
    assert!(
        tail.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{tail}"
    );
    assert_eq!(r.usage().unwrap().total_tokens, 5);
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(out.contains(r#""text":"Hi""#), "{out}");
    assert!(out.contains(r#""stop_reason":"end_turn""#), "{out}");
    assert!(out.contains(r#""model":"d""#), "{out}");
}

#[test]
fn auth_errors_are_never_relayed() {
    let p = OpenAi::new(&cfg(None), "http://x/v1".into(), None).unwrap();
    let body = br#"{"error":{"message":"Incorrect API key provided: sk-ab***yz","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    match p.classify_error(StatusCode::UNAUTHORIZED, &HeaderMap::new(), body) {
        GatewayError::Upstream(u) => match u.kind {
            UpstreamErrorKind::Http { openai_body, .. } => assert!(openai_body.is_none()),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    match p.classify_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), body) {
        GatewayError::Upstream(u) => match u.kind {
            UpstreamErrorKind::Http { openai_body, .. } => assert!(openai_body.is_some()),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}
