//! One bucketed campaign shared by three gateways selling at once: exactly the stock, across
//! them all.

use std::collections::HashSet;

use flashgate_stock::CampaignLayout;
use flashgate_tests::client::Client;
use flashgate_tests::conservation::{self, Sampler};
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_cluster::RedisCluster;
use flashgate_tests::scenario::{Scenario, fresh_node_id};
use flashgate_tests::store_home::{Backend, StoreHome, stored};

use crate::support::{accepted, bucketed, load};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_on_a_cluster_sell_one_bucketed_campaign_exactly_once() {
    let cluster = RedisCluster::start();
    let home = StoreHome::new(Backend::Postgres);
    let spec = bucketed("bk3", 300, 8);
    let id = spec.id.clone();
    let mut base = home.scenario(vec![spec]);
    base.redis_cluster = cluster.urls();
    let gateways: Vec<InProcess> = (0..3)
        .map(|_| {
            let mut scenario: Scenario = base.clone();
            scenario.node_id = fresh_node_id();
            InProcess::start(&scenario)
        })
        .collect();
    let clients: Vec<Client> = gateways.iter().map(InProcess::client).collect();
    let layout = CampaignLayout::new(&id, 8);
    let conn = conservation::connect(&cluster.urls()).await;
    let sampler = Sampler::start(conn.clone(), layout.clone(), 300);

    // 3,000 users, each asking twice, on different gateways.
    let users: Vec<String> = (0..6_000).map(|i| format!("u3-{}", i / 2)).collect();
    let answers = load(&clients, &id, users, 96).await;
    let (samples, violations) = sampler.finish().await;
    let sold = accepted(&answers);
    assert_eq!(sold.len(), 300, "exactly the stock, across three gateways");
    assert!(violations.is_empty(), "{violations:?}");
    assert!(samples > 0);
    for gateway in gateways {
        gateway.stop().unwrap();
    }
    let rows = stored(&base, &id);
    let ids: HashSet<String> = rows.iter().map(|o| o.order_id.to_string()).collect();
    assert_eq!(ids.len(), 300, "exactly 300 rows");
    for order in sold.values() {
        assert!(ids.contains(order));
    }
}
