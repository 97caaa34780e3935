//! Persistence workers: drain the hand-off queue into the store, in batches.
//!
//! A batch is whatever arrives within `flush_interval` of its first order (up to `batch_size`),
//! written in one transaction and acked in one script call. Under load each write carries many
//! orders, which is what keeps the per-order cost of persisting low; when idle an order waits at
//! most `flush_interval`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use flashgate_stock::Order;

use super::Context;
use super::acker::Acker;
use super::health::Backoff;

/// How often an idle worker looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);

/// One worker's loop, until the queue is closed, or `stop` is set and the queue is empty.
pub fn run(orders: &Receiver<Order>, context: &Context, stop: &AtomicBool) {
    let mut acker = Acker::new(context.redis.clone(), context.campaigns.clone());
    let mut batch = Vec::with_capacity(context.config.batch_size);
    let mut backoff = Backoff::default();
    loop {
        match orders.recv_timeout(STOP_POLL) {
            Ok(order) => batch.push(order),
            Err(RecvTimeoutError::Timeout) if stop.load(Ordering::SeqCst) => return,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let flush_at = Instant::now() + context.config.flush_interval;
        while batch.len() < context.config.batch_size {
            match orders.recv_deadline(flush_at) {
                Ok(order) => batch.push(order),
                Err(_) => break,
            }
        }
        let written = write(context, &mut acker, &batch);
        batch.clear();
        if written {
            backoff.reset();
        } else {
            // The store is down: its orders stay journaled for the reconciler, and the queue
            // overflows into the journal too while this worker waits.
            pause(backoff.next_wait(), stop);
        }
    }
}

/// Sleeps `wait`, or less if `stop` is set.
fn pause(wait: Duration, stop: &AtomicBool) {
    let until = Instant::now() + wait;
    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(STOP_POLL.min(until.saturating_duration_since(Instant::now())));
    }
}

/// Writes `batch` and acks what was written. Returns false when the store is unavailable (the
/// orders stay journaled for the reconciler). An order the store rejects for good is reported
/// and set aside (`fg:{c}:poisoned`), and never holds back the rest of its batch; so is an
/// order whose id another stored order holds (a collision), which is never acked as stored.
pub fn write(context: &Context, acker: &mut Acker, batch: &[Order]) -> bool {
    match context.store.write_batch(batch) {
        Ok(written) => {
            context.health.succeeded();
            let stored = batch.len() - written.collisions.len();
            context
                .health
                .persisted
                .fetch_add(stored as u64, Ordering::Relaxed);
            if written.collisions.is_empty() {
                acker.ack(&context.scripts, batch);
            } else {
                set_aside_collisions(context, acker, batch, &written.collisions);
            }
            true
        }
        Err(e) if e.is_transient() => {
            context.health.failed();
            tracing::warn!(orders = batch.len(), error = %e, "store unavailable; the reconciler will retry");
            false
        }
        Err(e) => {
            tracing::warn!(orders = batch.len(), error = %e, "batch refused; writing its orders one by one");
            for order in batch {
                let one = std::slice::from_ref(order);
                match context.store.write_batch(one) {
                    Ok(written) if written.collisions.is_empty() => {
                        context.health.persisted.fetch_add(1, Ordering::Relaxed);
                        acker.ack(&context.scripts, one);
                    }
                    Ok(written) => set_aside_collisions(context, acker, one, &written.collisions),
                    Err(e) if e.is_transient() => {
                        context.health.failed();
                        return false;
                    }
                    Err(e) => {
                        let chain = error_chain(&e);
                        let reason = if chain.is_empty() {
                            e.to_string()
                        } else {
                            format!("{e}: {chain}")
                        };
                        tracing::error!(order_id = order.order_id, campaign = %order.campaign_id, reason, "order refused by the store for good; set aside in fg:{{campaign}}:poisoned");
                        context.health.set_aside.fetch_add(1, Ordering::Relaxed);
                        acker.set_aside(&context.scripts, order, &reason);
                    }
                }
            }
            true
        }
    }
}

/// Acks the orders of `batch` that were stored and sets the colliding ones aside: another
/// order holds their id, so acking them would lose them. An alarm: ids are meant to be unique.
fn set_aside_collisions(
    context: &Context,
    acker: &mut Acker,
    batch: &[Order],
    collisions: &[crate::store::Collision],
) {
    let mut collided = vec![false; batch.len()];
    for collision in collisions {
        let Some(order) = batch.get(collision.index) else {
            continue;
        };
        collided[collision.index] = true;
        let reason = collision.reason();
        tracing::error!(
            order_id = order.order_id,
            campaign = %order.campaign_id,
            user = %order.user_id,
            reason,
            "order id collision: set aside in fg:{{campaign}}:poisoned, not stored"
        );
        context.health.collisions.fetch_add(1, Ordering::Relaxed);
        context.health.set_aside.fetch_add(1, Ordering::Relaxed);
        acker.set_aside(&context.scripts, order, &reason);
    }
    let stored: Vec<Order> = batch
        .iter()
        .zip(&collided)
        .filter(|(_, collided)| !**collided)
        .map(|(order, _)| order.clone())
        .collect();
    acker.ack(&context.scripts, &stored);
}

/// The sources of `e`, which say what the database objected to.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}
