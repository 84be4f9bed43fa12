//! `keys:`: whether virtual keys are kept in the store, and how often replicas re-read them.

use std::time::Duration;

use serde::Deserialize;

use crate::config::raw::DurationStr;

/// Default interval between two reloads of the key cache.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(5);

/// `keys:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeys {
    /// Keep virtual keys in the store (admin API `/admin/keys`, CLI `switchyard keys`).
    #[serde(default)]
    pub enabled: bool,
    /// How often the in-memory key cache is reloaded from the store (default 5s).
    pub refresh: Option<DurationStr>,
}

/// `keys:` after validation.
#[derive(Debug, Clone, Default)]
pub struct KeysConfig {
    /// Store keys are on.
    pub enabled: bool,
    /// Cache reload interval.
    pub refresh: Duration,
}

impl KeysConfig {
    /// Validates `raw`; problems are `(field, message)` pairs under `keys`.
    pub fn from_raw(raw: &RawKeys) -> Result<Self, Vec<(&'static str, String)>> {
        let refresh = raw.refresh.as_ref().map_or(DEFAULT_REFRESH, |d| d.0);
        if refresh < Duration::from_millis(100) || refresh > Duration::from_secs(3600) {
            return Err(vec![("refresh", "must be between 100ms and 1h".to_owned())]);
        }
        Ok(Self {
            enabled: raw.enabled,
            refresh,
        })
    }
}
