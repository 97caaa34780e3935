//! The compact order record the scripts write into `fg:{c}:orders`.
//!
//! `user|quantity|unit_price_cents|sku|status|version|created_ms|deadline_ms|paid_ms|updated_ms`:
//! one short string per order keeps Redis memory and script work small. `lua/reserve.lua` writes
//! it; this is the only Rust code that reads it.

use crate::order::Order;

/// Why a record could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("order record {record:?}: {reason}")]
pub struct BadRecord {
    pub record: String,
    pub reason: &'static str,
}

/// Reads the record of `order_id` in `campaign_id`.
///
/// # Errors
/// When the record does not have the shape `lua/reserve.lua` writes.
pub fn decode(campaign_id: &str, order_id: u64, record: &str) -> Result<Order, BadRecord> {
    let bad = |reason| BadRecord {
        record: record.to_owned(),
        reason,
    };
    let mut fields = record.split('|');
    let mut next = |what| fields.next().ok_or_else(|| bad(what));
    let user_id = next("no user")?.to_owned();
    let quantity = next("no quantity")?;
    let unit_price = next("no price")?;
    let sku = next("no sku")?.to_owned();
    let status = next("no status")?;
    let version = next("no version")?;
    let created = next("no created time")?;
    let deadline = next("no deadline")?;
    let paid = next("no paid time")?;
    let updated = next("no updated time")?;
    Ok(Order {
        order_id,
        campaign_id: campaign_id.to_owned(),
        sku,
        user_id,
        quantity: quantity.parse().map_err(|_| bad("bad quantity"))?,
        unit_price_cents: unit_price.parse().map_err(|_| bad("bad price"))?,
        status: status.parse().map_err(|_| bad("bad status"))?,
        version: version.parse().map_err(|_| bad("bad version"))?,
        created_at_ms: created.parse().map_err(|_| bad("bad created time"))?,
        pay_deadline_ms: deadline.parse().map_err(|_| bad("bad deadline"))?,
        paid_at_ms: match paid {
            "" => None,
            ms => Some(ms.parse().map_err(|_| bad("bad paid time"))?),
        },
        updated_at_ms: updated.parse().map_err(|_| bad("bad updated time"))?,
    })
}

/// The record of `order`, as the scripts write it: what a rebuild from the store puts back.
pub fn encode(order: &Order) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        order.user_id,
        order.quantity,
        order.unit_price_cents,
        order.sku,
        order.status.as_str(),
        order.version,
        order.created_at_ms,
        order.pay_deadline_ms,
        order
            .paid_at_ms
            .map(|ms| ms.to_string())
            .unwrap_or_default(),
        order.updated_at_ms
    )
}

/// The user a record belongs to, without decoding the rest.
pub fn owner(record: &str) -> &str {
    record.split('|').next().unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::OrderStatus;

    #[test]
    fn decodes_what_reserve_writes() {
        let order = decode(
            "c1",
            42,
            "u7|2|1999|SKU-1|pending_payment|1|1000|61000||1000",
        )
        .unwrap();
        assert_eq!(order.user_id, "u7");
        assert_eq!(order.quantity, 2);
        assert_eq!(order.amount_cents(), 3998);
        assert_eq!(order.sku, "SKU-1");
        assert_eq!(order.status, OrderStatus::PendingPayment);
        assert_eq!(order.pay_deadline_ms, 61000);
        assert_eq!(order.paid_at_ms, None);
        assert_eq!(order.campaign_id, "c1");
    }

    #[test]
    fn rejects_truncated_and_garbled_records() {
        assert!(decode("c", 1, "u7|2|1999").is_err());
        assert!(decode("c", 1, "u7|x|1999|S|pending_payment|1|1|2||1").is_err());
        assert!(decode("c", 1, "u7|1|1999|S|shipped|1|1|2||1").is_err());
    }

    #[test]
    fn owner_is_the_first_field() {
        assert_eq!(owner("alice|1|2"), "alice");
    }
}
