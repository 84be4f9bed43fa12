use super::*;
use crate::config::{Endpoint, ProviderKind, Secret};

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
    let req = p
        .build_request(Operation::ChatCompletions, body, "gpt-4o-mini")
        .unwrap();
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
    let req = p
        .build_request(
            Operation::Embeddings,
            br#"{"model":"e","input":"x"}"#,
            "my dep",
        )
        .unwrap();
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
    let out = p.response_body(body, "demo").unwrap();
    assert_eq!(
        &out.body[..],
        b"{\n  \"id\": \"c1\",\n  \"model\": \"demo\",\n  \"x\": 1.0\n}"
    );
    assert_eq!(out.usage, None);
    let with_usage =
        br#"{"model":"m","usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}"#;
    assert_eq!(
        p.response_body(with_usage, "d")
            .unwrap()
            .usage
            .unwrap()
            .total_tokens,
        5
    );
    assert!(matches!(
        p.response_body(b"<html>", "demo"),
        Err(GatewayError::Upstream(_))
    ));
}

#[test]
fn stream_data_kinds() {
    let p = OpenAi::new(&cfg(None), "http://x/v1".into(), None).unwrap();
    assert!(matches!(
        p.stream_data(b"[DONE]", "d").unwrap(),
        StreamData::Done
    ));
    match p.stream_data(br#"{"id":"1","model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#, "d").unwrap() {
        StreamData::Chunk { payload, usage } => {
            assert_eq!(&payload[..], br#"{"id":"1","model":"d","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#);
            assert_eq!(usage.unwrap().total_tokens, 3);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        p.stream_data(br#"{"error":{"message":"boom"}}"#, "d")
            .unwrap(),
        StreamData::Error(_)
    ));
    assert!(p.stream_data(b"{not json", "d").is_err());
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
