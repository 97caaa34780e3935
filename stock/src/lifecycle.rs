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
    /// This payment id was reported before: the order as it is now, and what that first report
    /// decided.
    Repeated(Order, PaymentOutcome),
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

/// How many orders an expiry sweep ended, how many units it put back on sale, and how many
/// deadline groups it took (a full call means more may be due).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    pub orders: u64,
    pub units: u64,
    pub groups: u64,
}

fn call<'a>(scripts: &'a Scripts, keys: &CampaignKeys) -> redis::ScriptInvocation<'a> {
    let mut call = scripts.lifecycle.prepare_invoke();
    call.key(&keys.stock)
        .key(&keys.buyers)
        .key(&keys.orders)
        .key(&keys.deadlines)
        .key(&keys.journal)
        .key(&keys.payments);
    call
}

/// Records the successful payment `payment_id` of `amount_cents` for `order_id`.
///
/// # Errors
/// When Redis cannot be reached or answers in an unknown shape.
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
    decode(keys, order_id, call.invoke_async(conn).await?)
}

/// Cancels `order_id` on behalf of `user_id` (only its owner may).
///
/// # Errors
/// When Redis cannot be reached or answers in an unknown shape.
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
    decode(keys, order_id, call.invoke_async(conn).await?)
}

/// Expires one overdue unpaid order directly (blocking: for the store-side sweep on the
/// persistence thread). An order Redis already settled is journaled again, so a store that
/// missed the change catches up.
///
/// # Errors
/// When Redis cannot be reached or answers in an unknown shape.
pub fn expire_order<C: redis::ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    now_ms: i64,
    order_id: u64,
) -> Result<Transition, StockError> {
    let mut call = call(scripts, keys);
    call.arg("expire_order").arg(now_ms).arg(order_id);
    decode(keys, order_id, call.invoke(conn)?)
}

/// Expires the still-unpaid orders of up to `max_groups` deadline groups due at `now_ms`.
/// Safe to run from every gateway at once: each group is claimed by exactly one call.
///
/// # Errors
/// When Redis cannot be reached or answers in an unknown shape.
pub async fn expire_due<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    now_ms: i64,
    max_groups: usize,
) -> Result<Expired, StockError> {
    let mut call = call(scripts, keys);
    call.arg("expire").arg(now_ms).arg(max_groups);
    let reply: Value = call.invoke_async(conn).await?;
    let fields = strings(reply)?;
    let number = |i: usize| -> Result<u64, StockError> {
        fields
            .get(i)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| StockError::bad_reply(SCRIPT, format!("{fields:?}")))
    };
    Ok(Expired {
        orders: number(0)?,
        units: number(1)?,
        groups: number(2)?,
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
        Some("repeated") => Transition::Repeated(
            order()?,
            match fields.get(2).map(String::as_str) {
                Some("paid") => PaymentOutcome::Paid,
                Some("refund_required") => PaymentOutcome::RefundRequired,
                Some("amount_mismatch") => PaymentOutcome::AmountMismatch,
                other => {
                    return Err(StockError::bad_reply(
                        SCRIPT,
                        format!("payment outcome {other:?}"),
                    ));
                }
            },
        ),
        other => return Err(StockError::bad_reply(SCRIPT, format!("outcome {other:?}"))),
    })
}
