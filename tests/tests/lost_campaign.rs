//! Issue #10 points 1 and 8: a campaign whose Redis state was lost, or went back to an older
//! snapshot, is never put back on sale by any code path (start, reload, a reload that fails
//! midway, SIGHUP, admin edit, stock change, close) until an operator rebuilds it from the
//! store; the rebuild sells exactly what the store says is left.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use flashgate_stock::CampaignKeys;
use flashgate_tests::client::{Client, Reply};
use flashgate_tests::gateway::{InProcess, Process};
use flashgate_tests::redis_server::RedisServer;
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::store_home::{Backend, StoreHome, stored};
use flashgate_tests::{eventually, free_port};
use http::{Method, StatusCode};
use redis::Commands as _;
use serde_json::json;

const ADMIN_TOKEN: &str = "admin-token-for-the-lost-campaign-tests";

/// A scenario on the private `redis` with an admin listener; the admin address too.
fn scenario_on(
    redis: &RedisServer,
    home: &StoreHome,
    campaign: CampaignSpec,
) -> (Scenario, Client) {
    let mut scenario = home.scenario(vec![campaign]);
    scenario.redis_url = redis.url();
    let admin = format!("127.0.0.1:{}", free_port());
    scenario.extra = format!("\n[admin]\nlisten = \"{admin}\"\ntoken = \"{ADMIN_TOKEN}\"\n");
    (scenario, Client::new(admin.parse().unwrap()))
}

async fn admin(admin: &Client, method: Method, path: &str, body: &str) -> Reply {
    admin
        .send(method, path, Some(ADMIN_TOKEN), body.to_owned())
        .await
        .unwrap()
}

/// The operator's repair; it must succeed. Returns its answer's body.
async fn rebuild(admin_client: &Client, id: &str) -> serde_json::Value {
    let rebuilt = admin(
        admin_client,
        Method::POST,
        &format!("/admin/v1/campaigns/{id}/rebuild"),
        "",
    )
    .await;
    assert_eq!(rebuilt.status, StatusCode::OK, "{}", rebuilt.body);
    rebuilt.body
}

/// `n` new buyers buy one unit each; every answer must be 202.
async fn sell(client: &Client, id: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let r = client
            .purchase(&format!("{prefix}-{i}"), json!({ "campaign_id": id }))
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    }
}

/// Waits until the store holds `n` orders of the campaign.
async fn stored_count(scenario: &Scenario, id: &str, n: usize) {
    eventually(Duration::from_secs(10), "orders reach the store", || {
        let (scenario, id) = (scenario.clone(), id.to_owned());
        async move { stored(&scenario, &id).len() == n }
    })
    .await;
}

