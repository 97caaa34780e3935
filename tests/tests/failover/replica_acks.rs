//! One Redis and its replica: a batch the paused replica did not acknowledge is answered
//! `outcome_unknown`, and its token retry learns the truth.

use std::time::{Duration, Instant};

use flashgate_stock::CampaignKeys;
use flashgate_tests::client::Client;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_server::RedisServer;
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use http::StatusCode;
use serde_json::json;

use crate::support::{ACKS, order_id, unknown_order};

/// One Redis and its replica: the replica stops acknowledging (SIGSTOP), and the gateway
/// answers the next batch `outcome_unknown` instead of 202 — for new orders and for replays
/// alike. Once the replica is back, the token retry learns the truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_its_replica_did_not_acknowledge_is_answered_outcome_unknown() {
    let master = RedisServer::start();
    let port = master.port().to_string();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
    let mut replica_conn = replica.client().get_connection().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut replica_conn)
            .unwrap();
        if info.contains("master_link_status:up") {
            break;
        }
        assert!(Instant::now() < deadline, "replica never synced: {info}");
        std::thread::sleep(Duration::from_millis(50));
    }

    let dir = tempfile::tempdir().unwrap();
    let campaign = CampaignSpec::open("acks", 10, 1);
    let id = campaign.id.clone();
    let mut scenario = Scenario::new(master.url(), dir.path().join("orders.db"), vec![campaign]);
    scenario.redis_extra = ACKS.into();
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", flashgate_tests::free_port())
        .parse()
        .unwrap();
    scenario.extra = format!("\n[admin]\nlisten = \"{admin}\"\n");
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();
    let buy = |user: &'static str| client.purchase(user, json!({ "campaign_id": id }));

    // A replica that keeps up: answered as always.
    let ada = buy("ada").await.unwrap();
    assert_eq!(ada.status, StatusCode::ACCEPTED, "{}", ada.body);

    replica.pause();
    let bob = buy("bob").await.unwrap();
    let (bob_order, bob_token) = unknown_order(&bob);
    // A replay is no answer either until a replica holds the order it shows.
    let ada_again = buy("ada").await.unwrap();
    unknown_order(&ada_again);
    replica.resume();

    // Bob's order was made (on the master): the retry with the token is shown it, and the
    // replica holds it now.
    let retry = client
        .purchase("bob", json!({ "campaign_id": id, "token": bob_token }))
        .await
        .unwrap();
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(order_id(&retry), bob_order);
    let on_replica: Option<String> = redis::cmd("HGET")
        .arg(CampaignKeys::new(&id).orders)
        .arg(bob_order)
        .query(&mut replica_conn)
        .unwrap();
    assert!(on_replica.is_some(), "the replica holds bob's order");
    let ada_again = buy("ada").await.unwrap();
    assert_eq!(ada_again.status, StatusCode::OK, "{}", ada_again.body);
    assert_eq!(order_id(&ada_again), order_id(&ada));
    let cy = buy("cy").await.unwrap();
    assert_eq!(cy.status, StatusCode::ACCEPTED, "{}", cy.body);

    let metrics = Client::new(admin).get("/metrics", None).await;
    let text = metrics.body.as_str().unwrap_or_default();
    assert!(
        text.contains("flashgate_replica_ack_shortfalls_total 2"),
        "two batches answered outcome_unknown: {text}"
    );
    gateway.stop().unwrap();
}
