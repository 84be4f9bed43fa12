//! Rate-limit headers from a cheap per-minute counter, for both header dialects.
//!
//! The numbers are fake but move like real ones (remaining counts fall as traffic flows and
//! refill each minute), so gateways that read these headers see plausible values. The counter
//! is a handful of relaxed atomics: no lock, no allocation beyond the header strings. OpenAI
//! reports resets as durations and one token budget; Anthropic reports resets as RFC 3339
//! instants and splits tokens into input and output budgets, so the window counts both halves.

use std::sync::atomic::{AtomicU64, Ordering};

/// Requests allowed per minute, as advertised in `x-ratelimit-limit-requests`.
pub(crate) const LIMIT_REQUESTS: u64 = 10_000;
/// Tokens allowed per minute, as advertised in `x-ratelimit-limit-tokens`.
pub(crate) const LIMIT_TOKENS: u64 = 30_000_000;
/// Input tokens allowed per minute (`anthropic-ratelimit-input-tokens-limit`).
pub(crate) const LIMIT_INPUT_TOKENS: u64 = 24_000_000;
/// Output tokens allowed per minute (`anthropic-ratelimit-output-tokens-limit`).
pub(crate) const LIMIT_OUTPUT_TOKENS: u64 = 6_000_000;

const WINDOW_MS: u64 = 60_000;

/// A fixed one-minute window of request and token counts.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    minute: AtomicU64,
    requests: AtomicU64,
    tokens: AtomicU64,
    output: AtomicU64,
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
    /// Input tokens left this minute (Anthropic reports input and output separately).
    pub(crate) remaining_input_tokens: u64,
    /// Output tokens left this minute.
    pub(crate) remaining_output_tokens: u64,
    /// Time until the input-token budget is whole again, in milliseconds.
    pub(crate) reset_input_ms: u64,
    /// Time until the output-token budget is whole again, in milliseconds.
    pub(crate) reset_output_ms: u64,
}

impl RateWindow {
    /// Counts one request costing `tokens` at wall-clock time `now_ms` (Unix milliseconds), of
    /// which `output` were generated (the rest count as input).
    pub(crate) fn record(&self, now_ms: u64, tokens: u64, output: u64) -> RateSnapshot {
        let output = output.min(tokens);
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
            self.output.store(0, Ordering::Relaxed);
        }
        let used_requests = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let used_tokens = self
            .tokens
            .fetch_add(tokens, Ordering::Relaxed)
            .saturating_add(tokens);
        let used_output = self
            .output
            .fetch_add(output, Ordering::Relaxed)
            .saturating_add(output);
        // Read separately from `tokens`, so a racing request can make this lag by a little.
        let used_input = used_tokens.saturating_sub(used_output);
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
            remaining_input_tokens: LIMIT_INPUT_TOKENS.saturating_sub(used_input),
            remaining_output_tokens: LIMIT_OUTPUT_TOKENS.saturating_sub(used_output),
            reset_input_ms: refill(used_input, LIMIT_INPUT_TOKENS),
            reset_output_ms: refill(used_output, LIMIT_OUTPUT_TOKENS),
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

/// Formats Unix milliseconds as an RFC 3339 UTC instant with whole seconds, rounding up so a
/// reset time is never earlier than the instant it describes: `2025-08-21T12:40:59Z`, the
/// shape of Anthropic's `anthropic-ratelimit-*-reset` headers.
pub(crate) fn format_rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms.div_ceil(1000);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, restricted to dates after the epoch, which is all a clock reading needs).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
