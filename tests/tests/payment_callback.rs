//! The payment callback's cost is bounded: its own rate limit before the body is read, a small
//! body cap, and a `payment_id` checked before it is logged or sent to Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use flashgate_tests::client::sign_hex;
use flashgate_tests::gateway::{InProcess, Process};
use flashgate_tests::scenario::{CampaignSpec, PAYMENT_SECRET, Scenario};
use flashgate_tests::shared_redis_url;
use flashgate_tests::store_home::{Backend, StoreHome};
use http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PRICE: i64 = 1999;

fn scenario(dir: &tempfile::TempDir, campaign: CampaignSpec) -> Scenario {
    Scenario::new(
        shared_redis_url(),
        dir.path().join("orders.db"),
        vec![campaign],
    )
}

/// A callback body signed as the provider signs it.
fn signed(order_id: &str, payment_id: &str, amount_cents: i64) -> (String, String) {
    let body = json!({
        "order_id": order_id, "payment_id": payment_id,
        "amount_cents": amount_cents, "status": "succeeded",
    })
    .to_string();
    let signature = sign_hex(PAYMENT_SECRET.as_bytes(), body.as_bytes());
    (body, signature)
}

/// Sends `head` (and `body`, possibly only part of what the head announces) on a fresh
/// connection; returns the answer's status and head, or 0 when none came within `patience`.
async fn raw(
    addr: std::net::SocketAddr,
    head: &str,
    body: &[u8],
    patience: Duration,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(body).await;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + patience;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            return (status, head);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return (0, String::new()),
        }
    }
}

fn callback_head(signature: Option<&str>, length: usize) -> String {
    let signature = signature.map_or(String::new(), |s| format!("x-signature: {s}\r\n"));
    format!(
        "POST /api/v1/payments/callback HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         {signature}content-length: {length}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_callbacks_beyond_their_limit_gets_429_and_purchases_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = CampaignSpec::open("cbflood", 50, 1);
    let id = campaign.id.clone();
    let mut scenario = scenario(&dir, campaign);
    scenario.extra = "\n[limits.payment_callback]\nper_second = 1\nburst = 5\n".into();
    let gateway = InProcess::start(&scenario);
    let c = gateway.client();

    // A flood of callbacks (forged ones: the limit comes before the signature is checked).
    let mut limited = 0;
    for n in 0..30 {
        let (body, _) = signed("123456789", &format!("flood-{n}"), PRICE);
        let r = c.signed_callback(body, &"ab".repeat(32)).await;
        match r.status {
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(r.code(), "rate_limited");
                let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=2).contains(&wait), "Retry-After {wait}");
                limited += 1;
            }
            StatusCode::UNAUTHORIZED => {}
            other => panic!("{other}: {}", r.body),
        }
    }
    assert!(limited >= 20, "only {limited} of 30 callbacks were limited");

    // Refused before the body is read: the head alone is answered.
    let (status, head) = raw(
        gateway.addr,
        &callback_head(Some(&"ab".repeat(32)), 200),
        b"",
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(status, 429, "{head}");
    assert!(head.contains("retry-after:"), "{head}");

    // Buyers are not throttled with the callbacks.
    for n in 0..10 {
        let r = c
            .purchase(&format!("cb-buyer-{n}"), json!({ "campaign_id": id }))
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    }
    gateway.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_ids_that_could_forge_log_lines_are_refused_and_never_logged() {
    let home = StoreHome::new(Backend::Sqlite);
    let campaign = CampaignSpec::open("cblog", 10, 1);
    let id = campaign.id.clone();
    let scenario = home.scenario(vec![campaign]);
    let mut gateway = Process::start_with_env(&scenario, home.path(), &[("RUST_LOG", "info")]);
    let c = gateway.client();
    let bought = c
        .purchase("cb-logged", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(bought.status, StatusCode::ACCEPTED);
    let order_id = bought.order_id().to_owned();

    // Each with the wrong amount, which is logged (with the payment id) when it gets that far.
    let bad_ids = [
        "p-1\n2026-12-02T10:00:00Z ERROR FORGED-NEWLINE".to_owned(),
        "p-1\r\u{1b}[2KFORGED-CONTROL".to_owned(),
        "p-1\u{0}FORGED-NUL".to_owned(),
        format!("FORGED-LONG-{}", "x".repeat(60)),
        "FORGED SPACE".to_owned(),
        String::new(),
    ];
    for payment_id in &bad_ids {
        let (body, signature) = signed(&order_id, payment_id, PRICE + 1);
        let r = c.signed_callback(body, &signature).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_field"),
            "{payment_id:?}: {}",
            r.body
        );
        assert!(
            !r.body.to_string().contains("FORGED"),
            "the answer does not echo it: {}",
            r.body
        );
    }
    let failed = json!({
        "order_id": order_id, "payment_id": "p\nFORGED-FAILED",
        "amount_cents": PRICE, "status": "failed",
    })
    .to_string();
    let signature = sign_hex(PAYMENT_SECRET.as_bytes(), failed.as_bytes());
    assert_eq!(
        c.signed_callback(failed, &signature).await.status,
        StatusCode::BAD_REQUEST
    );
    // A provider's ordinary ids pass.
    let (body, signature) = signed(&order_id, "pi_3Mt.wB:Lk-d", PRICE);
    let paid = c.signed_callback(body, &signature).await;
    assert_eq!(paid.body["payment_outcome"], "applied", "{}", paid.body);

    let status = tokio::task::spawn_blocking(move || gateway.terminate())
        .await
        .unwrap();
    assert!(status.success());
    let log = std::fs::read_to_string(home.path().join("gateway.log")).unwrap();
    assert!(log.contains("flashgate serving"), "{log}");
    assert!(!log.contains("FORGED"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_callback_is_refused_413_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut scenario = scenario(&dir, CampaignSpec::open("cbbig", 10, 1));
    // Purchases may be large here; a callback is still capped at its own few KiB.
    scenario.server_extra = "max_body_bytes = 1048576\nrequest_timeout = \"30s\"\n".into();
    let gateway = InProcess::start(&scenario);
    let signature = "ab".repeat(32);

    // Announced too large: refused from the head, the body never sent.
    let started = Instant::now();
    let (status, head) = raw(
        gateway.addr,
        &callback_head(Some(&signature), 64 * 1024),
        b"{\"order_id\":",
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(status, 413, "{head}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Sent without a length (chunked): cut off once past the cap.
    let chunk = vec![b' '; 16 * 1024];
    let mut body = format!("{:x}\r\n", chunk.len()).into_bytes();
    body.extend_from_slice(&chunk);
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let head = format!(
        "POST /api/v1/payments/callback HTTP/1.1\r\nhost: x\r\nx-signature: {signature}\r\n\
         transfer-encoding: chunked\r\n\r\n"
    );
    let (status, answer) = raw(gateway.addr, &head, &body, Duration::from_secs(3)).await;
    assert_eq!(status, 413, "{answer}");

    // No (or a malformed) signature: refused from the head too, before any body is read.
    for signature in [None, Some("not-hex")] {
        let (status, answer) = raw(
            gateway.addr,
            &callback_head(signature, 500),
            b"",
            Duration::from_secs(3),
        )
        .await;
        assert_eq!(status, 401, "{signature:?}: {answer}");
    }
    gateway.stop().unwrap();
}
