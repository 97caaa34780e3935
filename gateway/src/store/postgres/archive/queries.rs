//! The statements of the archive tables, by kind: the archive's statement table.

use super::SCHEMA;
use crate::store::collision::same_order_sql;
use crate::store::postgres::pool::ShardStatement;
use crate::store::shards::COLUMNS;

/// The statements of one archive table, by kind.
#[derive(Debug, Clone, Copy)]
pub(super) enum Query {
    Copy,
    Get,
    ByUser,
    ByCampaign,
    Update,
    Count,
}

impl ShardStatement for Query {
    const ALL: &'static [Self] = &[
        Query::Copy,
        Query::Get,
        Query::ByUser,
        Query::ByCampaign,
        Query::Update,
        Query::Count,
    ];

    fn slot(self) -> usize {
        self as usize
    }

    fn sql(self, table: &str) -> String {
        let archived = format!("{SCHEMA}.{table}");
        match self {
            // A copy never takes an archived state back: a retry of a step cut short, or a second
            // pass copying a row another already did, leaves the newer version.
            // Returns the ids the archive now holds as the same order at the copied version or
            // newer: only those may leave the hot table. Another order under an id (see
            // `store/collision.rs`) is neither copied nor reported, so it stays hot.
            Query::Copy => format!(
                "WITH input AS (SELECT * FROM UNNEST($1::int8[], \
                 $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[], \
                 $8::text[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[]) \
                 AS i({COLUMNS})), \
                 written AS (INSERT INTO {archived} AS a ({COLUMNS}) SELECT * FROM input i \
                 WHERE NOT EXISTS (SELECT 1 FROM {archived} o WHERE o.order_id = i.order_id \
                 AND NOT ({same_oi})) \
                 ON CONFLICT (order_id, created_at) DO UPDATE SET status = excluded.status, \
                 version = excluded.version, paid_at = excluded.paid_at, \
                 updated_at = excluded.updated_at WHERE excluded.version > a.version \
                 AND {same_ae} RETURNING order_id) \
                 SELECT i.order_id FROM input i WHERE i.order_id IN (SELECT order_id FROM written) \
                 OR EXISTS (SELECT 1 FROM {archived} o WHERE o.order_id = i.order_id \
                 AND o.version >= i.version AND {same_oi})",
                same_oi = same_order_sql("o", "i"),
                same_ae = same_order_sql("a", "excluded"),
            ),
            // Every partition is probed: an id says nothing of its month here.
            Query::Get => format!(
                "SELECT {COLUMNS} FROM {archived} WHERE order_id = $1 ORDER BY version DESC LIMIT 1"
            ),
            Query::ByUser => format!(
                "SELECT {COLUMNS} FROM {archived} WHERE user_id = $1 AND order_id < $2 \
                 ORDER BY order_id DESC LIMIT $3"
            ),
            Query::ByCampaign => format!("SELECT {COLUMNS} FROM {archived} WHERE campaign_id = $1"),
            // The hot table's compare-and-set, with the same parameters; what identifies the order
            // (and so its partition) never changes.
            Query::Update => format!(
                "UPDATE {archived} SET status = $8, version = $9, pay_deadline = $11, \
                 paid_at = $12, updated_at = $13 \
                 WHERE order_id = $1 AND version < $9 AND campaign_id = $2 AND sku = $3 \
                 AND user_id = $4 AND quantity = $5 AND unit_price_cents = $6 \
                 AND amount_cents = $7 AND created_at = $10"
            ),
            Query::Count => format!("SELECT count(*) FROM {archived}"),
        }
    }
}
