use super::period::{civil_from_days, days_from_civil, parse_offset, Period};
use super::*;

const DAY: i64 = 86_400_000;

/// A small deterministic generator (xorshift): seeded loops without a property-test crate
/// (the period property tests use it too).
pub(super) struct Rng(pub(super) u64);
impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(super) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn month_len(y: i64, m: u32) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[test]
fn civil_dates_round_trip_and_known_points() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    // 2100 is not a leap year: the day after Feb 28 is Mar 1.
    assert_eq!(
        civil_from_days(days_from_civil(2100, 2, 28) + 1),
        (2100, 3, 1)
    );
    let mut rng = Rng(0x5eed_1234);
    for _ in 0..20_000 {
        let d = rng.range(-800_000, 800_000);
        let (y, m, dd) = civil_from_days(d);
        assert!((1..=12).contains(&m) && dd >= 1 && i64::from(dd) <= month_len(y, m));
        assert_eq!(days_from_civil(y, m, dd), d);
    }
}

#[test]
fn windows_hold_now_and_tile_time_in_every_offset() {
    let mut rng = Rng(0xdead_beef_cafe);
    for _ in 0..20_000 {
        let now = rng.range(-2_000_000_000_000, 5_000_000_000_000);
        let offset = rng.range(-14 * 60, 14 * 60 + 1) as i32;
        let shift = i64::from(offset) * 60_000;
        for period in [Period::Day, Period::Week, Period::Month] {
            let (start, end) = period.window_at_offset(now, offset);
            assert!(start <= now && now < end, "{period:?} {now} {offset}");
            // Starts at local midnight.
            assert_eq!((start + shift).rem_euclid(DAY), 0);
            assert_eq!((end + shift).rem_euclid(DAY), 0);
            // Adjacent windows meet: the instant before the start is in the previous one.
            assert_eq!(period.window_at_offset(start - 1, offset).1, start);
            assert_eq!(period.window_at_offset(end, offset).0, end);
            assert_eq!(period.window_at_offset(start, offset), (start, end));
            let local_day = (start + shift).div_euclid(DAY);
            let days = (end - start) / DAY;
            match period {
                Period::Day => assert_eq!(days, 1),
                Period::Week => {
                    assert_eq!(days, 7);
                    // Monday: 1970-01-05 was one.
                    assert_eq!((local_day - 4).rem_euclid(7), 0);
                }
                Period::Month => {
                    let (y, m, d) = civil_from_days(local_day);
                    assert_eq!(d, 1);
                    assert_eq!(days, month_len(y, m));
                }
            }
        }
    }
}

#[test]
fn leap_days_and_offsets_at_the_edges() {
    let ms = |y, m, d| days_from_civil(y, m, d) * DAY;
    // February 2024 (leap) in UTC: 29 days.
    let (s, e) = Period::Month.window_at_offset(ms(2024, 2, 29) + 5, 0);
    assert_eq!((s, e), (ms(2024, 2, 1), ms(2024, 3, 1)));
    // 23:30 UTC on Feb 29 is already March 1 at +01:00.
    let t = ms(2024, 2, 29) + 23 * 3_600_000 + 30 * 60_000;
    let (s, _) = Period::Month.window_at_offset(t, 60);
    assert_eq!(s, ms(2024, 3, 1) - 3_600_000);
    // ... and still Feb 29 at -05:00.
    let (s, e) = Period::Day.window_at_offset(t, -300);
    assert_eq!(
        (s, e),
        (
            ms(2024, 2, 29) + 5 * 3_600_000,
            ms(2024, 3, 1) + 5 * 3_600_000
        )
    );
    // 2024-12-30 is the Monday of the week holding 2025-01-01.
    let (s, _) = Period::Week.window_at_offset(ms(2025, 1, 1), 0);
    assert_eq!(s, ms(2024, 12, 30));
}

