//! Budget usage in `/metrics`, computed at scrape time from the budgets' current windows (the
//! request path does no metrics work for budgets).
//!
//! Labels stay bounded: a series per configured budget (`budgets.limits`, a set the operator
//! wrote), labelled with its scope as written and its period. Virtual keys' own budgets are one
//! per key, an unbounded set whose names are the operator's business, so they are never a
//! label: they are counted instead, in total and by how much of their limit the current window
//! has used (at least 50%, 80%, 100%).

use std::fmt::Write as _;

use super::{Budgets, Current};
use crate::telemetry::escape_label;

/// A gauge family of configured budgets: name, help, value of one budget.
type Family<'a> = (&'a str, &'a str, &'a dyn Fn(&Current) -> f64);

/// The used fractions key budgets are counted at.
const KEY_RATIOS: [(&str, i128); 3] = [("0.5", 50), ("0.8", 80), ("1", 100)];

/// Appends the budget families in Prometheus' text format. Windows not yet used since start-up
/// are read from the ledger first; if it cannot be read, what is in memory is shown.
pub async fn render_metrics(budgets: &Budgets, out: &mut String) {
    if let Err(e) = budgets.load_current().await {
        tracing::warn!(target: "switchyard::budget", error = %e, "budget metrics: ledger not read");
    }
    render(&budgets.current(), out);
}

fn render(current: &[Current], out: &mut String) {
    let (keyed, configured): (Vec<&Current>, Vec<&Current>) =
        current.iter().partition(|c| c.rule.key_id.is_some());
    let labels = |c: &Current| {
        format!(
            "budget=\"{}\",period=\"{}\"",
            escape_label(&c.rule.label),
            c.rule.period.as_str()
        )
    };
    let usd = |nanos: i64| nanos as f64 / 1e9;
    let families: [Family<'_>; 4] = [
        (
            "switchyard_budget_limit_usd",
            "Limit of each configured budget per period, in US dollars.",
            &|c| c.rule.limit_usd,
        ),
        (
            "switchyard_budget_spent_usd",
            "Settled spend in each configured budget's current period, in US dollars.",
            &|c| usd(c.spent),
        ),
        (
            "switchyard_budget_reserved_usd",
            "Estimated cost reserved by requests in flight on each configured budget.",
            &|c| usd(c.reserved),
        ),
        (
            "switchyard_budget_used_ratio",
            "Settled spend over limit of each configured budget's current period.",
            &|c| c.spent as f64 / c.rule.limit_nanos.max(1) as f64,
        ),
    ];
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for c in &configured {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(c), value(c));
        }
    }
    let _ = writeln!(
        out,
        "# HELP switchyard_key_budgets Virtual keys with a budget of their own.\n\
         # TYPE switchyard_key_budgets gauge\nswitchyard_key_budgets {}",
        keyed.len()
    );
    let _ = writeln!(
        out,
        "# HELP switchyard_key_budgets_used Virtual keys whose own budget's current period has \
         used at least `ratio` of its limit.\n# TYPE switchyard_key_budgets_used gauge"
    );
    for (ratio, pct) in KEY_RATIOS {
        let n = keyed
            .iter()
            .filter(|c| i128::from(c.spent) * 100 >= pct * i128::from(c.rule.limit_nanos.max(1)))
            .count();
        let _ = writeln!(out, "switchyard_key_budgets_used{{ratio=\"{ratio}\"}} {n}");
    }
}
