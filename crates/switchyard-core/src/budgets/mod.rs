//! Spend budgets per key, team, user and tag, per calendar period, with graduated responses:
//! alerts at thresholds (each sent once per period to a webhook and logged), an optional
//! downgrade to a cheaper alias past a soft cap, and a hard stop at the cap.
//!
//! Concurrency: admission reserves an estimated cost (the alias's dearest candidate's price ×
//! (estimated prompt tokens + `max_tokens` or a default)) on every budget the request falls
//! under, and is refused once `spent + reserved` has reached the limit. The real cost is
//! settled when the request is logged ([`crate::pipeline::ctx::RequestCtx::log`], the
//! exactly-once point), releasing the reservation. So on one instance the spend of a period can
//! exceed its limit by at most the largest single reservation plus whatever real costs exceeded
//! their reservations (an estimate can be low: the prompt estimate is a heuristic).
//!
//! State: the ledger (`budget_ledger`, migration 3) holds the settled spend and the alerts sent
//! per (scope, period, window start); settles are atomic increments, so the ledger is exact on
//! PostgreSQL with several replicas too. Each instance caches a window when first used and
//! admits against its own view: across N replicas, a replica does not see another's spend of
//! the current window until it next loads the window (after a restart), so the bound above
//! holds per replica, not in total. Without a store (`request_log` off) budgets are kept in
//! memory only.

pub mod period;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use period::Period;

use crate::attribution::Attribution;
use crate::error::GatewayError;
use crate::store::{Params, Store, Value};

/// Who a budget covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One virtual key, by name.
    Key(Arc<str>),
    /// A team.
    Team(Arc<str>),
    /// An end user.
    User(Arc<str>),
    /// Requests carrying tag `key=value`.
    Tag(Arc<str>, Arc<str>),
}

impl Scope {
    /// Parses `key:<name>`, `team:<name>`, `user:<name>` or `tag:<key>=<value>`.
    pub fn parse(s: &str) -> Option<Self> {
        let (kind, rest) = s.split_once(':')?;
        if rest.is_empty() {
            return None;
        }
        Some(match kind {
            "key" => Self::Key(rest.into()),
            "team" => Self::Team(rest.into()),
            "user" => Self::User(rest.into()),
            "tag" => {
                let (k, v) = rest.split_once('=')?;
                if k.is_empty() || v.is_empty() {
                    return None;
                }
                Self::Tag(k.into(), v.into())
            }
            _ => return None,
        })
    }

    /// The scope as written in config, in errors, alerts and the ledger (never a secret: keys
    /// are named, not shown).
    pub fn label(&self) -> String {
        match self {
            Self::Key(n) => format!("key:{n}"),
            Self::Team(n) => format!("team:{n}"),
            Self::User(n) => format!("user:{n}"),
            Self::Tag(k, v) => format!("tag:{k}={v}"),
        }
    }

    fn matches(&self, key: Option<&str>, a: &Attribution) -> bool {
        match self {
            Self::Key(n) => key == Some(&**n),
            Self::Team(n) => a.team.as_deref() == Some(&**n),
            Self::User(n) => a.user.as_deref() == Some(&**n),
            Self::Tag(k, v) => a.tags.iter().any(|(tk, tv)| tk == k && tv == v),
        }
    }
}

/// One budget (`budgets.limits[]` after validation).
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetRule {
    /// Who it covers.
    pub scope: Scope,
    /// The cap per period, USD.
    pub limit_usd: f64,
    /// The period.
    pub period: Period,
    /// Alert thresholds in percent of the limit, ascending (at most 64).
    pub alerts: Vec<u32>,
    /// Past this spend, requests are served by `downgrade_to` instead.
    pub soft_cap_usd: Option<f64>,
    /// The cheaper alias used past the soft cap.
    pub downgrade_to: Option<Arc<str>>,
}

impl BudgetRule {
    fn limit_nanos(&self) -> i64 {
        usd_to_nanos(self.limit_usd)
    }
}

/// `budgets:` after validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetsConfig {
    /// Minutes east of UTC where periods start (local midnight, Monday, the 1st).
    pub utc_offset_minutes: i32,
    /// Where threshold alerts are POSTed (JSON), if anywhere.
    pub webhook: Option<String>,
    /// The budgets.
    pub limits: Vec<BudgetRule>,
}

/// USD as integer nano-dollars, the unit of the ledger and the request log (`cost_nanos`), so
/// sums are exact.
pub fn usd_to_nanos(usd: f64) -> i64 {
    (usd * 1e9).round() as i64
}

/// One budget's window: (scope label, period, window start ms).
type WindowKey = (String, Period, i64);

#[derive(Debug, Default)]
struct Window {
    spent: i64,
    reserved: i64,
    alerts_sent: u64,
}

