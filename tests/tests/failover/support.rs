//! What the failover tests share: the cluster read as it is now, a promotion waited for, a
//! purchase settled through 503s, and the ids an answer carries.

use std::time::{Duration, Instant};

use flashgate_stock::{CampaignKeys, StockConnection, Timeouts};
use flashgate_tests::client::{Client, Reply};
use flashgate_tests::redis_cluster::RedisCluster;
use http::StatusCode;
use redis::IntoConnectionInfo as _;
use serde_json::json;

pub(crate) const ACKS: &str = "replica_acks = 1\nreplica_ack_timeout = \"50ms\"\n";

/// A connection to the cluster as it is now (through its live nodes), as the tests read it.
pub(crate) async fn cluster_conn(cluster: &RedisCluster) -> StockConnection {
    let seeds = cluster
        .live_ports()
        .iter()
        .map(|p| {
            format!("redis://127.0.0.1:{p}")
                .into_connection_info()
                .unwrap()
        })
        .collect();
    let timeouts = Timeouts {
        response: Duration::from_secs(2),
        connect: Duration::from_secs(2),
    };
    StockConnection::connect_cluster(seeds, None, timeouts)
        .await
        .unwrap()
}

/// The ids among `orders` that Redis (the cluster's masters now) does not hold.
pub(crate) async fn missing_in_redis(
    cluster: &RedisCluster,
    campaign: &str,
    orders: &[u64],
) -> Vec<u64> {
    let keys = CampaignKeys::new(campaign);
    let records = flashgate_stock::lookup::records(&mut cluster_conn(cluster).await, &keys, orders)
        .await
        .unwrap();
    orders
        .iter()
        .zip(records)
        .filter(|(_, r)| r.is_none())
        .map(|(id, _)| *id)
        .collect()
}

/// Waits until the replica on `replica` serves `key`'s slot, and the cluster is healthy.
pub(crate) fn wait_for_promotion(cluster: &RedisCluster, key: &str, replica: u16) -> Duration {
    let started = Instant::now();
    while cluster.healthy_master_of(key).map(|(m, _)| m) != Some(replica) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the replica never took over"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.wait_until_ok();
    started.elapsed()
}

/// Purchases as `user` until the answer is not a 503 (the gateway is still finding the new
/// master, or the replicas are catching up), keeping the token an `outcome_unknown` hands out:
/// a retry is always the same purchase.
pub(crate) async fn settle(
    client: &Client,
    user: &str,
    campaign: &str,
    token: Option<String>,
) -> Reply {
    let mut token = token;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = match &token {
            Some(t) => json!({ "campaign_id": campaign, "token": t }),
            None => json!({ "campaign_id": campaign }),
        };
        let reply = client.purchase(user, body).await.unwrap();
        if reply.status != StatusCode::SERVICE_UNAVAILABLE {
            return reply;
        }
        if reply.code() == "outcome_unknown" && token.is_none() {
            token = Some(reply.body["error"]["token"].as_str().unwrap().to_owned());
        }
        assert!(
            Instant::now() < deadline,
            "{user} still answered 503: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn order_id(reply: &Reply) -> u64 {
    reply.order_id().parse().unwrap()
}

/// The id and token an `outcome_unknown` answer carries.
pub(crate) fn unknown_order(reply: &Reply) -> (u64, String) {
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "outcome_unknown"),
        "{}",
        reply.body
    );
    let error = &reply.body["error"];
    (
        error["order_id"].as_str().unwrap().parse().unwrap(),
        error["token"].as_str().unwrap().to_owned(),
    )
}
