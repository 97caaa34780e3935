//! The gateway killed or stopped under load: every order that got a 202 ends up in the store,
//! exactly once; on one Redis (with either store) and on a Redis Cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use flashgate_stock::CampaignKeys;
use flashgate_tests::client::Client;
use flashgate_tests::eventually;
use flashgate_tests::gateway::Process;
use flashgate_tests::redis_kind::{RedisKind, TestRedis};
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::store_home::{Backend, StoreHome, stored};
use http::StatusCode;
use redis::AsyncCommands;
use serde_json::json;
use tokio::sync::Mutex;

/// Purchases by ever new users from `workers` tasks until `stop`; returns the accepted ids.
async fn load_until(
    client: Client,
    campaign: String,
    workers: usize,
    stop: Arc<AtomicBool>,
    accepted_so_far: Arc<AtomicUsize>,
) -> HashSet<String> {
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (client, campaign, stop) = (client.clone(), campaign.clone(), stop.clone());
            let (accepted, counter) = (accepted.clone(), accepted_so_far.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let user = format!("w{w}-u{n}");
                    if let Ok(r) = client
                        .purchase(&user, json!({ "campaign_id": campaign }))
                        .await
                    {
                        if r.status == StatusCode::ACCEPTED {
                            accepted.lock().await.insert(r.order_id().to_owned());
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(accepted).unwrap().into_inner()
}

/// Starts purchases from 32 tasks and returns once 500 have been accepted: the stop flag, and
/// the load whose result is the set of accepted order ids.
async fn load_under_way(
    gateway: &Process,
    campaign: &str,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<HashSet<String>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(load_until(
        gateway.client(),
        campaign.to_owned(),
        32,
        stop.clone(),
        count.clone(),
    ));
    eventually(Duration::from_secs(20), "load is under way", || {
        let count = count.clone();
        async move { count.load(Ordering::Relaxed) >= 500 }
    })
    .await;
    (stop, load)
}

async fn redis_order_count(redis: &TestRedis, campaign: &str) -> usize {
    let mut conn = redis.conn().await;
    conn.hlen(CampaignKeys::new(campaign).orders).await.unwrap()
}

fn scenario(redis: &TestRedis, home: &StoreHome, prefix: &str) -> (Scenario, String) {
    let campaign = CampaignSpec::open(prefix, 1_000_000, 1);
    let id = campaign.id.clone();
    let mut scenario = home.scenario(vec![campaign]);
    redis.point(&mut scenario);
    (scenario, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_accepted_order() {
    sigkill_under_load(TestRedis::start(RedisKind::Single), Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_accepted_order_on_postgres() {
    sigkill_under_load(TestRedis::start(RedisKind::Single), Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_accepted_order_on_cluster() {
    sigkill_under_load(TestRedis::start(RedisKind::Cluster), Backend::Sqlite).await;
}

async fn sigkill_under_load(redis: TestRedis, backend: Backend) {
    let home = StoreHome::new(backend);
    let dir = &home.dir;
    let (mut scenario, id) = scenario(&redis, &home, "sigkill");
    // A one-slot queue and a reconciler that would not run for an hour: most accepted orders
    // are in the Redis journal only when the gateway dies.
    scenario.persistence = "queue_capacity = 1\nreconcile_interval = \"1h\"\n".into();
    let mut gateway = Process::start(&scenario, dir.path());
    gateway.pin(&mut scenario);

    let (stop, load) = load_under_way(&gateway, &id).await;
    gateway.kill();
    stop.store(true, Ordering::Relaxed);
    let accepted = load.await.unwrap();
    assert!(accepted.len() >= 500);

    let expected = redis_order_count(&redis, &id).await;
    assert!(
        expected >= accepted.len(),
        "Redis holds every accepted order"
    );
    let stored_at_kill = stored(&scenario, &id).len();
    assert!(
        stored_at_kill < expected,
        "the kill left orders only in the journal"
    );

    // Restarted, the reconciler's first pass persists whatever the queue had not.
    let restarted = Process::start(&scenario, dir.path());
    eventually(
        Duration::from_secs(20),
        "store catches up with Redis",
        || {
            let (scenario, id) = (scenario.clone(), id.clone());
            async move { stored(&scenario, &id).len() == expected }
        },
    )
    .await;
    let stored = stored(&scenario, &id);
    let stored_ids: Vec<String> = stored.iter().map(|o| o.order_id.to_string()).collect();
    let unique: HashSet<&String> = stored_ids.iter().collect();
    assert_eq!(unique.len(), stored_ids.len(), "no order twice");
    let missing: Vec<_> = accepted.iter().filter(|id| !unique.contains(id)).collect();
    assert!(missing.is_empty(), "accepted but not stored: {missing:?}");
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_zero_with_every_order_stored() {
    sigterm_under_load(TestRedis::start(RedisKind::Single), Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_zero_with_every_order_stored_on_postgres() {
    sigterm_under_load(TestRedis::start(RedisKind::Single), Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_zero_with_every_order_stored_on_cluster() {
    sigterm_under_load(TestRedis::start(RedisKind::Cluster), Backend::Sqlite).await;
}

async fn sigterm_under_load(redis: TestRedis, backend: Backend) {
    let home = StoreHome::new(backend);
    let dir = &home.dir;
    let (scenario, id) = scenario(&redis, &home, "sigterm");
    let mut gateway = Process::start(&scenario, dir.path());

    let (stop, load) = load_under_way(&gateway, &id).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = gateway.terminate();
        (gateway, status)
    });
    let (gateway, status) = status.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let accepted = load.await.unwrap();
    assert!(status.success(), "exit status {status}");
    drop(gateway);

    // No restart: the drain at shutdown alone put every accepted order in the store.
    let stored = stored(&scenario, &id);
    let stored_ids: HashSet<String> = stored.iter().map(|o| o.order_id.to_string()).collect();
    assert_eq!(stored_ids.len(), stored.len());
    let missing: Vec<_> = accepted
        .iter()
        .filter(|id| !stored_ids.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "accepted but not stored: {} of {}",
        missing.len(),
        accepted.len()
    );
    assert_eq!(
        stored.len(),
        redis_order_count(&redis, &id).await,
        "store == Redis"
    );
}