/// The budgets of a gateway and their live state.
pub struct Budgets {
    offset: i32,
    webhook: Option<String>,
    rules: RwLock<Arc<Vec<Arc<BudgetRule>>>>,
    windows: Mutex<HashMap<WindowKey, Window>>,
    store: Option<Store>,
    /// Clock override for tests (Unix ms); `None` reads the system clock.
    clock: Mutex<Option<i64>>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets")
            .field("rules", &self.rules.read().len())
            .finish_non_exhaustive()
    }
}

/// What admission decided for a request within its budgets.
#[derive(Debug)]
pub struct Admission {
    /// The reservation to settle when the request is logged.
    pub hold: Hold,
    /// The alias to serve the request with instead, past a soft cap.
    pub downgrade: Option<Arc<str>>,
}

/// An estimated cost reserved on a request's budgets. Settled with the real cost when the
/// request is logged; dropped unsettled, it releases the reservation.
pub struct Hold {
    budgets: Arc<Budgets>,
    items: Vec<(WindowKey, i64)>,
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold").field("items", &self.items).finish()
    }
}

/// A [`Hold`] shared by the contexts of one request (hedged attempts race with copies of it):
/// the one that logs takes and settles it; dropped by all unsettled, it is released.
pub type SharedHold = Arc<Mutex<Option<Hold>>>;

/// A threshold crossed, for the webhook and the log.
#[derive(Debug, Clone, serde::Serialize)]
struct Alert {
    scope: String,
    period: &'static str,
    period_start: String,
    threshold_pct: u32,
    spent_usd: f64,
    limit_usd: f64,
}

impl Budgets {
    /// Budgets from config, keeping their ledger in `store` when there is one.
    pub fn new(cfg: &BudgetsConfig, store: Option<Store>) -> Arc<Self> {
        Arc::new(Self {
            offset: cfg.utc_offset_minutes,
            webhook: cfg.webhook.clone(),
            rules: RwLock::new(Arc::new(cfg.limits.iter().cloned().map(Arc::new).collect())),
            windows: Mutex::new(HashMap::new()),
            store,
            clock: Mutex::new(None),
        })
    }

    /// Adds (or replaces) the budget of virtual key `name`: for keys whose budget lives on the
    /// key record in the store rather than in config.
    pub fn for_key(&self, name: &str, limit_usd: f64, period: Period) {
        let scope = Scope::Key(name.into());
        let mut rules = self.rules.write();
        let mut next: Vec<Arc<BudgetRule>> = rules
            .iter()
            .filter(|r| !(r.scope == scope && r.period == period))
            .cloned()
            .collect();
        next.push(Arc::new(BudgetRule {
            scope,
            limit_usd,
            period,
            alerts: Vec::new(),
            soft_cap_usd: None,
            downgrade_to: None,
        }));
        *rules = Arc::new(next);
    }

    /// Sets the clock (Unix ms) for tests of period roll-over.
    pub fn set_clock(&self, now_ms: Option<i64>) {
        *self.clock.lock() = now_ms;
    }

    fn now(&self) -> i64 {
        self.clock.lock().unwrap_or_else(crate::store::unix_millis)
    }

    fn matching(&self, key: Option<&str>, a: &Attribution) -> Vec<(Arc<BudgetRule>, WindowKey)> {
        let now = self.now();
        let rules = Arc::clone(&self.rules.read());
        rules
            .iter()
            .filter(|r| r.scope.matches(key, a))
            .map(|r| {
                let (start, _) = r.period.window(now, self.offset);
                (Arc::clone(r), (r.scope.label(), r.period, start))
            })
            .collect()
    }

    /// Loads a window's settled spend from the ledger the first time it is used here.
    async fn load(&self, k: &WindowKey) -> Result<(), GatewayError> {
        if self.windows.lock().contains_key(k) {
            return Ok(());
        }
        let mut w = Window::default();
        if let Some(store) = &self.store {
            let mut p = Params::new(store.dialect());
            let sql = format!(
                "SELECT spent_nanos, alerts_sent FROM budget_ledger \
                 WHERE scope = {} AND period = {} AND period_start = {}",
                p.push(k.0.as_str()),
                p.push(k.1.as_str()),
                p.push(k.2)
            );
            let rows = store
                .query(sql, p.values)
                .await
                .map_err(|e| GatewayError::Internal(format!("budget ledger unavailable: {e}")))?;
            if let Some(row) = rows.into_iter().next() {
                w.spent = row.first().and_then(Value::as_i64).unwrap_or(0);
                w.alerts_sent = row.get(1).and_then(Value::as_i64).unwrap_or(0) as u64;
            }
        }
        self.windows.lock().entry(k.clone()).or_insert(w);
        Ok(())
    }

