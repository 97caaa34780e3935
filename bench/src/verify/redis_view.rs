//! The gateway's Redis as verification reads it: a blocking connection with the gateway's
//! password, the campaign's buckets, its orders, its journal backlog and its stock census.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context as _;
use flashgate::config::{CampaignConfig, Config, RedisConfig, RedisTarget};
use flashgate_stock::buckets::Census;
use flashgate_stock::{
    BlockingClient, BlockingConnection, CampaignKeys, CampaignLayout, Order, Scripts,
    StockConnection, Timeouts, record,
};
use redis::Commands;

/// A blocking connection to the gateway's Redis (or Cluster), with the password the gateway
/// logs in with, for reading what it holds.
///
/// # Errors
/// Redis unreachable; named by its address only (the URL may carry a password).
pub fn redis_connection(config: &Config) -> anyhow::Result<BlockingConnection> {
    let timeouts = Timeouts {
        response: Duration::from_secs(5),
        connect: Duration::from_secs(5),
    };
    let (client, shown) = match &config.redis {
        RedisConfig::Url { target, .. } => (
            BlockingClient::single(target.connection_info())?,
            target.to_string(),
        ),
        RedisConfig::Embedded { port, .. } => {
            let target = RedisTarget::local(*port);
            (
                BlockingClient::single(target.connection_info())?,
                target.to_string(),
            )
        }
        RedisConfig::Cluster { seeds, .. } => (
            BlockingClient::cluster(
                seeds.iter().map(RedisTarget::connection_info).collect(),
                None,
                timeouts,
            )?,
            seeds.first().map(ToString::to_string).unwrap_or_default(),
        ),
    };
    client
        .connect(timeouts.response)
        .with_context(|| format!("connecting to the gateway's Redis at {shown}"))
}

/// The ids of the orders `campaign` already has, read before a run so verification can tell
/// them from orders nobody saw accepted.
///
/// # Errors
/// Redis unreachable.
pub(super) fn orders_before(
    config: &Config,
    campaign: &CampaignConfig,
) -> anyhow::Result<HashSet<u64>> {
    let mut conn = redis_connection(config)?;
    Ok(orders_in_redis(&mut conn, &campaign.id)?
        .into_keys()
        .collect())
}

/// The buckets `campaign_id` was opened with (one for a campaign Redis does not hold, or one
/// from before buckets).
///
/// # Errors
/// Redis unreachable.
pub fn layout_of(
    conn: &mut BlockingConnection,
    campaign_id: &str,
) -> anyhow::Result<CampaignLayout> {
    let count: Option<u32> = conn.hget(CampaignKeys::new(campaign_id).meta, "buckets")?;
    Ok(CampaignLayout::new(campaign_id, count.unwrap_or(1)))
}

/// Every bucket of a campaign at one moment (see [`Census`]), read over the gateway's Redis.
///
/// # Errors
/// Redis unreachable, or its data malformed.
pub fn census(config: &Config, layout: &CampaignLayout) -> anyhow::Result<Census> {
    let timeouts = Timeouts {
        response: Duration::from_secs(5),
        connect: Duration::from_secs(5),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut conn = match &config.redis {
            RedisConfig::Url { target, .. } => {
                StockConnection::connect(target.connection_info(), timeouts).await?
            }
            RedisConfig::Embedded { port, .. } => {
                StockConnection::connect(RedisTarget::local(*port).connection_info(), timeouts)
                    .await?
            }
            RedisConfig::Cluster { seeds, .. } => {
                let seeds = seeds.iter().map(RedisTarget::connection_info).collect();
                StockConnection::connect_cluster(seeds, None, timeouts).await?
            }
        };
        Ok(Census::take(&mut conn, &Scripts::new(), layout).await?)
    })
}

/// Every order of `campaign_id` as Redis holds it (unreadable records left out).
///
/// # Errors
/// Redis unreachable.
pub fn orders_in_redis(
    conn: &mut BlockingConnection,
    campaign_id: &str,
) -> anyhow::Result<HashMap<u64, Order>> {
    let mut orders = HashMap::new();
    for keys in layout_of(conn, campaign_id)?.buckets {
        let records: HashMap<String, String> = conn.hgetall(&keys.orders)?;
        orders.extend(records.iter().filter_map(|(id, rec)| {
            let id: u64 = id.parse().ok()?;
            record::decode(campaign_id, id, rec).ok().map(|o| (id, o))
        }));
    }
    Ok(orders)
}

/// Orders of a campaign waiting for the store, over every bucket's journal.
///
/// # Errors
/// Redis unreachable.
pub fn journal_backlog(
    conn: &mut BlockingConnection,
    layout: &CampaignLayout,
) -> anyhow::Result<u64> {
    let mut waiting = 0;
    for keys in &layout.buckets {
        waiting += conn.scard::<_, u64>(&keys.journal)?;
    }
    Ok(waiting)
}
