//! Stage 8, second half (with `redis.replica_acks`): a reservation batch is answered only once
//! enough replicas hold it.
//!
//! Redis replicates asynchronously: a master that dies right after a script can take the
//! script's writes with it, and the replica promoted in its place sells those units again. So,
//! when configured, each batch is followed by one wait for the replicas (one per batch, never
//! per purchase), and every order the batch answers with — accepted, or replayed, whose
//! original write may never have reached a replica either — is answered only if the replicas
//! have it. Otherwise its answer becomes [`ReserveError::OutcomeUnknown`] (503 with the order
//! token): the order exists on the master and will reach the store if the master lives, and a
//! retry with the token learns which. Outcomes that wrote nothing (sold out, limit reached…)
//! are answered as they are.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flashgate_stock::{CampaignKeys, ReserveOutcome, StockConnection, wait_for_replicas};

use super::reserve_error::ReserveError;
use crate::config::ReplicaAcks;
use crate::metrics::histogram::Histogram;

/// The wait for replicas, shared by every campaign's reserver.
#[derive(Debug, Clone)]
pub struct ReplicaWait {
    /// A connection of its own: `WAIT` blocks the connection it is sent on, and the scripts
    /// and reads on the shared one must not queue behind it.
    conn: StockConnection,
    acks: ReplicaAcks,
    /// How long each wait took.
    seconds: Arc<Histogram>,
    /// Batches whose orders were answered `outcome_unknown` for want of replicas.
    shortfalls: Arc<AtomicU64>,
}

impl ReplicaWait {
    pub fn new(
        conn: StockConnection,
        acks: ReplicaAcks,
        seconds: Arc<Histogram>,
        shortfalls: Arc<AtomicU64>,
    ) -> Self {
        Self {
            conn,
            acks,
            seconds,
            shortfalls,
        }
    }

    /// Turns every order answer of one batch into [`ReserveError::OutcomeUnknown`] unless
    /// `acks.replicas` replicas hold the orders; leaves the other answers alone. Sends nothing
    /// when the batch has no order to answer with.
    pub async fn confirm(
        &self,
        keys: &CampaignKeys,
        answers: &mut [Result<ReserveOutcome, ReserveError>],
    ) {
        let orders: Vec<u64> = answers
            .iter()
            .filter_map(|a| match a {
                Ok(ReserveOutcome::Accepted(order) | ReserveOutcome::Replayed(order)) => {
                    Some(order.order_id)
                }
                _ => None,
            })
            .collect();
        if orders.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let (replicas, timeout) = (self.acks.replicas, self.acks.timeout);
        let held =
            wait_for_replicas(&mut self.conn.clone(), keys, &orders, replicas, timeout).await;
        self.seconds.observe(started.elapsed());
        match held {
            Ok(n) if n >= replicas => return,
            Ok(n) => tracing::warn!(
                campaign = %keys.campaign_id,
                acknowledged = n,
                wanted = replicas,
                orders = orders.len(),
                "replicas did not acknowledge a reservation batch: answered outcome_unknown"
            ),
            Err(e) => tracing::warn!(
                campaign = %keys.campaign_id,
                error = %e,
                orders = orders.len(),
                "could not wait for replicas: reservation batch answered outcome_unknown"
            ),
        }
        self.shortfalls.fetch_add(1, Ordering::Relaxed);
        for answer in answers {
            if matches!(
                answer,
                Ok(ReserveOutcome::Accepted(_) | ReserveOutcome::Replayed(_))
            ) {
                *answer = Err(ReserveError::OutcomeUnknown);
            }
        }
    }
}
