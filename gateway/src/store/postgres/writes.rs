//! Orders written: a batch in one `UNNEST` statement per shard table, and one order's
//! compare-and-set (in the archive when the hot table no longer holds it).

use std::collections::HashMap;

use flashgate_stock::Order;

use super::PostgresStore;
use super::columns::{Columns, read};
use super::queries::Query;
use crate::store::collision::{Collision, Written, same_order};
use crate::store::row::Row;
use crate::store::{OrderStore, StoreError};

pub(super) fn write_batch(store: &PostgresStore, orders: &[Order]) -> Result<Written, StoreError> {
    if orders.is_empty() {
        return Ok(Written::default());
    }
    let rows = orders.iter().map(Row::new).collect::<Result<Vec<_>, _>>()?;
    // Of each id, the states of the order it first comes with go now; another order under
    // that id in this batch (rare: a collision) goes in a second round, compared then with
    // whichever order holds the id.
    let mut first_of = HashMap::with_capacity(rows.len());
    let (mut now, mut later) = (Vec::with_capacity(rows.len()), Vec::new());
    for (index, row) in rows.iter().enumerate() {
        let first = *first_of.entry(row.order_id).or_insert(index);
        if same_order(&orders[first], row.order) {
            now.push(index);
        } else {
            later.push(index);
        }
    }
    let mut written = upsert(store, orders, &rows, now)?;
    if !later.is_empty() {
        let again: Vec<Order> = later.iter().map(|&i| orders[i].clone()).collect();
        let more = write_batch(store, &again)?;
        written.stored += more.stored;
        written
            .collisions
            .extend(more.collisions.into_iter().map(|c| Collision {
                index: later[c.index],
                ..c
            }));
        written.collisions.sort_by_key(|c| c.index);
    }
    Ok(written)
}

/// The rows at `indices` grouped for [`upsert`]: the indices of each order id, and the rows
/// as column arrays per shard table.
fn group<'a>(
    store: &PostgresStore,
    rows: &[Row<'a>],
    indices: Vec<usize>,
) -> (HashMap<i64, Vec<usize>>, Vec<Columns<&'a str>>) {
    // Every state of an order collides when its newest does.
    let mut indices_of: HashMap<i64, Vec<usize>> = HashMap::with_capacity(indices.len());
    for &index in &indices {
        indices_of
            .entry(rows[index].order_id)
            .or_default()
            .push(index);
    }
    // One statement may not touch a row twice: of one order, keep its newest state.
    let mut newest: Vec<&Row<'_>> = indices.into_iter().map(|i| &rows[i]).collect();
    newest.sort_by_key(|r| (r.order_id, std::cmp::Reverse(r.order.version)));
    newest.dedup_by_key(|r| r.order_id);
    let mut by_shard: Vec<Columns<&str>> =
        (0..store.shards()).map(|_| Columns::default()).collect();
    for row in newest {
        by_shard[store.shard_of(row.order.order_id)].push(row);
    }
    (indices_of, by_shard)
}

/// Writes the orders at `indices` of `orders` (each id's states of one order only), one
/// statement per shard table, and reports the collisions with stored orders.
fn upsert(
    store: &PostgresStore,
    orders: &[Order],
    rows: &[Row<'_>],
    indices: Vec<usize>,
) -> Result<Written, StoreError> {
    let mut written = Written::default();
    let (indices_of, by_shard) = group(store, rows, indices);
    let collide = |written: &mut Written, id: i64, campaign_id: &str, user_id: &str| {
        for &index in indices_of.get(&id).into_iter().flatten() {
            written.collisions.push(Collision {
                index,
                order_id: orders[index].order_id,
                campaign_id: campaign_id.to_owned(),
                user_id: user_id.to_owned(),
            });
        }
    };
    store.with(|pooled| {
        let statements = by_shard
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.order_id.is_empty())
            .map(|(shard, _)| Ok((shard, pooled.statement(&store.pool, shard, Query::Upsert)?)))
            .collect::<Result<Vec<_>, postgres::Error>>()?;
        let mut tx = pooled.client.transaction()?;
        // Orders skipped whose holder this statement could not see: looked up after commit.
        let mut unseen = Vec::new();
        for (shard, statement) in statements {
            let reply = tx.query_one(&statement, &by_shard[shard].params())?;
            let count: i64 = reply.try_get(0)?;
            written.stored += usize::try_from(count).unwrap_or(0);
            let ids: Vec<i64> = reply.try_get(1)?;
            let held: Vec<Option<i64>> = reply.try_get(2)?;
            let campaigns: Vec<Option<String>> = reply.try_get(3)?;
            let users: Vec<Option<String>> = reply.try_get(4)?;
            for (((id, held), campaign_id), user_id) in
                ids.into_iter().zip(held).zip(campaigns).zip(users)
            {
                match (held, campaign_id, user_id) {
                    (Some(_), Some(campaign_id), Some(user_id)) => {
                        collide(&mut written, id, &campaign_id, &user_id);
                    }
                    _ => unseen.push(id),
                }
            }
        }
        tx.commit()?;
        for id in unseen {
            let Some(&index) = indices_of.get(&id).and_then(|all| all.first()) else {
                continue;
            };
            let order = &orders[index];
            let shard = store.shard_of(order.order_id);
            let statement = pooled.statement(&store.pool, shard, Query::Get)?;
            let holder = match pooled.client.query_opt(&statement, &[&id])? {
                Some(row) => read(&row)?,
                None => {
                    return Err(StoreError::Unavailable(format!(
                        "order {} was neither written nor found; retry",
                        order.order_id
                    )));
                }
            };
            if !same_order(&holder, order) {
                collide(&mut written, id, &holder.campaign_id, &holder.user_id);
            }
        }
        written.collisions.sort_by_key(|c| c.index);
        Ok(written)
    })
}

pub(super) fn update_if_newer(store: &PostgresStore, order: &Order) -> Result<bool, StoreError> {
    let row = Row::new(order)?;
    let o = row.order;
    let shard = store.shard_of(o.order_id);
    let (quantity, version) = (i64::from(o.quantity), i64::from(o.version));
    let params: [&(dyn postgres::types::ToSql + Sync); 13] = [
        &row.order_id,
        &o.campaign_id,
        &o.sku,
        &o.user_id,
        &quantity,
        &o.unit_price_cents,
        &row.amount_cents,
        &o.status.as_str(),
        &version,
        &o.created_at_ms,
        &o.pay_deadline_ms,
        &o.paid_at_ms,
        &o.updated_at_ms,
    ];
    let changed = store.with(|pooled| {
        let statement = pooled.statement(&store.pool, shard, Query::Update)?;
        Ok(pooled.client.execute(&statement, &params)? > 0)
    })?;
    if changed {
        return Ok(true);
    }
    // A hot row, when there is one, is never older than its archived copy: only an order
    // the hot table no longer holds is updated in the archive (a late payment of a retired
    // campaign). Asked after the update, which waited for any step moving the row.
    let hot = store.with(|pooled| {
        let statement = pooled.statement(&store.pool, shard, Query::Get)?;
        Ok(pooled
            .client
            .query_opt(&statement, &[&row.order_id])?
            .is_some())
    })?;
    if hot {
        return Ok(false);
    }
    store.archive.update_if_newer(shard, &params)
}
