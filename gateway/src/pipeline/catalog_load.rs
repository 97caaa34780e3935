//! Loading the configured campaigns into the catalog, at start and at each reload: the checks
//! that decide, before anything is written, whether Redis' state of a campaign can be sold from,
//! then the writes that open or update it.

use std::sync::Arc;

use flashgate_stock::{
    CampaignLayout, CampaignSpec, Loaded, OpenPermit, Scripts, StockConnection, apply_settings,
    buckets, open_campaign,
};

use crate::app::blocking;
use crate::config::{CampaignConfig, Config};
use crate::pipeline::catalog::{Campaign, Catalog};
use crate::pipeline::reserver::{self, BatchSettings, Reserver};
use crate::store::{OrderStore, Retirement};

/// The campaign's settings in the form the scripts take.
pub fn spec_of(c: &CampaignConfig) -> CampaignSpec {
    CampaignSpec {
        sku: c.sku.clone(),
        unit_price_cents: c.unit_price_cents,
        per_user_limit: c.per_user_limit,
        pay_timeout_ms: i64::try_from(c.pay_timeout.as_millis()).unwrap_or(i64::MAX),
        start_ms: c.start_ms,
        end_ms: c.end_ms,
        stock: c.stock,
        buckets: c.buckets,
    }
}

/// Why the campaigns could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Redis(#[from] flashgate_stock::StockError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What the checks before any write decided for one campaign.
enum Verdict {
    /// Live in Redis, and Redis knows at least every order the store has.
    Live,
    /// Not in Redis, and the ledger lets it be put on sale.
    Open(OpenPermit),
    /// Redis' state cannot be trusted: refused until an operator rebuilds it.
    NeedsRepair(String),
    /// Retired (ARCHITECTURE.md §9): nothing of it is put in Redis again; the store answers for it.
    Retired(Retirement),
}

/// Why a campaign of the catalog has no stock in Redis to sell from.
enum NotLoaded {
    NeedsRepair(String),
    Retired(Retirement),
}

/// Whether Redis' state of `c` can be sold from, decided before anything is written.
/// `previous` is the campaign as the catalog in force has it, if it does.
async fn verdict(
    conn: &mut StockConnection,
    store: &Arc<dyn OrderStore>,
    c: &CampaignConfig,
    previous: Option<&Campaign>,
) -> Result<Verdict, LoadError> {
    if let Some(retired) = retirement(store, c, previous).await {
        return Ok(Verdict::Retired(retired));
    }
    // A live campaign keeps the bucket count it was opened with, whatever the config says now.
    let count = buckets::live_count(conn, &c.id).await?;
    let layout = CampaignLayout::new(&c.id, count.unwrap_or(c.buckets));
    let rebuild = format!(
        "rebuild it from the store (POST /admin/v1/campaigns/{}/rebuild)",
        c.id
    );
    if !buckets::missing(conn, &layout).await?.is_empty() {
        return absent_verdict(conn, store, c, &layout, &rebuild).await;
    }
    live_verdict(conn, store, c, previous, &layout, &rebuild).await
}

/// The campaign's retirement, if the ledger (or, while the store is out, the catalog in force)
/// has one.
///
/// Retired: no start, reload or admin edit gives it stock again. The ledger decides before
/// anything in Redis is looked at (a retirement cut short leaves keys a pass will remove).
async fn retirement(
    store: &Arc<dyn OrderStore>,
    c: &CampaignConfig,
    previous: Option<&Campaign>,
) -> Option<Retirement> {
    let id = c.id.clone();
    match blocking(store, move |s| s.campaign_retirement(&id)).await {
        Ok(retired) => retired,
        Err(e) => {
            if let Some(retired) = previous.and_then(Campaign::retirement) {
                return Some(*retired);
            }
            // A campaign never put on sale needs the store for its permit anyway; a live one
            // is checked against it below, which decides what a store outage means.
            tracing::warn!(campaign = %c.id, error = %e, "store unavailable: whether the campaign is retired is unknown");
            None
        }
    }
}

