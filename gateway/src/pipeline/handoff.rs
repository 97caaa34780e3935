//! Stage 9: accepted orders go to the persistence workers through a bounded queue.
//!
//! `try_send` never blocks the request. A full queue loses nothing: the order is already in the
//! Redis journal (written by the same script call that accepted it), and the reconciler persists
//! it from there. The queue is only the fast path.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use flashgate_stock::Order;

/// The request side of the queue.
#[derive(Debug)]
pub struct Handoff {
    queue: Sender<Order>,
    overflowed: AtomicU64,
}

/// A queue of `capacity` orders: the sending half for requests, the receiving half for workers.
pub fn channel(capacity: usize) -> (Handoff, Receiver<Order>) {
    let (queue, orders) = bounded(capacity.max(1));
    (
        Handoff {
            queue,
            overflowed: AtomicU64::new(0),
        },
        orders,
    )
}

impl Handoff {
    /// Queues `order` for persistence without waiting; when the queue is full or closed the
    /// reconciler picks the order up from the journal instead.
    pub fn submit(&self, order: Order) {
        if let Err(TrySendError::Full(o) | TrySendError::Disconnected(o)) =
            self.queue.try_send(order)
        {
            self.overflowed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                order_id = o.order_id,
                "persistence queue full: left to the reconciler"
            );
        }
    }

    /// Orders that went to the reconciler instead of the queue.
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Orders waiting in the queue.
    pub fn depth(&self) -> usize {
        self.queue.len()
    }
}
