//! The wait queue: with `limits.max_wait`, a request over a limit waits for room instead of
//! getting its 429 at once, in a queue per scope ordered by priority class, then arrival.
//!
//! Only the head of a queue asks the limiter: it sleeps until the moment the limiter named,
//! tries, and on success leaves, waking the next head. A new request for a scope that has
//! waiters joins the queue instead of trying first, so nobody overtakes a waiter of its own
//! class or higher, and when room frees up the highest class is admitted first. A waiter gives
//! up (429 with `Retry-After`) when its wait would pass `max_wait`; a full queue
//! (`limits.max_queue`) turns away a newcomer, unless the newcomer's class is higher than the
//! lowest queued one, which is then turned away instead. A waiter whose client goes away
//! leaves the queue (its ticket is dropped).
//!
//! The queues are per process (shared by its workers). With the Redis backend, replicas share
//! the limit but each orders its own waiters: a head polls Redis at the retry time Redis
//! named, and may find the room taken by another replica, then waits again.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::config::Priority;
use super::Denied;

/// Queue order: higher class first, then earlier arrival.
type Place = (Reverse<Priority>, u64);

#[derive(Debug)]
struct Slot {
    wake: Notify,
    evicted: AtomicBool,
    next_try: Mutex<Instant>,
}

#[derive(Debug, Default)]
struct Queue {
    waiters: BTreeMap<Place, Arc<Slot>>,
    /// The scope's latest refusal and when it was made, for waiters that give up without
    /// having asked the limiter themselves.
    last: Option<(Box<Denied>, Instant)>,
}

/// How waits ended, per class (for `/metrics`).
#[derive(Debug, Default)]
pub(crate) struct WaitStats {
    pub waiting: [AtomicU64; 3],
    pub admitted: [AtomicU64; 3],
    pub timed_out: [AtomicU64; 3],
    pub queue_full: [AtomicU64; 3],
    pub evicted: [AtomicU64; 3],
}

fn idx(p: Priority) -> usize {
    p as usize
}

/// Every scope's queue in this process.
#[derive(Debug, Default)]
pub(crate) struct WaitQueues {
    queues: Mutex<HashMap<String, Queue>>,
    seq: AtomicU64,
    pub stats: WaitStats,
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// At the head, and the retry time has come: ask the limiter.
    Go,
    /// The waiter's deadline passed.
    TimedOut,
    /// A higher class took the place in a full queue.
    Evicted,
}

/// A place in a scope's queue; dropping it leaves the queue.
#[derive(Debug)]
pub(crate) struct Ticket {
    queues: Arc<WaitQueues>,
    scope: String,
    place: Place,
    slot: Arc<Slot>,
}

impl WaitQueues {
    /// The first of `scopes` that has waiters.
    pub(crate) fn busy<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        let queues = self.queues.lock();
        if queues.is_empty() {
            return None;
        }
        scopes.into_iter().find(|s| queues.contains_key(*s))
    }

    /// Joins `scope`'s queue in `class`, to try first at `next_try` once at the head.
    /// `denied` is the refusal that sent the request here, if any. `Err` when the queue is
    /// full of waiters of this class or higher (carries the scope's latest refusal).
    pub(crate) fn join(
        self: &Arc<Self>,
        scope: &str,
        class: Priority,
        max_queue: usize,
        next_try: Instant,
        denied: Option<&Denied>,
    ) -> Result<Ticket, Option<Box<Denied>>> {
        let mut queues = self.queues.lock();
        let q = queues.entry(scope.to_owned()).or_default();
        if let Some(d) = denied {
            q.last = Some((Box::new(d.clone()), Instant::now()));
        }
        if q.waiters.len() >= max_queue {
            let lowest = q.waiters.last_key_value().map(|(p, _)| *p);
            match lowest {
                Some(p @ (Reverse(c), _)) if c < class => {
                    if let Some(victim) = q.waiters.remove(&p) {
                        victim.evicted.store(true, Ordering::Release);
                        victim.wake.notify_one();
                    }
                }
                _ => {
                    self.stats.queue_full[idx(class)].fetch_add(1, Ordering::Relaxed);
                    let last = q.last.as_ref().map(|(d, at)| aged(d, *at));
                    if q.waiters.is_empty() {
                        queues.remove(scope);
                    }
                    return Err(last);
                }
            }
        }
        let place = (Reverse(class), self.seq.fetch_add(1, Ordering::Relaxed));
        let slot = Arc::new(Slot {
            wake: Notify::new(),
            evicted: AtomicBool::new(false),
            next_try: Mutex::new(next_try),
        });
        q.waiters.insert(place, Arc::clone(&slot));
        self.stats.waiting[idx(class)].fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            queues: Arc::clone(self),
            scope: scope.to_owned(),
            place,
            slot,
        })
    }

    /// Room may have freed up in `scope` (tokens were refunded): its head tries now.
    pub(crate) fn poke(&self, scope: &str) {
        let queues = self.queues.lock();
        if let Some((_, head)) = queues.get(scope).and_then(|q| q.waiters.first_key_value()) {
            *head.next_try.lock() = Instant::now();
            head.wake.notify_one();
        }
    }

    /// Waiters in `scope`, best first (tests).
    #[cfg(test)]
    pub(crate) fn order(&self, scope: &str) -> Vec<(Priority, u64)> {
        self.queues.lock().get(scope).map_or_else(Vec::new, |q| {
            q.waiters.keys().map(|(Reverse(c), s)| (*c, *s)).collect()
        })
    }
}

