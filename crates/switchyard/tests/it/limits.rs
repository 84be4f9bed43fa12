//! Rate limits across replicas and the priority wait queue, through the running binary: two
//! gateway processes sharing one Redis (127.0.0.1:6379) enforce one limit; a Redis that is
//! down fails open (to each process's own limiter) or closed (503) as configured, never
//! hangs, never logs its password; waiting requests of a higher class pass queued lower ones,
//! on either backend.

use std::time::Duration;

use http::{Method, StatusCode};
use tokio::time::Instant;

use crate::cli::{bin, free_port, write_temp, Proc};
use crate::harness::*;

const KEY: &str = "sk-limits-test-key-0001";
const VIP: &str = "sk-limits-test-vip-0001";
const BULK: &str = "sk-limits-test-bulk-001";
const MASTER: &str = "sk-limits-test-master-01";

/// A unique key prefix in the shared Redis, so that runs and tests never meet.
fn prefix(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("switchyard-it:{tag}:{}:{nanos}", std::process::id())
}

/// A config with the embedded mock behind `demo`, three keys and `limits` as given.
fn config(limits: &str) -> String {
    format!(
        r#"
auth:
  master_key: {MASTER}
  virtual_keys:
    - name: k
      key: {KEY}
    - name: vip
      key: {VIP}
      team: t
    - name: bulk
      key: {BULK}
      team: t
providers:
  m:
    type: mock
models:
  demo:
    deployments:
      - provider: m
        model: mock-gpt
request_log:
  enabled: false
limits:
{limits}
"#
    )
}

