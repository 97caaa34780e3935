//! Not paying: deadlines pass, sweepers expire orders once and their units sell again.

use std::time::{Duration, Instant};

use flashgate_stock::CampaignKeys;
use flashgate_stock::OrderStatus;
use flashgate_tests::eventually;
use flashgate_tests::gateway::{InProcess, stored_orders};
use flashgate_tests::redis_kind::TestRedis;
use flashgate_tests::scenario::CampaignSpec;
use redis::AsyncCommands;
use serde_json::json;

use crate::support::{buy, redis_orders, remaining, unix_ms};

pub(crate) async fn an_unpaid_order_expires_within_a_second_and_its_unit_sells_again(
    redis: TestRedis,
) {
    let mut campaign = CampaignSpec::open("expire", 1, 1);
    campaign.pay_timeout = "1s".into();
    let (_dir, _scenario, gateway, id) = redis.selling(campaign);
    let c = gateway.client();

    let r = c
        .purchase("slow", json!({ "campaign_id": id }))
        .await
        .unwrap();
    let order_id = r.order_id().to_owned();
    let deadline =
        unix_ms(humantime::parse_rfc3339(r.body["pay_before"].as_str().unwrap()).unwrap());
    let late = c
        .purchase("eager", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(late.code(), "sold_out");

    // The deadline comes at once on the gateway's clock: no waiting for it.
    gateway.clock.advance_to(deadline);
    let path = format!("/api/v1/orders/{order_id}");
    eventually(Duration::from_secs(5), "the order expires", || {
        let (c, path) = (c.clone(), path.clone());
        async move { c.get(&path, Some("slow")).await.body["status"] == "expired" }
    })
    .await;
    let overdue = gateway.clock.now_ms() - deadline;
    assert!(overdue < 1_000, "expired {overdue} ms after its deadline");
    assert_eq!(remaining(&c, &id).await, 1, "the unit is back on sale");

    // Every gateway's sold-out mark clears within a second; the unit sells to someone else.
    let started = Instant::now();
    c.eventually_buys("eager", &id, Duration::from_secs(2))
        .await;
    assert!(started.elapsed() < Duration::from_secs(1));
}

pub(crate) async fn the_store_side_sweep_settles_an_order_the_deadline_sweep_missed(
    redis: TestRedis,
) {
    let mut campaign = CampaignSpec::open("missed", 1, 1);
    campaign.pay_timeout = "1s".into();
    let (_dir, scenario, gateway, id) = redis.selling(campaign);
    let c = gateway.client();
    let order_id = buy(&c, "forgotten", &id).await;

    // Redis loses track of the deadline: the deadline sweep can no longer find the order.
    let mut conn = redis.conn().await;
    let removed: u64 = conn
        .zrem(CampaignKeys::new(&id).deadlines, &order_id)
        .await
        .unwrap();
    assert_eq!(removed, 1);

    let path = format!("/api/v1/orders/{order_id}");
    eventually(
        Duration::from_secs(10),
        "the store-side sweep expires it",
        || {
            let (c, path) = (c.clone(), path.clone());
            async move { c.get(&path, Some("forgotten")).await.body["status"] == "expired" }
        },
    )
    .await;
    assert_eq!(remaining(&c, &id).await, 1, "its unit is back on sale");

    gateway.stop().unwrap();
    let stored = stored_orders(&scenario.store_path, &id);
    assert_eq!(stored[0].status, OrderStatus::Expired);
}

pub(crate) async fn two_gateways_sweeping_expire_every_order_once_and_both_sell_again(
    redis: TestRedis,
) {
    const UNITS: usize = 200;
    let mut campaign = CampaignSpec::open("twosweep", UNITS as u64, 1);
    campaign.pay_timeout = "1s".into();
    let id = campaign.id.clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a =
        InProcess::start(&redis.scenario(dir_a.path().join("orders.db"), vec![campaign.clone()]));
    let b_scenario = redis.scenario(dir_b.path().join("orders.db"), vec![campaign]);
    let b = InProcess::start(&b_scenario);
    let (ca, cb) = (a.client(), b.client());

    // Both gateways sell; together they sell out, and both know it.
    let buys: Vec<_> = (0..UNITS)
        .map(|n| {
            let c = if n % 2 == 0 { ca.clone() } else { cb.clone() };
            let id = id.clone();
            tokio::spawn(async move { buy(&c, &format!("two-{n}"), &id).await })
        })
        .collect();
    for b in buys {
        b.await.unwrap();
    }
    for c in [&ca, &cb] {
        let r = c
            .purchase("latecomer", json!({ "campaign_id": id }))
            .await
            .unwrap();
        assert_eq!(r.code(), "sold_out");
    }

    // Nobody pays: both sweepers run; every order expires exactly once.
    let redis = &redis;
    eventually(Duration::from_secs(6), "every order expired", || {
        let id = id.clone();
        async move {
            redis_orders(redis, &id)
                .await
                .values()
                .all(|o| o.status == OrderStatus::Expired)
        }
    })
    .await;
    let orders = redis_orders(redis, &id).await;
    assert_eq!(orders.len(), UNITS);
    assert!(orders.values().all(|o| o.version == 2), "expired once each");
    assert_eq!(
        remaining(&ca, &id).await,
        UNITS as i64,
        "each unit returned once, never twice"
    );

    // Both gateways' sold-out marks clear: each sells again within a second.
    for (c, user) in [(&ca, "after-a"), (&cb, "after-b")] {
        let started = Instant::now();
        c.eventually_buys(user, &id, Duration::from_secs(2)).await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
