//! The chat completion records on SQLite and PostgreSQL: tenant isolation first, then the
//! list's order, cursors (through deleted records too), filters and paging, metadata updates,
//! durability and retention.

use serde_json::json;

use super::*;
use crate::store::tests::{sqlite_config, temp_dir, PgSchema};

fn record(id: &str, model: &str, metadata: Option<Json>) -> ChatRecord {
    ChatRecord {
        id: id.to_owned(),
        provider: Arc::from("oai"),
        model: Arc::from("gpt-up"),
        client_model: Arc::from(model),
        kept_upstream: true,
        metadata: metadata.and_then(|m| m.as_object().cloned()),
        created_us: 0,
    }
}

fn ids(page: &Page) -> Vec<&str> {
    page.records.iter().map(|r| r.id.as_str()).collect()
}

fn query(limit: usize) -> ListQuery {
    ListQuery {
        limit,
        ..ListQuery::default()
    }
}

/// What every backend must do.
async fn conformance(cs: &ChatCompletionStore) {
    let (a, b) = (Tenant::team("a"), Tenant::key("b"));
    cs.put(
        a.clone(),
        record("c1", "demo", Some(json!({"env": "prod"}))),
    );
    cs.put(a.clone(), record("c2", "other", None));
    cs.put(
        a.clone(),
        record("c3", "demo", Some(json!({"env": "dev", "x": "1"}))),
    );
    cs.put(
        a.clone(),
        ChatRecord {
            kept_upstream: false,
            provider: Arc::from("claude"),
            ..record("t1", "smart", None)
        },
    );
    cs.put(b.clone(), record("b1", "demo", None));

    // Read your writes, per tenant only.
    let got = cs.get(&a, "c1").await.unwrap().unwrap();
    assert_eq!(got.client_model.as_ref(), "demo");
    assert_eq!(got.metadata, json!({"env": "prod"}).as_object().cloned());
    assert!(got.created_us > 0);
    assert!(cs.get(&b, "c1").await.unwrap().is_none());
    assert!(cs.get(&a, "b1").await.unwrap().is_none());
    assert!(cs.get(&a, "nope").await.unwrap().is_none());
    let t1 = cs.get(&a, "t1").await.unwrap().unwrap();
    assert!(!t1.kept_upstream);

    // The list: oldest first by default, only records kept upstream, only the tenant's.
    let all = cs.list(&a, &query(20)).await.unwrap();
    assert_eq!(ids(&all), ["c1", "c2", "c3"]);
    assert!(!all.has_more);
    assert_eq!(ids(&cs.list(&b, &query(20)).await.unwrap()), ["b1"]);
    let desc = ListQuery {
        descending: true,
        ..query(20)
    };
    assert_eq!(ids(&cs.list(&a, &desc).await.unwrap()), ["c3", "c2", "c1"]);

    // Pages and cursors, both directions.
    let first = cs.list(&a, &query(2)).await.unwrap();
    assert_eq!(ids(&first), ["c1", "c2"]);
    assert!(first.has_more);
    let next = ListQuery {
        after: Some("c2".into()),
        ..query(2)
    };
    let second = cs.list(&a, &next).await.unwrap();
    assert_eq!(ids(&second), ["c3"]);
    assert!(!second.has_more);
    let back = ListQuery {
        after: Some("c3".into()),
        descending: true,
        ..query(1)
    };
    let back = cs.list(&a, &back).await.unwrap();
    assert_eq!(ids(&back), ["c2"]);
    assert!(back.has_more);
    // Another tenant's id is no cursor.
    let stolen = ListQuery {
        after: Some("b1".into()),
        ..query(2)
    };
    assert!(matches!(
        cs.list(&a, &stolen).await,
        Err(StoreError::UnknownCursor(_))
    ));

    // Filters: model, aliases, metadata (every pair must match).
    let by_model = ListQuery {
        model: Some("demo".into()),
        ..query(20)
    };
    assert_eq!(ids(&cs.list(&a, &by_model).await.unwrap()), ["c1", "c3"]);
    let by_alias = ListQuery {
        aliases: Some(vec!["other".into()]),
        ..query(20)
    };
    assert_eq!(ids(&cs.list(&a, &by_alias).await.unwrap()), ["c2"]);
    let no_alias = ListQuery {
        aliases: Some(Vec::new()),
        ..query(20)
    };
    assert!(cs.list(&a, &no_alias).await.unwrap().records.is_empty());
    let by_meta = ListQuery {
        metadata: vec![("env".into(), "dev".into())],
        ..query(20)
    };
    assert_eq!(ids(&cs.list(&a, &by_meta).await.unwrap()), ["c3"]);
    let both = ListQuery {
        metadata: vec![("env".into(), "dev".into()), ("x".into(), "2".into())],
        ..query(20)
    };
    assert!(cs.list(&a, &both).await.unwrap().records.is_empty());

    // Metadata updates are what the filter sees.
    cs.set_metadata(&a, "c2", json!({"env": "dev"}).as_object().cloned())
        .await
        .unwrap();
    let meta_page = ListQuery {
        metadata: vec![("env".into(), "dev".into())],
        ..query(1)
    };
    let page = cs.list(&a, &meta_page).await.unwrap();
    assert_eq!(ids(&page), ["c2"]);
    assert!(page.has_more);
    cs.set_metadata(&a, "c2", None).await.unwrap();
    assert_eq!(cs.get(&a, "c2").await.unwrap().unwrap().metadata, None);
    // Another tenant's update changes nothing.
    cs.set_metadata(&b, "c1", json!({"env": "stolen"}).as_object().cloned())
        .await
        .unwrap();
    assert_eq!(
        cs.get(&a, "c1").await.unwrap().unwrap().metadata,
        json!({"env": "prod"}).as_object().cloned()
    );

    // Deletion: gone for get and list, still a cursor; another tenant cannot delete.
    cs.delete(&b, "c1").await.unwrap();
    assert!(cs.get(&a, "c1").await.unwrap().is_some());
    cs.delete(&a, "c1").await.unwrap();
    assert!(cs.get(&a, "c1").await.unwrap().is_none());
    assert_eq!(ids(&cs.list(&a, &query(20)).await.unwrap()), ["c2", "c3"]);
    let after_deleted = ListQuery {
        after: Some("c1".into()),
        ..query(20)
    };
    assert_eq!(
        ids(&cs.list(&a, &after_deleted).await.unwrap()),
        ["c2", "c3"]
    );
}

