//! The order store down in the middle of a sale: purchases go on (Redis is the commit point),
//! the journal holds the backlog, `/readyz` says the store is degraded, and once the store is
//! back the backlog drains with nothing lost and nothing twice; on one Redis and on a Redis
//! Cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flashgate_stock::CampaignKeys;
use flashgate_tests::client::{Client, Reply};
use flashgate_tests::eventually;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_kind::TestRedis;
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::store_home::{Backend, PgDatabase, StoreHome, stored};
use http::StatusCode;
use redis::AsyncCommands;
use serde_json::json;
use tokio::task::JoinHandle;

flashgate_tests::on_each_redis!(
    purchases_go_on_through_a_ten_second_postgres_outage_and_the_backlog_drains,
    an_order_the_store_refuses_for_good_is_set_aside_and_holds_nothing_back,
);

async fn purchases_go_on_through_a_ten_second_postgres_outage_and_the_backlog_drains(
    redis: TestRedis,
) {
    // The test's database belongs to a role of its own: taking that role's login away (and
    // ending its sessions) is, for this gateway, PostgreSQL going down.
    let home = StoreHome {
        dir: tempfile::tempdir().unwrap(),
        database: Some(PgDatabase::create_with_owner()),
    };
    let database = home.database.as_ref().unwrap();
    let campaign = CampaignSpec::open("pgdown", 1_000_000, 1);
    let id = campaign.id.clone();
    let mut scenario = home.scenario(vec![campaign]);
    redis.point(&mut scenario);
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();

    // Purchases by ever new users, from four tasks, all through the outage.
    let stop = Arc::new(AtomicBool::new(false));
    let load = buy_until_stopped(&client, &id, &stop);

    tokio::time::sleep(Duration::from_secs(2)).await;
    database.set_login(false);
    let down_at = Instant::now();
    eventually(
        Duration::from_secs(5),
        "readyz reports the store degraded",
        || {
            let client = client.clone();
            async move {
                let ready = client.get("/readyz", None).await;
                ready.status == StatusCode::OK && ready.body["store"] == "degraded"
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(down_at.elapsed())).await;
    database.set_login(true);
    let up_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let accepted = accepted_through_the_outage(load, down_at, up_at).await;

    // Once the store is back, the reconciler drains the journal into it.
    let (s, i) = (scenario.clone(), id.clone());
    let expected = accepted.len();
    eventually(
        Duration::from_secs(30),
        "the store holds every accepted order",
        || {
            let (s, i) = (s.clone(), i.clone());
            async move { stored(&s, &i).len() >= expected }
        },
    )
    .await;
    let rows = stored(&scenario, &id);
    let row_ids: HashSet<String> = rows.iter().map(|o| o.order_id.to_string()).collect();
    assert_eq!(row_ids.len(), rows.len(), "no order twice");
    assert_eq!(row_ids, accepted, "exactly the accepted orders");
    eventually(
        Duration::from_secs(10),
        "readyz reports the store ok again",
        || {
            let client = client.clone();
            async move { client.get("/readyz", None).await.body["store"] == "ok" }
        },
    )
    .await;
    gateway.stop().unwrap();
}

/// What one buyer task of the load got: each answer, and when.
type Replies = Vec<(Instant, Reply)>;

/// Four tasks buying as ever new users, until `stop`.
fn buy_until_stopped(
    client: &Client,
    id: &str,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<Replies>> {
    (0..4)
        .map(|worker| {
            let (client, stop, id) = (client.clone(), stop.clone(), id.to_owned());
            tokio::spawn(async move {
                let mut replies = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let user = format!("buyer-{worker}-{n}");
                    n += 1;
                    let reply = client
                        .purchase(&user, json!({ "campaign_id": id }))
                        .await
                        .unwrap();
                    replies.push((Instant::now(), reply));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                replies
            })
        })
        .collect()
}

/// The orders of the load, every purchase accepted and more than 100 of them between
/// `down_at` and `up_at`.
async fn accepted_through_the_outage(
    load: Vec<JoinHandle<Replies>>,
    down_at: Instant,
    up_at: Instant,
) -> HashSet<String> {
    let mut accepted = HashSet::new();
    let mut during_outage = 0;
    for task in load {
        for (at, reply) in task.await.unwrap() {
            assert_eq!(
                reply.status,
                StatusCode::ACCEPTED,
                "a purchase failed: {}",
                reply.body
            );
            assert!(accepted.insert(reply.order_id().to_owned()));
            if at > down_at && at < up_at {
                during_outage += 1;
            }
        }
    }
    assert!(
        during_outage > 100,
        "only {during_outage} purchases during the outage"
    );
    accepted
}

async fn an_order_the_store_refuses_for_good_is_set_aside_and_holds_nothing_back(redis: TestRedis) {
    let home = StoreHome::new(Backend::Postgres);
    let campaign = CampaignSpec::open("poison", 1_000, 1);
    let id = campaign.id.clone();
    let mut scenario = home.scenario(vec![campaign]);
    redis.point(&mut scenario);
    let admin_addr = format!("127.0.0.1:{}", flashgate_tests::free_port());
    scenario.extra = format!("\n[admin]\nlisten = \"{admin_addr}\"\ntoken = \"{ADMIN_TOKEN}\"\n");
    let gateway = InProcess::start(&scenario);
    // From now on the store refuses, for good, any order of one buyer.
    let database = home.database.as_ref().unwrap();
    let refuse: String = (0..16)
        .map(|t| {
            format!(
                "ALTER TABLE orders_{t:02} ADD CONSTRAINT refuse_poison CHECK (user_id <> 'poison-user');"
            )
        })
        .collect();
    database.execute(&refuse);

    let (poison_order, good) = fifty_buyers_and_the_poison_user(&gateway.client(), &id).await;

    // Every other order reaches the store; the refused one is set aside with the reason.
    let (s, i) = (scenario.clone(), id.clone());
    eventually(
        Duration::from_secs(20),
        "the 50 good orders are stored",
        || {
            let (s, i) = (s.clone(), i.clone());
            async move { stored(&s, &i).len() == 50 }
        },
    )
    .await;
    let rows: HashSet<String> = stored(&scenario, &id)
        .iter()
        .map(|o| o.order_id.to_string())
        .collect();
    assert_eq!(rows, good);
    check_set_aside_not_journaled(&redis, &id, &poison_order).await;

    // The admin API lists it; once the cause is fixed, a retry gets it stored.
    retry_once_fixed(&admin_addr, database, &scenario, &id, &poison_order).await;
    gateway.stop().unwrap();
}

/// 50 buyers and `poison-user` buy at once, all accepted; returns the poison user's order and
/// the others'.
async fn fifty_buyers_and_the_poison_user(client: &Client, id: &str) -> (String, HashSet<String>) {
    let buys: Vec<_> = (0..50)
        .map(|n| format!("buyer-{n}"))
        .chain(["poison-user".to_owned()])
        .map(|user| {
            let (client, id) = (client.clone(), id.to_owned());
            tokio::spawn(async move {
                let reply = client
                    .purchase(&user, json!({ "campaign_id": id }))
                    .await
                    .unwrap();
                (user, reply)
            })
        })
        .collect();
    let mut poison_order = String::new();
    let mut good = HashSet::new();
    for buy in buys {
        let (user, reply) = buy.await.unwrap();
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        if user == "poison-user" {
            poison_order = reply.order_id().to_owned();
        } else {
            good.insert(reply.order_id().to_owned());
        }
    }
    (poison_order, good)
}

/// The refused order set aside with the store's reason, out of the journal, and the journal
/// drained.
async fn check_set_aside_not_journaled(redis: &TestRedis, id: &str, poison_order: &str) {
    let mut conn = redis.conn().await;
    let poisoned = CampaignKeys::new(id).poisoned;
    let journal = CampaignKeys::new(id).journal;
    let (p, i) = (poisoned.clone(), poison_order.to_owned());
    eventually(
        Duration::from_secs(10),
        "the refused order is set aside",
        || {
            let (mut conn, p, i) = (conn.clone(), p.clone(), i.clone());
            async move { conn.hexists::<_, _, bool>(&p, &i).await.unwrap() }
        },
    )
    .await;
    let reason: String = conn.hget(&poisoned, poison_order).await.unwrap();
    assert!(reason.contains("refuse_poison"), "{reason}");
    let still_journaled: bool = conn.sismember(&journal, poison_order).await.unwrap();
    assert!(
        !still_journaled,
        "a refused order must not be retried forever"
    );
    let j = journal.clone();
    eventually(Duration::from_secs(10), "the journal drains", || {
        let (mut conn, j) = (conn.clone(), j.clone());
        async move { conn.scard::<_, u64>(&j).await.unwrap() == 0 }
    })
    .await;
}

/// The admin API lists the set-aside order; once the store's refusal is dropped, a retry gets
/// it stored, and a second retry finds nothing set aside.
async fn retry_once_fixed(
    admin_addr: &str,
    database: &PgDatabase,
    scenario: &Scenario,
    id: &str,
    poison_order: &str,
) {
    let admin = flashgate_tests::client::Client::new(admin_addr.parse().unwrap());
    let listed = admin
        .send(
            http::Method::GET,
            &format!("/admin/v1/campaigns/{id}/poisoned"),
            Some(ADMIN_TOKEN),
            "",
        )
        .await
        .unwrap();
    assert_eq!(listed.body["orders"][0]["order_id"], poison_order);
    let drop_check: String = (0..16)
        .map(|t| format!("ALTER TABLE orders_{t:02} DROP CONSTRAINT refuse_poison;"))
        .collect();
    database.execute(&drop_check);
    let retry = format!("/admin/v1/campaigns/{id}/poisoned/{poison_order}/retry");
    let retried = admin
        .send(http::Method::POST, &retry, Some(ADMIN_TOKEN), "")
        .await
        .unwrap();
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    let (s, i) = (scenario.clone(), id.to_owned());
    eventually(
        Duration::from_secs(20),
        "the retried order is stored",
        || {
            let (s, i) = (s.clone(), i.clone());
            async move { stored(&s, &i).len() == 51 }
        },
    )
    .await;
    let again = admin
        .send(http::Method::POST, &retry, Some(ADMIN_TOKEN), "")
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::NOT_FOUND, "no longer set aside");
}

const ADMIN_TOKEN: &str = "admin-token-for-the-tests-0123";
