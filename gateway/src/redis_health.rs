//! Whether the configured Redis can be used, told in words an operator can act on: at start
//! (refuse with the reason) and on every readiness probe (not ready, with the reason).
//!
//! Every message names Redis by its address only, never by its URL: the URL may carry a
//! password.

use std::time::Duration;

use flashgate_stock::health::NO_EVICTION;
use flashgate_stock::{EvictionPolicy, PolicyError, eviction_policy};
use redis::aio::ConnectionLike;
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

/// Refuses a Redis that may evict keys, or whose policy cannot be read.
///
/// # Errors
/// [`RedisRefused`] naming the policy and what to set, or why it is not known.
pub async fn require_no_eviction<C: ConnectionLike>(
    conn: &mut C,
    target: &RedisTarget,
    timeout: Duration,
) -> Result<(), RedisRefused> {
    let addr = target.addr();
    match eviction_policy(conn).await {
        Ok(policy) if policy.evicts() => Err(RedisRefused::Evicting { addr, policy }),
        Ok(_) => Ok(()),
        Err(PolicyError::Redis(e)) => Err(RedisRefused::unreachable(target, &e, timeout)),
        Err(e) => Err(RedisRefused::PolicyUnknown {
            addr,
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

/// Reads the policy for a readiness probe: one cheap command.
pub async fn eviction<C: ConnectionLike>(conn: &mut C) -> Eviction {
    match eviction_policy(conn).await {
        Ok(policy) if policy.evicts() => Eviction::Unsafe(evicting(&policy)),
        Ok(_) => Eviction::Safe,
        Err(PolicyError::Redis(_)) => Eviction::Unknown,
        Err(e) => Eviction::Unsafe(e.to_string()),
    }
}
