//! Many buyers at once: never oversold, never over a user's limit, every 202 persisted once;
//! on one Redis (with either store) and on a Redis Cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};

use flashgate_stock::CampaignKeys;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_kind::{RedisKind, TestRedis};
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::store_home::{Backend, stored};
use http::StatusCode;
use redis::AsyncCommands;
use serde_json::json;

/// Fires `attempts` purchases by `users` distinct users at once; returns (user, quantity, reply).
async fn burst(
    gateway: &InProcess,
    campaign: &str,
    users: usize,
    attempts: usize,
    quantity: impl Fn(usize) -> u32,
) -> Vec<(String, u32, flashgate_tests::client::Reply)> {
    let client = gateway.client();
    let tasks: Vec<_> = (0..attempts)
        .map(|i| {
            let client = client.clone();
            let user = format!("user-{}", i % users);
            let q = quantity(i);
            let body = json!({ "campaign_id": campaign, "quantity": q });
            tokio::spawn(async move {
                let reply = client.purchase(&user, body).await.unwrap();
                (user, q, reply)
            })
        })
        .collect();
    let mut replies = Vec::with_capacity(attempts);
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    replies
}

async fn redis_stock(redis: &TestRedis, campaign: &str) -> i64 {
    let mut conn = redis.conn().await;
    conn.get(CampaignKeys::new(campaign).stock).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_attempts_on_a_hundred_units_limit_one() {
    limit_one(TestRedis::start(RedisKind::Single), Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_attempts_on_a_hundred_units_limit_one_on_postgres() {
    limit_one(TestRedis::start(RedisKind::Single), Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_attempts_on_a_hundred_units_limit_one_on_cluster() {
    limit_one(TestRedis::start(RedisKind::Cluster), Backend::Sqlite).await;
}

async fn limit_one(redis: TestRedis, backend: Backend) {
    let (_home, scenario, gateway, id) =
        redis.selling_on(backend, CampaignSpec::open("conc1", 100, 1));

    let replies = burst(&gateway, &id, 1000, 2000, |_| 1).await;

    let accepted: Vec<_> = replies
        .iter()
        .filter(|(_, _, r)| r.status == StatusCode::ACCEPTED)
        .collect();
    assert_eq!(accepted.len(), 100, "exactly the stock is accepted");
    for (_, _, r) in &replies {
        assert!(
            matches!(r.status.as_u16(), 200 | 202 | 409),
            "unexpected answer {} {}",
            r.status,
            r.body
        );
    }
    let accepted_ids: HashSet<&str> = accepted.iter().map(|(_, _, r)| r.order_id()).collect();
    assert_eq!(accepted_ids.len(), 100, "order ids are unique");
    let mut per_user: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (user, _, r) in replies.iter().filter(|(_, _, r)| r.status.is_success()) {
        per_user.entry(user).or_default().insert(r.order_id());
    }
    assert!(
        per_user.values().all(|ids| ids.len() == 1),
        "no user holds two orders"
    );
    assert_eq!(redis_stock(&redis, &id).await, 0);

    gateway.stop().unwrap();
    let stored = stored(&scenario, &id);
    assert_eq!(stored.len(), 100, "every accepted order is in the store");
    let stored_ids: HashSet<String> = stored.iter().map(|o| o.order_id.to_string()).collect();
    let accepted_ids: HashSet<String> = accepted_ids.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(stored_ids, accepted_ids);
    let mut users = HashSet::new();
    assert!(
        stored.iter().all(|o| users.insert(o.user_id.clone())),
        "one row per user"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_three_with_mixed_quantities_sells_exactly_the_stock() {
    limit_three(TestRedis::start(RedisKind::Single), Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_three_with_mixed_quantities_sells_exactly_the_stock_on_postgres() {
    limit_three(TestRedis::start(RedisKind::Single), Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_three_with_mixed_quantities_sells_exactly_the_stock_on_cluster() {
    limit_three(TestRedis::start(RedisKind::Cluster), Backend::Sqlite).await;
}

async fn limit_three(redis: TestRedis, backend: Backend) {
    let (_home, scenario, gateway, id) =
        redis.selling_on(backend, CampaignSpec::open("conc3", 100, 3));

    let replies = burst(&gateway, &id, 1000, 2000, |i| 1 + (i % 3) as u32).await;

    let accepted_units: u32 = replies
        .iter()
        .filter(|(_, _, r)| r.status == StatusCode::ACCEPTED)
        .map(|(_, q, _)| q)
        .sum();
    assert_eq!(accepted_units, 100, "units accepted == stock");
    for (_, _, r) in &replies {
        assert!(
            r.status == StatusCode::ACCEPTED || r.status == StatusCode::CONFLICT,
            "unexpected answer {} {}",
            r.status,
            r.body
        );
    }
    assert_eq!(redis_stock(&redis, &id).await, 0);

    gateway.stop().unwrap();
    let stored = stored(&scenario, &id);
    let stored_units: u32 = stored.iter().map(|o| o.quantity).sum();
    assert_eq!(stored_units, 100);
    let mut per_user: HashMap<&str, u32> = HashMap::new();
    for o in &stored {
        *per_user.entry(&o.user_id).or_default() += o.quantity;
    }
    assert!(
        per_user.values().all(|&units| units <= 3),
        "no user above 3: {per_user:?}"
    );
}
