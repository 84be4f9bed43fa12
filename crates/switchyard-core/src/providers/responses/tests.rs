#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn passthrough() -> Passthrough {
    Passthrough {
        provider: Arc::from("oai"),
        client_model: Arc::from("demo"),
        usage: None,
    }
}

#[test]
fn passthrough_body_renames_only_the_model_and_reads_usage() {
    let body = br#"{"id":"resp_1","object":"response","model":"gpt-4.1-2025", "output":[{"type":"message","content":[{"type":"output_text","text":"model"}]}],"usage":{"input_tokens":5,"output_tokens":7,"total_tokens":12}}"#;
    let out = passthrough().body(body).unwrap();
    assert_eq!(
        std::str::from_utf8(&out.body).unwrap(),
        r#"{"id":"resp_1","object":"response","model":"demo", "output":[{"type":"message","content":[{"type":"output_text","text":"model"}]}],"usage":{"input_tokens":5,"output_tokens":7,"total_tokens":12}}"#
    );
    let usage = out.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (5, 7, 12)
    );
    assert!(passthrough().body(b"{broken").is_err());
}

#[test]
fn passthrough_events_keep_their_bytes_but_the_model() {
    let mut p = passthrough();
    let mut out = BytesMut::new();
    let created = b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-x\"}}";
    assert_eq!(p.event(created, &mut out).unwrap(), StreamStatus::Continue);
    let delta = b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"model\"}";
    assert_eq!(p.event(delta, &mut out).unwrap(), StreamStatus::Continue);
    let done = b"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"gpt-x\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}}";
    assert_eq!(p.event(done, &mut out).unwrap(), StreamStatus::Done);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"model\":\"demo\"}}\n\n\
         event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"model\"}\n\n\
         event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"demo\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}}\n\n"
    );
    assert_eq!(p.usage().unwrap().total_tokens, 3);
    let mut out = BytesMut::new();
    let failed = b"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{}}";
    assert_eq!(
        p.event(failed, &mut out).unwrap(),
        StreamStatus::UpstreamError
    );
    assert!(p.event(b"data: {nope", &mut BytesMut::new()).is_err());
}

/// A chat reply standing in for an adapter's: writes fixed chat chunks.
struct FakeChat(Vec<&'static str>);

impl Reply for FakeChat {
    fn body(&mut self, body: &[u8]) -> Result<ResponseBody, GatewayError> {
        Ok(ResponseBody {
            body: Bytes::copy_from_slice(body),
            usage: None,
        })
    }

    fn event(&mut self, _event: &[u8], out: &mut BytesMut) -> Result<StreamStatus, GatewayError> {
        let mut status = StreamStatus::Continue;
        for c in self.0.drain(..) {
            sse::write_data(out, c.as_bytes());
            if c == "[DONE]" {
                status = StreamStatus::Done;
            }
        }
        Ok(status)
    }

    fn usage(&self) -> Option<Usage> {
        None
    }
}

fn from_chat(chunks: Vec<&'static str>) -> FromChat {
    let meta = Meta {
        id: "resp_x".into(),
        created_at: 1,
        model: "smart".into(),
    };
    let shell =
        json!({"id": "resp_x", "object": "response", "status": "in_progress", "output": []});
    FromChat {
        inner: Box::new(FakeChat(chunks)),
        provider: Arc::from("claude"),
        stream: ChatToResponsesStream::new(meta.clone(), shell.clone()),
        meta,
        shell,
    }
}

#[test]
fn chat_events_become_named_responses_events() {
    let mut r = from_chat(vec![
        r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}}"#,
        "[DONE]",
    ]);
    let mut out = BytesMut::new();
    assert_eq!(r.event(b"data: x", &mut out).unwrap(), StreamStatus::Done);
    let text = std::str::from_utf8(&out).unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"response.created"));
    assert_eq!(names.last(), Some(&"response.completed"));
    assert!(names.contains(&"response.output_text.delta"));
    assert_eq!(r.usage().unwrap().total_tokens, 3);
}

#[test]
fn chat_body_becomes_a_response_object() {
    let mut r = from_chat(Vec::new());
    let out = r
        .body(br#"{"choices":[{"finish_reason":"stop","message":{"role":"assistant","content":"Hi"}}],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}}"#)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(v["id"], "resp_x");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output"][0]["content"][0]["text"], "Hi");
    assert_eq!(out.usage.unwrap().total_tokens, 3);
}
