//! One side of one round: a server loaded closed loop for the round's duration, and what
//! each process (the server and its threads, Redis, this load generator) spent per request,
//! read from outside before and after.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::cpu;
use crate::engine::{Pace, Prepared};
use crate::play::play;
use crate::report::Report;

use super::CompareArgs;
use super::subject::Subject;
use super::watched_redis::WatchedRedis;

/// One side of one round.
pub(super) struct Side {
    pub(super) rate: f64,
    pub(super) p50: f64,
    pub(super) p99: f64,
    pub(super) requests: u64,
    pub(super) reservations: u64,
    pub(super) statuses: String,
    /// CPU µs per request of the server process.
    pub(super) server_us: Option<f64>,
    /// CPU µs per request of the Redis process.
    pub(super) redis_us: Option<f64>,
    /// CPU µs per request of this load generator: with the others, what a request costs the
    /// machine.
    pub(super) client_us: Option<f64>,
    /// Redis's script time (`INFO commandstats`) µs per reservation.
    pub(super) redis_script_us: Option<f64>,
    /// CPU µs per request of the server's threads, by thread name.
    pub(super) threads: BTreeMap<String, f64>,
}

impl Side {
    /// Loads `subject` with `requests` for `args.duration` and reads what it cost.
    ///
    /// # Errors
    /// The server unreachable.
    pub(super) fn measure(
        subject: &Subject,
        args: &CompareArgs,
        requests: Vec<Prepared>,
        watched: &mut Option<WatchedRedis>,
    ) -> anyhow::Result<Self> {
        let before = Spent::now(subject, watched);
        let (outcomes, duration) = play(
            subject.addr,
            &args.engine,
            requests,
            usize::MAX,
            Pace::Closed,
            Some(args.duration),
        )
        .with_context(|| format!("loading the {}", subject.kind.name()))?;
        let client_after = cpu::process_time(std::process::id());
        let report = Report::new(&outcomes, duration);
        Ok(Self::of(subject, &report, &before, client_after, watched))
    }

    /// The side's figures from its `report` and what was spent since `before` (the load
    /// generator's own time read as soon as the load ended: `client_after`).
    fn of(
        subject: &Subject,
        report: &Report,
        before: &Spent,
        client_after: Option<Duration>,
        watched: &mut Option<WatchedRedis>,
    ) -> Self {
        let requests = report.requests.max(1);
        let server_us = subject
            .pid
            .and_then(cpu::process_time)
            .zip(before.server)
            .map(|(after, before)| per(after.saturating_sub(before), requests));
        let client_us = client_after
            .zip(before.client)
            .map(|(after, before)| per(after.saturating_sub(before), requests));
        let threads = thread_costs(subject, &before.threads, requests);
        let reservations = subject
            .kind
            .reserved()
            .and_then(|status| report.by_status.get(&status).copied())
            .unwrap_or(0);
        let (redis_us, redis_script_us) =
            redis_costs(subject, watched, before.redis, requests, reservations);
        Self {
            rate: report.requests as f64 / report.duration.as_secs_f64().max(1e-6),
            p50: report.percentiles_ms[0],
            p99: report.percentiles_ms[2],
            requests: report.requests,
            reservations,
            statuses: statuses(report),
            server_us,
            redis_us,
            client_us,
            redis_script_us,
            threads,
        }
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "requests_per_s": self.rate, "p50_ms": self.p50, "p99_ms": self.p99,
            "requests": self.requests, "reservations": self.reservations,
            "answers": self.statuses,
            "server_cpu_us_per_request": self.server_us,
            "redis_cpu_us_per_request": self.redis_us,
            "client_cpu_us_per_request": self.client_us,
            "redis_script_us_per_reservation": self.redis_script_us,
            "server_cpu_us_per_request_by_thread": self.threads,
        })
    }
}

/// What the watched processes had spent when a side's load began.
struct Spent {
    server: Option<Duration>,
    client: Option<Duration>,
    threads: BTreeMap<String, Duration>,
    /// The watched Redis's (CPU time, script µs).
    redis: Option<(Option<Duration>, u64)>,
}

impl Spent {
    fn now(subject: &Subject, watched: &mut Option<WatchedRedis>) -> Self {
        Self {
            server: subject.pid.and_then(cpu::process_time),
            client: cpu::process_time(std::process::id()),
            threads: subject.pid.map(cpu::thread_times).unwrap_or_default(),
            redis: watched.as_mut().map(WatchedRedis::spent),
        }
    }
}

/// µs per request of `spent` over `requests`.
fn per(spent: Duration, requests: u64) -> f64 {
    spent.as_secs_f64() * 1e6 / requests as f64
}

/// CPU µs per request of each of the server's threads that spent any.
fn thread_costs(
    subject: &Subject,
    before: &BTreeMap<String, Duration>,
    requests: u64,
) -> BTreeMap<String, f64> {
    subject
        .pid
        .map(cpu::thread_times)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, after)| {
            let before = before.get(&name).copied().unwrap_or_default();
            (name, per(after.saturating_sub(before), requests))
        })
        .filter(|(_, us)| *us > 0.0)
        .collect()
}

/// (Redis CPU µs per request, script µs per reservation), when `subject` reserves in the
/// watched Redis.
fn redis_costs(
    subject: &Subject,
    watched: &mut Option<WatchedRedis>,
    before: Option<(Option<Duration>, u64)>,
    requests: u64,
    reservations: u64,
) -> (Option<f64>, Option<f64>) {
    let (true, Some(redis), Some((cpu_before, usec_before))) =
        (subject.uses_redis, watched.as_mut(), before)
    else {
        return (None, None);
    };
    let (cpu_after, usec_after) = redis.spent();
    let redis_us = cpu_after
        .zip(cpu_before)
        .map(|(a, b)| per(a.saturating_sub(b), requests));
    let redis_script_us = (reservations > 0)
        .then(|| usec_after.saturating_sub(usec_before) as f64 / reservations as f64);
    (redis_us, redis_script_us)
}

/// The answers by status, `status:count` separated by spaces.
fn statuses(report: &Report) -> String {
    report
        .by_status
        .iter()
        .map(|(s, n)| format!("{s}:{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}
