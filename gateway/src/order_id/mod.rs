//! Order ids: 64-bit, unique across gateway instances, trend-increasing, minted without locks.
//!
//! # Bits (most significant first)
//!
//! ```text
//! | 0 | 41 bits: ms since 2026-01-01Z | 8 bits: node | 10 bits: sequence | 4 bits: shard gene |
//! ```
//!
//! Why each part is there:
//!
//! - **Zero sign bit**: every id is a positive `i64`, so it fits PostgreSQL `BIGINT` and SQLite
//!   `INTEGER` without surprises. Ids go over the wire as **decimal strings** in JSON, because
//!   JavaScript numbers lose precision above 2^53 and these ids are far above it.
//! - **Milliseconds first**: ids sort by creation time, so B-tree inserts append at the right edge
//!   and "newest orders" is an index range. A custom epoch (2026-01-01) makes 41 bits last ~69
//!   years (until ~2095).
//! - **Node id**: two gateway instances minting in the same millisecond never collide, as long as
//!   their node ids differ (from config, or leased from Redis — never guessed).
//! - **Sequence**: 1024 ids per millisecond per node (~1M/s). When a millisecond is used up the
//!   generator waits for the clock to reach the next one instead of borrowing ahead, so an id's
//!   timestamp never runs ahead of the wall clock and a clock rollback can be told apart from
//!   borrowed time.
//! - **Shard gene in the lowest bits**: `user_id mod 2^GENE_BITS`, the same value the order store
//!   shards by. Both "order by id" (gene read from the id) and "orders of a user" (gene computed
//!   from the user id) route to the same single shard, with no lookup table.
//!
//! # Clock rollback
//!
//! A small rollback (NTP step, VM migration) of at most `max_rollback_wait` is waited out; a
//! larger one refuses to mint ([`OrderIdError::ClockMovedBack`]) rather than risk a duplicate id.
//!
//! The same holds across a restart: the node id's lease in Redis keeps a mark of the highest
//! millisecond this node may have minted in (see `node_lease`). A new generator starts after it
//! ([`OrderIdGenerator::starting_after`]), and mints no further ahead than the mark the lease
//! last recorded ([`OrderIdGenerator::minting_until`]), so a gateway that dies between two
//! renewals has minted nothing above the mark its successor starts from.
//!
//! # Layout
//! - [`bits`]: the width and place of each part, reading them back out of an id, and
//!   [`shard_gene`].
//! - [`clock`]: the [`Clock`] trait the generator reads and waits on, and its implementations.
//! - here: [`OrderIdError`] and the [`OrderIdGenerator`] that mints.

pub mod bits;
pub mod clock;

pub use bits::{
    EPOCH_UNIX_MS, GENE_BITS, MAX_NODE_ID, NODE_BITS, SEQUENCE_BITS, TIMESTAMP_BITS, gene_of,
    node_of, shard_gene, timestamp_ms_of,
};
pub use clock::{Clock, wait_for_real_time};

use bits::{MAX_GENE, MAX_SEQUENCE, MAX_TIMESTAMP, NODE_SHIFT, SEQUENCE_SHIFT, TIMESTAMP_SHIFT};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a clock rollback [`OrderIdGenerator::new`] waits out before refusing to mint.
pub const DEFAULT_MAX_ROLLBACK_WAIT: Duration = Duration::from_millis(5);

/// Why no id was minted. None of these is retried inside the generator: each means the clock or
/// the configuration is wrong, and the caller should fail the request (and alert) instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderIdError {
    /// Ids from two instances only stay distinct if the node id fits its 8 bits.
    #[error("node id {node_id} is out of range: it must be at most {MAX_NODE_ID}")]
    NodeIdOutOfRange { node_id: u16 },
    /// A gene wider than `GENE_BITS` would spill into the sequence bits.
    #[error("shard gene {gene} is out of range: it must be at most {MAX_GENE}")]
    GeneOutOfRange { gene: u8 },
    /// The clock went back further than we are willing to wait; minting now could repeat an id.
    #[error(
        "clock moved back by {by_ms} ms, more than the rollback we wait out; refusing to mint order ids"
    )]
    ClockMovedBack { by_ms: u64 },
    /// The clock was behind by a small amount (or a millisecond was used up) but did not catch
    /// up in the time that should have taken.
    #[error(
        "clock is still {behind_ms} ms behind the last order id after waiting {waited:?}; refusing to mint order ids"
    )]
    ClockStalled { behind_ms: u64, waited: Duration },
    /// The 41-bit timestamp counts from 2026-01-01Z and cannot go below zero.
    #[error("clock reads {now_ms} (Unix ms), before the order-id epoch {EPOCH_UNIX_MS}")]
    ClockBeforeEpoch { now_ms: i64 },
    /// The 41-bit timestamp runs out around the year 2095.
    #[error("clock reads {now_ms} (Unix ms), beyond the 41-bit order-id timestamp range")]
    ClockOutOfRange { now_ms: i64 },
    /// This gateway no longer holds the lease on its node id (another instance took it, or it
    /// could not be renewed in time): its ids could collide with that instance's.
    #[error("node id {node_id} is not leased to this gateway now; refusing to mint order ids")]
    LeaseLost { node_id: u16 },
    /// The clock is past the mark the node id's lease last recorded (renewals are failing, or
    /// the clock jumped ahead): an id minted now could be minted again by a successor that
    /// starts from that mark.
    #[error(
        "clock reads {now_ms} (Unix ms), past {mark_ms}, the last mark of the node id's lease; refusing to mint order ids"
    )]
    PastLeaseMark { now_ms: i64, mark_ms: i64 },
}

