//! A payment reported for an order of a retired campaign, decided from the store as
//! `lua/lifecycle.lua` decides it in Redis: the same payment again gets its first answer, a
//! payment id names one payment, and money that bought nothing is on record for a refund. No
//! order of a retired campaign is unpaid, so no payment buys anything any more.

use flashgate_stock::{Order, OrderStatus, PaymentOutcome, PaymentRecord, Transition};

use crate::store::{OrderStore, StoreError};

/// Decides the payment `payment_id` of `amount_cents` for `order` (as the store holds it) at
/// `now_ms`, recording what it must: the payment, and an order paid late becoming
/// `refund_required`.
///
/// # Errors
/// The store's; nothing or part was recorded, and a retry decides the same.
pub fn decide(
    store: &dyn OrderStore,
    order: Order,
    payment_id: &str,
    amount_cents: i64,
    now_ms: i64,
) -> Result<Transition, StoreError> {
    if let Some(seen) = store.payment(&order.campaign_id, payment_id)? {
        if seen.order_id != order.order_id || seen.amount_cents != amount_cents {
            return Ok(Transition::PaymentIdReused(order));
        }
        return Ok(Transition::Repeated(order, seen.outcome));
    }
    let (transition, outcome) = if order.amount_cents() != amount_cents {
        (
            Transition::AmountMismatch(order.clone()),
            PaymentOutcome::AmountMismatch,
        )
    } else if matches!(
        order.status,
        OrderStatus::Paid | OrderStatus::RefundRequired
    ) {
        (
            Transition::DuplicatePayment(order.clone()),
            PaymentOutcome::RefundRequired,
        )
    } else {
        // Expired or cancelled: too late, the money goes back.
        let late = Order {
            status: OrderStatus::RefundRequired,
            version: order.version + 1,
            paid_at_ms: Some(now_ms),
            updated_at_ms: now_ms,
            ..order.clone()
        };
        store.update_if_newer(&late)?;
        (
            Transition::RefundRequired(late),
            PaymentOutcome::RefundRequired,
        )
    };
    store.record_payments(
        &order.campaign_id,
        &[PaymentRecord {
            payment_id: payment_id.to_owned(),
            order_id: order.order_id,
            amount_cents,
            outcome,
        }],
    )?;
    Ok(transition)
}
