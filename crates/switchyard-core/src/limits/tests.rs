use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;

fn scope(name: &str, rpm: Option<u64>, tpm: Option<u64>) -> Scope {
    Scope {
        name: name.to_owned(),
        limit: Limit { rpm, tpm },
    }
}

/// Offers a request every `step` for `span` and counts those admitted.
fn admitted_over(rpm: u64, step: Duration, span: Duration) -> u64 {
    let limiter = Limiter::default();
    let scopes = [scope("key:a", Some(rpm), None)];
    let start = Instant::now();
    let mut t = Duration::ZERO;
    let mut n = 0;
    while t < span {
        if limiter.admit(&scopes, 1, start + t).is_ok() {
            n += 1;
        }
        t += step;
    }
    n
}

#[tokio::test(start_paused = true)]
async fn rpm_accuracy_over_a_virtual_minute() {
    // Requests offered much faster than the limit, for 60 s of virtual time.
    for rpm in [60, 600, 1200, 6000] {
        let n = admitted_over(rpm, Duration::from_millis(1), Duration::from_secs(60));
        let err = (n as f64 - rpm as f64).abs() / rpm as f64;
        assert!(
            err <= 0.02,
            "rpm {rpm}: admitted {n} ({:.2}% off)",
            err * 100.0
        );
    }
}

