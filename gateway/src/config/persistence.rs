//! `[persistence]`: the queue and writer threads between the hot path and the store, the
//! reconciler's pace, and when settled campaigns leave Redis.

use std::time::Duration;

use super::checks::{Errors, MS, NO_MAX};
use super::raw::RawPersistence;

/// `[persistence]`: the queue and workers between the hot path and the store.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistenceConfig {
    /// Writer threads (1..=64, default 1: SQLite has one writer, so a second thread would only
    /// wait for the lock; a store with parallel writers wants more).
    pub workers: usize,
    /// Orders buffered before the hot path sees back-pressure (default 65536).
    pub queue_capacity: usize,
    /// Most orders written per transaction (1..=10000, default 512).
    pub batch_size: usize,
    /// Longest a partial batch waits before it is written (default 5ms).
    pub flush_interval: Duration,
    /// How often the reconciler replays the Redis journal into the store (default 5s).
    pub reconcile_interval: Duration,
    /// Journal entries younger than this are left to the workers (default 2s).
    pub reconcile_grace: Duration,
    /// How long after its end a settled campaign stays in Redis before it is retired (default
    /// 24h; `0`: never): its keys leave Redis and it is answered from the store from then on
    /// (ARCHITECTURE.md §9). A campaign that is not settled then is retired once it is.
    pub retire_after: Option<Duration>,
}

/// `[persistence]`, each key within its bounds (the defaults are in [`PersistenceConfig`]).
pub(super) fn persistence(e: &mut Errors, p: RawPersistence) -> PersistenceConfig {
    PersistenceConfig {
        workers: e.int("persistence.workers", p.workers, 1, 1, 64),
        queue_capacity: e.int(
            "persistence.queue_capacity",
            p.queue_capacity,
            65536,
            1,
            NO_MAX,
        ),
        batch_size: e.int("persistence.batch_size", p.batch_size, 512, 1, 10_000),
        flush_interval: e.duration(
            "persistence.flush_interval",
            p.flush_interval.as_deref(),
            5 * MS,
            MS,
        ),
        reconcile_interval: e.duration(
            "persistence.reconcile_interval",
            p.reconcile_interval.as_deref(),
            Duration::from_secs(5),
            MS,
        ),
        reconcile_grace: e.duration(
            "persistence.reconcile_grace",
            p.reconcile_grace.as_deref(),
            Duration::from_secs(2),
            Duration::ZERO,
        ),
        retire_after: Some(e.duration(
            "persistence.retire_after",
            p.retire_after.as_deref(),
            Duration::from_secs(24 * 3600),
            Duration::ZERO,
        ))
        .filter(|d| !d.is_zero()),
    }
}
