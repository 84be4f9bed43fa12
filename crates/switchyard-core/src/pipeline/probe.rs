//! Active health checks: a background task sends every deployment a one-token chat completion
//! each `interval` and reports the outcome to its circuit breaker (see
//! [`crate::resilience::HealthChecks`]). It uses the same adapters and HTTP client as client
//! traffic, so what it checks is exactly what a request would meet.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use tokio::sync::watch;

use super::Gateway;
use crate::config::Deployment;
use crate::providers::{Exchange, Operation};
use crate::resilience::HealthChecks;

/// Runs health-check rounds until `stop` turns true.
pub(crate) async fn run(gw: Arc<Gateway>, cfg: HealthChecks, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        for d in gw.router.deployments() {
            let ok = probe(&gw, &d, cfg).await;
            gw.health
                .get(&d.provider.name, &d.model)
                .breaker
                .health_check(ok);
            if !ok {
                tracing::warn!(
                    provider = %d.provider.name,
                    model = %d.model,
                    "health check failed"
                );
            }
        }
    }
}

/// One probe: true when the deployment answered a one-token completion with a success.
async fn probe(gw: &Gateway, d: &Deployment, cfg: HealthChecks) -> bool {
    let Some(provider) = gw.providers.get(&d.provider.name) else {
        return false;
    };
    let body = serde_json::json!({
        "model": &*d.model,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
    })
    .to_string();
    let client_model: Arc<str> = Arc::clone(&d.model);
    let headers = HeaderMap::new();
    let Ok(up) = provider.build_request(&Exchange {
        op: Operation::ChatCompletions,
        body: body.as_bytes(),
        headers: &headers,
        model: &d.model,
        client_model: &client_model,
    }) else {
        return false;
    };
    let Ok(mut request) = Request::post(up.uri).body(Full::new(up.body)) else {
        return false;
    };
    *request.headers_mut() = up.headers;
    let exchange = async {
        let resp = gw
            .client
            .request_within(request, Some(d.timeouts.connect))
            .await
            .ok()?;
        let ok = resp.status().is_success();
        // Read the body so the connection can be reused.
        let _: Bytes = resp.into_body().collect().await.ok()?.to_bytes();
        Some(ok)
    };
    matches!(
        tokio::time::timeout(cfg.timeout, exchange).await,
        Ok(Some(true))
    )
}