async fn start(yaml: &str) -> Proc {
    let path = write_temp("switchyard.yaml", yaml);
    let port = free_port();
    let mut cmd = bin();
    cmd.args([
        "serve",
        "--config",
        path.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    Proc::spawn(cmd, port).await
}

async fn chat_as(url: &str, key: &str, extra: &[(&str, &str)]) -> Resp {
    let auth = format!("Bearer {key}");
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    send(
        Method::POST,
        &format!("{url}/v1/chat/completions"),
        &headers,
        chat_body("demo", ""),
    )
    .await
}

async fn metrics(url: &str) -> String {
    let auth = format!("Bearer {MASTER}");
    get(&format!("{url}/metrics"), &[("authorization", &auth)])
        .await
        .text()
}

/// The value of one series line in a `/metrics` text.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

/// Deletes the keys a test left in Redis (only under its prefix).
fn delete_prefix(prefix: &str) {
    let out = std::process::Command::new("redis-cli")
        .args(["--scan", "--pattern", &format!("{prefix}:*")])
        .output();
    if let Ok(out) = out {
        for key in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = std::process::Command::new("redis-cli")
                .args(["DEL", key])
                .output();
        }
    }
}

#[tokio::test]
async fn two_gateway_processes_share_one_limit_through_redis() {
    // 600 rpm: a burst of 10, then one every 100 ms, whichever process is asked. Both are
    // hammered for 6 s; together they must admit 10 + 60 requests, within 2%.
    let prefix = prefix("share");
    let yaml = config(&format!(
        "  default_key: {{rpm: 600}}\n  backend: redis\n  redis_url: redis://127.0.0.1:6379\n  \
         redis_prefix: \"{prefix}\"\n  redis_timeout: 2s\n  on_backend_error: deny\n"
    ));
    let (a, b) = tokio::join!(start(&yaml), start(&yaml));
    let urls = [a.url.clone(), b.url.clone()];
    let started = Instant::now();
    let stop = started + Duration::from_secs(6);
    let mut loops = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        for _ in 0..3 {
            let url = url.clone();
            loops.push(tokio::spawn(async move {
                let (mut ok, mut limited) = (0u32, 0u32);
                let mut first_ok: Option<Instant> = None;
                let mut last_end = Instant::now();
                while Instant::now() < stop {
                    let r = chat_as(&url, KEY, &[]).await;
                    last_end = Instant::now();
                    match r.status {
                        StatusCode::OK => {
                            ok += 1;
                            first_ok.get_or_insert(last_end);
                        }
                        StatusCode::TOO_MANY_REQUESTS => {
                            limited += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        s => panic!("gateway {i}: unexpected {s}: {}", r.text()),
                    }
                }
                (i, ok, limited, first_ok, last_end)
            }));
        }
    }
    let mut per_gateway = [0u32; 2];
    let mut limited = 0;
    let mut first_ok = stop;
    let mut last_end = started;
    for l in loops {
        let (i, ok, lim, first, last) = l.await.unwrap();
        per_gateway[i] += ok;
        limited += lim;
        first_ok = first_ok.min(first.unwrap_or(stop));
        last_end = last_end.max(last);
    }
    let admitted = per_gateway[0] + per_gateway[1];
    let intervals = |d: Duration| (d.as_micros() / 100_000) as u32;
    // Never more than Redis had: the burst plus one per interval between the first request
    // sent and the last answer, plus the slot in flight at the edge.
    let most = 10 + intervals(last_end - started) + 1;
    assert!(admitted <= most, "admitted {admitted} > {most}");
    // And all of it: from the first admission until the clients stopped, demand never let
    // a slot go unused (measured from the first admission, so a slow start-up of the
    // processes is not counted against the limiter).
    let ideal = 10.0 + (stop - first_ok).as_secs_f64() / 0.1;
    eprintln!("admitted {admitted} ({per_gateway:?}), at most {most}, ideal {ideal:.1}, {limited} refused");
    let error = (f64::from(admitted) - ideal) / ideal;
    assert!(
        error.abs() <= 0.02,
        "admitted {admitted}, expected {ideal:.1} ({:.1}% off; {per_gateway:?}, {limited} refused)",
        error * 100.0
    );
    assert!(
        ideal >= 65.0,
        "the first admission came {:?} late",
        first_ok - started
    );
    // Both processes served part of the one limit, and both refused the rest.
    assert!(per_gateway.iter().all(|n| *n >= 5), "{per_gateway:?}");
    assert!(
        limited > 100,
        "only {limited} refused: the load did not saturate the limit"
    );
    for g in [&a, &b] {
        let m = metrics(&g.url).await;
        assert_eq!(
            series(
                &m,
                "switchyard_ratelimit_backend_errors_total{backend=\"redis\",call=\"admit\",on_error=\"deny\"}"
            ),
            Some(0.0),
            "{m}"
        );
    }
    delete_prefix(&prefix);
}

#[tokio::test]
async fn redis_down_fails_open_to_the_process_limiter_and_says_so_once() {
    let closed = free_port();
    let yaml = config(&format!(
        "  default_key: {{rpm: 60}}\n  backend: redis\n  \
         redis_url: \"redis://:topsecret-redis-pw@127.0.0.1:{closed}/0\"\n"
    ));
    let gw = start(&yaml).await;
    // Admitted by the process's own limiter, which still limits.
    let first = chat_as(&gw.url, KEY, &[]).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.header("x-ratelimit-limit-requests"), Some("60"));
    for _ in 0..3 {
        let r = chat_as(&gw.url, KEY, &[]).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    }
    let m = metrics(&gw.url).await;
    let errors = series(
        &m,
        "switchyard_ratelimit_backend_errors_total{backend=\"redis\",call=\"admit\",on_error=\"allow\"}",
    );
    assert_eq!(errors, Some(4.0), "{m}");
    // Logged at start-up and at the first failure; the next failures within 10 s are only
    // counted. The password is in no line.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = gw.lines.lock().clone();
    let warnings: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("rate-limit backend unavailable"))
        .collect();
    assert_eq!(warnings.len(), 2, "{lines:#?}");
    assert!(
        warnings[1].contains("limiting in this process only"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains(&format!("redis://127.0.0.1:{closed}/0")),
        "{warnings:?}"
    );
    assert!(lines.iter().all(|l| !l.contains("topsecret")), "{lines:#?}");
}

