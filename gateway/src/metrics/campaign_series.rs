//! The per-campaign part of `/metrics`: what only Redis knows, read at each scrape.

use std::fmt::Write as _;

use flashgate_stock::buckets::Census;
use flashgate_stock::{CampaignKeys, Scripts, StockConnection};

use super::text_format::family;
use crate::clock::Clock;
use crate::pipeline::catalog::{Campaign, Catalog};

/// Journal entries looked at to estimate the age of the oldest unpersisted order.
const LAG_SAMPLE: usize = 32;

/// Stock left, journal backlog and the age of the oldest order waiting for the store, per
/// campaign, and each stock bucket's stock and transfers, read from Redis. A Redis that does
/// not answer leaves these out.
pub(super) async fn campaigns(
    catalog: &Catalog,
    redis: &StockConnection,
    scripts: &Scripts,
    clock: &Clock,
    out: &mut String,
) {
    let mut conn = redis.clone();
    let mut series = Series::default();
    for campaign in catalog.campaigns() {
        // A retired campaign has nothing in Redis (see `retirement`).
        if campaign.is_retired() {
            continue;
        }
        series.read_memory(&mut conn, campaign).await;
        series.read_census(&mut conn, scripts, campaign).await;
        series.read_journal(&mut conn, clock, campaign).await;
    }
    series.write(out);
}

/// One scrape's samples of each per-campaign family, gathered campaign by campaign and
/// written family by family: the text format wants a family's samples together.
#[derive(Default)]
struct Series {
    stock: String,
    bucket_stock: String,
    transfers: String,
    pending: String,
    backlog: String,
    lag: String,
    memory: String,
}

impl Series {
    /// The Redis memory the campaign's keys take.
    async fn read_memory(&mut self, conn: &mut StockConnection, campaign: &Campaign) {
        let id = &campaign.config.id;
        if let Ok(bytes) = flashgate_stock::retire::memory_usage(conn, &campaign.layout).await {
            let _ = writeln!(
                self.memory,
                "flashgate_campaign_redis_bytes{{campaign=\"{id}\"}} {bytes}"
            );
        }
    }

    /// Stock left, and each bucket's stock and transfers.
    async fn read_census(
        &mut self,
        conn: &mut StockConnection,
        scripts: &Scripts,
        campaign: &Campaign,
    ) {
        let id = &campaign.config.id;
        let Ok(census) = Census::take(conn, scripts, &campaign.layout).await else {
            return;
        };
        let _ = writeln!(
            self.stock,
            "flashgate_stock_remaining{{campaign=\"{id}\"}} {}",
            if census.loaded() { census.left() } else { 0 }
        );
        for (b, bucket) in census.buckets.iter().enumerate() {
            let labels = format!("campaign=\"{id}\",bucket=\"{b}\"");
            let _ = writeln!(
                self.bucket_stock,
                "flashgate_bucket_stock{{{labels}}} {}",
                bucket.stock.unwrap_or(0)
            );
            let _ = writeln!(
                self.transfers,
                "flashgate_bucket_transfers_total{{{labels}}} {}",
                bucket.given
            );
            let _ = writeln!(
                self.pending,
                "flashgate_bucket_pending_transfers{{{labels}}} {}",
                bucket.pending
            );
        }
    }

    /// The journal backlog over all buckets (left out if one bucket does not answer), and the
    /// age of the oldest order waiting for the store.
    async fn read_journal(
        &mut self,
        conn: &mut StockConnection,
        clock: &Clock,
        campaign: &Campaign,
    ) {
        let id = &campaign.config.id;
        let mut waiting_all = Some(0);
        let mut age = 0;
        for keys in &campaign.layout.buckets {
            waiting_all = match flashgate_stock::journal::waiting(conn, keys).await {
                Ok(waiting) => waiting_all.map(|w| w + waiting),
                Err(_) => None,
            };
            age = age.max(oldest_waiting_ms(conn, keys, id, clock).await);
        }
        if let Some(waiting) = waiting_all {
            let _ = writeln!(
                self.backlog,
                "flashgate_journal_backlog{{campaign=\"{id}\"}} {waiting}"
            );
        }
        let _ = writeln!(
            self.lag,
            "flashgate_persistence_lag_seconds{{campaign=\"{id}\"}} {}",
            age as f64 / 1000.0
        );
    }

    /// Each family's header, then its samples.
    fn write(self, out: &mut String) {
        let families = [
            (
                "flashgate_stock_remaining",
                "gauge",
                "Units still for sale, in Redis (with units moving between buckets).",
                self.stock,
            ),
            (
                "flashgate_bucket_stock",
                "gauge",
                "Units for sale in each stock bucket of a campaign.",
                self.bucket_stock,
            ),
            (
                "flashgate_bucket_transfers_total",
                "counter",
                "Transfers of stock a bucket gave to a dry bucket.",
                self.transfers,
            ),
            (
                "flashgate_bucket_pending_transfers",
                "gauge",
                "Transfers a bucket gave whose receiving bucket is not credited yet.",
                self.pending,
            ),
            (
                "flashgate_journal_backlog",
                "gauge",
                "Orders whose latest state may not be in the store yet.",
                self.backlog,
            ),
            (
                "flashgate_persistence_lag_seconds",
                "gauge",
                "Age of the oldest order waiting for the store (estimated from a sample of the journal).",
                self.lag,
            ),
            (
                "flashgate_campaign_redis_bytes",
                "gauge",
                "Redis memory a live campaign's keys take (estimate: MEMORY USAGE samples big hashes).",
                self.memory,
            ),
        ];
        for (name, kind, help, samples) in families {
            family(out, name, kind, help);
            out.push_str(&samples);
        }
    }
}

/// The age (ms) of the oldest order in a sample of the journal, by the gateway's clock; 0 when
/// Redis does not answer or nothing waits.
async fn oldest_waiting_ms(
    conn: &mut StockConnection,
    keys: &CampaignKeys,
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
