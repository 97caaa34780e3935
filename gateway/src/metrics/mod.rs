//! Prometheus metrics, served as text on the admin listener (`[admin] listen`), never on the
//! public port.
//!
//! Components count their own events where they happen (the hand-off queue its overflows, the
//! catalog its Bloom rejections, the persistence threads their writes); what only Redis knows
//! (stock left, journal backlog and age) is read when scraped. Nothing here locks on the hot
//! path beyond an uncontended read lock.
//!
//! # Layout
//! - [`histogram`]: fixed-bucket latency histograms of atomics.
//! - [`requests`]: requests by route, status and code; latency by route.
//! - [`exposition`]: the `/metrics` text, from the parts of the gateway's state it is lent
//!   ([`exposition::Sources`]); [`campaign_series`]: its per-campaign part, read from Redis;
//!   [`text_format`]: the family header every part writes.

pub mod campaign_series;
pub mod exposition;
pub mod histogram;
pub mod requests;
pub mod text_format;

use std::sync::atomic::AtomicU64;

/// The counters a gateway keeps for `/metrics`, beside those its components keep.
#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: requests::RequestMetrics,
    /// Round trips of the reservation script (one per batch).
    pub script_seconds: std::sync::Arc<histogram::Histogram>,
    /// Unpaid orders expired by this gateway's sweeper.
    pub expired_orders: AtomicU64,
    /// Waits for replicas after a reservation batch (`redis.replica_acks`).
    pub replica_wait_seconds: std::sync::Arc<histogram::Histogram>,
    /// Batches answered `outcome_unknown` because too few replicas acknowledged them.
    pub replica_shortfalls: std::sync::Arc<AtomicU64>,
    /// The archive pass (see [`crate::archive`]).
    pub archive: crate::archive::metrics::ArchiveMetrics,
}
