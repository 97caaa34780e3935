//! The JSON shapes of orders and campaigns.
//!
//! Order ids are decimal strings: JavaScript loses integer precision above 2^53.

use flashgate_stock::Order;
use serde::Serialize;

use crate::clock::rfc3339;

/// An order as the API shows it.
#[derive(Debug, Serialize)]
pub struct OrderView<'a> {
    pub order_id: String,
    pub campaign_id: &'a str,
    pub sku: &'a str,
    pub quantity: u32,
    pub unit_price_cents: i64,
    pub amount_cents: i64,
    pub status: &'static str,
    pub version: u32,
    pub created_at: String,
    pub pay_before: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<String>,
}

impl<'a> From<&'a Order> for OrderView<'a> {
    fn from(order: &'a Order) -> Self {
        Self {
            order_id: order.order_id.to_string(),
            campaign_id: &order.campaign_id,
            sku: &order.sku,
            quantity: order.quantity,
            unit_price_cents: order.unit_price_cents,
            amount_cents: order.amount_cents(),
            status: order.status.as_str(),
            version: order.version,
            created_at: rfc3339(order.created_at_ms),
            pay_before: rfc3339(order.pay_deadline_ms),
            paid_at: order.paid_at_ms.map(rfc3339),
        }
    }
}

/// A campaign's public state.
#[derive(Debug, Serialize)]
pub struct CampaignView<'a> {
    pub id: &'a str,
    pub sku: &'a str,
    pub name: &'a str,
    pub unit_price_cents: i64,
    pub stock_total: u64,
    pub remaining: i64,
    pub per_user_limit: u32,
    pub max_quantity: u32,
    pub starts_at: String,
    pub ends_at: String,
    pub pay_timeout_s: u64,
    /// `upcoming`, `active`, `sold_out` or `ended`.
    pub status: &'static str,
}
