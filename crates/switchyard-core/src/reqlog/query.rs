//! Reading the request log: filtered, paginated lists, one request in full, and aggregates
//! grouped by any dimension and a time bucket. Shared by the admin API and the CLI, and written
//! once for both store dialects.

use serde_json::{json, Map, Value as Json};

use super::time::{format_rfc3339, parse_time};
use super::writer::COLUMNS;
use crate::auth::Principal;
use crate::store::{Dialect, Params, Store, StoreError, Value};

/// Which requests a list or an aggregate covers. Every field narrows the set.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filter {
    /// Started at or after (Unix ms).
    pub since: Option<i64>,
    /// Started before (Unix ms).
    pub until: Option<i64>,
    /// Virtual key name, or `master` / `anonymous`.
    pub key: Option<String>,
    /// Team.
    pub team: Option<String>,
    /// End user.
    pub user: Option<String>,
    /// A tag the request carries.
    pub tag: Option<String>,
    /// The model name the client asked for.
    pub alias: Option<String>,
    /// The upstream model.
    pub model: Option<String>,
    /// The provider.
    pub provider: Option<String>,
    /// Exact status (`404`) or a class (`5xx`).
    pub status: Option<StatusFilter>,
    /// Error kind (`rate_limited`, `timeout`, ...).
    pub error_kind: Option<String>,
    /// Outcome (`completed`, `failed`, `upstream_error`, `client_cancelled`).
    pub outcome: Option<String>,
    /// The request id (`x-request-id`).
    pub request_id: Option<String>,
    /// What the response cache did (`hit`, `miss`, `refresh`, `bypass`, `uncacheable`).
    pub cache: Option<String>,
    /// What the guardrails did (`passed`, or the rules that fired as the record writes them).
    pub guardrail: Option<String>,
    /// At least this total latency.
    pub min_latency_ms: Option<f64>,
    /// At least this cost, nano-dollars (known costs only).
    pub min_cost_nanos: Option<i64>,
}

/// A status filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// This status.
    Exact(u16),
    /// `Nxx`: from N*100 to N*100+99.
    Class(u16),
}

/// A dimension aggregates are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// Virtual key name (or `master` / `anonymous`).
    Key,
    /// Team.
    Team,
    /// End user.
    User,
    /// Tag (a request with several tags counts in each).
    Tag,
    /// The model name the client asked for.
    Alias,
    /// The upstream model.
    Model,
    /// The provider.
    Provider,
    /// `provider/model` that answered.
    Deployment,
    /// HTTP status.
    Status,
    /// Error kind.
    ErrorKind,
    /// Outcome.
    Outcome,
    /// What the response cache did.
    Cache,
    /// What the guardrails did.
    Guardrail,
    /// API operation.
    Operation,
    /// The value of one tag key (`tag:feature`): the key is `Query::tag_keys[i]`; requests
    /// without that tag group under null.
    TagKey(u8),
}

impl Dim {
    const ALL: [(&'static str, Dim); 14] = [
        ("key", Dim::Key),
        ("team", Dim::Team),
        ("user", Dim::User),
        ("tag", Dim::Tag),
        ("alias", Dim::Alias),
        ("model", Dim::Model),
        ("provider", Dim::Provider),
        ("deployment", Dim::Deployment),
        ("status", Dim::Status),
        ("error_kind", Dim::ErrorKind),
        ("outcome", Dim::Outcome),
        ("operation", Dim::Operation),
        ("cache", Dim::Cache),
        ("guardrail", Dim::Guardrail),
    ];

    /// The dimension's name in parameters and output.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, d)| *d == self)
            .map_or("?", |(n, _)| n)
    }

    fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, d)| *d)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown dimension `{s}`; use one of: {}", names.join(", "))
            })
    }

    fn expr(self) -> &'static str {
        match self {
            // Built with its parameter in `tag_key_expr`.
            Self::TagKey(_) => "NULL",
            Self::Key => "COALESCE(r.key_name, r.principal)",
            Self::Team => "r.team",
            Self::User => "r.user_id",
            Self::Tag => "t.value",
            Self::Alias => "r.alias",
            Self::Model => "r.model",
            Self::Provider => "r.provider",
            Self::Deployment => "r.deployment",
            Self::Status => "r.status",
            Self::ErrorKind => "r.error_kind",
            Self::Outcome => "r.outcome",
            Self::Cache => "r.cache_outcome",
            Self::Guardrail => "r.guardrail_outcome",
            Self::Operation => "r.operation",
        }
    }
}

/// A time bucket for aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Calendar hours (UTC).
    Hour,
    /// Calendar days (UTC).
    Day,
}

impl Bucket {
    fn millis(self) -> i64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }
}

/// Everything a list or stats request may say.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Which requests.
    pub filter: Filter,
    /// Page size for lists (1..=1000, default 50).
    pub limit: usize,
    /// Where a list continues (`next_cursor` of the previous page).
    pub cursor: Option<String>,
    /// Group-by dimensions for stats.
    pub by: Vec<Dim>,
    /// Time bucket for stats.
    pub bucket: Option<Bucket>,
    /// The tag keys of `Dim::TagKey` dimensions (`by=tag:feature`), by index.
    pub tag_keys: Vec<String>,
}

/// Default page size.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page size.
pub const MAX_LIMIT: usize = 1000;

impl Query {
    /// Parses `name=value` parameters (admin API query strings, CLI flags). Errors name the
    /// parameter.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        now_ms: i64,
    ) -> Result<Self, String> {
        let mut q = Query {
            filter: Filter::default(),
            limit: DEFAULT_LIMIT,
            cursor: None,
            by: Vec::new(),
            bucket: None,
            tag_keys: Vec::new(),
        };
        let f = &mut q.filter;
        for (k, v) in pairs {
            let text = || Some(v.to_owned()).filter(|s| !s.is_empty());
            let bad = |what: &str| format!("`{k}`: {what}");
            match k {
                "since" => f.since = Some(parse_time(v, now_ms).map_err(|e| bad(&e))?),
                "until" => f.until = Some(parse_time(v, now_ms).map_err(|e| bad(&e))?),
                "key" => f.key = text(),
                "team" => f.team = text(),
                "user" => f.user = text(),
                "tag" => f.tag = text(),
                "alias" => f.alias = text(),
                "model" => f.model = text(),
                "provider" => f.provider = text(),
                "error_kind" => f.error_kind = text(),
                "outcome" => f.outcome = text(),
                "cache" => f.cache = text(),
                "guardrail" => f.guardrail = text(),
                "request_id" => f.request_id = text(),
                "status" => {
                    let s = v.trim().to_ascii_lowercase();
                    f.status = Some(if let Some(c) = s.strip_suffix("xx") {
                        match c.parse::<u16>() {
                            Ok(c @ 1..=5) => StatusFilter::Class(c),
                            _ => {
                                return Err(bad(
                                    "expected a status such as 429 or a class such as 5xx",
                                ))
                            }
                        }
                    } else {
                        StatusFilter::Exact(s.parse().map_err(|_| {
                            bad("expected a status such as 429 or a class such as 5xx")
                        })?)
                    });
                }
                "min_latency_ms" => {
                    f.min_latency_ms = Some(
                        v.parse::<f64>()
                            .ok()
                            .filter(|x| x.is_finite())
                            .ok_or_else(|| bad("expected a number of milliseconds"))?,
                    );
                }
                "min_cost" => {
                    let usd = v
                        .parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite() && *x >= 0.0)
                        .ok_or_else(|| bad("expected a cost in USD such as 0.01"))?;
                    f.min_cost_nanos = Some(crate::budgets::usd_to_nanos(usd));
                }
                "limit" => {
                    q.limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| bad(&format!("expected 1 to {MAX_LIMIT}")))?;
                }
                "cursor" => q.cursor = text(),
                "by" => {
                    for d in v.split(',').map(str::trim).filter(|d| !d.is_empty()) {
                        // `day`/`hour` among the dimensions is the time bucket (spend reports).
                        match d {
                            "day" => {
                                q.bucket = Some(Bucket::Day);
                                continue;
                            }
                            "hour" => {
                                q.bucket = Some(Bucket::Hour);
                                continue;
                            }
                            _ => {}
                        }
                        let d = match d.strip_prefix("tag:") {
                            Some(tk) => {
                                if tk.is_empty() || tk.contains('=') {
                                    return Err(bad("`tag:` needs a tag key, as in tag:feature"));
                                }
                                let i = match q.tag_keys.iter().position(|k| k == tk) {
                                    Some(i) => i,
                                    None => {
                                        q.tag_keys.push(tk.to_owned());
                                        q.tag_keys.len() - 1
                                    }
                                };
                                Dim::TagKey(u8::try_from(i).map_err(|_| bad("too many tag keys"))?)
                            }
                            None => Dim::parse(d).map_err(|e| bad(&e))?,
                        };
                        if !q.by.contains(&d) {
                            q.by.push(d);
                        }
                    }
                }
                "bucket" => {
                    q.bucket = match v {
                        "hour" => Some(Bucket::Hour),
                        "day" => Some(Bucket::Day),
                        "" | "none" => None,
                        _ => return Err(bad("expected `hour` or `day`")),
                    }
                }
                other => return Err(format!("unknown parameter `{other}`")),
            }
        }
        Ok(q)
    }
}

