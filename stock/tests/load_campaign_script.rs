//! `lua/load_campaign.lua` against a real Redis: loading never resets live stock, and only an
//! opening permit creates stock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use flashgate_stock::{
    Reservation, ReserveOutcome, StockError, apply_settings, open_campaign, remaining_stock,
    reserve_batch,
};
use redis::AsyncCommands;

#[tokio::test]
async fn opening_sets_stock_and_settings() {
    let mut conn = common::connection().await;
    let (scripts, keys) = (
        flashgate_stock::Scripts::new(),
        common::unique_campaign("load"),
    );
    let permit = common::permit(&keys);
    let loaded = open_campaign(&mut conn, &scripts, &keys, &common::spec(50, 2), permit)
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
    let loaded = apply_settings(&mut conn, &scripts, &keys, &changed)
        .await
        .unwrap()
        .unwrap();
    assert!(!loaded.created);
    assert_eq!(loaded.stock_total, 10);
    assert_eq!(loaded.remaining, 9);
    // Even a permit does not reset a live campaign's stock.
    let again = open_campaign(&mut conn, &scripts, &keys, &changed, common::permit(&keys))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(9));
    let price: i64 = conn.hget(&keys.meta, "unit_price_cents").await.unwrap();
    assert_eq!(price, 2500);
}

#[tokio::test]
async fn settings_never_bring_a_lost_campaign_back() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "lost", 10, 1).await;
    // Redis loses the campaign.
    let _: () = conn.del(&keys.all()[..]).await.unwrap();

    let applied = apply_settings(&mut conn, &scripts, &keys, &common::spec(10, 1))
        .await
        .unwrap();
    assert_eq!(applied, None);
    for key in keys.all() {
        let exists: bool = conn.exists(key).await.unwrap();
        assert!(
            !exists,
            "{key} was written for a campaign absent from Redis"
        );
    }
}

#[tokio::test]
async fn a_permit_opens_only_its_own_campaign() {
    let mut conn = common::connection().await;
    let scripts = flashgate_stock::Scripts::new();
    let (mine, other) = (
        common::unique_campaign("mine"),
        common::unique_campaign("other"),
    );
    let refused = open_campaign(
        &mut conn,
        &scripts,
        &other,
        &common::spec(10, 1),
        common::permit(&mine),
    )
    .await;
    assert!(matches!(refused, Err(StockError::PermitMismatch { .. })));
    assert_eq!(remaining_stock(&mut conn, &other).await.unwrap(), None);
}