#[tokio::test]
async fn redis_down_fails_closed_when_configured() {
    let closed = free_port();
    let yaml = config(&format!(
        "  default_key: {{rpm: 60}}\n  backend: redis\n  \
         redis_url: redis://127.0.0.1:{closed}\n  on_backend_error: deny\n"
    ));
    let gw = start(&yaml).await;
    let r = chat_as(&gw.url, KEY, &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    let e = r.error();
    assert_eq!(e["code"], "rate_limiter_unavailable");
    assert_eq!(e["type"], "server_error");
    // Anthropic's shape on /v1/messages.
    let auth = format!("Bearer {KEY}");
    let msg = send(
        Method::POST,
        &format!("{}/v1/messages", gw.url),
        &[("authorization", &auth)],
        r#"{"model":"demo","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(msg.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(msg.json()["type"], "error");
    // A request no limit applies to (the master key) does not need Redis.
    let free = chat_as(&gw.url, MASTER, &[]).await;
    assert_eq!(free.status, StatusCode::OK, "{}", free.text());
}

#[tokio::test]
async fn a_silent_redis_never_holds_requests() {
    // Accepts connections and never answers: each call is cut at the 50 ms default and the
    // request fails open (a hang would trip the harness's 20 s timeout).
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            conns.push(c);
        }
    });
    let yaml = config(&format!(
        "  default_key: {{rpm: 6000}}\n  backend: redis\n  redis_url: redis://127.0.0.1:{port}\n"
    ));
    let gw = start(&yaml).await;
    for _ in 0..3 {
        let r = chat_as(&gw.url, KEY, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    held.abort();
}

/// Under a saturated team limit with waiting on, requests of class `high` (key `vip`) sent
/// after three `low` ones (key `bulk`, lowered by the header) are admitted before them.
async fn high_passes_queued_low(extra_limits: &str) {
    let yaml = config(&format!(
        "  teams: {{t: {{rpm: 60}}}}\n  keys: {{vip: {{priority: high}}}}\n  max_wait: 10s\n\
         {extra_limits}"
    ));
    let gw = start(&yaml).await;
    // Takes the team's burst of one; the next room is a second later.
    assert_eq!(chat_as(&gw.url, BULK, &[]).await.status, StatusCode::OK);
    let spawn = |key: &'static str, class: &'static str| {
        let url = gw.url.clone();
        tokio::spawn(async move {
            let r = chat_as(&url, key, &[("x-switchyard-priority", class)]).await;
            (class, r.status, Instant::now())
        })
    };
    let waiting = |text: &str, class: &str| {
        series(
            text,
            &format!("switchyard_ratelimit_waiting{{priority=\"{class}\"}}"),
        )
        .unwrap_or(0.0) as u32
    };
    // Requests of a class that joined the queue: still waiting, or admitted after waiting.
    let joined = move |text: &str, class: &str| {
        waiting(text, class)
            + series(
                text,
                &format!(
                    "switchyard_ratelimit_waits_total{{priority=\"{class}\",result=\"admitted\"}}"
                ),
            )
            .unwrap_or(0.0) as u32
    };
    let until = |class: &'static str, n: u32| {
        let url = gw.url.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let m = metrics(&url).await;
                if joined(&m, class) >= n {
                    return m;
                }
                assert!(
                    Instant::now() < deadline,
                    "never saw {n} {class} queued: {m}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let mut tasks = Vec::new();
    for _ in 0..3 {
        tasks.push(spawn(BULK, "low"));
    }
    until("low", 3).await;
    tasks.push(spawn(VIP, "high"));
    tasks.push(spawn(VIP, "high"));
    let m = until("high", 2).await;
    // The lows still waiting when both highs had joined (normally all three: the first room
    // comes a second after the burst). On a machine too slow for even one, the test proves
    // nothing and says so.
    let low_waiting = waiting(&m, "low") as usize;
    assert!(
        low_waiting >= 1,
        "every low was admitted before the highs queued: {m}"
    );
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.unwrap());
    }
    assert!(done.iter().all(|d| d.1 == StatusCode::OK), "{done:?}");
    done.sort_by_key(|d| d.2);
    let order: Vec<&str> = done.iter().map(|d| d.0).collect();
    // Both highs come before every low that was still waiting.
    let first_waiting_low = order.len() - low_waiting;
    assert!(
        order[..first_waiting_low]
            .iter()
            .filter(|c| **c == "high")
            .count()
            == 2,
        "{order:?} ({low_waiting} lows were waiting)"
    );
    let m = metrics(&gw.url).await;
    assert_eq!(
        series(
            &m,
            "switchyard_ratelimit_waits_total{priority=\"high\",result=\"admitted\"}"
        ),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        series(
            &m,
            "switchyard_ratelimit_waits_total{priority=\"low\",result=\"admitted\"}"
        ),
        Some(3.0),
        "{m}"
    );
}