impl Query {
    /// A dimension's name in output: its parameter name, `tag:<key>` for a tag key.
    pub fn dim_name(&self, d: Dim) -> String {
        match d {
            Dim::TagKey(i) => format!(
                "tag:{}",
                self.tag_keys
                    .get(usize::from(i))
                    .map_or("?", String::as_str)
            ),
            d => d.name().to_owned(),
        }
    }
}

/// The SQL value of tag key `key` on a request (null when it has no such tag).
fn tag_key_expr(key: &str, dialect: Dialect, p: &mut Params) -> String {
    let prefix = format!("{key}=");
    // The length is ours (a number), inlined so both dialects type it as an integer.
    let len = prefix.chars().count();
    let a = p.push(prefix);
    let from = match dialect {
        Dialect::Sqlite => "json_each(r.tags) AS jt",
        Dialect::Postgres => "jsonb_array_elements_text(r.tags::jsonb) AS jt(value)",
    };
    format!(
        "(SELECT substr(jt.value, {}) FROM {from} WHERE substr(jt.value, 1, {len}) = {a} LIMIT 1)",
        len + 1
    )
}

/// Failures of a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The request was malformed (bad cursor).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records whose request id is the placeholder `a`, through the primary key or the request-id
/// index. A record whose request id the gateway generated has it as its id as well, and is
/// left out of the request-id index (migration 7), which holds clients' request ids only.
pub(super) fn request_id_is(a: &str) -> String {
    format!(
        "((r.id = {a} AND r.request_id = r.id) OR (r.request_id = {a} AND r.request_id <> r.id))"
    )
}

