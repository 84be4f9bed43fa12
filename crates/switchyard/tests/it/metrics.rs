//! `/metrics` per-request series checked against the requests a client actually made
//! (issue 7, point 5).

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

/// The value of one exact series line, or 0 when the series is absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Scrapes until `series` reaches `want` (stream requests are counted when their body ends,
/// a moment after the client read the last byte), then returns the text.
async fn scrape_until(url: &str, series: &str, want: f64) -> String {
    let mut text = String::new();
    for _ in 0..100 {
        text = get(&format!("{url}/metrics"), &[]).await.text();
        if value(&text, series) >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    text
}

#[tokio::test]
async fn request_series_match_what_the_client_saw() {
    let mock = keyed_mock().await;
    let gw = Gateway::for_upstream(&mock).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let (mut prompt, mut completion) = (0.0, 0.0);
    for i in 0..5 {
        let r = post(&url, &chat_body("demo", &format!(r#""user":"u{i}""#))).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let usage = &r.json()["usage"];
        prompt += usage["prompt_tokens"].as_f64().unwrap();
        completion += usage["completion_tokens"].as_f64().unwrap();
    }
    for _ in 0..3 {
        let r = post(
            &url,
            &chat_body(
                "demo",
                r#""stream":true,"stream_options":{"include_usage":true}"#,
            ),
        )
        .await;
        assert_eq!(r.status, 200);
        let data = sse_data(&r.body);
        let last: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
        prompt += last["usage"]["prompt_tokens"].as_f64().unwrap();
        completion += last["usage"]["completion_tokens"].as_f64().unwrap();
    }
    // Two client errors: an unknown model (never routed) and a malformed body.
    assert_eq!(
        post(&url, &chat_body("no-such-model", "")).await.status,
        404
    );
    assert_eq!(post(&url, "{not json").await.status, 400);
    // An upstream failure on the known alias.
    let r = post(&url, &chat_body("demo", r#""mock":{"status":500}"#)).await;
    assert!(r.status.is_server_error(), "{}", r.text());

    let labels = r#"alias="demo",provider="mock",model="mock-gpt""#;
    let completed = format!("switchyard_requests_total{{{labels},outcome=\"completed\"}}");
    let text = scrape_until(&gw.url, &completed, 8.0).await;
    assert_eq!(value(&text, &completed), 8.0, "{text}");
    assert_eq!(
        value(
            &text,
            &format!("switchyard_requests_total{{{labels},outcome=\"failed\"}}")
        ),
        1.0,
        "{text}"
    );
    // The unknown model is a client-typed name: it is counted, but never becomes a label.
    assert!(!text.contains("no-such-model"), "{text}");
    assert_eq!(
        value(
            &text,
            r#"switchyard_requests_total{alias="other",provider="none",model="none",outcome="failed"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"switchyard_request_errors_total{alias="other",kind="not_found"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"switchyard_request_errors_total{alias="none",kind="invalid_request"}"#
        ),
        1.0,
        "{text}"
    );
    // Every request (the failed ones too) went to the request log; none was dropped.
    assert_eq!(
        value(&text, "switchyard_request_log_submitted_total"),
        11.0,
        "{text}"
    );
    assert_eq!(value(&text, "switchyard_request_log_dropped_total"), 0.0);
    assert!(text.contains("# TYPE switchyard_request_log_queue_depth gauge"));
    let tokens = |t: &str| {
        value(
            &text,
            &format!("switchyard_tokens_total{{{labels},type=\"{t}\"}}"),
        )
    };
    assert_eq!(tokens("prompt"), prompt);
    assert_eq!(tokens("completion"), completion);
    // Every request on the alias is in the latency histogram; TTFT only where an answer began.
    assert_eq!(
        value(
            &text,
            &format!("switchyard_request_duration_seconds_count{{{labels}}}")
        ),
        9.0
    );
    assert_eq!(
        value(
            &text,
            &format!("switchyard_time_to_first_token_seconds_count{{{labels}}}")
        ),
        8.0
    );
    assert_eq!(
        value(
            &text,
            &format!("switchyard_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}}")
        ),
        9.0
    );
}
