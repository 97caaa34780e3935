//! The state every request shares, built once at start.

use std::sync::Arc;

use arc_swap::ArcSwap;
use flashgate_stock::{Scripts, StockConnection};

use crate::auth::{JwtVerifier, OrderTokens};
use crate::clock::Clock;
use crate::config::Config;
use crate::http::ApiError;
use crate::order_id::OrderIdGenerator;
use crate::persistence::Journals;
use crate::pipeline::catalog::{Campaign, Catalog};
use crate::pipeline::handoff::Handoff;
use crate::pipeline::limits::Limiters;
use crate::pipeline::reserver;
use crate::store::OrderStore;

/// Everything a handler needs; one per gateway, shared by reference.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    /// The gateway's one clock (see [`crate::clock`]): every window, deadline, stamp and
    /// sweep reads it, and so does [`App::ids`].
    pub clock: Clock,
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
    pub ids: OrderIdGenerator<Clock>,
    /// One multiplexed, self-reconnecting connection for every request.
    pub redis: StockConnection,
    /// What every campaign's reserver shares: the script-time histogram, the wait for
    /// replicas after each batch (`redis.replica_acks`, on a connection of its own) and the
    /// clock; a reload hands it to the campaigns it adds.
    pub reserving: reserver::Shared,
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
        Ok(Arc::clone(self.catalog.load().get(id)?))
    }

    /// The catalog in force, to iterate (it stays whole while held, whatever a reload does).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }
}

/// Runs a store call off the async workers.
///
/// # Errors
/// The store's; a call that panicked counts as the store unavailable.
pub(crate) async fn blocking<T: Send + 'static>(
    store: &Arc<dyn OrderStore>,
    call: impl FnOnce(&dyn OrderStore) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, crate::store::StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || call(&*store))
        .await
        .map_err(|e| crate::store::StoreError::Unavailable(e.to_string()))?
}
