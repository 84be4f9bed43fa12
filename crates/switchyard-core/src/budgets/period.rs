//! Calendar periods (day, ISO week, month) in a time zone, in Unix milliseconds.
//!
//! Budgets reset at local midnight, on Mondays, or on the 1st of the month, in the budget's
//! [`Zone`]: a fixed UTC offset (plain arithmetic) or an IANA zone with daylight-saving rules,
//! where a day lasts 23 or 25 hours around a clock change. A window is `[start, end)` where
//! `start` is [`Zone::day_start`] of the period's first date and `end` that of the next
//! period's; since `day_start` never decreases, consecutive windows meet exactly and every
//! instant is in exactly one. The civil-date conversions are the classic days-from-civil
//! algorithm (proleptic Gregorian).

use super::zone::Zone;

pub(super) const DAY_MS: i64 = 86_400_000;

/// How long a budget's window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// A calendar day.
    Day,
    /// An ISO week, Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
}

impl Period {
    /// Parses `day`, `week` or `month`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            _ => None,
        }
    }

    /// The name in config, errors and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    /// The window `[start, end)` (Unix ms) holding `now_ms`, in local time in `zone`.
    pub fn window(self, now_ms: i64, zone: &Zone) -> (i64, i64) {
        if let Zone::Fixed(minutes) = zone {
            return self.window_at_offset(now_ms, *minutes);
        }
        let mut first = self.first_day(zone.local_day(now_ms));
        let mut start = zone.day_start(first);
        let mut next = self.next_first_day(first);
        let mut end = zone.day_start(next);
        // Where clocks went back across midnight, local dates are not monotonic for an hour:
        // an instant can read as a date whose window has already ended. Move on to the window
        // that holds it (`day_start` of a later period can only be later).
        for _ in 0..4 {
            if now_ms < end {
                break;
            }
            first = next;
            start = end;
            next = self.next_first_day(first);
            end = zone.day_start(next);
        }
        (start, end)
    }

    /// The window `[start, end)` (Unix ms) holding `now_ms`, in local time at
    /// `offset_minutes` east of UTC.
    pub fn window_at_offset(self, now_ms: i64, offset_minutes: i32) -> (i64, i64) {
        let shift = i64::from(offset_minutes) * 60_000;
        let day = (now_ms + shift).div_euclid(DAY_MS);
        let first = self.first_day(day);
        let next = self.next_first_day(first);
        (first * DAY_MS - shift, next * DAY_MS - shift)
    }

    /// The first date (days since 1970-01-01) of the period holding date `day`.
    fn first_day(self, day: i64) -> i64 {
        match self {
            Self::Day => day,
            // 1970-01-01 was a Thursday: +3 makes Monday 0.
            Self::Week => day - (day + 3).rem_euclid(7),
            Self::Month => {
                let (y, m, _) = civil_from_days(day);
                days_from_civil(y, m, 1)
            }
        }
    }

    /// The first date of the period after the one starting on `first`.
    fn next_first_day(self, first: i64) -> i64 {
        match self {
            Self::Day => first + 1,
            Self::Week => first + 7,
            Self::Month => {
                let (y, m, _) = civil_from_days(first);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(ny, nm, 1)
            }
        }
    }
}

/// Parses a UTC offset such as `+02:00`, `-05:30` or `Z` into minutes east of UTC.
pub fn parse_offset(s: &str) -> Option<i32> {
    if s == "Z" || s == "UTC" {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60 && h * 60 + m <= 14 * 60).then_some(sign * (h * 60 + m))
}

/// Days since 1970-01-01 of the civil date `y-m-d`.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
