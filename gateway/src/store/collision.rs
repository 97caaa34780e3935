//! Order id collisions: two different orders under one id.
//!
//! Inserts are idempotent on `order_id`, which is only sound while an id names one order. Should
//! two orders ever share an id (a node id configured twice, a clock stepped back across a
//! restart, data restored into the wrong store), the second would be taken for a replay of the
//! first, acked out of the journal and lost. So every write compares what identifies an order
//! (campaign, user, sku, quantity, unit price, creation time) and reports a mismatch per order,
//! without holding the rest of its batch back.

use flashgate_stock::Order;

/// What a batch write did, order by order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// Rows inserted or advanced to a higher version.
    pub stored: usize,
    /// Orders of the batch that were not written because their id belongs to another order:
    /// never to be acked as stored.
    pub collisions: Vec<Collision>,
}

/// One order refused because another order holds its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    /// Where the refused order is in the batch given to the store (an id may come twice).
    pub index: usize,
    pub order_id: u64,
    /// The campaign of the order that holds the id (stored, or earlier in the same batch).
    pub campaign_id: String,
    /// The user of the order that holds the id.
    pub user_id: String,
}

impl Collision {
    /// The reason an operator reads in `fg:{c}:poisoned`.
    pub fn reason(&self) -> String {
        format!(
            "order id collides with stored order of campaign {} user {}",
            self.campaign_id, self.user_id
        )
    }
}

/// Whether `a` and `b` are states of one order: everything but the lifecycle fields matches.
pub(super) fn same_order(a: &Order, b: &Order) -> bool {
    a.order_id == b.order_id
        && a.campaign_id == b.campaign_id
        && a.user_id == b.user_id
        && a.sku == b.sku
        && a.quantity == b.quantity
        && a.unit_price_cents == b.unit_price_cents
        && a.created_at_ms == b.created_at_ms
}

/// The SQL condition that a stored row (`stored`) and an incoming one (`incoming`) are states of
/// one order; the same columns as [`same_order`].
pub(super) fn same_order_sql(stored: &str, incoming: &str) -> String {
    [
        "campaign_id",
        "user_id",
        "sku",
        "quantity",
        "unit_price_cents",
        "created_at",
    ]
    .map(|c| format!("{stored}.{c} = {incoming}.{c}"))
    .join(" AND ")
}
