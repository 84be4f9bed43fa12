//! Resilience (issue 4, first part): retries and failover across an alias's deployments,
//! retry budgets, circuit breakers, `Retry-After`, and the headers that say how a request was
//! served.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Method, Response};

use crate::harness::*;

const OK_BODY: &str = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;

fn ok() -> Response<Body> {
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(OK_BODY))
        .unwrap()
}

fn failure(status: u16, retry_after: Option<&str>) -> Response<Body> {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(ra) = retry_after {
        b = b.header("retry-after", ra);
    }
    b.body(Body::from(
        r#"{"error":{"message":"try later","type":"server_error","param":null,"code":null}}"#,
    ))
    .unwrap()
}

/// An upstream answering by `f(call_number)`; returns its URL and call counter.
async fn upstream(f: fn(usize) -> Response<Body>) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let url = scripted(move |_req| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move { f(n) }
    })
    .await;
    (url, calls)
}

fn two_deployment_config(a: &str, b: &str, extra: &str) -> String {
    format!(
        r#"
providers:
  a:
    type: openai
    base_url: "{a}/v1"
  b:
    type: openai
    base_url: "{b}/v1"
models:
  pair:
    deployments:
      - provider: a
        model: m-a
      - provider: b
        model: m-b
  solo:
    deployments:
      - provider: a
        model: m-a
{extra}"#
    )
}

