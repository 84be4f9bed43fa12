use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use tokio::time::Instant;

use super::config::{CacheConfig, RawCache};
use super::memory::Lru;
use super::{Control, Entry, Key};
use crate::providers::Operation;

fn entry(body: &str) -> Entry {
    Entry {
        content_type: "application/json".into(),
        provider: Some("mock".into()),
        model: Some("mock-gpt".into()),
        stored_ms: 1_700_000_000_123,
        body: Bytes::from(body.to_owned()),
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn keys_separate_tenants_operations_bodies_and_answer_changing_headers() {
    let none = HeaderMap::new();
    let body = br#"{"model":"demo","messages":[]}"#;
    let base = Key::of("team:a", Operation::ChatCompletions, &none, body);
    assert_eq!(
        base,
        Key::of("team:a", Operation::ChatCompletions, &none, body)
    );
    let different = [
        Key::of("team:b", Operation::ChatCompletions, &none, body),
        Key::of("team:a", Operation::Messages, &none, body),
        Key::of(
            "team:a",
            Operation::ChatCompletions,
            &none,
            br#"{"model":"demo","messages":[] }"#,
        ),
        Key::of(
            "team:a",
            Operation::ChatCompletions,
            &headers(&[("anthropic-beta", "x")]),
            body,
        ),
        // Length prefixes: moving a byte from the tenant to the body is another key.
        Key::of("team:", Operation::ChatCompletions, &none, b"a{}"),
    ];
    for k in different {
        assert_ne!(k, base);
    }
    assert_ne!(
        Key::of("team:", Operation::ChatCompletions, &none, b"a{}"),
        Key::of("team:a", Operation::ChatCompletions, &none, b"{}")
    );
    // Headers that do not change an answer are not part of it.
    assert_eq!(
        base,
        Key::of(
            "team:a",
            Operation::ChatCompletions,
            &headers(&[("x-request-id", "r1"), ("authorization", "Bearer k")]),
            body
        )
    );
    assert_eq!(base.hex().len(), 64);
    assert!(base.hex().bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn entries_survive_encoding_and_anything_else_decodes_to_nothing() {
    let mut e = entry("{\"id\":\"x\",\"é\":1}");
    assert_eq!(Entry::decode(&e.encode()), Some(e.clone()));
    e.provider = None;
    e.model = None;
    e.body = Bytes::new();
    assert_eq!(Entry::decode(&e.encode()), Some(e.clone()));
    let good = e.encode();
    for cut in 0..good.len() - 1 {
        // Every truncation inside the header is refused (the body may be any length).
        if cut < good.len() - e.body.len() {
            assert_eq!(Entry::decode(&good[..cut]), None, "cut at {cut}");
        }
    }
    assert_eq!(Entry::decode(b"SYC0........"), None);
    assert_eq!(Entry::decode(b""), None);
    assert_eq!(e.age_secs(e.stored_ms + 2_999), 2);
    assert_eq!(e.age_secs(0), 0);
}

#[test]
fn clients_steer_the_cache_with_headers() {
    type Case<'a> = (&'a [(&'static str, &'a str)], Option<Control>);
    let cases: &[Case<'_>] = &[
        (&[], Some(Control::Normal)),
        (&[("x-switchyard-cache", "refresh")], Some(Control::Refresh)),
        (&[("x-switchyard-cache", "OFF")], Some(Control::Off)),
        (&[("x-switchyard-cache", " on ")], Some(Control::Normal)),
        (&[("x-switchyard-cache", "maybe")], None),
        (&[("cache-control", "no-cache")], Some(Control::Refresh)),
        (
            &[("cache-control", "max-age=0, no-store")],
            Some(Control::Off),
        ),
        (&[("cache-control", "max-age=60")], Some(Control::Normal)),
        // Our own header wins over the standard one.
        (
            &[("cache-control", "no-store"), ("x-switchyard-cache", "on")],
            Some(Control::Normal),
        ),
    ];
    for (pairs, want) in cases {
        let got = Control::from_headers(&headers(pairs));
        match want {
            Some(c) => assert_eq!(got.ok(), Some(*c), "{pairs:?}"),
            None => {
                let err = got.expect_err("an unknown value is refused");
                assert!(err.to_string().contains("x-switchyard-cache"), "{err}");
            }
        }
    }
}

fn key(n: u8) -> Key {
    Key([n; 32])
}

#[test]
fn the_lru_expires_entries_and_evicts_the_least_recently_used() {
    let t0 = Instant::now();
    let later = t0 + Duration::from_secs(60);
    let weight = entry("0123456789").weight();
    let mut lru = Lru::new(weight * 3);
    lru.put(key(1), entry("0123456789"), later);
    lru.put(key(2), entry("0123456789"), later);
    lru.put(key(3), entry("0123456789"), later);
    assert_eq!((lru.len(), lru.bytes()), (3, weight * 3));
    // Using 1 makes 2 the coldest, so the fourth entry evicts 2.
    assert!(lru.get(&key(1), t0).is_some());
    lru.put(key(4), entry("0123456789"), later);
    assert_eq!(lru.len(), 3);
    assert!(lru.get(&key(2), t0).is_none());
    for k in [1, 3, 4] {
        assert!(lru.get(&key(k), t0).is_some(), "{k}");
    }
    // Expired at its deadline, and gone from the accounting.
    assert!(lru.get(&key(1), later).is_none());
    assert_eq!((lru.len(), lru.bytes()), (2, weight * 2));
    // Replacing an entry does not count it twice.
    lru.put(key(3), entry("0123456789"), later);
    assert_eq!((lru.len(), lru.bytes()), (2, weight * 2));
    // Larger than the whole cache: not kept, nothing evicted.
    lru.put(key(9), entry(&"x".repeat(weight * 3)), later);
    assert_eq!(lru.len(), 2);
    assert!(lru.get(&key(9), t0).is_none());
}

fn problems(yaml: &str) -> Vec<(String, String)> {
    let raw: RawCache = serde_yaml_ng::from_str(yaml).unwrap();
    match CacheConfig::from_raw(&raw) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

#[test]
fn config_is_validated_with_the_bad_key_named() {
    let ok: RawCache = serde_yaml_ng::from_str("enabled: true\nttl: 1h\nmodels: [demo]").unwrap();
    let c = CacheConfig::from_raw(&ok).unwrap();
    assert!(c.enabled);
    assert_eq!(c.ttl, Duration::from_secs(3600));
    assert!(c.models.as_ref().unwrap().contains("demo"));
    let defaults = CacheConfig::from_raw(&RawCache::default()).unwrap();
    assert!(!defaults.enabled);
    assert_eq!(defaults.ttl, super::config::DEFAULT_TTL);

    let cases: &[(&str, &str)] = &[
        ("ttl: 0s", "ttl"),
        ("ttl: 31d", "ttl"),
        ("max_entry_size: 0", "max_entry_size"),
        ("max_size: 1KiB", "max_size"),
        ("redis_url: redis://127.0.0.1", "redis_url"),
        ("backend: redis", "redis_url"),
        ("backend: redis\nredis_url: http://x", "redis_url"),
        (
            "backend: redis\nredis_url: redis://127.0.0.1\nmax_size: 1MiB",
            "max_size",
        ),
        (
            "backend: redis\nredis_url: redis://127.0.0.1\nredis_timeout: 10s",
            "redis_timeout",
        ),
        (
            "backend: redis\nredis_url: redis://127.0.0.1\nredis_prefix: 'a b'",
            "redis_prefix",
        ),
        ("models: [demo, ' ']", "models[1]"),
    ];
    for (yaml, key) in cases {
        let p = problems(yaml);
        assert!(p.iter().any(|(k, _)| k == key), "{yaml}: {p:?}");
    }
    assert!(serde_yaml_ng::from_str::<RawCache>("enable: true").is_err());
}