#[tokio::test(start_paused = true)]
async fn rpm_accuracy_with_real_sleeps_in_paused_time() {
    let limits = Arc::new(Limits::new(LimitsConfig {
        default_key: Limit {
            rpm: Some(300),
            tpm: None,
        },
        ..Default::default()
    }));
    let subject = Subject {
        key: Some("k"),
        key_limit: Limit::default(),
        team: None,
        user: None,
        tags: &[],
        priority: None,
    };
    let end = Instant::now() + Duration::from_secs(60);
    let mut n = 0u64;
    while Instant::now() < end {
        if limits.admit(&subject, 1).await.is_ok() {
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    assert!((294..=306).contains(&n), "admitted {n} of 300 rpm");
}

#[test]
fn property_no_window_exceeds_limit_plus_burst() {
    // A seeded xorshift drives random arrival gaps and limits; for every sliding 60 s window
    // the admitted count stays within rpm + burst - 1, and a steady trickle below the limit
    // is never refused.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let base = Instant::now();
    for _ in 0..40 {
        let rpm = 1 + next() % 2000;
        let limiter = Limiter::default();
        let scopes = [scope("s", Some(rpm), None)];
        let mut t = Duration::ZERO;
        let mut admitted = Vec::new();
        for _ in 0..3000 {
            t += Duration::from_micros(next() % 200_000);
            if limiter.admit(&scopes, 1, base + t).is_ok() {
                admitted.push(t);
            }
        }
        let cap = rpm + burst(rpm) - 1;
        let mut lo = 0;
        for hi in 0..admitted.len() {
            while admitted[hi] - admitted[lo] >= Duration::from_secs(60) {
                lo += 1;
            }
            assert!((hi - lo + 1) as u64 <= cap, "rpm {rpm}: window over {cap}");
        }
        // Below the limit: one request every 1.01 intervals always passes.
        let limiter = Limiter::default();
        let gap = interval(rpm).mul_f64(1.01);
        for i in 0..200u32 {
            assert!(
                limiter.admit(&scopes, 1, base + gap * i).is_ok(),
                "rpm {rpm}"
            );
        }
    }
}

#[test]
fn denial_says_when_to_retry_and_retry_then_passes() {
    let limiter = Limiter::default();
    let scopes = [scope("key:a", Some(60), None)];
    let now = Instant::now();
    assert!(limiter.admit(&scopes, 1, now).is_ok());
    let d = limiter.admit(&scopes, 1, now).unwrap_err();
    assert_eq!(
        (d.scope.as_str(), d.what, d.limit),
        ("key:a", "requests", 60)
    );
    assert_eq!(d.retry_after, Duration::from_secs(1));
    assert_eq!(d.info.requests.map(|r| r.1), Some(0));
    assert!(limiter
        .admit(&scopes, 1, now + d.retry_after - Duration::from_millis(1))
        .is_err());
    assert!(limiter.admit(&scopes, 1, now + d.retry_after).is_ok());
}

#[test]
fn every_scope_must_admit_and_a_refusal_charges_nothing() {
    let limiter = Limiter::default();
    let now = Instant::now();
    let key = scope("key:a", Some(600), None);
    let team = scope("team:t", Some(60), None);
    assert!(limiter.admit(&[key.clone(), team.clone()], 1, now).is_ok());
    let d = limiter.admit(&[key.clone(), team], 1, now).unwrap_err();
    assert_eq!(d.scope, "team:t");
    // The key alone still has its burst of 10 minus the one admitted.
    let info = limiter.admit(&[key], 1, now).unwrap();
    assert_eq!(info.requests, Some((600, 8, Duration::from_millis(200))));
}

#[test]
fn tpm_charges_estimates_and_reconciles_with_usage() {
    let limiter = Limiter::default();
    let now = Instant::now();
    let s = [scope("key:a", None, Some(6000))];
    // A minute's worth at once, then nothing.
    let info = limiter.admit(&s, 5000, now).unwrap();
    assert_eq!(info.tokens.map(|t| t.1), Some(1000));
    let d = limiter.admit(&s, 2000, now).unwrap_err();
    assert_eq!(d.what, "tokens");
    // 2000 needs 1000 more tokens of room: 10 s at 100 tokens/s.
    assert_eq!(d.retry_after, Duration::from_secs(10));
    // The request really used 1000 tokens: 4000 come back.
    limiter.reconcile(&s, 5000, 1000, now);
    let info = limiter.admit(&s, 2000, now).unwrap();
    assert_eq!(info.tokens.map(|t| t.1), Some(3000));
    // Used more than estimated: the difference is charged.
    limiter.reconcile(&s, 2000, 4500, now);
    assert!(limiter.admit(&s, 600, now).is_err());
    assert!(limiter.admit(&s, 500, now).is_ok());
}

#[test]
fn an_oversized_request_passes_only_on_a_full_bucket() {
    let limiter = Limiter::default();
    let now = Instant::now();
    let s = [scope("key:a", None, Some(1000))];
    assert!(limiter.admit(&s, 5000, now).is_ok());
    let d = limiter.admit(&s, 1, now).unwrap_err();
    // 5000 tokens at 1000/min: 5 minutes to refill; room for one token (60 ms of the
    // bucket) 4 minutes and 60 ms in.
    assert_eq!(d.retry_after, Duration::from_millis(240_060));
}

#[test]
fn refunds_never_overfill() {
    let limiter = Limiter::default();
    let now = Instant::now();
    let s = [scope("key:a", None, Some(600))];
    limiter.admit(&s, 100, now).unwrap();
    limiter.reconcile(&s, 100, 0, now + Duration::from_secs(30));
    let info = limiter
        .admit(&s, 600, now + Duration::from_secs(30))
        .unwrap();
    assert_eq!(info.tokens.map(|t| t.1), Some(0));
}

#[test]
fn scopes_follow_config_and_key_record() {
    let mut tags = std::collections::HashMap::new();
    tags.insert(
        "feature=search".to_owned(),
        Limit {
            rpm: Some(5),
            tpm: None,
        },
    );
    let mut teams = std::collections::HashMap::new();
    teams.insert(
        "ml".to_owned(),
        Limit {
            rpm: None,
            tpm: Some(100),
        },
    );
    let limits = Limits::new(LimitsConfig {
        default_key: Limit {
            rpm: Some(10),
            tpm: Some(1000),
        },
        teams,
        tags,
        ..Default::default()
    });
    let tag_list = [
        (Arc::from("feature"), Arc::from("search")),
        (Arc::from("x"), Arc::from("y")),
    ];
    let scopes = limits.scopes(&Subject {
        key: Some("k"),
        key_limit: Limit {
            rpm: Some(3),
            tpm: None,
        },
        team: Some("ml"),
        user: Some("nobody"),
        tags: &tag_list,
        priority: None,
    });
    let names: Vec<_> = scopes.iter().map(|s| (s.name.as_str(), s.limit)).collect();
    assert_eq!(
        names,
        [
            (
                "key:k",
                Limit {
                    rpm: Some(3),
                    tpm: Some(1000)
                }
            ),
            (
                "team:ml",
                Limit {
                    rpm: None,
                    tpm: Some(100)
                }
            ),
            (
                "tag:feature=search",
                Limit {
                    rpm: Some(5),
                    tpm: None
                }
            ),
        ]
    );
}

#[test]
fn headers_look_like_openai() {
    let mut h = http::HeaderMap::new();
    RateInfo {
        requests: Some((60, 59, Duration::from_secs(1))),
        tokens: Some((1000, 10, Duration::from_millis(59_400))),
    }
    .stamp(&mut h);
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(get("x-ratelimit-limit-requests"), "60");
    assert_eq!(get("x-ratelimit-remaining-requests"), "59");
    assert_eq!(get("x-ratelimit-reset-requests"), "1s");
    assert_eq!(get("x-ratelimit-reset-tokens"), "59.4s");
    assert_eq!(format_reset(Duration::from_millis(120)), "120ms");
    assert_eq!(format_reset(Duration::from_secs(360)), "6m0s");
}

#[test]
fn config_is_validated() {
    let raw: config::RawLimits =
        serde_yaml_ng::from_str("teams: {a: {rpm: 0}}\ntags: {nokey: {rpm: 1}}\nmax_wait: 1m")
            .unwrap();
    let problems = LimitsConfig::from_raw(&raw).unwrap_err();
    let paths: Vec<String> = problems.iter().map(|(p, _)| p.join(".")).collect();
    assert!(paths.contains(&"teams.a.rpm".to_owned()), "{paths:?}");
    assert!(paths.contains(&"tags.nokey".to_owned()), "{paths:?}");
    assert!(paths.contains(&"max_wait".to_owned()), "{paths:?}");
    assert!(serde_yaml_ng::from_str::<config::RawLimits>("teams: {a: {rps: 1}}").is_err());
}

#[tokio::test(start_paused = true)]
async fn max_wait_queues_instead_of_refusing() {
    let limits = Arc::new(Limits::new(LimitsConfig {
        default_key: Limit {
            rpm: Some(60),
            tpm: None,
        },
        max_wait: Duration::from_millis(1500),
        ..Default::default()
    }));
    let subject = Subject {
        key: Some("k"),
        key_limit: Limit::default(),
        team: None,
        user: None,
        tags: &[],
        priority: None,
    };
    let start = Instant::now();
    assert!(limits.admit(&subject, 1).await.is_ok());
    // Waits one second (under the 1.5 s bound), then passes.
    assert!(limits.admit(&subject, 1).await.is_ok());
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    // Two more would need 1 s + 2 s: the second is over the bound and refused at once.
    let (a, b) = tokio::join!(limits.admit(&subject, 1), async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        limits.admit(&subject, 1).await
    });
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1);
}

