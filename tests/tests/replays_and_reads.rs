//! Retries get the original answer; orders are readable by their owner only; on one Redis and
//! on a Redis Cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate_tests::gateway::stored_orders;
use flashgate_tests::redis_kind::TestRedis;
use flashgate_tests::scenario::CampaignSpec;
use http::StatusCode;
use serde_json::json;

flashgate_tests::on_each_redis!(
    the_same_token_twice_is_one_order,
    a_limit_one_buyer_asking_again_gets_the_original_order,
    orders_are_readable_by_their_owner_only,
    a_token_retry_gets_its_order_after_sell_out_and_after_the_end,
);

async fn the_same_token_twice_is_one_order(redis: TestRedis) {
    let campaign = CampaignSpec::open("token", 10, 3);
    let (_dir, scenario, gateway, id) = redis.selling(campaign);
    let c = gateway.client();

    let issued = c.order_token("tina", &id).await;
    let body = json!({ "campaign_id": id, "token": issued["token"] });
    let first = c.purchase("tina", body.clone()).await.unwrap();
    let again = c.purchase("tina", body.clone()).await.unwrap();
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(first.order_id(), issued["order_id"].as_str().unwrap());
    assert_eq!(first.body, again.body, "a replay is the original answer");

    // Someone else cannot use tina's token.
    let stolen = c.purchase("mallory", body).await.unwrap();
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST);
    assert_eq!(stolen.code(), "invalid_order_token");

    // Many concurrent retries of one token still make one order.
    let issued = c.order_token("tom", &id).await;
    let body = json!({ "campaign_id": id, "token": issued["token"] });
    let retries: Vec<_> = (0..20)
        .map(|_| {
            let (c, body) = (c.clone(), body.clone());
            tokio::spawn(async move { c.purchase("tom", body).await.unwrap() })
        })
        .collect();
    let mut accepted = 0;
    for r in retries {
        let r = r.await.unwrap();
        assert!(r.status.is_success());
        assert_eq!(r.order_id(), issued["order_id"].as_str().unwrap());
        accepted += usize::from(r.status == StatusCode::ACCEPTED);
    }
    assert_eq!(accepted, 1);

    gateway.stop().unwrap();
    let stored = stored_orders(&scenario.store_path, &id);
    assert_eq!(stored.len(), 2, "one row per token: {stored:?}");
}

async fn a_limit_one_buyer_asking_again_gets_the_original_order(redis: TestRedis) {
    let campaign = CampaignSpec::open("again", 10, 1);
    let (_dir, _scenario, gateway, id) = redis.selling(campaign);
    let c = gateway.client();

    let first = c
        .purchase("ann", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let plain = c
        .purchase("ann", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(plain.order_id(), first.order_id());
    let issued = c.order_token("ann", &id).await;
    let with_token = c
        .purchase(
            "ann",
            json!({ "campaign_id": id, "token": issued["token"] }),
        )
        .await
        .unwrap();
    assert_eq!(with_token.status, StatusCode::OK);
    assert_eq!(with_token.order_id(), first.order_id());

    let state = c.get(&format!("/api/v1/campaigns/{id}"), None).await;
    assert_eq!(state.body["remaining"], 9, "one unit taken, not three");
}

async fn orders_are_readable_by_their_owner_only(redis: TestRedis) {
    let campaign = CampaignSpec::open("read", 10, 1);
    let (_dir, scenario, gateway, id) = redis.selling(campaign);
    let c = gateway.client();

    let bought = c
        .purchase("owner-1", json!({ "campaign_id": id }))
        .await
        .unwrap();
    let path = format!("/api/v1/orders/{}", bought.order_id());
    let mine = c.get(&path, Some("owner-1")).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.body["order_id"], bought.body["order_id"]);
    assert_eq!(mine.body["status"], "pending_payment");
    assert_eq!(mine.body["amount_cents"], 1999);
    for other in ["owner-2", "owner-17", "someone"] {
        let theirs = c.get(&path, Some(other)).await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{other}");
        assert_eq!(theirs.code(), "order_not_found");
    }
    assert_eq!(c.get(&path, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        c.get("/api/v1/orders/12345", Some("owner-1")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get("/api/v1/orders/not-a-number", Some("owner-1"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let campaign_state = c.get(&format!("/api/v1/campaigns/{id}"), None).await;
    assert_eq!(campaign_state.status, StatusCode::OK);
    assert_eq!(campaign_state.body["remaining"], 9);
    assert_eq!(campaign_state.body["stock_total"], 10);
    assert_eq!(campaign_state.body["status"], "active");
    let list = c.get("/api/v1/campaigns", None).await;
    assert_eq!(list.body["campaigns"][0]["id"], id.as_str());
    assert_eq!(c.get("/healthz", None).await.status, StatusCode::OK);
    let ready = c.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["scripts"], "ok");

    // Once persisted, the order reads the same from the store.
    gateway.stop().unwrap();
    let stored = stored_orders(&scenario.store_path, &id);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].order_id.to_string(), bought.order_id());
}

async fn a_token_retry_gets_its_order_after_sell_out_and_after_the_end(redis: TestRedis) {
    let mut campaign = CampaignSpec::open("retry", 1, 1);
    let end_ms = flashgate::clock::now_ms() + 3_000;
    campaign.end = flashgate::clock::rfc3339(end_ms);
    let (_dir, _scenario, gateway, id) = redis.selling(campaign);
    let c = gateway.client();

    let issued = c.order_token("rita", &id).await;
    let body = json!({ "campaign_id": id, "token": issued["token"] });
    let first = c.purchase("rita", body.clone()).await.unwrap();
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    // The last unit is gone and the gateway knows it locally...
    let late = c
        .purchase("lars", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(late.code(), "sold_out");
    // ...yet rita's retry (her first answer was lost, say) is her order, not "sold out".
    let retry = c.purchase("rita", body.clone()).await.unwrap();
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.order_id(), first.order_id());

    // Past the end, on the gateway's clock: no waiting for the window to close.
    gateway.clock.advance_to(end_ms + 1);
    let after_end = c.purchase("rita", body).await.unwrap();
    assert_eq!(after_end.status, StatusCode::OK, "{}", after_end.body);
    assert_eq!(after_end.order_id(), first.order_id());
    let stranger = c
        .purchase("sam", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(stranger.status, StatusCode::GONE);
}