/// Mints order ids for one node. Share it (e.g. in an `Arc`) across all request tasks of the
/// process: ids are only guaranteed unique and increasing per generator, so one per node.
pub struct OrderIdGenerator<C: Clock = crate::clock::Clock> {
    /// Shifted into every id so instances never collide.
    node_id: u16,
    clock: C,
    /// A rollback up to this long is waited out; a longer one is refused.
    max_rollback_wait_ms: u64,
    /// `(ms since epoch << SEQUENCE_BITS) | sequence` of the last id minted: one word, so a single
    /// compare-exchange claims an id without a lock, and ids grow as this value grows.
    last: AtomicU64,
    /// Whether this gateway holds the lease on `node_id` (see `node_lease`); none in tools and
    /// tests that mint without one.
    lease: Option<Arc<AtomicBool>>,
    /// The lease's mark (Unix ms): no id is minted at a later millisecond.
    mint_until: Option<Arc<AtomicI64>>,
}

impl<C: Clock> fmt::Debug for OrderIdGenerator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.last.load(Ordering::Relaxed);
        f.debug_struct("OrderIdGenerator")
            .field("node_id", &self.node_id)
            .field("max_rollback_wait_ms", &self.max_rollback_wait_ms)
            .field("last_ms_since_epoch", &(last >> SEQUENCE_BITS))
            .field("last_sequence", &(last & MAX_SEQUENCE))
            .finish_non_exhaustive()
    }
}

impl OrderIdGenerator<crate::clock::Clock> {
    /// A generator on the system clock that waits out rollbacks of up to
    /// [`DEFAULT_MAX_ROLLBACK_WAIT`] (tools and tests; a gateway passes its own clock to
    /// [`Self::with_clock`]).
    ///
    /// # Errors
    ///
    /// [`OrderIdError::NodeIdOutOfRange`] if `node_id > 255`.
    pub fn new(node_id: u16) -> Result<Self, OrderIdError> {
        Self::with_clock(
            node_id,
            crate::clock::Clock::system(),
            DEFAULT_MAX_ROLLBACK_WAIT,
        )
    }
}

impl<C: Clock> OrderIdGenerator<C> {
    /// A generator on any clock. `max_rollback_wait` is counted in whole milliseconds (rounded
    /// down): `Duration::ZERO` refuses every rollback.
    ///
    /// # Errors
    ///
    /// [`OrderIdError::NodeIdOutOfRange`] if `node_id > 255`.
    pub fn with_clock(
        node_id: u16,
        clock: C,
        max_rollback_wait: Duration,
    ) -> Result<Self, OrderIdError> {
        if node_id > MAX_NODE_ID {
            return Err(OrderIdError::NodeIdOutOfRange { node_id });
        }
        Ok(Self {
            node_id,
            clock,
            max_rollback_wait_ms: u64::try_from(max_rollback_wait.as_millis()).unwrap_or(u64::MAX),
            last: AtomicU64::new(0),
            lease: None,
            mint_until: None,
        })
    }

    /// Mints only while `held` is true: the node id's lease, kept by `node_lease`.
    #[must_use]
    pub fn leased(mut self, held: Arc<AtomicBool>) -> Self {
        self.lease = Some(held);
        self
    }

    /// Mints only at milliseconds after `floor_ms` (Unix ms): the mark of the node id's lease
    /// when this gateway took it, at or above every id its earlier lives minted. A clock behind
    /// it is a rollback like any other: waited out when small, refused when large.
    #[must_use]
    pub fn starting_after(self, floor_ms: i64) -> Self {
        if let Some(since) = floor_ms
            .checked_sub(EPOCH_UNIX_MS)
            .and_then(|s| u64::try_from(s).ok())
        {
            let floor = (since.min(MAX_TIMESTAMP) << SEQUENCE_BITS) | MAX_SEQUENCE;
            self.last.fetch_max(floor, Ordering::AcqRel);
        }
        self
    }

    /// Mints only while the clock is at or before `mark` (Unix ms), which the node id's lease
    /// raises with each renewal.
    #[must_use]
    pub fn minting_until(mut self, mark: Arc<AtomicI64>) -> Self {
        self.mint_until = Some(mark);
        self
    }

    /// The millisecond (Unix ms) of the last id minted, or of the floor it started after: at
    /// or above every id this node has minted.
    pub fn last_ms(&self) -> i64 {
        let ms = self.last.load(Ordering::Acquire) >> SEQUENCE_BITS;
        // At most 2^41 - 1 (see `epoch_ms`), so the cast is lossless.
        ms as i64 + EPOCH_UNIX_MS
    }

