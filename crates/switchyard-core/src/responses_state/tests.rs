#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn gateway_record(id: &str, items: usize) -> StoredResponse {
    StoredResponse {
        id: id.into(),
        provider: Arc::from("claude"),
        model: Arc::from("claude-sonnet-4-5"),
        client_model: Arc::from("smart"),
        kept: Kept::Gateway {
            response: json!({"id": id, "object": "response", "output": []}),
            input_items: (0..items)
                .map(|i| json!({"id": format!("msg_{i}"), "type": "message"}))
                .collect(),
            previous_response_id: None,
        },
    }
}

/// What every [`ResponseStore`] must do, tenant isolation first. A persistent store's tests
/// run this against it too.
pub(crate) async fn conformance(store: &dyn ResponseStore) {
    let (a, b) = (Tenant::key("team-a"), Tenant::key("team-b"));
    store.put(&a, gateway_record("resp_1", 3)).await.unwrap();
    let upstream = StoredResponse {
        kept: Kept::Upstream,
        ..gateway_record("resp_2", 0)
    };
    store.put(&b, upstream.clone()).await.unwrap();

    // Each tenant sees its own records only, by any method.
    assert_eq!(
        store.get(&a, "resp_1").await.unwrap(),
        Some(gateway_record("resp_1", 3))
    );
    assert_eq!(store.get(&b, "resp_1").await.unwrap(), None);
    assert_eq!(store.get(&a, "resp_2").await.unwrap(), None);
    assert_eq!(store.get(&b, "resp_2").await.unwrap(), Some(upstream));
    assert_eq!(
        store
            .get(&Tenant::principal("master"), "resp_1")
            .await
            .unwrap(),
        None
    );
    let page = ItemsPage {
        after: None,
        limit: 20,
        descending: false,
    };
    assert!(store
        .list_input_items(&b, "resp_1", &page)
        .await
        .unwrap()
        .is_none());
    assert!(!store.delete(&b, "resp_1").await.unwrap());
    assert!(store.get(&a, "resp_1").await.unwrap().is_some());

    // The same id under two tenants is two records.
    store.put(&b, gateway_record("resp_1", 1)).await.unwrap();
    let list = store
        .list_input_items(&a, "resp_1", &page)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(list.data.len(), 3);
    let list = store
        .list_input_items(&b, "resp_1", &page)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(list.data.len(), 1);

    // Pages: order, limit, cursor.
    let desc = ItemsPage {
        after: None,
        limit: 2,
        descending: true,
    };
    let list = store
        .list_input_items(&a, "resp_1", &desc)
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<_> = list.data.iter().map(|v| v["id"].clone()).collect();
    assert_eq!(ids, [json!("msg_2"), json!("msg_1")]);
    assert!(list.has_more);
    let next = ItemsPage {
        after: Some("msg_1".into()),
        ..desc
    };
    let list = store
        .list_input_items(&a, "resp_1", &next)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(list.data, [json!({"id": "msg_0", "type": "message"})]);
    assert!(!list.has_more);

    // Upstream-kept records have no items here.
    assert!(store
        .list_input_items(&b, "resp_2", &page)
        .await
        .unwrap()
        .is_none());

    // Delete is per tenant.
    assert!(store.delete(&a, "resp_1").await.unwrap());
    assert_eq!(store.get(&a, "resp_1").await.unwrap(), None);
    assert!(store.get(&b, "resp_1").await.unwrap().is_some());
    assert!(!store.delete(&a, "resp_1").await.unwrap());
}

#[tokio::test]
async fn memory_store_conforms() {
    conformance(&MemoryResponseStore::default()).await;
}

