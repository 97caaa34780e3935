//! Orders as rows: checked conversions both ways, so neither a bad order nor a damaged row gets
//! past a store silently. The checks are the backends' common ground; binding and reading are
//! SQLite's here ([`Row::execute`], [`RawOrder::read`]) and PostgreSQL's in
//! `postgres/columns.rs`.

use flashgate_stock::{Order, OrderStatus, PaymentOutcome, PaymentRecord};
use rusqlite::params;

use super::StoreError;

/// An order as bound to a statement: every field already converted, so a bad order is refused
/// before anything is written.
pub(super) struct Row<'a> {
    pub(super) order: &'a Order,
    pub(super) order_id: i64,
    pub(super) amount_cents: i64,
}

impl<'a> Row<'a> {
    pub(super) fn new(order: &'a Order) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidOrder {
            order_id: order.order_id,
            reason: reason.to_owned(),
        };
        Ok(Self {
            order,
            order_id: i64::try_from(order.order_id).map_err(|_| invalid("id above i64::MAX"))?,
            amount_cents: order
                .unit_price_cents
                .checked_mul(i64::from(order.quantity))
                .ok_or_else(|| invalid("amount_cents overflows i64"))?,
        })
    }

    pub(super) fn execute(
        &self,
        stmt: &mut rusqlite::CachedStatement<'_>,
    ) -> rusqlite::Result<usize> {
        let o = self.order;
        stmt.execute(params![
            self.order_id,
            o.campaign_id,
            o.sku,
            o.user_id,
            o.quantity,
            o.unit_price_cents,
            self.amount_cents,
            o.status.as_str(),
            o.version,
            o.created_at_ms,
            o.pay_deadline_ms,
            o.paid_at_ms,
            o.updated_at_ms,
        ])
    }
}

/// A row as a database returns it, before the checks that turn it into an [`Order`].
pub(super) struct RawOrder {
    pub(super) order_id: i64,
    pub(super) campaign_id: String,
    pub(super) sku: String,
    pub(super) user_id: String,
    pub(super) quantity: i64,
    pub(super) unit_price_cents: i64,
    pub(super) amount_cents: i64,
    pub(super) status: String,
    pub(super) version: i64,
    pub(super) created_at: i64,
    pub(super) pay_deadline: i64,
    pub(super) paid_at: Option<i64>,
    pub(super) updated_at: i64,
}

impl RawOrder {
    pub(super) fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            order_id: r.get(0)?,
            campaign_id: r.get(1)?,
            sku: r.get(2)?,
            user_id: r.get(3)?,
            quantity: r.get(4)?,
            unit_price_cents: r.get(5)?,
            amount_cents: r.get(6)?,
            status: r.get(7)?,
            version: r.get(8)?,
            created_at: r.get(9)?,
            pay_deadline: r.get(10)?,
            paid_at: r.get(11)?,
            updated_at: r.get(12)?,
        })
    }

    pub(super) fn into_order(self) -> Result<Order, StoreError> {
        // Reinterpreting keeps a negative id recognisable in the error message.
        let order_id = self.order_id as u64;
        let corrupt = |reason: String| StoreError::Corrupt { order_id, reason };
        if self.order_id < 0 {
            return Err(corrupt("negative order_id".to_owned()));
        }
        let quantity = u32::try_from(self.quantity)
            .map_err(|_| corrupt(format!("quantity {} out of range", self.quantity)))?;
        let version = u32::try_from(self.version)
            .map_err(|_| corrupt(format!("version {} out of range", self.version)))?;
        let status: OrderStatus = self.status.parse().map_err(|e| corrupt(format!("{e}")))?;
        if self.unit_price_cents.checked_mul(self.quantity) != Some(self.amount_cents) {
            return Err(corrupt(format!(
                "amount_cents {} is not quantity {} x unit_price_cents {}",
                self.amount_cents, self.quantity, self.unit_price_cents
            )));
        }
        Ok(Order {
            order_id,
            campaign_id: self.campaign_id,
            sku: self.sku,
            user_id: self.user_id,
            quantity,
            unit_price_cents: self.unit_price_cents,
            status,
            version,
            created_at_ms: self.created_at,
            pay_deadline_ms: self.pay_deadline,
            paid_at_ms: self.paid_at,
            updated_at_ms: self.updated_at,
        })
    }
}

/// A stored payment row as a [`PaymentRecord`], refusing one no build of ours would write.
pub(super) fn payment_row(
    payment_id: &str,
    order_id: i64,
    amount_cents: i64,
    outcome: &str,
) -> Result<PaymentRecord, StoreError> {
    let order_id = u64::try_from(order_id).map_err(|_| StoreError::Corrupt {
        order_id: 0,
        reason: format!("payment {payment_id} names order {order_id}"),
    })?;
    let outcome = PaymentOutcome::parse(outcome).ok_or_else(|| StoreError::Corrupt {
        order_id,
        reason: format!("payment {payment_id} has outcome {outcome:?}"),
    })?;
    Ok(PaymentRecord {
        payment_id: payment_id.to_owned(),
        order_id,
        amount_cents,
        outcome,
    })
}
