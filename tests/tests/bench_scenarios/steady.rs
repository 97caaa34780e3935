//! `steady`: the open-loop mix at its rate, and a stall charged to every request due during it.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use flashgate_tests::bench::{BenchRun, args, bench, check_passed, failed_checks};
use flashgate_tests::gateway::InProcess;
use flashgate_tests::scenario::CampaignSpec;

use crate::support::{config_for, target, words};

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