    /// The node id stamped into every id from this generator.
    pub fn node_id(&self) -> u16 {
        self.node_id
    }

    /// A new order id for `user_id`, carrying [`shard_gene`]`(user_id)`.
    ///
    /// Normally returns at once; may block the thread for up to ~1 ms when this node's 1024 ids
    /// of the current millisecond are used up, or up to `max_rollback_wait` after a clock rollback.
    ///
    /// # Errors
    ///
    /// [`OrderIdError::ClockMovedBack`] / [`OrderIdError::ClockStalled`] when the clock is behind
    /// the last id and did not (or would not) catch up in time; [`OrderIdError::ClockBeforeEpoch`]
    /// / [`OrderIdError::ClockOutOfRange`] when the clock is outside the 41-bit range. Nothing is
    /// minted on error.
    pub fn next(&self, user_id: &str) -> Result<u64, OrderIdError> {
        self.next_with_gene(shard_gene(user_id))
    }

    /// A new order id carrying `gene`, for callers that already know the user's shard gene.
    ///
    /// # Errors
    ///
    /// As [`Self::next`], plus [`OrderIdError::GeneOutOfRange`] if `gene >= 2^GENE_BITS`.
    pub fn next_with_gene(&self, gene: u8) -> Result<u64, OrderIdError> {
        if gene > MAX_GENE {
            return Err(OrderIdError::GeneOutOfRange { gene });
        }
        if self
            .lease
            .as_ref()
            .is_some_and(|held| !held.load(Ordering::Acquire))
        {
            return Err(OrderIdError::LeaseLost {
                node_id: self.node_id,
            });
        }
        // The state is loaded *before* the clock is read, and published with Release: if we see
        // another thread's id at millisecond `t`, its clock read happened before ours, so our
        // read is at least `t` too and concurrency alone never looks like a rollback.
        let mut last = self.last.load(Ordering::Acquire);
        loop {
            let now = self.epoch_ms()?;
            let last_ms = last >> SEQUENCE_BITS;
            let last_seq = last & MAX_SEQUENCE;

            let next = if now > last_ms {
                now << SEQUENCE_BITS
            } else if now == last_ms && last_seq < MAX_SEQUENCE {
                last + 1
            } else {
                // Either the clock is behind the last id (rollback) or this millisecond's
                // sequence is used up; both mean waiting for the clock to reach `target`.
                if now < last_ms && last_ms - now > self.max_rollback_wait_ms {
                    return Err(OrderIdError::ClockMovedBack {
                        by_ms: last_ms - now,
                    });
                }
                let target = if last_seq < MAX_SEQUENCE {
                    last_ms
                } else {
                    last_ms + 1
                };
                self.wait_until(target, target - now)?;
                last = self.last.load(Ordering::Acquire);
                continue;
            };

            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Ok(((next >> SEQUENCE_BITS) << TIMESTAMP_SHIFT)
                        | (u64::from(self.node_id) << NODE_SHIFT)
                        | ((next & MAX_SEQUENCE) << SEQUENCE_SHIFT)
                        | u64::from(gene));
                }
                Err(actual) => last = actual,
            }
        }
    }

    /// Milliseconds since the order-id epoch, checked against the 41-bit range and the lease's
    /// mark.
    fn epoch_ms(&self) -> Result<u64, OrderIdError> {
        let now_ms = self.clock.now_ms();
        if let Some(mark) = &self.mint_until {
            let mark_ms = mark.load(Ordering::Acquire);
            if now_ms > mark_ms {
                return Err(OrderIdError::PastLeaseMark { now_ms, mark_ms });
            }
        }
        let since = now_ms
            .checked_sub(EPOCH_UNIX_MS)
            .ok_or(OrderIdError::ClockBeforeEpoch { now_ms })?;
        let since = u64::try_from(since).map_err(|_| OrderIdError::ClockBeforeEpoch { now_ms })?;
        if since > MAX_TIMESTAMP {
            return Err(OrderIdError::ClockOutOfRange { now_ms });
        }
        Ok(since)
    }

    /// Waits until the clock reaches `target` (ms since epoch). A healthy clock gains
    /// `behind_ms` in `behind_ms` of real time, so patience is that plus a millisecond of slack.
    /// Elapsed time is taken *before* each clock read: a thread descheduled between the two
    /// then sees the clock caught up, so only a clock that really failed to move is refused.
    fn wait_until(&self, target: u64, behind_ms: u64) -> Result<(), OrderIdError> {
        let patience = Duration::from_millis(behind_ms.saturating_add(1));
        let started = Instant::now();
        loop {
            let waited = started.elapsed();
            let now = self.epoch_ms()?;
            if now >= target {
                return Ok(());
            }
            let behind_ms = target - now;
            if waited > patience {
                return Err(OrderIdError::ClockStalled { behind_ms, waited });
            }
            self.clock.pause(behind_ms);
        }
    }
}

#[cfg(test)]
mod tests;
