//! Unpaid orders past their deadline, found for the expiry sweeper and expired one by one.

use flashgate_stock::Order;

use super::SqliteStore;
use super::connections::lock;
use crate::store::StoreError;
use crate::store::row::RawOrder;
use crate::store::shards::{first_by_deadline, page_start};

pub(super) fn overdue_unpaid(
    store: &SqliteStore,
    before_ms: i64,
    limit: usize,
) -> Result<Vec<Order>, StoreError> {
    let conn = lock(&store.reader, "reader")?;
    let mut found = Vec::new();
    for sql in &store.sql {
        let left = i64::try_from(limit.saturating_sub(found.len())).unwrap_or(i64::MAX);
        if left == 0 {
            break;
        }
        let mut stmt = conn.prepare_cached(&sql.overdue)?;
        for raw in stmt.query_map(rusqlite::params![before_ms, left], RawOrder::read)? {
            found.push(raw?.into_order()?);
        }
    }
    Ok(found)
}

pub(super) fn overdue_unpaid_page(
    store: &SqliteStore,
    before_ms: i64,
    after: Option<(i64, u64)>,
    limit: usize,
) -> Result<Vec<Order>, StoreError> {
    let (after_deadline, after_id) = page_start(after);
    let conn = lock(&store.reader, "reader")?;
    let mut found = Vec::new();
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    // Each table's first `limit` in (deadline, id) order, merged: the first `limit` overall.
    for sql in &store.sql {
        let mut stmt = conn.prepare_cached(&sql.overdue_page)?;
        let params = rusqlite::params![before_ms, after_deadline, after_id, n];
        for raw in stmt.query_map(params, RawOrder::read)? {
            found.push(raw?.into_order()?);
        }
    }
    Ok(first_by_deadline(found, limit))
}

pub(super) fn expire_unpaid(
    store: &SqliteStore,
    order: &Order,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let Ok(id) = i64::try_from(order.order_id) else {
        return Ok(false);
    };
    let conn = lock(&store.writer, "writer")?;
    let mut stmt = conn.prepare_cached(&store.sql[store.shard_of(order.order_id)].expire_unpaid)?;
    Ok(stmt.execute(rusqlite::params![id, order.version, now_ms])? > 0)
}
