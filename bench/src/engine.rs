//! The load engine: keep-alive HTTP/1.1 connections, each driven by its own task.
//!
//! Requests are built before the run (tokens minted, bodies serialised), so what is measured is
//! the gateway, not the generator. Each connection task takes the next request from a shared
//! counter and sends it as soon as the previous answer is in (closed loop): a burst of many
//! users arriving at once, as at the start of a flash sale.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

/// One request, ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub authorization: HeaderValue,
    pub body: Bytes,
}

/// What came back for one request.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// HTTP status, or 0 when no answer came (connection error).
    pub status: u16,
    pub code: Option<String>,
    pub order_id: Option<String>,
    pub latency: Duration,
    /// When the answer arrived, from the start of the run.
    pub done_at: Duration,
}

#[derive(Deserialize)]
struct Answer {
    order_id: Option<String>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
}

/// Sends every request of `requests` to `addr` + `path` over `connections` keep-alive
/// connections; returns the outcomes in completion order.
///
/// # Errors
/// When no connection can be opened at all.
pub async fn closed_loop(
    addr: SocketAddr,
    path: &'static str,
    requests: Arc<Vec<Prepared>>,
    connections: usize,
    progress: Arc<AtomicUsize>,
) -> anyhow::Result<(Vec<Outcome>, Duration)> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let (requests, next, progress) = (requests.clone(), next.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            connection_loop(addr, path, &requests, &next, &progress, start).await
        }));
    }
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut failures = 0;
    for task in tasks {
        match task.await.context("connection task")? {
            Ok(mut done) => outcomes.append(&mut done),
            Err(_) => failures += 1,
        }
    }
    anyhow::ensure!(
        failures < connections.max(1),
        "no connection to {addr} could be opened"
    );
    outcomes.sort_by_key(|o| o.done_at);
    Ok((outcomes, start.elapsed()))
}

async fn connection_loop(
    addr: SocketAddr,
    path: &'static str,
    requests: &[Prepared],
    next: &AtomicUsize,
    progress: &AtomicUsize,
    start: Instant,
) -> anyhow::Result<Vec<Outcome>> {
    let mut sender = connect(addr).await?;
    let mut outcomes = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(prepared) = requests.get(i) else {
            return Ok(outcomes);
        };
        let sent = Instant::now();
        let answer = send(&mut sender, path, prepared).await;
        let done_at = start.elapsed();
        let outcome = match answer {
            Ok((status, body)) => {
                // A plain 200 (a replay, or the reference server) carries nothing the report
                // needs: its body is not parsed.
                let parsed: Option<Answer> = if status == 200 {
                    None
                } else {
                    serde_json::from_slice(&body).ok()
                };
                Outcome {
                    status,
                    code: parsed
                        .as_ref()
                        .and_then(|a| Some(a.error.as_ref()?.code.clone())),
                    order_id: parsed.and_then(|a| a.order_id),
                    latency: sent.elapsed(),
                    done_at,
                }
            }
            Err(_) => {
                // The connection broke: note it and open another.
                sender = connect(addr).await?;
                Outcome {
                    status: 0,
                    code: Some("connection_error".into()),
                    order_id: None,
                    latency: sent.elapsed(),
                    done_at,
                }
            }
        };
        outcomes.push(outcome);
        progress.fetch_add(1, Ordering::Relaxed);
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn send(
    sender: &mut Sender,
    path: &str,
    prepared: &Prepared,
) -> anyhow::Result<(u16, Bytes)> {
    sender.ready().await?;
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, "flashgate")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, prepared.authorization.clone())
        .body(Full::new(prepared.body.clone()))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}
