//! Issue #11 part 2 (first step): the gateway on a real Redis Cluster (three masters, a
//! replica each). Purchases, persistence, reads and the lifecycle run unchanged: every
//! campaign's keys share one slot, and reads over several campaigns go slot by slot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::Duration;

use flashgate_stock::CampaignKeys;
use flashgate_tests::client::{Client, Reply};
use flashgate_tests::eventually;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_cluster::RedisCluster;
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::store_home::{Backend, StoreHome, stored};
use http::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_sells_each_campaign_once_and_every_order_reaches_the_store() {
    let cluster = RedisCluster::start();
    let home = StoreHome::new(Backend::Sqlite);
    let (a, b) = (
        CampaignSpec::open("cl-a", 100, 1),
        CampaignSpec::open("cl-b", 50, 1),
    );
    let (a_id, b_id) = (a.id.clone(), b.id.clone());
    let mut scenario = home.scenario(vec![a, b]);
    scenario.redis_cluster = cluster.urls();
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();

    let accepted = buy_twice_on_each(&client, &a_id, &b_id).await;
    let sold = |id: &str| accepted.iter().filter(|(c, _)| c == id).count();
    assert_eq!(
        (sold(&a_id), sold(&b_id)),
        (100, 50),
        "exactly the stock, once"
    );
    let ids: HashSet<&String> = accepted.iter().map(|(_, o)| o).collect();
    assert_eq!(ids.len(), 150, "no order id twice");

    for (id, n) in [(&a_id, 100), (&b_id, 50)] {
        let (s, id) = (scenario.clone(), id.clone());
        eventually(Duration::from_secs(15), "every order in the store", || {
            let (s, id) = (s.clone(), id.clone());
            async move { stored(&s, &id).len() == n }
        })
        .await;
    }

    // Reads over several campaigns (one slot each) and readiness.
    let listed = client.get("/api/v1/campaigns", None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let remaining: Vec<i64> = listed.body["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["remaining"].as_i64().unwrap())
        .collect();
    assert_eq!(remaining, [0, 0], "{}", listed.body);
    let ready = client.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);

    check_a_cancelled_unit_sells_again(&client, &scenario, &accepted, &b_id).await;
    gateway.stop().unwrap();
}

/// 300 users, each trying twice on each campaign; returns (campaign, order id) of every 202,
/// checking every other answer is a replay or sold out.
async fn buy_twice_on_each(client: &Client, a_id: &str, b_id: &str) -> Vec<(String, String)> {
    let mut tasks = Vec::new();
    for user in 0..300 {
        for id in [a_id, b_id, a_id, b_id] {
            let (client, id) = (client.clone(), id.to_owned());
            tasks.push(tokio::spawn(async move {
                let r = client
                    .purchase(&format!("u-{user}"), json!({ "campaign_id": id }))
                    .await
                    .unwrap();
                (id, r)
            }));
        }
    }
    let mut accepted: Vec<(String, String)> = Vec::new();
    for task in tasks {
        let (id, r) = task.await.unwrap();
        match r.status {
            StatusCode::ACCEPTED => accepted.push((id, r.order_id().to_owned())),
            StatusCode::OK => {}
            StatusCode::CONFLICT => assert_eq!(r.code(), "sold_out", "{}", r.body),
            other => panic!("{other}: {}", r.body),
        }
    }
    accepted
}

/// The lifecycle: a cancellation returns its unit, which sells again.
async fn check_a_cancelled_unit_sells_again(
    client: &Client,
    scenario: &Scenario,
    accepted: &[(String, String)],
    b_id: &str,
) {
    let (_, order_id) = accepted.iter().find(|(c, _)| c == b_id).unwrap().clone();
    let buyer = {
        let seen = stored(scenario, b_id);
        seen.into_iter()
            .find(|o| o.order_id.to_string() == order_id)
            .unwrap()
            .user_id
    };
    let cancelled = client.cancel(&buyer, &order_id).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    client
        .eventually_buys("late-buyer", b_id, Duration::from_secs(5))
        .await;
    let listed = client
        .get(&format!("/api/v1/orders/{order_id}"), Some(&buyer))
        .await;
    assert_eq!(listed.body["status"], "cancelled", "{}", listed.body);
}

/// The harness the failover tests stand on: a killed master's replica takes its slots over.
#[test]
fn a_killed_master_is_replaced_by_its_replica() {
    let mut cluster = RedisCluster::start_with_node_timeout(Duration::from_millis(1000));
    let key = &CampaignKeys::new("harness").stock;
    let (master, replicas) = cluster.master_and_replicas_of(key);
    assert_eq!(replicas.len(), 1, "one replica per master");
    cluster.kill(master);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let live = cluster.live_ports()[0];
        let info = cluster.cli(live, &["CLUSTER", "INFO"]);
        let promoted = cluster.healthy_master_of(key).map(|(m, _)| m) == Some(replicas[0]);
        if info.contains("cluster_state:ok") && promoted {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no failover: {info}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!cluster.live_ports().contains(&master));
}

/// How long one probe may take: a readiness probe that hangs on a dead node is as bad as a
/// gateway that hangs.
const PROBE_PATIENCE: Duration = Duration::from_secs(5);

async fn probe(
    client: &flashgate_tests::client::Client,
    path: &str,
) -> flashgate_tests::client::Reply {
    tokio::time::timeout(PROBE_PATIENCE, client.get(path, None))
        .await
        .unwrap_or_else(|_| panic!("{path} did not answer within {PROBE_PATIENCE:?}"))
}

/// A master and its replica both dead: the cluster cannot serve their slots. `/readyz` says so
/// (503, the cluster's state named) within a bounded time, `/healthz` still answers, and the
/// gateway stops in a bounded time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_a_master_and_its_replica_is_not_ready_and_the_gateway_lives_on() {
    let mut cluster = RedisCluster::start_with_node_timeout(Duration::from_millis(1000));
    let home = StoreHome::new(Backend::Sqlite);
    let campaign = CampaignSpec::open("cl-down", 10, 1);
    let id = campaign.id.clone();
    let (master, replicas) = cluster.master_and_replicas_of(&CampaignKeys::new(&id).stock);
    // A second campaign on a master that lives: the Cluster refuses its commands too
    // (CLUSTERDOWN), which the client would retry for minutes, stalling the stop.
    let elsewhere = std::iter::repeat_with(|| CampaignSpec::open("cl-up", 10, 1))
        .find(|c| {
            cluster
                .master_and_replicas_of(&CampaignKeys::new(&c.id).stock)
                .0
                != master
        })
        .unwrap();
    let mut scenario = home.scenario(vec![campaign, elsewhere]);
    scenario.redis_cluster = cluster.urls();
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();
    let ready = probe(&client, "/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["redis"], "ok", "{}", ready.body);
    let bought = client
        .purchase("before", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(bought.status, StatusCode::ACCEPTED, "{}", bought.body);

    cluster.kill(master);
    for replica in replicas {
        cluster.kill(replica);
    }

    let ready = until_readyz_names_cluster_fail(&client).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.body
    );
    assert_eq!(ready.body["ready"], false, "{}", ready.body);
    let reason = ready.body["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("cluster_state"), "{}", ready.body);
    // Still answering, and quickly, probe after probe.
    for _ in 0..3 {
        let alive = probe(&client, "/healthz").await;
        assert_eq!(alive.status, StatusCode::OK, "{}", alive.body);
        let ready = probe(&client, "/readyz").await;
        assert_eq!(
            ready.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            ready.body
        );
    }

    // The stop (drain, last reconcile pass) gives up on the dead slots in a bounded time.
    let stopped = tokio::task::spawn_blocking(move || gateway.stop());
    tokio::time::timeout(Duration::from_secs(20), stopped)
        .await
        .expect("the gateway stopped within 20 s")
        .unwrap()
        .unwrap();
}

/// Probes `/readyz` until it names the cluster's state (`cluster_fail`), for up to 20 s, and
/// returns that answer.
async fn until_readyz_names_cluster_fail(client: &Client) -> Reply {
    let mut last = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ready = probe(client, "/readyz").await;
        if ready.body["redis"] == "cluster_fail" {
            last = Some(ready);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readyz never named the cluster's state: {} {}",
            ready.status,
            ready.body
        );
        last.replace(ready);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last.unwrap()
}

/// Each master holds the orders of its own slots: one that may evict them makes the gateway
/// not ready, whichever master it is, on every probe; set back, the gateway is ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_evicting_master_makes_the_gateway_not_ready() {
    let cluster = RedisCluster::start();
    let home = StoreHome::new(Backend::Sqlite);
    let mut scenario = home.scenario(vec![CampaignSpec::open("cl-evict", 10, 1)]);
    scenario.redis_cluster = cluster.urls();
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();
    let ready = probe(&client, "/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);

    let (master, _) = cluster.master_and_replicas_of(&CampaignKeys::new("cl-evict-probe").stock);
    let set = cluster.cli(
        master,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    );
    assert!(set.contains("OK"), "{set}");
    // Every probe, not one now and then: each master is read, not one picked at random.
    for _ in 0..10 {
        let ready = probe(&client, "/readyz").await;
        assert_eq!(
            ready.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            ready.body
        );
        assert_eq!(ready.body["redis"], "ok", "{}", ready.body);
        let reason = ready.body["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("allkeys-lru") && reason.contains(&format!("127.0.0.1:{master}")),
            "{}",
            ready.body
        );
    }

    cluster.cli(master, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    let ready = probe(&client, "/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    gateway.stop().unwrap();
}

/// A gateway does not start on a Cluster with an evicting master, and names that master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_an_evicting_master_is_refused_at_start() {
    let cluster = RedisCluster::start();
    let (master, _) = cluster.master_and_replicas_of(&CampaignKeys::new("cl-refuse-probe").stock);
    cluster.cli(
        master,
        &["CONFIG", "SET", "maxmemory-policy", "volatile-lru"],
    );
    let home = StoreHome::new(Backend::Sqlite);
    let mut scenario = home.scenario(vec![CampaignSpec::open("cl-refuse", 10, 1)]);
    scenario.redis_cluster = cluster.urls();
    let refused = InProcess::try_start(&scenario)
        .err()
        .expect("refused to start");
    assert!(
        refused.contains("volatile-lru") && refused.contains(&format!("127.0.0.1:{master}")),
        "{refused}"
    );
}

/// A master killed and replaced by its replica: the gateway finds the new master by itself
/// (with its few retries) and sells again, every accepted order reaching the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failover_the_gateway_sells_again() {
    let mut cluster = RedisCluster::start_with_node_timeout(Duration::from_millis(1000));
    let home = StoreHome::new(Backend::Sqlite);
    let campaign = CampaignSpec::open("cl-failover", 100, 1);
    let id = campaign.id.clone();
    let mut scenario = home.scenario(vec![campaign]);
    scenario.redis_cluster = cluster.urls();
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();
    client
        .eventually_buys("before", &id, Duration::from_secs(5))
        .await;

    let key = CampaignKeys::new(&id).stock;
    let (master, replicas) = cluster.master_and_replicas_of(&key);
    cluster.kill(master);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while cluster.healthy_master_of(&key).map(|(m, _)| m) != Some(replicas[0]) {
        assert!(std::time::Instant::now() < deadline, "no failover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.wait_until_ok();

    // 503 while the client finds the new master; a purchase whose answer was lost then is
    // answered 200 (the original order) when asked again.
    let c = client.clone();
    let i = id.clone();
    eventually(
        Duration::from_secs(10),
        "a purchase after the failover",
        || {
            let (c, i) = (c.clone(), i.clone());
            async move {
                let r = c.purchase("after", json!({ "campaign_id": i })).await;
                r.is_ok_and(|r| r.status.is_success())
            }
        },
    )
    .await;
    let ready = probe(&client, "/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let s = scenario.clone();
    let i = id.clone();
    eventually(Duration::from_secs(15), "both orders stored", || {
        let (s, i) = (s.clone(), i.clone());
        async move { stored(&s, &i).len() == 2 }
    })
    .await;
    gateway.stop().unwrap();
}
