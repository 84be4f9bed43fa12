//! Property tests of period arithmetic in IANA time zones (issue 6: "property tests for ...
//! period arithmetic (period boundaries, time zones, leap days)"), with a seeded generator so
//! every run checks the same cases and a failure names its seed.

use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::period::{civil_from_days, days_from_civil, Period, DAY_MS};
use super::tests::Rng;
use super::zone::Zone;

const HOUR: i64 = 3_600_000;
const PERIODS: [Period; 3] = [Period::Day, Period::Week, Period::Month];

fn zone(name: &str) -> Zone {
    Zone::parse(name).unwrap_or_else(|| panic!("no zone {name}"))
}

fn tz(z: &Zone) -> &TimeZone {
    match z {
        Zone::Iana(_, tz) => tz,
        Zone::Fixed(_) => panic!("not an IANA zone"),
    }
}

/// Local (date as days since 1970-01-01, milliseconds since local midnight) of instant `ms`.
fn local(z: &Zone, ms: i64) -> (i64, i64) {
    let off = match z {
        Zone::Fixed(m) => i64::from(*m) * 60_000,
        Zone::Iana(_, tz) => {
            i64::from(
                tz.to_offset(Timestamp::from_millisecond(ms).unwrap())
                    .seconds(),
            ) * 1000
        }
    };
    let l = ms + off;
    (l.div_euclid(DAY_MS), l.rem_euclid(DAY_MS))
}

fn ms(y: i64, m: u32, d: u32) -> i64 {
    days_from_civil(y, m, d) * DAY_MS
}

/// The tiling properties every window must have, for any zone and instant: it holds the
/// instant, it is what its own start maps to, and it meets its neighbours exactly (so every
/// instant is in exactly one window).
fn check_tiling(z: &Zone, p: Period, t: i64) -> (i64, i64) {
    let (s, e) = p.window(t, z);
    let ctx = || format!("{p:?} in {} at {t} ({s}, {e})", z.name());
    assert!(s <= t && t < e, "does not hold the instant: {}", ctx());
    assert_eq!(p.window(s, z), (s, e), "start maps elsewhere: {}", ctx());
    assert_eq!(
        p.window(e - 1, z),
        (s, e),
        "last instant maps elsewhere: {}",
        ctx()
    );
    assert_eq!(
        p.window(s - 1, z).1,
        s,
        "previous window ends elsewhere: {}",
        ctx()
    );
    assert_eq!(
        p.window(e, z).0,
        e,
        "next window starts elsewhere: {}",
        ctx()
    );
    (s, e)
}

/// Where a window may start: local midnight of the period's first date, or (where that
/// midnight was skipped by a clock change) the first instant after the jump, which is on the
/// first date or later, and before which the clock showed an earlier date.
fn check_start(z: &Zone, p: Period, t: i64, s: i64) {
    let (day, time) = local(z, s);
    let (before_day, _) = local(z, s - 1);
    let (y, m, d) = civil_from_days(day);
    let ctx = || format!("{p:?} in {} at {t}: starts {y}-{m}-{d} +{time}ms", z.name());
    assert!(
        before_day < day,
        "the instant before the start is the same date: {}",
        ctx()
    );
    if time != 0 {
        // Only at a transition that skipped midnight.
        let prev = tz(z)
            .preceding(Timestamp::from_millisecond(s + 1).unwrap())
            .next()
            .unwrap_or_else(|| panic!("not midnight and no transition: {}", ctx()));
        assert_eq!(prev.timestamp().as_millisecond(), s, "{}", ctx());
        return;
    }
    match p {
        Period::Day => {}
        Period::Week => assert_eq!((day - 4).rem_euclid(7), 0, "not a Monday: {}", ctx()),
        Period::Month => assert_eq!(d, 1, "not the 1st: {}", ctx()),
    }
}

/// The zones whose rules these tests lean on: DST in both hemispheres, half-hour DST
/// (Lord Howe), negative DST (Dublin), DST at midnight (Havana, Santiago, Asuncion), a skipped
/// date (Apia 2011-12-30), Ramadan suspensions (Casablanca), odd offsets (Kathmandu, Chatham),
/// and the two-hour DST of Troll.
const ZONES: [&str; 16] = [
    "Europe/Paris",
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Dublin",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Havana",
    "America/Santiago",
    "America/Asuncion",
    "Pacific/Apia",
    "Africa/Casablanca",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Antarctica/Troll",
    "Asia/Kolkata",
];

