//! Whether the configured Redis can be used, told in words an operator can act on.
//!
//! Every message names Redis by its address only, never by its URL: the URL may carry a
//! password.

use std::time::Duration;

use redis::{ErrorKind, RedisError};

use crate::config::RedisTarget;

/// Why a gateway will not use its Redis.
#[derive(Debug, thiserror::Error)]
pub enum RedisRefused {
    #[error("redis at {addr} {reason}; flashgate never falls back to another Redis")]
    Unreachable { addr: String, reason: String },
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