/// The verdict on a campaign whose stock is missing from Redis (in part or whole): opened if
/// the ledger permits, refused if Redis lost it.
async fn absent_verdict(
    conn: &mut StockConnection,
    store: &Arc<dyn OrderStore>,
    c: &CampaignConfig,
    layout: &CampaignLayout,
    rebuild: &str,
) -> Result<Verdict, LoadError> {
    if buckets::orders_held(conn, layout).await? > 0 {
        return Ok(Verdict::NeedsRepair(format!(
            "Redis holds orders of campaign {} but no stock: part of its state was lost. \
             Its stock is never put back from config; {rebuild}",
            c.id
        )));
    }
    let (id, stock) = (c.id.clone(), c.stock);
    let permit = blocking(store, move |s| OpenPermit::claim(s, &id, stock)).await?;
    Ok(match permit {
        Some(permit) => Verdict::Open(permit),
        None => Verdict::NeedsRepair(format!(
            "campaign {} has been on sale before (the store's ledger says so) but Redis has \
             no state for it: Redis lost its data. Its stock is never put back from config; \
             restore Redis (AOF/replica) or {rebuild}",
            c.id
        )),
    })
}

/// The verdict on a campaign live in Redis: sold from only if Redis knows at least every
/// order the store has.
async fn live_verdict(
    conn: &mut StockConnection,
    store: &Arc<dyn OrderStore>,
    c: &CampaignConfig,
    previous: Option<&Campaign>,
    layout: &CampaignLayout,
    rebuild: &str,
) -> Result<Verdict, LoadError> {
    // The store first, then Redis: an order reaches the store only after Redis has it, so on a
    // healthy Redis the count read second is never below the one read first, however busy the
    // sale.
    let id = c.id.clone();
    let in_store = match blocking(store, move |s| s.count_of_campaign(&id)).await {
        Ok(n) => n,
        // A store outage must not stop a healthy campaign at a reload: one that was verified
        // before stays as it was; a new one waits for the next reload.
        Err(e) => {
            return Ok(match previous {
                Some(live) if live.repair_reason().is_none() => {
                    tracing::warn!(campaign = %c.id, error = %e, "store unavailable: campaign kept as verified before");
                    Verdict::Live
                }
                _ => Verdict::NeedsRepair(format!(
                    "campaign {} could not be checked against the store ({e}); reload once the \
                     store is back",
                    c.id
                )),
            });
        }
    };
    let in_redis = buckets::orders_held(conn, layout).await?;
    if in_store > in_redis {
        return Ok(Verdict::NeedsRepair(format!(
            "the store holds {in_store} orders of campaign {} but Redis only {in_redis}: Redis \
             went back to an older state (a restored snapshot?) and would sell the units of the \
             orders it forgot. {rebuild}",
            c.id
        )));
    }
    // A campaign live before the ledger existed is entered now (best effort: the ledger also
    // refuses any campaign with stored orders).
    let id = c.id.clone();
    if let Err(e) = blocking(store, move |s| s.confirm_campaign_open(&id)).await {
        tracing::warn!(campaign = %c.id, error = %e, "could not record the campaign in the ledger");
    }
    Ok(Verdict::Live)
}

/// Loads every configured campaign into Redis (never resetting live stock, never creating
/// stock without the ledger's permit) and builds the catalog, each campaign with its batching
/// reserver. A campaign whose Redis state cannot be trusted is in the catalog, refusing every
/// purchase until an operator rebuilds it.
///
/// # Errors
/// When Redis or the store cannot be reached.
pub async fn load_catalog(
    config: &Config,
    redis: &StockConnection,
    scripts: &Arc<Scripts>,
    store: &Arc<dyn OrderStore>,
    reserving: &reserver::Shared,
    previous: Option<&Catalog>,
) -> Result<Catalog, LoadError> {
    let mut conn = redis.clone();
    scripts.load_all(&mut conn).await?;
    // Every check before any write: a refused load (a reload) leaves Redis as it was.
    let mut verdicts = Vec::with_capacity(config.campaigns.len());
    for c in &config.campaigns {
        let live = previous.and_then(|p| p.get(&c.id).ok()).map(|c| &**c);
        let count = buckets::live_count(&mut conn, &c.id).await?;
        verdicts.push((verdict(&mut conn, store, c, live).await?, count));
    }
    let mut campaigns = Vec::with_capacity(config.campaigns.len());
    for (c, (verdict, live_count)) in config.campaigns.iter().zip(verdicts) {
        let loaded = load(&mut conn, scripts, store, c, verdict).await?;
        let previous_campaign = previous.and_then(|p| p.get(&c.id).ok());
        let count = count_in_force(c, &loaded, live_count, previous_campaign.map(|c| &**c));
        // A campaign already on sale keeps its reserver: reservations in flight carry on.
        let (layout, reserver) = match previous_campaign {
            Some(live) if live.layout.count() == count => {
                (live.layout.clone(), live.reserver.clone())
            }
            _ => {
                let layout = Arc::new(CampaignLayout::new(&c.id, count));
                let reserver = Reserver::spawn(
                    redis.clone(),
                    scripts.clone(),
                    layout.clone(),
                    BatchSettings::default(),
                    reserving,
                );
                (layout, reserver)
            }
        };
        let campaign = Campaign::new(c.clone(), layout, reserver);
        mark_loaded(&campaign, c, loaded);
        campaigns.push(campaign);
    }
    Ok(match previous {
        Some(previous) => previous.successor(campaigns),
        None => Catalog::new(campaigns),
    })
}

