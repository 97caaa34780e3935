//! Whether the configured Redis can be used, told in words an operator can act on: at start
//! (refuse with the reason) and on every readiness probe (not ready, with the reason).
//!
//! Every message names Redis by its address only, never by its URL: the URL may carry a
//! password.

use std::time::Duration;

use flashgate_stock::health::NO_EVICTION;
use flashgate_stock::{EvictionPolicy, MasterPolicy, PolicyError, StockConnection};
use flashgate_stock::{cluster_state, eviction_policies};
use redis::{ErrorKind, RedisError};

use crate::config::RedisTarget;

/// Why a gateway will not use its Redis.
#[derive(Debug, thiserror::Error)]
pub enum RedisRefused {
    #[error("redis at {addr} {reason}; flashgate never falls back to another Redis")]
    Unreachable { addr: String, reason: String },
    /// An evicting policy would drop orders and per-user quotas under memory pressure.
    #[error("redis at {addr}: {}", evicting(.policy))]
    Evicting {
        addr: String,
        policy: EvictionPolicy,
    },
    /// Sales are not started on a Redis whose policy is unknown: it may be evicting.
    #[error("redis at {addr}: {reason}; flashgate needs to know that it is {NO_EVICTION}")]
    PolicyUnknown { addr: String, reason: String },
}

impl RedisRefused {
    /// The failure to reach `target`, in words: refused login, no answer, or unreachable.
    pub fn unreachable(target: &RedisTarget, e: &RedisError, timeout: Duration) -> Self {
        Self::Unreachable {
            addr: target.addr(),
            reason: why(e, timeout),
        }
    }
}

/// Why Redis could not be used, from redis-rs' error (which never holds the URL).
fn why(e: &RedisError, timeout: Duration) -> String {
    if e.kind() == ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS"))
    {
        format!(
            "refused the login ({e}): check the password (redis.url, redis.password_file or FLASHGATE_REDIS_PASSWORD)"
        )
    } else if e.is_timeout() {
        format!(
            "did not answer within {} ({e})",
            humantime::format_duration(timeout)
        )
    } else {
        format!("is unreachable ({e})")
    }
}

fn evicting(policy: &EvictionPolicy) -> String {
    format!(
        "maxmemory-policy is {} (read with {}): Redis may evict keys, and an evicted orders hash \
         is a lost order, an evicted buyers hash a reset per-user limit; set maxmemory-policy \
         {NO_EVICTION} (CONFIG SET maxmemory-policy {NO_EVICTION}, and in redis.conf)",
        policy.name, policy.read_from
    )
}

/// The first master that may evict keys, if any.
fn first_evicting(policies: Vec<MasterPolicy>) -> Option<MasterPolicy> {
    policies.into_iter().find(|p| p.policy.evicts())
}

/// Refuses a Redis that may evict keys, or whose policy cannot be read: the one Redis, or any
/// master of a Cluster.
///
/// # Errors
/// [`RedisRefused`] naming the policy (and the master) and what to set, or why it is not known.
pub async fn require_no_eviction(
    conn: &mut StockConnection,
    target: &RedisTarget,
    timeout: Duration,
) -> Result<(), RedisRefused> {
    match eviction_policies(conn).await {
        Ok(policies) => match first_evicting(policies) {
            Some(MasterPolicy { node, policy }) => Err(RedisRefused::Evicting {
                addr: node.unwrap_or_else(|| target.addr()),
                policy,
            }),
            None => Ok(()),
        },
        Err(PolicyError::Redis(e)) => Err(RedisRefused::unreachable(target, &e, timeout)),
        Err(e) => Err(RedisRefused::PolicyUnknown {
            addr: target.addr(),
            reason: e.to_string(),
        }),
    }
}

/// What a readiness probe learns of the eviction policy.
#[derive(Debug)]
pub enum Eviction {
    /// `noeviction`: nothing the scripts write is dropped.
    Safe,
    /// Not ready: the policy evicts, or cannot be read (why, for the answer).
    Unsafe(String),
    /// Redis did not answer; the probe reports Redis down anyway.
    Unknown,
}

/// Reads the policy for a readiness probe: one cheap command (to each master of a Cluster).
pub async fn eviction(conn: &mut StockConnection) -> Eviction {
    match eviction_policies(conn).await {
        Ok(policies) => match first_evicting(policies) {
            Some(MasterPolicy {
                node: Some(node),
                policy,
            }) => Eviction::Unsafe(format!("redis at {node}: {}", evicting(&policy))),
            Some(MasterPolicy { node: None, policy }) => Eviction::Unsafe(evicting(&policy)),
            None => Eviction::Safe,
        },
        Err(PolicyError::Redis(_)) => Eviction::Unknown,
        Err(e) => Eviction::Unsafe(e.to_string()),
    }
}

/// What a readiness probe learns of a Redis Cluster's state.
#[derive(Debug)]
pub enum ClusterHealth {
    /// One Redis, or a Cluster whose every slot is served.
    Whole,
    /// The Cluster says it is not `ok` (the state, as CLUSTER INFO names it): some campaigns'
    /// slots have no master, and the Cluster refuses every command until they do.
    Broken(String),
    /// No node answered.
    Unknown,
}

/// Asks the Cluster (any node of it) for its state; the one Redis is always whole.
pub async fn cluster_health(conn: &mut StockConnection) -> ClusterHealth {
    match cluster_state(conn).await {
        Ok(Some(state)) if state == "ok" => ClusterHealth::Whole,
        Ok(Some(state)) => ClusterHealth::Broken(state),
        Ok(None) => ClusterHealth::Whole,
        Err(_) => ClusterHealth::Unknown,
    }
}
