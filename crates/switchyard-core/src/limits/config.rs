//! `limits:`: rate limits per team, user and tag, the default for virtual keys, and the
//! optional bounded wait before a 429.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::raw::DurationStr;

/// Longest configurable wait for room before answering 429.
pub const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

/// Requests and tokens per minute; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute (prompt + completion).
    pub tpm: Option<u64>,
}

/// `limits:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Limits of every virtual key whose record sets none.
    #[serde(default)]
    pub default_key: Limit,
    /// Limits per team name.
    #[serde(default)]
    pub teams: HashMap<String, Limit>,
    /// Limits per user.
    #[serde(default)]
    pub users: HashMap<String, Limit>,
    /// Limits per tag, keyed `key=value`.
    #[serde(default)]
    pub tags: HashMap<String, Limit>,
    /// Wait up to this long for room instead of answering 429 at once (default 0).
    pub max_wait: Option<DurationStr>,
}

/// `limits:` after validation.
#[derive(Debug, Clone, Default)]
pub struct LimitsConfig {
    /// See [`RawLimits::default_key`].
    pub default_key: Limit,
    /// See [`RawLimits::teams`].
    pub teams: HashMap<String, Limit>,
    /// See [`RawLimits::users`].
    pub users: HashMap<String, Limit>,
    /// See [`RawLimits::tags`].
    pub tags: HashMap<String, Limit>,
    /// See [`RawLimits::max_wait`].
    pub max_wait: Duration,
}

impl LimitsConfig {
    /// Validates `raw`; problems are `(path under limits, message)`.
    pub fn from_raw(raw: &RawLimits) -> Result<Self, Vec<(Vec<String>, String)>> {
        let mut problems = Vec::new();
        let mut check = |path: Vec<String>, l: &Limit| {
            for (name, v) in [("rpm", l.rpm), ("tpm", l.tpm)] {
                if v == Some(0) {
                    let mut p = path.clone();
                    p.push(name.to_owned());
                    problems.push((p, "must be at least 1 (omit it for no limit)".to_owned()));
                }
            }
        };
        check(vec!["default_key".into()], &raw.default_key);
        for (section, map) in [("teams", &raw.teams), ("users", &raw.users)] {
            for (name, l) in map {
                check(vec![section.into(), name.clone()], l);
            }
        }
        for (tag, l) in &raw.tags {
            check(vec!["tags".into(), tag.clone()], l);
        }
        for tag in raw.tags.keys() {
            let ok = tag
                .split_once('=')
                .is_some_and(|(k, v)| !k.is_empty() && !v.is_empty());
            if !ok {
                problems.push((
                    vec!["tags".into(), tag.clone()],
                    "must be written `key=value`, e.g. `feature=search`".to_owned(),
                ));
            }
        }
        let max_wait = raw.max_wait.map_or(Duration::ZERO, |d| d.0);
        if max_wait > MAX_WAIT_CAP {
            problems.push((
                vec!["max_wait".into()],
                format!("must be at most {}s", MAX_WAIT_CAP.as_secs()),
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            default_key: raw.default_key,
            teams: raw.teams.clone(),
            users: raw.users.clone(),
            tags: raw.tags.clone(),
            max_wait,
        })
    }
}
