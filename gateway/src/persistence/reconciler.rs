//! The reconciler: whatever the journal holds that the store may not, it persists.
//!
//! It is what makes "every 2xx purchase ends up as one row" hold across a full queue, a
//! SIGKILLed gateway or a store outage: the journal entry is written by the same script call
//! that accepted the order, so it exists whenever a 202 was sent.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use flashgate_stock::journal;

use super::Context;
use super::acker::Acker;
use super::store_sweep;
use super::workers::write;

/// How long past its deadline an order may still show unpaid in the store before the
/// store-side sweep steps in (the Redis sweeper normally settles it within a second, and the
/// store hears of it within the reconcile grace).
const STORE_SWEEP_MARGIN: Duration = Duration::from_secs(1);

/// Journal entries asked for per scan step.
const CHUNK: usize = 512;

/// Runs a full pass at start, then one every `reconcile_interval`, and a last full pass when
/// `stop` closes.
pub fn run(context: &Context, stop: &Receiver<()>) {
    let mut acker = Acker::new(context.redis.clone(), context.campaigns.clone());
    let mut sweep = store_sweep::StoreSweep::default();
    pass(context, &mut acker, Duration::ZERO);
    loop {
        match stop.recv_timeout(context.config.reconcile_interval) {
            Err(RecvTimeoutError::Timeout) => {
                sweep.run(
                    context,
                    &mut acker,
                    STORE_SWEEP_MARGIN + context.config.reconcile_grace,
                );
                pass(context, &mut acker, context.config.reconcile_grace);
            }
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                pass(context, &mut acker, Duration::ZERO);
                return;
            }
        }
    }
}

/// Persists every journaled order whose latest change is older than `grace` (younger ones are
/// most likely still on their way through the queue); returns how many orders it wrote.
pub fn pass(context: &Context, acker: &mut Acker, grace: Duration) -> usize {
    let until = context.clock.now_ms() - i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let mut written = 0;
    let mut attempted = false;
    for keys in context.campaigns.load().iter() {
        let mut cursor = 0;
        loop {
            let step = acker
                .connection()
                .map_err(flashgate_stock::StockError::from)
                .and_then(|conn| {
                    let (next, ids) = journal::scan(conn, keys, cursor, CHUNK)?;
                    let read = journal::orders(conn, keys, &ids)?;
                    // Entries whose record is gone can never be persisted; ack.lua drops them.
                    let gone: Vec<_> = read.gone.iter().map(|id| (*id, 0)).collect();
                    journal::ack(conn, &context.scripts, keys, &gone)?;
                    Ok((next, read))
                });
            let (next, read) = match step {
                Ok(step) => step,
                Err(e) => {
                    tracing::warn!(campaign = %keys.campaign_id, error = %e, "reconciler cannot read the journal");
                    acker.reset();
                    break;
                }
            };
            for (order_id, reason) in &read.unreadable {
                tracing::error!(campaign = %keys.campaign_id, order_id, reason, "unreadable order record left in the journal");
            }
            let due: Vec<_> = read
                .orders
                .into_iter()
                .filter(|o| o.updated_at_ms <= until)
                .collect();
            if !due.is_empty() {
                attempted = true;
                if !write(context, acker, &due) {
                    break;
                }
                written += due.len();
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    if written > 0 {
        context
            .health
            .repaired
            .fetch_add(written as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(orders = written, "reconciler persisted journaled orders");
    }
    // Nothing left to write here (another gateway may have drained the backlog): a store that
    // answers is healthy again, though no write of this gateway's said so.
    if !attempted && context.store.ping().is_ok() {
        context.health.succeeded();
    }
    written
}
