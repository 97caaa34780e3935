//! `[redis]`: an external Redis, a Redis Cluster or a private `redis-server`; the replicas a
//! reservation waits for; the Redis password.

use std::path::PathBuf;
use std::time::Duration;

use super::checks::{Errors, MS};
use super::raw::RawRedis;
use super::redis_target::RedisTarget;
use super::secret::{Secret, secret_text};

/// Environment variable that overrides the password of `redis.url` (and `redis.password_file`).
pub const ENV_REDIS_PASSWORD: &str = "FLASHGATE_REDIS_PASSWORD";

/// `[redis]`: either an external server or a private one the gateway supervises
/// (ARCHITECTURE.md §6).
/// Never a fallback from one to the other: a second Redis would sell the same stock twice.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisConfig {
    /// An existing Redis; unreachable at start-up is an error.
    Url {
        /// From the `redis://` or `unix://` URL, with its password held apart (or taken from
        /// `redis.password_file` / `FLASHGATE_REDIS_PASSWORD`): shown as its address only.
        target: RedisTarget,
        /// Per-command timeout (default 500ms), so a stalled Redis fails requests fast.
        response_timeout: Duration,
        /// Connect timeout (default 500ms).
        connection_timeout: Duration,
        /// Replicas that must hold a reservation batch before it is answered (off by default).
        replica_acks: Option<ReplicaAcks>,
    },
    /// A Redis Cluster, found through some of its nodes; every campaign's keys share one slot.
    Cluster {
        /// Seed nodes (`redis.cluster`), each shown as its address only; the password (from
        /// the URLs, `redis.password_file` or `FLASHGATE_REDIS_PASSWORD`) is the same for all.
        seeds: Vec<RedisTarget>,
        /// Per-command timeout (default 500ms).
        response_timeout: Duration,
        /// Connect timeout (default 500ms).
        connection_timeout: Duration,
        /// Replicas of the campaign's master that must hold a reservation batch before it is
        /// answered (off by default).
        replica_acks: Option<ReplicaAcks>,
    },
    /// A `redis-server` the gateway starts, supervises and stops (AOF on).
    Embedded {
        /// Port it listens on, on 127.0.0.1 (default 6380, to stay clear of a system Redis).
        port: u16,
        /// Its data directory (default `data/redis`).
        dir: PathBuf,
        /// The executable to run (default `redis-server`, looked up on PATH).
        binary: PathBuf,
        /// Per-command timeout (default 500ms).
        response_timeout: Duration,
        /// Connect timeout (default 500ms).
        connection_timeout: Duration,
    },
}

impl RedisConfig {
    /// The replicas every reservation batch waits for, if any (never for the embedded Redis,
    /// which has none).
    pub fn replica_acks(&self) -> Option<ReplicaAcks> {
        match self {
            Self::Url { replica_acks, .. } | Self::Cluster { replica_acks, .. } => *replica_acks,
            Self::Embedded { .. } => None,
        }
    }
}

/// `redis.replica_acks` and `redis.replica_ack_timeout`: after each reservation batch, and
/// before any answer, the gateway waits until `replicas` replicas of the master hold what the
/// batch wrote (Redis `WAIT`). A batch they do not acknowledge within `timeout` is answered
/// 503 `outcome_unknown`: Redis replicates asynchronously, and a master that dies before its
/// replicas have an order takes the order with it when a replica takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaAcks {
    /// Replicas that must acknowledge (1..=16; `replica_acks = 0`, the default, is off).
    pub replicas: u32,
    /// Longest wait for them (1ms..=5s, default 50ms): with a replica missing, every purchase
    /// waits this long before its 503.
    pub timeout: Duration,
}

/// `[redis]`: exactly one of `url`, `cluster` and `embedded = true`, and what goes with it.
pub(super) fn redis(
    e: &mut Errors,
    r: RawRedis,
    env: &dyn Fn(&str) -> Option<String>,
) -> RedisConfig {
    let half_second = Duration::from_millis(500);
    let response_timeout = e.duration(
        "redis.response_timeout",
        r.response_timeout.as_deref(),
        half_second,
        MS,
    );
    let connection_timeout = e.duration(
        "redis.connection_timeout",
        r.connection_timeout.as_deref(),
        half_second,
        MS,
    );
    let embedded = r.embedded.unwrap_or(false);
    let replica_acks = replica_acks(e, r.replica_acks, r.replica_ack_timeout.as_deref());
    if let Some(urls) = &r.cluster {
        if r.url.is_some() || embedded {
            e.push(
                "redis.cluster",
                "conflicts with redis.url and redis.embedded: set exactly one of them",
            );
        }
        return RedisConfig::Cluster {
            seeds: cluster_seeds(e, urls, r.password_file, env),
            response_timeout,
            connection_timeout,
            replica_acks,
        };
    }
    match (r.url.as_deref(), embedded) {
        (Some(_), true) => {
            e.push(
                "redis.embedded",
                "conflicts with redis.url: set either url or embedded = true, not both",
            );
        }
        (None, false) => {
            e.push(
                "redis.url",
                "missing: set redis.url, or redis.embedded = true for a private redis-server",
            );
        }
        (Some(url), false) => {
            return RedisConfig::Url {
                target: url_target(e, url, r.password_file, env),
                response_timeout,
                connection_timeout,
                replica_acks,
            };
        }
        (None, true) => {
            if r.password_file.is_some() {
                e.push(
                    "redis.password_file",
                    "only with redis.url: the embedded redis has no password",
                );
            }
            if replica_acks.is_some() {
                e.push(
                    "redis.replica_acks",
                    "only with redis.url or redis.cluster: the embedded redis has no replicas, so \
                     no purchase could ever be acknowledged",
                );
            }
        }
    }
    embedded_redis(e, r, response_timeout, connection_timeout)
}

