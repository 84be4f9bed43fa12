//! Body policies, the queue/spill/replay logic, retention, and the queries (filters,
//! pagination, aggregates) on both backends.

#![allow(clippy::manual_is_multiple_of)] // `i % n == 0` reads as the fixture it describes.

use std::time::Duration;

use super::query::{self, Query};
use super::time::{format_rfc3339, parse_rfc3339, parse_time};
use super::*;
use crate::store::tests::{sqlite_config, temp_dir, PgSchema};
use crate::store::{Store, StoreConfig, Value};

// === body policies ===

#[test]
fn redaction_replaces_emails_secrets_and_long_numbers() {
    let text = "Mail jane.doe+work@example.co.uk, key sk-proj-AbCdEf0123456789xyz, card \
                4111 1111 1111 1111, phone +1 555-123-4567, AWS AKIAIOSFODNN7EXAMPLE, \
                token 3f9a8c7d6e5b4a39281706f5e4d3c2b1a0 ok.";
    let r = redact_text(text);
    for leaked in [
        "jane.doe",
        "sk-proj",
        "4111",
        "555-123",
        "AKIAIOSFODNN7EXAMPLE",
        "3f9a8c7d",
    ] {
        assert!(!r.contains(leaked), "{leaked} left in {r}");
    }
    assert!(r.contains("Mail [EMAIL],"), "{r}");
    assert!(r.contains("key [SECRET],"), "{r}");
    assert!(r.contains("card [NUMBER],"), "{r}");
    assert!(r.contains("ok."), "{r}");
}

#[test]
fn redaction_keeps_ordinary_text_and_model_names() {
    for keep in [
        "Say hello in 3 words",
        "claude-3-5-sonnet-20241022",
        "gpt-4o-mini",
        "The year 2024 was long",
        "version 1.2.3",
        "héllo wörld ✓",
    ] {
        assert_eq!(redact_text(keep), keep);
    }
}

#[test]
fn redacting_json_rewrites_string_values_only() {
    let body = r#"{"model":"demo","max_tokens":1234567,"messages":[{"role":"user","content":"I am bob@example.com, call 0612345678"}]}"#;
    let r = redact_body(body);
    let v: serde_json::Value = serde_json::from_str(&r).unwrap();
    assert_eq!(
        v["max_tokens"], 1_234_567,
        "numbers in JSON are not personal data"
    );
    assert_eq!(v["model"], "demo");
    assert_eq!(v["messages"][0]["content"], "I am [EMAIL], call [NUMBER]");
    // Not JSON: the whole text.
    assert_eq!(redact_body("from a@b.io"), "from [EMAIL]");
}

#[test]
fn policies_keep_cut_or_drop_bodies() {
    let body = "héllo wörld".as_bytes();
    assert_eq!(BodyPolicy::None.apply(body, 100), (None, false));
    assert_eq!(
        BodyPolicy::Full.apply(body, 100),
        (Some("héllo wörld".into()), false)
    );
    // Truncation never splits a character (é is two bytes).
    assert_eq!(
        BodyPolicy::Truncate(2).apply(body, 100),
        (Some("h".into()), true)
    );
    assert_eq!(
        BodyPolicy::Truncate(3).apply(body, 100),
        (Some("hé".into()), true)
    );
    // The global cap bounds every policy.
    assert_eq!(BodyPolicy::Full.apply(body, 5), (Some("héll".into()), true));
    assert_eq!(BodyPolicy::Truncate(7).name(), "truncate:7");
}

#[test]
fn streamed_text_is_assembled_up_to_the_cap() {
    let mut b = Bodies {
        policy: BodyPolicy::Full,
        cap: 8,
        ..Bodies::default()
    };
    let chunk = |t: &str| {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices":[{"delta":{"content":t}}]})
        )
    };
    b.note_stream(
        crate::providers::ClientApi::OpenAi,
        chunk("Hello").as_bytes(),
    );
    b.note_stream(crate::providers::ClientApi::OpenAi, b"data: [DONE]\n\n");
    assert_eq!(b.stream_text.as_deref(), Some("Hello"));
    b.note_stream(
        crate::providers::ClientApi::OpenAi,
        chunk(", world").as_bytes(),
    );
    assert_eq!(b.stream_text.as_deref(), Some("Hello, w"));
    assert!(b.stream_cut);
    let mut a = Bodies {
        policy: BodyPolicy::Redacted,
        cap: 100,
        ..Bodies::default()
    };
    let ev = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n";
    a.note_stream(crate::providers::ClientApi::Anthropic, ev.as_bytes());
    assert_eq!(a.stream_text.as_deref(), Some("Hi"));
}

