//! A sale through a failover whose promoted replica was silenced before it: with
//! `replica_acks` nothing acknowledged is lost; without, the same failover loses orders and
//! sells their units again.

use std::collections::HashSet;
use std::time::Duration;

use flashgate_stock::CampaignKeys;
use flashgate_tests::client::Client;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_cluster::RedisCluster;
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::store_home::{Backend, StoreHome, stored};
use http::StatusCode;
use serde_json::json;

use crate::support::{ACKS, missing_in_redis, order_id, settle, unknown_order, wait_for_promotion};

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

    silence(&cluster, master, replica);
    let unknown = buy_while_silenced(&client, &id, &mut acknowledged).await;

    cluster.kill(master);
    cluster.resume(replica);
    let took = wait_for_promotion(&cluster, &key, replica);
    eprintln!("failover took {took:?}");
    // The promoted replica needs a replica of its own to acknowledge anything.
    cluster.restart(master);
    cluster.wait_until_replicating(master);

    sell_out_and_settle(&client, &id, &unknown, &mut acknowledged).await;

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

/// Everything so far is on the replica; from now on nothing reaches it.
fn silence(cluster: &RedisCluster, master: u16, replica: u16) {
    cluster.wait_until_caught_up(master, replica);
    cluster.pause(replica);
    cluster.cli(master, &["CLIENT", "KILL", "TYPE", "replica"]);
    let info = cluster.cli(master, &["INFO", "replication"]);
    assert!(info.contains("connected_slaves:0"), "{info}");
}

/// Five buyers at once while the replica is silent: the orders answered 202 join
/// `acknowledged`, and the (user, token) of every `outcome_unknown` is returned.
async fn buy_while_silenced(
    client: &Client,
    id: &str,
    acknowledged: &mut Vec<u64>,
) -> Vec<(String, String)> {
    let buyers: Vec<_> = (0..5)
        .map(|user| {
            let (client, id) = (client.clone(), id.to_owned());
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
    unknown
}

/// The same gateway, never restarted, sells again until sold out; and every unknown outcome
/// is settled by its token retry. Every order answered 2xx joins `acknowledged`.
async fn sell_out_and_settle(
    client: &Client,
    id: &str,
    unknown: &[(String, String)],
    acknowledged: &mut Vec<u64>,
) {
    let mut sold_out = 0;
    for user in 0..10 {
        let r = settle(client, &format!("c-{user}"), id, None).await;
        match r.status {
            // 200: an earlier try of this buyer committed behind an unknown outcome, and the
            // retry is shown that order.
            StatusCode::ACCEPTED | StatusCode::OK => acknowledged.push(order_id(&r)),
            StatusCode::CONFLICT if r.code() == "sold_out" => sold_out += 1,
            other => panic!("{other}: {}", r.body),
        }
    }
    assert!(sold_out > 0, "the campaign sells out");
    for (user, token) in unknown {
        let r = settle(client, user, id, Some(token.clone())).await;
        match r.status {
            // A real order: made on the new master by the retry, or found there.
            StatusCode::ACCEPTED | StatusCode::OK => acknowledged.push(order_id(&r)),
            // Nothing: the lost reservation is gone, and so is the stock.
            StatusCode::CONFLICT if r.code() == "sold_out" => {}
            other => panic!("{other}: {}", r.body),
        }
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
