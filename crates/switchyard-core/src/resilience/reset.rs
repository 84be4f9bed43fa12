//! When a rate-limited provider will take requests again, from whichever header it uses.
//!
//! `Retry-After` is the standard, but providers often send only their own rate-limit headers
//! (OpenAI's `x-ratelimit-remaining-*` / `x-ratelimit-reset-*` with Go-style durations,
//! Anthropic's `anthropic-ratelimit-*-remaining` / `-reset` with RFC 3339 times, Azure's
//! `retry-after-ms`). Reading them lets retries wait exactly as long as needed, and clients get
//! a `Retry-After` either way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};

/// The wait a provider asks for, as a `Retry-After` value in whole seconds (rounded up), when
/// its headers say: `Retry-After` itself as sent, else `retry-after-ms`, else the reset time of
/// the limit that is exhausted (remaining `0`).
pub fn retry_after_header(headers: &HeaderMap, now: SystemTime) -> Option<HeaderValue> {
    if let Some(v) = headers.get(http::header::RETRY_AFTER) {
        return Some(v.clone());
    }
    let wait = retry_after_ms(headers).or_else(|| exhausted_reset(headers, now))?;
    let secs = wait.as_millis().div_ceil(1000).max(1);
    Some(HeaderValue::from(u64::try_from(secs).unwrap_or(u64::MAX)))
}

fn header(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn retry_after_ms(headers: &HeaderMap) -> Option<Duration> {
    let ms: f64 = header(headers, "retry-after-ms")?.parse().ok()?;
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms.min(86_400_000.0) / 1000.0))
}

/// The longest reset among exhausted limits (a request needs every limit to have room).
fn exhausted_reset(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    const OPENAI: [(&str, &str); 2] = [
        (
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        ),
        ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
    ];
    const ANTHROPIC: [(&str, &str); 4] = [
        (
            "anthropic-ratelimit-requests-remaining",
            "anthropic-ratelimit-requests-reset",
        ),
        (
            "anthropic-ratelimit-tokens-remaining",
            "anthropic-ratelimit-tokens-reset",
        ),
        (
            "anthropic-ratelimit-input-tokens-remaining",
            "anthropic-ratelimit-input-tokens-reset",
        ),
        (
            "anthropic-ratelimit-output-tokens-remaining",
            "anthropic-ratelimit-output-tokens-reset",
        ),
    ];
    let exhausted = |remaining: &str| header(headers, remaining) == Some("0");
    let openai = OPENAI
        .iter()
        .filter(|(r, _)| exhausted(r))
        .filter_map(|(_, reset)| parse_go_duration(header(headers, *reset)?));
    let anthropic = ANTHROPIC
        .iter()
        .filter(|(r, _)| exhausted(r))
        .filter_map(|(_, reset)| until_rfc3339(header(headers, *reset)?, now));
    openai.chain(anthropic).max()
}

/// A provider's remaining rate-limit quota, as one response's headers report it. Every field
/// is optional: providers send some, all or none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaReading {
    /// Requests allowed per window.
    pub limit_requests: Option<u64>,
    /// Requests left in the window.
    pub remaining_requests: Option<u64>,
    /// Time until the request budget is whole again.
    pub reset_requests: Option<Duration>,
    /// Tokens allowed per window.
    pub limit_tokens: Option<u64>,
    /// Tokens left in the window.
    pub remaining_tokens: Option<u64>,
    /// Time until the token budget is whole again.
    pub reset_tokens: Option<Duration>,
}