// === records, queue, spill, replay ===

fn record(i: usize, started_at: i64) -> Record {
    Record {
        id: format!("rec-{i:06}").into(),
        request_id: format!("req-{i}").into(),
        started_at,
        principal: "virtual_key".into(),
        key_name: Some(
            if i % 2 == 0 {
                "team-a-key"
            } else {
                "team-b-key"
            }
            .into(),
        ),
        team: Some(if i % 2 == 0 { "a" } else { "b" }.into()),
        user: None,
        tags: if i % 3 == 0 {
            vec!["batch".into(), "nightly".into()]
        } else {
            vec!["interactive".into()]
        },
        client_api: "openai".into(),
        operation: "chat.completions".into(),
        alias: Some(if i % 4 == 0 { "fast" } else { "smart" }.into()),
        stream: i % 5 == 0,
        provider: Some("mock".into()),
        model: Some("mock-gpt".into()),
        deployment: Some("mock/mock-gpt".into()),
        route: Some("alias".into()),
        attempts: vec![Attempt {
            deployment: "mock/mock-gpt".into(),
            sent: true,
            status: Some(200),
            error_kind: None,
            latency_ms: Some(1.0),
        }],
        status: if i % 10 == 9 { 503 } else { 200 },
        outcome: if i % 10 == 9 { "failed" } else { "completed" }.into(),
        error_kind: (i % 10 == 9).then(|| "overloaded".into()),
        error_message: None,
        prompt_tokens: Some(10),
        completion_tokens: Some(i as u64),
        cached_tokens: Some(0),
        cost_nanos: (i % 2 == 0).then_some(1_000 * i as i64),
        cost_known: i % 2 == 0,
        // Latencies 1..=n ms, so the percentiles are known exactly.
        latency_ms: (i + 1) as f64,
        ttft_ms: Some(0.5),
        cache_outcome: None,
        guardrail_outcome: None,
        body_policy: "none".into(),
        request_body: None,
        response_body: None,
        bodies_truncated: false,
        usage_estimated: false,
    }
}

fn config(dir: &std::path::Path) -> ReqLogConfig {
    ReqLogConfig {
        flush_interval: Duration::from_millis(10),
        retry_interval: Duration::from_millis(20),
        spill_dir: dir.join("spill"),
        retention: Retention {
            max_age: None,
            max_rows: None,
            interval: Duration::from_secs(3600),
        },
        ..ReqLogConfig::default()
    }
}

