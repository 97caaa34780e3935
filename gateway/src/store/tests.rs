#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use flashgate_stock::{Order, OrderStatus};

use super::StoreError;
use super::shards::table_of;
use super::test_backends::each_backend;

const STATUSES: [OrderStatus; 5] = [
    OrderStatus::PendingPayment,
    OrderStatus::Paid,
    OrderStatus::Cancelled,
    OrderStatus::Expired,
    OrderStatus::RefundRequired,
];

/// An order whose every field depends on `n`, so a mixed-up column shows up as a mismatch.
fn order(n: u64, campaign: &str) -> Order {
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

fn orders(from: u64, to: u64, campaign: &str) -> Vec<Order> {
    (from..to).map(|n| order(n, campaign)).collect()
}

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
fn orders_land_in_the_table_of_their_gene() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        // Genes 0..16 with counts 1, 2, …, 16 so a wrong routing changes some count.
        let batch: Vec<Order> = (0..16u64)
            .flat_map(|gene| {
                (0..=gene).map(move |k| Order {
                    order_id: (k << 8) | (gene << 4) | gene,
                    user_id: format!("user-of-gene-{gene}"),
                    ..order(gene, "c1")
                })
            })
            .collect();
        assert_eq!(store.write_batch(&batch).unwrap().stored, 136);
        for gene in 0..16u64 {
            let table = table_of(gene, 4);
            assert_eq!(table, format!("orders_{gene:02}"));
            assert_eq!(fresh.count(table), gene as i64 + 1, "{table}");
            // All of a user's orders come from their one table.
            let mine = store
                .orders_of_user(&format!("user-of-gene-{gene}"), gene as u8, None, 100)
                .unwrap();
            assert_eq!(mine.len(), gene as usize + 1);
        }
        assert_eq!(table_of(0xABCD, 4), "orders_13");
    });
}

#[test]
fn shard_bits_zero_uses_one_table() {
    each_backend(|fresh| {
        let store = fresh.open(0).unwrap();
        let batch = orders(0, 40, "c1");
        assert_eq!(store.write_batch(&batch).unwrap().stored, 40);
        assert!(batch.iter().all(|o| table_of(o.order_id, 0) == "orders_00"));
        assert_eq!(fresh.count("orders_00"), 40);
        assert_eq!(fresh.order_tables(), 1);
        assert_eq!(
            store.get(batch[7].order_id).unwrap().as_ref(),
            Some(&batch[7])
        );
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
fn reopening_keeps_the_data_and_the_shard_layout() {
    each_backend(|fresh| {
        let batch = orders(0, 30, "c1");
        {
            let store = fresh.open(3).unwrap();
            store.write_batch(&batch).unwrap();
        }
        let store = fresh.open(3).unwrap();
        for o in &batch {
            assert_eq!(store.get(o.order_id).unwrap().as_ref(), Some(o));
        }
        assert_eq!(store.write_batch(&batch).unwrap().stored, 0);
        drop(store);
        let err = fresh.open(4).unwrap_err();
        assert!(matches!(err, StoreError::Misconfigured(_)), "{err:?}");
    });
}

#[test]
fn orders_of_campaign_filters_by_campaign() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let a = orders(0, 25, "spring");
        let b = orders(100, 110, "autumn");
        store.write_batch(&a).unwrap();
        store.write_batch(&b).unwrap();
        let mut got = store.orders_of_campaign("autumn").unwrap();
        got.sort_by_key(|o| o.order_id);
        let mut want = b.clone();
        want.sort_by_key(|o| o.order_id);
        assert_eq!(got, want);
        assert_eq!(store.orders_of_campaign("spring").unwrap().len(), 25);
        assert!(store.orders_of_campaign("winter").unwrap().is_empty());
    });
}

#[test]
fn rejects_bad_settings_and_unstorable_orders() {
    each_backend(|fresh| {
        let err = fresh.open(5).unwrap_err();
        assert!(matches!(err, StoreError::Misconfigured(_)), "{err:?}");

        let store = fresh.open(4).unwrap();
        store.ping().unwrap();
        let good = order(1, "c1");
        let bad = Order {
            order_id: 1 << 63,
            ..order(2, "c1")
        };
        let err = store.write_batch(&[good.clone(), bad]).unwrap_err();
        assert!(matches!(err, StoreError::InvalidOrder { order_id, .. } if order_id == 1 << 63));
        assert!(!err.is_transient());
        // All-or-nothing: the good order of the refused batch was not written either.
        assert_eq!(store.get(good.order_id).unwrap(), None);
    });
}

#[test]
fn a_damaged_row_is_reported_as_corrupt() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let o = order(5, "c1");
        store.write_batch(std::slice::from_ref(&o)).unwrap();
        fresh.execute(&format!(
            "UPDATE {} SET status = 'lost'",
            table_of(o.order_id, 4)
        ));
        let err = store.get(o.order_id).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { order_id, .. } if order_id == o.order_id));
        assert!(!err.is_transient());
        assert!(store.orders_of_campaign("c1").is_err());
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

/// Throughput check, not a pass/fail: `cargo test --release -p flashgate --lib store::tests::
/// insert_rate -- --ignored --nocapture` (both backends; batches of 512, one writer).
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

