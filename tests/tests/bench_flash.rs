//! `flashgate-bench flash --verify` against a real gateway and Redis: it reports the sale
//! correctly, and it fails when the sale was not correct.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate_stock::CampaignKeys;
use flashgate_tests::bench::{BenchRun, args, bench, failed_checks};
use flashgate_tests::gateway::InProcess;
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::{shared_redis, shared_redis_url};
use redis::AsyncCommands;

/// Runs a flash of 2,000 users on the gateway; the gateway stops afterwards.
async fn flash_then_stop(gateway: InProcess, config: std::path::PathBuf, id: String) -> BenchRun {
    let argv = args([
        "flash".into(),
        "--addr".into(),
        gateway.addr.to_string(),
        "--config".into(),
        config.display().to_string(),
        "--campaign".into(),
        id,
        "--users".into(),
        "2000".into(),
        "--connections".into(),
        "32".into(),
        "--drain-patience".into(),
        "20s".into(),
    ]);
    let run = bench(argv, &config.with_extension("json")).await;
    drop(gateway);
    run
}

fn setup(prefix: &str) -> (tempfile::TempDir, std::path::PathBuf, InProcess, String) {
    let dir = tempfile::tempdir().unwrap();
    let campaign = CampaignSpec::open(prefix, 100, 1);
    let id = campaign.id.clone();
    let scenario = Scenario::new(
        shared_redis_url(),
        dir.path().join("orders.db"),
        vec![campaign],
    );
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, scenario.toml()).unwrap();
    let gateway = InProcess::start(&scenario);
    (dir, config, gateway, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_flash_sale_sells_exactly_the_stock_and_verifies() {
    let (_dir, config, gateway, id) = setup("benchflash");
    let BenchRun { passed, report, .. } = flash_then_stop(gateway, config, id).await;
    assert!(passed, "bench exited non-zero: {report:#}");
    assert_eq!(report["requests"], 2_000);
    assert_eq!(report["accepted"], 100);
    assert_eq!(report["by_code"]["sold_out"], 1_900);
    assert!(report["sold_out_at_s"].as_f64().is_some());
    assert_eq!(
        report["verification"]["passed"], true,
        "{:#}",
        report["verification"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_fails_when_the_stock_was_oversold() {
    let (_dir, config, gateway, id) = setup("benchoversold");
    // Behind the gateway's back, 50 units appear that the campaign never had.
    let mut conn = shared_redis().await;
    let _: i64 = conn.incr(CampaignKeys::new(&id).stock, 50).await.unwrap();

    let BenchRun { passed, report, .. } = flash_then_stop(gateway, config, id).await;
    assert_eq!(report["accepted"], 150, "the manipulated stock was sold");
    assert!(!passed, "bench must exit non-zero when verification fails");
    assert_eq!(report["verification"]["passed"], false);
    let failed = failed_checks(&report);
    assert!(
        failed.iter().any(|c| c == "units accepted <= stock"),
        "{failed:?}"
    );
}
