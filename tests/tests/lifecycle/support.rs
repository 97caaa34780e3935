//! What the lifecycle scenarios share: buying, reading Redis' records, the campaign's stock.

use std::collections::HashMap;
use std::time::SystemTime;

use flashgate_stock::CampaignKeys;
use flashgate_stock::Order;
use flashgate_tests::client::Client;
use flashgate_tests::redis_kind::TestRedis;
use http::StatusCode;
use redis::AsyncCommands;
use serde_json::json;

/// The unit price every lifecycle campaign sells at, as callbacks must pay it.
pub(crate) const PRICE: i64 = 1999;

pub(crate) async fn buy(c: &Client, user: &str, campaign: &str) -> String {
    let r = c
        .purchase(user, json!({ "campaign_id": campaign }))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    r.order_id().to_owned()
}

/// Every order of `campaign` as Redis holds it.
pub(crate) async fn redis_orders(redis: &TestRedis, campaign: &str) -> HashMap<u64, Order> {
    let mut conn = redis.conn().await;
    let all: HashMap<String, String> = conn
        .hgetall(CampaignKeys::new(campaign).orders)
        .await
        .unwrap();
    all.into_iter()
        .map(|(id, rec)| {
            let id: u64 = id.parse().unwrap();
            (
                id,
                flashgate_stock::record::decode(campaign, id, &rec).unwrap(),
            )
        })
        .collect()
}

pub(crate) async fn remaining(c: &Client, campaign: &str) -> i64 {
    c.get(&format!("/api/v1/campaigns/{campaign}"), None)
        .await
        .body["remaining"]
        .as_i64()
        .unwrap()
}

/// `t` in Unix milliseconds, as the gateway's clock reads.
pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}
