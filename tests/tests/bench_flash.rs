//! `flashgate-bench flash --verify` against a real gateway and Redis: it reports the sale
//! correctly, and it fails when the sale was not correct.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use flashgate_tests::gateway::{InProcess, bench_binary};
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::{shared_redis, shared_redis_url};
use redis::AsyncCommands;
use serde_json::Value;

/// Runs a flash of `users` on the gateway; returns (exit success, JSON report).
fn flash(
    gateway: &InProcess,
    config: &std::path::Path,
    campaign: &str,
    users: u32,
) -> (bool, Value) {
    let report = config.with_extension("json");
    let out = Command::new(bench_binary())
        .arg("flash")
        .args(["--addr", &gateway.addr.to_string()])
        .arg("--config")
        .arg(config)
        .args([
            "--campaign",
            campaign,
            "--users",
            &users.to_string(),
            "--connections",
            "32",
        ])
        .args(["--drain-patience", "20s"])
        .arg("--json")
        .arg(&report)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    (out.status.success(), json)
}

/// A flash of 2,000 users, run off the async threads; the gateway stops afterwards.
async fn flash_then_stop(
    gateway: InProcess,
    config: std::path::PathBuf,
    id: String,
) -> (bool, Value) {
    tokio::task::spawn_blocking(move || {
        let result = flash(&gateway, &config, &id, 2_000);
        drop(gateway);
        result
    })
    .await
    .unwrap()
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
    let (ok, report) = flash_then_stop(gateway, config, id).await;
    assert!(ok, "bench exited non-zero: {report:#}");
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
    let _: i64 = conn.incr(format!("fg:{{{id}}}:stock"), 50).await.unwrap();

    let (ok, report) = flash_then_stop(gateway, config, id).await;
    assert_eq!(report["accepted"], 150, "the manipulated stock was sold");
    assert!(!ok, "bench must exit non-zero when verification fails");
    assert_eq!(report["verification"]["passed"], false);
    let failed: Vec<&str> = report["verification"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"units accepted <= stock"), "{failed:?}");
}
