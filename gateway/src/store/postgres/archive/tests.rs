//! The archive against PostgreSQL: a pass moving orders into another database, month by
//! month, and two passes at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate_stock::{Order, OrderStatus};

use super::month::DAY_MS;
use crate::store::test_backends::Fresh;
use crate::store::{OrderStore, PostgresStore, Retirement};

fn url(fresh: &Fresh) -> &str {
    match fresh {
        Fresh::Postgres { url, .. } => url,
        Fresh::Sqlite(_) => unreachable!("a PostgreSQL place"),
    }
}

/// Order `n` of the campaign "old", in table `n % shards` (and of user `u{n % shards}`), in the
/// final `status` (paid when it was created) and created at `created_at_ms`.
fn old_order(n: u64, shards: u64, status: OrderStatus, created_at_ms: i64) -> Order {
    let paid_at_ms = (status == OrderStatus::Paid).then_some(created_at_ms);
    Order {
        order_id: (n + 1) << 8 | (n % shards),
        campaign_id: "old".into(),
        sku: "sku".into(),
        user_id: format!("u{}", n % shards),
        quantity: 1,
        unit_price_cents: 100,
        status,
        version: 2,
        created_at_ms,
        pay_deadline_ms: created_at_ms + 1,
        paid_at_ms,
        updated_at_ms: created_at_ms,
    }
}

/// Runs a whole archive pass of `store`, `limit` rows a step; returns the orders it moved.
fn pass(store: &PostgresStore, limit: usize) -> usize {
    let mut moved = 0;
    for shard in 0..store.shards() {
        let mut after = None;
        loop {
            let step = store.archive_step(shard, after, i64::MAX, limit).unwrap();
            moved += step.moved;
            let Some(next) = step.next else { break };
            after = Some(next);
        }
    }
    moved
}

/// The archive's partitions in the database of `fresh`, by name.
fn partitions(fresh: &Fresh) -> Vec<String> {
    let mut client = postgres::Client::connect(url(fresh), postgres::NoTls).unwrap();
    let names: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'flashgate_archive' AND c.relkind = 'r' \
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    names
}

#[test]
fn an_archive_in_another_database_gets_a_partition_per_month_and_is_read_through() {
    let (hot, cold) = (Fresh::postgres(), Fresh::postgres());
    let store = PostgresStore::open_with_archive(url(&hot), Some(url(&cold)), 1).unwrap();
    // 2024-01-31T23:59:59.999Z and the next millisecond: two months, two partitions.
    let january_end = 1_706_745_599_999;
    let orders: Vec<Order> = (0..20u64)
        .map(|n| {
            let created_at_ms = january_end + i64::try_from(n / 2 % 2).unwrap();
            old_order(n, 2, OrderStatus::Paid, created_at_ms)
        })
        .collect();
    store.write_batch(&orders).unwrap();
    let retired = Retirement {
        stock_total: 20,
        remaining: 0,
        retired_at_ms: january_end,
    };
    store.retire_campaign("old", &retired).unwrap();
    assert_eq!(pass(&store, 4), 20);
    let counts = store.row_counts().unwrap();
    assert_eq!((counts.hot, counts.archived), (0, 20));
    assert_eq!(
        cold.archived_in("orders_00") + cold.archived_in("orders_01"),
        20
    );
    assert_eq!(hot.count("orders_00") + hot.count("orders_01"), 0);
    assert_eq!(
        partitions(&cold),
        [
            "orders_00_202401",
            "orders_00_202402",
            "orders_01_202401",
            "orders_01_202402"
        ]
    );
    assert!(partitions(&hot).is_empty());
    for o in &orders {
        assert_eq!(store.get(o.order_id).unwrap().as_ref(), Some(o));
    }
    assert_eq!(store.orders_of_user("u1", 1, None, 100).unwrap().len(), 10);
    assert_eq!(store.orders_of_campaign("old").unwrap().len(), 20);
    let shown = format!("{store:?}");
    assert!(shown.contains("archive_dbname"), "{shown}");
    // Reopening finds the archive current and its months still there.
    drop(store);
    let store = PostgresStore::open_with_archive(url(&hot), Some(url(&cold)), 1).unwrap();
    assert_eq!(store.row_counts().unwrap().archived, 20);
    // Another shard layout must not share the archive.
    drop(store);
    let other = Fresh::postgres();
    assert!(PostgresStore::open_with_archive(url(&other), Some(url(&cold)), 2).is_err());
}

#[test]
fn two_gateways_passing_at_once_move_each_order_once() {
    let fresh = Fresh::postgres();
    let stores = [(); 2].map(|()| PostgresStore::open(url(&fresh), 2).unwrap());
    // Four months of orders, so both passes meet partitions to create.
    let orders: Vec<Order> = (0..400u64)
        .map(|n| {
            let created_at_ms = i64::try_from(n % 4).unwrap() * 31 * DAY_MS;
            old_order(n, 4, OrderStatus::Cancelled, created_at_ms)
        })
        .collect();
    stores[0].write_batch(&orders).unwrap();
    let retired = Retirement {
        stock_total: 400,
        remaining: 0,
        retired_at_ms: 0,
    };
    stores[0].retire_campaign("old", &retired).unwrap();
    let moved: usize = std::thread::scope(|s| {
        let passes: Vec<_> = stores
            .iter()
            .map(|store| s.spawn(move || pass(store, 8)))
            .collect();
        passes.into_iter().map(|p| p.join().unwrap()).sum()
    });
    assert_eq!(moved, 400);
    let counts = stores[1].row_counts().unwrap();
    assert_eq!((counts.hot, counts.archived), (0, 400));
    for o in &orders {
        assert_eq!(stores[1].get(o.order_id).unwrap().as_ref(), Some(o));
    }
}
