use std::time::Duration;

use super::*;

/// The Redis every test environment has (see the helper brief); tests use their own keys.
pub(crate) const LOCAL: &str = "redis://127.0.0.1:6379";

/// A key prefix no other test (or test run) uses.
pub(crate) fn unique_prefix(tag: &str) -> String {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    format!("switchyard-test:{tag}:{:016x}", u64::from_le_bytes(b))
}

pub(crate) fn local(timeout_ms: u64) -> Client {
    Client::new(
        RedisUrl::parse(LOCAL).unwrap(),
        Duration::from_millis(timeout_ms),
    )
}

/// Deletes every key under `prefix` (and nothing else).
pub(crate) async fn delete_prefix(client: &Client, prefix: &str) {
    let pattern = format!("{prefix}*");
    let mut cursor = b"0".to_vec();
    loop {
        let v = client
            .call(&[
                b"SCAN",
                &cursor,
                b"MATCH",
                pattern.as_bytes(),
                b"COUNT",
                b"1000",
            ])
            .await
            .unwrap();
        let Value::Array(parts) = v else {
            panic!("{v:?}")
        };
        let [Value::Data(next), Value::Array(keys)] = &parts[..] else {
            panic!("{parts:?}")
        };
        for k in keys {
            if let Value::Data(k) = k {
                client.call(&[b"DEL", k]).await.unwrap();
            }
        }
        if next == b"0" {
            break;
        }
        cursor = next.clone();
    }
}

#[test]
fn encodes_commands_as_arrays_of_bulk_strings() {
    let mut out = Vec::new();
    encode(&mut out, &[b"SET", b"k", b""]);
    assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
}

#[test]
fn parses_every_reply_type_and_waits_for_more_bytes() {
    let all: &[u8] =
        b"+OK\r\n-ERR bad\r\n:-42\r\n$5\r\nhe\r\no\r\n$-1\r\n*2\r\n:1\r\n*1\r\n$0\r\n\r\n*-1\r\n";
    let mut at = 0;
    let mut got = Vec::new();
    while at < all.len() {
        // Every strict prefix of the next reply asks for more bytes.
        let (v, used) = parse(&all[at..]).unwrap().unwrap();
        for cut in 0..used {
            assert_eq!(parse(&all[at..at + cut]).unwrap(), None, "cut {cut}");
        }
        got.push(v);
        at += used;
    }
    assert_eq!(
        got,
        [
            Value::Status("OK".into()),
            Value::Error("ERR bad".into()),
            Value::Int(-42),
            Value::Data(b"he\r\no".to_vec()),
            Value::Nil,
            Value::Array(vec![
                Value::Int(1),
                Value::Array(vec![Value::Data(Vec::new())])
            ]),
            Value::Nil,
        ]
    );
}

#[test]
fn rejects_what_is_not_resp() {
    assert!(parse(b"?what\r\n").is_err());
    assert!(parse(b":12a\r\n").is_err());
    assert!(parse(b"$3\r\nabcXY").is_err());
    assert!(parse(format!("${}\r\n", MAX_BULK + 1).as_bytes()).is_err());
    let deep = "*1\r\n".repeat(MAX_DEPTH + 2) + ":1\r\n";
    assert!(parse(deep.as_bytes()).is_err());
}

