//! Dropping persisted orders from the Redis journal.

use std::collections::HashMap;
use std::time::Duration;

use flashgate_stock::{BlockingClient, BlockingConnection, Order, Scripts, journal};

use super::{Journals, bucket_keys};

/// A blocking Redis connection for acks, reopened after any failure.
///
/// A failed ack loses nothing: the order stays journaled and the reconciler writes it again,
/// which the store's idempotent insert turns into a no-op.
pub struct Acker {
    client: BlockingClient,
    conn: Option<BlockingConnection>,
    /// Where each campaign's buckets are: an order is acked in its own bucket's journal.
    journals: Journals,
}

impl std::fmt::Debug for Acker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acker")
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

const TIMEOUT: Duration = Duration::from_secs(2);

impl Acker {
    pub fn new(client: BlockingClient, journals: Journals) -> Self {
        Self {
            client,
            conn: None,
            journals,
        }
    }

    /// The keys of the bucket holding `order`.
    pub fn keys_of(&self, order: &Order) -> flashgate_stock::CampaignKeys {
        bucket_keys(&self.journals, &order.campaign_id, order.order_id)
    }

    /// The connection, opened if needed.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub fn connection(&mut self) -> redis::RedisResult<&mut BlockingConnection> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.client.connect(TIMEOUT)?,
        };
        Ok(self.conn.insert(conn))
    }

    /// Forgets the connection after an error so the next call opens a fresh one.
    pub fn reset(&mut self) {
        self.conn = None;
    }

    /// Sets `order`, which the store refused for good, aside out of the journal.
    pub fn set_aside(&mut self, scripts: &Scripts, order: &Order, reason: &str) {
        let keys = self.keys_of(order);
        let result = self
            .connection()
            .map_err(flashgate_stock::StockError::from)
            .and_then(|conn| {
                journal::set_aside(conn, scripts, &keys, order.order_id, order.version, reason)
            });
        if let Err(e) = result {
            tracing::warn!(order_id = order.order_id, error = %e, "could not set the refused order aside; it stays journaled");
            self.reset();
        }
    }

    /// Acks `orders` (just written to the store) bucket by bucket.
    pub fn ack(&mut self, scripts: &Scripts, orders: &[Order]) {
        let mut by_bucket: HashMap<flashgate_stock::CampaignKeys, Vec<(u64, u32)>> = HashMap::new();
        for order in orders {
            by_bucket
                .entry(self.keys_of(order))
                .or_default()
                .push((order.order_id, order.version));
        }
        for (keys, written) in by_bucket {
            let result = self
                .connection()
                .map_err(flashgate_stock::StockError::from)
                .and_then(|conn| journal::ack(conn, scripts, &keys, &written));
            if let Err(e) = result {
                tracing::warn!(campaign = %keys.campaign_id, bucket = keys.bucket, error = %e, "journal ack failed; the reconciler will redo it");
                self.reset();
            }
        }
    }
}
