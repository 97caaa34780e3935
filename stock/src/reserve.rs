//! Reserving stock: the one atomic call that decides a purchase.

use redis::Value;
use redis::aio::ConnectionLike;

use crate::StockError;
use crate::keys::CampaignKeys;
use crate::order::Order;
use crate::record;
use crate::scripts::Scripts;

/// One purchase asking for stock. The order id is minted (or taken from an order token) before
/// the call, so a retry with the same id is recognised as the same purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation<'a> {
    pub user_id: &'a str,
    pub order_id: u64,
    pub quantity: u32,
}

/// What the commit point decided for one reservation.
///
/// These are business outcomes, not errors: the gateway maps each to its HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Stock taken and the order recorded and journaled: it will reach the store.
    Accepted(Order),
    /// The order already existed (a retry, or a limit-1 buyer asking again): the original order.
    Replayed(Order),
    /// The user already holds `bought` units and the limit does not allow more.
    LimitReached { bought: u32 },
    /// No unit left.
    SoldOut,
    /// Fewer units left than asked for.
    InsufficientStock { left: u64 },
    /// The order id is another user's: a forged or mixed-up token.
    Conflict,
    /// The script refused the arguments (the gateway validates first, so this is a bug guard).
    BadRequest,
    /// The campaign is not in Redis (never loaded, or Redis lost its data): nothing can be sold
    /// safely until an operator loads it.
    NotLoaded,
}

const SCRIPT: &str = "reserve.lua";

/// Runs `lua/reserve.lua` for a batch of reservations of one campaign, atomically and in order.
///
/// # Errors
/// When Redis cannot be reached (nothing was recorded, unless Redis ran the script and the reply
/// was lost: the journal then carries the order to the store) or answers in an unknown shape;
/// [`StockError::Corrupt`] when the campaign's data in Redis is malformed (nothing was written).
pub async fn reserve_batch<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    now_ms: i64,
    batch: &[Reservation<'_>],
) -> Result<Vec<ReserveOutcome>, StockError> {
    let mut call = scripts.reserve.prepare_invoke();
    call.key(&keys.meta)
        .key(&keys.stock)
        .key(&keys.buyers)
        .key(&keys.orders)
        .key(&keys.deadlines)
        .key(&keys.journal)
        .arg(now_ms);
    for r in batch {
        call.arg(r.user_id).arg(r.order_id).arg(r.quantity);
    }
    let reply: Value = call
        .invoke_async(conn)
        .await
        .map_err(|e| StockError::from_script(SCRIPT, e))?;
    decode_replies(keys, batch.len(), reply)
}

fn decode_replies(
    keys: &CampaignKeys,
    expected: usize,
    reply: Value,
) -> Result<Vec<ReserveOutcome>, StockError> {
    let Value::Array(items) = reply else {
        return Err(StockError::bad_reply(SCRIPT, format!("{reply:?}")));
    };
    let outcomes = items
        .into_iter()
        .map(|item| decode_one(keys, item))
        .collect::<Result<Vec<_>, _>>()?;
    if outcomes == [ReserveOutcome::NotLoaded] {
        return Ok(vec![ReserveOutcome::NotLoaded; expected]);
    }
    if outcomes.len() != expected {
        return Err(StockError::bad_reply(
            SCRIPT,
            format!("{} replies for {expected} reservations", outcomes.len()),
        ));
    }
    Ok(outcomes)
}

fn decode_one(keys: &CampaignKeys, item: Value) -> Result<ReserveOutcome, StockError> {
    let fields = strings(item)?;
    let field = |i: usize| fields.get(i).map(String::as_str).unwrap_or_default();
    let number = |i: usize| {
        field(i)
            .parse::<u64>()
            .map_err(|_| StockError::bad_reply(SCRIPT, format!("bad number in {fields:?}")))
    };
    let order = || -> Result<Order, StockError> {
        let order_id = number(1)?;
        record::decode(&keys.campaign_id, order_id, field(2))
            .map_err(|e| StockError::bad_reply(SCRIPT, e.to_string()))
    };
    Ok(match field(0) {
        "accepted" => ReserveOutcome::Accepted(order()?),
        "replayed" => ReserveOutcome::Replayed(order()?),
        "limit_reached" => ReserveOutcome::LimitReached {
            bought: u32::try_from(number(1)?).unwrap_or(u32::MAX),
        },
        "sold_out" => ReserveOutcome::SoldOut,
        "insufficient_stock" => ReserveOutcome::InsufficientStock { left: number(1)? },
        "conflict" => ReserveOutcome::Conflict,
        "bad_request" => ReserveOutcome::BadRequest,
        "not_loaded" => ReserveOutcome::NotLoaded,
        other => return Err(StockError::bad_reply(SCRIPT, format!("code {other:?}"))),
    })
}

/// The bulk strings of one reply array.
pub(crate) fn strings(value: Value) -> Result<Vec<String>, StockError> {
    let Value::Array(items) = value else {
        return Err(StockError::bad_reply(SCRIPT, format!("{value:?}")));
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::BulkString(bytes) => String::from_utf8(bytes)
                .map_err(|_| StockError::bad_reply(SCRIPT, "reply is not UTF-8")),
            Value::SimpleString(s) => Ok(s),
            Value::Int(n) => Ok(n.to_string()),
            other => Err(StockError::bad_reply(SCRIPT, format!("{other:?}"))),
        })
        .collect()
}
