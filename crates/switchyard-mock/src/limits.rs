//! OpenAI-style rate-limit headers from a cheap per-minute counter.
//!
//! The numbers are fake but move like real ones (remaining counts fall as traffic flows and
//! refill each minute), so gateways that read these headers see plausible values. The counter
//! is a handful of relaxed atomics: no lock, no allocation beyond the header strings.

use std::sync::atomic::{AtomicU64, Ordering};

/// Requests allowed per minute, as advertised in `x-ratelimit-limit-requests`.
pub(crate) const LIMIT_REQUESTS: u64 = 10_000;
/// Tokens allowed per minute, as advertised in `x-ratelimit-limit-tokens`.
pub(crate) const LIMIT_TOKENS: u64 = 30_000_000;

const WINDOW_MS: u64 = 60_000;

/// A fixed one-minute window of request and token counts.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    minute: AtomicU64,
    requests: AtomicU64,
    tokens: AtomicU64,
}

/// What one request observed: enough to fill every rate-limit header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RateSnapshot {
    pub(crate) remaining_requests: u64,
    pub(crate) remaining_tokens: u64,
    /// Time until the request budget is whole again, in milliseconds.
    pub(crate) reset_requests_ms: u64,
    /// Time until the token budget is whole again, in milliseconds.
    pub(crate) reset_tokens_ms: u64,
}

impl RateWindow {
    /// Counts one request costing `tokens` at wall-clock time `now_ms` (Unix milliseconds).
    pub(crate) fn record(&self, now_ms: u64, tokens: u64) -> RateSnapshot {
        let minute = now_ms / WINDOW_MS;
        let seen = self.minute.load(Ordering::Relaxed);
        // The thread that moves the window forward resets it. A request racing the reset may
        // land in either window; that imprecision is harmless for a mock.
        if seen != minute
            && self
                .minute
                .compare_exchange(seen, minute, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.requests.store(0, Ordering::Relaxed);
            self.tokens.store(0, Ordering::Relaxed);
        }
        let used_requests = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let used_tokens = self.tokens.fetch_add(tokens, Ordering::Relaxed) + tokens;
        let to_window_end = WINDOW_MS - now_ms % WINDOW_MS;
        // Like OpenAI, report the time for the used budget to refill at the per-minute rate,
        // capped by our window boundary where everything refills at once.
        let refill =
            |used: u64, limit: u64| (used.saturating_mul(WINDOW_MS) / limit).min(to_window_end);
        RateSnapshot {
            remaining_requests: LIMIT_REQUESTS.saturating_sub(used_requests),
            remaining_tokens: LIMIT_TOKENS.saturating_sub(used_tokens),
            reset_requests_ms: refill(used_requests, LIMIT_REQUESTS),
            reset_tokens_ms: refill(used_tokens, LIMIT_TOKENS),
        }
    }
}

/// Formats milliseconds the way OpenAI's reset headers do (Go's `time.Duration` style):
/// `0s`, `120ms`, `1s`, `8.64s`, `6m0s`, `1h2m3s`.
pub(crate) fn format_duration_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = ms / 60_000 % 60;
    let secs = ms / 1000 % 60;
    let frac = ms % 1000;
    let mut out = String::with_capacity(12);
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&secs.to_string());
    if frac > 0 {
        let digits = format!("{frac:03}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('s');
    out
}
