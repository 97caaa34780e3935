//! The load engine: keep-alive HTTP/1.1 connections, each driven by its own task.
//!
//! Requests are built before the run (tokens minted, bodies and heads serialised), so what is
//! measured is the server, not the generator. Each connection takes the next request from a
//! shared counter:
//! - **closed loop** ([`Pace::Closed`]): as soon as its previous answer is in, like a burst of
//!   users all arriving at once at the start of a sale, and like `wrk`;
//! - **open loop** ([`Pace::Rate`]): request *i* is due at `i / rate` seconds, whether or not
//!   earlier answers came back. Latency is measured from that due time, so a stalled server is
//!   charged for every request that waited behind the stall (no coordinated omission).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use serde::Deserialize;

use crate::wire::{self, Connection};

/// What a request is for, so a mixed run can be reported per part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Purchase,
    Replay,
    Read,
    Invalid,
    Pay,
    Cancel,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::Replay => "replay",
            Self::Read => "read",
            Self::Invalid => "invalid",
            Self::Pay => "pay",
            Self::Cancel => "cancel",
        }
    }
}

/// One request, ready to write.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub kind: Kind,
    pub bytes: Bytes,
}

/// What came back for one request.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub kind: Kind,
    /// Which of the prepared requests this answers (its position in [`Load::requests`]).
    pub index: usize,
    /// HTTP status, or 0 when no answer came (connection error).
    pub status: u16,
    pub code: Option<String>,
    pub order_id: Option<String>,
    /// From the moment the request was due (open loop) or sent (closed loop).
    pub latency: Duration,
    /// When the answer arrived, from the start of the run.
    pub done_at: Duration,
}

/// How requests are spaced.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Each connection sends its next request when the previous answer is in.
    Closed,
    /// Requests are due at a constant rate (per second), across all connections.
    Rate(f64),
}

/// A run: which requests, how many, how spaced, over how many connections.
#[derive(Debug, Clone)]
pub struct Load {
    /// Sent in order, from the first again when `total` is larger.
    pub requests: Arc<Vec<Prepared>>,
    pub total: usize,
    pub connections: usize,
    pub pace: Pace,
    /// Closed loop only: stop taking requests after this long (like `wrk -d`).
    pub duration: Option<Duration>,
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

/// Plays `load` against `addr`; returns the outcomes in completion order and the run's length.
///
/// # Errors
/// When no connection can be opened at all.
pub async fn run(
    addr: SocketAddr,
    load: Load,
    progress: Arc<AtomicUsize>,
) -> anyhow::Result<(Vec<Outcome>, Duration)> {
    anyhow::ensure!(!load.requests.is_empty(), "nothing to send");
    let connections = load.connections.max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let load = Arc::new(load);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (load, next, progress) = (load.clone(), next.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            connection_loop(addr, &load, &next, &progress, start).await
        }));
    }
    let mut per_connection = Vec::with_capacity(connections);
    let mut failures = 0;
    for task in tasks {
        match task.await.context("connection task")? {
            Ok(done) => per_connection.push(done),
            Err(_) => failures += 1,
        }
    }
    let elapsed = start.elapsed();
    anyhow::ensure!(
        failures < connections,
        "no connection to {addr} could be opened"
    );
    let mut outcomes = per_connection.concat();
    outcomes.sort_by_key(|o| o.done_at);
    Ok((outcomes, elapsed))
}

/// Tokio's timers tick in milliseconds: waking up to one tick early and sending then keeps the
/// generator from adding its own timer lag to every open-loop latency.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// One connection's share of the run: takes the next request until the run is done, and
/// reopens the connection whenever the server closed it or it broke. The steps it calls
/// allocate nothing per request beyond what an [`Outcome`] holds.
async fn connection_loop(
    addr: SocketAddr,
    load: &Load,
    next: &AtomicUsize,
    progress: &AtomicUsize,
    start: Instant,
) -> anyhow::Result<Vec<Outcome>> {
    let mut connection = Connection::open(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let deadline = load.duration.map(|d| start + d);
    // A timed run's `total` is unbounded: reserve for a good while, then let it grow.
    let mut outcomes = Vec::with_capacity((load.total / load.connections.max(1)).min(1 << 16) + 16);
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= load.total || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(outcomes);
        }
        let index = i % load.requests.len();
        let prepared = &load.requests[index];
        let due = due_time(load.pace, start, i).await;
        let sent = Instant::now();
        let from = due.map_or(sent, |due| due.min(sent));
        let answer = connection.exchange(&prepared.bytes).await;
        let done_at = start.elapsed();
        let (outcome, reconnect) = match answer {
            Ok(answer) => (
                answered(&answer, prepared, index, from, done_at),
                answer.closing,
            ),
            Err(_) => (broken(prepared, index, from, done_at), true),
        };
        outcomes.push(outcome);
        progress.fetch_add(1, Ordering::Relaxed);
        if reconnect {
            connection = Connection::open(addr)
                .await
                .with_context(|| format!("reconnecting to {addr}"))?;
        }
    }
}

/// Open loop: when request `i` is due, once the timer has woken up just before then. Closed
/// loop: `None`, it is sent now.
async fn due_time(pace: Pace, start: Instant, i: usize) -> Option<Instant> {
    match pace {
        Pace::Closed => None,
        Pace::Rate(rate) => {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wake) = due.checked_sub(TIMER_TICK)
                && wake > Instant::now()
            {
                tokio::time::sleep_until(wake.into()).await;
            }
            Some(due)
        }
    }
}

/// The outcome of `prepared` (request `index`) answered with `answer`; its latency counts
/// from `from` to now, the answer read.
fn answered(
    answer: &wire::Answer<'_>,
    prepared: &Prepared,
    index: usize,
    from: Instant,
    done_at: Duration,
) -> Outcome {
    // A plain 200 (a read, the reference server) carries nothing the report needs: its body is
    // not parsed. A replay's carries the order it must repeat.
    let parsed: Option<Answer> = if answer.status == 200 && prepared.kind != Kind::Replay {
        None
    } else {
        serde_json::from_slice(answer.body).ok()
    };
    Outcome {
        kind: prepared.kind,
        index,
        status: answer.status,
        code: parsed
            .as_ref()
            .and_then(|a| Some(a.error.as_ref()?.code.clone())),
        order_id: parsed.and_then(|a| a.order_id),
        latency: from.elapsed(),
        done_at,
    }
}

/// The outcome of `prepared` (request `index`) when the connection broke before its answer.
fn broken(prepared: &Prepared, index: usize, from: Instant, done_at: Duration) -> Outcome {
    Outcome {
        kind: prepared.kind,
        index,
        status: 0,
        code: Some("connection_error".into()),
        order_id: None,
        latency: from.elapsed(),
        done_at,
    }
}
