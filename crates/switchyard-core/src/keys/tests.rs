use std::time::Duration;

use super::*;
use crate::store::tests::{sqlite_config, temp_dir};

async fn keys() -> KeyStore {
    let dir = temp_dir("keys");
    let store = Store::open(&sqlite_config(&dir)).await.unwrap();
    KeyStore::new(store)
}

fn named(name: &str) -> KeyFields {
    KeyFields {
        name: Some(name.to_owned()),
        ..Default::default()
    }
}

#[test]
fn generated_keys_are_prefixed_random_and_long() {
    let a = generate_key().unwrap();
    let b = generate_key().unwrap();
    assert!(a.starts_with(KEY_PREFIX));
    assert_eq!(a.len(), KEY_PREFIX.len() + 64);
    assert_ne!(a, b);
}

#[tokio::test]
async fn create_stores_only_a_digest() {
    let ks = keys().await;
    let (rec, key) = ks
        .create(KeyFields {
            team: Some(Some("ml".into())),
            allowed_aliases: Some(Some(vec!["fast".into()])),
            rpm: Some(Some(10)),
            ..named("svc")
        })
        .await
        .unwrap();
    assert_eq!(rec.team.as_deref(), Some("ml"));
    assert!(rec.allows("fast") && !rec.allows("smart"));
    let rows = ks
        .store
        .query("SELECT * FROM virtual_keys".into(), Vec::new())
        .await
        .unwrap();
    let dump = format!("{rows:?}");
    assert!(!dump.contains(&key), "the key itself reached the store");
    assert!(dump.contains(&digest_hex(&key)));
    assert!(matches!(
        ks.create(named("svc")).await,
        Err(KeyError::Duplicate(_))
    ));
    assert!(matches!(
        ks.create(named("bad name")).await,
        Err(KeyError::Invalid(_))
    ));
}

#[tokio::test]
async fn cache_follows_rotation_revocation_and_expiry() {
    let ks = keys().await;
    let (rec, old) = ks.create(named("a")).await.unwrap();
    let cache = KeyCache::start(ks.clone(), Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(matches!(cache.lookup(&old), Lookup::Valid(r) if r.name == "a"));
    assert!(matches!(cache.lookup("sk-sy-nope"), Lookup::Unknown));

    let (_, new) = ks.rotate(&rec.id, Duration::from_secs(60)).await.unwrap();
    cache.refresh().await.unwrap();
    assert!(matches!(cache.lookup(&new), Lookup::Valid(_)));
    assert!(
        matches!(cache.lookup(&old), Lookup::Valid(_)),
        "grace period"
    );

    let (_, newer) = ks.rotate("a", Duration::ZERO).await.unwrap();
    cache.refresh().await.unwrap();
    assert!(matches!(cache.lookup(&newer), Lookup::Valid(_)));
    assert!(matches!(cache.lookup(&new), Lookup::Refused), "no grace");
    assert!(
        matches!(cache.lookup(&old), Lookup::Unknown),
        "two rotations ago"
    );

    ks.update(
        "a",
        KeyFields {
            expires_at: Some(Some(unix_millis() - 1)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    cache.refresh().await.unwrap();
    assert!(matches!(cache.lookup(&newer), Lookup::Refused), "expired");

    ks.update(
        "a",
        KeyFields {
            expires_in: Some("1h".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    cache.refresh().await.unwrap();
    assert!(matches!(cache.lookup(&newer), Lookup::Valid(_)));

    let revoked = ks.revoke("a").await.unwrap();
    assert!(revoked.revoked_at.is_some());
    cache.refresh().await.unwrap();
    assert!(matches!(cache.lookup(&newer), Lookup::Refused), "revoked");
    assert!(ks.rotate("a", Duration::ZERO).await.is_err());
}

#[tokio::test]
async fn update_changes_only_given_fields_and_null_clears() {
    let ks = keys().await;
    let (rec, _) = ks
        .create(KeyFields {
            team: Some(Some("ml".into())),
            rpm: Some(Some(5)),
            ..named("b")
        })
        .await
        .unwrap();
    let fields: KeyFields =
        serde_json::from_str(r#"{"rpm": null, "tpm": 100, "tags": {"env": "prod"}}"#).unwrap();
    let up = ks.update(&rec.id, fields).await.unwrap();
    assert_eq!(up.team.as_deref(), Some("ml"));
    assert_eq!((up.rpm, up.tpm), (None, Some(100)));
    assert_eq!(up.tags.get("env").map(String::as_str), Some("prod"));
    assert!(matches!(
        ks.update("missing", KeyFields::default()).await,
        Err(KeyError::NotFound(_))
    ));
    assert!(serde_json::from_str::<KeyFields>(r#"{"rmp": 1}"#).is_err());
}

#[test]
fn attribution_takes_the_keys_team_and_fills_user_and_tags() {
    let rec = KeyRecord {
        id: "vk_1".into(),
        name: "k".into(),
        team: Some("ml".into()),
        user: Some("owner".into()),
        allowed_aliases: None,
        rpm: None,
        tpm: None,
        budget_usd: None,
        budget_period: None,
        expires_at: None,
        revoked_at: None,
        previous_valid_until: None,
        tags: [
            ("env".to_owned(), "prod".to_owned()),
            ("a".to_owned(), "k".to_owned()),
        ]
        .into_iter()
        .collect(),
        created_at: 0,
        updated_at: 0,
    };
    let mut a = crate::attribution::Attribution {
        team: Some("other".into()),
        user: Some("client".into()),
        tags: vec![("env".into(), "dev".into())],
    };
    attribute(&rec, &mut a);
    assert_eq!(a.team.as_deref(), Some("ml"));
    assert_eq!(a.user.as_deref(), Some("client"));
    let tags: Vec<_> = a.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(tags, ["a=k", "env=dev"]);
}