/// A refusal made at `at`, as seen now: the retry time counts down.
fn aged(d: &Denied, at: Instant) -> Box<Denied> {
    let mut d = Box::new(d.clone());
    let elapsed = Instant::now().saturating_duration_since(at);
    d.retry_after = d
        .retry_after
        .saturating_sub(elapsed)
        .max(std::time::Duration::from_millis(1));
    d
}

impl Ticket {
    fn class(&self) -> Priority {
        self.place.0 .0
    }

    /// Waits until it is this waiter's turn to ask the limiter, or its deadline, or its
    /// eviction.
    pub(crate) async fn turn(&self, deadline: Instant) -> Turn {
        loop {
            if self.slot.evicted.load(Ordering::Acquire) {
                return Turn::Evicted;
            }
            let now = Instant::now();
            if now >= deadline {
                return Turn::TimedOut;
            }
            let head = self
                .queues
                .queues
                .lock()
                .get(&self.scope)
                .and_then(|q| q.waiters.first_key_value())
                .is_some_and(|(p, _)| *p == self.place);
            let next_try = *self.slot.next_try.lock();
            if head && now >= next_try {
                return Turn::Go;
            }
            let until = if head {
                next_try.min(deadline)
            } else {
                deadline
            };
            // `notify_one` keeps a permit when nobody waits yet: no wake-up is lost between
            // the check above and this wait.
            tokio::select! {
                () = self.slot.wake.notified() => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// The limiter refused again: try next at `at`, and remember the refusal for the others.
    pub(crate) fn retry_at(&self, at: Instant, denied: &Denied) {
        *self.slot.next_try.lock() = at;
        if let Some(q) = self.queues.queues.lock().get_mut(&self.scope) {
            q.last = Some((Box::new(denied.clone()), Instant::now()));
        }
    }

    /// The scope's latest refusal, aged to now.
    pub(crate) fn last_refusal(&self) -> Option<Box<Denied>> {
        self.queues
            .queues
            .lock()
            .get(&self.scope)
            .and_then(|q| q.last.as_ref().map(|(d, at)| aged(d, *at)))
    }

    /// Leaves the queue, counting how the wait ended.
    pub(crate) fn finish(self, turn: Result<(), Turn>) {
        let s = &self.queues.stats;
        let c = idx(self.class());
        match turn {
            Ok(()) => &s.admitted[c],
            Err(Turn::Evicted) => &s.evicted[c],
            Err(_) => &s.timed_out[c],
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.queues.stats.waiting[idx(self.class())].fetch_sub(1, Ordering::Relaxed);
        let mut queues = self.queues.queues.lock();
        let Some(q) = queues.get_mut(&self.scope) else {
            return;
        };
        let was_head = q
            .waiters
            .first_key_value()
            .is_some_and(|(p, _)| *p == self.place);
        q.waiters.remove(&self.place);
        match q.waiters.first_key_value() {
            None => {
                queues.remove(&self.scope);
            }
            Some((_, next)) if was_head => next.wake.notify_one(),
            Some(_) => {}
        }
    }
}
