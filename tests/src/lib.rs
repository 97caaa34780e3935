//! The integration-test harness: real gateways against real Redis and real order stores.
//!
//! # Layout
//! - [`redis_server`]: a private `redis-server` per test that needs to stop or restart one.
//! - [`redis_cluster`]: a private Redis Cluster (three masters, a replica each).
//! - [`redis_memory`]: a campaign's keys left in Redis, and the memory Redis holds.
//! - [`redis_kind`]: one test body on the shared Redis and on a private Cluster
//!   ([`on_each_redis!`]), and a connection to either for reading keys directly.
//! - [`gateway`]: a gateway in this process (own runtime, stopped on drop) or as a child
//!   process (for SIGKILL and SIGTERM).
//! - [`client`]: a small HTTP client and bearer-token minting.
//! - [`scenario`]: config text for a test, with campaign ids no other test uses.
//!
//! Tests use the machine's Redis (`FLASHGATE_TEST_REDIS`, default 127.0.0.1:6379) unless they
//! stop or restart Redis, or run on a Cluster; those start their own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod bench;
pub mod client;
pub mod conservation;
pub mod gateway;
pub mod redis_cluster;
pub mod redis_kind;
pub mod redis_memory;
pub mod redis_server;
pub mod scenario;
pub mod store_home;

use std::time::{Duration, Instant};

/// Waits until `check` holds, failing the test after `patience`.
pub async fn eventually<F, Fut>(patience: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + patience;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {patience:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The shared Redis of the machine.
pub fn shared_redis_url() -> String {
    std::env::var("FLASHGATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A connection to the shared Redis.
pub async fn shared_redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(shared_redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("a Redis at FLASHGATE_TEST_REDIS (default 127.0.0.1:6379)")
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
