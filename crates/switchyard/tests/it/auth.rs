//! Master key and static virtual keys (point 5).

use bytes::Bytes;
use http::Method;

use crate::harness::*;

const MASTER: &str = "sk-master-0123456789";
const TEAM: &str = "sk-team-a-0123456789";

async fn gw() -> Gateway {
    let mock = keyed_mock().await;
    let team_hash = {
        use std::fmt::Write;
        let digest = switchyard_core::config::sha256(TEAM.as_bytes());
        digest.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    };
    let mut cfg = config_for(&mock);
    cfg.push_str(&format!(
        "auth:\n  master_key: {MASTER}\n  virtual_keys:\n    - name: team-a\n      key_sha256: \"{team_hash}\"\n    - name: team-b\n      key: sk-team-b-0123456789\n"
    ));
    Gateway::start(&cfg).await
}

async fn chat(gw: &Gateway, headers: &[(&str, &str)]) -> Resp {
    send(
        Method::POST,
        &format!("{}/v1/chat/completions", gw.url),
        headers,
        chat_body("demo", ""),
    )
    .await
}

#[tokio::test]
async fn missing_and_invalid_keys_get_401_in_openai_shape() {
    let gw = gw().await;
    let r = chat(&gw, &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error()["code"], "missing_api_key");
    let r = chat(&gw, &[("authorization", "Bearer sk-wrong-key-123")]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error()["code"], "invalid_api_key");
    assert!(
        !r.text().contains("sk-wrong-key-123"),
        "keys are never echoed"
    );
    let r = get(&format!("{}/v1/models", gw.url), &[]).await;
    assert_eq!(r.status, 401);
    let r = get(&format!("{}/health", gw.url), &[]).await;
    assert_eq!(r.status, 200, "health needs no key");
}

#[tokio::test]
async fn master_and_virtual_keys_are_accepted() {
    let gw = gw().await;
    let bearer = |k: &str| format!("Bearer {k}");
    assert_eq!(
        chat(&gw, &[("authorization", &bearer(MASTER))])
            .await
            .status,
        200
    );
    assert_eq!(
        chat(&gw, &[("authorization", &bearer(TEAM))]).await.status,
        200
    );
    assert_eq!(
        chat(&gw, &[("authorization", "Bearer sk-team-b-0123456789")])
            .await
            .status,
        200
    );
    assert_eq!(chat(&gw, &[("api-key", TEAM)]).await.status, 200);
    let r = send(
        Method::GET,
        &format!("{}/v1/models", gw.url),
        &[("authorization", &bearer(TEAM))],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200);
}
