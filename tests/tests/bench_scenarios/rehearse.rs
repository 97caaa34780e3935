//! `rehearse`: a flash on its own Redis (or private cluster) and gateway, both stopped after.

use std::net::TcpStream;

use flashgate_stock::CampaignKeys;
use flashgate_tests::bench::{BenchRun, args, bench, failed_checks};
use flashgate_tests::gateway::{binary, stored_orders};
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::shared_redis;
use redis::AsyncCommands;

use crate::support::config_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehearse_runs_a_flash_on_its_own_redis_and_gateway_and_stops_both() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = CampaignSpec::open("rehearse", 100, 1);
    let id = campaign.id.clone();
    // The config names the shared Redis; the rehearsal must not touch it.
    let (_, config) = config_for(dir.path(), campaign);
    let work = dir.path().join("work");

    let BenchRun {
        passed,
        report,
        stderr,
    } = rehearse_flash(&[], &config, &work, &id).await;

    assert!(passed, "{:?}\n{stderr}", failed_checks(&report));
    assert_eq!(report["accepted"], 100);
    assert_eq!(report["verification"]["passed"], true);
    assert!(
        stderr.contains("gateway stopped (exit status: 0)"),
        "{stderr}"
    );
    // Its own store holds the orders; the shared Redis never saw the campaign.
    assert_eq!(stored_orders(&work.join("orders.db"), &id).len(), 100);
    let exists: bool = shared_redis()
        .await
        .exists(CampaignKeys::new(&id).stock)
        .await
        .unwrap();
    assert!(!exists, "the rehearsal used the shared Redis");
    // Both servers it started are gone.
    let line = stderr
        .lines()
        .find(|l| l.starts_with("rehearse: gateway on "))
        .unwrap();
    let addrs: Vec<&str> = line
        .split_whitespace()
        .filter(|w| w.starts_with("127.0.0.1:"))
        .map(|w| w.trim_end_matches(','))
        .collect();
    assert_eq!(addrs.len(), 2, "{line}");
    for addr in addrs {
        assert!(
            TcpStream::connect(addr).is_err(),
            "{addr} still accepts connections"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehearse_on_a_private_cluster_sells_a_bucketed_campaign_and_reports_each_master() {
    let dir = tempfile::tempdir().unwrap();
    let mut campaign = CampaignSpec::open("rehearse-cl", 100, 1);
    campaign.buckets = 4;
    let id = campaign.id.clone();
    let (_, config) = config_for(dir.path(), campaign);
    let work = dir.path().join("work");
    let stats = dir.path().join("redis.json");

    let stats_arg = stats.display().to_string();
    let BenchRun {
        passed,
        report,
        stderr,
    } = rehearse_flash(
        &["--cluster", "--redis-stats", &stats_arg],
        &config,
        &work,
        &id,
    )
    .await;

    assert!(passed, "{:?}\n{stderr}", failed_checks(&report));
    assert_eq!(report["accepted"], 100);
    let conserved = report["verification"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "stock conserved")
        .unwrap();
    assert!(
        conserved["detail"]
            .as_str()
            .unwrap()
            .contains("over 4 buckets"),
        "{conserved}"
    );
    assert_eq!(stored_orders(&work.join("orders.db"), &id).len(), 100);
    // Three masters, and what each spent; together they ran the reservations.
    let masters: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let masters = masters.as_array().unwrap();
    assert_eq!(masters.len(), 3, "{masters:?}");
    let calls: u64 = masters
        .iter()
        .map(|m| m["script_calls"].as_u64().unwrap())
        .sum();
    assert!(calls > 0, "{masters:?}");
    // Every node it started is gone.
    let line = stderr
        .lines()
        .find(|l| l.starts_with("rehearse: gateway on "))
        .unwrap();
    let addrs: Vec<&str> = line
        .split_whitespace()
        .filter(|w| w.starts_with("127.0.0.1:"))
        .map(|w| w.trim_end_matches(','))
        .collect();
    assert_eq!(addrs.len(), 4, "a gateway and three masters: {line}");
    for addr in addrs {
        assert!(
            TcpStream::connect(addr).is_err(),
            "{addr} still accepts connections"
        );
    }
}

/// `rehearse [options] --config … --gateway … --workdir … flash` of 1,000 buyers on 16
/// connections for campaign `id`; its report is written under `work`.
async fn rehearse_flash(
    options: &[&str],
    config: &std::path::Path,
    work: &std::path::Path,
    id: &str,
) -> BenchRun {
    let mut argv = vec!["rehearse".to_owned()];
    argv.extend(options.iter().map(|o| (*o).to_owned()));
    for (flag, value) in [
        ("--config", config.display().to_string()),
        ("--gateway", binary().display().to_string()),
        ("--workdir", work.display().to_string()),
    ] {
        argv.extend([flag.to_owned(), value]);
    }
    argv.extend(
        [
            "flash",
            "--campaign",
            id,
            "--users",
            "1000",
            "--connections",
            "16",
        ]
        .map(str::to_owned),
    );
    bench(args(argv), &work.with_extension("json")).await
}