/// Reads the remaining quota from OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,
/// tokens}` (Go durations) or Anthropic's `anthropic-ratelimit-{requests,tokens}-{limit,
/// remaining,reset}` (RFC 3339 times; when the combined token budget is absent, the smaller of
/// the input and output budgets stands for it). `None` when the response carries none.
///
/// Read on every response, so OpenAI's six headers are taken in one walk over the headers
/// (six hashed lookups of custom names cost about three times as much), which also tells
/// whether any of Anthropic's are there. As with a lookup, the first of repeated values counts.
pub fn quota(headers: &HeaderMap, now: SystemTime) -> Option<QuotaReading> {
    let mut openai = QuotaReading::default();
    let mut anthropic_seen = false;
    for (name, value) in headers {
        let name = name.as_str();
        let Some(field) = name.strip_prefix("x-ratelimit-") else {
            anthropic_seen |= name.starts_with("anthropic-ratelimit-");
            continue;
        };
        let Some(v) = value.to_str().ok().map(str::trim) else {
            continue;
        };
        let num = |slot: &mut Option<u64>| {
            if slot.is_none() {
                *slot = v.parse().ok();
            }
        };
        let duration = |slot: &mut Option<Duration>| {
            if slot.is_none() {
                *slot = parse_go_duration(v);
            }
        };
        match field {
            "limit-requests" => num(&mut openai.limit_requests),
            "remaining-requests" => num(&mut openai.remaining_requests),
            "reset-requests" => duration(&mut openai.reset_requests),
            "limit-tokens" => num(&mut openai.limit_tokens),
            "remaining-tokens" => num(&mut openai.remaining_tokens),
            "reset-tokens" => duration(&mut openai.reset_tokens),
            _ => {}
        }
    }
    if openai.remaining_requests.is_some() || openai.remaining_tokens.is_some() {
        return Some(openai);
    }
    if !anthropic_seen {
        return None;
    }
    let family = |f: &str| {
        (
            header(headers, format!("anthropic-ratelimit-{f}-limit"))
                .and_then(|v| v.parse::<u64>().ok()),
            header(headers, format!("anthropic-ratelimit-{f}-remaining"))
                .and_then(|v| v.parse::<u64>().ok()),
            header(headers, format!("anthropic-ratelimit-{f}-reset"))
                .and_then(|v| until_rfc3339(v, now)),
        )
    };
    let (limit_requests, remaining_requests, reset_requests) = family("requests");
    let mut tokens = family("tokens");
    if tokens.1.is_none() {
        let (i, o) = (family("input-tokens"), family("output-tokens"));
        tokens = match (i.1, o.1) {
            (Some(a), Some(b)) if b < a => o,
            (Some(_), _) => i,
            (None, Some(_)) => o,
            (None, None) => tokens,
        };
    }
    let anthropic = QuotaReading {
        limit_requests,
        remaining_requests,
        reset_requests,
        limit_tokens: tokens.0,
        remaining_tokens: tokens.1,
        reset_tokens: tokens.2,
    };
    (anthropic.remaining_requests.is_some() || anthropic.remaining_tokens.is_some())
        .then_some(anthropic)
}

/// Parses a Go-style duration as OpenAI sends it: `20ms`, `1s`, `6m0s`, `1h2m3.5s`.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest.get(..num_len)?.parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    (total.is_finite() && total >= 0.0).then(|| Duration::from_secs_f64(total.min(86_400.0)))
}