fn where_clause(f: &Filter, dialect: Dialect, p: &mut Params) -> String {
    let mut w: Vec<String> = Vec::new();
    let mut eq = |col: &str, v: &Option<String>, p: &mut Params| {
        if let Some(v) = v {
            w.push(format!("{col} = {}", p.push(v.as_str())));
        }
    };
    eq("r.team", &f.team, p);
    eq("r.user_id", &f.user, p);
    eq("r.alias", &f.alias, p);
    eq("r.model", &f.model, p);
    eq("r.provider", &f.provider, p);
    eq("r.error_kind", &f.error_kind, p);
    eq("r.outcome", &f.outcome, p);
    eq("r.cache_outcome", &f.cache, p);
    eq("r.guardrail_outcome", &f.guardrail, p);
    if let Some(id) = &f.request_id {
        w.push(request_id_is(&p.push(id.as_str())));
    }
    if let Some(k) = &f.key {
        let a = p.push(k.as_str());
        // Only master-key and keyless records have no key name (and so no entry in the
        // partial key index); any other name is a virtual key's, found through that index.
        let principal = [Principal::Anonymous, Principal::Master]
            .iter()
            .any(|p| p.name() == k.as_str());
        w.push(if principal {
            format!("(r.key_name = {a} OR (r.key_name IS NULL AND r.principal = {a}))")
        } else {
            format!("r.key_name = {a}")
        });
    }
    if let Some(since) = f.since {
        w.push(format!("r.started_at >= {}", p.push(since)));
    }
    if let Some(until) = f.until {
        w.push(format!("r.started_at < {}", p.push(until)));
    }
    match f.status {
        Some(StatusFilter::Exact(s)) => w.push(format!("r.status = {}", p.push(i64::from(s)))),
        Some(StatusFilter::Class(c)) => {
            let lo = p.push(i64::from(c) * 100);
            let hi = p.push(i64::from(c) * 100 + 99);
            w.push(format!("r.status BETWEEN {lo} AND {hi}"));
        }
        None => {}
    }
    if let Some(ms) = f.min_latency_ms {
        w.push(format!("r.latency_ms >= {}", p.push(ms)));
    }
    if let Some(n) = f.min_cost_nanos {
        w.push(format!("r.cost_nanos >= {}", p.push(n)));
    }
    if let Some(tag) = &f.tag {
        let a = p.push(tag.as_str());
        w.push(match dialect {
            Dialect::Sqlite => {
                format!("EXISTS (SELECT 1 FROM json_each(r.tags) AS jt WHERE jt.value = {a})")
            }
            Dialect::Postgres => format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements_text(r.tags::jsonb) AS jt(value) \
                 WHERE jt.value = {a})"
            ),
        });
    }
    if w.is_empty() {
        "TRUE".into()
    } else {
        w.join(" AND ")
    }
}

/// Columns of a list entry: everything but the bodies.
fn summary_columns() -> Vec<&'static str> {
    COLUMNS
        .iter()
        .copied()
        .filter(|c| !matches!(*c, "request_body" | "response_body"))
        .collect()
}

/// A stored row as the JSON object the API and the CLI print.
fn row_json(cols: &[&str], row: Vec<Value>) -> Json {
    let mut o = Map::new();
    for (c, v) in cols.iter().zip(row) {
        let j = match (*c, v) {
            (_, Value::Null) => Json::Null,
            ("started_at", v) => {
                let ms = v.as_i64().unwrap_or_default();
                o.insert("started_at_ms".into(), json!(ms));
                json!(format_rfc3339(ms))
            }
            ("stream" | "cost_known" | "bodies_truncated" | "usage_estimated", v) => {
                json!(v.as_bool())
            }
            ("attempts" | "tags", Value::Text(t)) => {
                serde_json::from_str(&t).unwrap_or(Json::String(t))
            }
            ("cost_nanos", v) => {
                let n = v.as_i64().unwrap_or_default();
                o.insert("cost_usd".into(), json!(n as f64 / 1e9));
                json!(n)
            }
            (_, Value::Int(i)) => json!(i),
            (_, Value::Real(f)) => json!(f),
            (_, Value::Text(t)) => json!(t),
            (_, Value::Bool(b)) => json!(b),
        };
        let name = if *c == "user_id" { "user" } else { c };
        o.insert(name.into(), j);
    }
    if !o.contains_key("cost_usd") {
        o.insert("cost_usd".into(), Json::Null);
    }
    if o.get("tags").is_some_and(Json::is_null) {
        o.insert("tags".into(), json!([]));
    }
    Json::Object(o)
}

