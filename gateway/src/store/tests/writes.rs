//! Orders written and read back: every field round-trips, replays store nothing, and only a
//! higher version advances a stored order (in a batch or by compare-and-set).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use flashgate_stock::{Order, OrderStatus};

use super::{STATUSES, order, orders};
use crate::store::test_backends::each_backend;

#[test]
fn insert_then_get_round_trips_every_field() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let batch = orders(0, 20, "c1");
        assert!(batch.iter().any(|o| o.paid_at_ms.is_some()));
        assert!(batch.iter().any(|o| o.paid_at_ms.is_none()));
        for status in STATUSES {
            assert!(
                batch.iter().any(|o| o.status == status),
                "{status} not covered"
            );
        }
        assert_eq!(store.write_batch(&batch).unwrap().stored, batch.len());
        for o in &batch {
            assert_eq!(store.get(o.order_id).unwrap().as_ref(), Some(o));
        }
        assert_eq!(store.get(12_345).unwrap(), None);
        assert_eq!(store.get(u64::MAX).unwrap(), None);
    });
}

#[test]
fn inserting_the_same_batch_twice_stores_each_order_once() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let batch = orders(0, 100, "c1");
        assert_eq!(store.write_batch(&batch).unwrap().stored, 100);
        assert_eq!(store.write_batch(&batch).unwrap().stored, 0);
        // A replay that overlaps: only the new half counts.
        assert_eq!(
            store.write_batch(&orders(50, 150, "c1")).unwrap().stored,
            50
        );
        assert_eq!(store.orders_of_campaign("c1").unwrap().len(), 150);
        assert_eq!(store.count_of_campaign("c1").unwrap(), 150);
    });
}

#[test]
fn replay_does_not_overwrite_a_newer_row() {
    each_backend(|fresh| {
        let store = fresh.open(2).unwrap();
        let original = order(3, "c1");
        store.write_batch(std::slice::from_ref(&original)).unwrap();
        let mut replay = original.clone();
        replay.status = OrderStatus::Expired;
        assert_eq!(store.write_batch(&[replay]).unwrap().stored, 0);
        assert_eq!(store.get(original.order_id).unwrap(), Some(original));
    });
}

#[test]
fn update_if_newer_applies_only_higher_versions() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let mut o = order(0, "c1");
        o.version = 3;
        store.write_batch(std::slice::from_ref(&o)).unwrap();

        let mut paid = o.clone();
        paid.version = 4;
        paid.status = OrderStatus::Paid;
        paid.paid_at_ms = Some(1_700_000_500_000);
        paid.updated_at_ms = 1_700_000_500_001;
        assert!(store.update_if_newer(&paid).unwrap());
        assert_eq!(store.get(o.order_id).unwrap().as_ref(), Some(&paid));

        for version in [4, 2] {
            let mut stale = o.clone();
            stale.version = version;
            stale.status = OrderStatus::Expired;
            assert!(!store.update_if_newer(&stale).unwrap(), "version {version}");
            assert_eq!(store.get(o.order_id).unwrap().as_ref(), Some(&paid));
        }

        // Another order under the id never overwrites it, whatever its version.
        let intruder = Order {
            campaign_id: "c2".into(),
            user_id: "mallory".into(),
            version: 9,
            ..paid.clone()
        };
        assert!(!store.update_if_newer(&intruder).unwrap());
        assert_eq!(store.get(o.order_id).unwrap().as_ref(), Some(&paid));

        let missing = order(1, "c1");
        assert!(!store.update_if_newer(&missing).unwrap());
        assert_eq!(store.get(missing.order_id).unwrap(), None);
    });
}

#[test]
fn a_higher_version_advances_the_row_and_a_lower_one_never_does() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let mut v1 = order(9, "c1");
        v1.version = 1;
        v1.status = OrderStatus::PendingPayment;
        v1.paid_at_ms = None;
        let mut v2 = v1.clone();
        v2.version = 2;
        v2.status = OrderStatus::Paid;
        v2.paid_at_ms = Some(v1.created_at_ms + 5);
        v2.updated_at_ms = v1.created_at_ms + 5;

        assert_eq!(
            store.write_batch(&[v2.clone()]).unwrap().stored,
            1,
            "newer state first"
        );
        assert_eq!(
            store.write_batch(&[v1.clone()]).unwrap().stored,
            0,
            "older state after it"
        );
        assert_eq!(store.get(v1.order_id).unwrap(), Some(v2.clone()));

        // Two states of one order in one batch: the newer wins, whatever their order.
        let mut v3 = v2.clone();
        v3.version = 3;
        v3.status = OrderStatus::RefundRequired;
        assert_eq!(store.write_batch(&[v3.clone(), v2]).unwrap().stored, 1);
        assert_eq!(store.get(v1.order_id).unwrap(), Some(v3));
    });
}

/// Throughput check, not a pass/fail: `cargo test --release -p flashgate --lib
/// store::tests::writes::insert_rate -- --ignored --nocapture` (both backends; batches of 512, one writer).
#[test]
#[ignore = "timing experiment; run by hand with --release"]
fn insert_rate() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let all = orders(0, 200_000, "bench");
        let start = Instant::now();
        let mut new = 0;
        for batch in all.chunks(512) {
            new += store.write_batch(batch).unwrap().stored;
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(new, all.len());
        println!(
            "{}: {new} orders in {secs:.2}s: {:.0} orders/s",
            fresh.name(),
            new as f64 / secs
        );
    });
}
