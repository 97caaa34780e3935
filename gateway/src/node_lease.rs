//! Node ids never collide: each gateway leases its `server.node_id` in Redis for as long as it
//! runs. Order ids carry the node id, so two live gateways with the same id could mint the same
//! order id, and one order would overwrite another.
//!
//! The lease is a key with a short expiry that the gateway renews. A second gateway configured
//! with a taken id refuses to start, naming the holder. A gateway that was killed leaves its
//! lease to expire, but when restarted on the same host and fixed listen address it takes it
//! over at once: binding that address proves the old process is gone.
//!
//! With the lease goes a mark: the highest millisecond this node id may have minted an order id
//! in. Each renewal raises it to [`MINT_AHEAD`] past now, and the order-id generator mints no
//! further than the mark last recorded; a clean shutdown lowers it to the last id minted. A
//! gateway that starts on the node id mints only after the mark, so a clock stepped back across
//! a restart never repeats an id: a mark a few seconds ahead (a crash) is waited out before
//! serving, a larger gap (the clock really went back) refuses to mint until the clock passes it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use flashgate_stock::StockConnection;
use flashgate_stock::StockError;
use flashgate_stock::node::{self, Claim, NodeKeys};

use crate::clock::Clock;

/// How long a lease outlives its last renewal.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often it is renewed: a few missed renewals (a Redis hiccup) do not lose it.
const RENEW_EVERY: Duration = Duration::from_secs(2);
/// How far past now each renewal lets ids be minted: two renewals may fail before minting
/// stops. A gateway restarted after a crash waits at most this long before it serves.
pub const MINT_AHEAD: Duration = Duration::from_secs(6);
/// The longest a starting gateway waits for its clock to pass the node id's mark; a mark
/// further ahead means the clock went back, and minting is refused until it catches up.
const START_WAIT: Duration = Duration::from_secs(8);

/// Why a node id could not be leased.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "node id {node_id} is in use by another gateway ({holder}; its lease ends in {left_ms} ms \
         unless renewed): give every instance its own server.node_id"
    )]
    Taken {
        node_id: u16,
        holder: String,
        left_ms: i64,
    },
    #[error("leasing node id {node_id} in Redis: {source}")]
    Redis {
        node_id: u16,
        #[source]
        source: StockError,
    },
}

/// A held lease; renew it with [`NodeLease::keep`] and give it back with [`NodeLease::release`].
#[derive(Debug, Clone)]
pub struct NodeLease {
    /// True while the lease is ours; the order-id generator mints only then.
    held: Arc<AtomicBool>,
    node_id: u16,
    keys: NodeKeys,
    holder: String,
    /// Holders this one may take over (its own earlier lives), or empty.
    takeover: String,
    /// The mark as this gateway found it: every id of the node's earlier lives is at or below.
    floor_ms: i64,
    /// The mark as last recorded (Unix ms); the generator mints no further.
    mint_until: Arc<AtomicI64>,
    /// The gateway's clock, the one its order-id generator mints by: marks are set from it.
    clock: Clock,
}

impl NodeLease {
    /// [`NodeLease::acquire_on`] the system clock, for tools and tests that lease without a
    /// gateway.
    ///
    /// # Errors
    /// As [`NodeLease::acquire_on`].
    pub async fn acquire(
        redis: &mut StockConnection,
        node_id: u16,
        listen: SocketAddr,
        fixed_port: bool,
    ) -> Result<Self, LeaseError> {
        Self::acquire_on(Clock::system(), redis, node_id, listen, fixed_port).await
    }