/// Throughput check, not a pass/fail, of many short concurrent reads (what the read handlers
/// do on blocking threads): 8 threads each look up 20,000 stored orders by id, sharing the
/// store (for PostgreSQL, its connection pool). `cargo test --release -p flashgate --lib
/// store::tests::read_rate -- --ignored --nocapture` (both backends).
#[test]
#[ignore = "timing experiment; run by hand with --release"]
fn read_rate() {
    const THREADS: u64 = 8;
    const GETS: u64 = 20_000;
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let all = orders(0, 10_000, "bench");
        for batch in all.chunks(512) {
            store.write_batch(batch).unwrap();
        }
        let all = &all;
        let store = &store;
        let start = Instant::now();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                s.spawn(move || {
                    for i in 0..GETS {
                        let want = &all[((t * GETS + i * 7) % all.len() as u64) as usize];
                        let got = store.get(want.order_id).unwrap();
                        assert_eq!(got.as_ref(), Some(want));
                    }
                });
            }
        });
        let secs = start.elapsed().as_secs_f64();
        let gets = THREADS * GETS;
        println!(
            "{}: {gets} gets on {THREADS} threads in {secs:.2}s: {:.0} gets/s",
            fresh.name(),
            gets as f64 / secs
        );
    });
}

/// A lookup by id and a user's listing each read exactly one shard table: decoy rows planted
/// behind the store's back in every other table would show up (or clash) if either read more.
#[test]
fn a_lookup_and_a_users_listing_read_only_their_shard_table() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let gene = 5u64;
        let mine: Vec<Order> = (0..3u64)
            .map(|k| Order {
                order_id: (k << 8) | (1 << 20) | gene,
                user_id: "alice".into(),
                ..order(k, "c1")
            })
            .collect();
        store.write_batch(&mine).unwrap();
        // The same order id, and more orders of the same user, in each of the 15 other tables.
        for other in (0..16u64).filter(|g| *g != gene) {
            fresh.execute(&format!(
                "INSERT INTO {table} (order_id, campaign_id, sku, user_id, quantity, \
                 unit_price_cents, amount_cents, status, version, created_at, pay_deadline, \
                 paid_at, updated_at) VALUES ({id}, 'decoy', 's', 'alice', 1, 1, 1, \
                 'pending_payment', 1, 0, 0, NULL, 0), ({id2}, 'decoy', 's', 'alice', 1, 1, 1, \
                 'pending_payment', 1, 0, 0, NULL, 0)",
                table = table_of(other, 4),
                id = mine[0].order_id,
                id2 = mine[0].order_id + 16,
            ));
        }
        assert_eq!(
            store.get(mine[0].order_id).unwrap().as_ref(),
            Some(&mine[0])
        );
        let listed = store
            .orders_of_user("alice", gene as u8, None, 100)
            .unwrap();
        assert_eq!(listed.len(), 3, "only the user's own table is read");
        assert!(listed.iter().all(|o| o.campaign_id == "c1"));
    });
}

/// Another order under a stored order's id is reported as a collision, per order: neither
/// written over the stored one nor taken for its replay, and the rest of the batch is stored.
#[test]
fn an_order_under_another_orders_id_is_reported_not_written() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let mut held = order(0, "c1");
        held.status = OrderStatus::PendingPayment;
        held.paid_at_ms = None;
        held.version = 1;
        store.write_batch(std::slice::from_ref(&held)).unwrap();

        // Same id, another campaign and user; and a higher version, which must not help it.
        let intruder = Order {
            campaign_id: "c2".into(),
            user_id: "mallory".into(),
            version: 5,
            ..held.clone()
        };
        let mut paid = held.clone();
        paid.version = 2;
        paid.status = OrderStatus::Paid;
        paid.paid_at_ms = Some(held.created_at_ms + 10);
        let fresh_order = order(21, "c1");
        let written = store
            .write_batch(&[intruder.clone(), fresh_order.clone(), paid.clone()])
            .unwrap();
        assert_eq!(
            written.stored, 2,
            "the new order and the newer state of the held one"
        );
        assert_eq!(written.collisions.len(), 1, "{written:?}");
        let collision = &written.collisions[0];
        assert_eq!(collision.index, 0);
        assert_eq!(collision.order_id, held.order_id);
        assert_eq!(
            (collision.campaign_id.as_str(), collision.user_id.as_str()),
            ("c1", "user-0")
        );
        assert!(
            collision.reason().contains("campaign c1 user user-0"),
            "{}",
            collision.reason()
        );
        assert_eq!(store.get(held.order_id).unwrap(), Some(paid.clone()));
        assert_eq!(store.get(fresh_order.order_id).unwrap(), Some(fresh_order));

        // Any identifying field differing is another order; a replay of the same one is not.
        for other in [
            Order {
                sku: "other-sku".into(),
                ..paid.clone()
            },
            Order {
                quantity: paid.quantity + 1,
                ..paid.clone()
            },
            Order {
                unit_price_cents: 1,
                ..paid.clone()
            },
            Order {
                created_at_ms: paid.created_at_ms - 1,
                ..paid.clone()
            },
        ] {
            let written = store.write_batch(&[other]).unwrap();
            assert_eq!((written.stored, written.collisions.len()), (0, 1));
        }
        let replay = store.write_batch(std::slice::from_ref(&paid)).unwrap();
        assert_eq!((replay.stored, replay.collisions.len()), (0, 0));

        // Two orders under one new id in one batch: one is stored, the other collides with it.
        let first = order(33, "c1");
        let second = Order {
            campaign_id: "c3".into(),
            user_id: "eve".into(),
            ..first.clone()
        };
        let written = store.write_batch(&[first.clone(), second]).unwrap();
        assert_eq!(
            (written.stored, written.collisions.len()),
            (1, 1),
            "{written:?}"
        );
        assert_eq!(
            store.count_of_campaign("c1").unwrap() + store.count_of_campaign("c3").unwrap(),
            3
        );
        assert_eq!(store.count_of_campaign("c2").unwrap(), 0);
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
