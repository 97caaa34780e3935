//! Units returned by cancellations and expiries go back to their order's bucket and sell again.

use std::time::Duration;

use flashgate_stock::CampaignLayout;
use flashgate_tests::conservation;
use flashgate_tests::eventually;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_cluster::RedisCluster;
use flashgate_tests::store_home::{Backend, StoreHome};
use http::StatusCode;
use serde_json::json;

use crate::support::{accepted, bucketed, load, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returned_units_go_back_to_their_bucket_and_sell_again() {
    let cluster = RedisCluster::start();
    let home = StoreHome::new(Backend::Sqlite);
    let cancels = bucketed("bkcancel", 8, 4);
    let mut expires = bucketed("bkexpire", 4, 4);
    expires.pay_timeout = "1s".into();
    let (cancel_id, expire_id) = (cancels.id.clone(), expires.id.clone());
    let mut scenario = home.scenario(vec![cancels, expires]);
    scenario.redis_cluster = cluster.urls();
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();
    let mut conn = conservation::connect(&cluster.urls()).await;
    let cancel_layout = CampaignLayout::new(&cancel_id, 4);
    let expire_layout = CampaignLayout::new(&expire_id, 4);

    // Sold out, every buyer's home bucket 1: bucket 1 borrowed all the others' units.
    let buyers: Vec<String> = (0..8).map(|n| user(1, n)).collect();
    let sold = accepted(&load(std::slice::from_ref(&client), &cancel_id, buyers.clone(), 4).await);
    assert_eq!(sold.len(), 8);
    let late = client
        .purchase(&user(2, 99), json!({ "campaign_id": cancel_id }))
        .await
        .unwrap();
    assert_eq!(late.code(), "sold_out", "{}", late.body);

    // A cancellation returns its unit to the order's bucket (1), not to where it came from.
    let (buyer, order) = sold.iter().next().unwrap();
    let cancelled = client.cancel(buyer, order).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let census = conservation::check(&mut conn, &cancel_layout, 8)
        .await
        .unwrap();
    let stocks: Vec<i64> = census.buckets.iter().map(|b| b.stock.unwrap()).collect();
    assert_eq!(stocks, [0, 1, 0, 0], "the unit is back in bucket 1");
    // The campaign re-opens: a buyer of bucket 2 borrows it and buys.
    client
        .eventually_buys(&user(2, 99), &cancel_id, Duration::from_secs(5))
        .await;
    let census = conservation::check(&mut conn, &cancel_layout, 8)
        .await
        .unwrap();
    assert_eq!(census.left(), 0);

    // Expiries: one buyer per bucket, none pays; each unit returns to its own bucket.
    let buyers: Vec<String> = (0..4).map(|b| user(b, 7)).collect();
    let sold = accepted(&load(std::slice::from_ref(&client), &expire_id, buyers, 4).await);
    assert_eq!(sold.len(), 4);
    for order in sold.values() {
        let bucket = order.parse::<u64>().unwrap() & 3;
        assert!(bucket < 4);
    }
    eventually(
        Duration::from_secs(10),
        "every unpaid order expired",
        || {
            let (mut conn, layout) = (conn.clone(), expire_layout.clone());
            async move {
                conservation::check(&mut conn, &layout, 4)
                    .await
                    .is_ok_and(|c| c.buckets.iter().all(|b| b.stock == Some(1)))
            }
        },
    )
    .await;
    for b in 0..4 {
        client
            .eventually_buys(&user(b, 8), &expire_id, Duration::from_secs(5))
            .await;
    }
    let census = conservation::check(&mut conn, &expire_layout, 4)
        .await
        .unwrap();
    assert_eq!(census.left(), 0, "every returned unit sold again");
    gateway.stop().unwrap();
}