#[tokio::test]
async fn memory_store_is_bounded_oldest_first() {
    let store = MemoryResponseStore::new(2, Duration::from_secs(60));
    let t = Tenant::key("k");
    for id in ["resp_a", "resp_b", "resp_c"] {
        store.put(&t, gateway_record(id, 0)).await.unwrap();
    }
    assert!(store.get(&t, "resp_a").await.unwrap().is_none());
    assert!(store.get(&t, "resp_b").await.unwrap().is_some());
    assert!(store.get(&t, "resp_c").await.unwrap().is_some());
    // Replacing a record does not let its old queue entry evict the new one.
    store.put(&t, gateway_record("resp_b", 1)).await.unwrap();
    store.put(&t, gateway_record("resp_d", 0)).await.unwrap();
    assert!(store.get(&t, "resp_c").await.unwrap().is_none());
    assert!(store.get(&t, "resp_b").await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn memory_store_expires_records() {
    let store = MemoryResponseStore::new(10, Duration::from_secs(60));
    let t = Tenant::key("k");
    store.put(&t, gateway_record("resp_a", 0)).await.unwrap();
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(store.get(&t, "resp_a").await.unwrap().is_some());
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(store.get(&t, "resp_a").await.unwrap().is_none());
}

mod persistent {
    use super::*;
    use crate::store::tests::{sqlite_config, temp_dir, PgSchema};
    use crate::store::{Store, Value as SqlValue};

    async fn sqlite_store(dir: &std::path::Path) -> (Store, PersistentResponseStore) {
        let store = Store::open(&sqlite_config(dir)).await.unwrap();
        let rs = PersistentResponseStore::new(store.clone(), PersistentResponseStore::DEFAULT_TTL);
        (store, rs)
    }

    #[tokio::test]
    async fn sqlite_store_conforms() {
        let dir = temp_dir("responses");
        let (_, rs) = sqlite_store(&dir).await;
        conformance(&rs).await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn postgres_store_conforms() {
        let schema = PgSchema::new("responses").await;
        let store = Store::open(&schema.config()).await.unwrap();
        let rs = PersistentResponseStore::new(store, PersistentResponseStore::DEFAULT_TTL);
        conformance(&rs).await;
        // The records are in the database, not only in the cache: a second store on the
        // same schema (another gateway) reads them.
        let other = PersistentResponseStore::new(
            Store::open(&schema.config()).await.unwrap(),
            PersistentResponseStore::DEFAULT_TTL,
        );
        let b = Tenant::key("team-b");
        assert_eq!(
            other.get(&b, "resp_1").await.unwrap(),
            Some(gateway_record("resp_1", 1))
        );
        assert_eq!(
            other.get(&Tenant::key("team-a"), "resp_1").await.unwrap(),
            None
        );
        drop((rs, other));
        schema.drop().await;
    }

    #[tokio::test]
    async fn records_survive_a_restart_and_stay_per_tenant() {
        let dir = temp_dir("responses");
        let (a, b) = (Tenant::key("a"), Tenant::key("b"));
        {
            let (_, rs) = sqlite_store(&dir).await;
            rs.put(&a, gateway_record("resp_x", 2)).await.unwrap();
            let upstream = StoredResponse {
                kept: Kept::Upstream,
                ..gateway_record("resp_u", 0)
            };
            rs.put(&a, upstream).await.unwrap();
        }
        let (_, rs) = sqlite_store(&dir).await;
        assert_eq!(
            rs.get(&a, "resp_x").await.unwrap(),
            Some(gateway_record("resp_x", 2))
        );
        assert_eq!(
            rs.get(&a, "resp_u").await.unwrap().unwrap().kept,
            Kept::Upstream
        );
        assert_eq!(rs.get(&b, "resp_x").await.unwrap(), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_detached_put_is_visible_at_once_and_then_durable() {
        let dir = temp_dir("responses");
        let t = Tenant::key("k");
        {
            let (_, rs) = sqlite_store(&dir).await;
            let rs = Arc::new(rs);
            Arc::clone(&rs).put_detached(t.clone(), gateway_record("resp_s", 1));
            assert!(rs.get(&t, "resp_s").await.unwrap().is_some());
            // A delete queued after the detached write wins over it.
            Arc::clone(&rs).put_detached(t.clone(), gateway_record("resp_d", 1));
            assert!(rs.delete(&t, "resp_d").await.unwrap());
            Arc::clone(&rs).put_detached(t.clone(), gateway_record("resp_f", 1));
            // Flush returns once every earlier write is stored.
            rs.flush().await;
        }
        let (_, rs) = sqlite_store(&dir).await;
        assert!(rs.get(&t, "resp_s").await.unwrap().is_some());
        assert!(rs.get(&t, "resp_d").await.unwrap().is_none());
        assert!(rs.get(&t, "resp_f").await.unwrap().is_some());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn expired_records_are_not_returned_and_are_purged() {
        let dir = temp_dir("responses");
        let (store, rs) = sqlite_store(&dir).await;
        let t = Tenant::key("k");
        rs.put(&t, gateway_record("resp_old", 1)).await.unwrap();
        rs.put(&t, gateway_record("resp_new", 1)).await.unwrap();
        drop(rs);
        // Age one record past its retention.
        store
            .execute(
                "UPDATE responses SET expires_at = ?1 WHERE id = ?2".into(),
                vec![SqlValue::Int(1), SqlValue::Text("resp_old".into())],
            )
            .await
            .unwrap();
        let rs = PersistentResponseStore::new(store.clone(), PersistentResponseStore::DEFAULT_TTL);
        assert!(rs.get(&t, "resp_old").await.unwrap().is_none());
        assert!(rs.get(&t, "resp_new").await.unwrap().is_some());
        super::super::persistent::purge(&store).await;
        let rows = store
            .query("SELECT id FROM responses".into(), vec![])
            .await
            .unwrap();
        assert_eq!(rows, vec![vec![SqlValue::Text("resp_new".into())]]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
