//! The admission and correction scripts against the real Redis (127.0.0.1:6379), each test
//! under a key prefix of its own, deleting only its own keys.

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::limits::config::{OnBackendError, RedisSettings};
use crate::limits::{Denied, Limit, Limiter, RateInfo};
use crate::resp::tests::{delete_prefix, unique_prefix, LOCAL};
use crate::resp::RedisUrl;

fn limiter(prefix: &str) -> RedisLimiter {
    RedisLimiter::new(&RedisSettings {
        url: RedisUrl::parse(LOCAL).unwrap(),
        // Generous: these tests check the scripts, not the latency of a loaded machine.
        timeout: Duration::from_secs(2),
        prefix: prefix.to_owned(),
        on_error: OnBackendError::Allow,
    })
}

fn scope(name: &str, rpm: Option<u64>, tpm: Option<u64>) -> Scope {
    Scope {
        name: name.to_owned(),
        limit: Limit { rpm, tpm },
    }
}

/// A verdict in the in-process limiter's terms.
#[allow(clippy::result_large_err)] // a test helper comparing with the limiter's own type
fn as_result(v: &Verdict, scopes: &[Scope]) -> Result<RateInfo, Denied> {
    v.outcome(scopes).map_err(|d| *d)
}

/// Durations equal to the microsecond (the in-process limiter counts nanoseconds, and its
/// float-to-duration conversions may round a nanosecond either way).
fn near(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) <= Duration::from_micros(1)
}

fn info_agrees(a: &RateInfo, b: &RateInfo) -> bool {
    let trio = |x: Option<(u64, u64, Duration)>, y: Option<(u64, u64, Duration)>| match (x, y) {
        (None, None) => true,
        // `remaining` may differ by one when a TAT sits exactly on an interval boundary.
        (Some(x), Some(y)) => x.0 == y.0 && x.1.abs_diff(y.1) <= 1 && near(x.2, y.2),
        _ => false,
    };
    trio(a.requests, b.requests) && trio(a.tokens, b.tokens)
}

fn agree(a: &Result<RateInfo, Denied>, b: &Result<RateInfo, Denied>) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => info_agrees(x, y),
        (Err(x), Err(y)) => {
            (&x.scope, x.what, x.limit) == (&y.scope, y.what, y.limit)
                && near(x.retry_after, y.retry_after)
                && info_agrees(&x.info, &y.info)
        }
        _ => false,
    }
}

/// Limits whose intervals are whole microseconds (they divide 60 000 000), so that the
/// script's microsecond arithmetic and the in-process nanosecond arithmetic agree exactly.
const EXACT: [u64; 12] = [1, 3, 5, 12, 60, 100, 120, 600, 1000, 1200, 6000, 60_000];

#[tokio::test]
async fn the_script_decides_exactly_like_the_in_process_limiter() {
    // A seeded xorshift drives random scopes, limits, arrival gaps, costs and corrections;
    // both limiters see the same virtual clock and must agree on every answer and header.
    let prefix = unique_prefix("equiv");
    let shared = limiter(&prefix);
    let local = Limiter::default();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Mostly limits that a run at a few requests a second meets now and then.
    let pick = |r: u64| EXACT[3 + (r % (EXACT.len() as u64 - 3)) as usize];
    let pool: Vec<Scope> = (0..5)
        .map(|i| {
            let r = next();
            let (rpm, tpm) = match r % 3 {
                0 => (Some(pick(next())), None),
                1 => (None, Some(pick(next()) * 100)),
                _ => (Some(pick(next())), Some(pick(next()) * 100)),
            };
            scope(&format!("s{i}"), rpm, tpm)
        })
        .collect();
    let base = Instant::now();
    let base_us: u64 = 1_800_000_000_000_000; // some time in 2027, in µs
    let mut t_us = 0u64;
    let mut admitted = 0;
    let mut outstanding: Vec<(Vec<Scope>, u64)> = Vec::new();
    for step in 0..600 {
        t_us += next() % 400_000;
        let now = base + Duration::from_micros(t_us);
        let now_us = Some(base_us + t_us);
        if next() % 4 == 0 && !outstanding.is_empty() {
            // Correct an earlier admission.
            let (scopes, est) =
                outstanding.swap_remove((next() % outstanding.len() as u64) as usize);
            let actual = next() % (2 * est + 2);
            local.reconcile(&scopes, est, actual, now);
            shared
                .reconcile(&scopes, est, actual, now_us)
                .await
                .unwrap();
            continue;
        }
        let mut scopes: Vec<Scope> = pool.iter().filter(|_| next() % 2 == 0).cloned().collect();
        if scopes.is_empty() {
            scopes.push(pool[0].clone());
        }
        let tokens = next() % 300;
        let want = local.admit(&scopes, tokens, now).map_err(|d| *d);
        let got = shared.admit(&scopes, tokens, now_us).await.unwrap();
        let got = as_result(&got, &scopes);
        assert!(
            agree(&got, &want),
            "step {step}: redis {got:?}, in process {want:?}"
        );
        if want.is_ok() {
            admitted += 1;
            outstanding.push((scopes, tokens));
        }
    }
    // The run exercised both answers.
    assert!((50..550).contains(&admitted), "admitted {admitted}");
    delete_prefix(shared.client(), &prefix).await;
}

