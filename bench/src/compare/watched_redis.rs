//! The Redis both the gateway and the naive gateway reserve in, watched from outside: its
//! process's CPU time and its script time, read before and after each side.

use std::time::Duration;

use anyhow::Context as _;
use flashgate::config::{Config, RedisConfig, RedisTarget};

use crate::cpu;

/// The Redis both the gateway and the naive gateway reserve in, watched from outside.
pub(super) struct WatchedRedis {
    connection: redis::Connection,
    pid: Option<u32>,
}

impl WatchedRedis {
    /// Connects to `target` and finds its process; `None` when there is no single Redis to
    /// watch.
    ///
    /// # Errors
    /// The Redis unreachable.
    pub(super) fn open(target: Option<&RedisTarget>) -> anyhow::Result<Option<Self>> {
        let Some(t) = target else {
            return Ok(None);
        };
        let mut connection = redis::Client::open(t.connection_info())?
            .get_connection()
            .with_context(|| format!("connecting to the gateway's Redis at {t}"))?;
        let server: String = redis::cmd("INFO").arg("server").query(&mut connection)?;
        Ok(Some(Self {
            pid: cpu::redis_pid(&server),
            connection,
        }))
    }

    fn info(&mut self, section: &str) -> String {
        redis::cmd("INFO")
            .arg(section)
            .query(&mut self.connection)
            .unwrap_or_default()
    }

    /// (process CPU time, script µs) now.
    pub(super) fn spent(&mut self) -> (Option<Duration>, u64) {
        let usec = cpu::script_usec(&self.info("commandstats"));
        (self.pid.and_then(cpu::process_time), usec)
    }
}

/// The gateway's Redis when it is one Redis (a Cluster's CPU is read by `rehearse
/// --redis-stats`, master by master).
pub(super) fn single_redis(config: &Config) -> Option<RedisTarget> {
    match &config.redis {
        RedisConfig::Url { target, .. } => Some(target.clone()),
        RedisConfig::Embedded { port, .. } => Some(RedisTarget::local(*port)),
        RedisConfig::Cluster { .. } => None,
    }
}
