//! Orders looked up: by id, campaign or user (the archive's too), and the stored versions
//! the reconciler compares with.

use flashgate_stock::Order;

use super::PostgresStore;
use super::columns::read;
use super::queries::Query;
use crate::store::shards::TABLES;
use crate::store::{OrderStore, StoreError, archive};

pub(super) fn get(store: &PostgresStore, order_id: u64) -> Result<Option<Order>, StoreError> {
    let Ok(id) = i64::try_from(order_id) else {
        return Ok(None);
    };
    let shard = store.shard_of(order_id);
    let hot = store.with(|pooled| {
        let statement = pooled.statement(&store.pool, shard, Query::Get)?;
        pooled
            .client
            .query_opt(&statement, &[&id])?
            .map(|row| read(&row))
            .transpose()
    })?;
    // Hot first: a hot row is never older than its archived copy.
    match hot {
        Some(order) => Ok(Some(order)),
        None => store.archive.get(shard, id),
    }
}

pub(super) fn orders_of_campaign(
    store: &PostgresStore,
    campaign_id: &str,
) -> Result<Vec<Order>, StoreError> {
    let mut orders = store.with(|pooled| {
        let mut orders = Vec::new();
        for shard in 0..store.shards() {
            let statement = pooled.statement(&store.pool, shard, Query::ByCampaign)?;
            for row in pooled.client.query(&statement, &[&campaign_id])? {
                orders.push(read(&row)?);
            }
        }
        Ok(orders)
    })?;
    orders.extend(store.archive.orders_of_campaign(campaign_id)?);
    Ok(archive::newest_per_order(orders))
}

pub(super) fn count_of_campaign(
    store: &PostgresStore,
    campaign_id: &str,
) -> Result<u64, StoreError> {
    store.with(|pooled| {
        let mut total = 0;
        for shard in 0..store.shards() {
            let statement = pooled.statement(&store.pool, shard, Query::CountCampaign)?;
            let n: i64 = pooled
                .client
                .query_one(&statement, &[&campaign_id])?
                .try_get(0)?;
            total += u64::try_from(n).unwrap_or(0);
        }
        Ok(total)
    })
}

pub(super) fn orders_of_user(
    store: &PostgresStore,
    user_id: &str,
    gene: u8,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<Order>, StoreError> {
    // The user's gene picks the one table holding all their orders.
    let shard = usize::from(gene) & (store.shards() - 1);
    let before = before.map_or(i64::MAX, |id| i64::try_from(id).unwrap_or(i64::MAX));
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut orders = store.with(|pooled| {
        let statement = pooled.statement(&store.pool, shard, Query::ByUser)?;
        pooled
            .client
            .query(&statement, &[&user_id, &before, &n])?
            .iter()
            .map(read)
            .collect::<Result<Vec<_>, _>>()
    })?;
    // Each place's first `limit` below the cursor hold the page's: an order in both is
    // among the first `limit` of each.
    orders.extend(store.archive.orders_of_user(shard, user_id, before, n)?);
    Ok(archive::user_page(orders, limit))
}

pub(super) fn stored_versions(
    store: &PostgresStore,
    order_ids: &[u64],
) -> Result<Vec<Option<u32>>, StoreError> {
    let mut by_shard: Vec<Vec<i64>> = vec![Vec::new(); store.shards()];
    for &order_id in order_ids {
        if let Ok(id) = i64::try_from(order_id) {
            by_shard[store.shard_of(order_id)].push(id);
        }
    }
    let mut found = std::collections::HashMap::with_capacity(order_ids.len());
    store.with(|pooled| {
        for (shard, ids) in by_shard
            .iter()
            .enumerate()
            .filter(|(_, ids)| !ids.is_empty())
        {
            let rows = pooled.client.query(
                &format!(
                    "SELECT order_id, version FROM {} WHERE order_id = ANY($1)",
                    TABLES[shard]
                ),
                &[ids],
            )?;
            for row in rows {
                let (id, version): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
                found.insert(id, version);
            }
        }
        Ok(())
    })?;
    Ok(order_ids
        .iter()
        .map(|&id| {
            let version = found.get(&i64::try_from(id).ok()?)?;
            u32::try_from(*version).ok()
        })
        .collect())
}