#[test]
fn windows_tile_time_and_start_at_local_midnight_in_iana_zones() {
    let mut rng = Rng(0x0b5e_55ed_2024_0229);
    for name in ZONES {
        let z = zone(name);
        for _ in 0..1500 {
            // 1900 to 2200: the past of the database and far past its last explicit rule.
            let t = rng.range(-2_208_988_800_000, 7_258_118_400_000);
            for p in PERIODS {
                let (s, e) = check_tiling(&z, p, t);
                check_start(&z, p, t, s);
                // Lengths, from 1970 on (before that, some zones changed offset by hours).
                if s >= 0 {
                    let len = e - s;
                    let (lo, hi) = match p {
                        Period::Day => (22 * HOUR, 26 * HOUR),
                        Period::Week => (7 * DAY_MS - 2 * HOUR, 7 * DAY_MS + 2 * HOUR),
                        Period::Month => (28 * DAY_MS - 2 * HOUR, 31 * DAY_MS + 2 * HOUR),
                    };
                    // Apia skipped a whole date: the week and month that lost it are shorter.
                    let skipped =
                        name == "Pacific/Apia" && (ms(2011, 12, 1)..ms(2012, 1, 1)).contains(&s);
                    if !skipped || p == Period::Day {
                        assert!(lo <= len && len <= hi, "{p:?} in {name} at {t}: {len} ms");
                    }
                }
            }
        }
    }
}