/// The writes a verdict calls for: open the campaign under its permit, or apply the config's
/// settings to a live one.
async fn load(
    conn: &mut StockConnection,
    scripts: &Scripts,
    store: &Arc<dyn OrderStore>,
    c: &CampaignConfig,
    verdict: Verdict,
) -> Result<Result<Loaded, NotLoaded>, LoadError> {
    let first = flashgate_stock::CampaignKeys::new(&c.id);
    let spec = spec_of(c);
    Ok(match verdict {
        Verdict::Open(permit) => {
            let loaded = open_campaign(conn, scripts, &first, &spec, permit).await?;
            // Not sold until the ledger knows it is open: an opening left unconfirmed could
            // be granted again if Redis then lost the campaign.
            let id = c.id.clone();
            blocking(store, move |s| s.confirm_campaign_open(&id)).await?;
            Ok(loaded)
        }
        Verdict::Live => match apply_settings(conn, scripts, &first, &spec).await? {
            Some(loaded) => Ok(loaded),
            None => Err(NotLoaded::NeedsRepair(format!(
                "campaign {} vanished from Redis while it was loaded: Redis lost its data",
                c.id
            ))),
        },
        Verdict::NeedsRepair(reason) => Err(NotLoaded::NeedsRepair(reason)),
        Verdict::Retired(retired) => Err(NotLoaded::Retired(retired)),
    })
}

/// The bucket count in force is Redis' (fixed at opening), even for a campaign refused
/// until repaired; only a campaign Redis holds nothing of falls back to the one it had, or
/// the config's.
fn count_in_force(
    c: &CampaignConfig,
    loaded: &Result<Loaded, NotLoaded>,
    live_count: Option<u32>,
    previous: Option<&Campaign>,
) -> u32 {
    let count = match (loaded, live_count, previous) {
        (Ok(loaded), _, _) => loaded.buckets,
        (Err(_), Some(count), _) => count,
        (Err(_), None, Some(live)) => live.layout.count(),
        (Err(_), None, None) => c.buckets,
    };
    if count != c.buckets {
        tracing::warn!(campaign = %c.id, configured = c.buckets, in_force = count, "a campaign keeps the bucket count it was opened with");
    }
    count
}

/// Marks the new campaign with what loading it found: sold out, refused until repaired, or
/// retired.
fn mark_loaded(campaign: &Campaign, c: &CampaignConfig, loaded: Result<Loaded, NotLoaded>) {
    match loaded {
        Ok(loaded) => {
            if !loaded.created && loaded.stock_total != c.stock {
                tracing::warn!(
                    campaign = %c.id,
                    configured = c.stock,
                    in_force = loaded.stock_total,
                    "campaign already live: its stock is kept; changing it is an explicit admin action"
                );
            }
            tracing::info!(campaign = %c.id, remaining = loaded.remaining, created = loaded.created, "campaign loaded");
            if loaded.remaining <= 0 {
                campaign.mark_sold_out();
            }
        }
        Err(NotLoaded::NeedsRepair(reason)) => {
            tracing::error!(campaign = %c.id, %reason, "campaign refused until repaired");
            campaign.refuse_until_repaired(reason);
        }
        Err(NotLoaded::Retired(retired)) => {
            tracing::info!(campaign = %c.id, remaining = retired.remaining, "campaign retired: answered from the store");
            campaign.retired(retired);
            campaign.mark_sold_out();
        }
    }
}
