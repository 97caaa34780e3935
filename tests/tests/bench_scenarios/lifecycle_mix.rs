//! The lifecycle mix after a flash: every order settles and the stock adds up.

use flashgate_stock::{CampaignKeys, OrderStatus};
use flashgate_tests::bench::{BenchRun, args, bench, check_passed, failed_checks};
use flashgate_tests::gateway::{InProcess, stored_orders};
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::shared_redis;
use redis::AsyncCommands;

use crate::support::{config_for, target, words};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_mix_settles_every_order_and_the_stock_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut campaign = CampaignSpec::open("lifemix", 200, 1);
    campaign.pay_timeout = "2s".into();
    let id = campaign.id.clone();
    let (scenario, config) = config_for(dir.path(), campaign);
    let gateway = InProcess::start(&scenario);

    let mut argv = vec!["flash".to_owned()];
    argv.extend(target(gateway.addr, &config, &id));
    argv.extend(words(
        "--users 400 --connections 16 --pay-share 0.5 --cancel-share 0.25 --expiry-patience 5s",
    ));
    let BenchRun { passed, report, .. } = bench(args(argv), &dir.path().join("life.json")).await;
    drop(gateway);

    assert!(passed, "{:?}", failed_checks(&report));
    let life = &report["lifecycle"];
    assert_eq!(life["reserved"], 200, "{life:#}");
    assert_eq!(life["paid"], 100);
    assert_eq!(life["cancelled"], 50);
    assert_eq!(life["left_to_expire"], 50);
    for check in [
        "every order settled",
        "sold + returned == reserved",
        "stock conserved",
        "store equals Redis",
    ] {
        assert!(check_passed(&report, check), "{check}");
    }
    // Independently of the bench: the units not paid for are back on sale, and the store
    // holds 100 paid, 50 cancelled and 50 expired orders.
    let left: i64 = shared_redis()
        .await
        .get(CampaignKeys::new(&id).stock)
        .await
        .unwrap();
    assert_eq!(left, 100);
    let stored = stored_orders(&dir.path().join("orders.db"), &id);
    let count = |s: OrderStatus| stored.iter().filter(|o| o.status == s).count();
    assert_eq!(count(OrderStatus::Paid), 100);
    assert_eq!(count(OrderStatus::Cancelled), 50);
    assert_eq!(count(OrderStatus::Expired), 50);
}