// ---- Priority classes, the wait queue, the shared backend's failure modes ----

fn subject<'a>(key: &'a str, team: Option<&'a str>, asked: Option<Priority>) -> Subject<'a> {
    Subject {
        key: Some(key),
        key_limit: Limit::default(),
        team,
        user: None,
        tags: &[],
        priority: asked,
    }
}

#[test]
fn the_class_comes_from_key_then_team_then_default_and_requests_only_lower_it() {
    let raw: config::RawLimits = serde_yaml_ng::from_str(
        "default_key: {rpm: 10, priority: low}\n\
         keys: {vip: {priority: high}, plain: {rpm: 5}}\n\
         teams: {ops: {priority: normal}}\n",
    )
    .unwrap();
    let limits = Limits::new(LimitsConfig::from_raw(&raw).unwrap());
    let p = |key, team, asked| limits.priority(&subject(key, team, asked));
    assert_eq!(p("vip", Some("ops"), None), Priority::High);
    assert_eq!(p("plain", Some("ops"), None), Priority::Normal);
    assert_eq!(p("plain", None, None), Priority::Low);
    // The header lowers, never raises.
    assert_eq!(p("vip", None, Some(Priority::Low)), Priority::Low);
    assert_eq!(p("plain", None, Some(Priority::High)), Priority::Low);
    assert_eq!(
        p("plain", Some("ops"), Some(Priority::High)),
        Priority::Normal
    );
    // `limits.keys.<name>` limits apply to that key over `default_key`.
    let scopes = limits.scopes(&subject("plain", None, None));
    assert_eq!(scopes[0].limit.rpm, Some(5));
    assert_eq!(Priority::parse(" HIGH "), Some(Priority::High));
    assert_eq!(Priority::parse("urgent"), None);
}

