//! Eight buckets on a cluster, one gateway: exactly the stock sold, conserved whenever sampled,
//! and every bucket drained; every order stored.

use std::collections::HashSet;
use std::time::Duration;

use flashgate_stock::CampaignLayout;
use flashgate_tests::conservation::{self, Sampler};
use flashgate_tests::eventually;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_cluster::RedisCluster;
use flashgate_tests::store_home::{Backend, StoreHome, stored};

use crate::support::{accepted, bucketed, load, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_buckets_on_a_cluster_sell_the_stock_exactly_once_and_conserve_it() {
    let cluster = RedisCluster::start();
    let home = StoreHome::new(Backend::Sqlite);
    let spec = bucketed("bk8", 1_000, 8);
    let id = spec.id.clone();
    let mut scenario = home.scenario(vec![spec]);
    scenario.redis_cluster = cluster.urls();
    let admin = format!("127.0.0.1:{}", flashgate_tests::free_port());
    scenario.extra = format!("\n[admin]\nlisten = \"{admin}\"\n");
    let gateway = InProcess::start(&scenario);
    let layout = CampaignLayout::new(&id, 8);
    let mut conn = conservation::connect(&cluster.urls()).await;
    conservation::check(&mut conn, &layout, 1_000)
        .await
        .unwrap();
    let sampler = Sampler::start(conn.clone(), layout.clone(), 1_000);

    // 20,000 users, a quarter of them asking twice. Half are spread over the buckets by their
    // gene; the other half all live in bucket 0, which runs dry first and borrows.
    let mut users: Vec<String> = (0..10_000)
        .flat_map(|u| [format!("buyer-{u}"), user(0, u)])
        .collect();
    users.extend((0..5_000).map(|u| users[u * 4].clone()).collect::<Vec<_>>());
    let answers = load(&[gateway.client()], &id, users, 128).await;
    let (samples, violations) = sampler.finish().await;

    let sold = accepted(&answers);
    assert_eq!(sold.len(), 1_000, "exactly the stock is sold");
    let ids: HashSet<&String> = sold.values().collect();
    assert_eq!(ids.len(), 1_000, "no order id twice");
    assert!(violations.is_empty(), "conservation broken: {violations:?}");
    assert!(samples >= 5, "only {samples} samples");
    let census = conservation::check(&mut conn, &layout, 1_000)
        .await
        .unwrap();
    for (b, bucket) in census.buckets.iter().enumerate() {
        assert_eq!(bucket.stock, Some(0), "bucket {b} drained");
    }
    assert_eq!(census.pending(), 0);
    eventually(Duration::from_secs(20), "every order in the store", || {
        let (s, id) = (scenario.clone(), id.clone());
        async move { stored(&s, &id).len() == 1_000 }
    })
    .await;
    let rows = stored(&scenario, &id);
    let buyers: HashSet<&str> = rows.iter().map(|o| o.user_id.as_str()).collect();
    assert_eq!(buyers.len(), 1_000, "no buyer above the limit in the store");
    let metrics = flashgate_tests::client::metrics_text(&admin).await;
    let transfers: u64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with(&format!(
                "flashgate_bucket_transfers_total{{campaign=\"{id}\""
            ))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum();
    assert!(transfers > 0, "dry buckets borrowed: {metrics}");
    for b in 0..8 {
        let drained = format!("flashgate_bucket_stock{{campaign=\"{id}\",bucket=\"{b}\"}} 0");
        assert!(metrics.contains(&drained), "{drained} in {metrics}");
    }
    gateway.stop().unwrap();
}
