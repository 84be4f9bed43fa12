//! Validation of `budgets:`.

use std::sync::Arc;

use super::super::raw::RawConfig;
use super::{key, Seg, Validator};
use crate::budgets::{period, BudgetRule, BudgetsConfig, Period, Scope, Zone};

impl Validator<'_> {
    pub(super) fn budgets(&mut self, raw: &RawConfig) -> BudgetsConfig {
        let b = &raw.budgets;
        let time_zone = match (&b.time_zone, &b.utc_offset) {
            (Some(_), Some(_)) => {
                self.problem(
                    &[key("budgets"), key("utc_offset")],
                    "set `time_zone` only (`utc_offset` is its older, fixed-offset form)",
                );
                Zone::default()
            }
            (Some(tz), None) => self.zone(&[key("budgets"), key("time_zone")], tz),
            (None, Some(s)) => match period::parse_offset(s) {
                Some(minutes) => Zone::Fixed(minutes),
                None => {
                    self.problem(
                        &[key("budgets"), key("utc_offset")],
                        format!("`{s}` is not a UTC offset such as +02:00, -05:30 or Z"),
                    );
                    Zone::default()
                }
            },
            (None, None) => Zone::default(),
        };
        let key_alerts = match &b.key_alerts {
            None => crate::budgets::DEFAULT_KEY_ALERTS.to_vec(),
            Some(a) => self.alerts(&[key("budgets"), key("key_alerts")], a),
        };
        let webhook = b.alert_webhook.as_ref().and_then(|u| {
            let ok = u.0.parse::<http::Uri>().ok().filter(|uri| {
                matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
            });
            if ok.is_none() {
                self.problem(
                    &[key("budgets"), key("alert_webhook")],
                    "must be an http:// or https:// URL",
                );
            }
            ok.map(|_| u.0.clone())
        });
        let mut limits: Vec<BudgetRule> = Vec::new();
        for (i, r) in b.limits.iter().enumerate() {
            let at = |k: &str| [key("budgets"), key("limits"), Seg::Index(i), key(k)];
            let scope = Scope::parse(&r.scope);
            if scope.is_none() {
                self.problem(
                    &at("scope"),
                    format!(
                        "`{}` is not a scope; use key:<name>, team:<name>, user:<name> or \
                         tag:<key>=<value>",
                        r.scope
                    ),
                );
            }
            let period = Period::parse(&r.period);
            if period.is_none() {
                self.problem(
                    &at("period"),
                    format!("`{}`: expected `day`, `week` or `month`", r.period),
                );
            }
            if !(r.limit_usd.is_finite() && r.limit_usd > 0.0) {
                self.problem(&at("limit_usd"), "must be a number of USD greater than 0");
            }
            let alerts = self.alerts(&at("alerts"), &r.alerts);
            let rule_zone = r
                .time_zone
                .as_ref()
                .map(|tz| self.zone(&at("time_zone"), tz));
            match (&r.soft_cap_usd, &r.downgrade_to) {
                (Some(soft), Some(to)) => {
                    if !(soft.is_finite() && *soft >= 0.0 && *soft < r.limit_usd) {
                        self.problem(
                            &at("soft_cap_usd"),
                            "must be at least 0 and below `limit_usd`",
                        );
                    }
                    if !raw.models.contains_key(to) {
                        self.problem(
                            &at("downgrade_to"),
                            format!("`{to}` is not a model alias in `models`"),
                        );
                    }
                }
                (None, None) => {}
                _ => self.problem(
                    &[key("budgets"), key("limits"), Seg::Index(i)],
                    "set both `soft_cap_usd` and `downgrade_to`, or neither",
                ),
            }
            if let (Some(scope), Some(period)) = (scope, period) {
                if limits
                    .iter()
                    .any(|l| l.scope == scope && l.period == period)
                {
                    self.problem(
                        &at("scope"),
                        format!(
                            "a {} budget for `{}` is already set",
                            period.as_str(),
                            r.scope
                        ),
                    );
                }
                limits.push(BudgetRule {
                    scope,
                    limit_usd: r.limit_usd,
                    period,
                    alerts,
                    soft_cap_usd: r.soft_cap_usd,
                    downgrade_to: r.downgrade_to.as_deref().map(Arc::from),
                    time_zone: rule_zone,
                });
            }
        }
        BudgetsConfig {
            time_zone,
            webhook,
            limits,
            key_alerts,
        }
    }

    /// A time zone: an IANA name or a fixed offset.
    fn zone(&mut self, at: &[Seg], name: &str) -> Zone {
        Zone::parse(name).unwrap_or_else(|| {
            self.problem(
                at,
                format!(
                    "`{name}` is not a time zone: use an IANA name such as Europe/Paris or \
                     America/New_York, or a fixed offset such as +02:00 or UTC"
                ),
            );
            Zone::default()
        })
    }

    /// Alert thresholds, ascending and without repeats.
    fn alerts(&mut self, at: &[Seg], given: &[u32]) -> Vec<u32> {
        let mut alerts = given.to_vec();
        alerts.sort_unstable();
        alerts.dedup();
        if alerts.iter().any(|a| *a == 0 || *a > 1000) || alerts.len() > 64 {
            self.problem(
                at,
                "thresholds are percentages from 1 to 1000, at most 64 of them",
            );
        }
        alerts
    }
}
