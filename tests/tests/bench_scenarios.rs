//! The bench's other scenarios against a real gateway and Redis: `steady` (open loop, mixed
//! requests), the lifecycle mix after a flash, `compare`, and a self-contained `rehearse`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flashgate_stock::CampaignKeys;
use flashgate_stock::OrderStatus;
use flashgate_tests::bench::{BenchRun, args, bench, check_passed, failed_checks};
use flashgate_tests::gateway::{InProcess, binary, stored_orders};
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::{shared_redis, shared_redis_url};
use redis::AsyncCommands;

/// A config for `campaign` on the shared Redis, written to `dir/gateway.toml`.
fn config_for(dir: &Path, campaign: CampaignSpec) -> (Scenario, PathBuf) {
    let scenario = Scenario::new(shared_redis_url(), dir.join("orders.db"), vec![campaign]);
    let config = dir.join("gateway.toml");
    std::fs::write(&config, scenario.toml()).unwrap();
    (scenario, config)
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(String::from).collect()
}

fn target(addr: impl ToString, config: &Path, campaign: &str) -> Vec<String> {
    vec![
        "--addr".into(),
        addr.to_string(),
        "--config".into(),
        config.display().to_string(),
        "--campaign".into(),
        campaign.into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_sends_the_mix_at_its_rate_and_every_answer_is_right() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = CampaignSpec::open("steady", 1_000_000, 1_000_000);
    let id = campaign.id.clone();
    let (scenario, config) = config_for(dir.path(), campaign);
    let gateway = InProcess::start(&scenario);

    let mut argv = vec!["steady".to_owned()];
    argv.extend(target(gateway.addr, &config, &id));
    argv.extend(words(
        "--rate 500 --duration 2s --users 50 --warm-orders 20 --connections 8",
    ));
    let BenchRun { passed, report, .. } = bench(args(argv), &dir.path().join("steady.json")).await;
    drop(gateway);

    assert!(passed, "{:?}", failed_checks(&report));
    assert_eq!(report["requests"], 1_000);
    // purchase=70,replay=10,read=15,invalid=5 of 1,000 requests.
    let kinds = &report["by_kind"];
    assert_eq!(kinds["purchase"]["requests"], 700, "{kinds:#}");
    assert_eq!(kinds["replay"]["requests"], 100);
    assert_eq!(kinds["read"]["requests"], 150);
    assert_eq!(kinds["invalid"]["requests"], 50);
    assert_eq!(report["accepted"], 700, "replays must not be new orders");
    assert_eq!(report["by_status"]["400"], 20);
    assert_eq!(report["by_status"]["401"], 20);
    assert_eq!(report["by_status"]["404"], 10);
    // Open loop: 1,000 requests due over 2 s take 2 s, however fast the answers.
    let took = report["duration_s"].as_f64().unwrap();
    assert!((1.9..10.0).contains(&took), "{took}");
    for check in [
        "replays got their original order",
        "reads answered",
        "invalid requests refused right",
        "accepted orders stored once",
        "no unexplained orders",
    ] {
        assert!(check_passed(&report, check), "{check}");
    }
}

/// A server that answers every purchase with 202, but not before `stall_until`.
fn stalling_server(stall_until: Instant) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve_slowly(stream, stall_until));
        }
    });
    addr
}

fn serve_slowly(mut stream: TcpStream, stall_until: Instant) {
    let body = br#"{"order_id":"1","status":"pending_payment"}"#;
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // One request: a head, then its Content-Length of body.
        let Some(head) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
            continue;
        };
        let text = String::from_utf8_lossy(&pending[..head]).to_ascii_lowercase();
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        if pending.len() < head + 4 + length {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
            continue;
        }
        pending.drain(..head + 4 + length);
        std::thread::sleep(stall_until.saturating_duration_since(Instant::now()));
        let head = format!(
            "HTTP/1.1 202 Accepted\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\r\n",
            body.len()
        );
        if stream.write_all(head.as_bytes()).is_err() || stream.write_all(body).is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_charges_a_stall_to_every_request_due_during_it() {
    // The server stalls for the first second of a 2-second run at 100 requests/s. Measured
    // from when each request was due, the ~100 requests due in that second waited on average
    // half of it. Measured from when they were sent (coordinated omission), only the first
    // request of each of the 2 connections would look slow.
    let dir = tempfile::tempdir().unwrap();
    let campaign = CampaignSpec::open("stall", 1_000, 1);
    let id = campaign.id.clone();
    let (_, config) = config_for(dir.path(), campaign);
    let addr = stalling_server(Instant::now() + Duration::from_millis(1_300));

    let mut argv = vec!["steady".to_owned()];
    argv.extend(target(addr, &config, &id));
    argv.extend(words(
        "--rate 100 --duration 2s --mix purchase=1 --warm-orders 0 --connections 2 --no-verify",
    ));
    let BenchRun { report, .. } = bench(args(argv), &dir.path().join("stall.json")).await;
    assert_eq!(report["requests"], 200, "{report:#}");
    let p50 = report["latency_ms"]["p50"].as_f64().unwrap();
    let p90 = report["latency_ms"]["p90"].as_f64().unwrap();
    assert!(p90 >= 400.0, "p90 {p90} ms hides the stall");
    assert!(p50 >= 20.0, "p50 {p50} ms hides the stall");
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehearse_runs_a_flash_on_its_own_redis_and_gateway_and_stops_both() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = CampaignSpec::open("rehearse", 100, 1);
    let id = campaign.id.clone();
    // The config names the shared Redis; the rehearsal must not touch it.
    let (_, config) = config_for(dir.path(), campaign);
    let work = dir.path().join("work");

    let argv = vec![
        "rehearse".to_owned(),
        "--config".into(),
        config.display().to_string(),
        "--gateway".into(),
        binary().display().to_string(),
        "--workdir".into(),
        work.display().to_string(),
        "flash".into(),
        "--campaign".into(),
        id.clone(),
        "--users".into(),
        "1000".into(),
        "--connections".into(),
        "16".into(),
    ];
    let BenchRun {
        passed,
        report,
        stderr,
    } = bench(args(argv), &dir.path().join("rehearse.json")).await;

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

    let argv = vec![
        "rehearse".to_owned(),
        "--cluster".into(),
        "--redis-stats".into(),
        stats.display().to_string(),
        "--config".into(),
        config.display().to_string(),
        "--gateway".into(),
        binary().display().to_string(),
        "--workdir".into(),
        work.display().to_string(),
        "flash".into(),
        "--campaign".into(),
        id.clone(),
        "--users".into(),
        "1000".into(),
        "--connections".into(),
        "16".into(),
    ];
    let BenchRun {
        passed,
        report,
        stderr,
    } = bench(args(argv), &dir.path().join("rehearse.json")).await;

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
