//! Stage 8: reservations reach Redis in batches, one script call per batch.
//!
//! Each campaign has a batching task. A purchase hands it its reservation and awaits the answer.
//! While up to `max_in_flight` script calls are out, new reservations queue; the next call
//! carries all of them (up to `max_batch`). An idle gateway therefore sends each purchase at
//! once, and a busy one amortises the cost of a script call over many purchases — which is what
//! lets the gateway approach Redis' pipelined ceiling rather than its per-call one.
//!
//! A campaign split into stock buckets has a batching task per bucket (each bucket is its own
//! slot, so one script call never spans two), and a purchase goes to its buyer's home bucket,
//! which the order id names. A home bucket that runs dry borrows from the others
//! ([`flashgate_stock::buckets::borrow`]) and the purchases it could not serve are tried again
//! in the same task: "sold out" is only answered when no bucket had a unit to lend.
//!
//! # Layout
//!
//! - `mod.rs`: [`Reserver`] and its lanes, one per bucket: the queue, the batches and the
//!   calls in flight.
//! - `call.rs`: one script call for a batch: borrowing and a retry for the purchases a dry
//!   bucket could not serve, and the answers Redis holds when the call failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flashgate_stock::StockConnection;
use flashgate_stock::{CampaignKeys, CampaignLayout, ReserveOutcome, Scripts};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::replicas::ReplicaWait;
use super::reserve_error::ReserveError;
use crate::clock::Clock;
use crate::metrics::histogram::Histogram;

mod call;

/// How the batching behaves.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// Most reservations one script call carries: bounds the time Redis spends in one call.
    pub max_batch: usize,
    /// Script calls of one campaign out at once: keeps Redis busy while replies travel.
    pub max_in_flight: usize,
    /// Reservations waiting for a call; beyond it purchases are refused (503), never queued
    /// without bound.
    pub queue: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_batch: 64,
            max_in_flight: 4,
            queue: 16_384,
        }
    }
}

struct Pending {
    user_id: String,
    order_id: u64,
    quantity: u32,
    reply: oneshot::Sender<Result<ReserveOutcome, ReserveError>>,
}

/// The entrance to one campaign's batching tasks, one per stock bucket.
#[derive(Debug, Clone)]
pub struct Reserver {
    lanes: Arc<[Lane]>,
}

/// The entrance to one bucket's batching task.
#[derive(Debug, Clone)]
struct Lane {
    queue: mpsc::Sender<Pending>,
    /// Permits for script calls; [`Reserver::close`] takes them all.
    in_flight: Arc<Semaphore>,
    max_in_flight: u32,
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("order_id", &self.order_id)
            .finish()
    }
}

/// What the batching tasks of every campaign share, built once per gateway.
#[derive(Debug, Clone)]
pub struct Shared {
    /// How long each script call took.
    pub script_seconds: Arc<Histogram>,
    /// With `redis.replica_acks`, the wait for replicas after each batch.
    pub replicas: Option<ReplicaWait>,
    /// The gateway's clock: the `now` each script call compares deadlines and windows with.
    pub clock: Clock,
}

impl Reserver {
    /// Starts the batching tasks of one campaign, one per bucket; they end when the last
    /// `Reserver` clone is gone. With `shared.replicas`, every batch waits for them before it
    /// is answered.
    pub fn spawn(
        conn: StockConnection,
        scripts: Arc<Scripts>,
        layout: Arc<CampaignLayout>,
        settings: BatchSettings,
        shared: &Shared,
    ) -> Self {
        let lanes = (0..layout.buckets.len())
            .map(|bucket| {
                let bucket = Bucket {
                    layout: layout.clone(),
                    index: bucket,
                };
                let calls = Calls {
                    conn: conn.clone(),
                    scripts: scripts.clone(),
                    bucket,
                    shared: shared.clone(),
                };
                Lane::spawn(calls, settings)
            })
            .collect();
        Self { lanes }
    }

    /// A reserver with no batching task: for tests of what surrounds one (a campaign's
    /// window, its retirement), which never reserve.
    #[cfg(test)]
    pub(crate) fn idle() -> Self {
        Self {
            lanes: Arc::from([]),
        }
    }