/// Keeps new buyers trying for `for_how_long`; returns how many were accepted.
async fn accepted_while_trying(
    client: &Client,
    id: &str,
    prefix: &str,
    for_how_long: Duration,
) -> usize {
    let (start, mut accepted, mut i) = (Instant::now(), 0, 0);
    while start.elapsed() < for_how_long {
        let r = client
            .purchase(&format!("{prefix}-{i}"), json!({ "campaign_id": id }))
            .await
            .unwrap();
        if r.status.is_success() {
            accepted += 1;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    accepted
}

fn lose(redis: &RedisServer, id: &str) {
    let mut conn = redis.client().get_connection().unwrap();
    let keys: Vec<String> = conn.keys(format!("fg:{{{id}}}:*")).unwrap();
    assert!(!keys.is_empty());
    let _: () = conn.del(keys).unwrap();
}

fn stock_exists(redis: &RedisServer, id: &str) -> bool {
    let mut conn = redis.client().get_connection().unwrap();
    conn.exists(CampaignKeys::new(id).stock).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_fails_midway_never_puts_a_lost_campaign_back_on_sale() {
    let redis = RedisServer::start();
    let home = StoreHome::new(Backend::Sqlite);
    let campaign = CampaignSpec::open("lost-reload", 3, 1);
    let id = campaign.id.clone();
    let (scenario, admin_client) = scenario_on(&redis, &home, campaign);
    let gateway = InProcess::start_from_file(&scenario, &home.path().join("gateway.toml"));
    let client = gateway.client();
    sell(&client, &id, "early", 3).await;
    stored_count(&scenario, &id, 3).await;

    // Redis loses the campaign; then a reload fails midway because Redis refuses a command.
    lose(&redis, &id);
    let mut conn = redis.client().get_connection().unwrap();
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "default", "-get"])
        .query(&mut conn)
        .unwrap();
    let failed = admin(&admin_client, Method::POST, "/admin/v1/reload", "").await;
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "default", "+get"])
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        failed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        failed.body
    );

    assert!(
        !stock_exists(&redis, &id),
        "the failed reload put the stock back"
    );
    let sold_again = accepted_while_trying(&client, &id, "late", Duration::from_secs(3)).await;
    assert_eq!(
        sold_again, 0,
        "units of a sold-out campaign were sold a second time"
    );
    assert_eq!(stored(&scenario, &id).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_path_reopens_a_lost_campaign_until_an_operator_rebuilds_it() {
    let redis = RedisServer::start();
    let home = StoreHome::new(Backend::Sqlite);
    let campaign = CampaignSpec::open("lost-paths", 5, 1);
    let id = campaign.id.clone();
    let (mut scenario, admin_client) = scenario_on(&redis, &home, campaign);
    let mut gateway = Process::start(&scenario, home.path());
    gateway.pin(&mut scenario);
    let client = gateway.client();
    sell(&client, &id, "early", 3).await;
    stored_count(&scenario, &id, 3).await;
    lose(&redis, &id);

    // Start: the gateway comes up, but refuses the campaign and says why.
    gateway.kill();
    let gateway = Process::start(&scenario, home.path());
    check_refused_and_why(&client, &id).await;
    assert!(!stock_exists(&redis, &id));

    // Reload, SIGHUP, an admin edit, a stock change, a close: none gives it stock.
    let config = gateway.config.clone();
    no_reload_or_admin_change_gives_it_stock(&gateway, &admin_client, &redis, &id).await;
    let sold_again = accepted_while_trying(&client, &id, "late", Duration::from_secs(2)).await;
    assert_eq!(sold_again, 0);
    assert!(config.exists());

    // The operator rebuilds it from the store: exactly the 2 units left sell, once.
    let rebuilt = rebuild(&admin_client, &id).await;
    assert_eq!(rebuilt["taken"], 3, "{rebuilt}");
    assert_eq!(rebuilt["remaining"], 2, "{rebuilt}");
    // An early buyer asking again gets their order back, not a second one.
    let again = client
        .purchase("early-0", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let sold = accepted_while_trying(&client, &id, "after-rebuild", Duration::from_secs(2)).await;
    assert_eq!(sold, 2);
    stored_count(&scenario, &id, 5).await;

    // Closing it early writes its settings, never stock it does not have.
    let closed = admin(
        &admin_client,
        Method::POST,
        &format!("/admin/v1/campaigns/{id}/close"),
        "",
    )
    .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    let mut conn = redis.client().get_connection().unwrap();
    let left: i64 = conn.get(CampaignKeys::new(&id).stock).unwrap();
    assert_eq!(left, 0);
}

/// The gateway started on a lost campaign refuses it, and `/readyz` says why.
async fn check_refused_and_why(client: &Client, id: &str) {
    let refused = client
        .purchase("after-start", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert_eq!(refused.code(), "campaign_needs_repair");
    let ready = client.get("/readyz", None).await;
    let reason = ready.body["campaigns_needing_repair"][id]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("lost its data"), "{}", ready.body);
}

/// Reload, SIGHUP, an admin edit, a stock change: none gives the lost campaign stock.
async fn no_reload_or_admin_change_gives_it_stock(
    gateway: &Process,
    admin_client: &Client,
    redis: &RedisServer,
    id: &str,
) {
    let reloaded = admin(admin_client, Method::POST, "/admin/v1/reload", "").await;
    assert_eq!(reloaded.status, StatusCode::OK, "{}", reloaded.body);
    assert!(!stock_exists(redis, id), "reload");
    gateway.hangup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!stock_exists(redis, id), "SIGHUP");
    let put = admin(
        admin_client,
        Method::PUT,
        &format!("/admin/v1/campaigns/{id}"),
        r#"{"unit_price_cents": 2999}"#,
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert!(!stock_exists(redis, id), "admin edit");
    let restock = admin(
        admin_client,
        Method::POST,
        &format!("/admin/v1/campaigns/{id}/stock"),
        r#"{"stock_total": 50}"#,
    )
    .await;
    assert_eq!(restock.status, StatusCode::CONFLICT, "{}", restock.body);
    assert!(!stock_exists(redis, id), "admin stock change");
}

/// Copies the campaign's keys (a snapshot) so they can be put back later. A key gone between
/// `KEYS` and its `DUMP` (a journal the persistence workers just emptied) is not in it, as in a
/// snapshot taken a moment later.
fn snapshot(redis: &RedisServer, id: &str) -> Vec<(String, Vec<u8>)> {
    let mut conn = redis.client().get_connection().unwrap();
    let keys: Vec<String> = conn.keys(format!("fg:{{{id}}}:*")).unwrap();
    keys.into_iter()
        .filter_map(|k| {
            let dump: Option<Vec<u8>> = redis::cmd("DUMP").arg(&k).query(&mut conn).unwrap();
            dump.map(|dump| (k, dump))
        })
        .collect()
}

fn restore(redis: &RedisServer, id: &str, snapshot: &[(String, Vec<u8>)]) {
    lose(redis, id);
    let mut conn = redis.client().get_connection().unwrap();
    for (key, dump) in snapshot {
        let _: () = redis::cmd("RESTORE")
            .arg(key)
            .arg(0)
            .arg(dump.as_slice())
            .query(&mut conn)
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restored_from_an_older_snapshot_is_refused_until_rebuilt() {
    let redis = RedisServer::start();
    let home = StoreHome::new(Backend::Sqlite);
    let campaign = CampaignSpec::open("stale", 6, 1);
    let id = campaign.id.clone();
    let (scenario, admin_client) = scenario_on(&redis, &home, campaign);
    let gateway = InProcess::start_from_file(&scenario, &home.path().join("gateway.toml"));
    let client = gateway.client();
    sell(&client, &id, "before", 2).await;
    stored_count(&scenario, &id, 2).await;
    let old = snapshot(&redis, &id);
    sell(&client, &id, "after", 3).await;
    stored_count(&scenario, &id, 5).await;
    gateway.stop().unwrap();

    // Redis comes back from the older snapshot: its stock says 4 left, the store says 1.
    restore(&redis, &id, &old);
    let gateway = InProcess::start_from_file(&scenario, &home.path().join("gateway.toml"));
    let client = gateway.client();
    let refused = client
        .purchase("while-stale", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(refused.code(), "campaign_needs_repair", "{}", refused.body);
    let ready = client.get("/readyz", None).await;
    let reason = ready.body["campaigns_needing_repair"][&id]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("older state"), "{}", ready.body);
    // A reload checks again and still refuses it.
    let reloaded = admin(&admin_client, Method::POST, "/admin/v1/reload", "").await;
    assert_eq!(reloaded.status, StatusCode::OK, "{}", reloaded.body);
    let still = client
        .purchase("while-stale-2", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(still.code(), "campaign_needs_repair", "{}", still.body);

    let rebuilt = rebuild(&admin_client, &id).await;
    assert_eq!(rebuilt["restored"], 3, "{rebuilt}");
    assert_eq!(rebuilt["remaining"], 1, "{rebuilt}");
    // The buyers the snapshot forgot are held to their limit again.
    let again = client
        .purchase("after-1", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let sold = accepted_while_trying(&client, &id, "last", Duration::from_secs(2)).await;
    assert_eq!(sold, 1, "exactly the one unit the store says is left");
    stored_count(&scenario, &id, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_starts_from_the_stock_total_an_operator_set_not_the_configs() {
    let redis = RedisServer::start();
    let home = StoreHome::new(Backend::Postgres);
    let campaign = CampaignSpec::open("lost-restock", 10, 1);
    let id = campaign.id.clone();
    let (scenario, admin_client) = scenario_on(&redis, &home, campaign);
    let gateway = InProcess::start_from_file(&scenario, &home.path().join("gateway.toml"));
    let client = gateway.client();
    sell(&client, &id, "early", 2).await;
    let restock = admin(
        &admin_client,
        Method::POST,
        &format!("/admin/v1/campaigns/{id}/stock"),
        r#"{"stock_total": 5}"#,
    )
    .await;
    assert_eq!(restock.status, StatusCode::OK, "{}", restock.body);
    assert_eq!(restock.body["recorded"], true, "{}", restock.body);
    stored_count(&scenario, &id, 2).await;
    gateway.stop().unwrap();
    lose(&redis, &id);

    let gateway = InProcess::start_from_file(&scenario, &home.path().join("gateway.toml"));
    let client = gateway.client();
    let rebuilt = rebuild(&admin_client, &id).await;
    assert_eq!(rebuilt["stock_total"], 5, "{rebuilt}");
    assert_eq!(rebuilt["remaining"], 3, "{rebuilt}");
    let sold = accepted_while_trying(&client, &id, "late", Duration::from_secs(2)).await;
    assert_eq!(sold, 3, "the operator's total of 5, not the config's 10");
}