async fn sqlite_store(dir: &std::path::Path) -> (Store, ChatCompletionStore) {
    let store = Store::open(&sqlite_config(dir)).await.unwrap();
    let cs = ChatCompletionStore::new(store.clone(), ChatCompletionStore::DEFAULT_TTL);
    (store, cs)
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = temp_dir("stored-chat");
    let (_, cs) = sqlite_store(&dir).await;
    conformance(&cs).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn postgres_store_conforms_and_is_shared_by_gateways() {
    let schema = PgSchema::new("stored_chat").await;
    let cs = ChatCompletionStore::new(
        Store::open(&schema.config()).await.unwrap(),
        ChatCompletionStore::DEFAULT_TTL,
    );
    conformance(&cs).await;
    // Another gateway on the same database sees the same records, per tenant.
    let other = ChatCompletionStore::new(
        Store::open(&schema.config()).await.unwrap(),
        ChatCompletionStore::DEFAULT_TTL,
    );
    assert!(other.get(&Tenant::team("a"), "c3").await.unwrap().is_some());
    assert!(other.get(&Tenant::key("b"), "c3").await.unwrap().is_none());
    drop((cs, other));
    schema.drop().await;
}

#[tokio::test]
async fn records_made_in_one_burst_keep_their_order_and_page_without_gaps() {
    let dir = temp_dir("stored-chat");
    let (_, cs) = sqlite_store(&dir).await;
    let t = Tenant::team("t");
    // Ids that sort against the creation order: the order is the recording time.
    let made: Vec<String> = (0..25).map(|i| format!("z{:02}", 99 - i)).collect();
    for id in &made {
        cs.put(t.clone(), record(id, "demo", None));
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = cs
            .list(
                &t,
                &ListQuery {
                    after: after.clone(),
                    ..query(7)
                },
            )
            .await
            .unwrap();
        seen.extend(page.records.iter().map(|r| r.id.clone()));
        after = page.records.last().map(|r| r.id.clone());
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen, made);
    // A metadata filter that skips most rows still pages correctly (it reads in batches).
    for i in 0..(FILTER_BATCH + 10) {
        let m = (i % 50 == 0).then(|| json!({"pick": "yes"}));
        cs.put(t.clone(), record(&format!("m{i:04}"), "demo", m));
    }
    let picked = cs
        .list(
            &t,
            &ListQuery {
                metadata: vec![("pick".into(), "yes".into())],
                ..query(3)
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&picked), ["m0000", "m0050", "m0100"]);
    assert!(picked.has_more);
    let rest = cs
        .list(
            &t,
            &ListQuery {
                metadata: vec![("pick".into(), "yes".into())],
                after: Some("m0100".into()),
                ..query(3)
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&rest), ["m0150", "m0200"]);
    assert!(!rest.has_more);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn records_survive_a_restart() {
    let dir = temp_dir("stored-chat");
    let t = Tenant::team("t");
    {
        let (_, cs) = sqlite_store(&dir).await;
        cs.put(t.clone(), record("kept", "demo", Some(json!({"k": "v"}))));
        cs.put(t.clone(), record("gone", "demo", None));
        cs.delete(&t, "gone").await.unwrap();
        cs.flush().await;
    }
    let (_, cs) = sqlite_store(&dir).await;
    let kept = cs.get(&t, "kept").await.unwrap().unwrap();
    assert_eq!(kept.metadata, json!({"k": "v"}).as_object().cloned());
    assert!(cs.get(&t, "gone").await.unwrap().is_none());
    assert_eq!(ids(&cs.list(&t, &query(5)).await.unwrap()), ["kept"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn expired_records_are_not_returned_and_are_purged() {
    let dir = temp_dir("stored-chat");
    let (store, cs) = sqlite_store(&dir).await;
    let t = Tenant::team("t");
    cs.put(t.clone(), record("old", "demo", None));
    cs.put(t.clone(), record("new", "demo", None));
    cs.flush().await;
    store
        .execute(
            "UPDATE chat_completions SET expires_at = ?1 WHERE id = ?2".into(),
            vec![Value::Int(1), Value::Text("old".into())],
        )
        .await
        .unwrap();
    assert!(cs.get(&t, "old").await.unwrap().is_none());
    assert_eq!(ids(&cs.list(&t, &query(5)).await.unwrap()), ["new"]);
    purge(&store).await;
    let rows = store
        .query("SELECT id FROM chat_completions".into(), vec![])
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![Value::Text("new".into())]]);
    let _ = std::fs::remove_dir_all(dir);
}
