//! Every refusal answers its status and stable code, and the cheap ones never reach Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flashgate_stock::CampaignKeys;
use flashgate_tests::client::{Reply, token_expiring, token_for};
use flashgate_tests::eventually;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_server::RedisServer;
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use http::{Method, StatusCode};
use serde_json::json;

fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.code(), code, "{}", reply.body);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "a message: {}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_path_has_its_status_and_code() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let open = CampaignSpec::open("open", 100, 2);
    let tiny = CampaignSpec::open("tiny", 1, 1);
    let mut upcoming = CampaignSpec::open("upcoming", 10, 1);
    upcoming.start = "2098-01-01T00:00:00Z".into();
    upcoming.end = "2099-01-01T00:00:00Z".into();
    let mut ended = CampaignSpec::open("ended", 10, 1);
    ended.start = "2020-01-01T00:00:00Z".into();
    ended.end = "2021-01-01T00:00:00Z".into();
    let (open_id, tiny_id) = (open.id.clone(), tiny.id.clone());
    let (upcoming_id, ended_id) = (upcoming.id.clone(), ended.id.clone());
    let mut scenario = Scenario::new(
        redis.url(),
        dir.path().join("orders.db"),
        vec![open, tiny, upcoming, ended],
    );
    // Only requests and the workers' journal acks may call scripts while this test counts them.
    scenario.persistence = "reconcile_interval = \"1h\"\n".into();
    let gateway = InProcess::start(&scenario);
    let c = gateway.client();
    let raw = |token: Option<String>, body: &'static str| {
        let c = c.clone();
        async move {
            c.send(Method::POST, "/api/v1/orders", token.as_deref(), body)
                .await
                .unwrap()
        }
    };

    // 400: malformed, unknown field, wrong type, quantity out of range, bad order token.
    assert_error(
        &raw(Some(token_for("u1")), "{").await,
        400,
        "malformed_json",
    );
    let unknown = c
        .purchase("u1", json!({ "campaign_id": open_id, "colour": "red" }))
        .await
        .unwrap();
    assert_error(&unknown, 400, "unknown_field");
    assert!(
        unknown.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
    assert_error(
        &raw(Some(token_for("u1")), r#"{"campaign_id":7}"#).await,
        400,
        "invalid_field",
    );
    for q in [json!(0), json!(-1), json!(3), json!(1_000_000_000_000_i64)] {
        let r = c
            .purchase("u1", json!({ "campaign_id": open_id, "quantity": q }))
            .await
            .unwrap();
        assert_error(&r, 400, "invalid_quantity");
    }
    let forged = c
        .purchase(
            "u1",
            json!({ "campaign_id": open_id, "token": "1.99999999999.AAAA" }),
        )
        .await
        .unwrap();
    assert_error(&forged, 400, "invalid_order_token");

    // 401: no token, a token signed with another secret, an expired token.
    assert_error(
        &raw(None, r#"{"campaign_id":"x"}"#).await,
        401,
        "missing_token",
    );
    let foreign = flashgate::auth::jwt::sign(
        b"not-the-gateway-secret",
        "u1",
        flashgate::clock::now_s() + 60,
    );
    assert_error(
        &raw(Some(foreign), r#"{"campaign_id":"x"}"#).await,
        401,
        "invalid_token",
    );
    let expired = token_expiring("u1", flashgate::clock::now_s() - 10);
    assert_error(
        &raw(Some(expired), r#"{"campaign_id":"x"}"#).await,
        401,
        "token_expired",
    );

    // 403 and 410: the window.
    let r = c
        .purchase("u1", json!({ "campaign_id": upcoming_id }))
        .await
        .unwrap();
    assert_error(&r, 403, "not_started");
    let r = c
        .purchase("u1", json!({ "campaign_id": ended_id }))
        .await
        .unwrap();
    assert_error(&r, 410, "ended");

    // 404 for an unknown campaign, decided without any Redis script call.
    let scripts_before = redis.calls("evalsha") + redis.calls("eval");
    for n in 0..20 {
        let r = c
            .purchase(
                "u1",
                json!({ "campaign_id": format!("no-such-campaign-{n}") }),
            )
            .await
            .unwrap();
        assert_error(&r, 404, "unknown_campaign");
    }
    assert_eq!(
        redis.calls("evalsha") + redis.calls("eval"),
        scripts_before,
        "404s touched Redis"
    );

    // 409 limit reached.
    let r = c
        .purchase("u2", json!({ "campaign_id": open_id, "quantity": 2 }))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let r = c
        .purchase("u2", json!({ "campaign_id": open_id }))
        .await
        .unwrap();
    assert_error(&r, 409, "limit_reached");

    // 409 sold out: from the script first, then from the local mark without a script call.
    let r = c
        .purchase("u3", json!({ "campaign_id": tiny_id }))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = c
        .purchase("u4", json!({ "campaign_id": tiny_id }))
        .await
        .unwrap();
    assert_error(&r, 409, "sold_out");
    // Let persistence finish (its journal acks are script calls too) before counting.
    eventually(Duration::from_secs(10), "journals drained", || {
        let (client, ids) = (redis.client(), [open_id.clone(), tiny_id.clone()]);
        async move {
            let mut conn = client.get_connection().unwrap();
            ids.iter().all(|id| {
                redis::cmd("SCARD")
                    .arg(CampaignKeys::new(id).journal)
                    .query::<u64>(&mut conn)
                    .unwrap()
                    == 0
            })
        }
    })
    .await;
    let scripts_before = redis.calls("evalsha") + redis.calls("eval");
    for user in ["u5", "u6", "u7"] {
        let r = c
            .purchase(user, json!({ "campaign_id": tiny_id }))
            .await
            .unwrap();
        assert_error(&r, 409, "sold_out");
    }
    assert_eq!(
        redis.calls("evalsha") + redis.calls("eval"),
        scripts_before,
        "the sold-out mark answered"
    );

    // 413: a body over the limit (4096 bytes by default).
    let big = format!(r#"{{"campaign_id":"{}"}}"#, "x".repeat(5000));
    let r = c
        .send(Method::POST, "/api/v1/orders", Some(&token_for("u1")), big)
        .await
        .unwrap();
    assert_error(&r, 413, "body_too_large");

    // Unknown routes and wrong methods.
    assert_error(
        &c.get("/api/v1/nothing", Some("u1")).await,
        404,
        "not_found",
    );
    assert_error(
        &c.send(Method::DELETE, "/api/v1/orders", Some(&token_for("u1")), "")
            .await
            .unwrap(),
        405,
        "method_not_allowed",
    );

    // Nothing above disturbed the campaign: exactly the two accepted purchases took stock.
    let state = c.get(&format!("/api/v1/campaigns/{open_id}"), None).await;
    assert_eq!(state.body["remaining"], 98);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_bucket_answers_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let open = CampaignSpec::open("limited", 100, 1);
    let id = open.id.clone();
    let mut scenario = Scenario::new(
        flashgate_tests::shared_redis_url(),
        dir.path().join("orders.db"),
        vec![open],
    );
    scenario.extra = "\n[limits.per_user]\nper_second = 1\nburst = 2\n".into();
    let gateway = InProcess::start(&scenario);
    let c = gateway.client();

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = c
            .purchase("eager", json!({ "campaign_id": id }))
            .await
            .unwrap();
        statuses.push(r.clone());
    }
    assert!(statuses[0].status.is_success());
    let limited = &statuses[2];
    assert_error(limited, 429, "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "retry after {retry_after}");

    // Another user's bucket is untouched.
    let r = c
        .purchase("patient", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ip_bucket_refuses_before_identity_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let open = CampaignSpec::open("iplimited", 100, 1);
    let mut scenario = Scenario::new(
        flashgate_tests::shared_redis_url(),
        dir.path().join("orders.db"),
        vec![open],
    );
    scenario.extra = "\n[limits.per_ip]\nper_second = 1\nburst = 1\n".into();
    let gateway = InProcess::start(&scenario);
    let c = gateway.client();
    let first = c.get("/api/v1/campaigns", None).await;
    assert_eq!(first.status, StatusCode::OK);
    // No token at all: still 429, because stage 1 runs before identity.
    let second = c
        .send(Method::POST, "/api/v1/orders", None, "{}")
        .await
        .unwrap();
    assert_error(&second, 429, "rate_limited");
    assert!(second.headers.contains_key("retry-after"));
    // Health probes are never rate limited.
    assert_eq!(c.get("/healthz", None).await.status, StatusCode::OK);
}
