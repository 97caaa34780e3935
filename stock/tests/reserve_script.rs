//! `lua/reserve.lua` against a real Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use flashgate_stock::{
    CampaignKeys, OrderStatus, Reservation, ReserveOutcome, Scripts, remaining_stock, reserve_batch,
};
use redis::AsyncCommands;

const NOW: i64 = 1_800_000_000_000;

fn r(user_id: &str, order_id: u64, quantity: u32) -> Reservation<'_> {
    Reservation {
        user_id,
        order_id,
        quantity,
    }
}

async fn one(
    conn: &mut redis::aio::MultiplexedConnection,
    scripts: &Scripts,
    keys: &CampaignKeys,
    res: Reservation<'_>,
) -> ReserveOutcome {
    let mut out = reserve_batch(conn, scripts, keys, NOW, &[res])
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    out.remove(0)
}

#[tokio::test]
async fn accepts_records_journals_and_decrements() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "accept", 5, 3).await;

    let out = one(&mut conn, &scripts, &keys, r("alice", 1001, 2)).await;
    let ReserveOutcome::Accepted(order) = out else {
        panic!("{out:?}")
    };
    assert_eq!(order.order_id, 1001);
    assert_eq!(order.user_id, "alice");
    assert_eq!(order.quantity, 2);
    assert_eq!(order.unit_price_cents, 1999);
    assert_eq!(order.status, OrderStatus::PendingPayment);
    assert_eq!(order.version, 1);
    assert_eq!(order.created_at_ms, NOW);
    assert_eq!(order.pay_deadline_ms, NOW + 60_000);

    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(3));
    let buyer: String = conn.hget(&keys.buyers, "alice").await.unwrap();
    assert_eq!(buyer, "2|1001", "units bought and the latest order");
    let journaled: bool = conn.sismember(&keys.journal, "1001").await.unwrap();
    assert!(journaled);
    let deadline: Option<i64> = conn.zscore(&keys.deadlines, "1001").await.unwrap();
    assert_eq!(deadline, Some(NOW + 60_000));
}

#[tokio::test]
async fn same_order_id_is_replayed_not_sold_twice() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "replay", 5, 3).await;

    let first = one(&mut conn, &scripts, &keys, r("bob", 7, 1)).await;
    let again = one(&mut conn, &scripts, &keys, r("bob", 7, 1)).await;
    let (ReserveOutcome::Accepted(a), ReserveOutcome::Replayed(b)) = (&first, &again) else {
        panic!("{first:?} then {again:?}")
    };
    assert_eq!(a, b);
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(4));

    // Someone else presenting bob's order id gets nothing of his.
    let stolen = one(&mut conn, &scripts, &keys, r("mallory", 7, 1)).await;
    assert_eq!(stolen, ReserveOutcome::Conflict);
}

#[tokio::test]
async fn limit_one_returns_the_original_order_to_a_second_purchase() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "limit1", 5, 1).await;

    let first = one(&mut conn, &scripts, &keys, r("carol", 11, 1)).await;
    let second = one(&mut conn, &scripts, &keys, r("carol", 12, 1)).await;
    let (ReserveOutcome::Accepted(a), ReserveOutcome::Replayed(b)) = (&first, &second) else {
        panic!("{first:?} then {second:?}")
    };
    assert_eq!(b.order_id, 11);
    assert_eq!(a, b);
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(4));
}

#[tokio::test]
async fn higher_limits_refuse_units_beyond_them() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "limit3", 10, 3).await;

    assert!(matches!(
        one(&mut conn, &scripts, &keys, r("dave", 1, 2)).await,
        ReserveOutcome::Accepted(_)
    ));
    assert_eq!(
        one(&mut conn, &scripts, &keys, r("dave", 2, 2)).await,
        ReserveOutcome::LimitReached { bought: 2 }
    );
    assert!(matches!(
        one(&mut conn, &scripts, &keys, r("dave", 3, 1)).await,
        ReserveOutcome::Accepted(_)
    ));
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(7));
}

