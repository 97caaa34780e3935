//! `compare`: the gateway and the reference servers it starts, under the same load.

use flashgate_stock::CampaignKeys;
use flashgate_tests::bench::{BenchRun, args, bench};
use flashgate_tests::gateway::InProcess;
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::shared_redis;
use redis::AsyncCommands;

use crate::support::{config_for, target, words};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_loads_the_gateway_and_both_reference_servers_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = CampaignSpec::open("compare", 1_000_000, 1_000_000);
    let id = campaign.id.clone();
    let (scenario, config) = config_for(dir.path(), campaign);
    let gateway = InProcess::start(&scenario);

    let mut argv = vec!["compare".to_owned()];
    argv.extend(target(gateway.addr, &config, &id));
    argv.extend(words(
        "--duration 1s --connections 8 --users 100 --naive-users 100000",
    ));
    let BenchRun { passed, report, .. } = bench(args(argv), &dir.path().join("cmp.json")).await;
    drop(gateway);

    assert!(passed);
    let round = &report["rounds"][0];
    let gateway_rate = round["gateway"]["requests_per_s"].as_f64().unwrap();
    let reference_rate = round["reference"]["requests_per_s"].as_f64().unwrap();
    assert!(gateway_rate > 0.0 && reference_rate > 0.0, "{report:#}");
    let ratio = report["ratio"].as_f64().unwrap();
    assert!((ratio - gateway_rate / reference_rate).abs() < 1e-9);
    // The naive gateway reserved in the same Redis, once per request: every buyer is new.
    let naive = &round["naive"];
    let naive_rate = naive["requests_per_s"].as_f64().unwrap();
    assert_eq!(naive["reservations"], naive["requests"], "{report:#}");
    assert!(naive["reservations"].as_u64().unwrap() > 0, "{report:#}");
    let ratio_naive = report["ratio_naive"].as_f64().unwrap();
    assert!((ratio_naive - gateway_rate / naive_rate).abs() < 1e-9);
    // What each server spent was read from outside it: the gateway's and Redis's CPU per
    // request, and Redis's script time per reservation.
    for side in ["gateway", "naive"] {
        for figure in [
            "server_cpu_us_per_request",
            "redis_script_us_per_reservation",
            "client_cpu_us_per_request",
        ] {
            let value = round[side][figure].as_f64();
            assert!(
                value.is_some_and(|v| v > 0.0),
                "{side} {figure}: {report:#}"
            );
        }
    }
    // Redis's own CPU, when its process is one this machine shows (not a container's).
    let server: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut shared_redis().await)
        .await
        .unwrap();
    let pid = server
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .unwrap()
        .trim();
    if std::path::Path::new(&format!("/proc/{pid}/stat")).exists() {
        let value = round["gateway"]["redis_cpu_us_per_request"].as_f64();
        assert!(value.is_some_and(|v| v > 0.0), "{report:#}");
    }
    // What the gateway was sent were real purchases: it holds them as orders.
    let orders: u64 = shared_redis()
        .await
        .hlen(CampaignKeys::new(&id).orders)
        .await
        .unwrap();
    assert!(orders > 0);
}