#[test]
fn urls_parse_and_never_show_the_password() {
    let u = RedisUrl::parse("redis://:s%40cret@cache.internal:6380/2").unwrap();
    assert_eq!(u.host, "cache.internal");
    assert_eq!((u.port, u.db), (6380, 2));
    assert_eq!(u.password.as_ref().map(Secret::expose), Some("s@cret"));
    assert_eq!(u.username, None);
    assert_eq!(u.describe(), "redis://cache.internal:6380/2");
    assert!(!format!("{u:?}").contains("cret"));

    let u = RedisUrl::parse("redis://gw:pw@[::1]").unwrap();
    assert_eq!((u.host.as_str(), u.port, u.db), ("::1", 6379, 0));
    assert_eq!(u.username.as_deref(), Some("gw"));
    assert_eq!(u.describe(), "redis://[::1]:6379/0");

    for bad in [
        "s3cr3t@127.0.0.1:6379",
        "rediss://:s3cr3t@cache",
        "http://:s3cr3t@cache",
        "redis://:s3cr3t@",
        "redis://:s3cr3t@cache:0",
        "redis://:s3cr3t@cache:99999",
        "redis://:s3cr3t@cache/x",
        "redis://:s3cr3t@cache?db=1",
        "redis://s3cr3t@cache",
        "redis://:s3cr3t%zz@cache",
        "redis://:s3cr3t@[::1",
    ] {
        let e = RedisUrl::parse(bad).unwrap_err();
        assert!(!e.contains("s3cr3t") && !e.contains("cache"), "{bad}: {e}");
    }
}

#[tokio::test]
async fn talks_to_a_real_redis_pipelined() {
    let c = local(2000);
    let prefix = unique_prefix("resp");
    assert_eq!(
        c.call(&[b"PING"]).await.unwrap(),
        Value::Status("PONG".into())
    );
    // Many concurrent calls share one connection and each gets its own reply.
    let key = |i: usize| format!("{prefix}:{i}");
    let sets = (0..200).map(|i| {
        let k = key(i);
        let c = &c;
        async move {
            // With a TTL, so a failed run leaves nothing behind for long.
            c.call(&[b"SET", k.as_bytes(), i.to_string().as_bytes(), b"EX", b"60"])
                .await
        }
    });
    for r in futures_join_all(sets).await {
        assert_eq!(r.unwrap(), Value::Status("OK".into()));
    }
    let gets = (0..200).map(|i| {
        let k = key(i);
        let c = &c;
        async move { c.call(&[b"GET", k.as_bytes()]).await }
    });
    for (i, r) in futures_join_all(gets).await.into_iter().enumerate() {
        assert_eq!(r.unwrap(), Value::Data(i.to_string().into_bytes()));
    }
    let e = c.call(&[b"NOSUCHCOMMAND"]).await.unwrap_err();
    assert!(
        matches!(&e, Error::Server(m) if m.starts_with("ERR")),
        "{e:?}"
    );
    // The connection is still good after an error reply.
    assert_eq!(
        c.call(&[b"GET", key(7).as_bytes()]).await.unwrap(),
        Value::Data(b"7".to_vec())
    );
    delete_prefix(&c, &prefix).await;
    assert_eq!(
        c.call(&[b"EXISTS", key(7).as_bytes()]).await.unwrap(),
        Value::Int(0)
    );
}

/// Runs futures concurrently on this task (no extra dependency for `join_all`).
pub(crate) async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (f, slot) in set.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}

#[tokio::test]
async fn a_wrong_password_or_database_is_an_error_without_the_password() {
    let c = Client::new(
        RedisUrl::parse("redis://:not-the-password-xyz@127.0.0.1:6379").unwrap(),
        Duration::from_secs(2),
    );
    let e = c.call(&[b"PING"]).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    assert!(e.to_string().contains("authentication failed"), "{e}");
    assert!(!e.to_string().contains("xyz"), "{e}");
    let c = Client::new(
        RedisUrl::parse("redis://127.0.0.1:6379/100000").unwrap(),
        Duration::from_secs(2),
    );
    let e = c.call(&[b"PING"]).await.unwrap_err();
    assert!(e.to_string().contains("SELECT 100000 failed"), "{e}");
}

