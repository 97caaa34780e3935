//! After a run: do Redis and the order store agree with each other and with what the client
//! saw? Checks invariants 1–3 (no oversell, per-user limits, every accepted order stored once).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flashgate::config::{CampaignConfig, Config, RedisConfig, RedisTarget};
use flashgate_stock::buckets::Census;
use flashgate_stock::{
    BlockingClient, BlockingConnection, CampaignKeys, CampaignLayout, Order, OrderStatus, Scripts,
    StockConnection, Timeouts, record,
};
use redis::Commands;
use serde_json::{Value, json};

use crate::args::Target;
use crate::engine::{Kind, Outcome};

/// Whether and how a run is checked afterwards.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Skip checking Redis and the store afterwards.
    #[arg(long)]
    pub no_verify: bool,
    /// How long verification waits for the store to catch up.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub drain_patience: Duration,
}

impl VerifyArgs {
    /// Read before the run: the campaign's orders from earlier runs, which verification must
    /// not count as unexplained; `None` when the run is not verified.
    ///
    /// # Errors
    /// Redis unreachable.
    pub fn baseline(&self, target: &Target) -> anyhow::Result<Option<HashSet<u64>>> {
        if self.no_verify {
            return Ok(None);
        }
        orders_before(&target.config, &target.campaign).map(Some)
    }
}

/// One check and how it went.
#[derive(Debug)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// Every check of a run.
#[derive(Debug)]
pub struct Verification {
    pub checks: Vec<Check>,
    /// Orders stored that the client never saw accepted, but that an ambiguous answer (a broken
    /// connection, `outcome_unknown`) may have committed: reported, not failed.
    pub committed_unseen: usize,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    pub fn print(&self) {
        println!(
            "verification: {}",
            if self.passed() { "PASSED" } else { "FAILED" }
        );
        for c in &self.checks {
            println!(
                "  [{}] {:<34} {}",
                if c.passed { " ok " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        if self.committed_unseen > 0 {
            println!(
                "  note: {} orders committed behind ambiguous answers",
                self.committed_unseen
            );
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "passed": self.passed(),
            "committed_unseen": self.committed_unseen,
            "checks": self.checks.iter().map(|c| json!({
                "name": c.name, "passed": c.passed, "detail": c.detail
            })).collect::<Vec<_>>(),
        })
    }
}

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
fn orders_before(config: &Config, campaign: &CampaignConfig) -> anyhow::Result<HashSet<u64>> {
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
    /// the campaign's orders from earlier runs ([`orders_before`]).
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

impl Check {
    pub fn new(name: &'static str, passed: bool, detail: String) -> Self {
        Self {
            name,
            passed,
            detail,
        }
    }
}

/// Checks invariants 1–3 on `snapshot` against what the client saw (`outcomes`, quantity 1
/// per purchase).
pub fn verify(
    snapshot: &Snapshot,
    campaign: &CampaignConfig,
    outcomes: &[Outcome],
) -> Verification {
    let Snapshot {
        stock_total,
        remaining,
        in_redis,
        stored,
        backlog,
        patience,
        ..
    } = snapshot;
    let (stock_total, remaining, backlog) = (*stock_total, *remaining, *backlog);
    let seen: HashSet<u64> = outcomes
        .iter()
        .filter(|o| o.kind == Kind::Purchase && o.status == 202)
        .filter_map(|o| o.order_id.as_deref()?.parse().ok())
        .collect();
    let ambiguous = outcomes
        .iter()
        .filter(|o| o.status == 0 || o.code.as_deref() == Some("outcome_unknown"))
        .count();
    let holding = |o: &&Order| matches!(o.status, OrderStatus::PendingPayment | OrderStatus::Paid);
    let held_units: u64 = in_redis
        .values()
        .filter(holding)
        .map(|o| u64::from(o.quantity))
        .sum();
    let mut per_user: HashMap<&str, u64> = HashMap::new();
    for o in in_redis.values().filter(holding) {
        *per_user.entry(&o.user_id).or_default() += u64::from(o.quantity);
    }
    let over_limit = per_user
        .values()
        .filter(|&&u| u > u64::from(campaign.per_user_limit))
        .count();
    let missing = seen.iter().filter(|id| !stored.contains_key(id)).count();
    let unseen = stored
        .keys()
        .filter(|id| !seen.contains(id) && !snapshot.before.contains(id))
        .count();
    let differing = in_redis
        .iter()
        .filter(|(id, o)| stored.get(id) != Some(o))
        .count()
        + stored
            .keys()
            .filter(|id| !in_redis.contains_key(id))
            .count();

    let check = Check::new;
    let checks = vec![
        check(
            "units accepted <= stock",
            seen.len() as u64 <= stock_total && held_units <= stock_total,
            format!(
                "client saw {} accepted, Redis holds {held_units} units, stock {stock_total}",
                seen.len()
            ),
        ),
        check(
            "stock conserved",
            i64::try_from(stock_total).unwrap_or(i64::MAX) - remaining
                == i64::try_from(held_units).unwrap_or(i64::MAX),
            format!(
                "{stock_total} total - {remaining} left (over {} buckets, {} transfers \
                 pending) vs {held_units} held by orders",
                snapshot.buckets, snapshot.pending_transfers
            ),
        ),
        check(
            "per-user limit held",
            over_limit == 0,
            format!("{over_limit} users above {} units", campaign.per_user_limit),
        ),
        check(
            "journal drained",
            backlog == 0,
            if backlog == 0 {
                format!(
                    "{} orders waiting when the load ended, all stored {:.2} s later",
                    snapshot.backlog_at_end,
                    snapshot.drained_after.as_secs_f64()
                )
            } else {
                format!("{backlog} orders still waiting for the store after {patience:?}")
            },
        ),
        check(
            "store equals Redis",
            differing == 0,
            format!(
                "{} in Redis, {} in the store, {differing} differ",
                in_redis.len(),
                stored.len()
            ),
        ),
        check(
            "accepted orders stored once",
            missing == 0,
            format!(
                "{missing} of {} accepted orders missing from the store",
                seen.len()
            ),
        ),
        check(
            "no unexplained orders",
            unseen <= ambiguous,
            format!("{unseen} stored orders never seen accepted; {ambiguous} ambiguous answers"),
        ),
    ];
    Verification {
        checks,
        committed_unseen: unseen.min(ambiguous),
    }
}
