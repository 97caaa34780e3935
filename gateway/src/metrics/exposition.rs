//! `/metrics` in the Prometheus text format (served by [`crate::admin`]).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use std::time::Duration;

use arc_swap::ArcSwap;
use flashgate_stock::{Scripts, StockConnection};

use super::Metrics;
use super::campaign_series::campaigns;
use super::text_format::family;
use crate::clock::Clock;
use crate::persistence::health::StoreHealth;
use crate::pipeline::catalog::Catalog;
use crate::pipeline::handoff::Handoff;
use crate::pipeline::limits::Limiters;

/// The parts of a gateway `/metrics` reads, lent by their owner for one scrape: metrics sees
/// only what it reports on, never the whole gateway state (which holds [`Metrics`] itself).
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// Counters and histograms kept in memory.
    pub metrics: &'a Metrics,
    /// The persistence threads' counters and whether the store is failing.
    pub store_health: &'a StoreHealth,
    /// The campaigns in force (Bloom rejections, retirement, and what to read from Redis).
    pub catalog: &'a ArcSwap<Catalog>,
    /// The persistence queue's depth and overflows.
    pub handoff: &'a Handoff,
    /// How many keys the rate limiters hold.
    pub limits: &'a Limiters,
    /// For what only Redis knows: stock left, journal backlog and age, memory.
    pub redis: &'a StockConnection,
    pub scripts: &'a Scripts,
    /// `persistence.retire_after`: when a campaign is due for retirement.
    pub retire_after: Option<Duration>,
    /// The gateway's clock: how long orders and campaigns have waited.
    pub clock: &'a Clock,
}

/// The whole exposition: counters kept in memory, and what only Redis knows, read now.
pub async fn render(src: Sources<'_>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    src.metrics.requests.render(&mut out);
    latencies(src, &mut out);
    counters(src, &mut out);
    gauges(src, &mut out);
    let catalog = src.catalog.load_full();
    campaigns(&catalog, src.redis, src.scripts, src.clock, &mut out).await;
    retirement(src, &mut out);
    src.metrics.archive.render(&mut out);
    out
}

/// The latency histograms of the reservation scripts and of the wait for replicas.
fn latencies(src: Sources<'_>, out: &mut String) {
    family(
        out,
        "flashgate_redis_script_duration_seconds",
        "histogram",
        "Round trip of one reservation script call (a batch).",
    );
    src.metrics
        .script_seconds
        .render(out, "flashgate_redis_script_duration_seconds", "");
    family(
        out,
        "flashgate_replica_wait_duration_seconds",
        "histogram",
        "Wait for replicas after one reservation batch (redis.replica_acks).",
    );
    src.metrics
        .replica_wait_seconds
        .render(out, "flashgate_replica_wait_duration_seconds", "");
}

/// The counters kept in memory, each a family of one sample.
fn counters(src: Sources<'_>, out: &mut String) {
    let counters = [
        (
            "flashgate_orders_persisted_total",
            "Order states written to the store.",
            src.store_health.persisted.load(Ordering::Relaxed),
        ),
        (
            "flashgate_reconciler_repairs_total",
            "Order states the reconciler wrote from the journal (missed by the queue).",
            src.store_health.repaired.load(Ordering::Relaxed),
        ),
        (
            "flashgate_orders_set_aside_total",
            "Orders the store refused for good, set aside in fg:{c}:poisoned.",
            src.store_health.set_aside.load(Ordering::Relaxed),
        ),
        (
            "flashgate_order_id_collisions_total",
            "Orders whose id another stored order holds, set aside in fg:{c}:poisoned (alarm).",
            src.store_health.collisions.load(Ordering::Relaxed),
        ),
        (
            "flashgate_store_sweep_settled_total",
            "Unpaid orders past their deadline that Redis no longer knows, expired in the store.",
            src.store_health.settled_in_store.load(Ordering::Relaxed),
        ),
        (
            "flashgate_orders_expired_total",
            "Unpaid orders expired by this gateway's sweeper.",
            src.metrics.expired_orders.load(Ordering::Relaxed),
        ),
        (
            "flashgate_replica_ack_shortfalls_total",
            "Reservation batches answered outcome_unknown: fewer replicas than redis.replica_acks acknowledged them.",
            src.metrics.replica_shortfalls.load(Ordering::Relaxed),
        ),
        (
            "flashgate_bloom_rejections_total",
            "Unknown campaign ids turned away by the Bloom filter.",
            src.catalog.load_full().bloom_rejections(),
        ),
        (
            "flashgate_queue_overflow_total",
            "Accepted orders the full persistence queue left to the reconciler.",
            src.handoff.overflowed(),
        ),
    ];
    for (name, help, value) in counters {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// The gauges kept in memory: queue depth, store health, rate-limiter keys.
fn gauges(src: Sources<'_>, out: &mut String) {
    family(
        out,
        "flashgate_queue_depth",
        "gauge",
        "Accepted orders waiting in the persistence queue.",
    );
    let _ = writeln!(out, "flashgate_queue_depth {}", src.handoff.depth());
    family(
        out,
        "flashgate_store_degraded",
        "gauge",
        "1 while writes to the order store fail (orders wait in the Redis journal).",
    );
    let degraded = u8::from(src.store_health.failing_since_ms().is_some());
    let _ = writeln!(out, "flashgate_store_degraded {degraded}");
    family(
        out,
        "flashgate_rate_limiter_keys",
        "gauge",
        "Keys the per-IP and per-user token buckets hold.",
    );
    let (ips, users) = src.limits.key_counts();
    let _ = writeln!(out, "flashgate_rate_limiter_keys{{scope=\"ip\"}} {ips}");
    let _ = writeln!(out, "flashgate_rate_limiter_keys{{scope=\"user\"}} {users}");
}

/// Campaigns retired here, and how long each campaign due for retirement has been waiting.
fn retirement(src: Sources<'_>, out: &mut String) {
    let catalog = src.catalog.load_full();
    let retired = catalog.campaigns().filter(|c| c.is_retired()).count();
    family(
        out,
        "flashgate_campaigns_retired",
        "gauge",
        "Campaigns of the catalog retired from Redis (answered from the store).",
    );
    let _ = writeln!(out, "flashgate_campaigns_retired {retired}");
    family(
        out,
        "flashgate_retirement_lag_seconds",
        "gauge",
        "How long a campaign past persistence.retire_after has waited for retirement (not settled, store behind, or failing).",
    );
    let Some(after) = src.retire_after else {
        return;
    };
    let now = src.clock.now_ms();
    for campaign in catalog.campaigns() {
        if campaign.is_due_for_retirement(after, now) {
            let waited = now - campaign.retirement_due_at(after);
            let _ = writeln!(
                out,
                "flashgate_retirement_lag_seconds{{campaign=\"{}\"}} {}",
                campaign.config.id,
                waited as f64 / 1000.0
            );
        }
    }
}
