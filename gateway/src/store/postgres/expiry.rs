//! Unpaid orders past their deadline, found for the expiry sweeper and expired one by one.

use flashgate_stock::Order;

use super::PostgresStore;
use super::columns::read;
use super::queries::Query;
use crate::store::shards::{first_by_deadline, page_start};
use crate::store::{OrderStore, StoreError};

pub(super) fn overdue_unpaid(
    store: &PostgresStore,
    before_ms: i64,
    limit: usize,
) -> Result<Vec<Order>, StoreError> {
    store.with(|pooled| {
        let mut found = Vec::new();
        for shard in 0..store.shards() {
            let left = i64::try_from(limit.saturating_sub(found.len())).unwrap_or(i64::MAX);
            if left == 0 {
                break;
            }
            let statement = pooled.statement(&store.pool, shard, Query::Overdue)?;
            for row in pooled.client.query(&statement, &[&before_ms, &left])? {
                found.push(read(&row)?);
            }
        }
        Ok(found)
    })
}

pub(super) fn overdue_unpaid_page(
    store: &PostgresStore,
    before_ms: i64,
    after: Option<(i64, u64)>,
    limit: usize,
) -> Result<Vec<Order>, StoreError> {
    let (after_deadline, after_id) = page_start(after);
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    store.with(|pooled| {
        let mut found = Vec::new();
        // Each table's first `limit` in (deadline, id) order, merged.
        for shard in 0..store.shards() {
            let statement = pooled.statement(&store.pool, shard, Query::OverduePage)?;
            let params: [&(dyn postgres::types::ToSql + Sync); 4] =
                [&before_ms, &after_deadline, &after_id, &n];
            for row in pooled.client.query(&statement, &params)? {
                found.push(read(&row)?);
            }
        }
        Ok(first_by_deadline(found, limit))
    })
}

pub(super) fn expire_unpaid(
    store: &PostgresStore,
    order: &Order,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let Ok(id) = i64::try_from(order.order_id) else {
        return Ok(false);
    };
    let shard = store.shard_of(order.order_id);
    let version = i64::from(order.version);
    store.with(|pooled| {
        let statement = pooled.statement(&store.pool, shard, Query::ExpireUnpaid)?;
        Ok(pooled
            .client
            .execute(&statement, &[&id, &version, &now_ms])?
            > 0)
    })
}
