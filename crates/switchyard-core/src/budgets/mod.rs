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
//!
//! Which budgets: the configured ones (`budgets.limits`, fixed at start-up) and every virtual
//! key's own (`budget_usd` per `budget_period` on its store record, [`keys`]), which follow the
//! key cache: created, changed or revoked through the admin API they apply to the next request
//! here, and on other replicas within one `keys.refresh`. Periods are calendar windows in a
//! time zone ([`period`], [`zone`]). `/metrics` shows them at scrape time ([`render_metrics`]).

pub mod keys;
mod metrics;
pub mod period;
#[cfg(test)]
mod period_tests;
#[cfg(test)]
mod tests;
pub mod zone;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use metrics::render_metrics;
pub use period::Period;
pub use zone::Zone;

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
    /// Where this budget's periods start, when not in `budgets.time_zone`.
    pub time_zone: Option<Zone>,
}

/// Default alert thresholds of virtual keys' own budgets (`budgets.key_alerts`).
pub const DEFAULT_KEY_ALERTS: [u32; 3] = [50, 80, 100];

/// `budgets:` after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetsConfig {
    /// Where periods start (local midnight, Monday, the 1st) unless a budget says otherwise.
    pub time_zone: Zone,
    /// Where threshold alerts are POSTed (JSON), if anywhere.
    pub webhook: Option<String>,
    /// The budgets.
    pub limits: Vec<BudgetRule>,
    /// Alert thresholds (percent, ascending) of the budgets virtual keys carry in the store.
    pub key_alerts: Vec<u32>,
}

impl Default for BudgetsConfig {
    fn default() -> Self {
        Self {
            time_zone: Zone::default(),
            webhook: None,
            limits: Vec::new(),
            key_alerts: DEFAULT_KEY_ALERTS.to_vec(),
        }
    }
}

/// USD as integer nano-dollars, the unit of the ledger and the request log (`cost_nanos`), so
/// sums are exact.
pub fn usd_to_nanos(usd: f64) -> i64 {
    (usd * 1e9).round() as i64
}

