//! Issue #11 part 4: failover without losing an acknowledged order.
//!
//! Redis replicates asynchronously: a master that dies can take its last acknowledged writes
//! with it, and the replica promoted in its place sells their units again. With
//! `redis.replica_acks = n` every reservation batch waits for `n` replicas before any answer,
//! and a batch they do not hold is answered 503 `outcome_unknown` (its token retry tells the
//! truth). The faults are real: a replica stopped with SIGSTOP (its link cut, so nothing reaches
//! it), a master killed with SIGKILL under load, a real failover of a real Redis Cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flashgate_stock::{CampaignKeys, StockConnection, Timeouts};
use flashgate_tests::client::{Client, Reply};
use flashgate_tests::gateway::{InProcess, Process};
use flashgate_tests::redis_cluster::RedisCluster;
use flashgate_tests::redis_server::RedisServer;
use flashgate_tests::scenario::{CampaignSpec, Scenario, fresh_node_id};
use flashgate_tests::store_home::{Backend, StoreHome, stored};
use http::StatusCode;
use redis::IntoConnectionInfo as _;
use serde_json::json;

const ACKS: &str = "replica_acks = 1\nreplica_ack_timeout = \"50ms\"\n";

/// A connection to the cluster as it is now (through its live nodes), as the tests read it.
async fn cluster_conn(cluster: &RedisCluster) -> StockConnection {
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
async fn missing_in_redis(cluster: &RedisCluster, campaign: &str, orders: &[u64]) -> Vec<u64> {
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
fn wait_for_promotion(cluster: &RedisCluster, key: &str, replica: u16) -> Duration {
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
async fn settle(client: &Client, user: &str, campaign: &str, token: Option<String>) -> Reply {
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

fn order_id(reply: &Reply) -> u64 {
    reply.order_id().parse().unwrap()
}

/// The id and token an `outcome_unknown` answer carries.
fn unknown_order(reply: &Reply) -> (u64, String) {
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

/// What a sale through a failover with a silenced replica answered.
struct Silenced {
    stock: usize,
    /// Orders answered 2xx, including retries with a token.
    acknowledged: Vec<u64>,
    /// Orders answered `outcome_unknown` while the replica was silent.
    unknown: usize,
    /// Acknowledged orders the promoted replica does not hold.
    lost: Vec<u64>,
    /// Acknowledged orders the store does not hold.
    not_stored: Vec<u64>,
}

/// A campaign of 10 units, 5 sold while the replica keeps up. Then its master's replica is
/// silenced (SIGSTOP, and its replication link cut on the master, so nothing the master writes
/// reaches it) and 5 more buyers come. The master is SIGKILLed, the replica resumed: it takes
/// over without the master's last writes, and the old master comes back as its replica. New
/// buyers come until sold out, and every `outcome_unknown` is retried with its token.
async fn sell_through_a_failover_with_a_silenced_replica(replica_acks: bool) -> Silenced {
    let mut cluster = RedisCluster::start_with_node_timeout(Duration::from_millis(1000));
    let home = StoreHome::new(Backend::Sqlite);
    let stock = 10;
    let campaign = CampaignSpec::open("silenced", stock as u64, 1);
    let id = campaign.id.clone();
    let mut scenario = home.scenario(vec![campaign]);
    scenario.redis_cluster = cluster.urls();
    if replica_acks {
        scenario.redis_extra = ACKS.into();
    }
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();
    let key = CampaignKeys::new(&id).stock;
    let (master, replicas) = cluster.master_and_replicas_of(&key);
    let replica = replicas[0];

    let mut acknowledged = Vec::new();
    for user in 0..5 {
        let r = settle(&client, &format!("a-{user}"), &id, None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        acknowledged.push(order_id(&r));
    }

    // Everything so far is on the replica; from now on nothing reaches it.
    cluster.wait_until_caught_up(master, replica);
    cluster.pause(replica);
    cluster.cli(master, &["CLIENT", "KILL", "TYPE", "replica"]);
    let info = cluster.cli(master, &["INFO", "replication"]);
    assert!(info.contains("connected_slaves:0"), "{info}");
    let buyers: Vec<_> = (0..5)
        .map(|user| {
            let (client, id) = (client.clone(), id.clone());
            tokio::spawn(async move {
                let user = format!("b-{user}");
                let reply = client
                    .purchase(&user, json!({ "campaign_id": id }))
                    .await
                    .unwrap();
                (user, reply)
            })
        })
        .collect();
    let mut unknown = Vec::new();
    for buyer in buyers {
        let (user, reply) = buyer.await.unwrap();
        match reply.status {
            StatusCode::ACCEPTED => acknowledged.push(order_id(&reply)),
            _ => {
                let (_, token) = unknown_order(&reply);
                unknown.push((user, token));
            }
        }
    }

    cluster.kill(master);
    cluster.resume(replica);
    let took = wait_for_promotion(&cluster, &key, replica);
    eprintln!("failover took {took:?}");
    // The promoted replica needs a replica of its own to acknowledge anything.
    cluster.restart(master);
    cluster.wait_until_replicating(master);

    // The same gateway, never restarted, sells again; and every unknown outcome is settled.
    let mut sold_out = 0;
    for user in 0..10 {
        let r = settle(&client, &format!("c-{user}"), &id, None).await;
        match r.status {
            // 200: an earlier try of this buyer committed behind an unknown outcome, and the
            // retry is shown that order.
            StatusCode::ACCEPTED | StatusCode::OK => acknowledged.push(order_id(&r)),
            StatusCode::CONFLICT if r.code() == "sold_out" => sold_out += 1,
            other => panic!("{other}: {}", r.body),
        }
    }
    assert!(sold_out > 0, "the campaign sells out");
    for (user, token) in &unknown {
        let r = settle(&client, user, &id, Some(token.clone())).await;
        match r.status {
            // A real order: made on the new master by the retry, or found there.
            StatusCode::ACCEPTED | StatusCode::OK => acknowledged.push(order_id(&r)),
            // Nothing: the lost reservation is gone, and so is the stock.
            StatusCode::CONFLICT if r.code() == "sold_out" => {}
            other => panic!("{other}: {}", r.body),
        }
    }

    let lost = missing_in_redis(&cluster, &id, &acknowledged).await;
    // Persisted within a few reconciler passes, if at all.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let in_store: HashSet<u64> = stored(&scenario, &id).iter().map(|o| o.order_id).collect();
    let not_stored = acknowledged
        .iter()
        .filter(|o| !in_store.contains(o))
        .copied()
        .collect();
    gateway.stop().unwrap();
    Silenced {
        stock,
        acknowledged,
        unknown: unknown.len(),
        lost,
        not_stored,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replica_acks_a_failover_loses_no_acknowledged_order() {
    let sale = sell_through_a_failover_with_a_silenced_replica(true).await;
    assert_eq!(
        sale.lost, [0u64; 0],
        "acknowledged orders lost in the failover"
    );
    assert_eq!(sale.not_stored, [0u64; 0], "acknowledged orders not stored");
    assert_eq!(
        sale.unknown, 5,
        "what the silenced replica never got was not acknowledged"
    );
    let distinct: HashSet<u64> = sale.acknowledged.iter().copied().collect();
    assert_eq!(distinct.len(), sale.acknowledged.len(), "an order id twice");
    assert_eq!(
        sale.acknowledged.len(),
        sale.stock,
        "exactly the stock acknowledged: {:?}",
        sale.acknowledged
    );
}

/// The fault `replica_acks` exists for, shown on the same sale without it: the buyers served
/// while the replica was silent were told 202, the failover lost their orders, and their units
/// were sold again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_replica_acks_the_same_failover_loses_acknowledged_orders() {
    let sale = sell_through_a_failover_with_a_silenced_replica(false).await;
    assert_eq!(sale.unknown, 0);
    assert_eq!(sale.lost.len(), 5, "the silenced replica's orders are lost");
    assert!(
        sale.acknowledged.len() > sale.stock,
        "{} acknowledged for {} units",
        sale.acknowledged.len(),
        sale.stock
    );
}

/// What one purchase of the load answered.
struct Sale {
    campaign: String,
    gateway: usize,
    user: String,
    started: Instant,
    reply: Reply,
}

/// Two gateway processes, many buyers on two campaigns; the master serving one campaign is
/// SIGKILLed mid-load. Its replica takes over, the gateways find it without a restart and sell
/// again (once the old master is back as a replica to acknowledge), and afterwards every
/// acknowledged order is in Redis and in the store, no unit is sold twice, and every
/// `outcome_unknown` is settled by its token retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_under_load_loses_no_acknowledged_order() {
    let mut cluster = RedisCluster::start_with_node_timeout(Duration::from_millis(1000));
    let home = StoreHome::new(Backend::Postgres);
    let stock = 20_000;
    let (a, b) = (
        CampaignSpec::open("kill-a", stock, 1),
        CampaignSpec::open("kill-b", stock, 1),
    );
    let campaigns = [a.id.clone(), b.id.clone()];
    let mut base = home.scenario(vec![a, b]);
    base.redis_cluster = cluster.urls();
    base.redis_extra = ACKS.into();
    let gateways: Vec<Process> = (0..2)
        .map(|_| {
            let mut scenario = base.clone();
            scenario.node_id = fresh_node_id();
            Process::start(&scenario, home.path())
        })
        .collect();
    let clients: Vec<Client> = gateways.iter().map(Process::client).collect();
    let key = CampaignKeys::new(&campaigns[0]).stock;
    let (master, replicas) = cluster.master_and_replicas_of(&key);

    let stop = Arc::new(AtomicBool::new(false));
    let sales = Arc::new(std::sync::Mutex::new(Vec::<Sale>::new()));
    let workers: Vec<_> = (0..24)
        .map(|w| {
            let (clients, campaigns) = (clients.clone(), campaigns.clone());
            let (stop, sales) = (stop.clone(), sales.clone());
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let (gateway, campaign) = ((w + n) % 2, campaigns[n % 2].clone());
                    let user = format!("w{w}-{n}");
                    let started = Instant::now();
                    let reply = clients[gateway]
                        .purchase(&user, json!({ "campaign_id": campaign }))
                        .await
                        .unwrap_or_else(|e| panic!("gateway {gateway} stopped answering: {e}"));
                    sales.lock().unwrap().push(Sale {
                        campaign,
                        gateway,
                        user,
                        started,
                        reply,
                    });
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    let accepted_on_a_since = |since: Instant, gateway: usize| {
        sales.lock().unwrap().iter().any(|s| {
            s.campaign == campaigns[0]
                && s.gateway == gateway
                && s.started >= since
                && s.reply.status == StatusCode::ACCEPTED
        })
    };

    let began = Instant::now();
    while !(accepted_on_a_since(began, 0) && accepted_on_a_since(began, 1)) {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "no sale before the kill"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Mid-load: the kill lands while batches are in flight.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cluster.kill(master);
    let killed = Instant::now();
    let cluster = tokio::task::spawn_blocking(move || {
        let took = wait_for_promotion(&cluster, &key, replicas[0]);
        eprintln!("failover took {took:?}");
        cluster.restart(master);
        cluster.wait_until_replicating(master);
        cluster
    })
    .await
    .unwrap();
    let replicated = Instant::now();
    // Both gateways sell the killed master's campaign again, without a restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(accepted_on_a_since(replicated, 0) && accepted_on_a_since(replicated, 1)) {
        assert!(Instant::now() < deadline, "the gateways never sold again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("selling again {:?} after the kill", killed.elapsed());
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    let sales = std::mem::take(&mut *sales.lock().unwrap());
    let mut acknowledged: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut unknown = Vec::new();
    let mut codes: HashMap<String, usize> = HashMap::new();
    for s in &sales {
        *codes
            .entry(format!("{} {}", s.reply.status.as_u16(), s.reply.code()))
            .or_default() += 1;
        match (s.reply.status, s.reply.code()) {
            (StatusCode::ACCEPTED, _) => acknowledged
                .entry(&s.campaign)
                .or_default()
                .push(order_id(&s.reply)),
            (StatusCode::SERVICE_UNAVAILABLE, "outcome_unknown") => {
                unknown.push((s, unknown_order(&s.reply).1));
            }
            // Nothing recorded: Redis could not be reached, or the gateway was saturated.
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "redis_unavailable" | "overloaded" | "campaign_not_loaded",
            ) => {}
            (status, _) => panic!("{status}: {}", s.reply.body),
        }
    }
    eprintln!("{} purchases: {codes:?}", sales.len());
    // Every unknown outcome settled by its token retry: a real order, or nothing.
    for (s, token) in &unknown {
        let r = settle(
            &clients[s.gateway],
            &s.user,
            &s.campaign,
            Some(token.clone()),
        )
        .await;
        match r.status {
            StatusCode::ACCEPTED | StatusCode::OK => acknowledged
                .entry(&s.campaign)
                .or_default()
                .push(order_id(&r)),
            other => panic!("{other}: {}", r.body),
        }
    }

    let mut conn = cluster_conn(&cluster).await;
    for id in &campaigns {
        let orders = acknowledged.remove(id.as_str()).unwrap_or_default();
        let distinct: HashSet<u64> = orders.iter().copied().collect();
        assert_eq!(distinct.len(), orders.len(), "an order acknowledged twice");
        assert!(orders.len() as u64 <= stock, "oversold {id}");
        let lost = missing_in_redis(&cluster, id, &orders).await;
        assert_eq!(lost, [0u64; 0], "acknowledged orders of {id} lost");
        // Redis holds exactly the acknowledged orders, and their units are gone from its stock.
        let keys = CampaignKeys::new(id);
        let held = flashgate_stock::orders_held(&mut conn, &keys)
            .await
            .unwrap();
        assert_eq!(
            held,
            orders.len() as u64,
            "orders of {id} nobody was told of"
        );
        let left = flashgate_stock::remaining_stock(&mut conn, &keys)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            left as u64 + held,
            stock,
            "units of {id} counted twice or lost"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let in_store: HashSet<u64> = stored(&base, id).iter().map(|o| o.order_id).collect();
            if distinct.is_subset(&in_store) {
                assert_eq!(in_store.len(), distinct.len(), "stored orders of {id}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} acknowledged orders of {id} never stored",
                distinct.difference(&in_store).count()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    drop(gateways);
}
