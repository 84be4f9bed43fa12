//! The wider API surface: legacy completions, models retrieve/delete, wildcard routes and
//! pass-through (byte-identical relay, streamed uploads, credentials, errors), plus the
//! official OpenAI SDK over all of it (`tests/sdk/openai_surface.py`).

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::harness::*;
use crate::sdk;

const CLIENT_KEY: &str = "sk-client-key-0123";

fn auth() -> (&'static str, String) {
    ("authorization", format!("Bearer {CLIENT_KEY}"))
}

/// A gateway in front of `base` (a scripted upstream) with the given `passthrough:` entries.
async fn passthrough_gateway(base: &str, entries: &str) -> Gateway {
    Gateway::start(&format!(
        "providers:\n  up:\n    type: openai\n    base_url: \"{base}/v1\"\n    api_key: ${{UPSTREAM_KEY}}\n    allow_model_delete: true\nmodels:\n  ft:\n    deployments:\n      - {{provider: up, model: \"ft:gpt-4o-mini:acme:x\"}}\nauth:\n  master_key: {CLIENT_KEY}\npassthrough:\n{entries}"
    ))
    .await
}

/// Exact bytes the scripted upstream sends: odd JSON spacing, SSE with comments and CRLF split
/// across frames, and binary with every byte value.
fn json_bytes() -> Bytes {
    Bytes::from_static(b"{\"id\" : \"f1\",\n  \"weird\": [1, 2.50, \"\\u00e9\"],\"z\":null }\n")
}
fn sse_frames() -> Vec<Bytes> {
    vec![
        Bytes::from_static(b": keep-alive\n\nevent: image_generation.partial_image\r\nda"),
        Bytes::from_static(b"ta: {\"type\":\"image_generation.partial_image\",\"n\":0}\r\n\r\n"),
        Bytes::from_static(b"id: 7\nevent: image_generation.completed\ndata: {\"type\":\"image_generation.completed\"}\n\n"),
    ]
}
fn binary_bytes() -> Vec<u8> {
    (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

async fn byte_upstream(req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let h = req.headers().clone();
    // What the gateway must have done to the request.
    let ok_auth = h.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {UPSTREAM_KEY}"));
    let clean = h.get("x-api-key").is_none() && h.get("api-key").is_none();
    if !ok_auth || !clean || h.get("openai-beta").is_none() {
        return Response::builder()
            .status(499)
            .body(Body::from(format!("bad request headers: {h:?}")))
            .unwrap();
    }
    match path.as_str() {
        "/v1/files/f1" => {
            assert_eq!(query.as_deref(), Some("a=1&b=%2F"));
            Response::builder()
                .header("content-type", "application/json")
                .header("x-request-id", "req_upstream_1")
                .body(Body::from(json_bytes()))
                .unwrap()
        }
        "/v1/images/generations" => {
            let (tx, resp) = sse_response();
            tokio::spawn(async move {
                for f in sse_frames() {
                    let _ = tx.send(Ok(f)).await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
            resp
        }
        "/v1/files/f1/content" => {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tokio::spawn(async move {
                let all = Bytes::from(binary_bytes());
                let mut at = 0;
                let mut size = 1000;
                while at < all.len() {
                    let end = (at + size).min(all.len());
                    let _ = tx.send(Ok(all.slice(at..end))).await;
                    at = end;
                    size = size * 3 % 200_000 + 17;
                }
            });
            Response::builder()
                .header("content-type", "application/octet-stream")
                .body(Body::new(ChanBody(rx)))
                .unwrap()
        }
        "/v1/files/secret" => Response::builder()
            .status(401)
            .header("content-type", "application/json")
            .body(Body::from(format!(
                r#"{{"error":{{"message":"Incorrect API key provided: {UPSTREAM_KEY}","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
            )))
            .unwrap(),
        other => Response::builder()
            .status(404)
            .body(Body::from(format!("unexpected path {other}")))
            .unwrap(),
    }
}

#[tokio::test]
async fn passed_through_bodies_are_byte_identical_for_json_sse_and_binary() {
    let base = scripted(byte_upstream).await;
    let gw = passthrough_gateway(
        &base,
        "  - {prefix: /v1/files, provider: up}\n  - {prefix: /v1/images, provider: up}\n",
    )
    .await;
    let (k, v) = auth();
    let h = [(k, v.as_str()), ("openai-beta", "assistants=v2")];

    let r = send(
        Method::GET,
        &format!("{}/v1/files/f1?a=1&b=%2F", gw.url),
        &h,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.body, json_bytes());
    assert_eq!(r.header("x-switchyard-provider"), Some("up"));
    assert_eq!(r.header("x-switchyard-route"), Some("passthrough"));
    assert_eq!(
        r.header("x-switchyard-upstream-request-id"),
        Some("req_upstream_1")
    );
    assert!(r
        .header("x-request-id")
        .is_some_and(|id| id != "req_upstream_1"));

    // Without the `/v1` prefix too.
    let mut resp = open(
        Method::POST,
        &format!("{}/images/generations", gw.url),
        &h,
        "{}",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let (frames, err) = frames(resp.body_mut()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(concat(&frames), concat(&sse_frames()));
    assert!(
        frames.len() >= 2,
        "the SSE answer arrived in {} frame(s)",
        frames.len()
    );

    let r = send(
        Method::GET,
        &format!("{}/v1/files/f1/content", gw.url),
        &h,
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(r.body[..] == binary_bytes()[..], "binary body differs");

    // The provider's 401 is never relayed: it may carry the key.
    let r = send(Method::GET, &format!("{}/v1/files/secret", gw.url), &h, "").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(!r.text().contains(UPSTREAM_KEY), "{}", r.text());
    r.error();

    // The gateway's key is checked before anything is forwarded.
    let r = send(Method::GET, &format!("{}/v1/files/f1", gw.url), &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// A 40 MiB upload reaches the upstream while the client is still sending it: the test sends
/// the first 4 MiB, waits until the upstream has seen bytes (a gateway that buffered the whole
/// body would never forward them, and the wait would fail), then sends the rest.
#[tokio::test]
async fn large_uploads_are_streamed_through_not_buffered() {
    let seen = Arc::new(AtomicU64::new(0));
    let seen_up = Arc::clone(&seen);
    let base = scripted(move |req: Request<Body>| {
        let seen = Arc::clone(&seen_up);
        async move {
            let mut body = req.into_body();
            let (mut total, mut sum) = (0u64, 0u64);
            while let Some(frame) = body.frame().await {
                if let Ok(d) = frame.unwrap().into_data() {
                    for b in d.iter() {
                        sum = sum.wrapping_mul(31).wrapping_add(u64::from(*b));
                    }
                    total += d.len() as u64;
                    seen.store(total, Ordering::SeqCst);
                }
            }
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(format!(r#"{{"bytes":{total},"sum":{sum}}}"#)))
                .unwrap()
        }
    })
    .await;
    let gw = passthrough_gateway(&base, "  - {prefix: /v1/uploads, provider: up}\n").await;

    const CHUNK: usize = 1024 * 1024;
    const CHUNKS: usize = 40;
    let chunk = |i: usize| Bytes::from(vec![(i * 7 + 1) as u8; CHUNK]);
    let mut expected = 0u64;
    for i in 0..CHUNKS {
        for b in chunk(i).iter() {
            expected = expected.wrapping_mul(31).wrapping_add(u64::from(*b));
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let req = Request::post(format!("{}/v1/uploads/u1/parts", gw.url))
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .header("content-type", "application/octet-stream")
        .header("content-length", (CHUNK * CHUNKS).to_string())
        .body(ChanBody(rx))
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<ChanBody>();
    let answer = tokio::spawn(client.request(req));
    for i in 0..4 {
        tx.send(Ok(chunk(i))).await.unwrap();
    }
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while seen.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the upstream saw nothing of the upload while the client was sending it: buffered"
    );
    assert!(seen.load(Ordering::SeqCst) <= (4 * CHUNK) as u64);
    for i in 4..CHUNKS {
        tx.send(Ok(chunk(i))).await.unwrap();
    }
    drop(tx);
    let resp = tokio::time::timeout(Duration::from_secs(60), answer)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["bytes"], (CHUNK * CHUNKS) as u64);
    assert_eq!(v["sum"], expected);
}

#[tokio::test]
async fn uploads_over_the_route_limit_get_413_declared_or_not() {
    let base = scripted(|req: Request<Body>| async move {
        let _ = req.into_body().collect().await;
        Response::new(Body::from("{}"))
    })
    .await;
    let gw = passthrough_gateway(
        &base,
        "  - {prefix: /v1/uploads, provider: up, max_body_size: 1MiB}\n",
    )
    .await;
    let (k, v) = auth();
    let big = vec![b'x'; 2 * 1024 * 1024];
    let r = send(
        Method::POST,
        &format!("{}/v1/uploads", gw.url),
        &[(k, v.as_str())],
        big.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    r.error();

    // Chunked, with no length announced: cut off while streaming.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let req = Request::post(format!("{}/v1/uploads", gw.url))
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .body(ChanBody(rx))
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<ChanBody>();
    let answer = tokio::spawn(client.request(req));
    for piece in big.chunks(256 * 1024) {
        if tx.send(Ok(Bytes::copy_from_slice(piece))).await.is_err() {
            break;
        }
    }
    drop(tx);
    let resp = tokio::time::timeout(Duration::from_secs(20), answer)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn unknown_paths_are_openai_shaped_404s() {
    let mock = keyed_mock().await;
    let gw = Gateway::for_upstream(&mock).await;
    let r = get(&format!("{}/v1/no_such_endpoint/x", gw.url), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let e = r.error();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("/v1/no_such_endpoint/x"),
        "{e}"
    );
    // A near miss of a forwarded prefix is not forwarded.
    let r = get(&format!("{}/v1/filesystem", gw.url), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.error();
}

#[tokio::test]
async fn model_delete_is_forwarded_only_where_allowed() {
    let base = scripted(|req: Request<Body>| async move {
        let auth = req.headers().get("authorization").cloned();
        Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(format!(
                r#"{{"method":"{}","path":"{}","auth":{:?}}}"#,
                req.method(),
                req.uri().path(),
                auth.and_then(|a| a.to_str().ok().map(str::to_owned))
                    .unwrap_or_default()
            )))
            .unwrap()
    })
    .await;
    let gw = passthrough_gateway(&base, "  []\n").await;
    let (k, v) = auth();
    let r = send(
        Method::DELETE,
        &format!("{}/v1/models/ft", gw.url),
        &[(k, v.as_str())],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let echo = r.json();
    assert_eq!(echo["method"], "DELETE");
    assert_eq!(echo["path"], "/v1/models/ft:gpt-4o-mini:acme:x");
    assert_eq!(echo["auth"], format!("Bearer {UPSTREAM_KEY}"));
    assert_eq!(r.header("x-switchyard-route"), Some("model-delete"));

    // Not allowed at the mock's provider (no `allow_model_delete`).
    let mock = keyed_mock().await;
    let gw = Gateway::for_upstream(&mock).await;
    let r = send(
        Method::DELETE,
        &format!("{}/v1/models/demo", gw.url),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let e = r.error();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("providers.mock.allow_model_delete"),
        "{e}"
    );
    let r = send(
        Method::DELETE,
        &format!("{}/v1/models/nope", gw.url),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

fn wildcard_config(mock: &str) -> String {
    format!(
        "{}wildcards:\n  - {{pattern: \"openai/*\", provider: mock}}\n  - {{pattern: \"wild-*\", provider: mock}}\n",
        config_for(mock)
    )
}

#[tokio::test]
async fn wildcard_routes_list_retrieve_and_serve() {
    let mock = keyed_mock().await;
    let gw = Gateway::start(&wildcard_config(&mock)).await;
    let list = get(&format!("{}/v1/models", gw.url), &[]).await.json();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["demo", "openai/*", "wild-*"]);
    assert_eq!(list["data"][1]["owned_by"], "mock");

    for path in ["openai/gpt-4o", "openai%2Fgpt-4o"] {
        let r = get(&format!("{}/v1/models/{path}", gw.url), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
        assert_eq!(r.json()["id"], "openai/gpt-4o");
        assert_eq!(r.json()["owned_by"], "mock");
    }
    assert_eq!(
        get(&format!("{}/v1/models/demo", gw.url), &[]).await.json()["owned_by"],
        "switchyard"
    );
    let r = get(&format!("{}/v1/models/other-model", gw.url), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.error();

    // `openai/*` forwards the capture; the alias keeps its own deployment.
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &chat_body("openai/gpt-4o", ""),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-switchyard-model"), Some("gpt-4o"));
    assert_eq!(r.header("x-switchyard-route"), Some("wildcard"));
    assert_eq!(r.json()["model"], "openai/gpt-4o");
    let r = post(
        &format!("{}/v1/chat/completions", gw.url),
        &chat_body("demo", ""),
    )
    .await;
    assert_eq!(r.header("x-switchyard-model"), Some("mock-gpt"));
}

#[tokio::test]
async fn legacy_completions_relay_json_and_sse_with_only_the_model_renamed() {
    let mock = keyed_mock().await;
    let gw = Gateway::for_upstream(&mock).await;
    let r = post(
        &format!("{}/v1/completions", gw.url),
        r#"{"model":"demo","prompt":"Say","max_tokens":3}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["model"], "demo");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(r.header("x-switchyard-model"), Some("mock-gpt"));

    let mut resp = open(
        Method::POST,
        &format!("{}/completions", gw.url),
        &[],
        r#"{"model":"demo","prompt":"Say","stream":true,"stream_options":{"include_usage":true}}"#,
    )
    .await;
    let (frames, err) = frames(resp.body_mut()).await;
    assert!(err.is_none());
    let data = sse_data(&concat(&frames));
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<serde_json::Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["model"] == "demo" && c["object"] == "text_completion"));
    assert!(
        chunks.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );

    let r = post(&format!("{}/v1/completions", gw.url), r#"{"model":"demo"}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error()["param"], "prompt");
}

#[tokio::test]
async fn legacy_completions_at_a_provider_without_them_are_a_400_naming_both() {
    let mock = keyed_mock().await;
    let gw = Gateway::start(&sdk::config_with_claude(&mock)).await;
    let r = send(
        Method::POST,
        &format!("{}/v1/completions", gw.url),
        &[("authorization", &format!("Bearer {}", sdk::KEY))],
        r#"{"model":"smart","prompt":"x"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let e = r.error();
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("/v1/completions") && msg.contains("claude/claude-sonnet-4-5"),
        "{msg}"
    );
    assert_eq!(e["code"], "unsupported_endpoint");
    assert!(
        r.header("x-switchyard-attempts").is_none(),
        "no upstream call was made"
    );
}

#[tokio::test]
async fn anthropic_endpoints_pass_through_for_anthropic_clients() {
    let mock = keyed_mock().await;
    let gw = Gateway::start(&sdk::config_with_claude(&mock)).await;
    let h = [("x-api-key", sdk::KEY), ("anthropic-version", "2023-06-01")];
    let r = send(
        Method::POST,
        &format!("{}/v1/messages/count_tokens", gw.url),
        &h,
        r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hello there"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(r.header("x-switchyard-provider"), Some("claude"));

    // `/v1/models` is Anthropic's for Anthropic clients, the gateway's for everyone else.
    let r = get(&format!("{}/v1/models", gw.url), &h).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["data"][0]["type"], "model");
    assert!(r.json().get("has_more").is_some());
    let ours = get(
        &format!("{}/v1/models", gw.url),
        &[("authorization", &format!("Bearer {}", sdk::KEY))],
    )
    .await
    .json();
    assert!(ours["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "smart"));
}

#[tokio::test]
async fn openai_python_sdk_over_the_wider_surface() {
    let probe = Command::new("python3")
        .args(["-c", "import openai"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return sdk::skip_or_fail(
            "python3 with the `openai` package is not installed (pip install openai)",
        );
    }
    let mock = keyed_mock().await;
    let cfg = format!(
        "{}wildcards:\n  - {{pattern: \"wild-*\", provider: mock}}\n",
        sdk::config_with_claude(&mock)
    );
    let gw = Gateway::start(&cfg).await;
    let mut cmd = Command::new("python3");
    cmd.arg(sdk::sdk_dir().join("openai_surface.py"))
        .arg(format!("{}/v1", gw.url))
        .arg(sdk::KEY);
    sdk::run(cmd).await;
}
