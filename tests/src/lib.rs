//! The integration-test harness: real gateways against real Redis and real order stores.
//!
//! # Layout
//! - [`redis_server`], [`redis_cluster`]: a private `redis-server` per test that needs to stop
//!   or restart one, and a private Redis Cluster (from [`flashgate_testkit`]).
//! - [`redis_memory`]: a campaign's keys left in Redis, and the memory Redis holds.
//! - [`redis_kind`]: one test body on the shared Redis and on a private Cluster
//!   ([`on_each_redis!`]), and a connection to either for reading keys directly.
//! - [`gateway`]: a gateway in this process (own runtime, stopped on drop) or as a child
//!   process (for SIGKILL and SIGTERM).
//! - [`client`]: a small HTTP client and bearer-token minting.
//! - [`scenario`]: config text for a test, with campaign ids no other test uses.
//!
//! Tests use the Redis their process shares ([`flashgate_testkit::redis_url`]: a private one,
//! or `FLASHGATE_TEST_REDIS`) unless they stop or restart Redis, or run on a Cluster; those
//! start their own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod bench;
pub mod client;
pub mod conservation;
pub mod gateway;
pub mod redis_kind;
pub mod redis_memory;
pub mod scenario;
pub mod store_home;

use std::time::{Duration, Instant};

pub use flashgate_testkit::{free_port, redis_cluster, redis_server};

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

/// The Redis this test process shares (a private one, or `FLASHGATE_TEST_REDIS`).
pub fn shared_redis_url() -> String {
    flashgate_testkit::redis_url()
}

/// A connection to the shared Redis.
pub async fn shared_redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(shared_redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("the test Redis")
}