#[test]
fn offsets_and_scopes_parse() {
    assert_eq!(parse_offset("+02:00"), Some(120));
    assert_eq!(parse_offset("-05:30"), Some(-330));
    assert_eq!(parse_offset("Z"), Some(0));
    assert_eq!(parse_offset("+14:01"), None);
    assert_eq!(parse_offset("2:00"), None);
    assert_eq!(
        Scope::parse("tag:feature=search").map(|s| s.label()),
        Some("tag:feature=search".into())
    );
    assert_eq!(Scope::parse("team:"), None);
    assert_eq!(Scope::parse("tag:feature"), None);
    assert_eq!(Scope::parse("org:x"), None);
}

fn rule(limit: f64, alerts: Vec<u32>) -> BudgetsConfig {
    BudgetsConfig {
        limits: vec![BudgetRule {
            scope: Scope::Team("t".into()),
            limit_usd: limit,
            period: Period::Day,
            alerts,
            soft_cap_usd: None,
            downgrade_to: None,
            time_zone: None,
        }],
        ..BudgetsConfig::default()
    }
}

fn team() -> Attribution {
    Attribution {
        team: Some("t".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn reserve_refuse_settle_and_roll_over() {
    let b = Budgets::new(&rule(1.0, vec![]), None);
    b.set_clock(Some(10 * DAY + 5));
    let est = |_: &str| 400_000_000;
    let a1 = b.admit(None, &team(), "m", &est).await.unwrap().unwrap();
    let a2 = b.admit(None, &team(), "m", &est).await.unwrap().unwrap();
    let a3 = b.admit(None, &team(), "m", &est).await.unwrap().unwrap();
    // 1.2 reserved of 1.0: refused until something settles.
    let err = b.admit(None, &team(), "m", &est).await.unwrap_err();
    assert!(err.to_string().contains("day budget of team:t"), "{err}");
    // Others are not covered.
    assert!(b
        .admit(None, &Attribution::default(), "m", &est)
        .await
        .unwrap()
        .is_none());
    a1.hold.settle(Some(100_000_000));
    drop(a2.hold); // released without cost (e.g. never served)
    let a4 = b.admit(None, &team(), "m", &est).await.unwrap().unwrap();
    a3.hold.settle(Some(300_000_000));
    a4.hold.settle(None);
    let s = &b.status().await.unwrap()[0];
    assert_eq!(s["spent_nanos"], 400_000_000);
    assert_eq!(s["reserved_nanos"], 0);
    // The next day starts from zero.
    b.set_clock(Some(11 * DAY));
    assert_eq!(b.status().await.unwrap()[0]["spent_nanos"], 0);
}

fn key_record(
    name: &str,
    id: &str,
    budget: Option<f64>,
    period: Option<&str>,
) -> Arc<crate::keys::KeyRecord> {
    Arc::new(crate::keys::KeyRecord {
        id: id.into(),
        name: name.into(),
        team: Some("t".into()),
        user: None,
        allowed_aliases: None,
        rpm: None,
        tpm: None,
        budget_usd: budget,
        budget_period: period.map(str::to_owned),
        expires_at: None,
        revoked_at: None,
        previous_valid_until: None,
        tags: Default::default(),
        created_at: 0,
        updated_at: 0,
    })
}

#[tokio::test]
async fn key_records_bring_their_own_budgets() {
    let b = Budgets::new(&BudgetsConfig::default(), None);
    b.set_clock(Some(40 * DAY + 7));
    let est = |_: &str| 1_000_000_000;
    assert!(b
        .admit(Some("k1"), &team(), "m", &est)
        .await
        .unwrap()
        .is_none());
    b.sync_keys(&[
        key_record("k1", "vk_1", Some(1.0), Some("week")),
        key_record("k2", "vk_2", None, Some("day")),
        key_record("k3", "vk_3", Some(5.0), None),
    ]);
    let a = b
        .admit(Some("k1"), &team(), "m", &est)
        .await
        .unwrap()
        .unwrap();
    let err = b
        .admit(Some("k1"), &team(), "m", &est)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("the week budget of key:k1 (USD 1)"), "{err}");
    assert!(!err.contains("vk_1"), "{err}");
    // k2 has no budget; another key is not covered by k1's.
    assert!(b
        .admit(Some("k2"), &team(), "m", &est)
        .await
        .unwrap()
        .is_none());
    a.hold.settle(Some(700_000_000));
    let st = b.status().await.unwrap();
    let labels: Vec<_> = st
        .iter()
        .map(|s| (s["scope"].clone(), s["period"].clone()))
        .collect();
    assert_eq!(
        labels,
        vec![
            (serde_json::json!("key:k1"), serde_json::json!("week")),
            // Without a period, a key's budget is monthly.
            (serde_json::json!("key:k3"), serde_json::json!("month")),
        ]
    );
    assert_eq!(st[0]["spent_nanos"], 700_000_000);
    assert_eq!(st[0]["key_id"], "vk_1");
    assert_eq!(st[0]["source"], "key");
    // Raising the limit keeps the spend and lets the key go on; renaming it keeps both.
    b.sync_keys(&[key_record("k1-renamed", "vk_1", Some(2.0), Some("week"))]);
    assert!(b
        .admit(Some("k1"), &team(), "m", &est)
        .await
        .unwrap()
        .is_none());
    let a = b
        .admit(Some("k1-renamed"), &team(), "m", &est)
        .await
        .unwrap()
        .unwrap();
    let a2 = b
        .admit(Some("k1-renamed"), &team(), "m", &est)
        .await
        .unwrap()
        .unwrap();
    // 0.7 spent + 2 × 1.0 reserved is past the new 2.0.
    assert!(b
        .admit(Some("k1-renamed"), &team(), "m", &est)
        .await
        .is_err());
    drop((a, a2));
    assert_eq!(b.status().await.unwrap()[0]["spent_nanos"], 700_000_000);
    // Revoked (or expired) keys have no budget any more.
    let mut revoked = (*key_record("k1-renamed", "vk_1", Some(2.0), Some("week"))).clone();
    revoked.revoked_at = Some(1);
    b.sync_keys(&[Arc::new(revoked)]);
    assert!(b.status().await.unwrap().is_empty());
}

#[tokio::test]
async fn key_budget_alerts_use_key_alerts() {
    let cfg = BudgetsConfig {
        key_alerts: vec![50],
        ..BudgetsConfig::default()
    };
    let b = Budgets::new(&cfg, None);
    b.sync_keys(&[key_record("k1", "vk_1", Some(1.0), Some("day"))]);
    let est = |_: &str| 1;
    let a = b
        .admit(Some("k1"), &team(), "m", &est)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.hold.items[0].rule.alerts, vec![50]);
    a.hold.settle(Some(600_000_000));
    let windows = b.windows.lock();
    let w = windows.map.values().next().unwrap();
    assert_eq!(w.alerts_sent, 1);
}

#[test]
fn config_errors_name_the_key() {
    let env: std::collections::HashMap<String, String> = Default::default();
    let base = "models:\n  a: {deployments: [{provider: mock, model: m}]}\nproviders:\n  mock: {type: mock}\n";
    let bad = format!(
        "{base}budgets:\n  utc_offset: \"2:00\"\n  alert_webhook: ftp://x\n  limits:\n    \
         - {{scope: org:x, limit_usd: 0, period: year, alerts: [0]}}\n    \
         - {{scope: team:t, limit_usd: 1, period: day, soft_cap_usd: 2, downgrade_to: nope}}\n    \
         - {{scope: team:t, limit_usd: 1, period: day}}\n"
    );
    let err = crate::config::from_yaml(&bad, &env)
        .unwrap_err()
        .to_string();
    for needle in [
        "budgets.utc_offset",
        "budgets.alert_webhook",
        "budgets.limits[0].scope",
        "budgets.limits[0].period",
        "budgets.limits[0].limit_usd",
        "budgets.limits[0].alerts",
        "budgets.limits[1].soft_cap_usd",
        "budgets.limits[1].downgrade_to",
        "budgets.limits[2].scope",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
    let good = format!(
        "{base}budgets:\n  utc_offset: \"-05:00\"\n  limits:\n    \
         - {{scope: \"tag:feature=x\", limit_usd: 2, period: week, alerts: [80, 50], \
         soft_cap_usd: 1, downgrade_to: a}}\n"
    );
    let cfg = crate::config::from_yaml(&good, &env).unwrap();
    assert_eq!(cfg.budgets.time_zone, Zone::Fixed(-300));
    assert_eq!(cfg.budgets.limits[0].alerts, vec![50, 80]);
    assert_eq!(cfg.budgets.limits[0].period, Period::Week);
}

/// Settles from two "replicas" sharing one ledger add up exactly (each admits against its own
/// view, as documented); a third instance starts from the ledger; alert bits merge.
async fn ledger_on(cfg: &crate::store::StoreConfig) {
    let store = Store::open(cfg).await.unwrap();
    let conf = rule(1.0, vec![50]);
    let (a, b) = (
        Budgets::new(&conf, Some(store.clone())),
        Budgets::new(&conf, Some(store.clone())),
    );
    for x in [&a, &b] {
        x.set_clock(Some(3 * DAY + 1));
    }
    let est = |_: &str| 1_000;
    let mut holds = Vec::new();
    for i in 0..40 {
        let x = if i % 2 == 0 { &a } else { &b };
        holds.push(
            x.admit(None, &team(), "m", &est)
                .await
                .unwrap()
                .unwrap()
                .hold,
        );
    }
    for h in holds {
        // 40 × $0.03 = $1.20; each replica saw $0.60 of it: past its 50% alert.
        h.settle(Some(30_000_000));
    }
    let read = || async {
        store
            .query(
                "SELECT spent_nanos, alerts_sent FROM budget_ledger".into(),
                vec![],
            )
            .await
            .unwrap()
    };
    let mut rows = read().await;
    for _ in 0..200 {
        if rows.first().and_then(|r| r[0].as_i64()) == Some(1_200_000_000) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        rows = read().await;
    }
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0].as_i64(), Some(1_200_000_000));
    assert_eq!(rows[0][1].as_i64(), Some(1));
    let c = Budgets::new(&conf, Some(store));
    c.set_clock(Some(3 * DAY + 2));
    // A fresh instance loads the window from the ledger: used up.
    assert!(c.admit(None, &team(), "m", &est).await.is_err());
    assert_eq!(c.status().await.unwrap()[0]["spent_nanos"], 1_200_000_000);
}

