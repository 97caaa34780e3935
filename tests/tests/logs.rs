//! Logs as JSON for a log pipeline, at debug level (the most that is ever logged), carry no
//! secret and no token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate_tests::client::{sign_hex, token_for};
use flashgate_tests::gateway::Process;
use flashgate_tests::scenario::{CampaignSpec, JWT_SECRET, ORDER_TOKEN_SECRET, PAYMENT_SECRET};
use flashgate_tests::store_home::{Backend, StoreHome};
use http::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_at_debug_level_carry_no_secret_and_no_token() {
    let home = StoreHome::new(Backend::Sqlite);
    let campaign = CampaignSpec::open("logs", 10, 1);
    let id = campaign.id.clone();
    let scenario = home.scenario(vec![campaign]);
    let mut gateway = Process::start_with_env(
        &scenario,
        home.path(),
        &[("FLASHGATE_LOG_FORMAT", "json"), ("RUST_LOG", "debug")],
    );
    let client = gateway.client();

    // A purchase, one with a bad token, one with an order token, and a signed payment.
    let bearer = token_for("log-buyer");
    let bought = client
        .purchase("log-buyer", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(bought.status, StatusCode::ACCEPTED);
    let bad = client
        .send(
            Method::POST,
            "/api/v1/orders",
            Some("not.a.token"),
            json!({ "campaign_id": id }).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let issued = client.order_token("log-buyer-2", &id).await;
    let order_token = issued["token"].as_str().unwrap().to_owned();
    let with_token = client
        .purchase(
            "log-buyer-2",
            json!({ "campaign_id": id, "token": order_token }),
        )
        .await
        .unwrap();
    assert_eq!(with_token.status, StatusCode::ACCEPTED);
    let body = json!({
        "order_id": bought.order_id(), "payment_id": "p-log",
        "amount_cents": 1999, "status": "succeeded",
    })
    .to_string();
    let signature = sign_hex(PAYMENT_SECRET.as_bytes(), body.as_bytes());
    let paid = client.signed_callback(body, &signature).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);

    let status = tokio::task::spawn_blocking(move || gateway.terminate())
        .await
        .unwrap();
    assert!(status.success());

    let log = std::fs::read_to_string(home.path().join("gateway.log")).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{log}");
    for line in &lines {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            entry["level"].is_string() && entry["timestamp"].is_string(),
            "{line}"
        );
    }
    assert!(log.contains("flashgate serving"), "{log}");
    for secret in [
        JWT_SECRET,
        ORDER_TOKEN_SECRET,
        PAYMENT_SECRET,
        bearer.as_str(),
        order_token.as_str(),
        signature.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "the log carries a secret or token: {secret}"
        );
    }
}
