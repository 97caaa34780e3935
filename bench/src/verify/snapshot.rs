//! Redis and the store for one campaign, read once the journal has drained into the store:
//! what the invariants are checked on.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flashgate::config::{CampaignConfig, Config};
use flashgate_stock::Order;

use super::redis_view::{census, journal_backlog, layout_of, orders_in_redis, redis_connection};

/// Redis and the store for one campaign, read once the journal has drained into the store.
#[derive(Debug)]
pub struct Snapshot {
    /// Σ bucket shares + Σ pending transfers.
    pub stock_total: u64,
    /// Σ bucket stock + Σ pending transfers.
    pub remaining: i64,
    /// Stock buckets, and transfers between them still pending.
    pub buckets: u32,
    pub pending_transfers: u64,
    pub in_redis: HashMap<u64, Order>,
    pub stored: HashMap<u64, Order>,
    /// Orders still waiting for the store when patience ran out.
    pub backlog: u64,
    /// Orders waiting for the store when the load ended, and how long the store took to catch
    /// up: the persistence lag.
    pub backlog_at_end: u64,
    pub drained_after: Duration,
    /// Orders the campaign had before the run: neither seen nor unexplained.
    pub before: HashSet<u64>,
    pub patience: Duration,
}

impl Snapshot {
    /// Waits up to `patience` for the journal to drain, then reads both sides. `before` are
    /// the campaign's orders from earlier runs
    /// ([`VerifyArgs::baseline`](super::VerifyArgs::baseline)).
    ///
    /// # Errors
    /// When Redis or the store cannot be read at all.
    pub fn take(
        config: &Config,
        campaign: &CampaignConfig,
        patience: Duration,
        before: HashSet<u64>,
    ) -> anyhow::Result<Self> {
        let mut conn = redis_connection(config)?;
        let layout = layout_of(&mut conn, &campaign.id)?;
        let started = Instant::now();
        let mut backlog = journal_backlog(&mut conn, &layout)?;
        let backlog_at_end = backlog;
        while backlog > 0 && started.elapsed() < patience {
            std::thread::sleep(Duration::from_millis(100));
            backlog = journal_backlog(&mut conn, &layout)?;
        }
        let census = census(config, &layout).context("campaign stock")?;
        anyhow::ensure!(census.loaded(), "campaign {} is not in Redis", campaign.id);
        let stock_total = u64::try_from(census.total()).unwrap_or(0);
        let remaining = census.left();
        let in_redis = orders_in_redis(&mut conn, &campaign.id)?;
        let store = flashgate::store::open(&config.store)?;
        let stored = store
            .orders_of_campaign(&campaign.id)?
            .into_iter()
            .map(|o| (o.order_id, o))
            .collect();
        Ok(Self {
            stock_total,
            remaining,
            buckets: layout.count(),
            pending_transfers: census.pending(),
            in_redis,
            stored,
            backlog,
            backlog_at_end,
            drained_after: started.elapsed(),
            before,
            patience,
        })
    }
}
