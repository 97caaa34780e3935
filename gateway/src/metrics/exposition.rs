//! `/metrics` in the Prometheus text format (served by [`crate::admin`]).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use std::time::Duration;

use arc_swap::ArcSwap;
use flashgate_stock::buckets::Census;
use flashgate_stock::{Scripts, StockConnection};

use super::Metrics;
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

/// Journal entries looked at to estimate the age of the oldest unpersisted order.
const LAG_SAMPLE: usize = 32;

pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The whole exposition: counters kept in memory, and what only Redis knows, read now.
pub async fn render(src: Sources<'_>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    src.metrics.requests.render(&mut out);
    family(
        &mut out,
        "flashgate_redis_script_duration_seconds",
        "histogram",
        "Round trip of one reservation script call (a batch).",
    );
    src.metrics
        .script_seconds
        .render(&mut out, "flashgate_redis_script_duration_seconds", "");
    family(
        &mut out,
        "flashgate_replica_wait_duration_seconds",
        "histogram",
        "Wait for replicas after one reservation batch (redis.replica_acks).",
    );
    src.metrics.replica_wait_seconds.render(
        &mut out,
        "flashgate_replica_wait_duration_seconds",
        "",
    );

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
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    family(
        &mut out,
        "flashgate_queue_depth",
        "gauge",
        "Accepted orders waiting in the persistence queue.",
    );
    let _ = writeln!(out, "flashgate_queue_depth {}", src.handoff.depth());
    family(
        &mut out,
        "flashgate_store_degraded",
        "gauge",
        "1 while writes to the order store fail (orders wait in the Redis journal).",
    );
    let degraded = u8::from(src.store_health.failing_since_ms().is_some());
    let _ = writeln!(out, "flashgate_store_degraded {degraded}");
    family(
        &mut out,
        "flashgate_rate_limiter_keys",
        "gauge",
        "Keys the per-IP and per-user token buckets hold.",
    );
    let (ips, users) = src.limits.key_counts();
    let _ = writeln!(out, "flashgate_rate_limiter_keys{{scope=\"ip\"}} {ips}");
    let _ = writeln!(out, "flashgate_rate_limiter_keys{{scope=\"user\"}} {users}");
    campaigns(src, &mut out).await;
    out
}

/// Stock left, journal backlog and the age of the oldest order waiting for the store, per
/// campaign, and each stock bucket's stock and transfers, read from Redis. A Redis that does
/// not answer leaves these out.
async fn campaigns(src: Sources<'_>, out: &mut String) {
    let mut conn = src.redis.clone();
    let (mut stock, mut backlog, mut lag) = (String::new(), String::new(), String::new());
    let (mut bucket_stock, mut transfers, mut pending) =
        (String::new(), String::new(), String::new());
    let catalog = src.catalog.load_full();
    let mut memory = String::new();
    for campaign in catalog.campaigns() {
        let layout = &campaign.layout;
        let id = &campaign.config.id;
        // A retired campaign has nothing in Redis (see `retirement`).
        if campaign.is_retired() {
            continue;
        }
        if let Ok(bytes) = flashgate_stock::retire::memory_usage(&mut conn, layout).await {
            let _ = writeln!(
                memory,
                "flashgate_campaign_redis_bytes{{campaign=\"{id}\"}} {bytes}"
            );
        }
        if let Ok(census) = Census::take(&mut conn, src.scripts, layout).await {
            let _ = writeln!(
                stock,
                "flashgate_stock_remaining{{campaign=\"{id}\"}} {}",
                if census.loaded() { census.left() } else { 0 }
            );
            for (b, bucket) in census.buckets.iter().enumerate() {
                let labels = format!("campaign=\"{id}\",bucket=\"{b}\"");
                let _ = writeln!(
                    bucket_stock,
                    "flashgate_bucket_stock{{{labels}}} {}",
                    bucket.stock.unwrap_or(0)
                );
                let _ = writeln!(
                    transfers,
                    "flashgate_bucket_transfers_total{{{labels}}} {}",
                    bucket.given
                );
                let _ = writeln!(
                    pending,
                    "flashgate_bucket_pending_transfers{{{labels}}} {}",
                    bucket.pending
                );
            }
        }
        let mut waiting_all = Some(0);
        let mut age = 0;
        for keys in &layout.buckets {
            waiting_all = match flashgate_stock::journal::waiting(&mut conn, keys).await {
                Ok(waiting) => waiting_all.map(|w| w + waiting),
                Err(_) => None,
            };
            age = age.max(oldest_waiting_ms(&mut conn, keys, id, src.clock).await);
        }
        if let Some(waiting) = waiting_all {
            let _ = writeln!(
                backlog,
                "flashgate_journal_backlog{{campaign=\"{id}\"}} {waiting}"
            );
        }
        let _ = writeln!(
            lag,
            "flashgate_persistence_lag_seconds{{campaign=\"{id}\"}} {}",
            age as f64 / 1000.0
        );
    }
    family(
        out,
        "flashgate_stock_remaining",
        "gauge",
        "Units still for sale, in Redis (with units moving between buckets).",
    );
    out.push_str(&stock);
    family(
        out,
        "flashgate_bucket_stock",
        "gauge",
        "Units for sale in each stock bucket of a campaign.",
    );
    out.push_str(&bucket_stock);
    family(
        out,
        "flashgate_bucket_transfers_total",
        "counter",
        "Transfers of stock a bucket gave to a dry bucket.",
    );
    out.push_str(&transfers);
    family(
        out,
        "flashgate_bucket_pending_transfers",
        "gauge",
        "Transfers a bucket gave whose receiving bucket is not credited yet.",
    );
    out.push_str(&pending);
    family(
        out,
        "flashgate_journal_backlog",
        "gauge",
        "Orders whose latest state may not be in the store yet.",
    );
    out.push_str(&backlog);
    family(
        out,
        "flashgate_persistence_lag_seconds",
        "gauge",
        "Age of the oldest order waiting for the store (estimated from a sample of the journal).",
    );
    out.push_str(&lag);
    family(
        out,
        "flashgate_campaign_redis_bytes",
        "gauge",
        "Redis memory a live campaign's keys take (estimate: MEMORY USAGE samples big hashes).",
    );
    out.push_str(&memory);
    retirement(src, out);
    src.metrics.archive.render(out);
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

async fn oldest_waiting_ms(
    conn: &mut flashgate_stock::StockConnection,
    keys: &flashgate_stock::CampaignKeys,
    campaign_id: &str,
    clock: &Clock,
) -> i64 {
    let Ok(ids) = flashgate_stock::journal::sample(conn, keys, LAG_SAMPLE).await else {
        return 0;
    };
    if ids.is_empty() {
        return 0;
    }
    let Ok(records) = flashgate_stock::lookup::records(conn, keys, &ids).await else {
        return 0;
    };
    let now = clock.now_ms();
    ids.iter()
        .zip(records)
        .filter_map(|(id, record)| flashgate_stock::record::decode(campaign_id, *id, &record?).ok())
        .map(|order| now - order.updated_at_ms)
        .max()
        .unwrap_or(0)
        .max(0)
}
