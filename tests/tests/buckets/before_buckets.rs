//! A campaign put on sale before buckets existed keeps its keys after an upgrade.

use std::time::Duration;

use flashgate_tests::gateway::InProcess;
use flashgate_tests::scenario::{CampaignSpec, fresh_node_id};
use flashgate_tests::store_home::{Backend, StoreHome};

use crate::support::{accepted, load};

/// A campaign put on sale before buckets existed (no `buckets` in its meta) keeps selling from
/// its keys after an upgrade, even when the config now asks for buckets: its count is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_from_before_buckets_keeps_its_keys_and_sells_on() {
    use redis::AsyncCommands as _;
    let home = StoreHome::new(Backend::Sqlite);
    let spec = CampaignSpec::open("legacy", 10, 1);
    let id = spec.id.clone();
    let scenario = home.scenario(vec![spec.clone()]);
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();
    client
        .eventually_buys("early", &id, Duration::from_secs(5))
        .await;
    gateway.stop().unwrap();

    // What an older version wrote: the same keys, no bucket fields.
    let mut redis = flashgate_tests::shared_redis().await;
    let first = flashgate_stock::CampaignKeys::new(&id);
    let _: () = redis
        .hdel(&first.meta, &["buckets", "bucket"])
        .await
        .unwrap();

    let mut upgraded = spec;
    upgraded.buckets = 8;
    let mut scenario = home.scenario(vec![upgraded]);
    scenario.node_id = fresh_node_id();
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();
    let view = client.get(&format!("/api/v1/campaigns/{id}"), None).await;
    assert_eq!(view.body["remaining"], 9, "{}", view.body);
    let buyers: Vec<String> = (0..20).map(|n| format!("late-{n}")).collect();
    let sold = accepted(&load(std::slice::from_ref(&client), &id, buyers, 8).await);
    assert_eq!(sold.len(), 9, "the rest of its stock, once");
    let bucket_one = flashgate_stock::CampaignKeys::bucket(&id, 1);
    let exists: bool = redis.exists(&bucket_one.stock).await.unwrap();
    assert!(!exists, "no bucket was added to a live campaign");
    gateway.stop().unwrap();
}
