//! The state every request shares, built once at start.

use std::sync::Arc;

use arc_swap::ArcSwap;
use flashgate_stock::{CampaignKeys, CampaignSpec, Scripts, load_campaign, remaining_stock};
use redis::aio::ConnectionManager;

use crate::auth::{JwtVerifier, OrderTokens};
use crate::config::{CampaignConfig, Config};
use crate::http::ApiError;
use crate::order_id::OrderIdGenerator;
use crate::persistence::Journals;
use crate::pipeline::catalog::{Campaign, Catalog};
use crate::pipeline::handoff::Handoff;
use crate::pipeline::limits::Limiters;
use crate::pipeline::reserver::{BatchSettings, Reserver};
use crate::store::OrderStore;

/// Everything a handler needs; one per gateway, shared by reference.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    /// The campaigns on sale; replaced whole by a reload, so a request sees the old catalog
    /// or the new one, never a mix. Read with [`App::campaign`] and [`App::catalog`].
    pub catalog: ArcSwap<Catalog>,
    /// The campaigns whose journals the reconciler drains (every campaign ever loaded here).
    pub journals: Journals,
    /// One reload at a time.
    pub reloading: tokio::sync::Mutex<()>,
    pub limits: Limiters,
    pub jwt: JwtVerifier,
    pub order_tokens: OrderTokens,
    pub ids: OrderIdGenerator,
    /// One multiplexed, self-reconnecting connection for every request.
    pub redis: ConnectionManager,
    pub scripts: Arc<Scripts>,
    pub handoff: Handoff,
    pub store: Arc<dyn OrderStore>,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Whether orders are reaching the store (`/readyz` reports an outage as degraded).
    pub store_health: Arc<crate::persistence::health::StoreHealth>,
}

impl App {
    /// The campaign named `id`, from the catalog in force.
    ///
    /// # Errors
    /// 404 `unknown_campaign`.
    pub fn campaign(&self, id: &str) -> Result<Arc<Campaign>, ApiError> {
        self.catalog.load().get(id).cloned()
    }

    /// The catalog in force, to iterate (it stays whole while held, whatever a reload does).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }
}

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
    }
}

/// Why the campaigns could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Redis(#[from] flashgate_stock::StockError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Redis has no state for a campaign the store has orders of: Redis lost its data.
    /// Loading the configured stock again would sell those units a second time.
    #[error(
        "campaign {campaign} has {orders} orders in the store but no state in Redis: Redis lost \
         its data. Restore Redis (AOF/replica) before starting; never reload its stock from config"
    )]
    RedisLostCampaign { campaign: String, orders: u64 },
}

/// Loads every configured campaign into Redis (never resetting live stock) and builds the
/// catalog, each campaign with its batching reserver.
///
/// # Errors
/// When Redis or the store cannot be reached, or Redis has lost a campaign that has orders.
pub async fn load_catalog(
    config: &Config,
    redis: &ConnectionManager,
    scripts: &Arc<Scripts>,
    store: &Arc<dyn OrderStore>,
    script_seconds: &Arc<crate::metrics::histogram::Histogram>,
    previous: Option<&Catalog>,
) -> Result<Catalog, LoadError> {
    let mut conn = redis.clone();
    scripts.load_all(&mut conn).await?;
    // Every check before any write: a refused load (a reload) leaves Redis as it was.
    for c in &config.campaigns {
        let keys = CampaignKeys::new(&c.id);
        if remaining_stock(&mut conn, &keys).await?.is_none() {
            let (store, id) = (store.clone(), c.id.clone());
            let orders = tokio::task::spawn_blocking(move || store.count_of_campaign(&id))
                .await
                .map_err(|e| crate::store::StoreError::Unavailable(e.to_string()))??;
            if orders > 0 {
                return Err(LoadError::RedisLostCampaign {
                    campaign: c.id.clone(),
                    orders,
                });
            }
        }
    }
    let mut campaigns = Vec::with_capacity(config.campaigns.len());
    for c in &config.campaigns {
        let keys = Arc::new(CampaignKeys::new(&c.id));
        let loaded = load_campaign(&mut conn, scripts, &keys, &spec_of(c)).await?;
        if !loaded.created && loaded.stock_total != c.stock {
            tracing::warn!(
                campaign = %c.id,
                configured = c.stock,
                in_force = loaded.stock_total,
                "campaign already live: its stock is kept; changing it is an explicit admin action"
            );
        }
        tracing::info!(campaign = %c.id, remaining = loaded.remaining, created = loaded.created, "campaign loaded");
        // A campaign already on sale keeps its reserver: reservations in flight carry on.
        let reserver = match previous.and_then(|p| p.get(&c.id).ok()) {
            Some(live) => live.reserver.clone(),
            None => Reserver::spawn(
                redis.clone(),
                scripts.clone(),
                keys.clone(),
                BatchSettings::default(),
                script_seconds.clone(),
            ),
        };
        let campaign = Campaign::new(c.clone(), keys, reserver);
        if loaded.remaining <= 0 {
            campaign.mark_sold_out();
        }
        campaigns.push(campaign);
    }
    Ok(match previous {
        Some(previous) => previous.successor(campaigns),
        None => Catalog::new(campaigns),
    })
}