    /// Admits a request to its budgets (key `key`, attribution `a`, asking for `alias`), or
    /// refuses it naming the exhausted budget. `estimate` gives the nano-dollars to reserve for
    /// an alias.
    pub async fn admit(
        self: &Arc<Self>,
        key: Option<&str>,
        a: &Attribution,
        alias: &str,
        estimate: &(dyn Fn(&str) -> i64 + Sync),
    ) -> Result<Option<Admission>, GatewayError> {
        let matching = self.matching(key, a);
        if matching.is_empty() {
            return Ok(None);
        }
        for (_, k) in &matching {
            self.load(k).await?;
        }
        let mut windows = self.windows.lock();
        let mut downgrade: Option<Arc<str>> = None;
        for (rule, k) in &matching {
            let w = windows.entry(k.clone()).or_default();
            let committed = w.spent.saturating_add(w.reserved);
            if committed >= rule.limit_nanos() {
                return Err(GatewayError::BudgetExceeded {
                    message: format!(
                        "Budget exhausted: the {} budget of {} (USD {:.2}) is used up for this \
                         period; requests are refused until it resets.",
                        rule.period.as_str(),
                        k.0,
                        rule.limit_usd
                    ),
                });
            }
            if let (Some(soft), Some(to)) = (rule.soft_cap_usd, &rule.downgrade_to) {
                if downgrade.is_none() && committed >= usd_to_nanos(soft) {
                    downgrade = Some(Arc::clone(to));
                }
            }
        }
        let est = estimate(downgrade.as_deref().unwrap_or(alias)).max(0);
        let mut items = Vec::with_capacity(matching.len());
        for (_, k) in matching {
            windows.entry(k.clone()).or_default().reserved += est;
            items.push((k, est));
        }
        Ok(Some(Admission {
            hold: Hold {
                budgets: Arc::clone(self),
                items,
            },
            downgrade,
        }))
    }

    /// The state of every budget's current window, for the admin API.
    pub fn status(&self) -> Vec<serde_json::Value> {
        let now = self.now();
        let rules = Arc::clone(&self.rules.read());
        let windows = self.windows.lock();
        rules
            .iter()
            .map(|r| {
                let (start, end) = r.period.window(now, self.offset);
                let w = windows.get(&(r.scope.label(), r.period, start));
                let (spent, reserved) = w.map_or((0, 0), |w| (w.spent, w.reserved));
                serde_json::json!({
                    "scope": r.scope.label(),
                    "period": r.period.as_str(),
                    "period_start": crate::reqlog::time::format_rfc3339(start),
                    "period_end": crate::reqlog::time::format_rfc3339(end),
                    "limit_usd": r.limit_usd,
                    "spent_nanos": spent,
                    "spent_usd": spent as f64 / 1e9,
                    "reserved_nanos": reserved,
                })
            })
            .collect()
    }

