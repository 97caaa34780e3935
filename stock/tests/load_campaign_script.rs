//! `lua/load_campaign.lua` against a real Redis: loading never resets live stock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use flashgate_stock::{Reservation, ReserveOutcome, load_campaign, remaining_stock, reserve_batch};
use redis::AsyncCommands;

#[tokio::test]
async fn first_load_sets_stock_and_settings() {
    let mut conn = common::connection().await;
    let (scripts, keys) = (
        flashgate_stock::Scripts::new(),
        common::unique_campaign("load"),
    );
    let loaded = load_campaign(&mut conn, &scripts, &keys, &common::spec(50, 2))
        .await
        .unwrap();
    assert!(loaded.created);
    assert_eq!(loaded.stock_total, 50);
    assert_eq!(loaded.remaining, 50);
    let limit: u32 = conn.hget(&keys.meta, "per_user_limit").await.unwrap();
    assert_eq!(limit, 2);
}

#[tokio::test]
async fn reloading_a_live_campaign_keeps_its_stock_but_updates_settings() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "reload", 10, 1).await;
    let sold = reserve_batch(
        &mut conn,
        &scripts,
        &keys,
        1,
        &[Reservation {
            user_id: "u",
            order_id: 1,
            quantity: 1,
        }],
    )
    .await
    .unwrap();
    assert!(matches!(sold[0], ReserveOutcome::Accepted(_)));

    let mut changed = common::spec(10_000, 4);
    changed.unit_price_cents = 2500;
    let loaded = load_campaign(&mut conn, &scripts, &keys, &changed)
        .await
        .unwrap();
    assert!(!loaded.created);
    assert_eq!(loaded.stock_total, 10);
    assert_eq!(loaded.remaining, 9);
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(9));
    let price: i64 = conn.hget(&keys.meta, "unit_price_cents").await.unwrap();
    assert_eq!(price, 2500);
}
