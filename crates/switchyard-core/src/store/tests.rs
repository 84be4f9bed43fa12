//! Migrations and the value mapping on both backends. The PostgreSQL tests use the machine's
//! server (127.0.0.1:5432, database `test`), each in a schema of its own, dropped at the end.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!(
        "switchyard-core-{tag}-{}-{n}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn sqlite_config(dir: &std::path::Path) -> StoreConfig {
    StoreConfig::Sqlite {
        path: dir.join("test.db"),
        timeout: Duration::from_millis(200),
    }
}

/// A schema of its own in the test database; `drop` it at the end.
pub(crate) struct PgSchema {
    pub(crate) name: String,
}

const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

async fn pg_admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(PG_ADMIN, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (user postgres, database test)");
    tokio::spawn(conn);
    client
}

impl PgSchema {
    pub(crate) async fn new(tag: &str) -> Self {
        let dir = temp_dir("pg");
        let _ = std::fs::remove_dir_all(&dir);
        let suffix = dir.file_name().unwrap().to_string_lossy().replace('-', "_");
        let name = format!("unit_{tag}_{suffix}").to_ascii_lowercase();
        pg_admin()
            .await
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        Self { name }
    }

    pub(crate) fn config(&self) -> StoreConfig {
        StoreConfig::Postgres {
            url: Secret::new(format!(
                "postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3D{}",
                self.name
            )),
            timeout: Duration::from_secs(5),
        }
    }

    pub(crate) async fn drop(self) {
        pg_admin()
            .await
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name))
            .await
            .unwrap();
    }
}

async fn versions(store: &Store) -> Vec<i64> {
    store
        .query(
            "SELECT version FROM switchyard_migrations ORDER BY version".into(),
            vec![],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r[0].as_i64().unwrap())
        .collect()
}

static GOOD: &[Migration] = &[
    Migration {
        version: 1,
        name: "one",
        sqlite: "CREATE TABLE t1 (a BIGINT);",
        postgres: "CREATE TABLE t1 (a BIGINT);",
    },
    Migration {
        version: 2,
        name: "two",
        sqlite: "CREATE TABLE t2 (b TEXT); CREATE INDEX t2_b ON t2 (b);",
        postgres: "CREATE TABLE t2 (b TEXT); CREATE INDEX t2_b ON t2 (b);",
    },
];

static BROKEN: &[Migration] = &[
    Migration {
        version: 1,
        name: "one",
        sqlite: "CREATE TABLE t1 (a BIGINT);",
        postgres: "CREATE TABLE t1 (a BIGINT);",
    },
    Migration {
        version: 2,
        name: "two",
        sqlite: "CREATE TABLE t2 (b TEXT);",
        postgres: "CREATE TABLE t2 (b TEXT);",
    },
    Migration {
        version: 3,
        name: "broken",
        sqlite: "CREATE TABLE t3 (c TEXT); THIS IS NOT SQL;",
        postgres: "CREATE TABLE t3 (c TEXT); THIS IS NOT SQL;",
    },
];

