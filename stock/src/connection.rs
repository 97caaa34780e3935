//! The one connection every async caller shares: the handle through which the gateway reaches
//! Redis, and the only one it holds.
//!
//! Today it is a self-reconnecting multiplexed connection to one Redis (`ConnectionManager`:
//! a plain multiplexed connection never reconnects). Keeping its type here, behind
//! [`StockConnection`], is what lets a Redis Cluster client take its place without the gateway
//! noticing: every command the gateway needs is a function of this crate over it.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, ConnectionInfo, Pipeline, RedisFuture, Value};

/// How the connection behaves when Redis is slow or gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long one command may wait for its answer.
    pub response: Duration,
    /// How long connecting (or reconnecting) may take.
    pub connect: Duration,
}

/// A cloneable, multiplexed, self-reconnecting connection to Redis. Clones share one socket.
#[derive(Clone)]
pub struct StockConnection {
    inner: ConnectionManager,
}

impl std::fmt::Debug for StockConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StockConnection")
    }
}

impl StockConnection {
    /// Connects to the Redis `info` names (its password included, never printed).
    ///
    /// # Errors
    /// When Redis cannot be reached within `timeouts.connect`, or refuses the login.
    pub async fn connect(info: ConnectionInfo, timeouts: Timeouts) -> redis::RedisResult<Self> {
        let client = redis::Client::open(info)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeouts.response))
            .set_connection_timeout(Some(timeouts.connect))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Ok(Self {
            inner: ConnectionManager::new_with_config(client, config).await?,
        })
    }
}

impl ConnectionLike for StockConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.inner.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.inner.req_packed_commands(cmd, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
