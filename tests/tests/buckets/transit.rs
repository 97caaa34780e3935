//! Units in transit toward a dry home bucket (taken from the donor, not yet credited) are sold
//! to the buyer who asks there, not refused.

use flashgate_stock::CampaignLayout;
use flashgate_tests::conservation;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_cluster::RedisCluster;
use flashgate_tests::store_home::{Backend, StoreHome};
use http::StatusCode;
use serde_json::json;

use crate::support::{bucketed, user};

/// A buyer whose home bucket is dry while units are on their way to it (another gateway's
/// transfer, taken from the donor and not yet credited) buys one of them: the borrow finishes
/// that transfer, and the home it filled is asked again. Answered sold out instead, the buyer
/// would also mark the campaign sold out here and turn away every buyer after them while the
/// units sat unsold (what CI saw once after a kill, stop 17).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_in_flight_toward_a_dry_home_bucket_are_sold_not_refused() {
    let cluster = RedisCluster::start();
    let home = StoreHome::new(Backend::Sqlite);
    // One unit over two buckets: bucket 0 holds it, bucket 1 is dry from the start.
    let spec = bucketed("bkflight", 1, 2);
    let id = spec.id.clone();
    let mut scenario = home.scenario(vec![spec]);
    scenario.redis_cluster = cluster.urls();
    let gateway = InProcess::start(&scenario);
    let layout = CampaignLayout::new(&id, 2);
    let mut conn = conservation::connect(&cluster.urls()).await;

    // Another gateway takes bucket 0's unit for bucket 1 and is held up before crediting it.
    let (taken, _) = flashgate_stock::buckets::take(
        &mut conn,
        &flashgate_stock::Scripts::new(),
        &layout.buckets[0],
        1,
        1,
        flashgate::clock::now_ms(),
    )
    .await
    .unwrap();
    assert!(taken.is_some(), "bucket 0 gave its unit");

    let bought = gateway
        .client()
        .purchase(&user(1, 0), json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(bought.status, StatusCode::ACCEPTED, "{}", bought.body);
    let census = conservation::check(&mut conn, &layout, 1).await.unwrap();
    assert_eq!((census.left(), census.pending()), (0, 0), "{census:?}");
}
