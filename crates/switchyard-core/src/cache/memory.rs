//! The in-process backend: a least-recently-used map bounded in bytes, with a deadline per
//! entry. Expired entries are dropped when they are looked up or reach the cold end.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::{Entry, Key};
use crate::FastMap;

struct Slot {
    entry: Entry,
    expires: Instant,
    /// Position in `order`: higher is more recently used.
    tick: u64,
    weight: usize,
}

/// The map and its recency order.
pub(super) struct Lru {
    max_bytes: usize,
    bytes: usize,
    tick: u64,
    map: FastMap<Key, Slot>,
    /// Recency order: the first entry is the least recently used.
    order: BTreeMap<u64, Key>,
}

impl std::fmt::Debug for Lru {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lru")
            .field("entries", &self.map.len())
            .field("bytes", &self.bytes)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl Lru {
    pub(super) fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            bytes: 0,
            tick: 0,
            map: FastMap::default(),
            order: BTreeMap::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The entry under `key` if it has not expired by `now`; it becomes the most recently used.
    pub(super) fn get(&mut self, key: &Key, now: Instant) -> Option<Entry> {
        let slot = self.map.get(key)?;
        if slot.expires <= now {
            self.remove(key);
            return None;
        }
        let old = slot.tick;
        self.tick += 1;
        let tick = self.tick;
        self.order.remove(&old);
        self.order.insert(tick, *key);
        let slot = self.map.get_mut(key)?;
        slot.tick = tick;
        Some(slot.entry.clone())
    }

    /// Keeps `entry` under `key` until `expires`, replacing what was there, then evicts the
    /// least recently used entries until the total fits.
    pub(super) fn put(&mut self, key: Key, entry: Entry, expires: Instant) {
        let weight = entry.weight();
        if weight > self.max_bytes {
            return;
        }
        self.remove(&key);
        self.tick += 1;
        self.order.insert(self.tick, key);
        self.bytes += weight;
        self.map.insert(
            key,
            Slot {
                entry,
                expires,
                tick: self.tick,
                weight,
            },
        );
        while self.bytes > self.max_bytes {
            let Some((_, cold)) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.map.remove(&cold) {
                self.bytes -= slot.weight;
            }
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(slot) = self.map.remove(key) {
            self.order.remove(&slot.tick);
            self.bytes -= slot.weight;
        }
    }
}