async fn count(store: &Store) -> i64 {
    let r = store
        .query(
            "SELECT COUNT(*), COUNT(DISTINCT id) FROM requests".into(),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(r[0][0], r[0][1], "duplicate records");
    r[0][0].as_i64().unwrap()
}

/// Polls (never asserting on time) until `f` holds or 20 s passed.
async fn eventually(mut f: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn queued_records_are_stored_in_batches_and_flushed_at_shutdown() {
    let dir = temp_dir("queue");
    let store = Store::open(&sqlite_config(&dir)).await.unwrap();
    let log = ReqLog::with_store(config(&dir), store.clone(), true);
    for i in 0..1000 {
        log.submit(record(i, 1_000 + i as i64));
    }
    log.shutdown().await;
    assert_eq!(count(&store).await, 1000);
    let s = log.stats();
    assert_eq!((s.submitted, s.stored, s.dropped), (1000, 1000, 0));
    assert_eq!(s.queue_depth, 0);
    // After shutdown, records go straight to the spill, for the next start.
    log.submit(record(5000, 1));
    assert_eq!(log.stats().spilled, 1);
    let log2 = ReqLog::with_store(config(&dir), store.clone(), true);
    log2.shutdown().await;
    assert_eq!(count(&store).await, 1001);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A batch that fills is written at once, not when `flush_interval` (an hour here) ends; a
/// partial one waits for it. The writer sleeps while it gathers: the request that completes
/// a batch in the queue is what wakes it.
#[tokio::test]
async fn a_full_batch_is_written_without_waiting_for_the_flush_interval() {
    let dir = temp_dir("batchfull");
    let store = Store::open(&sqlite_config(&dir)).await.unwrap();
    let cfg = ReqLogConfig {
        batch_size: 8,
        flush_interval: Duration::from_secs(3600),
        ..config(&dir)
    };
    let log = ReqLog::with_store(cfg, store.clone(), true);
    // The first record wakes the writer, which then sleeps gathering the rest; each later one
    // is submitted after a yield so that the writer is asleep when the batch completes.
    for i in 0..8 {
        log.submit(record(i, 1_000));
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }
    eventually(|| log.stats().stored == 8).await;
    // Three more: a partial batch, still gathering.
    for i in 8..11 {
        log.submit(record(i, 1_000));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log.stats().stored, 8);
    log.shutdown().await;
    assert_eq!(count(&store).await, 11);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_full_queue_spills_instead_of_dropping() {
    let dir = temp_dir("full");
    let store = Store::open(&sqlite_config(&dir)).await.unwrap();
    let cfg = ReqLogConfig {
        queue_size: 4,
        ..config(&dir)
    };
    let log = ReqLog::with_store(cfg, store.clone(), true);
    // The writer cannot run while this (current-thread) test submits: the queue fills.
    for i in 0..500 {
        log.submit(record(i, 1_000));
    }
    let s = log.stats();
    assert!(s.spilled >= 496, "{s:?}");
    assert_eq!(s.dropped, 0);
    // The writer notices the overflow and replays it.
    eventually(|| log.stats().replayed >= s.spilled).await;
    log.shutdown().await;
    assert_eq!(count(&store).await, 500);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_spill_while_the_store_is_locked_and_replay_exactly_once() {
    let dir = temp_dir("outage");
    let cfg = sqlite_config(&dir);
    let store = Store::open(&cfg).await.unwrap();
    let log = ReqLog::with_store(config(&dir), store.clone(), true);
    for i in 0..100 {
        log.submit(record(i, 1_000));
    }
    eventually(|| log.stats().stored == 100).await;

    // Another connection holds the write lock: writes fail after the busy timeout.
    let StoreConfig::Sqlite { path, .. } = &cfg else {
        unreachable!()
    };
    let lock = rusqlite::Connection::open(path).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for i in 100..300 {
        log.submit(record(i, 2_000));
    }
    eventually(|| log.stats().spilled == 200).await;
    assert!(log.stats().store_errors > 0);
    // A record both stored and spilled (a commit whose answer was lost) must not double.
    log.spill.append(&[record(5, 1_000)]).unwrap();

    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    eventually(|| log.stats().replayed >= 201).await;
    log.shutdown().await;
    assert_eq!(count(&store).await, 300);
    assert!(!log.spill.has_backlog());
    assert_eq!(log.stats().dropped, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_spill_left_by_an_earlier_run_is_replayed_at_start() {
    let dir = temp_dir("restart");
    let cfg = config(&dir);
    let spill = spill::Spill::new(cfg.spill_dir.clone());
    let records: Vec<Record> = (0..700).map(|i| record(i, 3_000)).collect();
    spill.append(&records[..300]).unwrap();
    // An interrupted earlier replay left a rotated file, overlapping the active one.
    spill.rotate().unwrap();
    spill.append(&records[200..]).unwrap();
    // A crash in the middle of a write leaves half a line.
    std::fs::OpenOptions::new()
        .append(true)
        .open(cfg.spill_dir.join("reqlog-spill.jsonl"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"id\":\"rec-9"))
        .unwrap();
    let store = Store::open(&sqlite_config(&dir)).await.unwrap();
    let log = ReqLog::with_store(cfg, store.clone(), true);
    eventually(|| !log.spill.has_backlog()).await;
    log.shutdown().await;
    assert_eq!(count(&store).await, 700);
    // The torn line is reported as lost, not silently skipped.
    assert_eq!(log.stats().dropped, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_unwritable_spill_counts_and_reports_drops() {
    let dir = temp_dir("drop");
    let store = Store::open(&sqlite_config(&dir)).await.unwrap();
    // The spill "directory" is a file: nothing can be written there.
    let blocker = dir.join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let cfg = ReqLogConfig {
        queue_size: 1,
        spill_dir: blocker,
        ..config(&dir)
    };
    let log = ReqLog::with_store(cfg, store.clone(), true);
    for i in 0..10 {
        log.submit(record(i, 1_000));
    }
    let s = log.stats();
    assert_eq!(s.dropped, 9, "{s:?}");
    log.shutdown().await;
    assert_eq!(count(&store).await, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// SQLite stores a batch in runs of 16, 4 and 1 records: a batch that overlaps stored records
/// across runs of every size keeps each record exactly once.
#[tokio::test]
async fn batches_in_runs_of_every_size_store_each_record_once() {
    on_sqlite("runs", async |store: &Store| {
        let records: Vec<Record> = (0..47).map(|i| record(i, 1_000 + i as i64)).collect();
        writer::store_records(store, Arc::new(records[..20].to_vec()))
            .await
            .unwrap();
        // 37 records (16 + 16 + 4 + 1), the first 10 already stored.
        writer::store_records(store, Arc::new(records[10..].to_vec()))
            .await
            .unwrap();
        assert_eq!(count(store).await, 47);
        let rows = store
            .query(
                "SELECT id, COUNT(*) FROM requests GROUP BY id ORDER BY id".into(),
                vec![],
            )
            .await
            .unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
        let want: Vec<&str> = records.iter().map(|r| &*r.id).collect();
        assert_eq!(ids, want);
        assert!(rows.iter().all(|r| r[1].as_i64() == Some(1)));
    })
    .await;
}

#[tokio::test]
async fn retention_deletes_by_age_and_by_row_count() {
    let dir = temp_dir("retention");
    let store = Store::open(&sqlite_config(&dir)).await.unwrap();
    let now = crate::store::unix_millis();
    let day = 86_400_000;
    let records: Vec<Record> = (0..10).map(|i| record(i, now - (i as i64) * day)).collect();
    writer::store_records(&store, Arc::new(records[..].to_vec()))
        .await
        .unwrap();
    let w = |max_age, max_rows| writer::Writer {
        store: store.clone(),
        migrated: true,
        spill: std::sync::Arc::new(spill::Spill::new(dir.join("spill"))),
        counters: std::sync::Arc::default(),
        config: ReqLogConfig {
            retention: Retention {
                max_age,
                max_rows,
                interval: Duration::from_secs(60),
            },
            ..config(&dir)
        },
    };
    // Older than 7.5 days: records 8 and 9.
    w(Some(Duration::from_secs(7 * 86_400 + 43_200)), None)
        .retention()
        .await;
    assert_eq!(count(&store).await, 8);
    // The newest 3 are kept.
    w(None, Some(3)).retention().await;
    assert_eq!(count(&store).await, 3);
    let left = store
        .query("SELECT id FROM requests ORDER BY id".into(), vec![])
        .await
        .unwrap();
    let ids: Vec<&str> = left.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(ids, ["rec-000000", "rec-000001", "rec-000002"]);
    let _ = std::fs::remove_dir_all(&dir);
}

// === queries ===

fn q(pairs: &[(&str, &str)]) -> Query {
    Query::parse(pairs.iter().copied(), 10_000_000).unwrap()
}

async fn queries(store: &Store) {
    // 100 records, one a second from t=1,000,000 ms.
    let records: Vec<Record> = (0..100)
        .map(|i| record(i, 1_000_000 + i as i64 * 1000))
        .collect();
    writer::store_records(store, Arc::new(records[..].to_vec()))
        .await
        .unwrap();
    // Stored twice (a replay): still once.
    writer::store_records(store, Arc::new(records[..10].to_vec()))
        .await
        .unwrap();

    let ids = |rows: &[serde_json::Value]| -> Vec<String> {
        rows.iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Pagination walks every record once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut p = vec![("limit", "7")];
        if let Some(c) = &cursor {
            p.push(("cursor", c));
        }
        let (page, next) = query::list(store, &q(&p)).await.unwrap();
        seen.extend(ids(&page));
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let expected: Vec<String> = (0..100).rev().map(|i| format!("rec-{i:06}")).collect();
    assert_eq!(seen, expected);

    let list = |p: Vec<(&'static str, &'static str)>| async move {
        let mut p = p;
        p.push(("limit", "1000"));
        ids(&query::list(store, &q(&p)).await.unwrap().0)
    };
    let expect = |f: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..100)
            .rev()
            .filter(|i| f(*i))
            .map(|i| format!("rec-{i:06}"))
            .collect()
    };
    assert_eq!(list(vec![("alias", "fast")]).await, expect(&|i| i % 4 == 0));
    assert_eq!(list(vec![("team", "b")]).await, expect(&|i| i % 2 == 1));
    assert_eq!(
        list(vec![("key", "team-a-key")]).await,
        expect(&|i| i % 2 == 0)
    );
    assert_eq!(
        list(vec![("tag", "nightly")]).await,
        expect(&|i| i % 3 == 0)
    );
    assert_eq!(
        list(vec![("status", "5xx")]).await,
        expect(&|i| i % 10 == 9)
    );
    assert_eq!(
        list(vec![("status", "200")]).await,
        expect(&|i| i % 10 != 9)
    );
    assert_eq!(
        list(vec![("error_kind", "overloaded")]).await,
        expect(&|i| i % 10 == 9)
    );
    assert_eq!(
        list(vec![("min_latency_ms", "95")]).await,
        expect(&|i| i >= 94)
    );
    // Costs: 1000 nano-dollars × i for even i; at least 0.00005 USD = 50,000 nanos.
    assert_eq!(
        list(vec![("min_cost", "0.00005")]).await,
        expect(&|i| i % 2 == 0 && i >= 50)
    );
    // Time range: [1,010,000, 1,020,000) ms.
    assert_eq!(
        list(vec![("since", "1010000"), ("until", "1020000")]).await,
        expect(&|i| (10..20).contains(&i))
    );
    assert_eq!(
        list(vec![
            ("since", "1970-01-01T00:16:40Z"),
            ("team", "a"),
            ("alias", "smart")
        ])
        .await,
        expect(&|i| i % 2 == 0 && i % 4 != 0)
    );

    // One request in full, by record id or request id.
    let one = query::get(store, "req-42").await.unwrap().unwrap();
    assert_eq!(one["id"], "rec-000042");
    assert_eq!(one["attempts"][0]["deployment"], "mock/mock-gpt");
    assert_eq!(one["tags"], serde_json::json!(["batch", "nightly"]));
    assert_eq!(one["started_at"], "1970-01-01T00:17:22.000Z");
    assert!(query::get(store, "nope").await.unwrap().is_none());

    // Aggregates: all, by alias, by tag, by hour.
    let all = query::stats(store, &q(&[])).await.unwrap();
    assert_eq!(all.len(), 1);
    let a = &all[0];
    assert_eq!(a["count"], 100);
    assert_eq!(a["errors"], 10);
    assert_eq!(a["error_rate"], 0.1);
    assert_eq!(a["prompt_tokens"], 1000);
    assert_eq!(a["completion_tokens"], (0..100).sum::<i64>());
    assert_eq!(
        a["cost_nanos"],
        (0..100)
            .filter(|i| i % 2 == 0)
            .map(|i| 1000 * i)
            .sum::<i64>()
    );
    assert_eq!(a["cost_unknown"], 50);
    // Latencies are 1..=100: nearest-rank percentiles are exact.
    assert_eq!(
        (
            a["p50_ms"].as_f64(),
            a["p95_ms"].as_f64(),
            a["p99_ms"].as_f64()
        ),
        (Some(50.0), Some(95.0), Some(99.0))
    );

    let by = query::stats(store, &q(&[("by", "alias,status")]))
        .await
        .unwrap();
    let find = |alias: &str, status: i64| {
        by.iter()
            .find(|g| g["alias"] == alias && g["status"] == status)
            .unwrap()["count"]
            .as_i64()
            .unwrap()
    };
    // fast: i % 4 == 0 → 25 requests, of which i % 10 == 9 never (i even).
    assert_eq!(find("fast", 200), 25);
    assert_eq!(find("smart", 200), 65);
    assert_eq!(find("smart", 503), 10);
    assert_eq!(by.len(), 3);

    let tags = query::stats(store, &q(&[("by", "tag")])).await.unwrap();
    let tag = |t: &str| {
        tags.iter().find(|g| g["tag"] == t).unwrap()["count"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(
        (tag("batch"), tag("nightly"), tag("interactive")),
        (34, 34, 66)
    );

    // The 100 records span t = 1,000 s .. 1,099 s: one hour bucket, starting at 0.
    let hours = query::stats(store, &q(&[("bucket", "hour"), ("by", "team")]))
        .await
        .unwrap();
    assert_eq!(hours.len(), 2);
    assert_eq!(hours[0]["bucket"], "1970-01-01T00:00:00.000Z");
    assert_eq!(hours[0]["team"], "a");
    assert_eq!(hours[0]["count"], 50);
    // The p50 of team b's latencies (2, 4, ..., 100) by nearest rank is the 25th: 50.
    assert_eq!(hours[1]["p50_ms"].as_f64(), Some(50.0));

    // Nothing matches: no groups.
    assert!(query::stats(store, &q(&[("team", "zzz")]))
        .await
        .unwrap()
        .is_empty());
}

/// Runs `f` on a fresh SQLite store, then removes it.
async fn on_sqlite(name: &str, f: impl AsyncFnOnce(&Store)) {
    let dir = temp_dir(name);
    let store = Store::open(&sqlite_config(&dir)).await.unwrap();
    f(&store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `f` on a fresh PostgreSQL schema, then drops it.
async fn on_postgres(name: &str, f: impl AsyncFnOnce(&Store)) {
    let schema = PgSchema::new(name).await;
    let store = Store::open(&schema.config()).await.unwrap();
    f(&store).await;
    schema.drop().await;
}

#[tokio::test]
async fn sqlite_filters_pagination_and_aggregates() {
    on_sqlite("query", queries).await;
}

#[tokio::test]
async fn postgres_filters_pagination_and_aggregates() {
    on_postgres("query", queries).await;
}

/// The ids of the records a list query with `pairs` returns, sorted.
async fn listed_ids(store: &Store, pairs: &[(&str, &str)]) -> Vec<String> {
    let (rows, _) = query::list(store, &q(pairs)).await.unwrap();
    let mut ids: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Master-key, keyless and virtual-key records, one virtual key named like a principal: the
/// key and team filters find exactly their own records, though the key and team indexes hold
/// only the records that have a key or a team.
async fn key_filters(store: &Store) {
    let keyed = |i: usize, key: &str, team: Option<&str>| Record {
        key_name: Some(key.into()),
        team: team.map(Into::into),
        ..record(i, 1_000_000 + i as i64)
    };
    let unkeyed = |i: usize, principal: &'static str| Record {
        principal: principal.into(),
        key_name: None,
        team: None,
        ..record(i, 1_000_000 + i as i64)
    };
    let records = vec![
        unkeyed(0, "master"),
        unkeyed(1, "anonymous"),
        keyed(2, "ci", Some("a")),
        keyed(3, "master", None),
        unkeyed(4, "master"),
        keyed(5, "ci", None),
    ];
    writer::store_records(store, Arc::new(records))
        .await
        .unwrap();
    let ids = |pairs: &'static [(&'static str, &'static str)]| listed_ids(store, pairs);
    let rec = |is: &[usize]| -> Vec<String> { is.iter().map(|i| format!("rec-{i:06}")).collect() };
    assert_eq!(ids(&[("key", "master")]).await, rec(&[0, 3, 4]));
    assert_eq!(ids(&[("key", "anonymous")]).await, rec(&[1]));
    assert_eq!(ids(&[("key", "ci")]).await, rec(&[2, 5]));
    assert_eq!(ids(&[("team", "a")]).await, rec(&[2]));
    assert!(ids(&[("key", "virtual_key")]).await.is_empty());
}

#[tokio::test]
async fn sqlite_key_filters_use_the_partial_indexes() {
    on_sqlite("keyidx", async |store: &Store| {
        key_filters(store).await;
        // The shapes `query` writes for a virtual key's and a team's records.
        for (sql, index) in [
            ("r.key_name = ?1 AND r.started_at >= ?2", "requests_key"),
            ("r.team = ?1 AND r.started_at >= ?2", "requests_team"),
        ] {
            let plan = store
                .query(
                    format!("EXPLAIN QUERY PLAN SELECT r.id FROM requests AS r WHERE {sql}"),
                    vec![Value::Text("ci".into()), Value::Int(0)],
                )
                .await
                .unwrap();
            let detail: Vec<&str> = plan.iter().filter_map(|r| r.last()?.as_str()).collect();
            assert!(
                detail.iter().any(|d| d.contains(index)),
                "{sql}: {detail:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn postgres_key_filters() {
    on_postgres("keyidx", key_filters).await;
}

/// Records keyed by a generated request id, client request ids sent twice, a classifier
/// judge's record sharing a generated request id, and a client request id that equals another
/// record's id: the request-id filter and the lookup find exactly the records with that request
/// id, though the request-id index holds only those whose id differs from it.
async fn request_id_lookups(store: &Store) {
    let with = |i: usize, id: &str, request_id: &str| Record {
        id: id.into(),
        request_id: request_id.into(),
        ..record(i, 2_000_000 + i as i64)
    };
    let records = vec![
        with(0, "gen-1", "gen-1"),
        with(1, "rec-b", "client-x"),
        with(2, "rec-c", "client-x"),
        with(3, "rec-d", "gen-1"),
        with(4, "rec-e", "rec-b"),
    ];
    writer::store_records(store, Arc::new(records))
        .await
        .unwrap();
    let ids = |request_id: &'static str| async move {
        listed_ids(store, &[("request_id", request_id)]).await
    };
    assert_eq!(ids("gen-1").await, ["gen-1", "rec-d"]);
    assert_eq!(ids("client-x").await, ["rec-b", "rec-c"]);
    assert_eq!(ids("rec-b").await, ["rec-e"]);
    assert!(ids("rec-c").await.is_empty());
    let got = |id: &'static str| async move {
        let one = query::get(store, id).await.unwrap().unwrap();
        one["id"].as_str().unwrap().to_owned()
    };
    // A record's own id first, else the newest record with that request id.
    assert_eq!(got("gen-1").await, "gen-1");
    assert_eq!(got("client-x").await, "rec-c");
    assert_eq!(got("rec-b").await, "rec-b");
    assert!(query::get(store, "nope").await.unwrap().is_none());
}

#[tokio::test]
async fn sqlite_request_id_lookups_use_the_indexes() {
    on_sqlite("reqid", async |store: &Store| {
        request_id_lookups(store).await;
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT r.id FROM requests AS r WHERE {}",
            query::request_id_is("?1")
        );
        let plan = store
            .query(sql, vec![Value::Text("client-x".into())])
            .await
            .unwrap();
        let detail: Vec<&str> = plan.iter().filter_map(|r| r.last()?.as_str()).collect();
        // The primary key's index for one arm, the partial request-id index for the other;
        // never a scan of the table.
        assert!(
            detail.iter().any(|d| d.contains("requests_request_id"))
                && detail
                    .iter()
                    .any(|d| d.contains("sqlite_autoindex_requests"))
                && !detail.iter().any(|d| d.starts_with("SCAN")),
            "{detail:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn postgres_request_id_lookups() {
    on_postgres("reqid", request_id_lookups).await;
}

/// The attempts column's JSON, written by hand, is the text `serde_json` gives.
#[test]
fn attempts_json_is_serde_json_text() {
    let a = |deployment: &str, sent, status, kind: Option<&str>, ms| Attempt {
        deployment: deployment.into(),
        sent,
        status,
        error_kind: kind.map(Into::into),
        latency_ms: ms,
    };
    let lists = [
        vec![],
        vec![a("mock/mock-gpt", true, Some(200), None, Some(1.25))],
        vec![
            a(
                "openai/gpt-4o",
                true,
                Some(429),
                Some("rate_limited"),
                Some(0.1),
            ),
            a(
                "fallback:cheap",
                false,
                None,
                Some("skipped: breaker open"),
                None,
            ),
            a(
                "q\"uote\\back\nline\u{1}/é",
                true,
                Some(0),
                None,
                Some(f64::NAN),
            ),
            a("degraded", true, Some(65535), Some(""), Some(1e-7)),
            a("x", false, Some(7), None, Some(f64::INFINITY)),
            a("y", true, None, None, Some(123456789.0)),
        ],
    ];
    for list in lists {
        assert_eq!(
            Attempt::list_json(&list),
            serde_json::to_string(&list).unwrap()
        );
    }
}

#[test]
fn query_parameters_are_checked_by_name() {
    let now = 100 * 3_600_000;
    let q = Query::parse(
        [
            ("since", "24h"),
            ("status", "4xx"),
            ("by", "alias, model"),
            ("bucket", "day"),
        ],
        now,
    )
    .unwrap();
    assert_eq!(q.filter.since, Some(now - 24 * 3_600_000));
    assert_eq!(q.filter.status, Some(query::StatusFilter::Class(4)));
    assert_eq!(q.by, vec![query::Dim::Alias, query::Dim::Model]);
    for (k, v, needle) in [
        ("limit", "0", "`limit`"),
        ("status", "abc", "`status`"),
        ("by", "colour", "unknown dimension `colour`"),
        ("since", "yesterday", "`since`"),
        ("bucket", "week", "`bucket`"),
        ("min_cost", "-1", "`min_cost`"),
        ("nope", "1", "unknown parameter `nope`"),
    ] {
        let e = Query::parse([(k, v)], now).unwrap_err();
        assert!(e.contains(needle), "{k}={v}: {e}");
    }
}

#[test]
fn timestamps_round_trip() {
    for ms in [0, 1_000, 951_782_400_000, 1_795_000_000_123, -86_400_000] {
        assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms), "{ms}");
    }
    assert_eq!(format_rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(parse_rfc3339("2000-02-29"), Some(951_782_400_000));
    assert_eq!(
        parse_rfc3339("2000-02-29T02:00:00+02:00"),
        Some(951_782_400_000)
    );
    assert_eq!(
        parse_rfc3339("2000-02-29T00:00:00.5Z"),
        Some(951_782_400_500)
    );
    assert_eq!(parse_rfc3339("2000-13-01T00:00:00Z"), None);
    assert_eq!(parse_time("7d", 10 * 86_400_000), Ok(3 * 86_400_000));
}

#[test]
fn config_reads_policies_store_and_admin_and_names_bad_keys() {
    let env =
        std::collections::HashMap::from([("PGURL".to_owned(), "postgres://u:pw@db/x".to_owned())]);
    let cfg = crate::config::from_yaml(
        "providers:\n  p: {type: mock}\nmodels:\n  a:\n    log_bodies: {truncate: 1KiB}\n    deployments: [{provider: p, model: m}]\n  b:\n    log_bodies: redacted\n    deployments: [{provider: p, model: m}]\nstore:\n  postgres: ${PGURL}\nrequest_log:\n  bodies: full\n  retention: {max_age: 7d, max_rows: 5}\nadmin:\n  key: a-long-enough-admin-key\n",
        &env,
    )
    .unwrap();
    assert_eq!(cfg.request_log.bodies, BodyPolicy::Full);
    assert_eq!(
        cfg.request_log.alias_bodies["a"],
        BodyPolicy::Truncate(1024)
    );
    assert_eq!(cfg.request_log.alias_bodies["b"], BodyPolicy::Redacted);
    assert_eq!(
        cfg.request_log.retention.max_age,
        Some(Duration::from_secs(7 * 86_400))
    );
    assert_eq!(cfg.request_log.retention.max_rows, Some(5));
    assert_eq!(
        cfg.request_log.spill_dir,
        std::path::PathBuf::from("switchyard-spill")
    );
    assert!(matches!(cfg.store, StoreConfig::Postgres { .. }));
    assert!(!format!("{:?}", cfg.store).contains("pw"));
    assert!(cfg.admin.key_sha256.is_some());
    // The default: SQLite next to the working directory, its spill beside it.
    let d = crate::config::from_yaml("", &env).unwrap();
    assert!(
        matches!(d.store, StoreConfig::Sqlite { ref path, .. } if path.as_os_str() == "switchyard.db")
    );
    assert_eq!(
        d.request_log.spill_dir,
        std::path::PathBuf::from("switchyard.db-spill")
    );
    assert!(d.request_log.enabled && d.admin.key_sha256.is_none());

    for (yaml, needle) in [
        (
            "store: {sqlite: a.db, postgres: \"postgres://x\"}\n",
            "`store`",
        ),
        (
            "request_log:\n  bodies: everything\n",
            "unknown body policy `everything`",
        ),
        (
            "request_log:\n  bodies: {keep: 1}\n",
            "unexpected key `keep`",
        ),
        ("request_log:\n  batch_size: 0\n", "request_log.batch_size"),
        (
            "request_log:\n  retention: {max_rows: 0}\n",
            "request_log.retention.max_rows",
        ),
        ("admin:\n  key: short\n", "admin.key"),
        (
            "admin:\n  listen: \"127.0.0.1:4001\"\n",
            "needs `admin.key`",
        ),
        (
            "store:\n  postgres: \"postgres://h:notaport/db\"\n",
            "store.postgres",
        ),
    ] {
        let e = crate::config::from_yaml(yaml, &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{yaml}: {e}");
    }
}
