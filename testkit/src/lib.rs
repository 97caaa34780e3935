//! The servers tests run against, started for them: nothing needs to run on the machine, only
//! the Redis and PostgreSQL packages be installed (`redis-server`, `redis-tools`,
//! `postgresql`).
//!
//! Each test process starts, on first use, one private Redis ([`redis_url`]) and one private
//! PostgreSQL ([`postgres_url`]) that its tests share, and they stop when it exits, however it
//! exits (see [`guarded`]). `FLASHGATE_TEST_REDIS=redis://…` and
//! `FLASHGATE_TEST_PG=postgres://…` point the tests at servers already running instead.
//!
//! # Layout
//! - [`guarded`]: a server process under a watchdog that stops it when the test process ends.
//! - [`redis_server`]: a private `redis-server` of a test's own, to stop, restart or pause.
//! - [`redis_cluster`]: a private Redis Cluster (three masters, a replica each).
//! - [`postgres`]: a private PostgreSQL (`initdb` in a temp dir), and a database of a test's own
//!   on the shared one.
//! - here: the process-wide Redis and PostgreSQL, and a free port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod guarded;
pub mod postgres;
pub mod redis_cluster;
pub mod redis_server;

use std::sync::OnceLock;

pub use postgres::{Database, Postgres};
pub use redis_cluster::RedisCluster;
pub use redis_server::RedisServer;

/// The Redis this process's tests share: `FLASHGATE_TEST_REDIS`, else a private server started
/// on first use (no AOF: nothing of it needs to survive) and stopped when the process exits.
pub fn redis_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    shared_url(&URL, "FLASHGATE_TEST_REDIS", |dir| {
        SERVER
            .get_or_init(|| RedisServer::start_in(dir, &["--appendonly", "no"], true))
            .url()
    })
}

/// The PostgreSQL this process's tests share, as a URL that logs in as its admin:
/// `FLASHGATE_TEST_PG`, else a private server started on first use and stopped when the
/// process exits.
pub fn postgres_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    shared_url(&URL, "FLASHGATE_TEST_PG", |dir| {
        SERVER
            .get_or_init(|| Postgres::start_in(dir, true))
            .url()
            .to_owned()
    })
}

/// `url`, set once: from environment variable `var`, else from `start`, given a new temp dir
/// for the private server it starts.
fn shared_url(
    url: &'static OnceLock<String>,
    var: &str,
    start: impl FnOnce(tempfile::TempDir) -> String,
) -> String {
    url.get_or_init(|| std::env::var(var).unwrap_or_else(|_| start(tempfile::tempdir().unwrap())))
        .clone()
}

/// A free TCP port on loopback (bound, read, released): another process may take it before
/// its user binds it, so the servers here start again on another when that happens.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
