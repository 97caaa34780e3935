//! The cold archive's common ground (ARCHITECTURE.md §9, issue #13): which orders may leave the hot
//! shard tables, and what one step of the archive pass reports. Both backends move the same
//! orders by the same rule; how they copy and delete is theirs.
//!
//! An order is archived only when its campaign is retired: then no Redis state, journal entry
//! or persistence worker can ever write it again, so the hot tables never receive a row the
//! archive already holds. Only the store-side payment callback of a retired campaign still
//! changes such an order, and [`super::OrderStore::update_if_newer`] finds it wherever it is.
//!
//! Copy, then delete: a crash between the two leaves the order in both places at the same
//! version, which reads resolve (the higher version wins, the hot row on a tie) and the next
//! pass removes. A hot row is deleted only while the archive holds it at its version.

/// The statuses an order never leaves by itself (a late payment may still turn a cancelled or
/// expired order into `refund_required`; the update finds it in the archive).
pub(super) const FINAL: &str = "status IN ('paid', 'cancelled', 'expired', 'refund_required')";

/// What may be archived of a hot table's rows, as SQL over its columns; `before` is the bound
/// parameter holding the cutoff (`updated_at` older than it).
pub(super) fn due_sql(before: &str) -> String {
    format!(
        "{FINAL} AND updated_at < {before} \
         AND campaign_id IN (SELECT campaign_id FROM campaign_retired)"
    )
}

/// A step's window as bound to SQL: after `after`'s id (from the very first when `None`), at
/// most `limit` rows (at least one, so a step always makes progress).
pub(super) fn step_bounds(after: Option<u64>, limit: usize) -> (i64, i64) {
    (
        after.map_or(i64::MIN, |id| i64::try_from(id).unwrap_or(i64::MAX)),
        i64::try_from(limit.max(1)).unwrap_or(i64::MAX),
    )
}

/// One step of the archive pass over one shard table: a window of rows in id order, of which
/// the due ones were moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveStep {
    /// Rows of the window looked at.
    pub scanned: usize,
    /// Rows moved to the archive (deleted from the hot table after their copy).
    pub moved: usize,
    /// Where the next step starts (after this id); `None` once the table's end was reached.
    pub next: Option<u64>,
}

/// Rows in the hot shard tables and in the archive: what the pass keeps small, and what
/// an operator watches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowCounts {
    pub hot: u64,
    pub archived: u64,
}

/// Keeps one state of each order from rows read in both places: its highest version (a hot row
/// at least as new as its archived copy, since the hot one is what was copied).
pub(super) fn newest_per_order(
    mut orders: Vec<flashgate_stock::Order>,
) -> Vec<flashgate_stock::Order> {
    orders.sort_by_key(|o| (o.order_id, std::cmp::Reverse(o.version)));
    orders.dedup_by_key(|o| o.order_id);
    orders
}

/// A user's page from their hot and archived rows: newest id first, one state per order, at
/// most `limit`.
pub(super) fn user_page(
    orders: Vec<flashgate_stock::Order>,
    limit: usize,
) -> Vec<flashgate_stock::Order> {
    let mut orders = newest_per_order(orders);
    orders.reverse();
    orders.truncate(limit);
    orders
}
