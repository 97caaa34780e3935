//! Several gateways behind one load balancer, sharing one Redis and one PostgreSQL: the stock
//! is sold once across them, and no two of them ever share a node id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use flashgate_stock::node::NodeKeys;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::scenario::{CampaignSpec, fresh_node_id};
use flashgate_tests::store_home::{Backend, StoreHome, stored};
use http::StatusCode;
use serde_json::json;
use tokio::sync::Semaphore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_on_one_redis_and_one_postgres_sell_the_stock_once() {
    let home = StoreHome::new(Backend::Postgres);
    let campaign = CampaignSpec::open("three", 300, 1);
    let id = campaign.id.clone();
    let base = home.scenario(vec![campaign]);
    let gateways: Vec<InProcess> = (0..3)
        .map(|_| {
            let mut scenario = base.clone();
            scenario.node_id = fresh_node_id();
            InProcess::start(&scenario)
        })
        .collect();
    let ports: HashSet<u16> = gateways.iter().map(|g| g.addr.port()).collect();
    assert_eq!(ports.len(), 3, "three instances on different ports");

    // 3,000 users, each trying twice at once, on two different gateways. At most 512
    // requests are in flight (the semaphore is fair, so a user's two tries still go together):
    // all 6,000 at once, a burst of new connections from this one process, once ended in a
    // client-side transport error (hyper-util's SendRequest) on a loaded CI machine, which is
    // not what this test is about.
    let clients: Vec<_> = gateways.iter().map(InProcess::client).collect();
    let in_flight = Arc::new(Semaphore::new(512));
    let tasks: Vec<_> = (0..3_000usize)
        .flat_map(|user| (0..2).map(move |k| (user, (user + k) % 3)))
        .map(|(user, gateway)| {
            let client = clients[gateway].clone();
            let body = json!({ "campaign_id": id });
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
                let _slot = in_flight.acquire_owned().await.unwrap();
                let user = format!("user-{user}");
                let reply = client.purchase(&user, body).await.unwrap();
                (user, reply)
            })
        })
        .collect();
    let mut accepted: HashMap<String, String> = HashMap::new();
    let mut repeated = Vec::new();
    for task in tasks {
        let (user, reply) = task.await.unwrap();
        match reply.status {
            StatusCode::ACCEPTED => {
                let previous = accepted.insert(user.clone(), reply.order_id().to_owned());
                assert!(previous.is_none(), "{user} bought twice");
            }
            // A buyer at the limit asking again is shown the order they already have.
            StatusCode::OK => repeated.push((user, reply.order_id().to_owned())),
            StatusCode::CONFLICT => {
                assert!(
                    matches!(reply.code(), "sold_out" | "limit_reached"),
                    "{}",
                    reply.body
                );
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    for (user, order) in &repeated {
        assert_eq!(
            accepted.get(user),
            Some(order),
            "{user} was shown another order"
        );
    }
    assert_eq!(accepted.len(), 300, "exactly the stock is sold");
    let ids: HashSet<&String> = accepted.values().collect();
    assert_eq!(ids.len(), 300, "no order id twice");

    for gateway in gateways {
        gateway.stop().unwrap();
    }
    let rows = stored(&base, &id);
    assert_eq!(rows.len(), 300, "exactly 300 rows");
    let row_ids: HashSet<String> = rows.iter().map(|o| o.order_id.to_string()).collect();
    assert_eq!(row_ids, ids.into_iter().cloned().collect::<HashSet<_>>());
    let mut per_user: HashMap<&str, u32> = HashMap::new();
    for o in &rows {
        *per_user.entry(&o.user_id).or_default() += o.quantity;
    }
    assert!(per_user.values().all(|&n| n == 1), "no user over the limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_gateway_with_the_same_node_id_refuses_to_start_and_names_it() {
    let home = StoreHome::new(Backend::Sqlite);
    let scenario = home.scenario(vec![CampaignSpec::open("nodeid", 10, 1)]);
    let first = InProcess::start(&scenario);

    let other_home = StoreHome::new(Backend::Sqlite);
    let mut second = other_home.scenario(scenario.campaigns.clone());
    second.node_id = scenario.node_id;
    let err = InProcess::try_start(&second)
        .err()
        .expect("a second gateway with the same node id must not start");
    let named = format!("node id {} is in use by another gateway", scenario.node_id);
    assert!(err.contains(&named), "{err}");
    assert!(err.contains("server.node_id"), "{err}");

    // The first gives its lease back when it stops: the id is free again at once.
    first.stop().unwrap();
    let successor = InProcess::try_start(&second).unwrap();
    successor.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_loses_its_node_id_mints_no_order_id_until_it_is_back() {
    use flashgate_tests::eventually;
    use redis::AsyncCommands;
    use std::time::Duration;

    let home = StoreHome::new(Backend::Sqlite);
    let campaign = CampaignSpec::open("leaselost", 1_000, 1);
    let id = campaign.id.clone();
    let scenario = home.scenario(vec![campaign]);
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();
    let lease = NodeKeys::new(scenario.node_id).lease;

    // Another instance takes the node id (as after a long partition from Redis).
    let mut redis = flashgate_tests::shared_redis().await;
    let _: () = redis
        .set_ex(&lease, "another-host/10.0.0.9:8080/1/1", 60)
        .await
        .unwrap();
    let (c, i) = (client.clone(), id.clone());
    eventually(
        Duration::from_secs(6),
        "purchases refused with node_id_lost",
        || {
            let (c, i) = (c.clone(), i.clone());
            async move {
                let reply = c
                    .purchase("lost-1", json!({ "campaign_id": i }))
                    .await
                    .unwrap();
                reply.status == StatusCode::SERVICE_UNAVAILABLE && reply.code() == "node_id_lost"
            }
        },
    )
    .await;

    // The other instance goes away: the lease is renewed to this gateway, and it sells again.
    let _: () = redis.del(&lease).await.unwrap();
    let (c, i) = (client.clone(), id.clone());
    eventually(Duration::from_secs(6), "purchases accepted again", || {
        let (c, i) = (c.clone(), i.clone());
        async move {
            let reply = c
                .purchase("back-1", json!({ "campaign_id": i }))
                .await
                .unwrap();
            reply.status == StatusCode::ACCEPTED
        }
    })
    .await;
    gateway.stop().unwrap();
}
