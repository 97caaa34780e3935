//! Issue #10 points 4 and 5: a retry is told the truth about its order. A retry with an order
//! token is never given a definitive refusal (sold out, ended) when Redis could not be asked,
//! an expired token still reads back its order, and a purchase sent without a token whose
//! outcome is unknown is answered with the order id and a token that makes the retry the same
//! purchase.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flashgate::auth::OrderTokens;
use flashgate_stock::CampaignKeys;
use flashgate_tests::client::Client;
use flashgate_tests::gateway::on_private_redis;
use flashgate_tests::redis_server::RedisServer;
use flashgate_tests::scenario::{CampaignSpec, ORDER_TOKEN_SECRET};
use http::StatusCode;
use redis::Commands as _;
use serde_json::json;

fn acl(redis: &RedisServer, rule: &str) {
    let mut conn = redis.client().get_connection().unwrap();
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "default", rule])
        .query(&mut conn)
        .unwrap();
}

/// `user` buys with a pre-issued token; returns the token body and the order id.
async fn buy_with_token(c: &Client, user: &str, id: &str) -> (serde_json::Value, String) {
    let issued = c.order_token(user, id).await;
    let body = json!({ "campaign_id": id, "token": issued["token"] });
    let bought = c.purchase(user, body.clone()).await.unwrap();
    assert_eq!(bought.status, StatusCode::ACCEPTED, "{}", bought.body);
    (body, bought.order_id().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_retry_after_sell_out_is_503_not_sold_out_when_redis_cannot_tell() {
    let (redis, _dir, gateway, id) = on_private_redis(CampaignSpec::open("retry-soldout", 1, 1));
    let c = gateway.client();
    let (body, order_id) = buy_with_token(&c, "ada", &id).await;
    let late = c
        .purchase("bob", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(late.code(), "sold_out", "the local mark is set now");

    // Redis refuses to read orders: ada's retry cannot be told "sold out".
    acl(&redis, "-hget");
    let retry = c.purchase("ada", body.clone()).await.unwrap();
    acl(&redis, "+hget");
    assert_eq!(
        retry.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        retry.body
    );
    assert!(retry.headers.contains_key("retry-after"));

    let retry = c.purchase("ada", body).await.unwrap();
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.order_id(), order_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_retry_after_the_end_is_503_not_ended_when_redis_cannot_tell() {
    let end_ms = flashgate::clock::now_ms() + 3_000;
    let (redis, _dir, gateway, id) = on_private_redis(CampaignSpec {
        end: flashgate::clock::rfc3339(end_ms),
        ..CampaignSpec::open("retry-ended", 10, 1)
    });
    let c = gateway.client();
    let (body, order_id) = buy_with_token(&c, "cy", &id).await;
    gateway.clock.advance_to(end_ms + 1);
    let late = c
        .purchase("dee", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(late.code(), "ended");

    acl(&redis, "-hget");
    let retry = c.purchase("cy", body.clone()).await.unwrap();
    acl(&redis, "+hget");
    assert_eq!(
        retry.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        retry.body
    );

    let retry = c.purchase("cy", body).await.unwrap();
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.order_id(), order_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_still_reads_back_its_order_but_buys_nothing_new() {
    let (redis, _dir, gateway, id) = on_private_redis(CampaignSpec::open("retry-expired", 10, 2));
    let c = gateway.client();
    let (_, order_id) = buy_with_token(&c, "eve", &id).await;

    // The same order id, signed for eve, expired an hour ago.
    let tokens = OrderTokens::new(ORDER_TOKEN_SECRET.as_bytes());
    let past = flashgate::clock::now_s() - 3_600;
    let expired = tokens.issue(order_id.parse().unwrap(), past, &id, "eve");
    let retry = c
        .purchase("eve", json!({ "campaign_id": id, "token": expired }))
        .await
        .unwrap();
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.order_id(), order_id);

    // An expired token for an order that does not exist buys nothing.
    let unused = tokens.issue(order_id.parse::<u64>().unwrap() + 16, past, &id, "eve");
    let refused = c
        .purchase("eve", json!({ "campaign_id": id, "token": unused }))
        .await
        .unwrap();
    assert_eq!(refused.code(), "order_token_expired", "{}", refused.body);
    // Nor may another user read eve's order with it.
    let stolen = tokens.issue(order_id.parse().unwrap(), past, &id, "eve");
    let refused = c
        .purchase("mallory", json!({ "campaign_id": id, "token": stolen }))
        .await
        .unwrap();
    assert_eq!(refused.code(), "invalid_order_token", "{}", refused.body);
    let mut conn = redis.client().get_connection().unwrap();
    let left: i64 = conn.get(CampaignKeys::new(&id).stock).unwrap();
    assert_eq!(left, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_outcome_without_a_token_hands_out_the_token_that_resolves_it() {
    let (redis, _dir, gateway, id) = on_private_redis(CampaignSpec::open("retry-unknown", 10, 1));
    let c = gateway.client();

    // Writes (scripts included) wait 1.5 s: longer than the gateway's response timeout.
    redis.pause_writes(1500);
    let first = c
        .purchase("fay", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(
        first.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        first.body
    );
    assert_eq!(first.code(), "outcome_unknown", "{}", first.body);
    let order_id = first.body["error"]["order_id"]
        .as_str()
        .expect("the order id of the purchase")
        .to_owned();
    let token = first.body["error"]["token"]
        .as_str()
        .expect("a token for the retry")
        .to_owned();

    // The retry with that token is the same purchase: the paused script did commit.
    flashgate_tests::eventually(Duration::from_secs(10), "the retry finds the order", || {
        let (c, id, token, order_id) = (c.clone(), id.clone(), token.clone(), order_id.clone());
        async move {
            let r = c
                .purchase("fay", json!({ "campaign_id": id, "token": token }))
                .await
                .unwrap();
            r.status.is_success() && r.order_id() == order_id
        }
    })
    .await;
    let mut admin = redis.client().get_connection().unwrap();
    let left: i64 = admin.get(CampaignKeys::new(&id).stock).unwrap();
    assert_eq!(left, 9, "one unit, once");
}
