//! Redis down: purchases answer 503 and record nothing; Redis back: sales resume by themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flashgate_stock::CampaignKeys;
use flashgate_tests::eventually;
use flashgate_tests::gateway::{InProcess, on_private_redis};
use flashgate_tests::redis_server::RedisServer;
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use http::StatusCode;
use redis::Commands;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_fail_cleanly_while_redis_is_down_and_resume_after() {
    let (mut redis, _dir, gateway, id) = on_private_redis(CampaignSpec::open("outage", 50, 1));
    let c = gateway.client();

    let before = c
        .purchase("before", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(before.status, StatusCode::ACCEPTED);

    redis.stop();
    for n in 0..5 {
        let r = c
            .purchase(&format!("during-{n}"), json!({ "campaign_id": id }))
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        // Either Redis was known unreachable, or the call failed in flight and the read-back
        // could not reach Redis either; both promise nothing, and nothing must be recorded.
        assert!(
            matches!(r.code(), "redis_unavailable" | "outcome_unknown"),
            "{}",
            r.body
        );
        assert!(r.headers.contains_key("retry-after"));
    }
    let ready = c.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["redis"], "down");

    redis.restart();
    c.eventually_buys("after", &id, Duration::from_secs(10))
        .await;

    // Nothing was recorded for the purchases answered 503.
    let mut conn = redis.client().get_connection().unwrap();
    let stock: i64 = conn.get(CampaignKeys::new(&id).stock).unwrap();
    assert_eq!(stock, 48, "only `before` and `after` took stock");
    let buyers: Vec<String> = conn.hkeys(CampaignKeys::new(&id).buyers).unwrap();
    assert!(
        buyers.iter().all(|b| !b.starts_with("during")),
        "{buyers:?}"
    );
    assert_eq!(buyers.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_times_out_but_commits_is_never_called_unrecorded() {
    let (redis, _dir, gateway, id) = on_private_redis(CampaignSpec::open("paused", 10, 1));
    let c = gateway.client();
    let issued = c.order_token("pia", &id).await;
    let body = json!({ "campaign_id": id, "token": issued["token"] });
    let order_id = issued["order_id"].as_str().unwrap().to_owned();

    // Writes (scripts included) wait 1.5 s: longer than the gateway's 500 ms response timeout.
    redis.pause_writes(1500);
    let first = c.purchase("pia", body.clone()).await.unwrap();
    assert_eq!(
        first.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        first.body
    );
    assert_eq!(
        first.code(),
        "outcome_unknown",
        "it may have committed: {}",
        first.body
    );

    // The paused script does run; the retry with the same token learns the outcome.
    eventually(Duration::from_secs(10), "the retry finds the order", || {
        let (c, body, order_id) = (c.clone(), body.clone(), order_id.clone());
        async move {
            let r = c.purchase("pia", body).await.unwrap();
            r.status.is_success() && r.order_id() == order_id
        }
    })
    .await;
    let mut admin = redis.client().get_connection().unwrap();
    let stock: i64 = admin.get(CampaignKeys::new(&id).stock).unwrap();
    assert_eq!(stock, 9, "one unit, once");
}

/// A cancel whose script Redis runs too late is not `redis_unavailable` (which promises
/// nothing changed): it is `change_unconfirmed`, and the same cancel again tells the truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_that_times_out_is_answered_unconfirmed_and_its_retry_tells() {
    let (redis, _dir, gateway, id) = on_private_redis(CampaignSpec::open("slow-cancel", 10, 1));
    let c = gateway.client();
    let bought = c
        .purchase("cid", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(bought.status, StatusCode::ACCEPTED, "{}", bought.body);
    let order_id = bought.order_id().to_owned();

    // Writes (scripts included) wait 1.5 s: longer than the gateway's 500 ms response timeout.
    redis.pause_writes(1500);
    let first = c.cancel("cid", &order_id).await;
    assert_eq!(
        first.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        first.body
    );
    assert_eq!(first.code(), "change_unconfirmed", "{}", first.body);
    assert!(first.headers.contains_key("retry-after"));

    // The paused script does run; the same cancel again answers the cancelled order.
    eventually(Duration::from_secs(10), "the retry sees the cancel", || {
        let (c, order_id) = (c.clone(), order_id.clone());
        async move {
            let r = c.cancel("cid", &order_id).await;
            r.status == StatusCode::OK && r.body["status"] == "cancelled"
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_lost_its_data_is_not_refilled_from_config() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let campaign = CampaignSpec::open("lost", 5, 1);
    let id = campaign.id.clone();
    let scenario = Scenario::new(redis.url(), dir.path().join("orders.db"), vec![campaign]);
    let gateway = InProcess::start(&scenario);
    let sold = gateway
        .client()
        .purchase("first-buyer", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(sold.status, StatusCode::ACCEPTED);
    gateway.stop().unwrap();

    // Redis loses everything (a restart without persistence, a failover to an empty replica).
    let mut conn = redis.client().get_connection().unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut conn).unwrap();

    // The gateway starts (its other campaigns would sell) but refuses this one and says why.
    let gateway = InProcess::start(&scenario);
    let refused = gateway
        .client()
        .purchase("second-buyer", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.code(), "campaign_needs_repair");
    let ready = gateway.client().get("/readyz", None).await;
    let reason = ready.body["campaigns_needing_repair"][&id]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("lost its data"), "{}", ready.body);
    let stock: Option<i64> = conn.get(CampaignKeys::new(&id).stock).unwrap();
    assert_eq!(stock, None, "the stock was not put back on sale");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_configured_redis_stops_the_start_and_nothing_else_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let closed_port = flashgate_tests::free_port();
    let scenario = Scenario::new(
        format!("redis://127.0.0.1:{closed_port}"),
        dir.path().join("orders.db"),
        vec![CampaignSpec::open("nowhere", 10, 1)],
    );
    let refused = InProcess::try_start(&scenario)
        .err()
        .expect("must refuse to start");
    assert!(refused.contains("unreachable"), "{refused}");
    assert!(refused.contains(&closed_port.to_string()), "{refused}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", closed_port)).is_err(),
        "no private Redis was started in its place"
    );
}
