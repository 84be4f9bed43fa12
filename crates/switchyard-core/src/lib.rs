//! The Switchyard gateway runtime.
//!
//! One request flows through `server` (edge: request id, routes) into `pipeline` (the ordered
//! stages), which uses `auth`, `routing` and `providers` (sans-IO adapters) and sends upstream
//! through `http_client`. `config` is validated once at start-up; nothing on the request path
//! handles an unset or invalid setting. See ARCHITECTURE.md for the map.
#![forbid(unsafe_code)]

pub mod admin;
pub mod attribution;
pub mod auth;
pub mod budgets;
pub mod cache;
pub mod capabilities;
pub mod config;
pub mod error;
pub mod guardrails;
pub mod http_client;
pub mod keys;
pub mod limits;
mod passthrough;
pub mod pipeline;
pub mod pricing;
pub mod providers;
pub mod reqlog;
pub mod resilience;
pub mod resp;
pub mod responses_state;
pub mod routing;
pub mod server;
pub mod store;
pub mod stored_chat;
pub mod telemetry;
pub mod tokenize;

pub use server::Prepared;

/// A map with a fast hasher, for the maps read on every request whose keys are bounded by
/// config (deployments, metric label sets, upstream origins). SipHash's resistance to crafted
/// collisions buys little there (foldhash is still seeded per map) and cost a few thousand
/// instructions per request.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Appends the decimal digits of `n`: for text written on every request (a record's JSON, the
/// cost header), where the formatter's machinery cost more than the digits.
pub(crate) fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// The set counterpart of [`FastMap`].
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
