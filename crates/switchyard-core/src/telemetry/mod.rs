//! Logging set-up: structured lines (text or JSON) on stdout, every request line carrying its
//! request id.

pub mod metrics;
pub mod otlp;

use tracing::level_filters::LevelFilter;

use crate::config::{LogFormat, LogLevel};

/// Installs the global subscriber. Safe to call more than once (later calls do nothing), which
/// keeps tests that start several gateways in one process simple.
pub fn init(format: LogFormat, level: LogLevel) {
    let filter = match level {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_target(true);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

/// Parses a level name (for the `SWITCHYARD_LOG` override).
pub fn parse_level(s: &str) -> Option<LogLevel> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "error" => LogLevel::Error,
        "warn" | "warning" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        _ => return None,
    })
}

/// Parses a format name (for the `SWITCHYARD_LOG_FORMAT` override).
pub fn parse_format(s: &str) -> Option<LogFormat> {
    match s.trim().to_ascii_lowercase().as_str() {
        "json" => Some(LogFormat::Json),
        "text" => Some(LogFormat::Text),
        _ => None,
    }
}

/// Appends a metric family's `# HELP` and `# TYPE` lines.
pub(crate) fn family_header(out: &mut String, name: &str, kind: &str, help: &str) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Appends a family of one unlabelled sample.
pub(crate) fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    use std::fmt::Write as _;
    family_header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Escapes a Prometheus label value (backslash, quote, newline).
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
