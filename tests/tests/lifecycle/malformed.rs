//! Damaged Redis rows: answered or skipped, never acted on, the rest unharmed.

use std::time::Duration;

use flashgate_stock::CampaignKeys;
use flashgate_stock::OrderStatus;
use flashgate_tests::gateway::selling;
use flashgate_tests::redis_kind::{RedisKind, TestRedis};
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::{eventually, shared_redis};
use http::StatusCode;
use redis::AsyncCommands;

use crate::support::{buy, redis_orders, remaining};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_buyers_row_is_answered_500_and_changes_nothing() {
    let (_dir, _scenario, gateway, id) = selling(CampaignSpec::open("corrupt", 5, 1));
    let c = gateway.client();
    let order_id = buy(&c, "damaged", &id).await;
    let mut conn = shared_redis().await;
    let _: () = conn
        .hset(CampaignKeys::new(&id).buyers, "damaged", "garbage")
        .await
        .unwrap();

    let cancelled = c.cancel("damaged", &order_id).await;
    assert_eq!(
        (cancelled.status, cancelled.code()),
        (StatusCode::INTERNAL_SERVER_ERROR, "order_corrupt"),
        "{}",
        cancelled.body
    );
    let seen = c
        .get(&format!("/api/v1/orders/{order_id}"), Some("damaged"))
        .await;
    assert_eq!(seen.body["status"], "pending_payment", "{}", seen.body);
    assert_eq!(remaining(&c, &id).await, 4, "no unit came back");
    let row: String = conn
        .hget(CampaignKeys::new(&id).buyers, "damaged")
        .await
        .unwrap();
    assert_eq!(row, "garbage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_logs_a_malformed_order_leaves_it_untouched_and_expires_the_others() {
    use flashgate_tests::gateway::Process;
    use flashgate_tests::store_home::{Backend, StoreHome};

    let home = StoreHome::new(Backend::Sqlite);
    let mut campaign = CampaignSpec::open("heldsweep", 5, 1);
    campaign.pay_timeout = "1s".into();
    let id = campaign.id.clone();
    let scenario = home.scenario(vec![campaign]);
    let mut gateway = Process::start(&scenario, home.path());
    let c = gateway.client();
    let damaged = buy(&c, "sweep-damaged", &id).await;
    let healthy = buy(&c, "sweep-healthy", &id).await;
    let mut conn = shared_redis().await;
    let buyers = CampaignKeys::new(&id).buyers;
    let _: () = conn
        .hset(&buyers, "sweep-damaged", "garbage")
        .await
        .unwrap();

    eventually(Duration::from_secs(5), "the healthy order expires", || {
        let (c, path) = (c.clone(), format!("/api/v1/orders/{healthy}"));
        async move { c.get(&path, Some("sweep-healthy")).await.body["status"] == "expired" }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let redis = TestRedis::start(RedisKind::Single);
    let held = redis_orders(&redis, &id).await[&damaged.parse::<u64>().unwrap()].clone();
    assert_eq!(
        (held.status, held.version),
        (OrderStatus::PendingPayment, 1)
    );
    assert_eq!(
        remaining(&c, &id).await,
        4,
        "only the healthy order's unit came back"
    );
    let deadline: Option<f64> = conn
        .zscore(CampaignKeys::new(&id).deadlines, &damaged)
        .await
        .unwrap();
    assert!(
        deadline.is_some(),
        "the malformed order keeps its deadline entry"
    );

    let status = tokio::task::spawn_blocking(move || gateway.terminate())
        .await
        .unwrap();
    assert!(status.success());
    let log = std::fs::read_to_string(home.path().join("gateway.log")).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("malformed data in Redis") && l.contains(&damaged))
        .collect();
    assert_eq!(lines.len(), 1, "logged once, not every sweep: {log}");
}
