//! Whether orders are reaching the store. A store outage does not stop sales (Redis is the
//! commit point and its journal holds the backlog), so readiness reports it as `degraded`
//! rather than failing; operators still need to see it.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::clock::Clock;

/// Set by the persistence threads after each write, read by `/readyz` and `/metrics`.
#[derive(Debug)]
pub struct StoreHealth {
    /// The gateway's clock, which stamps when failing began.
    clock: Clock,
    /// When writes started failing (ms since the epoch), 0 while they succeed.
    failing_since_ms: AtomicI64,
    /// Order states written to the store, by workers and reconciler alike.
    pub persisted: AtomicU64,
    /// Of those, the ones the reconciler wrote: orders the queue missed (overflow, a crash,
    /// an outage) and the journal brought back.
    pub repaired: AtomicU64,
    /// Orders the store refused for good and that were set aside.
    pub set_aside: AtomicU64,
    /// Of those, orders whose id another stored order holds: ids are meant to be unique, so
    /// any is an alarm.
    pub collisions: AtomicU64,
    /// Unpaid orders past their deadline that Redis no longer knows, expired in the store by
    /// the store-side sweep.
    pub settled_in_store: AtomicU64,
}

impl StoreHealth {
    /// Healthy until a write fails; failures are stamped by `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            failing_since_ms: AtomicI64::new(0),
            persisted: AtomicU64::new(0),
            repaired: AtomicU64::new(0),
            set_aside: AtomicU64::new(0),
            collisions: AtomicU64::new(0),
            settled_in_store: AtomicU64::new(0),
        }
    }

    /// A write failed for a reason that may pass (the store is down or refusing writes).
    pub fn failed(&self) {
        let _ = self.failing_since_ms.compare_exchange(
            0,
            self.clock.now_ms().max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// A write went through.
    pub fn succeeded(&self) {
        self.failing_since_ms.store(0, Ordering::Relaxed);
    }

    /// Since when writes have been failing, if they are.
    pub fn failing_since_ms(&self) -> Option<i64> {
        match self.failing_since_ms.load(Ordering::Relaxed) {
            0 => None,
            since => Some(since),
        }
    }
}

/// Waits between attempts on a failing store: 50 ms doubling up to 5 s, so an outage costs
/// neither a busy loop nor a long wait once the store is back.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The wait after one more failure.
    pub fn next_wait(&mut self) -> std::time::Duration {
        let ms = 50u64.saturating_mul(1 << self.failures.min(7)).min(5_000);
        self.failures = self.failures.saturating_add(1);
        std::time::Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_remembers_when_failing_began_until_a_success() {
        let clock = Clock::manual(1_000);
        let h = StoreHealth::new(clock.clone());
        assert_eq!(h.failing_since_ms(), None);
        h.failed();
        assert_eq!(h.failing_since_ms(), Some(1_000));
        clock.advance(500);
        h.failed();
        assert_eq!(
            h.failing_since_ms(),
            Some(1_000),
            "the first failure is kept"
        );
        h.succeeded();
        assert_eq!(h.failing_since_ms(), None);
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..10)
            .map(|_| u64::try_from(b.next_wait().as_millis()).unwrap_or(0))
            .collect();
        assert_eq!(
            waits,
            [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]
        );
        b.reset();
        assert_eq!(b.next_wait().as_millis(), 50);
    }
}
