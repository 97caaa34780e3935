//! Unit tests of the order store, run on both backends (`test_backends.rs`), by subject; the
//! orders they write come from the helpers here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate_stock::{Order, OrderStatus};

mod collisions;
mod expiry;
mod layout;
mod lookups;
mod user_index_cost;
mod writes;

pub(super) const STATUSES: [OrderStatus; 5] = [
    OrderStatus::PendingPayment,
    OrderStatus::Paid,
    OrderStatus::Cancelled,
    OrderStatus::Expired,
    OrderStatus::RefundRequired,
];

/// An order whose every field depends on `n`, so a mixed-up column shows up as a mismatch.
pub(super) fn order(n: u64, campaign: &str) -> Order {
    let status = STATUSES[(n % 5) as usize];
    let i = n as i64;
    Order {
        order_id: (n << 4) | (n % 16) | (1 << 40),
        campaign_id: campaign.to_owned(),
        sku: format!("sku-{}", n % 3),
        user_id: format!("user-{n}"),
        quantity: (n % 4) as u32 + 1,
        unit_price_cents: 1_999 + i,
        status,
        version: (n % 7) as u32 + 1,
        created_at_ms: 1_700_000_000_000 + i,
        pay_deadline_ms: 1_700_000_900_000 + i,
        paid_at_ms: (status == OrderStatus::Paid).then_some(1_700_000_100_000 + i),
        updated_at_ms: 1_700_000_200_000 + i,
    }
}

pub(super) fn orders(from: u64, to: u64, campaign: &str) -> Vec<Order> {
    (from..to).map(|n| order(n, campaign)).collect()
}