#[test]
fn backend_settings_are_validated_naming_the_key_and_never_the_password() {
    let problems = |yaml: &str| -> Vec<(String, String)> {
        let raw: config::RawLimits = serde_yaml_ng::from_str(yaml).unwrap();
        LimitsConfig::from_raw(&raw)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|(p, m)| (p.join("."), m))
            .collect()
    };
    let p = problems("backend: redis\n");
    assert_eq!(p[0].0, "redis_url", "{p:?}");
    let p = problems("backend: redis\nredis_url: \"http://:hunter2@cache:6379\"\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "redis_url");
    assert!(!p[0].1.contains("hunter2"), "{p:?}");
    let p = problems(
        "backend: redis\nredis_url: redis://cache\nredis_timeout: 0s\nredis_prefix: \"a b\"\n",
    );
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["redis_timeout", "redis_prefix"]);
    let p = problems("redis_url: redis://cache\non_backend_error: deny\n");
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["redis_url", "on_backend_error"]);
    let p = problems("users: {u: {priority: high}}\nmax_queue: 0\n");
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        keys.contains(&"users.u.priority") && keys.contains(&"max_queue"),
        "{keys:?}"
    );
    assert!(serde_yaml_ng::from_str::<config::RawLimits>("backend: memcached").is_err());
    assert!(serde_yaml_ng::from_str::<config::RawLimits>("on_backend_error: maybe").is_err());
    let raw: config::RawLimits = serde_yaml_ng::from_str(
        "backend: redis\nredis_url: \"redis://:pw@cache:6380/3\"\non_backend_error: deny\n",
    )
    .unwrap();
    let c = LimitsConfig::from_raw(&raw).unwrap();
    let r = c.redis.unwrap();
    assert_eq!(r.url.describe(), "redis://cache:6380/3");
    assert_eq!(r.timeout, config::DEFAULT_REDIS_TIMEOUT);
    assert_eq!(r.prefix, "switchyard:rl");
    assert_eq!(r.on_error, OnBackendError::Deny);
    assert!(!format!("{:?}", r.url).contains("pw"));
}

fn waiting_limits(rpm: u64, max_wait: Duration, max_queue: usize) -> Arc<Limits> {
    Arc::new(Limits::new(LimitsConfig {
        default_key: Limit {
            rpm: Some(rpm),
            tpm: None,
        },
        default_priority: Priority::High,
        max_wait,
        max_queue,
        ..Default::default()
    }))
}

/// What happened to one request of a simulated run.
#[derive(Debug, Clone, Copy)]
struct Run {
    class: Priority,
    arrived: Instant,
    ended: Instant,
    admitted: bool,
}

