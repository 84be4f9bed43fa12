//! `/admin/keys`: virtual keys in the store. Create and rotate return the key in the response,
//! the only time it is ever shown; every other answer carries the record without it.
//!
//! After each change the key cache of this instance is reloaded before answering, so the
//! change holds for the next request here; other replicas follow within `keys.refresh`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;

use super::{json, Admin};
use crate::error::GatewayError;
use crate::keys::{KeyCache, KeyError, KeyFields, KeyRecord, DEFAULT_ROTATION_GRACE};

fn cache(admin: &Admin) -> Result<&Arc<KeyCache>, GatewayError> {
    admin
        .keys
        .as_ref()
        .ok_or_else(|| GatewayError::RouteNotFound {
            method: "GET".into(),
            path: "/admin/keys (virtual keys in the store are off: set `keys.enabled: true`)"
                .into(),
        })
}

fn key_error(e: KeyError) -> Response {
    let (status, code, message) = match &e {
        KeyError::Invalid(m) => (StatusCode::BAD_REQUEST, "invalid_value", m.clone()),
        KeyError::NotFound(_) => (StatusCode::NOT_FOUND, "key_not_found", e.to_string()),
        KeyError::Duplicate(_) => (StatusCode::CONFLICT, "key_exists", e.to_string()),
        KeyError::Store(err) => {
            tracing::warn!(error = %err, "virtual key store operation failed");
            return GatewayError::Internal(format!("the key store failed: {err}")).to_response();
        }
    };
    json(
        status,
        &serde_json::json!({"error": {
            "message": message, "type": "invalid_request_error", "param": null, "code": code,
        }}),
    )
}

fn parse<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| GatewayError::InvalidField {
        param: String::new(),
        message: format!("invalid request body: {e}"),
    })
}

/// Reloads the cache after a change; a failed reload only delays the change to the next tick.
async fn refreshed(cache: &KeyCache) {
    if let Err(e) = cache.refresh().await {
        tracing::warn!(error = %e, "could not reload virtual keys after a change");
    }
}

fn with_key(rec: &KeyRecord, key: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(rec).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("key".into(), key.into());
    }
    v
}

/// `POST /admin/keys` `{"name": ..., "team": ..., "allowed_aliases": [...], "rpm": ...}`
pub(super) async fn create(State(admin): State<Arc<Admin>>, body: Bytes) -> Response {
    let cache = match cache(&admin) {
        Ok(c) => c,
        Err(e) => return e.to_response(),
    };
    let fields: KeyFields = match parse(&body) {
        Ok(f) => f,
        Err(e) => return e.to_response(),
    };
    match cache.store().create(fields).await {
        Ok((rec, key)) => {
            refreshed(cache).await;
            tracing::info!(key_name = %rec.name, key_id = %rec.id, "virtual key created");
            json(StatusCode::CREATED, &with_key(&rec, &key))
        }
        Err(e) => key_error(e),
    }
}

/// `GET /admin/keys`
pub(super) async fn list(State(admin): State<Arc<Admin>>) -> Response {
    let cache = match cache(&admin) {
        Ok(c) => c,
        Err(e) => return e.to_response(),
    };
    match cache.store().list().await {
        Ok(keys) => json(StatusCode::OK, &serde_json::json!({"data": keys})),
        Err(e) => key_error(e),
    }
}

/// `GET /admin/keys/{id}` (id or name)
pub(super) async fn get(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Response {
    let cache = match cache(&admin) {
        Ok(c) => c,
        Err(e) => return e.to_response(),
    };
    match cache.store().get(&id).await {
        Ok(rec) => json(
            StatusCode::OK,
            &serde_json::to_value(&rec).unwrap_or_default(),
        ),
        Err(e) => key_error(e),
    }
}

/// `PATCH /admin/keys/{id}`: the fields given change; `null` clears one.
pub(super) async fn update(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let cache = match cache(&admin) {
        Ok(c) => c,
        Err(e) => return e.to_response(),
    };
    let fields: KeyFields = match parse(&body) {
        Ok(f) => f,
        Err(e) => return e.to_response(),
    };
    match cache.store().update(&id, fields).await {
        Ok(rec) => {
            refreshed(cache).await;
            json(
                StatusCode::OK,
                &serde_json::to_value(&rec).unwrap_or_default(),
            )
        }
        Err(e) => key_error(e),
    }
}

/// The body of a rotation.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// How long the previous secret keeps working, e.g. `1h` (default) or `0s`.
    grace: Option<String>,
}

/// `POST /admin/keys/{id}/rotate` `{"grace": "1h"}`
pub(super) async fn rotate(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let cache = match cache(&admin) {
        Ok(c) => c,
        Err(e) => return e.to_response(),
    };
    let r: Rotate = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e.to_response(),
    };
    let grace: Duration = match r.grace.as_deref().map(crate::config::units::parse_duration) {
        None => DEFAULT_ROTATION_GRACE,
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            return key_error(KeyError::Invalid(format!("`grace`: {e}")));
        }
    };
    match cache.store().rotate(&id, grace).await {
        Ok((rec, key)) => {
            refreshed(cache).await;
            tracing::info!(key_name = %rec.name, grace = ?grace, "virtual key rotated");
            json(StatusCode::OK, &with_key(&rec, &key))
        }
        Err(e) => key_error(e),
    }
}

/// `POST /admin/keys/{id}/revoke` or `DELETE /admin/keys/{id}`
pub(super) async fn revoke(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Response {
    let cache = match cache(&admin) {
        Ok(c) => c,
        Err(e) => return e.to_response(),
    };
    match cache.store().revoke(&id).await {
        Ok(rec) => {
            refreshed(cache).await;
            tracing::info!(key_name = %rec.name, "virtual key revoked");
            json(
                StatusCode::OK,
                &serde_json::to_value(&rec).unwrap_or_default(),
            )
        }
        Err(e) => key_error(e),
    }
}
