//! `lua/rebuild.lua` against a real Redis: a campaign rebuilt from the store's orders has
//! exactly the stock, buyers and deadlines those orders leave, and newer Redis states win.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use flashgate_stock::{
    Order, OrderStatus, Reservation, ReserveOutcome, orders_held, rebuild_campaign,
    remaining_stock, reserve_batch,
};
use redis::AsyncCommands;

fn order(keys: &flashgate_stock::CampaignKeys, id: u64, user: &str, status: OrderStatus) -> Order {
    Order {
        order_id: id,
        campaign_id: keys.campaign_id.clone(),
        sku: "SKU-T".into(),
        user_id: user.into(),
        quantity: 2,
        unit_price_cents: 1999,
        status,
        version: 1,
        created_at_ms: 1_000 + i64::try_from(id).unwrap(),
        pay_deadline_ms: 90_000,
        paid_at_ms: (status == OrderStatus::Paid).then_some(2_000),
        updated_at_ms: 1_000,
    }
}

#[tokio::test]
async fn a_lost_campaign_is_rebuilt_from_its_stored_orders() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "rebuild", 10, 4).await;
    let _: () = conn.del(&keys.all()[..]).await.unwrap();
    let stored = [
        order(&keys, 11, "ann", OrderStatus::PendingPayment),
        order(&keys, 12, "ann", OrderStatus::Paid),
        order(&keys, 13, "ben", OrderStatus::Cancelled),
        order(&keys, 14, "cat", OrderStatus::Expired),
    ];
    let rebuilt = rebuild_campaign(
        &mut conn,
        &scripts,
        &flashgate_stock::CampaignLayout::new(&keys.campaign_id, 1),
        &common::spec(10, 4),
        &stored,
    )
    .await
    .unwrap();
    assert_eq!(rebuilt.restored, 4);
    assert_eq!(rebuilt.orders, 4);
    assert_eq!(
        (rebuilt.stock_total, rebuilt.taken, rebuilt.left),
        (10, 4, 6)
    );
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(6));
    assert_eq!(orders_held(&mut conn, &keys).await.unwrap(), 4);
    let ann: String = conn.hget(&keys.buyers, "ann").await.unwrap();
    assert_eq!(ann, "4|12");
    let ben: String = conn.hget(&keys.buyers, "ben").await.unwrap();
    assert_eq!(ben, "0|13");
    let due: Vec<String> = conn.zrange(&keys.deadlines, 0, -1).await.unwrap();
    assert_eq!(due, ["11"], "only the unpaid order has a deadline");

    // ann's limit of 4 holds; a new buyer gets what is left.
    let replies = reserve_batch(
        &mut conn,
        &scripts,
        &keys,
        5_000,
        &[
            Reservation {
                user_id: "ann",
                order_id: 21,
                quantity: 1,
            },
            Reservation {
                user_id: "dan",
                order_id: 22,
                quantity: 4,
            },
        ],
    )
    .await
    .unwrap();
    assert!(
        matches!(replies[0], ReserveOutcome::LimitReached { .. }),
        "{replies:?}"
    );
    assert!(
        matches!(replies[1], ReserveOutcome::Accepted(_)),
        "{replies:?}"
    );
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(2));
}

#[tokio::test]
async fn a_newer_state_in_redis_is_kept_and_journaled() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "rebuild-newer", 10, 4).await;
    let sold = reserve_batch(
        &mut conn,
        &scripts,
        &keys,
        1_000,
        &[Reservation {
            user_id: "eva",
            order_id: 31,
            quantity: 2,
        }],
    )
    .await
    .unwrap();
    let ReserveOutcome::Accepted(live) = &sold[0] else {
        panic!("{sold:?}")
    };
    // The store has an older version (version 0 never exists; the store lags at version 1 of
    // an order Redis has since cancelled).
    let cancelled =
        flashgate_stock::lifecycle::cancel(&mut conn, &scripts, &keys, 1_500, 31, "eva")
            .await
            .unwrap();
    assert!(matches!(
        cancelled,
        flashgate_stock::Transition::Cancelled(_)
    ));
    let _: () = conn.del(&keys.journal).await.unwrap();
    let rebuilt = rebuild_campaign(
        &mut conn,
        &scripts,
        &flashgate_stock::CampaignLayout::new(&keys.campaign_id, 1),
        &common::spec(10, 4),
        std::slice::from_ref(live),
    )
    .await
    .unwrap();
    assert_eq!((rebuilt.restored, rebuilt.newer_in_redis), (0, 1));
    assert_eq!((rebuilt.taken, rebuilt.left), (0, 10));
    let journaled: bool = conn.sismember(&keys.journal, 31).await.unwrap();
    assert!(journaled, "the store must catch up with the newer state");
}
