//! `GET /admin/spend`: spend reports from the request log, grouped by any combination of tag
//! (`tag` for every tag, `tag:<key>` for one key's values), team, key, user, alias, provider,
//! model and a `day`/`hour` bucket, over a time range; `GET /admin/budgets`: every budget's
//! current window (spent, reserved, limit), configured budgets first, then virtual keys' own.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use super::{json, parse_query, query_failed, store_of, Admin};
use crate::error::GatewayError;
use crate::reqlog::query;

/// The fields of a spend row after its group-by values, as the CLI prints them too.
pub const SPEND_FIELDS: [&str; 7] = [
    "count",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "cost_nanos",
    "cost_unknown",
];

/// Spend rows from aggregate rows: the group keys, the bucket and [`SPEND_FIELDS`]; with the
/// total cost (nano-dollars) of all of them.
pub fn spend_rows(q: &query::Query, groups: Vec<Value>) -> (Vec<Value>, i64) {
    let mut keys: Vec<String> = q.by.iter().map(|d| q.dim_name(*d)).collect();
    if q.bucket.is_some() {
        keys.push("bucket".into());
    }
    keys.extend(SPEND_FIELDS.iter().map(|s| (*s).to_owned()));
    let mut total = 0i64;
    let rows = groups
        .into_iter()
        .map(|g| {
            total += g["cost_nanos"].as_i64().unwrap_or(0);
            let mut o = serde_json::Map::new();
            for k in &keys {
                o.insert(k.clone(), g.get(k).cloned().unwrap_or(Value::Null));
            }
            Value::Object(o)
        })
        .collect();
    (rows, total)
}

/// `GET /admin/spend?by=team,tag:feature,day&since=7d` (every request-log filter applies).
pub(super) async fn spend(State(admin): State<Arc<Admin>>, RawQuery(raw): RawQuery) -> Response {
    let run = async {
        let q = parse_query(raw.as_deref())?;
        let store = store_of(&admin)?;
        let groups = query::stats(store, &q).await.map_err(query_failed)?;
        let (rows, total) = spend_rows(&q, groups);
        let by: Vec<String> = q.by.iter().map(|d| q.dim_name(*d)).collect();
        let fmt = crate::reqlog::time::format_rfc3339;
        Ok::<_, GatewayError>(json(
            StatusCode::OK,
            &json!({
                "by": by,
                "bucket": q.bucket.map(|b| match b {
                    query::Bucket::Hour => "hour",
                    query::Bucket::Day => "day",
                }),
                "since": q.filter.since.map(fmt),
                "until": q.filter.until.map(fmt),
                "total_cost_usd": total as f64 / 1e9,
                "total_cost_nanos": total,
                "data": rows,
            }),
        ))
    };
    run.await.unwrap_or_else(|e| e.to_response())
}

/// `GET /admin/budgets`: each budget's current window.
pub(super) async fn budgets(State(admin): State<Arc<Admin>>) -> Response {
    let data = match &admin.budgets {
        Some(b) => match b.status().await {
            Ok(data) => data,
            Err(e) => return e.to_response(),
        },
        None => Vec::new(),
    };
    json(StatusCode::OK, &json!({"data": data}))
}
