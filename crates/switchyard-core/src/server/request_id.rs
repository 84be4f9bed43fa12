//! Request ids: UUIDv7 strings (time-ordered, so logs sort by start time).
//!
//! `Uuid::now_v7` asks the kernel for randomness on every call, a syscall per request on the hot
//! path. Here the random part comes from a per-process seed (read once) mixed with a counter,
//! which keeps ids unique and unpredictable enough for correlation (they are not secrets).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static SEED: OnceLock<u64> = OnceLock::new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new request id: 32 lower-case hex digits.
pub fn new_id() -> String {
    let seed = *SEED.get_or_init(|| uuid::Uuid::now_v7().as_u128() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let a = mix(seed ^ n);
    let b = mix(a ^ 0x9E37_79B9_7F4A_7C15);
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&a.to_le_bytes());
    random[8..].copy_from_slice(&b.to_le_bytes()[..2]);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .simple()
        .to_string()
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::new_id;

    #[test]
    fn ids_are_unique_uuid_v7_hex() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 10_000);
        let id = new_id();
        assert_eq!(id.len(), 32);
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    }
}
