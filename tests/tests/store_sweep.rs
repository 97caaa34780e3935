//! The store-side sweep pages through every overdue unpaid order: orders it cannot settle
//! against Redis (Redis no longer knows them) never hide the ones behind them, and are settled
//! from the store's own state; on one Redis (with either store) and on a Redis Cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flashgate_stock::CampaignKeys;
use flashgate_stock::{Order, OrderStatus};
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_kind::{RedisKind, TestRedis};
use flashgate_tests::scenario::{CampaignSpec, Scenario, unique_id};
use flashgate_tests::store_home::{Backend, StoreHome};
use flashgate_tests::{eventually, shared_redis};
use http::StatusCode;
use redis::AsyncCommands;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_redis_does_not_know_never_hide_the_overdue_orders_behind_them() {
    sweep_behind_unknown_orders(TestRedis::start(RedisKind::Single), Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_redis_does_not_know_never_hide_the_overdue_orders_behind_them_on_postgres() {
    sweep_behind_unknown_orders(TestRedis::start(RedisKind::Single), Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_redis_does_not_know_never_hide_the_overdue_orders_behind_them_on_cluster() {
    sweep_behind_unknown_orders(TestRedis::start(RedisKind::Cluster), Backend::Sqlite).await;
}

async fn sweep_behind_unknown_orders(redis: TestRedis, backend: Backend) {
    let home = StoreHome::new(backend);
    let mut campaign = CampaignSpec::open("sweep", 10, 1);
    campaign.pay_timeout = "1s".into();
    let id = campaign.id.clone();
    let mut scenario = home.scenario(vec![campaign]);
    redis.point(&mut scenario);
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();

    // One real order, which the Redis deadline sweep will miss: its deadline group is gone.
    let bought = client
        .purchase("dora", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(bought.status, StatusCode::ACCEPTED, "{}", bought.body);
    let order_id: u64 = bought.order_id().parse().unwrap();
    let mut conn = redis.conn().await;
    let _: () = conn.del(CampaignKeys::new(&id).deadlines).await.unwrap();

    // Ahead of it in deadline order, and in its shard table, 520 unpaid orders Redis does not
    // know: 300 of a campaign Redis never had, 220 of this campaign that Redis lost.
    let ghosts = ghosts_ahead_of(order_id, &id);
    let batch = ghosts.clone();
    assert_eq!(
        in_store(&scenario, move |s| s.write_batch(&batch).unwrap().stored),
        520
    );

    // Within a few passes (every 500 ms here) the real order is expired, in Redis (its unit
    // back on sale) and in the store.
    let s = scenario.clone();
    eventually(
        Duration::from_secs(15),
        "the order behind 520 unknown ones is expired in the store",
        || {
            let s = s.clone();
            async move {
                in_store(&s, move |store| store.get(order_id).unwrap())
                    .is_some_and(|o| o.status == OrderStatus::Expired)
            }
        },
    )
    .await;
    let seen = client
        .get(&format!("/api/v1/orders/{order_id}"), Some("dora"))
        .await;
    assert_eq!(seen.body["status"], "expired", "{}", seen.body);
    let stock: i64 = conn.get(CampaignKeys::new(&id).stock).await.unwrap();
    assert_eq!(stock, 10, "its unit is back on sale");

    // Every order Redis does not know ends expired in the store, one version up.
    let ids: Vec<u64> = ghosts.iter().map(|o| o.order_id).collect();
    let stored = in_store(&scenario, move |store| {
        ids.iter()
            .map(|id| store.get(*id).unwrap().unwrap())
            .collect::<Vec<_>>()
    });
    for (was, now) in ghosts.iter().zip(&stored) {
        assert_eq!(
            (now.status, now.version),
            (OrderStatus::Expired, 2),
            "{}",
            was.order_id
        );
    }
    gateway.stop().unwrap();
}

/// 520 unpaid orders Redis does not know, due before `order_id` and in its shard table: 300 of
/// a campaign Redis never had, 220 of campaign `id` that Redis lost.
fn ghosts_ahead_of(order_id: u64, id: &str) -> Vec<Order> {
    let gene = order_id & 15;
    let ghost_campaign = unique_id("ghost");
    let now = flashgate::clock::now_ms();
    (0..520u64)
        .map(|n| Order {
            order_id: ((n + 1) << 22) | gene,
            campaign_id: if n < 300 {
                ghost_campaign.clone()
            } else {
                id.to_owned()
            },
            sku: "GHOST".into(),
            user_id: format!("ghost-{n}"),
            quantity: 1,
            unit_price_cents: 100,
            status: OrderStatus::PendingPayment,
            version: 1,
            created_at_ms: now - 7_200_000,
            pay_deadline_ms: now - 3_600_000 + n as i64,
            paid_at_ms: None,
            updated_at_ms: now - 7_200_000,
        })
        .collect()
}

/// Runs `f` on the scenario's store, on a thread of its own (the PostgreSQL client runs a
/// runtime of its own, which tokio forbids on a thread that drives async tasks).
fn in_store<T: Send>(
    scenario: &Scenario,
    f: impl FnOnce(&dyn flashgate::store::OrderStore) -> T + Send,
) -> T {
    let config = scenario.config().store;
    std::thread::scope(|s| {
        s.spawn(move || f(flashgate::store::open(&config).unwrap().as_ref()))
            .join()
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_with_malformed_data_in_redis_is_passed_over_not_a_wall() {
    let home = StoreHome::new(Backend::Sqlite);
    let mut campaign = CampaignSpec::open("sweep-corrupt", 10, 1);
    campaign.pay_timeout = "1s".into();
    let id = campaign.id.clone();
    let scenario = home.scenario(vec![campaign]);
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();
    let mut ids = Vec::new();
    for user in ["first", "second"] {
        let bought = client
            .purchase(user, json!({ "campaign_id": id }))
            .await
            .unwrap();
        assert_eq!(bought.status, StatusCode::ACCEPTED, "{}", bought.body);
        ids.push(bought.order_id().parse::<u64>().unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (first, second) = (ids[0], ids[1]);
    let s = scenario.clone();
    eventually(Duration::from_secs(10), "both orders stored", || {
        let s = s.clone();
        async move { in_store(&s, move |store| store.get(second).unwrap()).is_some() }
    })
    .await;
    // The Redis deadline sweep misses both; the first (earlier deadline) has a malformed record.
    let mut redis = shared_redis().await;
    let _: () = redis.del(CampaignKeys::new(&id).deadlines).await.unwrap();
    let _: () = redis
        .hset(CampaignKeys::new(&id).orders, first, "first|garbage")
        .await
        .unwrap();

    let s = scenario.clone();
    eventually(
        Duration::from_secs(15),
        "the order behind a malformed one is expired",
        || {
            let s = s.clone();
            async move {
                in_store(&s, move |store| store.get(second).unwrap())
                    .is_some_and(|o| o.status == OrderStatus::Expired)
            }
        },
    )
    .await;
    let record: String = redis
        .hget(CampaignKeys::new(&id).orders, first)
        .await
        .unwrap();
    assert_eq!(
        record, "first|garbage",
        "the malformed order is left for an operator"
    );
    gateway.stop().unwrap();
}
