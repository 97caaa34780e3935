//! The campaign ledger on both backends: a permit to put a campaign on sale is given only to
//! one never on sale before, and the ledger outlives the process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate_stock::{OpenPermit, Order, OrderStatus};

use super::OrderStore;
use super::test_backends::each_backend;

fn order_of(campaign: &str) -> Order {
    Order {
        order_id: (7 << 20) | 3,
        campaign_id: campaign.to_owned(),
        sku: "sku".into(),
        user_id: "u".into(),
        quantity: 1,
        unit_price_cents: 100,
        status: OrderStatus::PendingPayment,
        version: 1,
        created_at_ms: 1,
        pay_deadline_ms: 2,
        paid_at_ms: None,
        updated_at_ms: 1,
    }
}

#[test]
fn a_campaign_is_opened_once_and_never_again_after_its_opening_is_confirmed() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        // An opening that never completed (Redis failed) may be retried while nothing sold.
        assert!(store.claim_campaign_opening("new", 10).unwrap());
        assert!(store.claim_campaign_opening("new", 10).unwrap());
        store.confirm_campaign_open("new").unwrap();
        assert!(!store.claim_campaign_opening("new", 10).unwrap());
        store.confirm_campaign_open("new").unwrap();
        drop(store);
        // The ledger is durable: a restarted gateway still refuses.
        let store = fresh.open(4).unwrap();
        assert!(!store.claim_campaign_opening("new", 10).unwrap());
        let ledger: &dyn OrderStore = &*store;
        assert!(OpenPermit::claim(ledger, "new", 10).unwrap().is_none());
        assert!(OpenPermit::claim(ledger, "other", 10).unwrap().is_some());
        // The total recorded at the opening, then an operator's change, are what a rebuild uses.
        assert_eq!(store.campaign_stock_total("new").unwrap(), Some(10));
        store.record_campaign_stock_total("new", 7).unwrap();
        assert_eq!(store.campaign_stock_total("new").unwrap(), Some(7));
        assert!(!store.claim_campaign_opening("new", 99).unwrap());
        assert_eq!(store.campaign_stock_total("new").unwrap(), Some(7));
        assert_eq!(store.campaign_stock_total("never").unwrap(), None);
    });
}

#[test]
fn a_campaign_with_stored_orders_is_never_opened_again() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        // Sold before the ledger existed: no entry, but orders.
        store.write_batch(&[order_of("legacy")]).unwrap();
        assert!(!store.claim_campaign_opening("legacy", 10).unwrap());
        // An opening claimed, then orders stored, then Redis lost before the confirmation.
        assert!(store.claim_campaign_opening("unconfirmed", 10).unwrap());
        store
            .write_batch(&[Order {
                order_id: (8 << 20) | 5,
                ..order_of("unconfirmed")
            }])
            .unwrap();
        assert!(!store.claim_campaign_opening("unconfirmed", 10).unwrap());
    });
}

#[test]
fn a_retired_campaign_is_never_opened_again_and_keeps_its_payments() {
    use flashgate_stock::{PaymentOutcome, PaymentRecord};

    use super::Retirement;

    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        // Nobody bought: without its retirement, an unsold campaign could be opened again.
        assert!(store.claim_campaign_opening("quiet", 10).unwrap());
        store.confirm_campaign_open("quiet").unwrap();
        let retired = Retirement {
            stock_total: 10,
            remaining: 10,
            retired_at_ms: 5,
        };
        assert_eq!(store.campaign_retirement("quiet").unwrap(), None);
        store.retire_campaign("quiet", &retired).unwrap();
        // A second record changes nothing; a gateway confirming it live changes nothing.
        store
            .retire_campaign(
                "quiet",
                &Retirement {
                    remaining: 0,
                    ..retired
                },
            )
            .unwrap();
        store.confirm_campaign_open("quiet").unwrap();
        drop(store);
        let store = fresh.open(4).unwrap();
        assert_eq!(store.campaign_retirement("quiet").unwrap(), Some(retired));
        assert!(!store.claim_campaign_opening("quiet", 10).unwrap());

        let order = order_of("quiet");
        store.write_batch(std::slice::from_ref(&order)).unwrap();
        let paid = |id: &str, outcome| PaymentRecord {
            payment_id: id.to_owned(),
            order_id: order.order_id,
            amount_cents: 100,
            outcome,
        };
        store
            .record_payments("quiet", &[paid("p1", PaymentOutcome::Paid)])
            .unwrap();
        // The first record of a payment id stands.
        store
            .record_payments(
                "quiet",
                &[
                    paid("p1", PaymentOutcome::RefundRequired),
                    paid("p2", PaymentOutcome::RefundRequired),
                ],
            )
            .unwrap();
        assert_eq!(
            store.payment("quiet", "p1").unwrap(),
            Some(paid("p1", PaymentOutcome::Paid))
        );
        assert_eq!(
            store.payment("quiet", "p2").unwrap(),
            Some(paid("p2", PaymentOutcome::RefundRequired))
        );
        assert_eq!(store.payment("other", "p1").unwrap(), None);
        assert_eq!(
            store
                .stored_versions(&[order.order_id, order.order_id + 16, u64::MAX])
                .unwrap(),
            vec![Some(1), None, None]
        );
    });
}
