//! Unpaid orders past their deadline: found, paged through in (deadline, id) order, and
//! expired by compare-and-set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate_stock::{Order, OrderStatus};

use super::{order, orders};
use crate::store::test_backends::each_backend;

#[test]
fn overdue_unpaid_finds_only_pending_orders_past_their_deadline() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let batch = orders(0, 50, "c1");
        store.write_batch(&batch).unwrap();
        let cutoff = 1_700_000_900_000 + 25;
        let mut want: Vec<u64> = batch
            .iter()
            .filter(|o| o.status == OrderStatus::PendingPayment && o.pay_deadline_ms < cutoff)
            .map(|o| o.order_id)
            .collect();
        want.sort_unstable();
        let mut got: Vec<u64> = store
            .overdue_unpaid(cutoff, 1_000)
            .unwrap()
            .iter()
            .map(|o| o.order_id)
            .collect();
        got.sort_unstable();
        assert!(!want.is_empty());
        assert_eq!(got, want);
        assert_eq!(store.overdue_unpaid(cutoff, 2).unwrap().len(), 2);
    });
}

/// Overdue unpaid orders come page by page in (deadline, id) order across every table, so a
/// sweep that cannot settle the first ones still reaches the others.
#[test]
fn overdue_unpaid_pages_through_every_table_in_deadline_order() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        // 60 unpaid orders over all 16 tables, some sharing a deadline; one paid, one not due.
        let mut batch: Vec<Order> = (0..60u64)
            .map(|n| Order {
                status: OrderStatus::PendingPayment,
                paid_at_ms: None,
                pay_deadline_ms: 1_000 + (n / 3) as i64,
                ..order(n, "c1")
            })
            .collect();
        batch.push(Order {
            status: OrderStatus::Paid,
            pay_deadline_ms: 5,
            ..order(70, "c1")
        });
        batch.push(Order {
            status: OrderStatus::PendingPayment,
            paid_at_ms: None,
            pay_deadline_ms: 9_999,
            ..order(71, "c1")
        });
        store.write_batch(&batch).unwrap();
        let mut want: Vec<(i64, u64)> = batch[..60]
            .iter()
            .map(|o| (o.pay_deadline_ms, o.order_id))
            .collect();
        want.sort_unstable();

        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.overdue_unpaid_page(5_000, after, 7).unwrap();
            assert!(page.len() <= 7);
            seen.extend(page.iter().map(|o| (o.pay_deadline_ms, o.order_id)));
            match page.last() {
                Some(last) if page.len() == 7 => {
                    after = Some((last.pay_deadline_ms, last.order_id))
                }
                _ => break,
            }
        }
        assert_eq!(
            seen, want,
            "every overdue unpaid order once, in (deadline, id) order"
        );
    });
}

#[test]
fn expire_unpaid_is_a_compare_and_set_on_the_version() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let unpaid = Order {
            status: OrderStatus::PendingPayment,
            paid_at_ms: None,
            version: 1,
            ..order(40, "c1")
        };
        store.write_batch(std::slice::from_ref(&unpaid)).unwrap();
        let stale = Order {
            version: 0,
            ..unpaid.clone()
        };
        assert!(
            !store.expire_unpaid(&stale, 77).unwrap(),
            "another version is left alone"
        );
        assert!(store.expire_unpaid(&unpaid, 77).unwrap());
        let expired = store.get(unpaid.order_id).unwrap().unwrap();
        assert_eq!(
            (expired.status, expired.version, expired.updated_at_ms),
            (OrderStatus::Expired, 2, 77)
        );
        assert!(!store.expire_unpaid(&unpaid, 78).unwrap(), "only once");
        // A paid order is never expired, whatever its version.
        let paid = Order {
            status: OrderStatus::Paid,
            version: 3,
            ..order(41, "c1")
        };
        store.write_batch(std::slice::from_ref(&paid)).unwrap();
        assert!(!store.expire_unpaid(&paid, 79).unwrap());
        assert_eq!(store.get(paid.order_id).unwrap(), Some(paid));
    });
}
