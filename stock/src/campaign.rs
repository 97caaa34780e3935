//! Putting a campaign into Redis and reading its live stock.

use redis::aio::ConnectionLike;

use crate::StockError;
use crate::keys::CampaignKeys;
use crate::scripts::Scripts;

/// The settings of a campaign that the scripts need. Times are Unix ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignSpec {
    pub sku: String,
    pub unit_price_cents: i64,
    pub per_user_limit: u32,
    pub pay_timeout_ms: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Units to put on sale if the campaign is not yet in Redis; ignored if it is.
    pub stock: u64,
}

/// What loading found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// True when this load put the stock in place; false when the campaign was already live and
    /// its stock was left alone.
    pub created: bool,
    /// The stock total in force (may differ from the config's if the campaign was live).
    pub stock_total: u64,
    /// Units still for sale.
    pub remaining: i64,
}

/// Loads a campaign's settings; sets its stock only if Redis has none (`lua/load_campaign.lua`).
///
/// # Errors
/// When Redis cannot be reached or answers in an unknown shape.
pub async fn load_campaign<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    spec: &CampaignSpec,
) -> Result<Loaded, StockError> {
    let reply: redis::Value = scripts
        .load_campaign
        .key(&keys.meta)
        .key(&keys.stock)
        .arg(&spec.sku)
        .arg(spec.unit_price_cents)
        .arg(spec.per_user_limit)
        .arg(spec.pay_timeout_ms)
        .arg(spec.start_ms)
        .arg(spec.end_ms)
        .arg(spec.stock)
        .invoke_async(conn)
        .await?;
    let fields = crate::reserve::strings(reply)?;
    let bad = || StockError::bad_reply("load_campaign.lua", format!("{fields:?}"));
    match fields.as_slice() {
        [created, total, remaining] => Ok(Loaded {
            created: created == "1",
            stock_total: total.parse().map_err(|_| bad())?,
            remaining: remaining.parse().map_err(|_| bad())?,
        }),
        _ => Err(bad()),
    }
}

/// Units still for sale, or `None` when the campaign is not in Redis.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn remaining_stock<C: ConnectionLike>(
    conn: &mut C,
    keys: &CampaignKeys,
) -> Result<Option<i64>, StockError> {
    Ok(redis::cmd("GET").arg(&keys.stock).query_async(conn).await?)
}
