//! How many orders Redis holds of a campaign's bucket: what a loader compares with the store to
//! notice that Redis lost data or went back in time (which `rebuild.rs` repairs).

use redis::aio::ConnectionLike;

use crate::StockError;
use crate::keys::CampaignKeys;

/// How many orders of the campaign Redis holds (any state). Redis never forgets an order while
/// a campaign lives, so a store holding more orders of a campaign than this means Redis went
/// back in time.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn orders_held<C: ConnectionLike>(
    conn: &mut C,
    keys: &CampaignKeys,
) -> Result<u64, StockError> {
    Ok(redis::cmd("HLEN")
        .arg(&keys.orders)
        .query_async(conn)
        .await?)
}
