use serde_json::{json, Value};
use switchyard_types::bedrock::eventstream::{encode, Header, HeaderValue as EsValue, Message};

use super::*;
use crate::config::{Endpoint, ProviderKind, Secret};
use crate::error::UpstreamErrorKind;

fn credentials(token: Option<&str>) -> AwsCredentials {
    AwsCredentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
        session_token: token.map(|t| Secret::new(t.into())),
    }
}

fn adapter_with(token: Option<&str>) -> Bedrock {
    let creds = credentials(token);
    let cfg = ProviderConfig {
        name: Arc::from("aws"),
        kind: ProviderKind::Bedrock {
            region: "eu-west-1".into(),
            credentials: creds.clone(),
        },
        endpoint: Endpoint::Url("https://bedrock-runtime.eu-west-1.amazonaws.com".into()),
        api_key: None,
        headers: vec![(
            HeaderName::from_static("x-extra"),
            HeaderValue::from_static("1"),
        )],
    };
    Bedrock::new(
        &cfg,
        "https://bedrock-runtime.eu-west-1.amazonaws.com/",
        "eu-west-1",
        &creds,
    )
    .unwrap()
}

fn build(op: Operation, body: &Value) -> Result<UpstreamRequest, GatewayError> {
    let body = serde_json::to_vec(body).unwrap();
    adapter_with(Some("session-token-xyz")).build_request(&Exchange {
        op,
        body: &body,
        headers: &HeaderMap::new(),
        model: "anthropic.claude-3-5-haiku-20241022-v1:0",
        client_model: &Arc::from("haiku"),
    })
}

fn event(kind: &str, payload: &Value) -> Vec<u8> {
    let payload = serde_json::to_vec(payload).unwrap();
    encode(&Message {
        headers: vec![
            Header {
                name: ":event-type",
                value: EsValue::String(kind),
            },
            Header {
                name: ":content-type",
                value: EsValue::String("application/json"),
            },
            Header {
                name: ":message-type",
                value: EsValue::String("event"),
            },
        ],
        payload: &payload,
    })
    .unwrap()
}

