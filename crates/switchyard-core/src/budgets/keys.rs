//! Virtual keys' own budgets: `budget_usd` per `budget_period` on a key's store record,
//! enforced like a configured `key:<name>` budget (a configured one for the same key, if any,
//! applies as well: a request must fit both).
//!
//! The rules are rebuilt from the key cache each time it reloads ([`Budgets::follow_keys`]),
//! so a key created, changed or revoked through the admin API is budgeted from the next request
//! on this instance, and within one `keys.refresh` on the others. A key's ledger rows are kept
//! under its id (`key-id:<id>`), not its name: renaming a key keeps its spend. Changing a
//! key's limit keeps the current window's spend (and the alerts already sent); changing its
//! period starts counting in the new period's window.

use std::collections::HashMap;
use std::sync::Arc;

use super::{usd_to_nanos, Budgets, Period, Rule, Scope};
use crate::keys::{KeyCache, KeyRecord};

/// The period of a key budget whose record sets `budget_usd` but no `budget_period`.
pub const DEFAULT_KEY_PERIOD: Period = Period::Month;

impl Budgets {
    /// Keeps the keys' own budgets in step with `cache`: now, and after every reload.
    pub fn follow_keys(self: &Arc<Self>, cache: &KeyCache) {
        let weak = Arc::downgrade(self);
        cache.on_refresh(Box::new(move |records| {
            if let Some(budgets) = weak.upgrade() {
                budgets.sync_keys(records);
            }
        }));
    }

    /// Replaces the keys' own budgets with those of `records` (every key the store holds).
    /// Revoked and expired keys have none; a record with no `budget_usd` has none.
    pub fn sync_keys(&self, records: &[Arc<KeyRecord>]) {
        let now = crate::store::unix_millis();
        let mut next: HashMap<Arc<str>, Arc<Rule>> = HashMap::new();
        for rec in records {
            let Some(limit_usd) = rec.budget_usd else {
                continue;
            };
            if !rec.active_at(now) {
                continue;
            }
            let period = match rec.budget_period.as_deref() {
                None => DEFAULT_KEY_PERIOD,
                Some(p) => match Period::parse(p) {
                    Some(p) => p,
                    None => {
                        // The admin API refuses such a period; only a hand-edited row has one.
                        if self.warned.lock().insert((rec.id.clone(), rec.updated_at)) {
                            tracing::warn!(
                                target: "switchyard::budget",
                                key = %rec.name,
                                budget_period = %p,
                                "virtual key budget ignored: its period is not day, week or month"
                            );
                        }
                        continue;
                    }
                },
            };
            let name: Arc<str> = rec.name.as_str().into();
            let rule = Rule {
                label: format!("key:{}", rec.name).into(),
                ledger: format!("key-id:{}", rec.id).into(),
                scope: Scope::Key(Arc::clone(&name)),
                period,
                limit_usd,
                limit_nanos: usd_to_nanos(limit_usd),
                alerts: self.key_alerts.clone(),
                soft_cap: None,
                zone: self.zone.clone(),
                key_id: Some(rec.id.as_str().into()),
            };
            next.insert(name, Arc::new(rule));
        }
        *self.keys.write() = Arc::new(next);
    }
}