#[tokio::test]
async fn high_priority_passes_queued_low_priority_in_memory() {
    high_passes_queued_low("").await;
}

#[tokio::test]
async fn high_priority_passes_queued_low_priority_with_redis() {
    let prefix = prefix("priority");
    high_passes_queued_low(&format!(
        "  backend: redis\n  redis_url: redis://127.0.0.1:6379\n  redis_prefix: \"{prefix}\"\n  \
         redis_timeout: 2s\n"
    ))
    .await;
    delete_prefix(&prefix);
}

#[tokio::test]
async fn a_bad_priority_header_is_a_400_naming_it() {
    let gw = Gateway::start(&config("  default_key: {rpm: 100}\n")).await;
    let r = chat_as(&gw.url, KEY, &[("x-switchyard-priority", "urgent")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let e = r.error();
    assert_eq!(e["param"], "x-switchyard-priority");
    assert!(e["message"].as_str().unwrap().contains("low"), "{e}");
    let ok = chat_as(&gw.url, KEY, &[("x-switchyard-priority", "Low")]).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn config_errors_name_the_key() {
    for (limits, needles) in [
        ("  backend: redis\n", &["limits.redis_url", "required"][..]),
        (
            "  backend: redis\n  redis_url: \"rediss://:do-not-print@cache\"\n",
            &["limits.redis_url", "TLS"][..],
        ),
        (
            "  redis_url: redis://127.0.0.1\n",
            &["limits.redis_url", "backend: redis"][..],
        ),
        (
            "  backend: redis\n  redis_url: redis://x\n  on_backend_error: maybe\n",
            &["on_backend_error"][..],
        ),
        ("  teams: {t: {rpm: 5, priority: top}}\n", &["priority"][..]),
    ] {
        let path = write_temp("switchyard.yaml", &config(limits));
        let out = bin()
            .args(["check", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{limits}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{limits}: missing {n:?} in {stderr}");
        }
        assert!(!stderr.contains("do-not-print"), "{stderr}");
    }
    // A valid shared-backend config says where limits live, without the password.
    let path = write_temp(
        "switchyard.yaml",
        &config("  backend: redis\n  redis_url: \"redis://:do-not-print@cache:6380/2\"\n"),
    );
    let out = bin()
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("rate limits: redis redis://cache:6380/2 (on backend error: allow)"),
        "{stdout}"
    );
    assert!(!stdout.contains("do-not-print"));
}

#[tokio::test]
async fn stored_resources_and_sub_resources_count_against_the_key_limit() {
    // One request a minute: the first call of any kind uses it, the next ones are refused.
    let gw = Gateway::start(&config("  default_key: {rpm: 1}\n")).await;
    let auth = format!("Bearer {KEY}");
    let h = [("authorization", auth.as_str())];
    let first = get(&format!("{}/v1/responses/resp_nope", gw.url), &h).await;
    assert_eq!(first.status, StatusCode::NOT_FOUND);
    let again = get(&format!("{}/v1/responses/resp_nope", gw.url), &h).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(again.headers.contains_key("retry-after"));
    let count = send(
        Method::POST,
        &format!("{}/v1/responses/input_tokens", gw.url),
        &h,
        r#"{"model":"demo","input":"hi"}"#.to_owned(),
    )
    .await;
    assert_eq!(count.status, StatusCode::TOO_MANY_REQUESTS);
    let list = get(&format!("{}/v1/chat/completions", gw.url), &h).await;
    assert_eq!(list.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(list.error()["code"], "rate_limit_exceeded");
    // Another key has its own minute.
    let other = format!("Bearer {VIP}");
    let ok = get(
        &format!("{}/v1/responses/resp_nope", gw.url),
        &[("authorization", other.as_str())],
    )
    .await;
    assert_eq!(ok.status, StatusCode::NOT_FOUND);
}
