//! An order as the Redis scripts record it and the order store keeps it.

use std::fmt;
use std::str::FromStr;

/// Where an order is in its lifecycle (ARCHITECTURE.md §4).
///
/// The names are the stable strings of the API, the Redis record and the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Reserved; the unit is held until the payment deadline.
    PendingPayment,
    /// Paid in time: the unit is sold for good.
    Paid,
    /// Cancelled by its owner before paying: stock and quota returned.
    Cancelled,
    /// Not paid by its deadline: stock and quota returned.
    Expired,
    /// Paid after it had expired or been cancelled: the money goes back, the unit stays returned.
    RefundRequired,
}

impl OrderStatus {
    /// The stable name used in JSON, in Redis records and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Paid => "paid",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::RefundRequired => "refund_required",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of [`OrderStatus`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for OrderStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending_payment" => Self::PendingPayment,
            "paid" => Self::Paid,
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            "refund_required" => Self::RefundRequired,
            other => return Err(UnknownStatus(other.to_owned())),
        })
    }
}

/// One order, whole: what the reserve script committed, and what the store holds.
///
/// Money is in integer cents and times are Unix milliseconds, so nothing is lost to floats or
/// time zones between Redis, the store and the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// 64-bit id (see the gateway's `order_id`); its low bits are the user's shard gene.
    pub order_id: u64,
    pub campaign_id: String,
    pub sku: String,
    pub user_id: String,
    pub quantity: u32,
    pub unit_price_cents: i64,
    pub status: OrderStatus,
    /// Bumped by every state change; store updates are compare-and-set on it.
    pub version: u32,
    pub created_at_ms: i64,
    pub pay_deadline_ms: i64,
    pub paid_at_ms: Option<i64>,
    pub updated_at_ms: i64,
}

impl Order {
    /// What the buyer owes: derived, never stored apart from its parts in Redis. Config
    /// validation keeps price × quantity inside i64; saturating keeps a corrupt record from
    /// panicking a request.
    pub fn amount_cents(&self) -> i64 {
        self.unit_price_cents
            .saturating_mul(i64::from(self.quantity))
    }
}
