//! The admin API under `/admin/...`: the request log today (list, one request, aggregates, the
//! log's own counters); key and budget management later, behind the same guard.
//!
//! Access needs the admin key (`admin.key`, held as a SHA-256 digest like every client key),
//! presented as `Authorization: Bearer <key>` (or `x-api-key`). Without a configured admin key
//! the admin API does not exist: every `/admin/...` path answers 404, so a gateway without
//! one does not even reveal it has an admin surface. With one, a missing or wrong key is 401.
//! Errors use OpenAI's error shape, as the rest of the gateway does.
//!
//! New admin endpoints are added in [`Admin::router`]; the guard covers them all.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderValue, Request, StatusCode};

use crate::config::sha256;
use crate::error::GatewayError;
use crate::reqlog::query::{self, Query, QueryError};
use crate::reqlog::ReqLog;
use crate::store::Store;

mod keys;
mod spend;

/// `admin:` after validation.
#[derive(Clone, Default)]
pub struct AdminConfig {
    /// Digest of the admin key; the admin API is off without one.
    pub key_sha256: Option<[u8; 32]>,
    /// A listener of its own for the admin API, instead of the gateway's.
    pub listen: Option<SocketAddr>,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("key", &self.key_sha256.map(|_| "[set]"))
            .field("listen", &self.listen)
            .finish()
    }
}

/// What the admin handlers reach.
#[derive(Clone)]
pub struct Admin {
    key_sha256: Option<[u8; 32]>,
    store: Option<Store>,
    reqlog: Option<Arc<ReqLog>>,
    keys: Option<Arc<crate::keys::KeyCache>>,
    budgets: Option<Arc<crate::budgets::Budgets>>,
}

impl Admin {
    /// The admin state: the key digest, the store (if one is open) and the request log.
    pub fn new(config: &AdminConfig, store: Option<Store>, reqlog: Option<Arc<ReqLog>>) -> Self {
        Self {
            key_sha256: config.key_sha256,
            store,
            reqlog,
            keys: None,
            budgets: None,
        }
    }

    /// Adds virtual-key management (`/admin/keys`), over the key cache's own store handle so
    /// it works with the request log off.
    pub fn with_keys(mut self, keys: Option<Arc<crate::keys::KeyCache>>) -> Self {
        self.keys = keys;
        self
    }

    /// Adds the budgets whose state `/admin/budgets` shows.
    pub fn with_budgets(mut self, budgets: Option<Arc<crate::budgets::Budgets>>) -> Self {
        self.budgets = budgets;
        self
    }

    /// The `/admin/...` routes with their guard, ready to merge into a router.
    pub fn router(self) -> axum::Router {
        let state = Arc::new(self);
        axum::Router::new()
            .route("/admin/requests", get(list_requests))
            .route("/admin/requests/{id}", get(one_request))
            .route("/admin/stats", get(stats))
            .route("/admin/request-log", get(log_status))
            .route("/admin/keys", get(keys::list).post(keys::create))
            .route(
                "/admin/keys/{id}",
                get(keys::get).patch(keys::update).delete(keys::revoke),
            )
            .route("/admin/keys/{id}/rotate", post(keys::rotate))
            .route("/admin/keys/{id}/revoke", post(keys::revoke))
            .route("/admin/spend", get(spend::spend))
            .route("/admin/budgets", get(spend::budgets))
            .route_layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
            .with_state(state)
    }
}

