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