/// A page of requests, newest first, and the cursor of the next page.
pub async fn list(store: &Store, q: &Query) -> Result<(Vec<Json>, Option<String>), QueryError> {
    let dialect = store.dialect();
    let mut p = Params::new(dialect);
    let mut w = where_clause(&q.filter, dialect, &mut p);
    if let Some(c) = &q.cursor {
        let (ts, id) = c
            .split_once('_')
            .and_then(|(ts, id)| Some((ts.parse::<i64>().ok()?, id.to_owned())))
            .ok_or_else(|| QueryError::Invalid("`cursor`: not a cursor from this API".into()))?;
        let a = p.push(ts);
        let b = p.push(id);
        w = format!("{w} AND (r.started_at < {a} OR (r.started_at = {a} AND r.id < {b}))");
    }
    let cols = summary_columns();
    let select: Vec<String> = cols.iter().map(|c| format!("r.{c}")).collect();
    let limit = p.push(q.limit as i64 + 1);
    let sql = format!(
        "SELECT {} FROM requests AS r WHERE {w} ORDER BY r.started_at DESC, r.id DESC LIMIT {limit}",
        select.join(", ")
    );
    let mut rows = store.query(sql, p.values).await?;
    let more = rows.len() > q.limit;
    rows.truncate(q.limit);
    let next = if more {
        rows.last().and_then(|r| {
            let ts = r
                .get(cols.iter().position(|c| *c == "started_at")?)?
                .as_i64()?;
            let id = r.get(cols.iter().position(|c| *c == "id")?)?.as_str()?;
            Some(format!("{ts}_{id}"))
        })
    } else {
        None
    };
    Ok((rows.into_iter().map(|r| row_json(&cols, r)).collect(), next))
}

/// One request in full (attempts and bodies), by record id or request id (the newest match,
/// in the list's order).
pub async fn get(store: &Store, id: &str) -> Result<Option<Json>, QueryError> {
    let mut p = Params::new(store.dialect());
    let a = p.push(id);
    let select: Vec<String> = COLUMNS.iter().map(|c| format!("r.{c}")).collect();
    let sql = format!(
        "SELECT {} FROM requests AS r WHERE r.id = {a} OR {} \
         ORDER BY (r.id = {a}) DESC, r.started_at DESC, r.id DESC LIMIT 1",
        select.join(", "),
        request_id_is(&a)
    );
    let rows = store.query(sql, p.values).await?;
    Ok(rows.into_iter().next().map(|r| row_json(&COLUMNS, r)))
}

