//! A Redis that may evict keys loses orders and buyers' quotas, so the gateway refuses to start
//! unless `maxmemory-policy` is `noeviction`, and `/readyz` says not ready (503, with the reason)
//! while it is changed on a running Redis. A managed Redis that hides `CONFIG` is read through
//! `INFO memory`; one that hides both is refused for want of an answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flashgate_tests::eventually;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_server::RedisServer;
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::store_home::{Backend, StoreHome};
use http::StatusCode;
use serde_json::Value;

/// Starts a gateway against `redis`, or returns why it refused.
fn try_gateway(home: &StoreHome, redis: &RedisServer) -> Result<InProcess, String> {
    let mut scenario = home.scenario(vec![CampaignSpec::open("eviction", 10, 1)]);
    scenario.redis_url = redis.url();
    InProcess::try_start(&scenario)
}

fn set_policy(redis: &RedisServer, policy: &str) {
    let mut conn = redis.client().get_connection().unwrap();
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg(policy)
        .query(&mut conn)
        .unwrap();
}

#[test]
fn an_evicting_policy_refuses_start_naming_it() {
    for policy in ["allkeys-lru", "volatile-ttl"] {
        let redis = RedisServer::start_with(&["--maxmemory-policy", policy]);
        let home = StoreHome::new(Backend::Sqlite);
        let refused = try_gateway(&home, &redis).err().unwrap_or_else(|| {
            panic!("a gateway started on a Redis with maxmemory-policy {policy}")
        });
        assert!(
            refused.contains(policy) && refused.contains("noeviction"),
            "{refused}"
        );
        assert!(refused.contains(&redis.addr()), "{refused}");
    }
}

#[test]
fn with_config_hidden_the_policy_is_read_from_info() {
    // Managed Redis services rename or disable CONFIG.
    let hidden = ["--rename-command", "CONFIG", "hidden-config-7f3a"];
    let evicting = [&hidden[..], &["--maxmemory-policy", "allkeys-lfu"]].concat();
    let redis = RedisServer::start_with(&evicting);
    let home = StoreHome::new(Backend::Sqlite);
    let refused = try_gateway(&home, &redis)
        .err()
        .expect("started on allkeys-lfu");
    assert!(refused.contains("allkeys-lfu"), "{refused}");

    let redis = RedisServer::start_with(&hidden);
    let home = StoreHome::new(Backend::Sqlite);
    let gateway = try_gateway(&home, &redis).unwrap();
    gateway.stop().unwrap();
}

#[test]
fn a_policy_that_cannot_be_read_refuses_start() {
    let redis = RedisServer::start();
    let mut conn = redis.client().get_connection().unwrap();
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("-config")
        .arg("-info")
        .query(&mut conn)
        .unwrap();
    let home = StoreHome::new(Backend::Sqlite);
    let refused = try_gateway(&home, &redis)
        .err()
        .expect("started without knowing the eviction policy");
    assert!(refused.contains("maxmemory-policy"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_a_policy_changed_while_running() {
    let redis = RedisServer::start();
    let home = StoreHome::new(Backend::Sqlite);
    let gateway = try_gateway(&home, &redis).unwrap();
    let client = gateway.client();
    let ready = client.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{:?}", ready.body);

    set_policy(&redis, "allkeys-lru");
    let not_ready = client.get("/readyz", None).await;
    assert_eq!(
        not_ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        not_ready.body
    );
    assert_eq!(not_ready.body["ready"], Value::Bool(false));
    let reason = not_ready.body["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("allkeys-lru") && reason.contains("noeviction"),
        "{:?}",
        not_ready.body
    );

    set_policy(&redis, "noeviction");
    eventually(Duration::from_secs(5), "ready again", || {
        let client = client.clone();
        async move { client.get("/readyz", None).await.status == StatusCode::OK }
    })
    .await;
    drop(client);
    gateway.stop().unwrap();
}
