use std::time::Duration;

use super::*;

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

#[test]
fn backoff_is_full_jitter_under_a_doubling_ceiling() {
    let p = RetryPolicy {
        max_attempts: 5,
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(1_000),
        max_retry_after: Duration::from_secs(10),
    };
    let mut rng = xorshift(7);
    for retry in 1..=8u32 {
        let ceiling = Duration::from_millis((100u64 << (retry - 1)).min(1_000));
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        for _ in 0..2_000 {
            let d = p.delay(retry, rng(), None);
            assert!(d <= ceiling, "retry {retry}: {d:?} > {ceiling:?}");
            lo = lo.min(d);
            hi = hi.max(d);
        }
        // Spread over the whole range, not clustered.
        assert!(
            lo < ceiling / 10 && hi > ceiling * 9 / 10,
            "retry {retry}: {lo:?}..{hi:?}"
        );
    }
    assert_eq!(
        p.delay(1, 0, Some(Duration::from_secs(3))),
        Duration::from_secs(3)
    );
    assert!(
        p.delay(40, u64::MAX, None) <= Duration::from_millis(1_000),
        "no overflow"
    );
    let zero = RetryPolicy {
        backoff_base: Duration::ZERO,
        ..p
    };
    assert_eq!(zero.delay(3, 12345, None), Duration::ZERO);
}

