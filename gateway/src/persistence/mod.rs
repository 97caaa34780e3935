//! Getting accepted orders from Redis into the order store, off the request path.
//!
//! # Layout
//! - [`workers`]: std threads that drain the hand-off queue in batches into the store.
//! - [`reconciler`]: a std thread that persists whatever the journal holds and the queue missed
//!   (overflow, a crash before the write, a store outage), at start and periodically.
//! - [`store_sweep`]: defence in depth: orders the store still shows unpaid well past their
//!   deadline are settled against Redis (run by the reconciler thread).
//! - [`acker`]: drops persisted orders from the Redis journal; shared by both.
//! - [`health`]: whether writes are getting through (for `/readyz`), and the workers' backoff.
//!
//! Both write with idempotent inserts, so an order persisted twice (by a worker and by the
//! reconciler) is still one row. Shutdown order: workers drain the queue, then the reconciler
//! makes one last pass over the journal, then everything is joined.

pub mod acker;
pub mod health;
pub mod reconciler;
pub mod store_sweep;
pub mod workers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use flashgate_stock::{CampaignKeys, Order, Scripts};

use crate::config::PersistenceConfig;
use crate::store::OrderStore;

/// Every campaign's keys whose journal is drained, bucket by bucket (a campaign split into
/// stock buckets has one journal per bucket), swapped whole when a reload adds one.
pub type Journals = Arc<arc_swap::ArcSwap<Vec<Arc<CampaignKeys>>>>;

/// The keys of the bucket holding order `order_id` of `campaign_id`: the journals list every
/// bucket of every campaign loaded here, so their count is the campaign's bucket count. A
/// campaign this gateway never loaded reads as one bucket.
pub fn bucket_keys(journals: &Journals, campaign_id: &str, order_id: u64) -> CampaignKeys {
    let all = journals.load();
    let count = all
        .iter()
        .filter(|k| k.campaign_id == campaign_id)
        .count()
        .max(1);
    let bucket = u32::try_from(order_id & (count as u64 - 1)).unwrap_or(0);
    all.iter()
        .find(|k| k.campaign_id == campaign_id && k.bucket == bucket)
        .map_or_else(|| CampaignKeys::new(campaign_id), |k| (**k).clone())
}

/// The running persistence threads.
#[derive(Debug)]
pub struct Persistence {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    reconciler: Option<(crossbeam_channel::Sender<()>, JoinHandle<()>)>,
}

/// What the persistence threads share.
#[derive(Clone)]
pub struct Context {
    pub store: Arc<dyn OrderStore>,
    /// Blocking Redis connections are opened from it by each thread.
    pub redis: flashgate_stock::BlockingClient,
    pub scripts: Arc<Scripts>,
    /// The campaigns whose journals the reconciler drains; grows when a reload adds one.
    pub campaigns: Journals,
    pub config: PersistenceConfig,
    /// Whether writes are getting through; shared with `/readyz`.
    pub health: Arc<health::StoreHealth>,
    /// The gateway's clock: how old a journaled order is, which unpaid orders are past due.
    pub clock: crate::clock::Clock,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("campaigns", &self.campaigns.load().len())
            .field("config", &self.config)
            .finish()
    }
}

impl Persistence {
    /// Starts the workers on `orders` and the reconciler.
    ///
    /// # Errors
    /// When a thread cannot be spawned.
    pub fn start(orders: Receiver<Order>, context: Context) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(context.config.workers);
        for n in 0..context.config.workers {
            let (orders, context, stop) = (orders.clone(), context.clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("fg-persist-{n}"))
                    .spawn(move || workers::run(&orders, &context, &stop))?,
            );
        }
        let (wake, woken) = crossbeam_channel::bounded(1);
        let reconciler = std::thread::Builder::new()
            .name("fg-reconcile".into())
            .spawn(move || reconciler::run(&context, &woken))?;
        Ok(Self {
            stop,
            workers: threads,
            reconciler: Some((wake, reconciler)),
        })
    }

    /// Lets the workers drain the queue, runs a last reconciliation, and joins every thread.
    /// Blocking: call it from a blocking context once no request can submit any more.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                tracing::error!("a persistence worker panicked");
            }
        }
        if let Some((wake, reconciler)) = self.reconciler.take() {
            drop(wake);
            if reconciler.join().is_err() {
                tracing::error!("the reconciler panicked");
            }
        }
    }
}
