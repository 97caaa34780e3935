//! Every refusal answers its status and stable code, and the cheap ones never reach Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use flashgate_tests::client::{Client, Reply, metrics_series, token_expiring, token_for};
use flashgate_tests::free_port;
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

/// The campaigns of the error-path test: one open, one of a single unit, one not started and
/// one ended.
struct Campaigns {
    open: String,
    tiny: String,
    upcoming: String,
    ended: String,
    /// The gateway's admin listener, whose `/metrics` counts the reservation script calls.
    admin: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_path_has_its_status_and_code() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (scenario, ids) = four_campaigns(&redis, dir.path());
    let gateway = InProcess::start(&scenario);
    let c = gateway.client();

    malformed_requests_answer_400(&c, &ids).await;
    missing_or_bad_identity_answers_401(&c).await;
    the_window_answers_403_and_410(&c, &ids).await;
    unknown_campaigns_answer_404_without_redis(&c, &ids).await;
    limits_and_sold_out_answer_409(&c, &ids).await;
    bodies_routes_and_methods_answer_413_404_405(&c).await;

    // Nothing above disturbed the campaign: exactly the two accepted purchases took stock.
    let state = c
        .get(&format!("/api/v1/campaigns/{}", ids.open), None)
        .await;
    assert_eq!(state.body["remaining"], 98);
}

/// A scenario of the four campaigns on `redis`, with the store in `dir`.
fn four_campaigns(redis: &RedisServer, dir: &Path) -> (Scenario, Campaigns) {
    let open = CampaignSpec::open("open", 100, 2);
    let tiny = CampaignSpec::open("tiny", 1, 1);
    let mut upcoming = CampaignSpec::open("upcoming", 10, 1);
    upcoming.start = "2098-01-01T00:00:00Z".into();
    upcoming.end = "2099-01-01T00:00:00Z".into();
    let mut ended = CampaignSpec::open("ended", 10, 1);
    ended.start = "2020-01-01T00:00:00Z".into();
    ended.end = "2021-01-01T00:00:00Z".into();
    let ids = Campaigns {
        open: open.id.clone(),
        tiny: tiny.id.clone(),
        upcoming: upcoming.id.clone(),
        ended: ended.id.clone(),
        admin: format!("127.0.0.1:{}", free_port()),
    };
    let mut scenario = Scenario::new(
        redis.url(),
        dir.join("orders.db"),
        vec![open, tiny, upcoming, ended],
    );
    scenario.extra = format!("\n[admin]\nlisten = \"{}\"\n", ids.admin);
    (scenario, ids)
}

/// A purchase request with `body` as it is, and `token` as the bearer if any.
async fn raw(c: &Client, token: Option<String>, body: &'static str) -> Reply {
    c.send(Method::POST, "/api/v1/orders", token.as_deref(), body)
        .await
        .unwrap()
}

/// The reservation script calls the gateway has made so far. (Redis' own count of script
/// calls would not do: the expiry sweeper and the node lease call scripts on their own ticks.)
async fn reservation_calls(ids: &Campaigns) -> f64 {
    metrics_series(&ids.admin).await["flashgate_redis_script_duration_seconds_count"]
}

/// 400: malformed, unknown field, wrong type, quantity out of range, bad order token.
async fn malformed_requests_answer_400(c: &Client, ids: &Campaigns) {
    let open_id = &ids.open;
    assert_error(
        &raw(c, Some(token_for("u1")), "{").await,
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
        &raw(c, Some(token_for("u1")), r#"{"campaign_id":7}"#).await,
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
}

/// 401: no token, a token signed with another secret, an expired token.
async fn missing_or_bad_identity_answers_401(c: &Client) {
    assert_error(
        &raw(c, None, r#"{"campaign_id":"x"}"#).await,
        401,
        "missing_token",
    );
    let foreign = flashgate::auth::jwt::sign(
        b"not-the-gateway-secret",
        "u1",
        flashgate::clock::now_s() + 60,
    );
    assert_error(
        &raw(c, Some(foreign), r#"{"campaign_id":"x"}"#).await,
        401,
        "invalid_token",
    );
    let expired = token_expiring("u1", flashgate::clock::now_s() - 10);
    assert_error(
        &raw(c, Some(expired), r#"{"campaign_id":"x"}"#).await,
        401,
        "token_expired",
    );
}

/// 403 and 410: the window.
async fn the_window_answers_403_and_410(c: &Client, ids: &Campaigns) {
    let r = c
        .purchase("u1", json!({ "campaign_id": ids.upcoming }))
        .await
        .unwrap();
    assert_error(&r, 403, "not_started");
    let r = c
        .purchase("u1", json!({ "campaign_id": ids.ended }))
        .await
        .unwrap();
    assert_error(&r, 410, "ended");
}

/// 404 for an unknown campaign, decided without any Redis script call.
async fn unknown_campaigns_answer_404_without_redis(c: &Client, ids: &Campaigns) {
    let scripts_before = reservation_calls(ids).await;
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
        reservation_calls(ids).await,
        scripts_before,
        "404s reached the reservation script"
    );
}

/// 409 limit reached; 409 sold out: from the script first, then from the local mark without a
/// script call.
async fn limits_and_sold_out_answer_409(c: &Client, ids: &Campaigns) {
    let (open_id, tiny_id) = (&ids.open, &ids.tiny);
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
    let scripts_before = reservation_calls(ids).await;
    for user in ["u5", "u6", "u7"] {
        let r = c
            .purchase(user, json!({ "campaign_id": tiny_id }))
            .await
            .unwrap();
        assert_error(&r, 409, "sold_out");
    }
    assert_eq!(
        reservation_calls(ids).await,
        scripts_before,
        "the sold-out mark answered"
    );
}

/// 413: a body over the limit (4096 bytes by default); then unknown routes and wrong methods.
async fn bodies_routes_and_methods_answer_413_404_405(c: &Client) {
    let big = format!(r#"{{"campaign_id":"{}"}}"#, "x".repeat(5000));
    let r = c
        .send(Method::POST, "/api/v1/orders", Some(&token_for("u1")), big)
        .await
        .unwrap();
    assert_error(&r, 413, "body_too_large");

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
