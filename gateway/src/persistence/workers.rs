//! Persistence workers: drain the hand-off queue into the store, in batches.
//!
//! Batches form by themselves: a worker takes whatever is queued (up to `batch_size`) and writes
//! it in one transaction, so under load each write carries many orders and when idle each order
//! is written at once.

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use flashgate_stock::Order;

use super::Context;
use super::acker::Acker;

/// One worker's loop, until the queue is closed, or `stop` is set and the queue is empty.
pub fn run(orders: &Receiver<Order>, context: &Context, stop: &AtomicBool) {
    let mut acker = Acker::new(context.redis.clone());
    let mut batch = Vec::with_capacity(context.config.batch_size);
    loop {
        match orders.recv_timeout(context.config.flush_interval) {
            Ok(order) => batch.push(order),
            Err(RecvTimeoutError::Timeout) if stop.load(Ordering::SeqCst) => return,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while batch.len() < context.config.batch_size {
            match orders.try_recv() {
                Ok(order) => batch.push(order),
                Err(_) => break,
            }
        }
        write(context, &mut acker, &batch);
        batch.clear();
    }
}

/// Writes `batch` and acks it; on a store error the orders stay journaled for the reconciler.
pub fn write(context: &Context, acker: &mut Acker, batch: &[Order]) -> bool {
    match context.store.insert_batch(batch) {
        Ok(_) => {
            acker.ack(&context.scripts, batch);
            true
        }
        Err(e) => {
            tracing::warn!(orders = batch.len(), error = %e, "store write failed; the reconciler will retry");
            false
        }
    }
}
