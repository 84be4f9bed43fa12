//! SIGTERM drains in-flight requests, streams included, up to the deadline (point 8).

use std::time::Duration;

use http::Method;
use http_body_util::BodyExt;

use crate::cli::{bin, free_port, write_temp, Proc};
use crate::harness::*;

async fn start(mock: &str, extra: &str) -> Proc {
    let port = free_port();
    let cfg = format!(
        "{}server:\n  listen: \"127.0.0.1:{port}\"\n{extra}",
        config_for(mock)
    );
    let path = write_temp("drain.yaml", &cfg);
    let mut cmd = bin();
    cmd.args(["serve", "--config"])
        .arg(path)
        .env("UPSTREAM_KEY", UPSTREAM_KEY);
    Proc::spawn(cmd, port).await
}

/// Opens a streaming chat request to the `demo` alias with the given extra body fields.
async fn open_stream(gw: &Proc, extra: &str) -> hyper::Response<hyper::body::Incoming> {
    let body = chat_body("demo", &format!(r#""stream":true,{extra}"#));
    open(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        body,
    )
    .await
}

#[tokio::test]
async fn sigterm_lets_a_running_stream_finish_then_exits() {
    let mock = keyed_mock().await;
    let mut gw = start(&mock, "").await;
    let resp = open_stream(&gw, r#""mock":{"words":12,"chunk_delay_ms":80}"#).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    gw.signal("TERM");
    // New connections are refused once draining has begun.
    let port: u16 = gw.url.rsplit(':').next().unwrap().parse().unwrap();
    let mut refused = false;
    for _ in 0..40 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(refused, "listener still accepting after SIGTERM");
    let (rest, err) = frames(&mut body).await;
    assert!(err.is_none());
    let mut all = first.to_vec();
    all.extend(concat(&rest));
    assert!(
        String::from_utf8_lossy(&all).ends_with("data: [DONE]\n\n"),
        "stream was cut: {}",
        String::from_utf8_lossy(&all)
    );
    let status = gw.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn the_drain_deadline_bounds_shutdown() {
    let mock = keyed_mock().await;
    let mut gw = start(&mock, "  shutdown_timeout: 300ms\n").await;
    let resp = open_stream(&gw, r#""mock":{"stall_after_chunks":1}"#).await;
    let mut body = resp.into_body();
    body.frame().await.unwrap().unwrap();
    gw.signal("TERM");
    let status = gw.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
}
