//! Redis down: purchases answer 503 and record nothing; Redis back: sales resume by themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flashgate_tests::eventually;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_server::RedisServer;
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use http::StatusCode;
use redis::Commands;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_fail_cleanly_while_redis_is_down_and_resume_after() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let campaign = CampaignSpec::open("outage", 50, 1);
    let id = campaign.id.clone();
    let scenario = Scenario::new(redis.url(), dir.path().join("orders.db"), vec![campaign]);
    let gateway = InProcess::start(&scenario);
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
        assert_eq!(r.code(), "redis_unavailable");
        assert!(r.headers.contains_key("retry-after"));
    }
    let ready = c.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["redis"], "down");

    redis.restart();
    eventually(Duration::from_secs(10), "purchases succeed again", || {
        let c = c.clone();
        let id = id.clone();
        async move {
            let r = c
                .purchase("after", json!({ "campaign_id": id }))
                .await
                .unwrap();
            r.status == StatusCode::ACCEPTED
        }
    })
    .await;

    // Nothing was recorded for the purchases answered 503.
    let mut conn = redis.client().get_connection().unwrap();
    let stock: i64 = conn.get(format!("fg:{{{id}}}:stock")).unwrap();
    assert_eq!(stock, 48, "only `before` and `after` took stock");
    let buyers: Vec<String> = conn.hkeys(format!("fg:{{{id}}}:buyers")).unwrap();
    assert!(
        buyers.iter().all(|b| !b.starts_with("during")),
        "{buyers:?}"
    );
    assert_eq!(buyers.len(), 2);
}