/// The same checks for both backends: migrations apply once, in order, recorded; a failing
/// one leaves nothing behind; a newer schema is refused; values round-trip.
async fn migrations_and_values(cfg: &StoreConfig) {
    let store = Store::connect(cfg).await.unwrap();
    assert_eq!(store.migrate_with(&GOOD[..1]).await.unwrap(), 1);
    assert_eq!(versions(&store).await, vec![1]);
    // The next release adds migration 2: only it runs.
    assert_eq!(store.migrate_with(GOOD).await.unwrap(), 1);
    assert_eq!(store.migrate_with(GOOD).await.unwrap(), 0);
    assert_eq!(versions(&store).await, vec![1, 2]);

    // A migration that fails is rolled back whole, its version not recorded.
    let err = store.migrate_with(BROKEN).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Schema(ref m) if m.contains("broken")),
        "{err}"
    );
    assert_eq!(versions(&store).await, vec![1, 2]);
    let t3 = store.query("SELECT c FROM t3".into(), vec![]).await;
    assert!(t3.is_err(), "t3 must not exist after the failed migration");

    // An older binary meets a newer database.
    let err = store.migrate_with(&GOOD[..1]).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Schema(ref m) if m.contains("newer")),
        "{err}"
    );

    // The gateway's own schema on top (a fresh store for it).
    let mut p = Params::new(store.dialect());
    let sql = format!(
        "INSERT INTO t1 (a) VALUES ({}), ({})",
        p.push(i64::MAX),
        p.push(Value::Null)
    );
    assert_eq!(store.execute(sql, p.values).await.unwrap(), 2);
    let rows = store
        .query("SELECT a FROM t1 ORDER BY a".into(), vec![])
        .await
        .unwrap();
    let got: Vec<Value> = rows.into_iter().map(|mut r| r.remove(0)).collect();
    assert!(got.contains(&Value::Int(i64::MAX)) && got.contains(&Value::Null));

    // A transaction is all or nothing.
    let mut p = Params::new(store.dialect());
    let ok = Statement {
        sql: format!("INSERT INTO t2 (b) VALUES ({})", p.push("kept?")).into(),
        params: p.values.into(),
    };
    let bad = Statement {
        sql: "INSERT INTO no_such_table VALUES (1)".into(),
        params: vec![].into(),
    };
    assert!(store.transaction(vec![ok, bad]).await.is_err());
    let n = store
        .query("SELECT COUNT(*) FROM t2".into(), vec![])
        .await
        .unwrap();
    assert_eq!(n[0][0].as_i64(), Some(0));
}

async fn request_log_schema(cfg: &StoreConfig) {
    let store = Store::open(cfg).await.unwrap();
    let all: Vec<i64> = MIGRATIONS.iter().map(|m| i64::from(m.version)).collect();
    assert_eq!(versions(&store).await, all);
    assert_eq!(store.migrate().await.unwrap(), 0);
    let mut p = Params::new(store.dialect());
    let sql = format!(
        "SELECT COUNT(*) FROM requests WHERE stream = {} AND latency_ms >= {}",
        p.push(true),
        p.push(1.5)
    );
    let rows = store.query(sql, p.values).await.unwrap();
    assert_eq!(rows[0][0].as_i64(), Some(0));
}