    /// Stops this campaign's reservations for shutdown: new ones are refused, and once this
    /// returns no script call is running or can start, so a final journal pass sees every
    /// commit. Waits at most `patience` for calls in flight.
    pub async fn close(&self, patience: std::time::Duration) {
        for lane in self.lanes.iter() {
            lane.close(patience).await;
        }
    }

    /// Reserves `quantity` units for `user_id` under `order_id`, in the bucket the order id
    /// names (its buyer's home bucket).
    ///
    /// # Errors
    /// [`ReserveError::Overloaded`] when the queue is full, [`ReserveError::Unavailable`] when
    /// Redis did not answer.
    pub async fn reserve(
        &self,
        user_id: String,
        order_id: u64,
        quantity: u32,
    ) -> Result<ReserveOutcome, ReserveError> {
        let mask = (self.lanes.len() - 1) as u64;
        let lane = usize::try_from(order_id & mask).unwrap_or(0);
        match self.lanes.get(lane) {
            Some(lane) => lane.reserve(user_id, order_id, quantity).await,
            None => Err(ReserveError::Unavailable),
        }
    }
}

/// One bucket of a campaign: its keys, and the campaign's others to borrow from.
#[derive(Debug, Clone)]
struct Bucket {
    layout: Arc<CampaignLayout>,
    index: usize,
}

impl Bucket {
    fn keys(&self) -> &CampaignKeys {
        &self.layout.buckets[self.index]
    }
}

impl Lane {
    fn spawn(calls: Calls, settings: BatchSettings) -> Self {
        let (queue, pending) = mpsc::channel(settings.queue.max(1));
        let max_in_flight = u32::try_from(settings.max_in_flight.clamp(1, 1024)).unwrap_or(1);
        let in_flight = Arc::new(Semaphore::new(max_in_flight as usize));
        tokio::spawn(batch_loop(pending, calls, settings, in_flight.clone()));
        Self {
            queue,
            in_flight,
            max_in_flight,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    async fn close(&self, patience: std::time::Duration) {
        self.closed.store(true, Ordering::SeqCst);
        match tokio::time::timeout(patience, self.in_flight.acquire_many(self.max_in_flight)).await
        {
            // Held for good: the batching task can never start another call.
            Ok(Ok(permits)) => permits.forget(),
            Ok(Err(_)) => {}
            Err(_) => tracing::warn!("reservations still in flight at shutdown"),
        }
    }

    async fn reserve(
        &self,
        user_id: String,
        order_id: u64,
        quantity: u32,
    ) -> Result<ReserveOutcome, ReserveError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(ReserveError::Unavailable);
        }
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            user_id,
            order_id,
            quantity,
            reply,
        };
        self.queue.try_send(pending).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ReserveError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => ReserveError::Unavailable,
        })?;
        answer.await.unwrap_or(Err(ReserveError::Unavailable))
    }
}

/// What every script call of one bucket needs; each call's task gets a clone.
#[derive(Clone)]
struct Calls {
    conn: StockConnection,
    scripts: Arc<Scripts>,
    bucket: Bucket,
    shared: Shared,
}

async fn batch_loop(
    mut pending: mpsc::Receiver<Pending>,
    calls: Calls,
    settings: BatchSettings,
    in_flight: Arc<Semaphore>,
) {
    while let Some(first) = pending.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let mut batch = Vec::with_capacity(settings.max_batch.min(64));
        batch.push(first);
        while batch.len() < settings.max_batch {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut calls = calls.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let now = calls.shared.clock.now_ms();
            let mut answers =
                call::call(&mut calls.conn, &calls.scripts, &calls.bucket, now, &batch).await;
            calls.shared.script_seconds.observe(started.elapsed());
            // The permit is held through the wait for replicas: releasing it before lets the
            // next script start with the few purchases queued by then, and many small batches
            // then queue their waits behind each other (measured: less than half the rate,
            // docs/BENCHMARKS.md §7). Held, a batch gathers what arrives during its wait.
            if let Some(replicas) = &calls.shared.replicas {
                replicas.confirm(calls.bucket.keys(), &mut answers).await;
            }
            for (p, answer) in batch.into_iter().zip(answers) {
                // A client that went away still has its order: the journal carries it.
                let _ = p.reply.send(answer);
            }
            drop(permit);
        });
    }
}