#[test]
fn every_transition_of_every_zone_is_tiled() {
    // Each zone's clock changes from 1970 to 2040 (the most error-prone instants), and random
    // instants around them, for every zone in the database.
    let mut rng = Rng(0x007a_1e0f_da7e);
    let names: Vec<String> = jiff::tz::db().available().map(|n| n.to_string()).collect();
    assert!(names.len() > 300, "only {} zones", names.len());
    let mut checked = 0;
    for name in &names {
        let Some(z) = Zone::parse(name) else { continue };
        let Zone::Iana(_, tz) = &z else { continue };
        let mut transitions = Vec::new();
        for _ in 0..3 {
            let from = Timestamp::from_millisecond(rng.range(0, ms(2040, 1, 1))).unwrap();
            transitions.extend(
                tz.following(from)
                    .take(4)
                    .map(|t| t.timestamp().as_millisecond()),
            );
        }
        for at in transitions {
            for t in [
                at - 1,
                at,
                at + 1,
                at - 25 * HOUR,
                at + rng.range(-40 * DAY_MS, 40 * DAY_MS),
            ] {
                for p in PERIODS {
                    let (s, _) = check_tiling(&z, p, t);
                    check_start(&z, p, t, s);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 10_000, "only {checked} checks");
}

/// (start, end) of `p` at `t` in `z`, as hours of length.
fn hours(z: &Zone, p: Period, t: i64) -> i64 {
    let (s, e) = p.window(t, z);
    (e - s) / HOUR
}

#[test]
fn clock_change_days_have_23_or_25_hours() {
    let paris = zone("Europe/Paris");
    let ny = zone("America/New_York");
    let noon_utc = |y, m, d| ms(y, m, d) + 12 * HOUR;
    // Europe: last Sundays of March and October, at 01:00 UTC.
    assert_eq!(hours(&paris, Period::Day, noon_utc(2024, 3, 31)), 23);
    assert_eq!(hours(&paris, Period::Day, noon_utc(2024, 10, 27)), 25);
    assert_eq!(hours(&paris, Period::Day, noon_utc(2024, 3, 30)), 24);
    // The US: second Sunday of March, first of November, at 02:00 local.
    assert_eq!(hours(&ny, Period::Day, noon_utc(2024, 3, 10)), 23);
    assert_eq!(hours(&ny, Period::Day, noon_utc(2024, 11, 3)), 25);
    // The weeks and months holding them are an hour short or long.
    assert_eq!(
        hours(&paris, Period::Week, noon_utc(2024, 3, 31)),
        7 * 24 - 1
    );
    assert_eq!(hours(&ny, Period::Week, noon_utc(2024, 11, 3)), 7 * 24 + 1);
    assert_eq!(
        hours(&paris, Period::Month, noon_utc(2024, 3, 15)),
        31 * 24 - 1
    );
    assert_eq!(
        hours(&ny, Period::Month, noon_utc(2024, 11, 15)),
        30 * 24 + 1
    );
    // Exact bounds: New York's 2024-03-10 runs from 05:00 UTC (EST midnight) to 04:00 UTC the
    // next day (EDT midnight).
    assert_eq!(
        Period::Day.window(noon_utc(2024, 3, 10), &ny),
        (ms(2024, 3, 10) + 5 * HOUR, ms(2024, 3, 11) + 4 * HOUR)
    );
    // 23:30 New York time on Nov 3 is already Nov 4 in UTC, but still Nov 3 there.
    let late = ms(2024, 11, 4) + 4 * HOUR + 30 * 60_000;
    assert_eq!(
        Period::Day.window(late, &ny),
        (ms(2024, 11, 3) + 4 * HOUR, ms(2024, 11, 4) + 5 * HOUR)
    );
    // Paris weeks start on Monday at local midnight: 2024-04-01 00:00 CEST is 22:00 UTC Sunday.
    assert_eq!(
        Period::Week.window(noon_utc(2024, 4, 3), &paris).0,
        ms(2024, 3, 31) + 22 * HOUR
    );
    // Half-hour DST on Lord Howe Island.
    let lh = zone("Australia/Lord_Howe");
    assert_eq!(
        Period::Day.window(noon_utc(2024, 4, 7), &lh).1
            - Period::Day.window(noon_utc(2024, 4, 7), &lh).0,
        24 * HOUR + HOUR / 2
    );
}

#[test]
fn a_skipped_midnight_starts_the_day_at_the_jump() {
    // Havana springs forward at midnight (00:00 → 01:00): 2024-03-10 begins at 01:00 local,
    // 05:00 UTC, and has 23 hours.
    let havana = zone("America/Havana");
    let (s, e) = Period::Day.window(ms(2024, 3, 10) + 12 * HOUR, &havana);
    assert_eq!(s, ms(2024, 3, 10) + 5 * HOUR);
    assert_eq!(local(&havana, s), (days_from_civil(2024, 3, 10), HOUR));
    assert_eq!(e - s, 23 * HOUR);
    // Samoa skipped 2011-12-30: the 29th ends where the 31st begins.
    let apia = zone("Pacific/Apia");
    let (s29, e29) = Period::Day.window(ms(2011, 12, 29) + 12 * HOUR, &apia);
    assert_eq!(e29 - s29, 24 * HOUR);
    let (s31, _) = Period::Day.window(e29, &apia);
    assert_eq!(s31, e29);
    assert_eq!(local(&apia, s31), (days_from_civil(2011, 12, 31), 0));
}

#[test]
fn leap_days_in_iana_zones() {
    for name in ["Europe/Paris", "America/New_York", "Pacific/Chatham"] {
        let z = zone(name);
        for (y, days) in [(2024, 29), (2000, 29), (2100, 28), (2023, 28)] {
            // Noon local on Feb 28 is Feb 28 everywhere.
            let midnight_utc = ms(y, 2, 28);
            let (day, time) = local(&z, midnight_utc);
            let offset = (day * DAY_MS + time) - midnight_utc;
            let t = midnight_utc + 12 * HOUR - offset;
            assert_eq!(local(&z, t), (days_from_civil(y, 2, 28), 12 * HOUR));
            let (s, e) = Period::Month.window(t, &z);
            assert_eq!(local(&z, s), (days_from_civil(y, 2, 1), 0), "{name} {y}");
            assert_eq!(local(&z, e), (days_from_civil(y, 3, 1), 0), "{name} {y}");
            assert_eq!((e - s + 12 * HOUR) / DAY_MS, days, "{name} {y}");
            // The day after Feb 28 is Feb 29 in leap years, March 1 otherwise.
            let (next, _) = Period::Day.window(Period::Day.window(t, &z).1, &z);
            let (d, _) = local(&z, next);
            let want = if days == 29 { (y, 2, 29) } else { (y, 3, 1) };
            assert_eq!(civil_from_days(d), want, "{name} {y}");
        }
    }
}

#[test]
fn fixed_offsets_take_the_same_path_as_before() {
    let mut rng = Rng(0x000f_f5e7);
    for _ in 0..5000 {
        let t = rng.range(-2_000_000_000_000, 5_000_000_000_000);
        let minutes = rng.range(-14 * 60, 14 * 60 + 1) as i32;
        for p in PERIODS {
            assert_eq!(
                p.window(t, &Zone::Fixed(minutes)),
                p.window_at_offset(t, minutes)
            );
        }
    }
    // A zone without DST agrees with its fixed offset.
    let kolkata = zone("Asia/Kolkata");
    for _ in 0..2000 {
        let t = rng.range(0, 4_000_000_000_000);
        for p in PERIODS {
            assert_eq!(p.window(t, &kolkata), p.window_at_offset(t, 330));
        }
    }
}

#[test]
fn the_bundled_database_agrees_with_the_system_one() {
    // Where the system has no tzdata (a minimal container), jiff falls back to the copy
    // compiled into the binary (`tzdb-bundle-always`): it must be there and give the same
    // windows as the system's for current dates.
    let bundled = jiff::tz::TimeZoneDatabase::bundled();
    let mut rng = Rng(0x00b0_dd1e);
    for name in [
        "Europe/Paris",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
    ] {
        let b = Zone::Iana(
            name.into(),
            bundled.get(name).unwrap_or_else(|e| panic!("{name}: {e}")),
        );
        let s = zone(name);
        for _ in 0..300 {
            // 2000 to 2025: past rules, which a tzdata update does not change.
            let t = rng.range(946_684_800_000, 1_735_689_600_000);
            for p in PERIODS {
                assert_eq!(p.window(t, &b), p.window(t, &s), "{p:?} {name} {t}");
            }
        }
    }
}
