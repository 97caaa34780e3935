//! Hostile traffic: a client dribbling its headers is cut at the header timeout, and
//! connections beyond the cap are refused, while the clients being served are served normally.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use flashgate_tests::gateway::InProcess;
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::store_home::{Backend, StoreHome};
use http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_dribbling_its_headers_is_cut_at_the_header_timeout() {
    let home = StoreHome::new(Backend::Sqlite);
    let campaign = CampaignSpec::open("slowloris", 1_000, 1);
    let id = campaign.id.clone();
    let mut scenario = home.scenario(vec![campaign]);
    scenario.server_extra = "header_read_timeout = \"1s\"\n".into();
    let gateway = InProcess::start(&scenario);

    // One header line every 200 ms: never a complete head.
    let mut slow = TcpStream::connect(gateway.addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let dribble = tokio::spawn(async move {
        let mut n = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow
                .write_all(format!("x-slow-{n}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return started.elapsed();
            }
            n += 1;
            let mut byte = [0u8; 1];
            // The server closing shows as an end of stream (or a reset) on the next read.
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut byte)).await
            {
                return started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(10) {
                return started.elapsed();
            }
        }
    });

    // Meanwhile everybody else is served.
    let client = gateway.client();
    for n in 0..20 {
        let reply = client
            .purchase(&format!("normal-{n}"), json!({ "campaign_id": id }))
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    }
    let cut_after = dribble.await.unwrap();
    assert!(
        cut_after >= Duration::from_millis(900) && cut_after < Duration::from_secs(4),
        "the dribbling connection was cut after {cut_after:?}, not at the 1 s header timeout"
    );
    gateway.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_refused_and_served_ones_are_not_disturbed() {
    // Scaled down to this machine: a cap of 64 and 1,000 connections beyond it (the issue
    // speaks of 10,000; the behaviour per refused connection is the same).
    const CAP: usize = 64;
    const BEYOND: usize = 1_000;
    let home = StoreHome::new(Backend::Sqlite);
    let campaign = CampaignSpec::open("conncap", 1_000, 1);
    let id = campaign.id.clone();
    let mut scenario = home.scenario(vec![campaign]);
    scenario.server_extra = format!("max_connections = {CAP}\nheader_read_timeout = \"30s\"\n");
    let gateway = InProcess::start(&scenario);

    // A client being served on one keep-alive connection.
    let mut served = TcpStream::connect(gateway.addr).await.unwrap();
    assert_eq!(exchange(&mut served, "/healthz").await, 200);
    // Idle connections take the rest of the cap.
    let mut idle = Vec::new();
    for _ in 1..CAP {
        idle.push(TcpStream::connect(gateway.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Every connection beyond the cap is answered 503 and closed at once.
    let mut refused = 0;
    for _ in 0..BEYOND {
        let mut extra = TcpStream::connect(gateway.addr).await.unwrap();
        // Half of them send a request first: the refusal still reaches them.
        if refused % 2 == 0 {
            let _ = extra
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
                .await;
        }
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(2), extra.read_to_string(&mut answer))
            .await
            .expect("a refused connection is closed at once")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("too_many_connections"), "{answer}");
        refused += 1;
    }
    assert_eq!(refused, BEYOND);

    // The served client was not disturbed: its connection still answers, purchases included.
    for _ in 0..20 {
        assert_eq!(exchange(&mut served, "/healthz").await, 200);
    }
    let body = json!({ "campaign_id": id }).to_string();
    let token = flashgate_tests::client::token_for("served-buyer");
    let purchase = format!(
        "POST /api/v1/orders HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    served.write_all(purchase.as_bytes()).await.unwrap();
    assert_eq!(read_status(&mut served).await, 202);

    // Once idle connections go, new ones are served again.
    drop(idle);
    let mut later = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut fresh = TcpStream::connect(gateway.addr).await.unwrap();
        if exchange(&mut fresh, "/healthz").await == 200 {
            later = Some(fresh);
            break;
        }
    }
    assert!(
        later.is_some(),
        "new connections served once the cap frees up"
    );
    gateway.stop().unwrap();
}

/// Sends `GET path` on a keep-alive connection; returns the status.
async fn exchange(stream: &mut TcpStream, path: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    read_status(stream).await
}

/// Reads one answer (head and `content-length` body); returns its status (0 if none).
async fn read_status(stream: &mut TcpStream) -> u16 {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                return head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            }
        }
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return 0,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_over_the_header_limits_are_refused_and_the_gateway_serves_on() {
    let home = StoreHome::new(Backend::Sqlite);
    let mut scenario = home.scenario(vec![CampaignSpec::open("bighead", 10, 1)]);
    scenario.server_extra = "max_headers = 16\nmax_header_bytes = 8192\n".into();
    let gateway = InProcess::start(&scenario);

    // Too many headers, then a head too big: each refused with a 4xx, never served.
    let many: String = (0..40).map(|n| format!("x-h{n}: 1\r\n")).collect();
    let big = format!("x-big: {}\r\n", "a".repeat(20_000));
    for extra in [many, big] {
        let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
        let request = format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{extra}\r\n");
        let _ = stream.write_all(request.as_bytes()).await;
        let status = read_status(&mut stream).await;
        assert!(
            (400..500).contains(&status) || status == 0,
            "an oversized head was answered {status}"
        );
        assert_ne!(status, 200);
    }
    let mut fine = TcpStream::connect(gateway.addr).await.unwrap();
    assert_eq!(exchange(&mut fine, "/healthz").await, 200);
    gateway.stop().unwrap();
}