/// The seed nodes of `redis.cluster`, all with the one password they must share (from their
/// URLs, `redis.password_file` or the environment).
fn cluster_seeds(
    e: &mut Errors,
    urls: &[String],
    password_file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<RedisTarget> {
    if urls.is_empty() {
        e.push("redis.cluster", "must name at least one node");
    }
    let mut seeds = Vec::with_capacity(urls.len());
    let mut passwords = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let field = format!("redis.cluster[{i}]");
        // Never echoed: the URL may carry a password.
        let parsed = if url.starts_with("redis://") {
            RedisTarget::parse(url)
        } else {
            Err("must start with redis://".to_owned())
        };
        match parsed {
            Ok((target, password)) => {
                seeds.push(target);
                passwords.push(password);
            }
            Err(message) => e.push(&field, message),
        }
    }
    let in_url = passwords.first().cloned().flatten();
    if passwords.iter().any(|p| *p != in_url) {
        e.push(
            "redis.cluster",
            "every node must carry the same password (or none: use redis.password_file)",
        );
    }
    let password = redis_password(e, in_url, password_file, env);
    seeds
        .into_iter()
        .map(|s| s.with_password(password.clone()))
        .collect()
}

/// `redis.url` as a target, with its password (from the URL, `redis.password_file` or the
/// environment).
fn url_target(
    e: &mut Errors,
    url: &str,
    password_file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> RedisTarget {
    let schemes = ["redis://", "rediss://", "redis+unix://", "unix://"];
    // Never echoed: the URL may carry a password.
    let parsed = if schemes.iter().any(|s| url.starts_with(s)) {
        RedisTarget::parse(url)
    } else {
        Err(format!("must start with one of {schemes:?}"))
    };
    let (target, in_url) = parsed.unwrap_or_else(|message| {
        e.push("redis.url", message);
        (RedisTarget::local(0), None)
    });
    let password = redis_password(e, in_url, password_file, env);
    target.with_password(password)
}

/// The private `redis-server` of `redis.embedded = true`: its port, data directory and binary.
fn embedded_redis(
    e: &mut Errors,
    r: RawRedis,
    response_timeout: Duration,
    connection_timeout: Duration,
) -> RedisConfig {
    let nonempty = |e: &mut Errors, field: &str, v: Option<String>, default: &str| match v {
        Some(s) if s.trim().is_empty() => {
            e.push(field, "must not be empty");
            PathBuf::new()
        }
        v => PathBuf::from(v.unwrap_or_else(|| default.into())),
    };
    RedisConfig::Embedded {
        port: e.int("redis.embedded_port", r.embedded_port, 6380, 1, 65535),
        dir: nonempty(e, "redis.embedded_dir", r.embedded_dir, "data/redis"),
        binary: nonempty(
            e,
            "redis.embedded_binary",
            r.embedded_binary,
            "redis-server",
        ),
        response_timeout,
        connection_timeout,
    }
}

/// `redis.replica_acks` and its timeout; `None` when off (0, the default).
fn replica_acks(e: &mut Errors, acks: Option<i64>, timeout: Option<&str>) -> Option<ReplicaAcks> {
    let replicas: u32 = e.int("redis.replica_acks", acks, 0, 0, 16);
    let field = "redis.replica_ack_timeout";
    let longest = Duration::from_secs(5);
    let mut timeout = e.duration(field, timeout, 50 * MS, MS);
    if timeout > longest {
        e.push(
            field,
            "must be at most 5s: with a replica missing, every purchase waits this long",
        );
        timeout = longest;
    }
    (replicas > 0).then_some(ReplicaAcks { replicas, timeout })
}

/// The Redis password, by the rule of every secret, the URL's password standing for the inline
/// value. Any non-empty one: how long it must be is the Redis server's business.
fn redis_password(
    e: &mut Errors,
    in_url: Option<String>,
    file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Secret> {
    if env(ENV_REDIS_PASSWORD).is_none() {
        match (&in_url, &file) {
            (None, None) => return None,
            (Some(_), Some(_)) => {
                e.push(
                    "redis.password_file",
                    "conflicts with the password in redis.url: set only one",
                );
                return None;
            }
            _ => {}
        }
    }
    let (value, source) = secret_text(e, "redis.password", ENV_REDIS_PASSWORD, in_url, file, env)?;
    if value.is_empty() {
        e.push(source, "must not be empty");
        return None;
    }
    Some(Secret(value))
}
