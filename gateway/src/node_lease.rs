//! Node ids never collide: each gateway leases its `server.node_id` in Redis for as long as it
//! runs. Order ids carry the node id, so two live gateways with the same id could mint the same
//! order id, and one order would overwrite another.
//!
//! The lease is a key with a short expiry that the gateway renews. A second gateway configured
//! with a taken id refuses to start, naming the holder. A gateway that was killed leaves its
//! lease to expire, but when restarted on the same host and fixed listen address it takes it
//! over at once: binding that address proves the old process is gone.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;

/// How long a lease outlives its last renewal.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often it is renewed: a few missed renewals (a Redis hiccup) do not lose it.
const RENEW_EVERY: Duration = Duration::from_secs(2);

static SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../lua/node_lease.lua")));

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
        source: redis::RedisError,
    },
}

/// A held lease; renew it with [`NodeLease::keep`] and give it back with [`NodeLease::release`].
#[derive(Debug, Clone)]
pub struct NodeLease {
    /// True while the lease is ours; the order-id generator mints only then.
    held: Arc<AtomicBool>,
    node_id: u16,
    key: String,
    holder: String,
    /// Holders this one may take over (its own earlier lives), or empty.
    takeover: String,
}

impl NodeLease {
    /// Leases `node_id` for the gateway listening on `listen`. `fixed_port`: the configured
    /// address named its port (not 0), so a holder with the same address was this gateway.
    ///
    /// # Errors
    /// [`LeaseError::Taken`] when another live gateway holds the id; Redis errors.
    pub async fn acquire(
        redis: &mut ConnectionManager,
        node_id: u16,
        listen: SocketAddr,
        fixed_port: bool,
    ) -> Result<Self, LeaseError> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "unknown-host".into());
        let base = format!("{host}/{listen}/");
        let lease = Self {
            held: Arc::new(AtomicBool::new(true)),
            node_id,
            key: format!("fg:node:{node_id}"),
            holder: format!("{base}{}/{}", std::process::id(), crate::clock::now_ms()),
            takeover: if fixed_port { base } else { String::new() },
        };
        lease.claim(redis, &lease.takeover).await?;
        tracing::info!(node_id, holder = %lease.holder, "node id leased");
        Ok(lease)
    }

    async fn claim(&self, redis: &mut ConnectionManager, takeover: &str) -> Result<(), LeaseError> {
        let parts: (i64, String, i64) = SCRIPT
            .key(&self.key)
            .arg("claim")
            .arg(&self.holder)
            .arg(u64::try_from(LEASE.as_millis()).unwrap_or(u64::MAX))
            .arg(takeover)
            .invoke_async(redis)
            .await
            .map_err(|source| LeaseError::Redis {
                node_id: self.node_id,
                source,
            })?;
        match parts {
            (1, _, _) => Ok(()),
            (_, holder, left_ms) => Err(LeaseError::Taken {
                node_id: self.node_id,
                holder,
                left_ms,
            }),
        }
    }

    /// The flag the order-id generator checks before minting.
    pub fn held(&self) -> Arc<AtomicBool> {
        self.held.clone()
    }

    /// Renews the lease until the task is aborted. While the lease is not ours (another gateway
    /// took it, or it went unrenewed for longer than it lasts) no order id is minted: purchases
    /// answer 503 rather than risk an id that another instance mints too.
    pub async fn keep(self, mut redis: ConnectionManager) {
        let mut tick = tokio::time::interval(RENEW_EVERY);
        tick.tick().await;
        let mut renewed = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            match self.claim(&mut redis, "").await {
                Ok(()) => {
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

    /// Gives the lease back, so a successor need not wait for it to expire.
    pub async fn release(&self, redis: &mut ConnectionManager) {
        let released: Result<i64, _> = SCRIPT
            .key(&self.key)
            .arg("release")
            .arg(&self.holder)
            .arg(0)
            .arg("")
            .invoke_async(redis)
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, node_id = self.node_id, "node id lease not released; it expires by itself");
        }
    }
}
