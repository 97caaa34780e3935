//! Order transitions after the reservation: pay, cancel, expire (`lua/lifecycle.lua`).

use redis::Value;
use redis::aio::ConnectionLike;

use crate::StockError;
use crate::keys::CampaignKeys;
use crate::order::Order;
use crate::record;
use crate::reserve::strings;
use crate::scripts::Scripts;

const SCRIPT: &str = "lifecycle.lua";

/// What a pay or cancel request did. Business outcomes, not errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Paid in time: the unit is sold for good.
    Paid(Order),
    /// Cancelled by its owner: stock and quota returned.
    Cancelled(Order),
    /// Expired by the store-side sweep: stock and quota returned.
    Expired(Order),
    /// Paid too late (after expiry or cancellation): the unit stays returned, the money must go
    /// back.
    RefundRequired(Order),
    /// Already in the state asked for (a repeated callback or cancel): the same answer again.
    Unchanged(Order),
    /// No such order in this campaign, or (for cancel) not the caller's.
    NotFound,
    /// Paid, expired or past its deadline: it can no longer be cancelled.
    NotCancellable(Order),
    /// The payment's amount is not what the order costs: the order is unchanged, the payment
    /// is on record for a refund.
    AmountMismatch(Order),
    /// Another payment of an order already settled: the order is unchanged, this payment is on
    /// record for a refund.
    DuplicatePayment(Order),
    /// This payment id was reported before for this order and amount: the order as it is now,
    /// and what that first report decided. A first `Paid` comes back only while the order is
    /// paid (should Redis have lost that change, the payment is decided again instead).
    Repeated(Order, PaymentOutcome),
    /// This payment id was reported before for another order (or amount): a payment id names
    /// one payment, so this report is refused and changed nothing. The order as it is now.
    PaymentIdReused(Order),
    /// The campaign is being retired from Redis (or is gone from it): nothing changed. Its
    /// orders are final and answered from the store from now on.
    Retiring,
}

/// What a successful payment did, as remembered by its payment id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// It paid the order.
    Paid,
    /// It bought nothing (late, a second payment, a cancelled order): refund it.
    RefundRequired,
    /// Its amount was not the order's: refund it.
    AmountMismatch,
}

impl PaymentOutcome {
    /// The name the scripts and the store record it under.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::RefundRequired => "refund_required",
            Self::AmountMismatch => "amount_mismatch",
        }
    }

    /// The outcome recorded as `text`, `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "paid" => Some(Self::Paid),
            "refund_required" => Some(Self::RefundRequired),
            "amount_mismatch" => Some(Self::AmountMismatch),
            _ => None,
        }
    }
}

/// One successful payment as it is remembered by its id: in Redis while the campaign is hot,
/// in the store once it is retired. A repeat of the payment gets its first answer from it, and
/// money that bought nothing stays on record for a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub payment_id: String,
    pub order_id: u64,
    pub amount_cents: i64,
    pub outcome: PaymentOutcome,
}

/// How many orders an expiry sweep ended, how many units it put back on sale, and how many
/// deadline groups it took (a full call means more may be due).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expired {
    pub orders: u64,
    pub units: u64,
    /// Deadline groups looked at, held ones included.
    pub groups: u64,
    /// Groups left in place because they name a malformed order: the next call of the same
    /// sweep passes over them (its `skip_groups`), so they never stall the orders behind them.
    pub held_groups: u64,
    /// The malformed orders, untouched (record, stock, quota and deadline entry as they were):
    /// for an operator to repair. Each is reported again by every sweep until then.
    pub malformed: Vec<u64>,
}

fn call<'a>(scripts: &'a Scripts, keys: &CampaignKeys) -> redis::ScriptInvocation<'a> {
    let mut call = scripts.lifecycle.prepare_invoke();
    call.key(&keys.stock)
        .key(&keys.buyers)
        .key(&keys.orders)
        .key(&keys.deadlines)
        .key(&keys.journal)
        .key(&keys.payments)
        .key(&keys.meta);
    call
}

/// Records the successful payment `payment_id` of `amount_cents` for `order_id`.
///
/// # Errors
/// When Redis cannot be reached or answers in an unknown shape; [`StockError::Corrupt`] when
/// the order's data in Redis is malformed (nothing was written).
pub async fn pay<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    now_ms: i64,
    order_id: u64,
    amount_cents: i64,
    payment_id: &str,
) -> Result<Transition, StockError> {
    let mut call = call(scripts, keys);
    call.arg("pay")
        .arg(now_ms)
        .arg(order_id)
        .arg(amount_cents)
        .arg(payment_id);
    let reply = call
        .invoke_async(conn)
        .await
        .map_err(|e| StockError::from_script(SCRIPT, e))?;
    decode(keys, order_id, reply)
}