    fn settle(self: &Arc<Self>, items: &[(WindowKey, i64)], cost_nanos: Option<i64>) {
        let cost = cost_nanos.unwrap_or(0).max(0);
        let rules = Arc::clone(&self.rules.read());
        let mut alerts = Vec::new();
        let mut writes = Vec::new();
        {
            let mut windows = self.windows.lock();
            for (k, reserved) in items {
                let w = windows.entry(k.clone()).or_default();
                w.reserved -= reserved;
                w.spent = w.spent.saturating_add(cost);
                let mut new_bits = 0u64;
                if let Some(rule) = rules
                    .iter()
                    .find(|r| r.scope.label() == k.0 && r.period == k.1)
                {
                    let limit = rule.limit_nanos().max(1);
                    for (i, pct) in rule.alerts.iter().enumerate().take(64) {
                        let bit = 1u64 << i;
                        let reached =
                            i128::from(w.spent) * 100 >= i128::from(*pct) * i128::from(limit);
                        if reached && w.alerts_sent & bit == 0 {
                            w.alerts_sent |= bit;
                            new_bits |= bit;
                            alerts.push(Alert {
                                scope: k.0.clone(),
                                period: k.1.as_str(),
                                period_start: crate::reqlog::time::format_rfc3339(k.2),
                                threshold_pct: *pct,
                                spent_usd: w.spent as f64 / 1e9,
                                limit_usd: rule.limit_usd,
                            });
                        }
                    }
                }
                if cost > 0 || new_bits != 0 {
                    writes.push((k.clone(), cost, new_bits));
                }
            }
        }
        for a in &alerts {
            tracing::warn!(
                target: "switchyard::budget",
                scope = %a.scope,
                period = a.period,
                period_start = %a.period_start,
                threshold_pct = a.threshold_pct,
                spent_usd = a.spent_usd,
                limit_usd = a.limit_usd,
                "budget threshold reached"
            );
        }
        if writes.is_empty() && (alerts.is_empty() || self.webhook.is_none()) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!(target: "switchyard::budget", "no runtime to record budget spend");
            return;
        };
        let this = Arc::clone(self);
        rt.spawn(async move {
            this.persist(writes).await;
            this.send_alerts(alerts).await;
        });
    }

    async fn persist(&self, writes: Vec<(WindowKey, i64, u64)>) {
        let Some(store) = &self.store else { return };
        for ((scope, period, start), cost, bits) in writes {
            let mut p = Params::new(store.dialect());
            let sql = format!(
                "INSERT INTO budget_ledger (scope, period, period_start, spent_nanos, \
                 alerts_sent, updated_at) VALUES ({}, {}, {}, {}, {}, {}) \
                 ON CONFLICT (scope, period, period_start) DO UPDATE SET \
                 spent_nanos = budget_ledger.spent_nanos + excluded.spent_nanos, \
                 alerts_sent = budget_ledger.alerts_sent | excluded.alerts_sent, \
                 updated_at = excluded.updated_at",
                p.push(scope.as_str()),
                p.push(period.as_str()),
                p.push(start),
                p.push(cost),
                p.push(bits as i64),
                p.push(crate::store::unix_millis()),
            );
            if let Err(e) = store.execute(sql, p.values).await {
                tracing::error!(
                    target: "switchyard::budget",
                    scope = %scope,
                    error = %e,
                    cost_nanos = cost,
                    "budget ledger write failed"
                );
            }
        }
    }

    async fn send_alerts(&self, alerts: Vec<Alert>) {
        let Some(url) = &self.webhook else { return };
        if alerts.is_empty() {
            return;
        }
        // Alerts are rare: a client of their own, on whichever runtime settles.
        let client = crate::http_client::build(std::time::Duration::from_secs(5));
        for a in alerts {
            let body = serde_json::json!({"type": "budget.threshold", "budget": a});
            let body = serde_json::to_vec(&body).unwrap_or_default();
            let req = http::Request::post(url.as_str())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(body)));
            let sent = match req {
                Ok(req) => {
                    tokio::time::timeout(std::time::Duration::from_secs(10), client.request(req))
                        .await
                        .map_err(|_| "timed out".to_owned())
                        .and_then(|r| r.map_err(|e| e.to_string()))
                }
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(resp) => {
                    let status = resp.status();
                    // Read the body to the end so the connection is released.
                    let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                    if !status.is_success() {
                        tracing::warn!(target: "switchyard::budget", %status, "budget alert webhook refused the alert");
                    }
                }
                Err(e) => {
                    tracing::warn!(target: "switchyard::budget", error = %e, "budget alert webhook failed");
                }
            }
        }
    }
}

/// The nano-dollars to reserve for a request to `alias`: its dearest candidate's price for the
/// estimated prompt tokens plus the completion cap (or the default). Unpriced candidates
/// reserve nothing (start-up warns about them; their cost is recorded as unknown).
pub fn estimate_nanos(
    router: &crate::routing::Router,
    alias: &str,
    features: &crate::routing::estimate::Features,
) -> i64 {
    let Ok(route) = router.route(alias) else {
        return 0;
    };
    route
        .candidates
        .iter()
        .filter_map(|d| router.pricing().price(d))
        .map(|(p, _)| usd_to_nanos(p.estimate(features.prompt_tokens, features.output_tokens())))
        .max()
        .unwrap_or(0)
}

impl Hold {
    /// Settles the real cost (nano-dollars; `None` when unknown) and releases the reservation.
    pub fn settle(mut self, cost_nanos: Option<i64>) {
        let items = std::mem::take(&mut self.items);
        self.budgets.settle(&items, cost_nanos);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.items.is_empty() {
            let items = std::mem::take(&mut self.items);
            let mut windows = self.budgets.windows.lock();
            for (k, reserved) in items {
                if let Some(w) = windows.get_mut(&k) {
                    w.reserved -= reserved;
                }
            }
        }
    }
}

/// The pipeline's admission step: refuses a request whose budget is used up, moves it to the
/// downgrade alias past a soft cap (rewriting `model`, the alias routing will use), and puts
/// the reservation on the context, which settles it when the request is logged.
pub(crate) async fn admit_request(
    budgets: &Arc<Budgets>,
    gw: &crate::pipeline::Gateway,
    ctx: &mut crate::pipeline::ctx::RequestCtx,
    model: &mut String,
    features: &crate::routing::estimate::Features,
) -> Result<(), GatewayError> {
    let estimate = |alias: &str| estimate_nanos(&gw.router, alias, features);
    let admission = budgets
        .admit(ctx.key_name.as_deref(), &ctx.attribution, model, &estimate)
        .await?;
    if let Some(a) = admission {
        if let Some(to) = a.downgrade {
            *model = to.to_string();
            ctx.budget_downgrade = Some(to);
        }
        ctx.budget = Some(Arc::new(Mutex::new(Some(a.hold))));
    }
    Ok(())
}
