//! Client authentication: which key is calling.
//!
//! Keys are never held in clear: the config keeps SHA-256 digests, and a presented key is hashed
//! and compared with every known digest in constant time, so neither the comparison nor the
//! position of a match leaks through timing.

use std::sync::Arc;

use http::HeaderMap;

use crate::config::{sha256, AuthConfig};
use crate::error::GatewayError;

/// Who is calling, as far as attribution goes. Never contains the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Auth is disabled (no keys configured; loopback or explicitly allowed).
    Anonymous,
    /// The operator's master key.
    Master,
    /// A virtual key, by name.
    VirtualKey(Arc<str>),
}

impl Principal {
    /// The name used in logs.
    pub fn name(&self) -> &str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Master => "master",
            Self::VirtualKey(name) => name,
        }
    }
}

/// Checks presented keys against the configured digests.
#[derive(Debug, Clone)]
pub struct Authenticator {
    config: AuthConfig,
}

impl Authenticator {
    /// Builds an authenticator from validated config.
    pub fn new(config: AuthConfig) -> Self {
        Self { config }
    }

    /// The team of the virtual key named `name`, from its config.
    pub fn team_of(&self, name: &str) -> Option<Arc<str>> {
        self.config
            .virtual_keys
            .iter()
            .find(|k| &*k.name == name)
            .and_then(|k| k.team.clone())
    }

    /// Finds the principal for a request's headers.
    ///
    /// Accepts `Authorization: Bearer <key>` (what OpenAI SDKs send), `api-key` (Azure SDKs) and
    /// `x-api-key` (Anthropic SDKs).
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, GatewayError> {
        if !self.config.enabled() {
            return Ok(Principal::Anonymous);
        }
        let token = presented_key(headers).ok_or(GatewayError::MissingKey)?;
        let digest = sha256(token.as_bytes());
        let mut found: Option<Principal> = None;
        if let Some(master) = &self.config.master_key_sha256 {
            if ct_eq(master, &digest) {
                found = Some(Principal::Master);
            }
        }
        for key in &self.config.virtual_keys {
            // No early exit: every digest is compared whatever matched before.
            if ct_eq(&key.sha256, &digest) && found.is_none() {
                found = Some(Principal::VirtualKey(Arc::clone(&key.name)));
            }
        }
        found.ok_or(GatewayError::InvalidKey)
    }
}

/// Authenticates against the store's virtual keys first (when `keys` is on), then against
/// the configured keys. A presented key the store knows but refuses (revoked, expired, a
/// rotated secret past its grace) is 401 whatever the config says, so turning auth off in
/// config never revives a revoked key.
pub fn authenticate_with_store(
    auth: &Authenticator,
    keys: Option<&crate::keys::KeyCache>,
    headers: &HeaderMap,
) -> Result<(Principal, Option<Arc<crate::keys::KeyRecord>>), GatewayError> {
    if let (Some(keys), Some(token)) = (keys, presented_key(headers)) {
        match keys.lookup(token) {
            crate::keys::Lookup::Valid(rec) => {
                return Ok((
                    Principal::VirtualKey(Arc::from(rec.name.as_str())),
                    Some(rec),
                ))
            }
            crate::keys::Lookup::Refused => return Err(GatewayError::InvalidKey),
            crate::keys::Lookup::Unknown => {}
        }
    }
    auth.authenticate(headers).map(|p| (p, None))
}

pub(crate) fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let (scheme, rest) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| rest.trim())
            .filter(|k| !k.is_empty());
    }
    ["api-key", "x-api-key"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Compares two digests without data-dependent branches.
pub(crate) fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests;