/// Aggregates over the filtered requests, one object per group (and bucket): `count`,
/// `errors`, `error_rate`, token sums, `cost_usd` (known costs) with `cost_unknown` (requests
/// without a known cost), and the nearest-rank `p50_ms`, `p95_ms`, `p99_ms` of latency.
pub async fn stats(store: &Store, q: &Query) -> Result<Vec<Json>, QueryError> {
    let dialect = store.dialect();
    let mut p = Params::new(dialect);
    let w = where_clause(&q.filter, dialect, &mut p);
    let mut groups: Vec<String> = Vec::new();
    let mut select: Vec<String> = Vec::new();
    for (i, d) in q.by.iter().enumerate() {
        let expr = match d {
            Dim::TagKey(k) => tag_key_expr(
                q.tag_keys.get(usize::from(*k)).map_or("", String::as_str),
                dialect,
                &mut p,
            ),
            d => d.expr().to_owned(),
        };
        select.push(format!("{expr} AS g{i}"));
        groups.push(format!("g{i}"));
    }
    if let Some(b) = q.bucket {
        let ms = b.millis();
        select.push(format!("(r.started_at / {ms}) * {ms} AS bucket"));
        groups.push("bucket".into());
    }
    let from = if q.by.contains(&Dim::Tag) {
        match dialect {
            Dialect::Sqlite => "requests AS r LEFT JOIN json_each(r.tags) AS t".to_owned(),
            Dialect::Postgres => "requests AS r LEFT JOIN LATERAL \
                 jsonb_array_elements_text(r.tags::jsonb) AS t(value) ON TRUE"
                .to_owned(),
        }
    } else {
        "requests AS r".to_owned()
    };
    select.extend(
        [
            "r.latency_ms",
            "r.error_kind",
            "r.prompt_tokens",
            "r.completion_tokens",
            "r.cached_tokens",
            "r.cost_nanos",
            "r.cost_known",
        ]
        .map(|c| format!("{c} AS {}", &c[2..])),
    );
    let partition = if groups.is_empty() {
        String::new()
    } else {
        format!("PARTITION BY {}", groups.join(", "))
    };
    let group_by = if groups.is_empty() {
        String::new()
    } else {
        format!("GROUP BY {0} ORDER BY {0}", groups.join(", "))
    };
    let pct = |n: u32| format!("MAX(CASE WHEN rn = (n * {n} + 99) / 100 THEN latency_ms END)");
    let sql = format!(
        "WITH base AS (SELECT {sel} FROM {from} WHERE {w}), \
         ranked AS (SELECT base.*, \
            ROW_NUMBER() OVER ({partition} ORDER BY latency_ms) AS rn, \
            COUNT(*) OVER ({partition}) AS n FROM base) \
         SELECT {g}COUNT(*), \
            SUM(CASE WHEN error_kind IS NOT NULL THEN 1 ELSE 0 END), \
            CAST(SUM(prompt_tokens) AS BIGINT), CAST(SUM(completion_tokens) AS BIGINT), \
            CAST(SUM(cached_tokens) AS BIGINT), \
            CAST(SUM(CASE WHEN cost_known THEN cost_nanos ELSE 0 END) AS BIGINT), \
            SUM(CASE WHEN cost_known THEN 0 ELSE 1 END), \
            {p50}, {p95}, {p99} \
         FROM ranked {group_by}",
        sel = select.join(", "),
        g = groups.iter().map(|g| format!("{g}, ")).collect::<String>(),
        p50 = pct(50),
        p95 = pct(95),
        p99 = pct(99),
    );
    let rows = store.query(sql, p.values).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut o = Map::new();
        let mut it = row.into_iter();
        for d in &q.by {
            let v = it.next().unwrap_or(Value::Null);
            o.insert(
                q.dim_name(*d),
                match v {
                    Value::Int(i) => json!(i),
                    Value::Text(t) => json!(t),
                    _ => Json::Null,
                },
            );
        }
        if q.bucket.is_some() {
            let b = it.next().and_then(|v| v.as_i64()).unwrap_or_default();
            o.insert("bucket".into(), json!(format_rfc3339(b)));
        }
        let mut next_i = || it.next().and_then(|v| v.as_i64()).unwrap_or(0);
        let count = next_i();
        if count == 0 {
            // An aggregate over no rows at all (no group-by): nothing to report.
            continue;
        }
        let errors = next_i();
        let prompt = next_i();
        let completion = next_i();
        let cached = next_i();
        let cost = next_i();
        let unknown = next_i();
        let mut next_f = || it.next().and_then(|v| v.as_f64());
        let (p50, p95, p99) = (next_f(), next_f(), next_f());
        o.insert("count".into(), json!(count));
        o.insert("errors".into(), json!(errors));
        o.insert("error_rate".into(), json!(errors as f64 / count as f64));
        o.insert("prompt_tokens".into(), json!(prompt));
        o.insert("completion_tokens".into(), json!(completion));
        o.insert("cached_tokens".into(), json!(cached));
        o.insert("cost_nanos".into(), json!(cost));
        o.insert("cost_usd".into(), json!(cost as f64 / 1e9));
        o.insert("cost_unknown".into(), json!(unknown));
        o.insert("p50_ms".into(), json!(p50));
        o.insert("p95_ms".into(), json!(p95));
        o.insert("p99_ms".into(), json!(p99));
        out.push(Json::Object(o));
    }
    Ok(out)
}