#[tokio::test]
async fn a_closed_port_fails_fast_then_backs_off() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = Client::new(
        RedisUrl::parse(&format!("redis://127.0.0.1:{port}")).unwrap(),
        Duration::from_secs(5),
    );
    let e = c.call(&[b"PING"]).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    // While backing off, calls fail at once (not after the 5 s timeout).
    let started = tokio::time::Instant::now();
    let e = c.call(&[b"PING"]).await.unwrap_err();
    assert!(e.to_string().contains("reconnecting"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A server that accepts connections and never answers; counts the connections.
async fn silent_server() -> (
    u16,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&accepted);
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(s);
        }
    });
    (port, accepted, task)
}

#[tokio::test]
async fn a_silent_server_times_calls_out_and_gets_reconnected() {
    let (port, accepted, server) = silent_server().await;
    let c = Client::new(
        RedisUrl::parse(&format!("redis://127.0.0.1:{port}")).unwrap(),
        Duration::from_millis(50),
    );
    let e = c.call(&[b"PING"]).await.unwrap_err();
    assert_eq!(e, Error::Timeout(Duration::from_millis(50)));
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    // After `max(1s, 20 × timeout)` without an answer the connection is dropped; the next
    // call opens a new one (and times out again: the server is still silent).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let e = c.call(&[b"PING"]).await.unwrap_err();
    assert_eq!(e, Error::Timeout(Duration::from_millis(50)));
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    server.abort();
}

#[tokio::test]
async fn a_call_that_timed_out_before_it_was_sent_never_runs() {
    // A server that is slow to accept the login: calls queue while connecting, time out,
    // and must not be written once the connection is up.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            let got = buf[..n].to_vec();
            // Log-in: delay the answer past the client's timeout.
            if got.windows(4).any(|w| w == b"AUTH") {
                tokio::time::sleep(Duration::from_millis(300)).await;
                s.write_all(b"+OK\r\n").await.unwrap();
                continue;
            }
            let _ = seen_tx.send(got);
            s.write_all(b"+PONG\r\n").await.unwrap();
        }
    });
    let c = Client::new(
        RedisUrl::parse(&format!("redis://:pw@127.0.0.1:{port}")).unwrap(),
        Duration::from_millis(100),
    );
    let e = c.call(&[b"SET", b"stale", b"1"]).await.unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        c.call(&[b"PING"]).await.unwrap(),
        Value::Status("PONG".into())
    );
    let first = seen_rx.recv().await.unwrap();
    assert!(
        first.windows(4).any(|w| w == b"PING") && !first.windows(5).any(|w| w == b"stale"),
        "{}",
        String::from_utf8_lossy(&first)
    );
    server.abort();
}

#[tokio::test]
async fn scripts_load_once_and_fall_back_to_eval_on_noscript() {
    static ECHO: Script = Script::new("return {KEYS[1], ARGV[1]}");
    let c = local(2000);
    let want = Value::Array(vec![Value::Data(b"k".to_vec()), Value::Data(b"v".to_vec())]);
    assert_eq!(ECHO.run(&c, &[b"k"], &[b"v"]).await.unwrap(), want);
    assert!(ECHO.sha.lock().is_some());
    // The server "forgot" the script: EVAL sends it whole and the answer is the same.
    ECHO.forget_on_server();
    assert_eq!(ECHO.run(&c, &[b"k"], &[b"v"]).await.unwrap(), want);
}

#[tokio::test]
async fn a_connection_closed_by_the_server_is_reopened_on_the_next_call() {
    // Answers one command per connection, then hangs up (a restart, an idle timeout).
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&accepted);
    let server = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 256];
            if s.read(&mut buf).await.unwrap_or(0) > 0 {
                let _ = s.write_all(b"+PONG\r\n").await;
            }
        }
    });
    let c = Client::new(
        RedisUrl::parse(&format!("redis://127.0.0.1:{port}")).unwrap(),
        Duration::from_secs(2),
    );
    assert_eq!(
        c.call(&[b"PING"]).await.unwrap(),
        Value::Status("PONG".into())
    );
    // Let the driver see the hang-up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        c.call(&[b"PING"]).await.unwrap(),
        Value::Status("PONG".into())
    );
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    server.abort();
}