/// 404 without an admin key configured, 401 without the right key, the handler otherwise.
async fn guard(State(admin): State<Arc<Admin>>, req: Request<Body>, next: Next) -> Response {
    let Some(expected) = admin.key_sha256 else {
        return GatewayError::RouteNotFound {
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
        }
        .to_response();
    };
    let Some(presented) = crate::auth::presented_key(req.headers()) else {
        return GatewayError::MissingKey.to_response();
    };
    if !crate::auth::ct_eq(&expected, &sha256(presented.as_bytes())) {
        return GatewayError::InvalidKey.to_response();
    }
    next.run(req).await
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Decodes a query string into pairs (`+` and `%XX` decoded).
fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, GatewayError> {
    let mut out = Vec::new();
    for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        match (k, v) {
            (Some(k), Some(v)) => out.push((k, v)),
            _ => {
                return Err(GatewayError::InvalidField {
                    param: String::new(),
                    message: "the query string is not valid percent-encoded UTF-8".into(),
                })
            }
        }
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn parse_query(raw: Option<&str>) -> Result<Query, GatewayError> {
    let pairs = query_pairs(raw)?;
    Query::parse(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        crate::store::unix_millis(),
    )
    .map_err(|message| GatewayError::InvalidField {
        param: message
            .strip_prefix('`')
            .and_then(|m| m.split_once('`'))
            .map(|(p, _)| p.to_owned())
            .unwrap_or_default(),
        message,
    })
}

fn store_of(admin: &Admin) -> Result<&Store, GatewayError> {
    admin
        .store
        .as_ref()
        .ok_or_else(|| GatewayError::RouteNotFound {
            method: "GET".into(),
            path: "/admin/requests (the request log is disabled)".into(),
        })
}

fn query_failed(e: QueryError) -> GatewayError {
    match e {
        QueryError::Invalid(message) => GatewayError::InvalidField {
            param: "cursor".into(),
            message,
        },
        QueryError::Store(e) => {
            tracing::warn!(error = %e, "admin query failed");
            GatewayError::Internal(format!("the request log store failed: {e}"))
        }
    }
}

/// `GET /admin/requests?since=24h&alias=...&limit=50&cursor=...`
async fn list_requests(State(admin): State<Arc<Admin>>, RawQuery(raw): RawQuery) -> Response {
    let run = async {
        let q = parse_query(raw.as_deref())?;
        let store = store_of(&admin)?;
        let (data, next) = query::list(store, &q).await.map_err(query_failed)?;
        Ok::<_, GatewayError>(json(
            StatusCode::OK,
            &serde_json::json!({"data": data, "next_cursor": next}),
        ))
    };
    run.await.unwrap_or_else(|e| e.to_response())
}

/// `GET /admin/requests/{id}`: by record id or request id.
async fn one_request(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Response {
    let run = async {
        let store = store_of(&admin)?;
        match query::get(store, &id).await.map_err(query_failed)? {
            Some(r) => Ok(json(StatusCode::OK, &r)),
            None => Ok(json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"error": {
                    "message": format!("no request `{id}` in the request log"),
                    "type": "invalid_request_error",
                    "param": "id",
                    "code": "request_not_found",
                }}),
            )),
        }
    };
    run.await.unwrap_or_else(|e: GatewayError| e.to_response())
}

/// `GET /admin/stats?by=alias,model&bucket=hour&since=24h`
async fn stats(State(admin): State<Arc<Admin>>, RawQuery(raw): RawQuery) -> Response {
    let run = async {
        let q = parse_query(raw.as_deref())?;
        let store = store_of(&admin)?;
        let groups = query::stats(store, &q).await.map_err(query_failed)?;
        let by: Vec<String> = q.by.iter().map(|d| q.dim_name(*d)).collect();
        Ok::<_, GatewayError>(json(
            StatusCode::OK,
            &serde_json::json!({"by": by, "bucket": q.bucket.map(|b| match b {
                query::Bucket::Hour => "hour",
                query::Bucket::Day => "day",
            }), "data": groups}),
        ))
    };
    run.await.unwrap_or_else(|e| e.to_response())
}

/// `GET /admin/request-log`: the log's counters (queue depth, spilled, dropped, ...).
async fn log_status(State(admin): State<Arc<Admin>>) -> Response {
    let body = match &admin.reqlog {
        Some(l) => {
            let s = l.stats();
            let m: HashMap<&str, u64> = [
                ("queue_depth", s.queue_depth),
                ("submitted", s.submitted),
                ("stored", s.stored),
                ("spilled", s.spilled),
                ("replayed", s.replayed),
                ("dropped", s.dropped),
                ("store_errors", s.store_errors),
            ]
            .into();
            serde_json::json!({"enabled": true, "counters": m})
        }
        None => serde_json::json!({"enabled": false}),
    };
    json(StatusCode::OK, &body)
}
