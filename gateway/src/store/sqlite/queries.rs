//! The statements of one shard table, hot and archived, built once when the store opens.

use crate::store::archive::due_sql;
use crate::store::collision::same_order_sql;
use crate::store::shards::COLUMNS;

use super::user_index::MergeSql;

/// The statements of one shard table.
#[derive(Debug)]
pub(super) struct ShardSql {
    pub(super) insert: String,
    /// Who holds an id the insert neither inserted nor advanced: a replay, or a collision.
    pub(super) holder: String,
    pub(super) update: String,
    pub(super) get: String,
    pub(super) by_campaign: String,
    pub(super) count_campaign: String,
    pub(super) version: String,
    pub(super) by_user: String,
    pub(super) overdue: String,
    pub(super) overdue_page: String,
    pub(super) expire_unpaid: String,
    /// The same update on the table's archive copy.
    pub(super) update_archived: String,
    /// How far a step of the archive pass reaches: (rows, last id) of its window.
    pub(super) window: String,
    /// Copies the window's due rows into the archive (upgrading an older copy).
    pub(super) copy: String,
    /// Deletes the window's rows the archive holds at their version.
    pub(super) delete_copied: String,
    pub(super) count_hot: String,
    pub(super) count_archived: String,
    /// The merge of the table's user-index tail.
    pub(super) user_merge: MergeSql,
}

impl ShardSql {
    pub(super) fn new(table: &str) -> Self {
        Self {
            insert: format!(
                "INSERT INTO {table} ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
                 ?11, ?12, ?13) ON CONFLICT(order_id) DO UPDATE SET status = excluded.status, \
                 version = excluded.version, paid_at = excluded.paid_at, \
                 updated_at = excluded.updated_at WHERE excluded.version > {table}.version \
                 AND {same}",
                same = same_order_sql(table, "excluded"),
            ),
            holder: format!(
                "SELECT campaign_id, user_id, sku, quantity, unit_price_cents, created_at \
                 FROM {table} WHERE order_id = ?1"
            ),
            update: update_sql(&format!("main.{table}")),
            // Hot and archived; a pass cut short may have left both, and the newer one wins.
            get: format!(
                "SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM main.{table} WHERE order_id = ?1 \
                 UNION ALL SELECT {COLUMNS} FROM archive.{table} WHERE order_id = ?1) \
                 ORDER BY version DESC LIMIT 1"
            ),
            by_campaign: format!(
                "SELECT {COLUMNS} FROM main.{table} WHERE campaign_id = ?1 \
                 UNION ALL SELECT {COLUMNS} FROM archive.{table} WHERE campaign_id = ?1"
            ),
            count_campaign: format!("SELECT count(*) FROM main.{table} WHERE campaign_id = ?1"),
            version: format!("SELECT version FROM main.{table} WHERE order_id = ?1"),
            overdue: format!(
                "SELECT {COLUMNS} FROM {table} WHERE status = 'pending_payment' \
                 AND pay_deadline < ?1 LIMIT ?2"
            ),
            overdue_page: format!(
                "SELECT {COLUMNS} FROM {table} WHERE status = 'pending_payment' \
                 AND pay_deadline < ?1 AND (pay_deadline, order_id) > (?2, ?3) \
                 ORDER BY pay_deadline, order_id LIMIT ?4"
            ),
            expire_unpaid: format!(
                "UPDATE {table} SET status = 'expired', version = version + 1, updated_at = ?3 \
                 WHERE order_id = ?1 AND version = ?2 AND status = 'pending_payment'"
            ),
            // Each side's first `?3` (twice a page: an order in both places counts once).
            // The hot side's ids come from the merged user index and its unmerged tail, each
            // cut at `?3` too, so a page reads a page's worth whatever the user holds.
            by_user: format!(
                "SELECT * FROM (SELECT {COLUMNS} FROM main.{table} WHERE user_id = ?1 \
                 AND order_id IN (SELECT order_id FROM (SELECT order_id \
                 FROM main.{table}_by_user WHERE user_id = ?1 AND order_id < ?2 \
                 ORDER BY order_id DESC LIMIT ?3) UNION ALL SELECT order_id FROM \
                 (SELECT order_id FROM main.{table}_user_tail WHERE user_id = ?1 \
                 AND order_id < ?2 ORDER BY order_id DESC LIMIT ?3)) \
                 ORDER BY order_id DESC LIMIT ?3) UNION ALL \
                 SELECT * FROM (SELECT {COLUMNS} FROM archive.{table} WHERE user_id = ?1 \
                 AND order_id < ?2 ORDER BY order_id DESC LIMIT ?3)"
            ),
            // Only an order the hot table no longer holds: where it does, the hot row is the
            // newer (a pass cut short), and a stale update must not advance the old copy.
            update_archived: format!(
                "{} AND NOT EXISTS (SELECT 1 FROM main.{table} WHERE order_id = ?1)",
                update_sql(&format!("archive.{table}"))
            ),
            window: format!(
                "SELECT count(*), max(order_id) FROM (SELECT order_id FROM main.{table} \
                 WHERE order_id > ?1 ORDER BY order_id LIMIT ?2)"
            ),
            copy: format!(
                "INSERT INTO archive.{table} AS a ({COLUMNS}) SELECT {COLUMNS} FROM main.{table} \
                 WHERE order_id > ?1 AND order_id <= ?2 AND {due} \
                 ON CONFLICT(order_id) DO UPDATE SET status = excluded.status, \
                 version = excluded.version, paid_at = excluded.paid_at, \
                 updated_at = excluded.updated_at WHERE excluded.version > a.version AND {same}",
                due = due_sql("?3"),
                same = same_order_sql("a", "excluded"),
            ),
            // Only rows the archive holds as the same order, at their version or newer: another
            // order under the id (see `collision.rs`) stays where it is.
            delete_copied: format!(
                "DELETE FROM main.{table} AS h WHERE order_id > ?1 AND order_id <= ?2 \
                 AND EXISTS (SELECT 1 FROM archive.{table} a \
                 WHERE a.order_id = h.order_id AND a.version >= h.version AND {same})",
                same = same_order_sql("a", "h"),
            ),
            count_hot: format!("SELECT count(*) FROM main.{table}"),
            count_archived: format!("SELECT count(*) FROM archive.{table}"),
            user_merge: MergeSql::new(table),
        }
    }
}

/// The compare-and-set update of one order in `table` (a hot table or its archive copy).
fn update_sql(table: &str) -> String {
    format!(
        "UPDATE {table} SET campaign_id = ?2, sku = ?3, user_id = ?4, quantity = ?5, \
         unit_price_cents = ?6, amount_cents = ?7, status = ?8, version = ?9, \
         created_at = ?10, pay_deadline = ?11, paid_at = ?12, updated_at = ?13 \
         WHERE order_id = ?1 AND version < ?9 AND campaign_id = ?2 AND user_id = ?4 \
         AND sku = ?3 AND quantity = ?5 AND unit_price_cents = ?6 AND created_at = ?10"
    )
}
