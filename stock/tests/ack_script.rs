//! `lua/ack.lua` and the journal reads, against a real Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use flashgate_stock::{Reservation, journal, reserve_batch};
use redis::Commands;

#[tokio::test]
async fn journal_lists_due_orders_and_ack_drops_only_current_versions() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "ack", 10, 5).await;
    for (order_id, now) in [(1u64, 1000i64), (2, 2000), (3, 3000)] {
        let batch = [Reservation {
            user_id: "u",
            order_id,
            quantity: 1,
        }];
        reserve_batch(&mut conn, &scripts, &keys, now, &batch)
            .await
            .unwrap();
    }
    let mut sync = common::sync_connection();

    let (cursor, mut ids) = journal::scan(&mut sync, &keys, 0, 100).unwrap();
    ids.sort_unstable();
    assert_eq!((cursor, ids), (0, vec![1, 2, 3]));
    let _: () = sync.hset(&keys.orders, "77", "garbage").unwrap();
    let read = journal::orders(&mut sync, &keys, &[1, 2, 99, 77]).unwrap();
    assert_eq!(read.orders.len(), 2);
    assert_eq!(read.orders[1].created_at_ms, 2000);
    assert_eq!(read.gone, vec![99]);
    assert_eq!(read.unreadable.len(), 1);
    assert_eq!(read.unreadable[0].0, 77);

    // Version 1 is current for order 1; a stale version 0 for order 2 must not drop it.
    let dropped = journal::ack(&mut sync, &scripts, &keys, &[(1, 1), (2, 0)]).unwrap();
    assert_eq!(dropped, 1);
    let (_, mut left) = journal::scan(&mut sync, &keys, 0, 100).unwrap();
    left.sort_unstable();
    assert_eq!(left, vec![2, 3]);
    assert_eq!(journal::backlog(&mut sync, &keys).unwrap(), 2);

    // An order whose record is gone cannot be persisted any more: its entry is dropped too.
    let _: () = sync.hdel(&keys.orders, "3").unwrap();
    assert_eq!(
        journal::ack(&mut sync, &scripts, &keys, &[(3, 1)]).unwrap(),
        1
    );
}

#[tokio::test]
async fn acks_larger_than_one_script_call_are_split() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "bigack", 5_000, 1).await;
    let users: Vec<String> = (0..2_500).map(|n| format!("u{n}")).collect();
    let batch: Vec<Reservation<'_>> = users
        .iter()
        .enumerate()
        .map(|(n, user_id)| Reservation {
            user_id,
            order_id: n as u64 + 1,
            quantity: 1,
        })
        .collect();
    for chunk in batch.chunks(64) {
        reserve_batch(&mut conn, &scripts, &keys, 1, chunk)
            .await
            .unwrap();
    }
    let mut sync = common::sync_connection();
    assert_eq!(journal::backlog(&mut sync, &keys).unwrap(), 2_500);
    let written: Vec<(u64, u32)> = (1..=2_500).map(|id| (id, 1)).collect();
    assert_eq!(
        journal::ack(&mut sync, &scripts, &keys, &written).unwrap(),
        2_500
    );
    assert_eq!(journal::backlog(&mut sync, &keys).unwrap(), 0);
}