fn chat(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

#[tokio::test]
async fn half_failing_deployment_is_invisible_to_clients() {
    let (flaky, flaky_calls) =
        upstream(|n| if n % 2 == 0 { failure(503, None) } else { ok() }).await;
    let (good, good_calls) = upstream(|_| ok()).await;
    // A breaker that never opens, so the test measures retries and failover alone.
    let cfg = two_deployment_config(
        &flaky,
        &good,
        "resilience:\n  backoff_base: 1ms\n  backoff_max: 5ms\n  breaker:\n    consecutive_failures: 1000\n    failure_rate: 1.0\n    min_requests: 1000000\n",
    );
    let gw = Arc::new(Gateway::start(&cfg).await);
    let url = format!("{}/v1/chat/completions", gw.url);
    const N: usize = 2_000;
    let ok_count = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (url, ok_count) = (url.clone(), Arc::clone(&ok_count));
        tasks.push(tokio::spawn(async move {
            for _ in (w..N).step_by(8) {
                // Half the requests start on the flaky deployment.
                let r = post(&url, &chat("pair")).await;
                if r.status == 200 {
                    ok_count.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ok = ok_count.load(Ordering::SeqCst);
    assert!(ok * 1000 >= N * 999, "only {ok} of {N} succeeded");
    let (f, g) = (
        flaky_calls.load(Ordering::SeqCst),
        good_calls.load(Ordering::SeqCst),
    );
    assert!(
        f > 0 && g > 0,
        "both deployments served: flaky {f}, good {g}"
    );
    eprintln!("{ok}/{N} succeeded; upstream calls: flaky {f}, good {g}");
}

#[tokio::test]
async fn a_dead_deployment_gets_bounded_retries_then_its_breaker_opens() {
    let (dead, calls) = upstream(|_| failure(503, None)).await;
    let (unused, _) = upstream(|_| ok()).await;
    let cfg = two_deployment_config(
        &dead,
        &unused,
        "resilience:\n  max_attempts: 3\n  backoff_base: 1ms\n  backoff_max: 2ms\n  retry_budget:\n    ratio: 0.2\n    min_per_second: 0.5\n    window: 10s\n  breaker:\n    consecutive_failures: 1000\n    failure_rate: 0.5\n    min_requests: 40\n    window: 60s\n    open_for: 60s\n",
    );
    let gw = Gateway::start(&cfg).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    const N: usize = 100;
    let mut statuses = Vec::new();
    for _ in 0..N {
        let r = post(&url, &chat("solo")).await;
        statuses.push((r.status.as_u16(), r.error()["code"].clone()));
    }
    let upstream_calls = calls.load(Ordering::SeqCst);
    // Retries are bounded by the budget: 20% of requests plus 0.5/s over the 10 s window.
    let cap = N + N / 5 + 5;
    assert!(
        upstream_calls <= cap,
        "{upstream_calls} upstream calls for {N} requests (cap {cap})"
    );
    // The breaker opened after min_requests failures; later requests never reached upstream.
    assert!(
        upstream_calls < N,
        "{upstream_calls}: the breaker never opened"
    );
    assert!(statuses.iter().all(|(s, _)| *s == 503), "{statuses:?}");
    assert_eq!(statuses.last().unwrap().1, "upstream_unavailable");
    eprintln!("{N} requests, {upstream_calls} upstream calls");

    // The health endpoint shows it.
    let h = get(&format!("{}/health/deployments", gw.url), &[]).await;
    assert_eq!(h.status, 200);
    let deployments = h.json()["deployments"].clone();
    let a = deployments
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["provider"] == "a")
        .unwrap()
        .clone();
    assert_eq!(a["breaker"], "open", "{deployments}");
    assert_eq!(a["times_opened"], 1);
}

#[tokio::test]
async fn failover_is_reported_in_headers_and_stops_at_client_errors() {
    let (down, down_calls) = upstream(|_| failure(500, None)).await;
    let (good, _) = upstream(|_| ok()).await;
    let cfg = two_deployment_config(&down, &good, "resilience:\n  backoff_base: 1ms\n");
    let gw = Gateway::start(&cfg).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    // `pair` draws `a` first half the time; run until a request shows the failover.
    let mut saw_failover = false;
    for _ in 0..40 {
        let r = post(&url, &chat("pair")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-switchyard-provider"), Some("b"));
        if r.header("x-switchyard-attempts") == Some("2") {
            assert_eq!(
                r.header("x-switchyard-abandoned"),
                Some("a/m-a=upstream_error")
            );
            saw_failover = true;
            break;
        }
        assert_eq!(r.header("x-switchyard-attempts"), Some("1"));
        assert_eq!(r.header("x-switchyard-abandoned"), None);
    }
    assert!(saw_failover);

    // A request the provider calls invalid is not retried anywhere.
    let (bad, bad_calls) = upstream(|_| {
        Response::builder()
            .status(400)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"error":{"message":"bad temperature","type":"invalid_request_error","param":"temperature","code":null}}"#))
            .unwrap()
    })
    .await;
    let gw = Gateway::start(&two_deployment_config(&bad, &good, "")).await;
    let before = down_calls.load(Ordering::SeqCst);
    let r = post(&format!("{}/v1/chat/completions", gw.url), &chat("solo")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("x-switchyard-attempts"), Some("1"));
    assert_eq!(bad_calls.load(Ordering::SeqCst), 1);
    assert_eq!(down_calls.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn short_retry_after_is_waited_for_and_long_one_is_not() {
    // First call: 429 with Retry-After 0.3 s, then success.
    let (limited, calls) = upstream(|n| {
        if n == 0 {
            failure(429, Some("0.3"))
        } else {
            ok()
        }
    })
    .await;
    let (other, _) = upstream(|_| ok()).await;
    let gw = Gateway::start(&two_deployment_config(&limited, &other, "")).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let started = tokio::time::Instant::now();
    let r = post(&url, &chat("solo")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "Retry-After honoured"
    );
    assert_eq!(r.header("x-switchyard-attempts"), Some("2"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // A Retry-After beyond `max_retry_after` (2 s by default) is not waited for: with no other
    // deployment the client gets the 503 and the provider's Retry-After at once.
    let (slow, slow_calls) = upstream(|_| failure(429, Some("30"))).await;
    let gw = Gateway::start(&two_deployment_config(&slow, &other, "")).await;
    let started = tokio::time::Instant::now();
    let r = post(&format!("{}/v1/chat/completions", gw.url), &chat("solo")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("30"));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(slow_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bad_resilience_settings_are_config_errors() {
    let yaml = "resilience:\n  max_attempts: 0\n  breaker:\n    failure_rate: 1.5\n";
    let err = switchyard_core::config::from_yaml(yaml, &std::collections::HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("resilience.max_attempts") && err.contains("line 2"),
        "{err}"
    );
    assert!(err.contains("resilience.breaker.failure_rate"), "{err}");
}

fn error_response(status: u16, code: &str, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(format!(
            r#"{{"error":{{"message":"{message}","type":"invalid_request_error","param":null,"code":"{code}"}}}}"#
        )))
        .unwrap()
}

#[tokio::test]
async fn fallback_chains_follow_their_conditions() {
    let (down, _) = upstream(|_| failure(503, None)).await;
    let (short, short_calls) = upstream(|_| {
        error_response(
            400,
            "context_length_exceeded",
            "maximum context length is 8192 tokens",
        )
    })
    .await;
    let (filtered, _) =
        upstream(|_| error_response(400, "content_policy_violation", "refused by policy")).await;
    let (good, good_calls) = upstream(|_| ok()).await;
    let cfg = format!(
        r#"
providers:
  down: {{type: openai, base_url: "{down}/v1"}}
  short: {{type: openai, base_url: "{short}/v1"}}
  filtered: {{type: openai, base_url: "{filtered}/v1"}}
  good: {{type: openai, base_url: "{good}/v1"}}
models:
  primary:
    deployments: [{{provider: down, model: m}}]
    fallbacks:
      - alias: backup
  small:
    deployments: [{{provider: short, model: m}}]
    fallbacks:
      - alias: big
        on: [context_length_exceeded]
  strict:
    deployments: [{{provider: filtered, model: m}}]
    fallbacks:
      - alias: backup
        on: [rate_limited]
      - alias: lenient
        on: [content_filtered]
  nofallback:
    deployments: [{{provider: short, model: m}}]
    fallbacks:
      - alias: big
  backup:
    deployments: [{{provider: good, model: m-backup}}]
  big:
    deployments: [{{provider: good, model: m-big}}]
  lenient:
    deployments: [{{provider: good, model: m-lenient}}]
resilience:
  backoff_base: 1ms
"#
    );
    let gw = Gateway::start(&cfg).await;
    let url = format!("{}/v1/chat/completions", gw.url);

    // Any retryable failure (the default condition) moves on to the next alias.
    let r = post(&url, &chat("primary")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchyard-model"), Some("m-backup"));
    assert_eq!(r.header("x-switchyard-route"), Some("fallback"));
    assert_eq!(
        r.json()["model"],
        "primary",
        "the client's model name stays"
    );
    let abandoned = r.header("x-switchyard-abandoned").unwrap().to_owned();
    assert!(
        abandoned.starts_with("down/m=overloaded")
            && abandoned.ends_with("fallback:backup=overloaded"),
        "{abandoned}"
    );

    // A context-length failure goes to the longer-context alias.
    let r = post(&url, &chat("small")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchyard-model"), Some("m-big"));
    assert_eq!(
        short_calls.load(Ordering::SeqCst),
        1,
        "not retried: no retry can shrink it"
    );

    // Content filtered skips the rate-limit fallback and takes the content one.
    let r = post(&url, &chat("strict")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchyard-model"), Some("m-lenient"));

    // The default condition (retryable kinds) does not cover a context-length error.
    let before = good_calls.load(Ordering::SeqCst);
    let r = post(&url, &chat("nofallback")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error()["code"], "context_length_exceeded");
    assert_eq!(good_calls.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn fallback_config_errors_name_the_key() {
    let yaml = "providers:\n  p: {type: openai, base_url: \"http://127.0.0.1:9/v1\"}\nmodels:\n  a:\n    deployments: [{provider: p, model: m}]\n    fallbacks:\n      - alias: nope\n      - alias: a\n      - alias: a2\n        on: [bogus]\n  a2:\n    deployments: [{provider: p, model: m}]\n";
    let err = switchyard_core::config::from_yaml(yaml, &std::collections::HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("models.a.fallbacks[0].alias") && err.contains("unknown alias `nope`"),
        "{err}"
    );
    assert!(
        err.contains("models.a.fallbacks[1].alias") && err.contains("itself"),
        "{err}"
    );
    assert!(
        err.contains("models.a.fallbacks[2].on") && err.contains("bogus"),
        "{err}"
    );
}

#[tokio::test]
async fn alias_and_deployment_timeouts_apply_and_a_timeout_fails_over() {
    let slow = scripted(|_req| async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        ok()
    })
    .await;
    let (good, _) = upstream(|_| ok()).await;
    let cfg = format!(
        r#"
providers:
  slow: {{type: openai, base_url: "{slow}/v1"}}
  good: {{type: openai, base_url: "{good}/v1"}}
models:
  patient:
    deployments: [{{provider: slow, model: m}}]
  hasty:
    timeouts: {{first_byte: 100ms}}
    deployments: [{{provider: slow, model: m}}]
  override:
    timeouts: {{first_byte: 100ms}}
    deployments:
      - provider: slow
        model: m
        timeouts: {{first_byte: 2s}}
  rescued:
    timeouts: {{first_byte: 100ms}}
    deployments: [{{provider: slow, model: m}}]
    fallbacks: [{{alias: backup}}]
  backup:
    deployments: [{{provider: good, model: m-backup}}]
resilience:
  max_attempts: 1
"#
    );
    let gw = Gateway::start(&cfg).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let timed = |model: &'static str| {
        let url = url.clone();
        async move {
            let started = tokio::time::Instant::now();
            let r = post(&url, &chat(model)).await;
            (r, started.elapsed())
        }
    };
    let (r, took) = timed("patient").await;
    assert_eq!(r.status, 200, "server default timeouts are long");
    assert!(took >= Duration::from_millis(600));
    let (r, took) = timed("hasty").await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.error()["code"], "upstream_timeout");
    assert!(took < Duration::from_millis(500), "{took:?}");
    let (r, _) = timed("override").await;
    assert_eq!(
        r.status, 200,
        "the deployment's own timeout wins over the alias's"
    );
    let (r, took) = timed("rescued").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchyard-model"), Some("m-backup"));
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert!(r
        .header("x-switchyard-abandoned")
        .unwrap()
        .contains("slow/m=timeout"));
}

/// Counts handler futures dropped before they finished: the upstream seeing the gateway give
/// up on a request (its connection closed).
struct DropGuard(Arc<AtomicUsize>, bool);

impl DropGuard {
    fn finished(&mut self) {
        self.1 = true;
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn hedging_takes_the_first_answer_and_cancels_the_slow_attempt() {
    let cancelled = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&cancelled);
    let slow = scripted(move |_req| {
        let mut guard = DropGuard(Arc::clone(&seen), false);
        async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            guard.finished();
            ok()
        }
    })
    .await;
    let (fast, fast_calls) = upstream(|_| ok()).await;
    let cfg = format!(
        r#"
providers:
  slow: {{type: openai, base_url: "{slow}/v1"}}
  fast: {{type: openai, base_url: "{fast}/v1"}}
models:
  hedged:
    hedge: {{after: 200ms}}
    deployments:
      - {{provider: slow, model: m-slow, weight: 1000000}}
      - {{provider: fast, model: m-fast, weight: 1}}
"#
    );
    let gw = Gateway::start(&cfg).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let started = tokio::time::Instant::now();
        let r = post(&url, &chat("hedged")).await;
        latencies.push(started.elapsed());
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-switchyard-model"), Some("m-fast"));
        assert_eq!(r.header("x-switchyard-attempts"), Some("2"));
        assert_eq!(
            r.header("x-switchyard-abandoned"),
            Some("slow/m-slow=hedge_lost")
        );
    }
    latencies.sort();
    let p99 = latencies[latencies.len() - 1];
    assert!(p99 < Duration::from_millis(400), "p99 {p99:?}");
    assert!(
        latencies[0] >= Duration::from_millis(200),
        "the hedge waited its delay"
    );
    assert_eq!(fast_calls.load(Ordering::SeqCst), 20);
    // The slow attempts were abandoned: their connections closed, so the upstream's handlers
    // were dropped long before their 2 s.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(cancelled.load(Ordering::SeqCst), 20);
}

#[tokio::test]
async fn provider_reset_headers_stand_in_for_retry_after() {
    // OpenAI-style: no Retry-After, but the exhausted limit says when it resets.
    let (limited, calls) = upstream(|n| {
        if n == 0 {
            Response::builder()
                .status(429)
                .header("content-type", "application/json")
                .header("x-ratelimit-remaining-requests", "0")
                .header("x-ratelimit-reset-requests", "300ms")
                .header("x-ratelimit-remaining-tokens", "5000")
                .header("x-ratelimit-reset-tokens", "6m0s")
                .body(Body::from(
                    r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
                ))
                .unwrap()
        } else {
            ok()
        }
    })
    .await;
    let (other, _) = upstream(|_| ok()).await;
    let gw = Gateway::start(&two_deployment_config(&limited, &other, "")).await;
    let started = tokio::time::Instant::now();
    let r = post(&format!("{}/v1/chat/completions", gw.url), &chat("solo")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // With the limit still exhausted for minutes, the client gets that as Retry-After.
    let (stuck, stuck_calls) = upstream(|_| {
        Response::builder()
            .status(429)
            .header("content-type", "application/json")
            .header("x-ratelimit-remaining-tokens", "0")
            .header("x-ratelimit-reset-tokens", "6m0s")
            .body(Body::from(
                r#"{"error":{"message":"Rate limit reached","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#,
            ))
            .unwrap()
    })
    .await;
    let gw = Gateway::start(&two_deployment_config(&stuck, &other, "")).await;
    let r = post(&format!("{}/v1/chat/completions", gw.url), &chat("solo")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("360"));
    assert_eq!(stuck_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn when_everything_fails_every_attempt_is_listed() {
    let (a, _) = upstream(|_| failure(500, None)).await;
    let (b, _) = upstream(|_| failure(503, None)).await;
    let gw = Gateway::start(&two_deployment_config(
        &a,
        &b,
        "resilience:\n  backoff_base: 1ms\n",
    ))
    .await;
    let r = post(&format!("{}/v1/chat/completions", gw.url), &chat("pair")).await;
    assert!(r.status == 502 || r.status == 503, "{}", r.status);
    let attempts = r.error()["attempts"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    let kinds: Vec<&str> = attempts
        .iter()
        .map(|a| a["error"].as_str().unwrap())
        .collect();
    assert!(
        kinds
            .iter()
            .all(|k| *k == "upstream_error" || *k == "overloaded"),
        "{kinds:?}"
    );
    assert!(attempts.iter().any(|a| a["deployment"] == "a/m-a"));
    assert!(attempts.iter().any(|a| a["deployment"] == "b/m-b"));
    assert_eq!(r.header("x-switchyard-attempts"), Some("3"));

    // Anthropic clients get the same list in their error object.
    let body = r#"{"model":"pair","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = send(
        Method::POST,
        &format!("{}/v1/messages", gw.url),
        &[("anthropic-version", "2023-06-01")],
        body.to_owned(),
    )
    .await;
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(
        v["error"]["attempts"].as_array().map(Vec::len),
        Some(3),
        "{v}"
    );
}

#[tokio::test]
async fn a_configured_degradation_answer_replaces_the_error() {
    let (down, _) = upstream(|_| failure(503, None)).await;
    let cfg = format!(
        r#"
providers:
  down: {{type: openai, base_url: "{down}/v1"}}
models:
  soft:
    deployments: [{{provider: down, model: m}}]
    on_failure:
      message: "The assistant is busy; please try again in a minute."
resilience:
  backoff_base: 1ms
"#
    );
    let gw = Gateway::start(&cfg).await;
    let msg = "The assistant is busy; please try again in a minute.";
    let url = format!("{}/v1/chat/completions", gw.url);
    let r = post(&url, &chat("soft")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchyard-degraded"), Some("overloaded"));
    let v = r.json();
    assert_eq!(v["choices"][0]["message"]["content"], msg);
    assert_eq!(v["model"], "soft");

    let stream = r#"{"model":"soft","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = post(&url, stream).await;
    assert_eq!(r.status, 200);
    let events = sse_data(&r.body);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    assert!(events[0].contains("busy"), "{events:?}");

    // Anthropic clients get a Messages-shaped answer, streamed or not.
    let messages = format!("{}/v1/messages", gw.url);
    let hdr = [("anthropic-version", "2023-06-01")];
    let body = r#"{"model":"soft","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = send(Method::POST, &messages, &hdr, body.to_owned()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], msg);
    let body = r#"{"model":"soft","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = send(Method::POST, &messages, &hdr, body.to_owned()).await;
    let text = r.text();
    assert!(
        text.contains("event: message_start") && text.contains("event: message_stop"),
        "{text}"
    );
    assert!(text.contains("busy"), "{text}");
}

/// The mock's scripted fault schedule (`x-mock-schedule`), configured as a provider header.
fn scheduled_config(mock: &str, schedule: &str) -> String {
    format!(
        r#"
providers:
  flaky:
    type: openai
    base_url: "{mock}/v1"
    api_key: ${{UPSTREAM_KEY}}
    headers:
      x-mock-schedule: "{schedule}"
  steady:
    type: openai
    base_url: "{mock}/v1"
    api_key: ${{UPSTREAM_KEY}}
models:
  pair:
    deployments:
      - {{provider: flaky, model: m-flaky}}
      - {{provider: steady, model: m-steady}}
  flaky:
    deployments: [{{provider: flaky, model: m-flaky}}]
resilience:
  backoff_base: 1ms
  max_attempts: 1
"#
    )
}

#[tokio::test]
async fn the_mocks_fault_schedule_drives_failover() {
    let mock = keyed_mock().await;
    let gw = Gateway::start(&scheduled_config(&mock, "503,ok")).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    // `flaky` alone, one attempt: the schedule alternates failure and success.
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(post(&url, &chat("flaky")).await.status.as_u16());
        }
        v
    };
    assert_eq!(statuses, [503, 200, 503, 200]);
    drop(gw);
    // With a second deployment and two attempts, every request succeeds.
    let gw = Gateway::start(
        &scheduled_config(&mock, "503,ok").replace("max_attempts: 1", "max_attempts: 2"),
    )
    .await;
    let url = format!("{}/v1/chat/completions", gw.url);
    for _ in 0..200 {
        let r = post(&url, &chat("pair")).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

#[tokio::test]
async fn a_stream_cut_after_five_chunks_ends_with_an_error_event() {
    let mock = keyed_mock().await;
    let gw = Gateway::start(&scheduled_config(&mock, "drop=5")).await;
    let body = r#"{"model":"flaky","stream":true,"messages":[{"role":"user","content":"hi"}],"mock":{"words":40}}"#;
    let r = post(&format!("{}/v1/chat/completions", gw.url), body).await;
    assert_eq!(r.status, 200);
    let events = sse_data(&r.body);
    assert_eq!(events.len(), 6, "five chunks, then the error: {events:?}");
    assert!(
        events[..5]
            .iter()
            .all(|e| e.contains("chat.completion.chunk")),
        "{events:?}"
    );
    let err: serde_json::Value = serde_json::from_str(&events[5]).unwrap();
    assert_eq!(err["error"]["type"], "upstream_error", "{err}");
    assert!(!events.iter().any(|e| e == "[DONE]"));
}

#[tokio::test]
async fn a_client_that_goes_away_closes_the_upstream_within_100ms() {
    let closed_at = Arc::new(parking_lot::Mutex::new(None::<tokio::time::Instant>));
    let seen = Arc::clone(&closed_at);
    let up = scripted(move |_req| {
        let seen = Arc::clone(&seen);
        async move {
            let (tx, resp) = sse_response();
            tokio::spawn(async move {
                let chunk = r#"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}"#;
                loop {
                    if tx.send(Ok(bytes::Bytes::from(format!("{chunk}\n\n")))).await.is_err() {
                        *seen.lock() = Some(tokio::time::Instant::now());
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
            resp
        }
    })
    .await;
    let gw = Gateway::for_upstream(&up).await;
    let resp = open(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        &[],
        r#"{"model":"demo","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    let mut body = resp.into_body();
    use http_body_util::BodyExt;
    body.frame().await.unwrap().unwrap();
    let dropped = tokio::time::Instant::now();
    drop(body);
    for _ in 0..100 {
        if closed_at.lock().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let closed = closed_at
        .lock()
        .expect("the upstream never saw the stream closed");
    let after = closed.saturating_duration_since(dropped);
    assert!(after < Duration::from_millis(100), "{after:?}");
}

#[tokio::test]
async fn hedging_after_the_observed_p95() {
    // Usually answers in 10 ms; from the 25th request on it stalls for 2 s.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let primary = scripted(move |_req| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let wait = if n < 25 { 10 } else { 2_000 };
            tokio::time::sleep(Duration::from_millis(wait)).await;
            ok()
        }
    })
    .await;
    // The backup always takes 60 ms: while the primary is fast it wins any race a hedge
    // starts (a p95 delay hedges about one request in twenty by design), so every answer
    // in the first phase comes from the primary whatever the machine's load.
    let backup_calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&backup_calls);
    let backup = scripted(move |_req| {
        seen.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(60)).await;
            ok()
        }
    })
    .await;
    let cfg = format!(
        r#"
providers:
  primary: {{type: openai, base_url: "{primary}/v1"}}
  backup: {{type: openai, base_url: "{backup}/v1"}}
models:
  hedged:
    hedge: {{after: p95, initial: 5s}}
    deployments:
      - {{provider: primary, model: m-primary, weight: 1000000}}
      - {{provider: backup, model: m-backup, weight: 1}}
"#
    );
    let gw = Gateway::start(&cfg).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    for _ in 0..25 {
        let r = post(&url, &chat("hedged")).await;
        assert_eq!(r.header("x-switchyard-model"), Some("m-primary"));
    }
    assert!(
        backup_calls.load(Ordering::SeqCst) <= 5,
        "hedges are the exception while the primary is fast"
    );
    let started = tokio::time::Instant::now();
    let r = post(&url, &chat("hedged")).await;
    let took = started.elapsed();
    assert_eq!(
        r.header("x-switchyard-model"),
        Some("m-backup"),
        "{}",
        r.text()
    );
    // The primary stalls 2 s and the initial delay is 5 s: an answer well before either
    // came from a hedge sent after the observed p95.
    assert!(
        took < Duration::from_millis(1_500),
        "hedged after the p95, not the 5 s initial: {took:?}"
    );

    let bad = "providers:\n  p: {type: openai, base_url: \"http://127.0.0.1:9/v1\"}\nmodels:\n  a:\n    hedge: {after: p50}\n    deployments: [{provider: p, model: m}, {provider: p, model: n}]\n";
    let err = switchyard_core::config::from_yaml(bad, &std::collections::HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("models.a.hedge.after") && err.contains("p95"),
        "{err}"
    );
}

#[tokio::test]
async fn active_health_checks_open_and_close_breakers_without_client_traffic() {
    use std::sync::atomic::AtomicBool;
    let up = Arc::new(AtomicBool::new(false));
    let probes = Arc::new(AtomicUsize::new(0));
    let (state, seen) = (Arc::clone(&up), Arc::clone(&probes));
    let url = scripted(move |req| {
        let healthy = state.load(Ordering::SeqCst);
        let seen = Arc::clone(&seen);
        async move {
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap();
            if String::from_utf8_lossy(&body).contains(r#""max_tokens":1"#) {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            if healthy {
                ok()
            } else {
                failure(503, None)
            }
        }
    })
    .await;
    let cfg = format!(
        r#"
providers:
  p: {{type: openai, base_url: "{url}/v1"}}
models:
  checked:
    deployments: [{{provider: p, model: m}}]
resilience:
  breaker: {{consecutive_failures: 2, open_for: 60s}}
  health_checks: {{interval: 40ms, timeout: 1s}}
"#
    );
    let gw = Gateway::start(&cfg).await;
    let state_of = || {
        let url = format!("{}/health/deployments", gw.url);
        async move {
            let v = get(&url, &[]).await.json();
            v["deployments"][0]["breaker"].as_str().map(str::to_owned)
        }
    };
    let mut opened = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        if state_of().await.as_deref() == Some("open") {
            opened = true;
            break;
        }
    }
    assert!(opened, "failed probes opened the breaker");
    let r = post(&format!("{}/v1/chat/completions", gw.url), &chat("checked")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.error()["code"], "upstream_unavailable");

    up.store(true, Ordering::SeqCst);
    let mut closed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        if state_of().await.as_deref() == Some("closed") {
            closed = true;
            break;
        }
    }
    assert!(closed, "a good probe closed it well before open_for (60 s)");
    let r = post(&format!("{}/v1/chat/completions", gw.url), &chat("checked")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(probes.load(Ordering::SeqCst) >= 3);
}

#[tokio::test]
async fn a_broken_stream_resumes_on_the_next_deployment_without_losing_or_repeating_text() {
    let mock = keyed_mock().await;
    let received = Arc::new(parking_lot::Mutex::new(None::<serde_json::Value>));
    let seen = Arc::clone(&received);
    let rest = scripted(move |req| {
        let seen = Arc::clone(&seen);
        async move {
            let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap();
            *seen.lock() = serde_json::from_slice(&body).ok();
            let (tx, resp) = sse_response();
            tokio::spawn(async move {
                let chunk = |delta: &str, finish: &str| {
                    format!(
                        "data: {{\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
                    )
                };
                for piece in [
                    chunk(r#"{"role":"assistant","content":""}"#, "null"),
                    chunk(r#"{"content":" and the rest."}"#, "null"),
                    chunk("{}", r#""stop""#),
                    "data: [DONE]\n\n".to_owned(),
                ] {
                    if tx.send(Ok(bytes::Bytes::from(piece))).await.is_err() {
                        return;
                    }
                }
            });
            resp
        }
    })
    .await;
    let cfg = format!(
        r#"
providers:
  breaking:
    type: openai
    base_url: "{mock}/v1"
    api_key: ${{UPSTREAM_KEY}}
    headers: {{x-mock-schedule: "drop=5"}}
  rest: {{type: openai, base_url: "{rest}/v1"}}
models:
  resumable:
    stream_resume: true
    deployments:
      - {{provider: breaking, model: m-first, weight: 1000000}}
      - {{provider: rest, model: m-rest, weight: 1}}
  plain:
    deployments: [{{provider: breaking, model: m-first}}]
"#
    );
    let gw = Gateway::start(&cfg).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let body = |model: &str| {
        format!(
            r#"{{"model":"{model}","stream":true,"messages":[{{"role":"user","content":"tell me"}}],"mock":{{"words":40}}}}"#
        )
    };
    let r = post(&url, &body("resumable")).await;
    assert_eq!(r.status, 200);
    let events = sse_data(&r.body);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.contains("\"error\"")),
        "{events:?}"
    );
    let text: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(text.ends_with(" and the rest."), "{text}");
    let first_part = text.trim_end_matches(" and the rest.");
    assert!(!first_part.is_empty());
    // The continuation was asked with exactly what the client had received as an assistant
    // prefix: nothing lost, nothing repeated.
    let sent = received
        .lock()
        .clone()
        .expect("the continuation reached the next deployment");
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages.last().unwrap()["role"], "assistant");
    assert_eq!(messages.last().unwrap()["content"], first_part);
    assert_eq!(sent["model"], "m-rest");

    // Without `stream_resume` the break ends the stream with an error event, as before.
    let r = post(&url, &body("plain")).await;
    let events = sse_data(&r.body);
    assert!(events.last().unwrap().contains("\"error\""), "{events:?}");
}

#[tokio::test]
async fn metrics_show_breakers_attempts_and_fallbacks() {
    let mock = keyed_mock().await;
    let cfg = scheduled_config(&mock, "503,ok").replace(
        "  flaky:\n    deployments: [{provider: flaky, model: m-flaky}]\n",
        "  flaky:\n    deployments: [{provider: flaky, model: m-flaky}]\n    fallbacks: [{alias: steady}]\n  steady:\n    deployments: [{provider: steady, model: m-steady}]\n",
    );
    let gw = Gateway::start(&cfg).await;
    let url = format!("{}/v1/chat/completions", gw.url);
    for _ in 0..4 {
        let r = post(&url, &chat("flaky")).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let m = get(&format!("{}/metrics", gw.url), &[]).await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = m.text();
    for line in [
        r#"switchyard_breaker_state{provider="flaky",model="m-flaky"} 0"#,
        r#"switchyard_upstream_attempts_total{provider="flaky",model="m-flaky",outcome="ok"} 2"#,
        r#"switchyard_upstream_attempts_total{provider="flaky",model="m-flaky",outcome="overloaded"} 2"#,
        r#"switchyard_upstream_attempts_total{provider="steady",model="m-steady",outcome="ok"} 2"#,
        "switchyard_fallbacks_total 2",
        "# TYPE switchyard_retries_total counter",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    // Models a client names directly never become labels.
    let _ = post(&url, &chat("steady/some-model-a-client-made-up")).await;
    let text = get(&format!("{}/metrics", gw.url), &[]).await.text();
    assert!(!text.contains("made-up"), "{text}");
}