/// Nano-dollars as decimal USD with nine places (`0.000123000`), the text of
/// `x-switchyard-cost-usd`: made from the same nano-dollars the request log records, so the
/// header and the record always agree, and without the float formatter, which cost more than
/// the rest of the header on every answer.
pub fn nanos_text(nanos: i64) -> String {
    let n = nanos.unsigned_abs();
    let mut out = String::with_capacity(24);
    if nanos < 0 {
        out.push('-');
    }
    crate::push_decimal(&mut out, n / 1_000_000_000);
    out.push('.');
    let mut frac = n % 1_000_000_000;
    let mut places = [b'0'; 9];
    for p in places.iter_mut().rev() {
        *p = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    out.extend(places.iter().map(|&d| char::from(d)));
    out
}

/// A budget as enforced: a configured one, or a virtual key's own (from its store record).
#[derive(Debug)]
pub(crate) struct Rule {
    /// What the budget is called in errors, alerts, `/admin/budgets` and `/metrics`.
    label: Arc<str>,
    /// The ledger's `scope` column: the label for configured budgets; `key-id:<id>` for a
    /// key's own budget, so renaming a key keeps its spend (and a new key that takes an old
    /// name does not inherit it).
    ledger: Arc<str>,
    /// Configured budgets match requests by scope; a key's own budget by key name.
    scope: Scope,
    period: Period,
    limit_usd: f64,
    limit_nanos: i64,
    alerts: Vec<u32>,
    soft_cap: Option<(i64, Arc<str>)>,
    zone: Zone,
    /// The virtual key's id, for a key's own budget.
    key_id: Option<Arc<str>>,
}

impl Rule {
    fn configured(r: &BudgetRule, default_zone: &Zone) -> Self {
        let label: Arc<str> = r.scope.label().into();
        Self {
            ledger: Arc::clone(&label),
            label,
            scope: r.scope.clone(),
            period: r.period,
            limit_usd: r.limit_usd,
            limit_nanos: usd_to_nanos(r.limit_usd),
            alerts: r.alerts.clone(),
            soft_cap: r
                .soft_cap_usd
                .zip(r.downgrade_to.clone())
                .map(|(usd, to)| (usd_to_nanos(usd), to)),
            zone: r.time_zone.clone().unwrap_or_else(|| default_zone.clone()),
            key_id: None,
        }
    }
}

/// One budget's window: (ledger scope, period, window start ms).
type WindowKey = (Arc<str>, Period, i64);

#[derive(Debug, Default)]
struct Window {
    spent: i64,
    reserved: i64,
    alerts_sent: u64,
    /// When the window ends (Unix ms): past it, and with nothing reserved, it is dropped.
    end: i64,
}

/// The windows in use, and when past ones were last dropped.
#[derive(Debug, Default)]
struct Windows {
    map: HashMap<WindowKey, Window>,
    swept_at: i64,
}

/// How often ended windows are dropped from memory (their spend stays in the ledger).
const SWEEP_EVERY_MS: i64 = 60_000;

/// The budgets of a gateway and their live state.
pub struct Budgets {
    zone: Zone,
    webhook: Option<String>,
    key_alerts: Vec<u32>,
    /// Configured budgets, fixed for the life of the process.
    rules: Vec<Arc<Rule>>,
    /// Virtual keys' own budgets by key name, replaced whenever the key cache reloads.
    keys: RwLock<Arc<HashMap<Arc<str>, Arc<Rule>>>>,
    windows: Mutex<Windows>,
    store: Option<Store>,
    /// Key records with an unusable budget already warned about: (key id, updated_at).
    warned: Mutex<std::collections::HashSet<(String, i64)>>,
    /// Clock override for tests (Unix ms); `None` reads the system clock.
    clock: Mutex<Option<i64>>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets")
            .field("rules", &self.rules.len())
            .field("key_budgets", &self.keys.read().len())
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

/// One budget a request reserved on.
#[derive(Debug)]
struct HoldItem {
    window: WindowKey,
    /// When the window ends (Unix ms).
    end: i64,
    reserved: i64,
    /// The budget as it was at admission (its limit and thresholds decide the alerts).
    rule: Arc<Rule>,
}

/// An estimated cost reserved on a request's budgets. Settled with the real cost when the
/// request is logged; dropped unsettled, it releases the reservation.
pub struct Hold {
    budgets: Arc<Budgets>,
    items: Vec<HoldItem>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    period: &'static str,
    period_start: String,
    time_zone: String,
    threshold_pct: u32,
    spent_usd: f64,
    limit_usd: f64,
}

/// A budget's current window, for `/admin/budgets` and `/metrics`.
#[derive(Debug)]
pub(crate) struct Current {
    rule: Arc<Rule>,
    start: i64,
    end: i64,
    spent: i64,
    reserved: i64,
}

impl Budgets {
    /// Budgets from config, keeping their ledger in `store` when there is one. Virtual keys'
    /// own budgets are added by [`Budgets::sync_keys`] (see [`Budgets::follow_keys`]).
    pub fn new(cfg: &BudgetsConfig, store: Option<Store>) -> Arc<Self> {
        Arc::new(Self {
            rules: cfg
                .limits
                .iter()
                .map(|r| Arc::new(Rule::configured(r, &cfg.time_zone)))
                .collect(),
            zone: cfg.time_zone.clone(),
            webhook: cfg.webhook.clone(),
            key_alerts: cfg.key_alerts.clone(),
            keys: RwLock::new(Arc::new(HashMap::new())),
            windows: Mutex::new(Windows::default()),
            store,
            warned: Mutex::new(Default::default()),
            clock: Mutex::new(None),
        })
    }

    /// Sets the clock (Unix ms) for tests of period roll-over.
    pub fn set_clock(&self, now_ms: Option<i64>) {
        *self.clock.lock() = now_ms;
    }

    fn now(&self) -> i64 {
        self.clock.lock().unwrap_or_else(crate::store::unix_millis)
    }

    /// The budgets a request of key `key` with attribution `a` falls under, with their
    /// current windows.
    fn matching(&self, key: Option<&str>, a: &Attribution) -> Vec<(Arc<Rule>, WindowKey, i64)> {
        let now = self.now();
        let window = |r: &Arc<Rule>| {
            let (start, end) = r.period.window(now, &r.zone);
            (Arc::clone(r), (Arc::clone(&r.ledger), r.period, start), end)
        };
        let mut out: Vec<_> = self
            .rules
            .iter()
            .filter(|r| r.scope.matches(key, a))
            .map(window)
            .collect();
        if let Some(rule) = key.and_then(|k| self.keys.read().get(k).cloned()) {
            out.push(window(&rule));
        }
        out
    }

    /// Whether some budget applies to a request of key `key` with attribution `a` (its
    /// reservation is worth a real prompt count only then).
    pub fn applies(&self, key: Option<&str>, a: &Attribution) -> bool {
        self.rules.iter().any(|r| r.scope.matches(key, a))
            || key.is_some_and(|k| self.keys.read().contains_key(k))
    }

    /// Loads a window's settled spend from the ledger the first time it is used here.
    async fn load(&self, k: &WindowKey, end: i64) -> Result<(), GatewayError> {
        if self.windows.lock().map.contains_key(k) {
            return Ok(());
        }
        self.load_many(&[(k.clone(), end)]).await
    }

    /// Loads the windows not yet in memory from the ledger (a window without a ledger row
    /// starts at zero), a hundred per query.
    async fn load_many(&self, wanted: &[(WindowKey, i64)]) -> Result<(), GatewayError> {
        let missing: Vec<&(WindowKey, i64)> = {
            let windows = self.windows.lock();
            wanted
                .iter()
                .filter(|(k, _)| !windows.map.contains_key(k))
                .collect()
        };
        for chunk in missing.chunks(100) {
            let mut rows = Vec::new();
            if let Some(store) = &self.store {
                let mut p = Params::new(store.dialect());
                let mut scopes: Vec<&str> = chunk.iter().map(|(k, _)| &*k.0).collect();
                scopes.sort_unstable();
                scopes.dedup();
                let mut starts: Vec<i64> = chunk.iter().map(|(k, _)| k.2).collect();
                starts.sort_unstable();
                starts.dedup();
                let scopes: Vec<String> = scopes.into_iter().map(|s| p.push(s)).collect();
                let starts: Vec<String> = starts.into_iter().map(|s| p.push(s)).collect();
                let sql = format!(
                    "SELECT scope, period, period_start, spent_nanos, alerts_sent \
                     FROM budget_ledger WHERE scope IN ({}) AND period_start IN ({})",
                    scopes.join(", "),
                    starts.join(", ")
                );
                rows = store.query(sql, p.values).await.map_err(|e| {
                    GatewayError::Internal(format!("budget ledger unavailable: {e}"))
                })?;
            }
            let now = self.now();
            let mut windows = self.windows.lock();
            for (k, end) in chunk {
                let row = rows.iter().find(|r| {
                    r.first().and_then(Value::as_str) == Some(&*k.0)
                        && r.get(1).and_then(Value::as_str) == Some(k.1.as_str())
                        && r.get(2).and_then(Value::as_i64) == Some(k.2)
                });
                let w = Window {
                    spent: row.and_then(|r| r.get(3)?.as_i64()).unwrap_or(0),
                    alerts_sent: row.and_then(|r| r.get(4)?.as_i64()).unwrap_or(0) as u64,
                    reserved: 0,
                    end: *end,
                };
                // A settle may have created the window meanwhile; it holds the newer spend.
                windows.map.entry(k.clone()).or_insert(w);
            }
            if now - windows.swept_at >= SWEEP_EVERY_MS {
                windows.swept_at = now;
                windows.map.retain(|_, w| w.end > now || w.reserved != 0);
            }
        }
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
        for (_, k, end) in &matching {
            self.load(k, *end).await?;
        }
        let mut windows = self.windows.lock();
        let mut downgrade: Option<Arc<str>> = None;
        for (rule, k, end) in &matching {
            let w = windows.map.entry(k.clone()).or_insert_with(|| Window {
                end: *end,
                ..Window::default()
            });
            let committed = w.spent.saturating_add(w.reserved);
            if committed >= rule.limit_nanos {
                return Err(GatewayError::BudgetExceeded {
                    message: format!(
                        "Budget exhausted: the {} budget of {} (USD {}) is used up for this \
                         period; requests are refused until it resets.",
                        rule.period.as_str(),
                        rule.label,
                        rule.limit_usd
                    ),
                });
            }
            if let Some((soft, to)) = &rule.soft_cap {
                if downgrade.is_none() && committed >= *soft {
                    downgrade = Some(Arc::clone(to));
                }
            }
        }
        let est = estimate(downgrade.as_deref().unwrap_or(alias)).max(0);
        let mut items = Vec::with_capacity(matching.len());
        for (rule, k, end) in matching {
            windows
                .map
                .entry(k.clone())
                .or_insert_with(|| Window {
                    end,
                    ..Window::default()
                })
                .reserved += est;
            items.push(HoldItem {
                window: k,
                end,
                reserved: est,
                rule,
            });
        }
        Ok(Some(Admission {
            hold: Hold {
                budgets: Arc::clone(self),
                items,
            },
            downgrade,
        }))
    }

    /// Every budget: the configured ones in config order, then the keys' own by key name.
    fn all_rules(&self) -> Vec<Arc<Rule>> {
        let keys = Arc::clone(&self.keys.read());
        let mut key_rules: Vec<Arc<Rule>> = keys.values().cloned().collect();
        key_rules.sort_by(|a, b| a.label.cmp(&b.label));
        self.rules.iter().cloned().chain(key_rules).collect()
    }

    /// Makes sure every budget's current window is in memory (read from the ledger once).
    pub(crate) async fn load_current(&self) -> Result<(), GatewayError> {
        let now = self.now();
        let wanted: Vec<(WindowKey, i64)> = self
            .all_rules()
            .iter()
            .map(|r| {
                let (start, end) = r.period.window(now, &r.zone);
                ((Arc::clone(&r.ledger), r.period, start), end)
            })
            .collect();
        self.load_many(&wanted).await
    }

    /// Every budget's current window as held in memory.
    pub(crate) fn current(&self) -> Vec<Current> {
        let now = self.now();
        let rules = self.all_rules();
        let windows = self.windows.lock();
        rules
            .into_iter()
            .map(|rule| {
                let (start, end) = rule.period.window(now, &rule.zone);
                let w = windows
                    .map
                    .get(&(Arc::clone(&rule.ledger), rule.period, start));
                let (spent, reserved) = w.map_or((0, 0), |w| (w.spent, w.reserved));
                Current {
                    rule,
                    start,
                    end,
                    spent,
                    reserved,
                }
            })
            .collect()
    }

    /// The state of every budget's current window, for the admin API.
    pub async fn status(&self) -> Result<Vec<serde_json::Value>, GatewayError> {
        self.load_current().await?;
        Ok(self
            .current()
            .iter()
            .map(|c| {
                let r = &c.rule;
                let mut v = serde_json::json!({
                    "scope": &*r.label,
                    "source": if r.key_id.is_some() { "key" } else { "config" },
                    "period": r.period.as_str(),
                    "time_zone": r.zone.name(),
                    "period_start": crate::reqlog::time::format_rfc3339(c.start),
                    "period_end": crate::reqlog::time::format_rfc3339(c.end),
                    "limit_usd": r.limit_usd,
                    "spent_nanos": c.spent,
                    "spent_usd": c.spent as f64 / 1e9,
                    "reserved_nanos": c.reserved,
                });
                if let Some(id) = &r.key_id {
                    v["key_id"] = serde_json::Value::from(&**id);
                }
                v
            })
            .collect())
    }

    fn settle(self: &Arc<Self>, items: &[HoldItem], cost_nanos: Option<i64>) {
        let cost = cost_nanos.unwrap_or(0).max(0);
        let mut alerts = Vec::new();
        let mut writes = Vec::new();
        {
            let mut windows = self.windows.lock();
            for item in items {
                let (k, rule) = (&item.window, &item.rule);
                // Only a window dropped while this hold reserved nothing is missing here.
                let w = windows.map.entry(k.clone()).or_insert_with(|| Window {
                    end: item.end,
                    ..Window::default()
                });
                w.reserved -= item.reserved;
                w.spent = w.spent.saturating_add(cost);
                let mut new_bits = 0u64;
                let limit = rule.limit_nanos.max(1);
                for (i, pct) in rule.alerts.iter().enumerate().take(64) {
                    let bit = 1u64 << i;
                    let reached = i128::from(w.spent) * 100 >= i128::from(*pct) * i128::from(limit);
                    if reached && w.alerts_sent & bit == 0 {
                        w.alerts_sent |= bit;
                        new_bits |= bit;
                        alerts.push(Alert {
                            scope: rule.label.to_string(),
                            key_id: rule.key_id.as_deref().map(str::to_owned),
                            period: k.1.as_str(),
                            period_start: crate::reqlog::time::format_rfc3339(k.2),
                            time_zone: rule.zone.name(),
                            threshold_pct: *pct,
                            spent_usd: w.spent as f64 / 1e9,
                            limit_usd: rule.limit_usd,
                        });
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
                p.push(&*scope),
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
            for item in items {
                if let Some(w) = windows.map.get_mut(&item.window) {
                    w.reserved -= item.reserved;
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