/// Cancels `order_id` on behalf of `user_id` (only its owner may).
///
/// # Errors
/// When Redis cannot be reached or answers in an unknown shape; [`StockError::Corrupt`] when
/// the order's data in Redis is malformed (nothing was written).
pub async fn cancel<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    now_ms: i64,
    order_id: u64,
    user_id: &str,
) -> Result<Transition, StockError> {
    let mut call = call(scripts, keys);
    call.arg("cancel").arg(now_ms).arg(order_id).arg(user_id);
    let reply = call
        .invoke_async(conn)
        .await
        .map_err(|e| StockError::from_script(SCRIPT, e))?;
    decode(keys, order_id, reply)
}

/// Expires one overdue unpaid order directly (blocking: for the store-side sweep on the
/// persistence thread). An order Redis already settled is journaled again, so a store that
/// missed the change catches up.
///
/// # Errors
/// When Redis cannot be reached or answers in an unknown shape; [`StockError::Corrupt`] when
/// the order's data in Redis is malformed (nothing was written).
pub fn expire_order<C: redis::ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    now_ms: i64,
    order_id: u64,
) -> Result<Transition, StockError> {
    let mut call = call(scripts, keys);
    call.arg("expire_order").arg(now_ms).arg(order_id);
    let reply = call
        .invoke(conn)
        .map_err(|e| StockError::from_script(SCRIPT, e))?;
    decode(keys, order_id, reply)
}

/// Expires the still-unpaid orders of up to `max_groups` deadline groups due at `now_ms`,
/// passing over the first `skip_groups` due ones (the groups this sweep's earlier calls held:
/// the sum of their [`Expired::held_groups`]; 0 to start a sweep). Safe to run from every
/// gateway at once: each group is claimed by exactly one call. A malformed order does not fail
/// the sweep: it is left untouched and reported in [`Expired::malformed`].
///
/// # Errors
/// When Redis cannot be reached or answers in an unknown shape; [`StockError::Corrupt`] when
/// the campaign's stock or journal is malformed (nothing was written).
pub async fn expire_due<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    now_ms: i64,
    max_groups: usize,
    skip_groups: u64,
) -> Result<Expired, StockError> {
    let mut call = call(scripts, keys);
    call.arg("expire")
        .arg(now_ms)
        .arg(max_groups)
        .arg(skip_groups);
    let reply: Value = call
        .invoke_async(conn)
        .await
        .map_err(|e| StockError::from_script(SCRIPT, e))?;
    let fields = strings(reply)?;
    let bad = || StockError::bad_reply(SCRIPT, format!("{fields:?}"));
    let mut numbers = fields.iter().map(|s| s.parse::<u64>().map_err(|_| bad()));
    let mut next = || numbers.next().unwrap_or_else(|| Err(bad()));
    Ok(Expired {
        orders: next()?,
        units: next()?,
        groups: next()?,
        held_groups: next()?,
        malformed: numbers.collect::<Result<_, _>>()?,
    })
}

fn decode(keys: &CampaignKeys, order_id: u64, reply: Value) -> Result<Transition, StockError> {
    let fields = strings(reply)?;
    let order = || -> Result<Order, StockError> {
        let rec = fields
            .get(1)
            .ok_or_else(|| StockError::bad_reply(SCRIPT, format!("{fields:?}")))?;
        record::decode(&keys.campaign_id, order_id, rec)
            .map_err(|e| StockError::bad_reply(SCRIPT, e.to_string()))
    };
    Ok(match fields.first().map(String::as_str) {
        Some("paid") => Transition::Paid(order()?),
        Some("cancelled") => Transition::Cancelled(order()?),
        Some("expired") => Transition::Expired(order()?),
        Some("refund_required") => Transition::RefundRequired(order()?),
        Some("unchanged") => Transition::Unchanged(order()?),
        Some("not_found") => Transition::NotFound,
        Some("not_cancellable") => Transition::NotCancellable(order()?),
        Some("amount_mismatch") => Transition::AmountMismatch(order()?),
        Some("duplicate_payment") => Transition::DuplicatePayment(order()?),
        Some("payment_id_reused") => Transition::PaymentIdReused(order()?),
        Some("repeated") => Transition::Repeated(
            order()?,
            match fields.get(2).and_then(|f| PaymentOutcome::parse(f)) {
                Some(outcome) => outcome,
                None => {
                    return Err(StockError::bad_reply(
                        SCRIPT,
                        format!("payment outcome {:?}", fields.get(2)),
                    ));
                }
            },
        ),
        Some("retiring") => Transition::Retiring,
        other => return Err(StockError::bad_reply(SCRIPT, format!("outcome {other:?}"))),
    })
}