#[tokio::test]
async fn the_ledger_is_exact_on_sqlite() {
    let dir = crate::store::tests::temp_dir("budget-ledger");
    ledger_on(&crate::store::tests::sqlite_config(&dir)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_ledger_is_exact_on_postgres() {
    let schema = crate::store::tests::PgSchema::new("budget").await;
    ledger_on(&schema.config()).await;
    schema.drop().await;
}

#[test]
fn time_zones_validate_with_key_and_line() {
    let env: std::collections::HashMap<String, String> = Default::default();
    let base = "models:\n  a: {deployments: [{provider: mock, model: m}]}\nproviders:\n  mock: {type: mock}\n";
    let bad = format!(
        "{base}budgets:\n  time_zone: Mars/Olympus_Mons\n  key_alerts: [0]\n  limits:\n    \
         - scope: team:t\n      limit_usd: 1\n      period: day\n      \
         time_zone: \"Europe/Pariss\"\n"
    );
    let err = crate::config::from_yaml(&bad, &env)
        .unwrap_err()
        .to_string();
    for needle in [
        "budgets.time_zone",
        "`Mars/Olympus_Mons` is not a time zone",
        "line 6",
        "budgets.key_alerts",
        "budgets.limits[0].time_zone",
        "`Europe/Pariss`",
        "line 12",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
    let both = format!("{base}budgets:\n  time_zone: UTC\n  utc_offset: \"+01:00\"\n");
    let err = crate::config::from_yaml(&both, &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("budgets.utc_offset") && err.contains("set `time_zone` only"),
        "{err}"
    );
    let good = format!(
        "{base}budgets:\n  time_zone: america/new_york\n  limits:\n    \
         - {{scope: team:t, limit_usd: 1, period: day}}\n    \
         - {{scope: team:u, limit_usd: 1, period: day, time_zone: \"+05:30\"}}\n"
    );
    let cfg = crate::config::from_yaml(&good, &env).unwrap();
    // Names are canonicalised; a budget's own zone overrides the default.
    assert_eq!(cfg.budgets.time_zone.name(), "America/New_York");
    assert_eq!(cfg.budgets.limits[0].time_zone, None);
    assert_eq!(cfg.budgets.limits[1].time_zone, Some(Zone::Fixed(330)));
    assert_eq!(cfg.budgets.key_alerts, vec![50, 80, 100]);
    assert_eq!(Zone::Fixed(-330).name(), "-05:30");
    assert_eq!(Zone::parse("UTC"), Some(Zone::Fixed(0)));
    // A POSIX TZ string is not a zone name.
    assert_eq!(Zone::parse("EST5EDT,M3.2.0,M11.1.0"), None);
}

#[tokio::test]
async fn ended_windows_leave_memory_but_in_flight_ones_stay() {
    let b = Budgets::new(&rule(1.0, vec![]), None);
    let est = |_: &str| 1_000;
    b.set_clock(Some(10 * DAY + 5));
    b.admit(None, &team(), "m", &est)
        .await
        .unwrap()
        .unwrap()
        .hold
        .settle(Some(5));
    // A request admitted on day 11 is still in flight when day 13 begins.
    b.set_clock(Some(11 * DAY + 5));
    let in_flight = b.admit(None, &team(), "m", &est).await.unwrap().unwrap();
    b.set_clock(Some(13 * DAY + 5));
    b.admit(None, &team(), "m", &est).await.unwrap().unwrap();
    let starts = |b: &Budgets| {
        let mut s: Vec<i64> = b.windows.lock().map.keys().map(|k| k.2 / DAY).collect();
        s.sort_unstable();
        s
    };
    assert_eq!(starts(&b), vec![11, 13]);
    // Its window stayed while it was in flight; settled now, the cost lands there.
    in_flight.hold.settle(Some(7));
    let windows = b.windows.lock();
    let day11 = windows.map.iter().find(|(k, _)| k.2 == 11 * DAY).unwrap().1;
    assert_eq!((day11.spent, day11.reserved, day11.end), (7, 0, 12 * DAY));
}

/// The cost header's text is the recorded nano-dollars with nine places, as `{:.9}` writes the
/// same amounts.
#[test]
fn nanos_text_has_nine_places() {
    for (nanos, text) in [
        (0, "0.000000000"),
        (1, "0.000000001"),
        (123_000, "0.000123000"),
        (1_000_000_000, "1.000000000"),
        (12_345_678_901_234, "12345.678901234"),
        (-1_500_000_000, "-1.500000000"),
        (i64::MIN, "-9223372036.854775808"),
    ] {
        assert_eq!(super::nanos_text(nanos), text);
    }
    for usd in [0.0, 0.000_123, 0.5, 1.25, 3.000_000_001, 1_234.567_891_234] {
        assert_eq!(
            super::nanos_text(super::usd_to_nanos(usd)),
            format!("{usd:.9}")
        );
    }
}
