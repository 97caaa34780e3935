//! Shard tables and settings: each order lands in its gene's table and reads touch only
//! that one; the layout survives reopening; bad settings and unstorable orders are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate_stock::Order;

use super::{order, orders};
use crate::store::StoreError;
use crate::store::shards::table_of;
use crate::store::test_backends::each_backend;

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