#[test]
fn retry_after_reads_seconds_only() {
    let v = |s: &'static str| parse_retry_after(&HeaderValue::from_static(s));
    assert_eq!(v("7"), Some(Duration::from_secs(7)));
    assert_eq!(v(" 0.5 "), Some(Duration::from_millis(500)));
    assert_eq!(v("-1"), None);
    assert_eq!(v("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    assert_eq!(v("NaN"), None);
}

#[tokio::test(start_paused = true)]
async fn budget_allows_ratio_of_requests_plus_a_floor_and_forgets_old_traffic() {
    let b = RetryBudget::new(BudgetConfig {
        ratio: 0.2,
        min_per_second: 0.5,
        window: Duration::from_secs(10),
    });
    // Floor alone: 0.5/s over 10 s = 5 retries.
    let floor = (0..20).filter(|_| b.try_retry()).count();
    assert_eq!(floor, 5);
    // 100 requests earn 20 more.
    for _ in 0..100 {
        b.record_request();
    }
    let earned = (0..100).filter(|_| b.try_retry()).count();
    assert_eq!(earned, 20);
    // After the window everything has expired: back to the floor.
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!((0..20).filter(|_| b.try_retry()).count(), 5);
}

#[tokio::test(start_paused = true)]
async fn budget_property_retries_never_exceed_ratio_plus_floor_in_any_window() {
    let cfg = BudgetConfig {
        ratio: 0.25,
        min_per_second: 1.0,
        window: Duration::from_secs(5),
    };
    let b = RetryBudget::new(cfg);
    let mut rng = xorshift(99);
    let mut log: Vec<(Duration, bool)> = Vec::new(); // (time, is_retry)
    let start = tokio::time::Instant::now();
    for _ in 0..3_000 {
        tokio::time::advance(Duration::from_millis(rng() % 20)).await;
        let now = start.elapsed();
        if rng().is_multiple_of(3) {
            if b.try_retry() {
                log.push((now, true));
            }
        } else {
            b.record_request();
            log.push((now, false));
        }
    }
    // Tile time into windows aligned with the budget's buckets. A retry in a tile was allowed
    // by a bucket window that covers the whole tile so far and at most the window before it,
    // so retries in a tile stay within what the requests of the tile and the tile before it
    // earned, plus the floor.
    let w = cfg.window;
    let tiles = log.last().map_or(0, |(t, _)| t.as_nanos() / w.as_nanos()) + 1;
    for k in 0..tiles {
        let tile = |t: &Duration| t.as_nanos() / w.as_nanos();
        let retries = log.iter().filter(|(t, r)| *r && tile(t) == k).count();
        let earning = log
            .iter()
            .filter(|(t, r)| !*r && (tile(t) == k || tile(t) + 1 == k))
            .count();
        let cap = cfg.ratio * earning as f64 + cfg.min_per_second * w.as_secs_f64();
        assert!(
            retries as f64 <= cap,
            "tile {k}: {retries} retries for {earning} requests"
        );
        assert!(retries > 0, "tile {k}: the budget allowed no retry at all");
    }
}

fn breaker() -> Breaker {
    Breaker::new(BreakerConfig {
        consecutive_failures: 3,
        failure_rate: 0.5,
        min_requests: 10,
        window: Duration::from_secs(30),
        open_for: Duration::from_secs(5),
    })
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_on_consecutive_failures_probes_and_recovers() {
    let b = breaker();
    for _ in 0..2 {
        assert!(b.allow());
        b.record(false);
    }
    assert_eq!(b.snapshot().0, BreakerState::Closed);
    assert!(b.allow());
    b.record(false);
    assert_eq!(b.snapshot(), (BreakerState::Open, 1));
    assert!(!b.allow(), "open: refused");
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(b.allow(), "one probe after open_for");
    assert_eq!(b.snapshot().0, BreakerState::HalfOpen);
    assert!(!b.allow(), "only one probe at a time");
    b.record(false);
    assert_eq!(
        b.snapshot(),
        (BreakerState::Open, 2),
        "failed probe re-opens"
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(b.allow());
    b.release();
    assert!(b.allow(), "a released probe slot can be taken again");
    b.record(true);
    assert_eq!(b.snapshot().0, BreakerState::Closed);
    assert!(b.allow());
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_on_failure_rate_without_a_run_of_failures() {
    let b = breaker();
    for i in 0..10 {
        assert!(b.allow(), "request {i}");
        b.record(i % 2 == 0);
    }
    assert_eq!(b.snapshot().0, BreakerState::Open, "5 of 10 failed");
    // Successes keep a mostly healthy deployment closed.
    let b = breaker();
    for i in 0..40 {
        assert!(b.allow());
        b.record(i % 4 != 0);
    }
    assert_eq!(b.snapshot().0, BreakerState::Closed);
}

#[test]
fn health_registry_shares_state_per_deployment() {
    let h = Health::new(ResilienceConfig::default());
    let (p, m, m2): (Arc<str>, Arc<str>, Arc<str>) = ("p".into(), "m".into(), "m2".into());
    let a = h.get(&p, &m);
    let b = h.get(&p, &m);
    assert!(Arc::ptr_eq(&a, &b));
    assert!(!Arc::ptr_eq(&a, &h.get(&p, &m2)));
    let snap = h.snapshot();
    assert_eq!(snap.len(), 2);
    assert_eq!(&*snap[0].model, "m");
    assert_eq!(snap[0].state, BreakerState::Closed);
}

#[test]
fn latency_quantiles_need_enough_samples_and_forget_old_ones() {
    let w = LatencyWindow::default();
    for ms in 1..LatencyWindow::MIN_SAMPLES as u64 {
        w.record(Duration::from_millis(ms));
    }
    assert_eq!(w.quantile(0.95), None);
    let hedge = HedgeDelay::P95 {
        initial: Duration::from_millis(500),
    };
    assert_eq!(hedge.delay(&w), Duration::from_millis(500));
    w.record(Duration::from_millis(20));
    assert_eq!(w.quantile(0.95), Some(Duration::from_millis(19)));
    assert_eq!(w.quantile(0.0), Some(Duration::from_millis(1)));
    // 256 newer samples push every old one out.
    for _ in 0..256 {
        w.record(Duration::from_millis(100));
    }
    assert_eq!(w.quantile(0.5), Some(Duration::from_millis(100)));
    assert_eq!(hedge.delay(&w), Duration::from_millis(100));
    assert_eq!(
        HedgeDelay::Fixed(Duration::from_millis(7)).delay(&w),
        Duration::from_millis(7)
    );
}