fn text_stream(with_metadata: bool) -> Vec<Vec<u8>> {
    let mut events = vec![
        event("messageStart", &json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        ),
        event("contentBlockStop", &json!({"contentBlockIndex": 0})),
        event("messageStop", &json!({"stopReason": "end_turn"})),
    ];
    if with_metadata {
        events.push(event(
            "metadata",
            &json!({"usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4}}),
        ));
    }
    events
}

fn relay(reply: &mut dyn Reply, events: &[Vec<u8>]) -> (Vec<StreamStatus>, String) {
    let mut out = BytesMut::new();
    let statuses = events
        .iter()
        .map(|e| reply.event(e, &mut out).unwrap())
        .collect();
    (statuses, String::from_utf8(out.to_vec()).unwrap())
}

#[test]
fn requests_are_signed_converse_calls() {
    let req = build(
        Operation::ChatCompletions,
        &json!({"model": "haiku", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap();
    assert_eq!(
        req.uri.to_string(),
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    );
    let h = &req.headers;
    assert_eq!(h["host"], "bedrock-runtime.eu-west-1.amazonaws.com");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["accept"], "application/json");
    assert_eq!(h["x-extra"], "1");
    assert_eq!(
        h["x-amz-content-sha256"],
        sigv4::hex_sha256(&req.body).as_str()
    );
    assert_eq!(h["x-amz-security-token"], "session-token-xyz");
    let auth = h["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            && auth.contains("/eu-west-1/bedrock/aws4_request, SignedHeaders=accept;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-extra, Signature="),
        "{auth}"
    );
    assert!(h["authorization"].is_sensitive());
    assert!(h["x-amz-security-token"].is_sensitive());
    // Nothing secret in the request's Debug output.
    let shown = format!("{req:?}");
    assert!(!shown.contains("Signature="), "{shown}");
    assert!(!shown.contains("session-token-xyz"), "{shown}");
    assert!(!shown.contains("EXAMPLEKEY"), "{shown}");
    let shown = format!("{:?}", adapter_with(Some("session-token-xyz")));
    assert!(
        !shown.contains("EXAMPLEKEY") && !shown.contains("session-token-xyz"),
        "{shown}"
    );

    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
    );

    let stream = build(
        Operation::ChatCompletions,
        &json!({"model": "haiku", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap();
    assert!(stream.uri.path().ends_with("/converse-stream"));
    assert_eq!(
        stream.headers["accept"],
        "application/vnd.amazon.eventstream"
    );
    assert_eq!(stream.reply.framing(), Framing::EventStream);
}

#[test]
fn untranslatable_requests_and_embeddings_are_400s() {
    let err = build(
        Operation::ChatCompletions,
        &json!({"model": "haiku", "n": 2, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap_err();
    assert!(matches!(err, GatewayError::InvalidField { ref param, .. } if param == "n"));
    let err = build(
        Operation::Embeddings,
        &json!({"model": "haiku", "input": "x"}),
    )
    .unwrap_err();
    assert!(
        matches!(err, GatewayError::InvalidField { ref message, .. } if message.contains("not supported for this provider type")),
        "{err:?}"
    );
}

#[test]
fn chat_replies_translate_bodies_and_streams() {
    let mut reply = build(
        Operation::ChatCompletions,
        &json!({"model": "haiku", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap()
    .reply;
    let out = reply
        .body(br#"{"output":{"message":{"role":"assistant","content":[{"text":"Hello"}]}},"stopReason":"end_turn","usage":{"inputTokens":4,"outputTokens":1,"totalTokens":5}}"#)
        .unwrap();
    let v: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(v["model"], "haiku");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello");
    assert_eq!(out.usage.unwrap().total_tokens, 5);
    assert!(reply.body(b"<html>").is_err());

    let mut reply = build(
        Operation::ChatCompletions,
        &json!({"model": "haiku", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap()
    .reply;
    let (statuses, out) = relay(&mut *reply, &text_stream(true));
    assert_eq!(statuses.last(), Some(&StreamStatus::Done));
    assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
    assert!(out.contains(r#""content":"Hi""#), "{out}");
    assert!(out.contains(r#""total_tokens":4"#), "{out}");
    assert_eq!(reply.usage().unwrap().prompt_tokens, 3);

    // Ending after messageStop without metadata: closed by end_of_stream.
    let mut reply = build(
        Operation::ChatCompletions,
        &json!({"model": "haiku", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap()
    .reply;
    let (statuses, _) = relay(&mut *reply, &text_stream(false));
    assert_eq!(statuses.last(), Some(&StreamStatus::Continue));
    let mut out = BytesMut::new();
    assert_eq!(reply.end_of_stream(&mut out).unwrap(), StreamStatus::Done);
    assert_eq!(&out[..], b"data: [DONE]\n\n");

    // A broken frame is a malformed upstream answer, and nothing is written.
    let mut frame = text_stream(true)[1].clone();
    let last = frame.len() - 1;
    frame[last] ^= 1;
    let mut out = BytesMut::new();
    let err = reply.event(&frame, &mut out).unwrap_err();
    assert!(
        matches!(&err, GatewayError::Upstream(u) if matches!(u.kind, UpstreamErrorKind::Malformed(_))),
        "{err:?}"
    );
    assert!(out.is_empty());
}

#[test]
fn anthropic_clients_get_anthropic_answers() {
    let body = json!({"model": "haiku", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]});
    let req = build(Operation::Messages, &body).unwrap();
    let sent: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(sent["inferenceConfig"]["maxTokens"], 50);
    let mut reply = req.reply;
    let out = reply
        .body(br#"{"output":{"message":{"role":"assistant","content":[{"text":"Hello"},{"toolUse":{"toolUseId":"tooluse_1","name":"f","input":{"a":1}}}]}},"stopReason":"tool_use","usage":{"inputTokens":4,"outputTokens":1,"totalTokens":5}}"#)
        .unwrap();
    let v: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "haiku");
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][1]["id"], "tooluse_1");
    assert_eq!(v["content"][1]["input"], json!({"a": 1}));

    let mut stream_body = body.clone();
    stream_body["stream"] = true.into();
    let mut reply = build(Operation::Messages, &stream_body).unwrap().reply;
    let (statuses, out) = relay(&mut *reply, &text_stream(true));
    assert_eq!(statuses.last(), Some(&StreamStatus::Done));
    assert!(out.starts_with("event: message_start\n"), "{out}");
    assert!(
        out.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{out}"
    );
    assert!(out.contains(r#""output_tokens":1"#), "{out}");

    // A mid-stream exception is an Anthropic `error` event.
    let mut reply = build(Operation::Messages, &stream_body).unwrap().reply;
    let exception = encode(&Message {
        headers: vec![
            Header {
                name: ":message-type",
                value: EsValue::String("exception"),
            },
            Header {
                name: ":exception-type",
                value: EsValue::String("throttlingException"),
            },
        ],
        payload: br#"{"message":"Too many tokens"}"#,
    })
    .unwrap();
    let (statuses, out) = relay(&mut *reply, &[text_stream(true)[0].clone(), exception]);
    assert_eq!(statuses.last(), Some(&StreamStatus::UpstreamError));
    assert!(out.contains("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Too many tokens\"}}"), "{out}");
}

fn classify(
    status: u16,
    error_type: Option<&str>,
    body: &str,
) -> (u16, FailureKind, Option<Value>) {
    let mut headers = HeaderMap::new();
    if let Some(t) = error_type {
        headers.insert(
            "x-amzn-errortype",
            HeaderValue::from_str(&format!(
                "{t}:http://internal.amazon.com/coral/com.amazon.bedrock/"
            ))
            .unwrap(),
        );
    }
    let err = adapter_with(None).classify_error(
        StatusCode::from_u16(status).unwrap(),
        &headers,
        body.as_bytes(),
    );
    let GatewayError::Upstream(u) = err else {
        panic!("{err:?}")
    };
    let UpstreamErrorKind::Http {
        status,
        failure,
        openai_body,
        ..
    } = u.kind
    else {
        panic!("{:?}", u.kind)
    };
    (
        status.as_u16(),
        failure,
        openai_body.map(|b| serde_json::from_slice(&b).unwrap()),
    )
}

#[test]
fn bedrock_errors_are_classified() {
    use FailureKind::*;
    for (status, exception, message, kind, code) in [
        (
            429,
            "ThrottlingException",
            "Too many requests",
            RateLimited,
            Some("rate_limit_exceeded"),
        ),
        (
            503,
            "ServiceUnavailableException",
            "busy",
            Overloaded,
            Some("ServiceUnavailableException"),
        ),
        (
            429,
            "ModelNotReadyException",
            "warming",
            Overloaded,
            Some("ModelNotReadyException"),
        ),
        (
            400,
            "ValidationException",
            "Input is too long for requested model.",
            ContextLengthExceeded,
            Some("context_length_exceeded"),
        ),
        (
            400,
            "ValidationException",
            "bad field",
            InvalidRequest,
            Some("ValidationException"),
        ),
        (
            400,
            "ServiceQuotaExceededException",
            "quota",
            RateLimited,
            Some("rate_limit_exceeded"),
        ),
        (
            404,
            "ResourceNotFoundException",
            "no model",
            NotFound,
            Some("ResourceNotFoundException"),
        ),
        (
            408,
            "ModelTimeoutException",
            "slow",
            Timeout,
            Some("ModelTimeoutException"),
        ),
        (
            424,
            "ModelErrorException",
            "model broke",
            UpstreamError,
            Some("ModelErrorException"),
        ),
        (
            500,
            "InternalServerException",
            "oops",
            UpstreamError,
            Some("InternalServerException"),
        ),
        (
            403,
            "AccessDeniedException",
            "no access for AKIDEXAMPLE",
            Auth,
            None,
        ),
        (403, "UnrecognizedClientException", "bad token", Auth, None),
    ] {
        let body = json!({ "message": message }).to_string();
        let (got_status, failure, openai) = classify(status, Some(exception), &body);
        assert_eq!(got_status, status, "{exception}");
        assert_eq!(failure, kind, "{exception}");
        match code {
            Some(code) => {
                let e = &openai.unwrap_or_else(|| panic!("{exception}"))["error"];
                assert_eq!(e["code"], code, "{exception}");
                assert_eq!(e["message"], message, "{exception}");
            }
            // 401/403 bodies are never relayed.
            None => assert!(openai.is_none(), "{exception}"),
        }
    }
    // The exception named in the body's `__type` when the header is missing.
    let (_, failure, _) = classify(
        400,
        None,
        r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"Input is too long for requested model."}"#,
    );
    assert_eq!(failure, FailureKind::ContextLengthExceeded);
    // A body that is not Bedrock's is not relayed; the status decides.
    let (_, failure, openai) = classify(502, None, "<html>bad gateway</html>");
    assert_eq!(failure, FailureKind::UpstreamError);
    assert!(openai.is_none());
}

#[test]
fn the_embedded_default_adds_bedrock_from_aws_variables() {
    use std::collections::HashMap;
    let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let cfg = crate::config::embedded_default(&env(&[]));
    assert!(!cfg.providers.contains_key("bedrock"));
    assert!(cfg.providers.contains_key("mock-bedrock"));
    assert!(cfg.models.contains_key("demo-bedrock"));

    let cfg = crate::config::embedded_default(&env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "token"),
        ("AWS_DEFAULT_REGION", "ap-south-1"),
    ]));
    let p = &cfg.providers["bedrock"];
    assert_eq!(
        p.endpoint,
        Endpoint::Url("https://bedrock-runtime.ap-south-1.amazonaws.com".into())
    );
    let ProviderKind::Bedrock {
        region,
        credentials,
    } = &p.kind
    else {
        panic!("{:?}", p.kind)
    };
    assert_eq!(region, "ap-south-1");
    assert_eq!(
        credentials.session_token.as_ref().unwrap().expose(),
        "token"
    );
    assert!(!format!("{p:?}").contains("secret\""), "{p:?}");

    // Without a region, no provider.
    let cfg = crate::config::embedded_default(&env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
    ]));
    assert!(!cfg.providers.contains_key("bedrock"));
}

#[test]
fn config_files_take_bedrock_providers() {
    use std::collections::HashMap;
    let env: HashMap<String, String> = [("AK", "AKIDEXAMPLE"), ("SK", "shh")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let yaml = "providers:\n  aws:\n    type: bedrock\n    region: us-west-2\n    aws_access_key_id: ${AK}\n    aws_secret_access_key: ${SK}\nmodels:\n  m:\n    deployments:\n      - provider: aws\n        model: x\n";
    let cfg = crate::config::from_yaml(yaml, &env).unwrap();
    assert_eq!(
        cfg.providers["aws"].endpoint,
        Endpoint::Url("https://bedrock-runtime.us-west-2.amazonaws.com".into())
    );
    for (bad, key) in [
        (
            yaml.replace("    region: us-west-2\n", ""),
            "providers.aws.region",
        ),
        (yaml.replace("us-west-2", "US West"), "providers.aws.region"),
        (
            yaml.replace("    aws_access_key_id: ${AK}\n", ""),
            "providers.aws.aws_access_key_id",
        ),
        (
            yaml.replace(
                "    region: us-west-2\n",
                "    region: us-west-2\n    api_key: x\n",
            ),
            "providers.aws.api_key",
        ),
        (
            yaml.replace("type: bedrock", "type: openai"),
            "providers.aws.region",
        ),
    ] {
        let err = crate::config::from_yaml(&bad, &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{key}: {err}");
        assert!(!err.contains("shh"), "{err}");
    }
}