/// Starts requests of the given classes at the given offsets against `limits` (one key) and
/// returns how each ended.
async fn simulate(limits: &Arc<Limits>, plan: &[(Duration, Priority)]) -> Vec<Run> {
    let start = Instant::now();
    let tasks: Vec<_> = plan
        .iter()
        .map(|&(at, class)| {
            let limits = Arc::clone(limits);
            tokio::spawn(async move {
                tokio::time::sleep_until(start + at).await;
                let arrived = Instant::now();
                let r = limits.admit(&subject("k", None, Some(class)), 1).await;
                Run {
                    class,
                    arrived,
                    ended: Instant::now(),
                    admitted: r.is_ok(),
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn property_waiters_are_admitted_by_class_then_arrival_within_the_limit() {
    // Random classes and arrival times against one scope of 60 rpm (one a second, burst 1),
    // with up to 8 s of waiting. For every admitted request: no request of a higher class,
    // nor an earlier one of its class, was waiting when it was admitted; the limit holds; no
    // request waits past the bound.
    let mut seed = 0x0DDB_1A5E_5BAD_5EEDu64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let max_wait = Duration::from_secs(8);
    let margin = Duration::from_micros(1);
    for round in 0..12 {
        let limits = waiting_limits(60, max_wait, 1000);
        let plan: Vec<(Duration, Priority)> = (0..30)
            .map(|_| {
                (
                    Duration::from_micros(next() % 20_000_000),
                    Priority::ALL[(next() % 3) as usize],
                )
            })
            .collect();
        let runs = simulate(&limits, &plan).await;
        let mut admitted: Vec<Instant> = runs
            .iter()
            .filter(|r| r.admitted)
            .map(|r| r.ended)
            .collect();
        admitted.sort();
        for w in admitted.windows(2) {
            assert!(
                w[1] - w[0] >= Duration::from_secs(1) - margin,
                "round {round}: limit broken"
            );
        }
        for b in runs.iter().filter(|r| r.admitted) {
            for a in &runs {
                let waiting_then = a.arrived + margin < b.ended && b.ended + margin < a.ended;
                let outranks =
                    a.class > b.class || (a.class == b.class && a.arrived + margin < b.arrived);
                assert!(
                    !(waiting_then && outranks),
                    "round {round}: {b:?} admitted while {a:?} waited"
                );
            }
        }
        for r in &runs {
            assert!(
                r.ended - r.arrived <= max_wait,
                "round {round}: {r:?} waited too long"
            );
        }
        // Most were admitted: the queue keeps the limiter busy while there is demand.
        assert!(
            admitted.len() >= 18,
            "round {round}: only {} admitted",
            admitted.len()
        );
        assert_eq!(
            limits
                .queues
                .stats
                .waiting
                .iter()
                .map(|w| w.load(std::sync::atomic::Ordering::Relaxed))
                .sum::<u64>(),
            0
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_higher_class_arriving_later_passes_queued_lower_ones() {
    let limits = waiting_limits(60, Duration::from_secs(10), 100);
    let ms = Duration::from_millis;
    let plan = [
        (ms(0), Priority::Normal),  // admitted at once (the burst)
        (ms(10), Priority::Low),    // waits
        (ms(20), Priority::Low),    // waits
        (ms(30), Priority::Normal), // waits, ahead of the lows
        (ms(40), Priority::High),   // waits, ahead of everyone
    ];
    let runs = simulate(&limits, &plan).await;
    let mut order: Vec<(usize, Instant)> =
        runs.iter().enumerate().map(|(i, r)| (i, r.ended)).collect();
    order.sort_by_key(|o| o.1);
    let order: Vec<usize> = order.into_iter().map(|o| o.0).collect();
    assert_eq!(order, [0, 4, 3, 1, 2]);
    assert!(runs.iter().all(|r| r.admitted));
    // One a second: the last one waited four.
    assert_eq!(runs[2].ended - runs[0].ended, Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_turns_away_the_lowest_class() {
    let limits = waiting_limits(60, Duration::from_secs(10), 2);
    let ms = Duration::from_millis;
    let plan = [
        (ms(0), Priority::Normal),
        (ms(10), Priority::Low),    // waits
        (ms(20), Priority::Normal), // waits: the queue is full
        (ms(30), Priority::Low),    // turned away at once
        (ms(40), Priority::High),   // takes the place of the low one
    ];
    let runs = simulate(&limits, &plan).await;
    assert!(!runs[3].admitted && runs[3].ended == runs[3].arrived);
    assert!(
        !runs[1].admitted && runs[1].ended == runs[4].arrived,
        "{:?}",
        runs[1]
    );
    assert!(runs[0].admitted && runs[2].admitted && runs[4].admitted);
    assert!(runs[4].ended < runs[2].ended);
    let s = &limits.queues.stats;
    let get = |c: &[std::sync::atomic::AtomicU64; 3], p: Priority| {
        c[p as usize].load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(get(&s.queue_full, Priority::Low), 1);
    assert_eq!(get(&s.evicted, Priority::Low), 1);
    assert_eq!(get(&s.admitted, Priority::High), 1);
    let mut m = String::new();
    limits.render_metrics(&mut m);
    assert!(
        m.contains("switchyard_ratelimit_waits_total{priority=\"low\",result=\"evicted\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("switchyard_ratelimit_waiting{priority=\"high\"} 0"),
        "{m}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiter_that_goes_away_leaves_the_queue() {
    let limits = waiting_limits(60, Duration::from_secs(10), 100);
    let s = subject("k", None, None);
    assert!(limits.admit(&s, 1).await.is_ok());
    // This one gives up after 300 ms (its client went away): dropping the future leaves.
    let gone = tokio::time::timeout(Duration::from_millis(300), limits.admit(&s, 1)).await;
    assert!(gone.is_err());
    assert!(limits.queues.order("key:k").is_empty());
    // The next one is not held up by it: admitted when the second comes round.
    let start = Instant::now();
    assert!(limits.admit(&s, 1).await.is_ok());
    assert_eq!(start.elapsed(), Duration::from_millis(700));
}

#[tokio::test(start_paused = true)]
async fn refunded_tokens_let_the_head_pass_at_once() {
    let limits = Arc::new(Limits::new(LimitsConfig {
        default_key: Limit {
            rpm: None,
            tpm: Some(6000),
        },
        max_wait: Duration::from_secs(20),
        ..Default::default()
    }));
    let s = subject("k", None, None);
    let (first, _) = limits.admit(&s, 5000).await.unwrap();
    let start = Instant::now();
    let waiter = {
        let limits = Arc::clone(&limits);
        tokio::spawn(async move { limits.admit(&subject("k", None, None), 2000).await.is_ok() })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The first request used 1000 tokens, not 5000: the waiter (due in 10 s) passes now.
    first.unwrap().settle(Some(1000), false);
    assert!(waiter.await.unwrap());
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

fn redis_limits(port: u16, on_error: &str) -> Arc<Limits> {
    let raw: config::RawLimits = serde_yaml_ng::from_str(&format!(
        "default_key: {{rpm: 60}}\nbackend: redis\nredis_url: redis://127.0.0.1:{port}\n\
         on_backend_error: {on_error}\n"
    ))
    .unwrap();
    Arc::new(Limits::new(LimitsConfig::from_raw(&raw).unwrap()))
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn redis_down_fails_open_to_the_process_limiter_or_closed() {
    let open = redis_limits(closed_port(), "allow");
    let s = subject("k", None, None);
    let (admission, info) = open.admit(&s, 1).await.unwrap();
    assert!(admission.is_some());
    assert_eq!(info.requests.map(|r| r.0), Some(60));
    // The process's own limiter still limits.
    assert!(matches!(open.admit(&s, 1).await, Err(Refusal::Limited(_))));
    assert_eq!(
        open.stats
            .admit_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    let mut m = String::new();
    open.render_metrics(&mut m);
    assert!(
        m.contains("switchyard_ratelimit_backend_errors_total{backend=\"redis\",call=\"admit\",on_error=\"allow\"} 2"),
        "{m}"
    );

    let closed = redis_limits(closed_port(), "deny");
    assert!(matches!(
        closed.admit(&s, 1).await,
        Err(Refusal::Unavailable)
    ));
    // Requests outside every limit are not affected.
    let free = Subject { key: None, ..s };
    assert!(closed.admit(&free, 1).await.is_ok());
}

#[tokio::test]
async fn a_silent_redis_is_bounded_by_the_timeout() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let limits = redis_limits(port, "allow");
    // Fails open after the 50 ms bound instead of hanging (the harness would time out).
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        limits.admit(&subject("k", None, None), 1),
    )
    .await;
    assert!(r.unwrap().is_ok());
    server.abort();
}

#[tokio::test]
async fn the_shared_limit_holds_through_limits_with_redis() {
    let prefix = crate::resp::tests::unique_prefix("limits");
    let raw: config::RawLimits = serde_yaml_ng::from_str(&format!(
        "default_key: {{rpm: 120, tpm: 1000}}\nbackend: redis\nredis_url: {}\n\
         redis_prefix: \"{prefix}\"\nredis_timeout: 2s\n",
        crate::resp::tests::LOCAL
    ))
    .unwrap();
    let a = Arc::new(Limits::new(LimitsConfig::from_raw(&raw).unwrap()));
    // Two "replicas": separate processes' state, one Redis.
    let b = Arc::new(Limits::new(LimitsConfig::from_raw(&raw).unwrap()));
    let s = subject("k", None, None);
    let mut admissions = Vec::new();
    for i in 0..10 {
        let l = if i % 2 == 0 { &a } else { &b };
        if let Ok((adm, info)) = l.admit(&s, 10).await {
            assert_eq!(info.requests.map(|r| r.0), Some(120));
            admissions.push(adm.unwrap());
        }
    }
    // A burst of two (120 rpm), whichever process asks.
    assert_eq!(admissions.len(), 2);
    assert_eq!(
        a.stats
            .admit_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let Some(shared) = &a.shared else { panic!() };
    let key = format!("{prefix}:key:k");
    let tokens_tat = || async {
        match shared
            .client()
            .call(&[b"HGET", key.as_bytes(), b"t"])
            .await
            .unwrap()
        {
            crate::resp::Value::Data(t) => String::from_utf8_lossy(&t).parse::<f64>().unwrap(),
            v => panic!("{v:?}"),
        }
    };
    let before = tokens_tat().await;
    // Each request used 20 tokens, not 10: the corrections (sent in the background) charge
    // 10 more each, 600 ms apiece at 1000 tpm.
    for adm in admissions {
        adm.settle(Some(20), false);
    }
    let mut moved = 0.0;
    for _ in 0..250 {
        moved = tokens_tat().await - before;
        if moved >= 1_200_000.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!((moved - 1_200_000.0).abs() < 1.0, "moved {moved}");
    assert_eq!(
        a.stats
            .reconcile_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    crate::resp::tests::delete_prefix(shared.client(), &prefix).await;
}

#[tokio::test(start_paused = true)]
async fn a_small_request_does_not_overtake_a_waiting_big_one() {
    let limits = Arc::new(Limits::new(LimitsConfig {
        default_key: Limit {
            rpm: None,
            tpm: Some(6000),
        },
        max_wait: Duration::from_secs(20),
        ..Default::default()
    }));
    let s = subject("k", None, None);
    assert!(limits.admit(&s, 5000).await.is_ok());
    let start = Instant::now();
    // 2000 tokens need 1000 more than the 1000 left: 10 s at 100 tokens/s.
    let big = {
        let limits = Arc::clone(&limits);
        tokio::spawn(async move {
            limits.admit(&subject("k", None, None), 2000).await.unwrap();
            Instant::now()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // 500 tokens would fit now, but the big one waits first: it queues behind it.
    assert!(limits.admit(&s, 500).await.is_ok());
    let small = Instant::now();
    let big = big.await.unwrap();
    assert_eq!(big - start, Duration::from_secs(10));
    assert_eq!(small - start, Duration::from_secs(15));
}
