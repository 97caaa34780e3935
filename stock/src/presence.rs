//! Whether Redis still knows a campaign at all (blocking: for the persistence threads).
//!
//! The store-side sweep settles an order Redis does not know from the store's own state; what
//! it may conclude depends on whether the whole campaign is gone from Redis (retired or lost)
//! or only the order.

use redis::ConnectionLike;

use crate::StockError;
use crate::keys::CampaignKeys;

/// Whether Redis holds the campaign's settings or stock.
///
/// # Errors
/// When Redis cannot be reached.
pub fn campaign_known<C: ConnectionLike>(
    conn: &mut C,
    keys: &CampaignKeys,
) -> Result<bool, StockError> {
    let present: u64 = redis::cmd("EXISTS")
        .arg(&keys.meta)
        .arg(&keys.stock)
        .query(conn)?;
    Ok(present > 0)
}
