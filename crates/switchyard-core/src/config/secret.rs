//! A wrapper that keeps secrets out of logs, errors and debug output.

use std::fmt;

/// A secret value (provider key, master key). Its `Debug` and `Display` print `[redacted]`, and
/// it deliberately implements neither `Serialize` nor `Clone`-into-string helpers, so the only
/// way to read it is [`Secret::expose`], which is easy to grep for.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// Reads the secret. Call this only where the value is sent to its intended recipient.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
