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
