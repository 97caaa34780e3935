//! Reading one order back from Redis: what an idempotent retry is answered with.

use redis::aio::ConnectionLike;

use crate::StockError;
use crate::keys::CampaignKeys;
use crate::order::Order;

/// The order `order_id` as Redis holds it, if it exists and belongs to `user_id` (someone
/// else's order is `None`, the same as a missing one).
///
/// # Errors
/// When Redis cannot be reached, or holds a record it cannot read: a caller must not take
/// either for "no such order".
pub async fn owned_order<C: ConnectionLike>(
    conn: &mut C,
    keys: &CampaignKeys,
    order_id: u64,
    user_id: &str,
) -> Result<Option<Order>, StockError> {
    let record: Option<String> = redis::cmd("HGET")
        .arg(&keys.orders)
        .arg(order_id)
        .query_async(conn)
        .await?;
    let Some(record) = record else {
        return Ok(None);
    };
    if crate::record::owner(&record) != user_id {
        return Ok(None);
    }
    crate::record::decode(&keys.campaign_id, order_id, &record)
        .map(Some)
        .map_err(|e| StockError::bad_reply("orders hash", e.to_string()))
}

/// The records of `order_ids` in one campaign, in order (`None` where Redis has none): one
/// round trip, for callers that decode them (a reservation whose answer was lost, lag samples).
///
/// # Errors
/// When Redis cannot be reached.
pub async fn records<C: ConnectionLike>(
    conn: &mut C,
    keys: &CampaignKeys,
    order_ids: &[u64],
) -> Result<Vec<Option<String>>, StockError> {
    if order_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(redis::cmd("HMGET")
        .arg(&keys.orders)
        .arg(order_ids)
        .query_async(conn)
        .await?)
}

/// The record of each `(campaign, order id)` pair, in order (`None` where Redis has none): one
/// round trip over several campaigns, or on a Cluster one per campaign asked about.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn records_across(
    conn: &mut crate::StockConnection,
    wanted: &[(&CampaignKeys, u64)],
) -> Result<Vec<Option<String>>, StockError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    if conn.is_cluster() {
        // Campaigns live in different slots: one HMGET per campaign (one slot each), its
        // answers put back where they were asked.
        let mut groups: Vec<(&CampaignKeys, Vec<usize>)> = Vec::new();
        for (i, (keys, _)) in wanted.iter().enumerate() {
            match groups.iter_mut().find(|(k, _)| k.orders == keys.orders) {
                Some((_, asked)) => asked.push(i),
                None => groups.push((keys, vec![i])),
            }
        }
        let mut records = vec![None; wanted.len()];
        for (keys, asked) in groups {
            let mut read = redis::cmd("HMGET");
            read.arg(&keys.orders);
            for i in &asked {
                read.arg(wanted[*i].1);
            }
            let found: Vec<Option<String>> = read.query_async(conn).await?;
            if found.len() != asked.len() {
                return Err(StockError::bad_reply(
                    "HMGET",
                    format!("{} records for {} ids", found.len(), asked.len()),
                ));
            }
            for (i, record) in asked.into_iter().zip(found) {
                records[i] = record;
            }
        }
        return Ok(records);
    }
    let mut read = redis::pipe();
    for (keys, order_id) in wanted {
        read.hget(&keys.orders, order_id);
    }
    Ok(read.query_async(conn).await?)
}