/// The time from `now` until an RFC 3339 UTC timestamp (`2026-11-23T19:30:05Z`, fractional
/// seconds allowed); zero when it has passed.
pub fn until_rfc3339(s: &str, now: SystemTime) -> Option<Duration> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut frac = 0f64;
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        let end = s[i + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(s.len(), |e| i + 1 + e);
        frac = s.get(i..end)?.parse().ok()?;
        i = end;
    }
    if !matches!(s.get(i..)?, "Z" | "z" | "+00:00") {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let at = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    let wait = (at as f64 + frac - now).max(0.0);
    Some(Duration::from_secs_f64(wait.min(86_400.0)))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn quota_from_either_header_family() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_462_200);
        let openai = headers(&[
            ("x-ratelimit-limit-requests", "100"),
            ("x-ratelimit-remaining-requests", "7"),
            ("x-ratelimit-reset-requests", "1.5s"),
            ("x-ratelimit-remaining-tokens", "900"),
        ]);
        let q = quota(&openai, now).unwrap();
        assert_eq!(q.limit_requests, Some(100));
        assert_eq!(q.remaining_requests, Some(7));
        assert_eq!(q.reset_requests, Some(Duration::from_millis(1500)));
        assert_eq!(q.remaining_tokens, Some(900));
        assert_eq!(q.limit_tokens, None);
        let anthropic = headers(&[
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "3"),
            ("anthropic-ratelimit-requests-reset", "2026-11-23T19:30:04Z"),
            ("anthropic-ratelimit-input-tokens-remaining", "5000"),
            ("anthropic-ratelimit-output-tokens-remaining", "800"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2026-11-23T19:30:02Z",
            ),
        ]);
        let q = quota(&anthropic, now).unwrap();
        assert_eq!(q.remaining_requests, Some(3));
        assert_eq!(q.reset_requests, Some(Duration::from_secs(4)));
        assert_eq!(q.remaining_tokens, Some(800), "the smaller split budget");
        assert_eq!(q.reset_tokens, Some(Duration::from_secs(2)));
        assert_eq!(quota(&headers(&[("retry-after", "1")]), now), None);
        // Values are trimmed, unknown members of the family ignored, and of a repeated header
        // the first value counts (as a lookup would).
        let mut h = headers(&[
            ("x-ratelimit-limit-tokens", " 1000 "),
            ("x-ratelimit-reset-tokens", "6m0s"),
            ("x-ratelimit-remaining-images", "3"),
            ("x-ratelimit-remaining-tokens", "10"),
        ]);
        h.append(
            "x-ratelimit-remaining-tokens",
            HeaderValue::from_static("20"),
        );
        let q = quota(&h, now).unwrap();
        assert_eq!(
            (q.limit_tokens, q.remaining_tokens, q.reset_tokens),
            (Some(1000), Some(10), Some(Duration::from_secs(360)))
        );
        assert_eq!(q.remaining_requests, None);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(
            parse_go_duration("1h2m3.5s"),
            Some(Duration::from_millis(3_723_500))
        );
        for bad in ["", "5", "s", "1x", "1.2.3s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_times() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_462_200); // 2026-11-23T19:30:00Z
        let at = |s| until_rfc3339(s, now);
        assert_eq!(at("2026-11-23T19:30:05Z"), Some(Duration::from_secs(5)));
        assert_eq!(
            at("2026-11-23T19:30:05.5Z"),
            Some(Duration::from_millis(5_500))
        );
        assert_eq!(at("2026-11-23T19:29:00Z"), Some(Duration::ZERO), "passed");
        assert_eq!(
            at("2026-11-24T00:00:00+00:00"),
            Some(Duration::from_secs(16_200))
        );
        for bad in [
            "2026-11-23 19:30:05Z",
            "2026-13-01T00:00:00Z",
            "2026-11-23T19:30:05+02:00",
            "x",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_wait_comes_from_the_header_the_provider_used() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_462_200);
        let ra =
            |h: &HeaderMap| retry_after_header(h, now).map(|v| v.to_str().unwrap_or("").to_owned());
        assert_eq!(ra(&headers(&[("retry-after", "7")])).as_deref(), Some("7"));
        assert_eq!(
            ra(&headers(&[("retry-after-ms", "1500")])).as_deref(),
            Some("2")
        );
        let openai = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1.2s"),
            ("x-ratelimit-remaining-tokens", "100"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        assert_eq!(
            ra(&openai).as_deref(),
            Some("2"),
            "only the exhausted limit counts"
        );
        let anthropic = headers(&[
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2026-11-23T19:30:09Z"),
        ]);
        assert_eq!(ra(&anthropic).as_deref(), Some("9"));
        let not_exhausted = headers(&[
            ("x-ratelimit-remaining-requests", "3"),
            ("x-ratelimit-reset-requests", "1s"),
        ]);
        assert_eq!(ra(&not_exhausted), None);
    }
}