#[tokio::test]
async fn sqlite_migrations_apply_once_in_order_and_roll_back_on_failure() {
    let dir = temp_dir("mig");
    migrations_and_values(&sqlite_config(&dir)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postgres_migrations_apply_once_in_order_and_roll_back_on_failure() {
    let schema = PgSchema::new("mig").await;
    migrations_and_values(&schema.config()).await;
    schema.drop().await;
}

#[tokio::test]
async fn the_request_log_schema_migrates_on_both_backends() {
    let dir = temp_dir("schema");
    request_log_schema(&sqlite_config(&dir)).await;
    let schema = PgSchema::new("schema").await;
    request_log_schema(&schema.config()).await;
    schema.drop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    let dir = temp_dir("wal");
    let store = Store::open(&sqlite_config(&dir)).await.unwrap();
    let mode = store
        .query("PRAGMA journal_mode".into(), vec![])
        .await
        .unwrap();
    assert_eq!(mode[0][0].as_str(), Some("wal"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_not_a_hang() {
    // A port nothing listens on: connection refused, reported as the store being away.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = StoreConfig::Postgres {
        url: Secret::new(format!("postgres://postgres@127.0.0.1:{port}/test")),
        timeout: Duration::from_secs(2),
    };
    let store = Store::connect(&cfg).await.unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
}

#[test]
fn descriptions_never_show_the_password() {
    let cfg = StoreConfig::Postgres {
        url: Secret::new(
            "postgres://app:hunter2-secret@db.internal:5432/gw?sslmode=disable".into(),
        ),
        timeout: DEFAULT_TIMEOUT,
    };
    let d = cfg.describe();
    assert!(!d.contains("hunter2"), "{d}");
    assert!(d.contains("db.internal:5432/gw"), "{d}");
    let kv = StoreConfig::Postgres {
        url: Secret::new("host=db user=app password=hunter2 dbname=gw".into()),
        timeout: DEFAULT_TIMEOUT,
    };
    let d = kv.describe();
    assert!(!d.contains("hunter2") && d.contains("host=db"), "{d}");
    assert!(!format!("{cfg:?}").contains("hunter2"));
}

#[test]
fn params_spell_placeholders_per_dialect() {
    let mut s = Params::new(Dialect::Sqlite);
    assert_eq!(
        (s.push(1i64), s.push("a")),
        ("?1".to_owned(), "?2".to_owned())
    );
    let mut p = Params::new(Dialect::Postgres);
    assert_eq!(
        (p.push(1i64), p.push("a")),
        ("$1".to_owned(), "$2".to_owned())
    );
    assert_eq!(p.values, vec![Value::Int(1), Value::Text("a".into())]);
}

/// A run of the same statement binds only the values that changed since its last execution:
/// every row must still hold exactly its own values, across NULLs, type changes, a different
/// statement in between (a new run) and a new transaction (the cache cleared the bindings).
#[tokio::test]
async fn sqlite_runs_of_one_statement_store_each_rows_own_values() {
    let dir = temp_dir("rebind");
    let store = Store::open(&sqlite_config(&dir)).await.unwrap();
    store
        .execute(
            "CREATE TABLE t (n BIGINT, a TEXT, b, c BIGINT)".into(),
            vec![],
        )
        .await
        .unwrap();
    let insert = |n: i64, a: Value, b: Value, c: Value| Statement {
        sql: "INSERT INTO t (n, a, b, c) VALUES (?1, ?2, ?3, ?4)".into(),
        params: vec![Value::Int(n), a, b, c].into(),
    };
    let other = Statement {
        sql: "INSERT INTO t (n) VALUES (?1)".into(),
        params: vec![Value::Int(100)].into(),
    };
    let text = |s: &str| Value::Text(s.into());
    let first = vec![
        insert(1, text("x"), Value::Null, Value::Int(1)),
        insert(2, text("z"), Value::Null, Value::Int(1)),
        insert(3, Value::Null, Value::Real(1.5), Value::Bool(true)),
        insert(4, Value::Null, Value::Real(1.5), Value::Bool(true)),
        insert(5, text("y"), Value::Real(1.5), Value::Int(0)),
        insert(6, text("y"), Value::Real(2.5), Value::Int(0)),
        other,
        insert(7, text("y"), Value::Real(2.5), Value::Int(0)),
    ];
    assert_eq!(store.transaction(first).await.unwrap(), vec![1; 8]);
    let second = vec![
        insert(8, Value::Null, Value::Null, Value::Null),
        insert(9, text("x"), text("b"), Value::Null),
    ];
    store.transaction(second).await.unwrap();
    // A statement given the wrong number of values fails without storing anything.
    let short = Statement {
        sql: "INSERT INTO t (n, a) VALUES (?1, ?2)".into(),
        params: vec![Value::Int(10)].into(),
    };
    assert!(store.transaction(vec![short]).await.is_err());

    let rows = store
        .query("SELECT n, a, b, c FROM t ORDER BY n".into(), vec![])
        .await
        .unwrap();
    let want = vec![
        vec![Value::Int(1), text("x"), Value::Null, Value::Int(1)],
        vec![Value::Int(2), text("z"), Value::Null, Value::Int(1)],
        vec![Value::Int(3), Value::Null, Value::Real(1.5), Value::Int(1)],
        vec![Value::Int(4), Value::Null, Value::Real(1.5), Value::Int(1)],
        vec![Value::Int(5), text("y"), Value::Real(1.5), Value::Int(0)],
        vec![Value::Int(6), text("y"), Value::Real(2.5), Value::Int(0)],
        vec![Value::Int(7), text("y"), Value::Real(2.5), Value::Int(0)],
        vec![Value::Int(8), Value::Null, Value::Null, Value::Null],
        vec![Value::Int(9), text("x"), text("b"), Value::Null],
        vec![Value::Int(100), Value::Null, Value::Null, Value::Null],
    ];
    assert_eq!(rows, want);
    let _ = std::fs::remove_dir_all(&dir);
}