    /// Leases `node_id` for the gateway listening on `listen`, its marks read from `clock`
    /// (the one its order-id generator mints by). `fixed_port`: the configured address named
    /// its port (not 0), so a holder with the same address was this gateway.
    ///
    /// # Errors
    /// [`LeaseError::Taken`] when another live gateway holds the id; Redis errors.
    pub async fn acquire_on(
        clock: Clock,
        redis: &mut StockConnection,
        node_id: u16,
        listen: SocketAddr,
        fixed_port: bool,
    ) -> Result<Self, LeaseError> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "unknown-host".into());
        let base = format!("{host}/{listen}/");
        let mut lease = Self {
            held: Arc::new(AtomicBool::new(true)),
            node_id,
            keys: NodeKeys::new(node_id),
            holder: format!("{base}{}/{}", std::process::id(), clock.now_ms()),
            takeover: if fixed_port { base } else { String::new() },
            floor_ms: 0,
            mint_until: Arc::new(AtomicI64::new(0)),
            clock,
        };
        lease.floor_ms = lease.claim(redis, &lease.takeover).await?;
        tracing::info!(node_id, holder = %lease.holder, mark_ms = lease.floor_ms, "node id leased");
        Ok(lease)
    }

    /// Claims or renews the lease and raises the mark; returns the mark as it was found.
    async fn claim(&self, redis: &mut StockConnection, takeover: &str) -> Result<i64, LeaseError> {
        let ahead = i64::try_from(MINT_AHEAD.as_millis()).unwrap_or(i64::MAX);
        let claim = node::claim(
            redis,
            &self.keys,
            &self.holder,
            u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX),
            takeover,
            self.clock.now_ms().saturating_add(ahead),
        )
        .await
        .map_err(|source| LeaseError::Redis {
            node_id: self.node_id,
            source,
        })?;
        match claim {
            Claim::Held { mark_before, mark } => {
                self.mint_until.fetch_max(mark, Ordering::AcqRel);
                Ok(mark_before)
            }
            Claim::Taken { holder, left_ms } => Err(LeaseError::Taken {
                node_id: self.node_id,
                holder,
                left_ms,
            }),
        }
    }

    /// The mark as this gateway found it: start minting after it.
    pub fn floor_ms(&self) -> i64 {
        self.floor_ms
    }

    /// The mark as last recorded, raised by each renewal: mint no further.
    pub fn mint_until(&self) -> Arc<AtomicI64> {
        self.mint_until.clone()
    }

    /// Waits for the clock to pass the mark this gateway found, when that takes a few seconds
    /// (a predecessor on this node id died minting up to its mark): better a slower start than
    /// purchases refused. A mark further ahead means the clock was stepped back: the wait is
    /// not taken, and the generator refuses to mint until the clock catches up. A manual
    /// clock (tests) is moved past the mark rather than waited for ([`Clock::wait_until`]).
    pub async fn wait_for_clock(&self) {
        let ahead = self.floor_ms.saturating_sub(self.clock.now_ms());
        if ahead <= 0 {
            return;
        }
        let ahead = Duration::from_millis(u64::try_from(ahead).unwrap_or(u64::MAX));
        if ahead <= START_WAIT {
            tracing::info!(node_id = self.node_id, wait = ?ahead, "waiting for the clock to pass the ids this node id minted before");
            self.clock.wait_until(self.floor_ms.saturating_add(1)).await;
        } else {
            tracing::error!(node_id = self.node_id, behind = ?ahead, "the clock is behind order ids this node id minted before (stepped back?): no order ids are minted until it passes them");
        }
    }

    /// The flag the order-id generator checks before minting.
    pub fn held(&self) -> Arc<AtomicBool> {
        self.held.clone()
    }

    /// Renews the lease until the task is aborted. While the lease is not ours (another gateway
    /// took it, or it went unrenewed for longer than it lasts) no order id is minted: purchases
    /// answer 503 rather than risk an id that another instance mints too.
    pub async fn keep(self, mut redis: StockConnection) {
        let mut tick = tokio::time::interval(RENEW_EVERY);
        tick.tick().await;
        let mut renewed = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            match self.claim(&mut redis, "").await {
                Ok(_) => {
                    renewed = tokio::time::Instant::now();
                    if !self.held.swap(true, Ordering::AcqRel) {
                        tracing::warn!(
                            node_id = self.node_id,
                            "node id lease back; minting order ids again"
                        );
                    }
                }
                Err(e @ LeaseError::Taken { .. }) => {
                    self.held.store(false, Ordering::Release);
                    tracing::error!(error = %e, "node id lease lost: no order ids are minted until it is back");
                }
                Err(e) => {
                    // Unrenewed past its length, the lease may have expired and gone to another.
                    if renewed.elapsed() >= LEASE - RENEW_EVERY {
                        self.held.store(false, Ordering::Release);
                    }
                    tracing::warn!(error = %e, "node id lease not renewed");
                }
            }
        }
    }

    /// Gives the lease back, so a successor need not wait for it to expire, and records
    /// `last_minted_ms` (the generator's [`crate::order_id::OrderIdGenerator::last_ms`]) as the
    /// mark, so a successor need not wait for the mark either. Minting stops first.
    pub async fn release(&self, redis: &mut StockConnection, last_minted_ms: i64) {
        self.held.store(false, Ordering::Release);
        // An id being minted right now is at most at the clock's reading now.
        let mark = last_minted_ms.max(self.clock.now_ms());
        let released = node::release(redis, &self.keys, &self.holder, mark).await;
        if let Err(e) = released {
            tracing::warn!(error = %e, node_id = self.node_id, "node id lease not released; it expires by itself");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use flashgate_stock::StockConnection;
    use flashgate_stock::connection::Timeouts;
    use redis::IntoConnectionInfo as _;

    use super::{MINT_AHEAD, NodeLease};
    use crate::clock::Clock;
    use crate::order_id::{DEFAULT_MAX_ROLLBACK_WAIT, OrderIdGenerator};

    async fn shared_redis() -> StockConnection {
        let info = flashgate_testkit::redis_url()
            .into_connection_info()
            .unwrap();
        let timeouts = Timeouts {
            response: Duration::from_secs(2),
            connect: Duration::from_secs(2),
        };
        StockConnection::connect(info, timeouts)
            .await
            .expect("the test process's Redis (testkit)")
    }

    /// A node id no gateway holds on the shared Redis, picked the way the integration tests
    /// pick theirs (one counter), so the two never lease the same one.
    async fn free_node_id(redis: &mut StockConnection) -> u16 {
        for _ in 0..256 {
            let n: u64 = redis::cmd("INCR")
                .arg("fg:test:node-id-counter")
                .query_async(redis)
                .await
                .unwrap();
            let id = u16::try_from(n % 256).unwrap();
            let taken: bool = redis::cmd("EXISTS")
                .arg(&flashgate_stock::node::NodeKeys::new(id).lease)
                .query_async(redis)
                .await
                .unwrap();
            if !taken {
                return id;
            }
        }
        panic!("every node id is leased on the shared Redis");
    }

    /// A gateway killed while minting leaves its mark `MINT_AHEAD` past its clock; its
    /// successor on the node id waits for the clock to pass it. On a manual clock that wait
    /// moves the clock, so the test sees the whole restart without sleeping `MINT_AHEAD`.
    #[tokio::test]
    async fn a_restart_after_a_crash_mints_only_past_the_mark_of_the_life_before() {
        let mut redis = shared_redis().await;
        let node = free_node_id(&mut redis).await;
        let listen: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let clock = Clock::manual(crate::clock::now_ms());
        let start = clock.now_ms();
        let ahead = i64::try_from(MINT_AHEAD.as_millis()).unwrap();

        let crashed = NodeLease::acquire_on(clock.clone(), &mut redis, node, listen, true)
            .await
            .unwrap();
        assert_eq!(
            crashed
                .mint_until()
                .load(std::sync::atomic::Ordering::Acquire),
            start + ahead
        );
        drop(crashed);

        let restarted = NodeLease::acquire_on(clock.clone(), &mut redis, node, listen, true)
            .await
            .unwrap();
        assert_eq!(
            restarted.floor_ms(),
            start + ahead,
            "the crashed life's mark"
        );
        restarted.wait_for_clock().await;
        assert_eq!(
            clock.now_ms(),
            start + ahead + 1,
            "moved past the mark, not slept"
        );

        let ids = OrderIdGenerator::with_clock(node, clock.clone(), DEFAULT_MAX_ROLLBACK_WAIT)
            .unwrap()
            .leased(restarted.held())
            .starting_after(restarted.floor_ms())
            .minting_until(restarted.mint_until());
        // Past the mark found, and past the one the restart recorded, until a renewal (as
        // `keep` makes every 2 s) raises it from the moved clock.
        assert!(matches!(
            ids.next("frank"),
            Err(crate::order_id::OrderIdError::PastLeaseMark { .. })
        ));
        restarted.claim(&mut redis, "").await.unwrap();
        let id = ids.next("frank").unwrap();
        assert!(crate::order_id::timestamp_ms_of(id) > start + ahead);
        restarted.release(&mut redis, ids.last_ms()).await;
    }
}
