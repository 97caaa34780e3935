//! Orders written: a batch in one transaction, each row through its shard table's cached
//! insert, then the user-index tails merged when due; and one order's compare-and-set (in the
//! archive when the hot table no longer holds it).

use flashgate_stock::Order;
use rusqlite::{OptionalExtension, TransactionBehavior};

use super::SqliteStore;
use super::connections::lock;
use crate::store::StoreError;
use crate::store::collision::{Collision, Written};
use crate::store::row::Row;

pub(super) fn write_batch(store: &SqliteStore, orders: &[Order]) -> Result<Written, StoreError> {
    if orders.is_empty() {
        return Ok(Written::default());
    }
    let rows = orders.iter().map(Row::new).collect::<Result<Vec<_>, _>>()?;
    let mut conn = lock(&store.writer, "writer")?;
    // Immediate: take the write lock up front rather than fail to upgrade mid-batch.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut written = Written::default();
    {
        // One statement per shard touched, looked up once per batch rather than per row.
        let mut stmts: Vec<Option<rusqlite::CachedStatement<'_>>> =
            store.sql.iter().map(|_| None).collect();
        for (index, row) in rows.iter().enumerate() {
            let shard = store.shard_of(row.order.order_id);
            let stmt = match &mut stmts[shard] {
                Some(stmt) => stmt,
                slot => slot.insert(tx.prepare_cached(&store.sql[shard].insert)?),
            };
            let changed = row.execute(stmt)?;
            written.stored += changed;
            if changed == 0 {
                // A replay of a stored state, or another order under this id: only the
                // rare rows the insert skipped are looked at again.
                let holder = tx
                    .prepare_cached(&store.sql[shard].holder)?
                    .query_row([row.order_id], Holder::read)
                    .optional()?;
                if let Some(holder) = holder.filter(|h| !h.holds(row.order)) {
                    written.collisions.push(Collision {
                        index,
                        order_id: row.order.order_id,
                        campaign_id: holder.campaign_id,
                        user_id: holder.user_id,
                    });
                }
            }
        }
    }
    tx.commit()?;
    merge_if_due(store, &mut conn, rows.len());
    Ok(written)
}

/// Merges the user-index tails when due, after the batch's commit: a merge that fails leaves
/// the tails to be read as they are and merged by a later one, and the batch stands.
fn merge_if_due(store: &SqliteStore, conn: &mut rusqlite::Connection, rows: usize) {
    let Ok(mut cadence) = store.merges.lock() else {
        return;
    };
    if !cadence.due(rows) {
        return;
    }
    // Failed or not, the next try waits its turn: a store that refuses (a full disk) is not
    // asked again with every batch.
    cadence.restart();
    match store.merge_user_tails(conn) {
        Ok(entries) => tracing::debug!(entries, "user index tails merged"),
        Err(e) => tracing::warn!(error = %e, "user index tails not merged; a later batch retries"),
    }
}

pub(super) fn update_if_newer(store: &SqliteStore, order: &Order) -> Result<bool, StoreError> {
    let row = Row::new(order)?;
    let conn = lock(&store.writer, "writer")?;
    let sql = &store.sql[store.shard_of(order.order_id)];
    // Hot first: an order in both places (a pass cut short) is newest there, and the next
    // pass carries the change into the archive.
    if row.execute(&mut conn.prepare_cached(&sql.update)?)? > 0 {
        return Ok(true);
    }
    Ok(row.execute(&mut conn.prepare_cached(&sql.update_archived)?)? > 0)
}

/// What identifies the stored order holding an id.
struct Holder {
    campaign_id: String,
    user_id: String,
    sku: String,
    quantity: i64,
    unit_price_cents: i64,
    created_at: i64,
}

impl Holder {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            campaign_id: r.get(0)?,
            user_id: r.get(1)?,
            sku: r.get(2)?,
            quantity: r.get(3)?,
            unit_price_cents: r.get(4)?,
            created_at: r.get(5)?,
        })
    }

    /// Whether the stored row is a state of `order` (see `collision::same_order`).
    fn holds(&self, order: &Order) -> bool {
        self.campaign_id == order.campaign_id
            && self.user_id == order.user_id
            && self.sku == order.sku
            && self.quantity == i64::from(order.quantity)
            && self.unit_price_cents == order.unit_price_cents
            && self.created_at == order.created_at_ms
    }
}
