//! flashgate: a flash-sale gateway.
//!
//! It takes the whole burst of a flash sale, sells every unit exactly once, and hands accepted
//! orders to durable storage without slowing the burst down. The commit point of a purchase is
//! one atomic Redis Lua script (see the `flashgate-stock` crate); everything after it is derived
//! from Redis state and can be redone.
//!
//! The design as built, section by section: `docs/ARCHITECTURE.md`.
//!
//! # Layout
//! - [`run`]: a gateway's life — start dependencies, serve, shut down in order.
//! - [`background`]: the loops beside the requests, each a named task, stopped in order —
//!   limiter pruning, sold-out refresh, expiry sweeper, SIGHUP reload; retirement and archive
//!   (from their modules), the admin listener and the node lease renewal are registered too.
//! - [`metrics`]: Prometheus metrics; [`admin`]: the admin listener (metrics, admin API);
//!   [`reload`]: campaigns reloaded from the config file, atomically.
//! - [`server`]: the accept loop and graceful connection handling.
//! - [`router`]: which handler answers which request; stage 1 rate limits.
//! - [`handlers`]: one module per API resource.
//! - [`pipeline`]: the purchase stages — limits, catalog (Bloom, window, sold-out) and its
//!   loading (the checks before a campaign is opened), reserver (and its wait for replicas,
//!   and the error both answer with), hand-off.
//! - [`auth`]: bearer-token identity and order tokens.
//! - [`http`]: errors as answers (in one place), JSON, bounded bodies.
//! - [`persistence`]: workers, reconciler and journal acks, on std threads.
//! - [`retirement`]: ended, settled campaigns leave Redis; the store answers for them.
//! - [`archive`]: settled orders of retired campaigns leave the hot tables for the archive.
//! - [`store`]: the order store (SQLite or PostgreSQL, sharded tables, and their archive).
//! - [`order_id`]: 64-bit ids unique across instances, with the user's shard gene;
//!   [`node_lease`]: the node id each instance leases in Redis so no two share one.
//! - [`config`]: the TOML config, validated field by field; one file per section, its struct
//!   beside its checks.
//! - [`embedded_redis`]: a private, supervised `redis-server` when the config asks for one;
//!   [`redis_health`]: whether a Redis may be used (reachable, logged in, never evicting).
//! - [`app`], [`clock`], [`ids`], [`signal`]: shared state, time (the one `Clock` every
//!   component reads, system or manual), id checks, shutdown signal.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod archive;
pub mod auth;
pub mod background;
pub mod clock;
pub mod config;
pub mod embedded_redis;
pub mod handlers;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod node_lease;
pub mod order_id;
pub mod persistence;
pub mod pipeline;
pub mod redis_health;
pub mod reload;
pub mod retirement;
pub mod router;
pub mod run;
pub mod server;
pub mod signal;
pub mod store;

pub use run::{RunError, run};
