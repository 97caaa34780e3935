//! The statements of the hot shard tables, by kind: the store's statement table.

use super::pool::ShardStatement;
use crate::store::archive;
use crate::store::collision::same_order_sql;
use crate::store::shards::COLUMNS;

/// The statements of one shard table, by kind.
#[derive(Debug, Clone, Copy)]
pub(super) enum Query {
    Upsert,
    Update,
    Get,
    ByCampaign,
    CountCampaign,
    Overdue,
    ByUser,
    OverduePage,
    ExpireUnpaid,
    ArchiveWindow,
    ArchiveDue,
    ArchiveDelete,
}

impl ShardStatement for Query {
    /// Every query, in slot order.
    const ALL: &'static [Self] = &[
        Query::Upsert,
        Query::Update,
        Query::Get,
        Query::ByCampaign,
        Query::CountCampaign,
        Query::Overdue,
        Query::ByUser,
        Query::OverduePage,
        Query::ExpireUnpaid,
        Query::ArchiveWindow,
        Query::ArchiveDue,
        Query::ArchiveDelete,
    ];

    fn slot(self) -> usize {
        self as usize
    }

    fn sql(self, table: &str) -> String {
        match self {
            // One statement: the upsert, then, from the rows it neither inserted nor advanced,
            // those whose stored row is another order (or, committed by a concurrent writer after
            // this statement's snapshot, not visible: `holder` NULL, looked up again after commit).
            // Replays of a stored state, the usual case, cost one anti-join and return nothing.
            Query::Upsert => format!(
                "WITH input AS (SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], \
                 $4::text[], $5::int8[], $6::int8[], $7::int8[], $8::text[], $9::int8[], \
                 $10::int8[], $11::int8[], $12::int8[], $13::int8[]) AS i({COLUMNS})), \
                 written AS (INSERT INTO {table} ({COLUMNS}) SELECT * FROM input \
                 ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, \
                 version = excluded.version, paid_at = excluded.paid_at, \
                 updated_at = excluded.updated_at WHERE excluded.version > {table}.version \
                 AND {same} RETURNING order_id) \
                 SELECT (SELECT count(*) FROM written), \
                 coalesce(array_agg(i.order_id), '{{}}'), \
                 coalesce(array_agg(t.order_id), '{{}}'), \
                 coalesce(array_agg(t.campaign_id), '{{}}'), \
                 coalesce(array_agg(t.user_id), '{{}}') \
                 FROM input i LEFT JOIN {table} t ON t.order_id = i.order_id \
                 WHERE NOT EXISTS (SELECT 1 FROM written w WHERE w.order_id = i.order_id) \
                 AND (t.order_id IS NULL OR NOT ({same_t}))",
                same = same_order_sql(table, "excluded"),
                same_t = same_order_sql("t", "i"),
            ),
            Query::Update => format!(
                "UPDATE {table} SET campaign_id = $2, sku = $3, user_id = $4, quantity = $5, \
                 unit_price_cents = $6, amount_cents = $7, status = $8, version = $9, \
                 created_at = $10, pay_deadline = $11, paid_at = $12, updated_at = $13 \
                 WHERE order_id = $1 AND version < $9 AND campaign_id = $2 AND user_id = $4 \
                 AND sku = $3 AND quantity = $5 AND unit_price_cents = $6 AND created_at = $10"
            ),
            Query::Get => format!("SELECT {COLUMNS} FROM {table} WHERE order_id = $1"),
            Query::ByCampaign => format!("SELECT {COLUMNS} FROM {table} WHERE campaign_id = $1"),
            Query::CountCampaign => format!("SELECT count(*) FROM {table} WHERE campaign_id = $1"),
            Query::Overdue => format!(
                "SELECT {COLUMNS} FROM {table} WHERE status = 'pending_payment' \
                 AND pay_deadline < $1 LIMIT $2"
            ),
            Query::ByUser => format!(
                "SELECT {COLUMNS} FROM {table} WHERE user_id = $1 AND order_id < $2 \
                 ORDER BY order_id DESC LIMIT $3"
            ),
            Query::OverduePage => format!(
                "SELECT {COLUMNS} FROM {table} WHERE status = 'pending_payment' \
                 AND pay_deadline < $1 AND (pay_deadline, order_id) > ($2, $3) \
                 ORDER BY pay_deadline, order_id LIMIT $4"
            ),
            Query::ExpireUnpaid => format!(
                "UPDATE {table} SET status = 'expired', version = version + 1, updated_at = $3 \
                 WHERE order_id = $1 AND version = $2 AND status = 'pending_payment'"
            ),
            // The size of the window a step looks at, and where the next one starts.
            Query::ArchiveWindow => format!(
                "SELECT count(*), max(order_id) FROM (SELECT order_id FROM {table} \
                 WHERE order_id > $1 ORDER BY order_id LIMIT $2) w"
            ),
            // Locked until deleted, so a payment arriving meanwhile waits and then finds the
            // order in the archive; rows another pass holds are left to it.
            Query::ArchiveDue => format!(
                "SELECT {COLUMNS} FROM {table} WHERE order_id > $1 AND order_id <= $2 AND {due} \
                 ORDER BY order_id FOR UPDATE OF {table} SKIP LOCKED",
                due = archive::due_sql("$3"),
            ),
            Query::ArchiveDelete => format!("DELETE FROM {table} WHERE order_id = ANY($1)"),
        }
    }
}