#[tokio::test]
async fn never_sells_more_than_the_stock() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "soldout", 3, 5).await;

    assert_eq!(
        one(&mut conn, &scripts, &keys, r("erin", 1, 4)).await,
        ReserveOutcome::InsufficientStock { left: 3 }
    );
    assert!(matches!(
        one(&mut conn, &scripts, &keys, r("erin", 2, 3)).await,
        ReserveOutcome::Accepted(_)
    ));
    assert_eq!(
        one(&mut conn, &scripts, &keys, r("frank", 3, 1)).await,
        ReserveOutcome::SoldOut
    );
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(0));
}

#[tokio::test]
async fn a_batch_is_decided_in_order() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "batch", 2, 1).await;
    let batch = [
        r("u1", 1, 1),
        r("u1", 2, 1),
        r("u2", 3, 1),
        r("u3", 4, 1),
        r("u4", 4, 1),
    ];

    let out = reserve_batch(&mut conn, &scripts, &keys, NOW, &batch)
        .await
        .unwrap();
    assert!(matches!(&out[0], ReserveOutcome::Accepted(o) if o.order_id == 1));
    assert!(matches!(&out[1], ReserveOutcome::Replayed(o) if o.order_id == 1));
    assert!(matches!(&out[2], ReserveOutcome::Accepted(o) if o.order_id == 3));
    assert_eq!(out[3], ReserveOutcome::SoldOut);
    assert_eq!(out[4], ReserveOutcome::SoldOut);
}

#[tokio::test]
async fn a_batch_writes_its_effects_once_and_groups_its_deadlines() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "bulk", 10, 3).await;
    let batch = [
        r("a", 1, 1),
        r("b", 2, 2),
        r("a", 3, 2),
        r("a", 4, 1),
        r("c", 5, 1),
    ];

    let out = reserve_batch(&mut conn, &scripts, &keys, NOW, &batch)
        .await
        .unwrap();
    assert!(matches!(&out[0], ReserveOutcome::Accepted(o) if o.order_id == 1));
    assert!(matches!(&out[1], ReserveOutcome::Accepted(o) if o.order_id == 2));
    assert!(matches!(&out[2], ReserveOutcome::Accepted(o) if o.order_id == 3 && o.quantity == 2));
    assert_eq!(out[3], ReserveOutcome::LimitReached { bought: 3 });
    assert!(matches!(&out[4], ReserveOutcome::Accepted(o) if o.order_id == 5));

    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(4));
    let a: String = conn.hget(&keys.buyers, "a").await.unwrap();
    assert_eq!(a, "3|3");
    let b: String = conn.hget(&keys.buyers, "b").await.unwrap();
    assert_eq!(b, "2|2");
    let journal: Vec<u64> = conn.smembers(&keys.journal).await.unwrap();
    assert_eq!(journal.len(), 4);
    let groups: Vec<(String, i64)> = conn
        .zrange_withscores(&keys.deadlines, 0, -1)
        .await
        .unwrap();
    assert_eq!(groups, vec![("1,2,3,5".to_string(), NOW + 60_000)]);

    // The next batch sees what this one wrote.
    let next = reserve_batch(
        &mut conn,
        &scripts,
        &keys,
        NOW + 1,
        &[r("a", 6, 1), r("b", 2, 2)],
    )
    .await
    .unwrap();
    assert_eq!(next[0], ReserveOutcome::LimitReached { bought: 3 });
    assert!(matches!(&next[1], ReserveOutcome::Replayed(o) if o.order_id == 2));
}

#[tokio::test]
async fn bad_arguments_and_unknown_campaigns_change_nothing() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "bad", 2, 1).await;
    assert_eq!(
        one(&mut conn, &scripts, &keys, r("u1", 1, 0)).await,
        ReserveOutcome::BadRequest
    );
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(2));

    let missing = common::unique_campaign("missing");
    let out = reserve_batch(
        &mut conn,
        &scripts,
        &missing,
        NOW,
        &[r("u", 1, 1), r("v", 2, 1)],
    )
    .await
    .unwrap();
    assert_eq!(out, vec![ReserveOutcome::NotLoaded; 2]);
    let exists: bool = conn.exists(&missing.orders).await.unwrap();
    assert!(!exists);
}

#[tokio::test]
async fn a_flushed_script_cache_is_reloaded() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "noscript", 2, 1).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(matches!(
        one(&mut conn, &scripts, &keys, r("u1", 1, 1)).await,
        ReserveOutcome::Accepted(_)
    ));
}
