use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

use super::*;
use crate::config::VirtualKey;

fn auth() -> Authenticator {
    Authenticator::new(AuthConfig {
        master_key_sha256: Some(sha256(b"sk-master-1")),
        virtual_keys: vec![VirtualKey {
            name: Arc::from("team-a"),
            sha256: sha256(b"sk-team-a-1"),
            team: Some(Arc::from("research")),
        }],
    })
}

fn headers(name: &'static str, value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(name, HeaderValue::from_str(value).unwrap());
    h
}

#[test]
fn accepts_master_and_virtual_keys_in_all_header_styles() {
    let a = auth();
    assert_eq!(
        a.authenticate(&headers("authorization", "Bearer sk-master-1"))
            .unwrap(),
        Principal::Master
    );
    assert_eq!(
        a.authenticate(&headers("authorization", "bearer  sk-team-a-1"))
            .unwrap(),
        Principal::VirtualKey(Arc::from("team-a"))
    );
    assert_eq!(
        a.authenticate(&headers("api-key", "sk-team-a-1"))
            .unwrap()
            .name(),
        "team-a"
    );
    assert_eq!(
        a.authenticate(&headers("x-api-key", "sk-master-1"))
            .unwrap(),
        Principal::Master
    );
}

#[test]
fn rejects_missing_and_wrong_keys() {
    let a = auth();
    assert!(matches!(
        a.authenticate(&HeaderMap::new()),
        Err(GatewayError::MissingKey)
    ));
    assert!(matches!(
        a.authenticate(&headers("authorization", "Bearer ")),
        Err(GatewayError::MissingKey)
    ));
    assert!(matches!(
        a.authenticate(&headers("authorization", "Basic sk-master-1")),
        Err(GatewayError::MissingKey)
    ));
    assert!(matches!(
        a.authenticate(&headers("authorization", "Bearer sk-master-2")),
        Err(GatewayError::InvalidKey)
    ));
}

#[test]
fn disabled_auth_is_anonymous() {
    let a = Authenticator::new(AuthConfig::default());
    assert_eq!(
        a.authenticate(&HeaderMap::new()).unwrap(),
        Principal::Anonymous
    );
}

#[test]
fn a_virtual_key_names_its_team() {
    let a = auth();
    assert_eq!(a.team_of("team-a").as_deref(), Some("research"));
    assert_eq!(a.team_of("nobody"), None);
}
