use super::period::{civil_from_days, days_from_civil, parse_offset, Period};
use super::*;

const DAY: i64 = 86_400_000;

/// A small deterministic generator (xorshift): seeded loops without a property-test crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
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
            let (start, end) = period.window(now, offset);
            assert!(start <= now && now < end, "{period:?} {now} {offset}");
            // Starts at local midnight.
            assert_eq!((start + shift).rem_euclid(DAY), 0);
            assert_eq!((end + shift).rem_euclid(DAY), 0);
            // Adjacent windows meet: the instant before the start is in the previous one.
            assert_eq!(period.window(start - 1, offset).1, start);
            assert_eq!(period.window(end, offset).0, end);
            assert_eq!(period.window(start, offset), (start, end));
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
    let (s, e) = Period::Month.window(ms(2024, 2, 29) + 5, 0);
    assert_eq!((s, e), (ms(2024, 2, 1), ms(2024, 3, 1)));
    // 23:30 UTC on Feb 29 is already March 1 at +01:00.
    let t = ms(2024, 2, 29) + 23 * 3_600_000 + 30 * 60_000;
    let (s, _) = Period::Month.window(t, 60);
    assert_eq!(s, ms(2024, 3, 1) - 3_600_000);
    // ... and still Feb 29 at -05:00.
    let (s, e) = Period::Day.window(t, -300);
    assert_eq!(
        (s, e),
        (
            ms(2024, 2, 29) + 5 * 3_600_000,
            ms(2024, 3, 1) + 5 * 3_600_000
        )
    );
    // 2024-12-30 is the Monday of the week holding 2025-01-01.
    let (s, _) = Period::Week.window(ms(2025, 1, 1), 0);
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
        utc_offset_minutes: 0,
        webhook: None,
        limits: vec![BudgetRule {
            scope: Scope::Team("t".into()),
            limit_usd: limit,
            period: Period::Day,
            alerts,
            soft_cap_usd: None,
            downgrade_to: None,
        }],
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
    let s = &b.status()[0];
    assert_eq!(s["spent_nanos"], 400_000_000);
    assert_eq!(s["reserved_nanos"], 0);
    // The next day starts from zero.
    b.set_clock(Some(11 * DAY));
    assert_eq!(b.status()[0]["spent_nanos"], 0);
}

#[tokio::test]
async fn for_key_adds_a_key_budget() {
    let b = Budgets::new(&BudgetsConfig::default(), None);
    let est = |_: &str| 2_000_000_000;
    assert!(b
        .admit(Some("k1"), &team(), "m", &est)
        .await
        .unwrap()
        .is_none());
    b.for_key("k1", 1.0, Period::Month);
    let a = b
        .admit(Some("k1"), &team(), "m", &est)
        .await
        .unwrap()
        .unwrap();
    assert!(b.admit(Some("k1"), &team(), "m", &est).await.is_err());
    assert!(b
        .admit(Some("k2"), &team(), "m", &est)
        .await
        .unwrap()
        .is_none());
    drop(a);
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
    assert_eq!(cfg.budgets.utc_offset_minutes, -300);
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
    assert_eq!(c.status()[0]["spent_nanos"], 1_200_000_000);
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