#[tokio::test]
async fn a_refusal_in_one_scope_charges_none() {
    let prefix = unique_prefix("atomic");
    let shared = limiter(&prefix);
    let key = scope("key:a", Some(600), None);
    let team = scope("team:t", Some(60), None);
    let t0 = 1_800_000_000_000_000u64;
    let v = shared
        .admit(&[key.clone(), team.clone()], 1, Some(t0))
        .await
        .unwrap();
    assert_eq!(v.refused_by, None);
    let v = shared
        .admit(&[key.clone(), team.clone()], 1, Some(t0))
        .await
        .unwrap();
    assert_eq!((v.refused_by, v.what), (Some(1), "requests"));
    assert_eq!(v.wait, Duration::from_secs(1));
    // The key alone still has its burst of 10 minus the one admitted.
    let v = shared.admit(&[key], 1, Some(t0)).await.unwrap();
    let info = crate::limits::rate_info(&[scope("key:a", Some(600), None)], &v.aheads);
    assert_eq!(info.requests, Some((600, 8, Duration::from_millis(200))));
    delete_prefix(shared.client(), &prefix).await;
}

#[tokio::test]
async fn state_uses_redis_time_and_expires_when_idle() {
    let prefix = unique_prefix("ttl");
    let shared = limiter(&prefix);
    let s = [scope("key:clock", Some(1), Some(600))];
    // No clock given: the script reads the server's. One request per minute: the second is
    // refused for about a minute whatever this machine's clock says.
    assert_eq!(shared.admit(&s, 10, None).await.unwrap().refused_by, None);
    let v = shared.admit(&s, 10, None).await.unwrap();
    assert_eq!(v.refused_by, Some(0));
    assert!(
        v.wait > Duration::from_secs(55) && v.wait <= Duration::from_secs(60),
        "{:?}",
        v.wait
    );
    let key = format!("{prefix}:key:clock");
    let c = shared.client();
    // The TTL runs until both TATs are past (one minute for the request), plus a second.
    let Value::Int(ttl) = c.call(&[b"PTTL", key.as_bytes()]).await.unwrap() else {
        panic!()
    };
    assert!((55_000..=61_000).contains(&ttl), "ttl {ttl}");
    // A refund moves the tokens TAT back but never the expiry below the requests TAT.
    shared.reconcile(&s, 10, 0, None).await.unwrap();
    let Value::Int(ttl) = c.call(&[b"PTTL", key.as_bytes()]).await.unwrap() else {
        panic!()
    };
    assert!((55_000..=61_000).contains(&ttl), "ttl {ttl}");
    // A scope with a tiny interval expires within about a second of its last request.
    let fast = [scope("key:fast", Some(60_000), None)];
    shared.admit(&fast, 1, None).await.unwrap();
    let key = format!("{prefix}:key:fast");
    let Value::Int(ttl) = c.call(&[b"PTTL", key.as_bytes()]).await.unwrap() else {
        panic!()
    };
    assert!((900..=1_002).contains(&ttl), "ttl {ttl}");
    delete_prefix(c, &prefix).await;
}

#[tokio::test]
async fn workers_with_their_own_connections_share_one_limit() {
    let prefix = unique_prefix("workers");
    let a = limiter(&prefix);
    let b = a.for_worker();
    let s = [scope("team:shared", Some(600), None)];
    let t0 = 1_800_000_000_000_000u64;
    // A burst of 10 at one instant, whichever connection asks.
    let mut admitted = 0;
    for i in 0..30 {
        let l = if i % 2 == 0 { &a } else { &b };
        if l.admit(&s, 1, Some(t0)).await.unwrap().refused_by.is_none() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10);
    delete_prefix(a.client(), &prefix).await;
}

#[tokio::test]
async fn a_forgotten_script_is_sent_again() {
    let prefix = unique_prefix("noscript");
    let shared = limiter(&prefix);
    let s = [scope("key:x", Some(60), None)];
    assert_eq!(shared.admit(&s, 1, None).await.unwrap().refused_by, None);
    ADMIT.forget_on_server();
    assert_eq!(shared.admit(&s, 1, None).await.unwrap().refused_by, Some(0));
    delete_prefix(shared.client(), &prefix).await;
}

#[test]
fn malformed_verdicts_are_protocol_errors() {
    let ok = Value::Array(vec![
        Value::Int(0),
        Value::Int(0),
        Value::Int(0),
        Value::Int(5),
        Value::Int(0),
    ]);
    assert_eq!(
        parse_verdict(&ok, 1).unwrap().aheads[0].0,
        Duration::from_micros(5)
    );
    for bad in [
        Value::Int(1),
        Value::Array(vec![Value::Int(0)]),
        Value::Array(vec![
            Value::Int(2),
            Value::Int(1),
            Value::Int(1),
            Value::Int(0),
            Value::Int(0),
        ]),
        Value::Array(vec![
            Value::Int(-1),
            Value::Int(1),
            Value::Int(1),
            Value::Int(0),
            Value::Int(0),
        ]),
        Value::Array(vec![
            Value::Nil,
            Value::Int(1),
            Value::Int(1),
            Value::Int(0),
            Value::Int(0),
        ]),
    ] {
        assert!(parse_verdict(&bad, 1).is_err(), "{bad:?}");
    }
}
