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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flashgate_stock::StockConnection;
use flashgate_stock::{
    CampaignKeys, CampaignLayout, Reservation, ReserveOutcome, Scripts, StockError, buckets,
    record, reserve_batch,
};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::replicas::ReplicaWait;
use super::reserve_error::ReserveError;
use crate::clock::Clock;
use crate::metrics::histogram::Histogram;

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
                call(&mut calls.conn, &calls.scripts, &calls.bucket, now, &batch).await;
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

/// One script call for `batch` in its bucket (and, for purchases the bucket could not serve,
/// borrowing and a retry), at `now` (Unix ms, the gateway clock's): the answer of each
/// reservation, in order.
async fn call(
    conn: &mut StockConnection,
    scripts: &Scripts,
    bucket: &Bucket,
    now: i64,
    batch: &[Pending],
) -> Vec<Result<ReserveOutcome, ReserveError>> {
    let keys = bucket.keys();
    let outcomes = {
        let reservations = reservations(batch);
        reserve_batch(conn, scripts, keys, now, &reservations).await
    };
    match outcomes {
        Ok(outcomes) => {
            let mut outcomes: Vec<Result<ReserveOutcome, ReserveError>> =
                outcomes.into_iter().map(Ok).collect();
            if bucket.layout.is_bucketed() {
                borrow_for_dry(conn, scripts, bucket, now, batch, &mut outcomes).await;
            }
            outcomes
        }
        Err(e) => {
            tracing::warn!(campaign = %keys.campaign_id, bucket = keys.bucket, error = %e, "reserve call failed");
            let unsure = !matches!(&e, StockError::Redis(r) if r.is_connection_refusal());
            let ids: Vec<u64> = batch.iter().map(|p| p.order_id).collect();
            let users: Vec<&str> = batch.iter().map(|p| p.user_id.as_str()).collect();
            answers_from_records(conn, keys, now, &ids, &users, unsure).await
        }
    }
}

fn reservations(batch: &[Pending]) -> Vec<Reservation<'_>> {
    batch
        .iter()
        .map(|p| Reservation {
            user_id: &p.user_id,
            order_id: p.order_id,
            quantity: p.quantity,
        })
        .collect()
}

/// Rounds of borrow-and-retry one call makes for purchases its bucket could not serve.
const BORROW_ROUNDS: usize = 3;

/// The home bucket ran dry for some purchases of this call: borrows what they need from the
/// other buckets and tries them again, so they are answered sold out only when no bucket had a
/// unit to lend. A failure to borrow or to retry answers them as the failure says (nothing
/// was reserved for them, unless the retry's reply was lost: then Redis is asked, as for any
/// call).
async fn borrow_for_dry(
    conn: &mut StockConnection,
    scripts: &Scripts,
    bucket: &Bucket,
    now: i64,
    batch: &[Pending],
    outcomes: &mut [Result<ReserveOutcome, ReserveError>],
) {
    let home = u32::try_from(bucket.index).unwrap_or(0);
    for _ in 0..BORROW_ROUNDS {
        let dry: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                matches!(
                    o,
                    Ok(ReserveOutcome::SoldOut | ReserveOutcome::InsufficientStock { .. })
                )
            })
            .map(|(i, _)| i)
            .collect();
        if dry.is_empty() {
            return;
        }
        let need: u64 = dry.iter().map(|&i| u64::from(batch[i].quantity)).sum();
        // Nothing borrowed still asks the home once more: another call's transfer may have
        // filled it since it was found dry (this borrow finished it, or its owner did).
        let last_round = match buckets::borrow(conn, scripts, &bucket.layout, home, need, now).await
        {
            Ok(borrowed) => borrowed.units == 0,
            Err(e) => {
                tracing::warn!(campaign = %bucket.layout.campaign_id, bucket = home, error = %e, "borrowing stock failed");
                for &i in &dry {
                    outcomes[i] = Err(ReserveError::Unavailable);
                }
                return;
            }
        };
        let retry: Vec<Reservation<'_>> = dry
            .iter()
            .map(|&i| Reservation {
                user_id: &batch[i].user_id,
                order_id: batch[i].order_id,
                quantity: batch[i].quantity,
            })
            .collect();
        match reserve_batch(conn, scripts, bucket.keys(), now, &retry).await {
            Ok(again) => {
                for (&i, outcome) in dry.iter().zip(again) {
                    outcomes[i] = Ok(outcome);
                }
                if last_round {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(campaign = %bucket.layout.campaign_id, bucket = home, error = %e, "reserve call after borrowing failed");
                let ids: Vec<u64> = dry.iter().map(|&i| batch[i].order_id).collect();
                let unsure = !matches!(&e, StockError::Redis(r) if r.is_connection_refusal());
                let answers = answers_from_records(
                    conn,
                    bucket.keys(),
                    now,
                    &ids,
                    &batch_users(batch, &dry),
                    unsure,
                )
                .await;
                for (&i, answer) in dry.iter().zip(answers) {
                    outcomes[i] = answer;
                }
                return;
            }
        }
    }
}

fn batch_users<'a>(batch: &'a [Pending], which: &[usize]) -> Vec<&'a str> {
    which.iter().map(|&i| batch[i].user_id.as_str()).collect()
}

/// What Redis holds for each order id of a failed call, as the answers to give: the call may
/// have committed (a reply lost to a timeout or a dropped connection), so a committed order is
/// answered as such rather than as "nothing recorded".
async fn answers_from_records(
    conn: &mut StockConnection,
    keys: &CampaignKeys,
    call_time: i64,
    ids: &[u64],
    users: &[&str],
    unsure: bool,
) -> Vec<Result<ReserveOutcome, ReserveError>> {
    let Ok(records) = flashgate_stock::lookup::records(conn, keys, ids).await else {
        let error = if unsure {
            ReserveError::OutcomeUnknown
        } else {
            ReserveError::Unavailable
        };
        return vec![Err(error); ids.len()];
    };
    ids.iter()
        .zip(users)
        .zip(records)
        .map(|((&order_id, &user), record)| match record {
            None => Err(ReserveError::Unavailable),
            Some(record) if record::owner(&record) != user => Ok(ReserveOutcome::Conflict),
            Some(record) => match record::decode(&keys.campaign_id, order_id, &record) {
                Ok(order) if order.created_at_ms == call_time => {
                    Ok(ReserveOutcome::Accepted(order))
                }
                Ok(order) => Ok(ReserveOutcome::Replayed(order)),
                Err(_) => Err(ReserveError::OutcomeUnknown),
            },
        })
        .collect()
}
