//! Streaming: chunk-by-chunk relay, usage, error events, timeouts, cancellation (points 2, 7).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::Value;
use tokio::sync::{mpsc, Notify};

use crate::harness::*;

const CHUNK: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"up-model","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;

async fn stream_request(gw: &Gateway, extra: &str) -> hyper::Response<hyper::body::Incoming> {
    let extra = if extra.is_empty() {
        r#""stream":true"#.to_owned()
    } else {
        format!(r#""stream":true,{extra}"#)
    };
    open(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        chat_body("demo", &extra),
    )
    .await
}

#[tokio::test]
async fn stream_with_usage_is_relayed_with_the_alias_as_model() {
    let mock = keyed_mock().await;
    let gw = Gateway::for_upstream(&mock).await;
    let resp = stream_request(&gw, r#""stream_options":{"include_usage":true}"#).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(resp.headers().contains_key("x-request-id"));
    assert_eq!(resp.headers()["x-switchyard-provider"], "mock");
    let mut body = resp.into_body();
    let (frames, err) = frames(&mut body).await;
    assert!(err.is_none());
    let all = concat(&frames);
    let text = String::from_utf8(all.clone()).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    for event in text.split_terminator("\n\n") {
        assert!(event.starts_with("data: "), "bad framing: {event:?}");
    }
    let data = sse_data(&all);
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks.len() >= 3);
    assert!(chunks.iter().all(|c| c["model"] == "demo"));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"].as_array().unwrap().len(), 0);
    assert!(last["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(content.trim().len() > 5);
}

#[tokio::test]
async fn events_are_forwarded_before_the_stream_ends() {
    // The upstream sends one event, then waits until the test has received it through the
    // gateway. A gateway that buffered the stream would deadlock here (and time out).
    let release = Arc::new(Notify::new());
    let r2 = Arc::clone(&release);
    let up = scripted(move |_req| {
        let release = Arc::clone(&r2);
        async move {
            let (tx, resp) = sse_response();
            tokio::spawn(async move {
                tx.send(Ok(Bytes::from(format!("data: {CHUNK}\n\n"))))
                    .await
                    .unwrap();
                release.notified().await;
                tx.send(Ok(Bytes::from("data: [DONE]\n\n"))).await.unwrap();
            });
            resp
        }
    })
    .await;
    let gw = Gateway::for_upstream(&up).await;
    let mut body = stream_request(&gw, "").await.into_body();
    use http_body_util::BodyExt;
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("first event was buffered")
        .unwrap()
        .unwrap();
    let first = first.into_data().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&first),
        format!("data: {}\n\n", CHUNK.replace("up-model", "demo"))
    );
    release.notify_one();
    let (rest, _) = frames(&mut body).await;
    assert_eq!(concat(&rest), b"data: [DONE]\n\n");
}

#[tokio::test]
async fn comments_and_odd_framing_pass_through() {
    let up = scripted(|_req| async {
        let (tx, resp) = sse_response();
        tokio::spawn(async move {
            // A comment, an event split across writes, CRLF separators and no space after `data:`.
            for piece in [
                ": keep-alive\n\n",
                "data:",
                &CHUNK[..20],
                &CHUNK[20..],
                "\r\n\r\n",
                "data: [DONE]\n\n",
            ] {
                tx.send(Ok(Bytes::from(piece.to_owned()))).await.unwrap();
            }
        });
        resp
    })
    .await;
    let gw = Gateway::for_upstream(&up).await;
    let mut body = stream_request(&gw, "").await.into_body();
    let (frames, _) = frames(&mut body).await;
    let text = String::from_utf8(concat(&frames)).unwrap();
    assert_eq!(
        text,
        format!(
            ": keep-alive\n\ndata: {}\n\ndata: [DONE]\n\n",
            CHUNK.replace("up-model", "demo")
        )
    );
}

fn last_error(all: &[u8]) -> Value {
    let data = sse_data(all);
    let last = data.last().expect("no events");
    let v: Value =
        serde_json::from_str(last).unwrap_or_else(|_| panic!("last event not JSON: {last}"));
    assert!(v["error"]["message"].is_string(), "{v}");
    v["error"].clone()
}

#[tokio::test]
async fn upstream_disconnect_mid_stream_ends_with_an_error_event() {
    let mock = keyed_mock().await;
    let gw = Gateway::for_upstream(&mock).await;
    let resp = stream_request(&gw, r#""mock":{"disconnect_after_chunks":2}"#).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let (frames, err) = frames(&mut body).await;
    assert!(
        err.is_none(),
        "the client connection must end cleanly, got {err:?}"
    );
    let all = concat(&frames);
    assert!(!String::from_utf8_lossy(&all).contains("[DONE]"));
    assert_eq!(last_error(&all)["type"], "upstream_error");
}

#[tokio::test]
async fn upstream_ending_without_done_is_reported() {
    let up = scripted(|_req| async {
        let (tx, resp) = sse_response();
        tokio::spawn(async move {
            tx.send(Ok(Bytes::from(format!("data: {CHUNK}\n\n"))))
                .await
                .unwrap();
        });
        resp
    })
    .await;
    let gw = Gateway::for_upstream(&up).await;
    let (frames, err) = frames(&mut stream_request(&gw, "").await.into_body()).await;
    assert!(err.is_none());
    let e = last_error(&concat(&frames));
    assert!(e["message"].as_str().unwrap().contains("[DONE]"), "{e}");
}

#[tokio::test]
async fn malformed_stream_event_ends_with_an_error_event() {
    let up = scripted(|_req| async {
        let (tx, resp) = sse_response();
        tokio::spawn(async move {
            tx.send(Ok(Bytes::from(format!(
                "data: {CHUNK}\n\ndata: {{not json\n\n"
            ))))
            .await
            .unwrap();
        });
        resp
    })
    .await;
    let gw = Gateway::for_upstream(&up).await;
    let (frames, _) = frames(&mut stream_request(&gw, "").await.into_body()).await;
    let e = last_error(&concat(&frames));
    assert_eq!(e["code"], "upstream_malformed_response");
}

#[tokio::test]
async fn stalled_stream_hits_the_idle_timeout() {
    let mock = keyed_mock().await;
    let mut cfg = config_for(&mock);
    cfg.push_str("server:\n  timeouts:\n    stream_idle: 300ms\n");
    let gw = Gateway::start(&cfg).await;
    let resp = stream_request(&gw, r#""mock":{"stall_after_chunks":1}"#).await;
    let (frames, err) = frames(&mut resp.into_body()).await;
    assert!(err.is_none());
    let e = last_error(&concat(&frames));
    assert_eq!(e["code"], "upstream_timeout");
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_call() {
    let (closed_tx, mut closed_rx) = mpsc::channel::<()>(1);
    let up = scripted(move |_req| {
        let closed_tx = closed_tx.clone();
        async move {
            let (tx, resp) = sse_response();
            tokio::spawn(async move {
                loop {
                    if tx
                        .send(Ok(Bytes::from(format!("data: {CHUNK}\n\n"))))
                        .await
                        .is_err()
                    {
                        // The gateway dropped the upstream body: generation was cancelled.
                        let _ = closed_tx.send(()).await;
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
            resp
        }
    })
    .await;
    let gw = Gateway::for_upstream(&up).await;
    let resp = stream_request(&gw, "").await;
    let mut body = resp.into_body();
    use http_body_util::BodyExt;
    body.frame().await.unwrap().unwrap();
    drop(body);
    tokio::time::timeout(Duration::from_secs(10), closed_rx.recv())
        .await
        .expect("upstream stream was not cancelled");
}

#[tokio::test]
async fn stream_errors_before_the_first_byte_are_plain_json_errors() {
    let mock = keyed_mock().await;
    let gw = Gateway::for_upstream(&mock).await;
    let r = send(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        chat_body(
            "demo",
            r#""stream":true,"mock":{"status":429,"retry_after":7}"#,
        ),
    )
    .await;
    assert_eq!(r.status, 503);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.error()["code"], "rate_limit_exceeded");
}
