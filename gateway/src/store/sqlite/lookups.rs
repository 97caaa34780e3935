//! Orders looked up: by id, campaign or user (the archive's too), and the stored versions
//! the reconciler compares with.

use flashgate_stock::Order;
use rusqlite::OptionalExtension;

use super::SqliteStore;
use super::connections::lock;
use crate::store::StoreError;
use crate::store::archive::{newest_per_order, user_page};
use crate::store::row::RawOrder;

pub(super) fn get(store: &SqliteStore, order_id: u64) -> Result<Option<Order>, StoreError> {
    // No stored id exceeds i64::MAX, so such an id is simply absent.
    let Ok(id) = i64::try_from(order_id) else {
        return Ok(None);
    };
    let conn = lock(&store.reader, "reader")?;
    let mut stmt = conn.prepare_cached(&store.sql[store.shard_of(order_id)].get)?;
    let raw = stmt.query_row([id], RawOrder::read).optional()?;
    raw.map(RawOrder::into_order).transpose()
}

pub(super) fn orders_of_campaign(
    store: &SqliteStore,
    campaign_id: &str,
) -> Result<Vec<Order>, StoreError> {
    let conn = lock(&store.reader, "reader")?;
    let mut orders = Vec::new();
    for sql in &store.sql {
        let mut stmt = conn.prepare_cached(&sql.by_campaign)?;
        for raw in stmt.query_map([campaign_id], RawOrder::read)? {
            orders.push(raw?.into_order()?);
        }
    }
    Ok(newest_per_order(orders))
}

pub(super) fn count_of_campaign(store: &SqliteStore, campaign_id: &str) -> Result<u64, StoreError> {
    let conn = lock(&store.reader, "reader")?;
    let mut total = 0;
    for sql in &store.sql {
        let n: i64 = conn
            .prepare_cached(&sql.count_campaign)?
            .query_row([campaign_id], |r| r.get(0))?;
        total += u64::try_from(n).unwrap_or(0);
    }
    Ok(total)
}

pub(super) fn orders_of_user(
    store: &SqliteStore,
    user_id: &str,
    gene: u8,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<Order>, StoreError> {
    let conn = lock(&store.reader, "reader")?;
    // The user's gene picks the one table holding all their orders.
    let sql = &store.sql[usize::from(gene) & (store.sql.len() - 1)];
    let before = before.map_or(i64::MAX, |id| i64::try_from(id).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare_cached(&sql.by_user)?;
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(rusqlite::params![user_id, before, n], RawOrder::read)?;
    let orders = rows
        .map(|raw| raw?.into_order())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(user_page(orders, limit))
}

pub(super) fn stored_versions(
    store: &SqliteStore,
    order_ids: &[u64],
) -> Result<Vec<Option<u32>>, StoreError> {
    let conn = lock(&store.reader, "reader")?;
    order_ids
        .iter()
        .map(|&order_id| {
            let Ok(id) = i64::try_from(order_id) else {
                return Ok(None);
            };
            let version: Option<i64> = conn
                .prepare_cached(&store.sql[store.shard_of(order_id)].version)?
                .query_row([id], |r| r.get(0))
                .optional()?;
            Ok(version.and_then(|v| u32::try_from(v).ok()))
        })
        .collect()
}
