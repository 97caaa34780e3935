//! What a run produced: outcomes per status and code, latency percentiles, and a per-second
//! timeline; printed as a table and written as JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::engine::Outcome;

/// One slice of the run's timeline; counts are per second of it.
#[derive(Debug, Clone, Default)]
pub struct Second {
    pub requests: u64,
    pub accepted: u64,
    pub p99_ms: f64,
}

/// Timeline slices: fine enough that a burst of a few seconds still shows its shape.
pub fn bucket_for(duration: Duration) -> Duration {
    if duration < Duration::from_secs(20) {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(1)
    }
}

/// The figures of a run.
#[derive(Debug)]
pub struct Report {
    pub requests: u64,
    pub duration: Duration,
    pub by_status: BTreeMap<u16, u64>,
    pub by_code: BTreeMap<String, u64>,
    /// p50, p90, p99, p99.9, max in ms.
    pub percentiles_ms: [f64; 5],
    /// Throughput (per second) and p99 over time, one entry per `bucket`.
    pub seconds: Vec<Second>,
    pub bucket: Duration,
    /// Answers 202 (new orders).
    pub accepted: u64,
    /// When the last unit was sold, if the run sold out.
    pub sold_out_at: Option<Duration>,
    pub accepted_per_s_while_stock: f64,
    pub rejections_per_s_after: f64,
    /// Requests, p50 and p99 (ms) per kind of request, for mixed runs.
    pub by_kind: BTreeMap<&'static str, (u64, f64, f64)>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits: these bounds are valid constants.
    match Histogram::new_with_bounds(1, 60_000_000, 3) {
        Ok(h) => h,
        Err(e) => unreachable!("histogram bounds are constants: {e}"),
    }
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

impl Report {
    pub fn new(outcomes: &[Outcome], duration: Duration) -> Self {
        let bucket = bucket_for(duration);
        let mut tally = Tally::new(bucket);
        for o in outcomes {
            tally.record(o);
        }
        let Tally {
            all,
            per_second,
            by_status,
            by_code,
            last_accepted,
            kinds,
            ran_out,
            bucket_ms,
        } = tally;
        let accepted = by_status.get(&202).copied().unwrap_or(0);
        let sold_out_at = if ran_out { last_accepted } else { None };
        let (while_stock, after) = sell_out_rates(outcomes, duration, accepted, sold_out_at);
        Self {
            requests: outcomes.len() as u64,
            duration,
            by_status,
            by_code,
            percentiles_ms: [
                ms(&all, 0.5),
                ms(&all, 0.9),
                ms(&all, 0.99),
                ms(&all, 0.999),
                all.max() as f64 / 1000.0,
            ],
            seconds: timeline(per_second, bucket_ms),
            bucket,
            accepted,
            sold_out_at,
            accepted_per_s_while_stock: while_stock,
            rejections_per_s_after: after,
            by_kind: kinds
                .into_iter()
                .map(|(k, (n, h))| (k, (n, ms(&h, 0.5), ms(&h, 0.99))))
                .collect(),
        }
    }

    /// The summary a person reads.
    pub fn print(&self) {
        let rate = self.requests as f64 / self.duration.as_secs_f64().max(1e-6);
        println!(
            "requests        {:>10}   in {:.2} s   ({rate:.0}/s)",
            self.requests,
            self.duration.as_secs_f64()
        );
        println!("accepted (202)  {:>10}", self.accepted);
        match self.sold_out_at {
            Some(at) => {
                println!("sold out after  {:>10.3} s", at.as_secs_f64());
                println!(
                    "accepted/s      {:>10.0}   while stock lasted",
                    self.accepted_per_s_while_stock
                );
                println!(
                    "rejections/s    {:>10.0}   after",
                    self.rejections_per_s_after
                );
            }
            None => println!(
                "accepted/s      {:>10.0}   (did not sell out)",
                self.accepted_per_s_while_stock
            ),
        }
        let [p50, p90, p99, p999, max] = self.percentiles_ms;
        println!(
            "latency ms      p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  p99.9 {p999:.2}  max {max:.2}"
        );
        if self.by_kind.len() > 1 {
            for (kind, (n, p50, p99)) in &self.by_kind {
                println!("  {kind:<10} {n:>10}   p50 {p50:.2}  p99 {p99:.2}");
            }
        }
        for (status, n) in &self.by_status {
            println!("  status {status:>3}  {n:>10}");
        }
        for (code, n) in &self.by_code {
            println!("  {code:<20} {n:>10}");
        }
    }

    pub fn to_json(&self) -> Value {
        let [p50, p90, p99, p999, max] = self.percentiles_ms;
        json!({
            "requests": self.requests,
            "duration_s": self.duration.as_secs_f64(),
            "accepted": self.accepted,
            "by_status": self.by_status.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "by_code": self.by_code,
            "by_kind": self.by_kind.iter().map(|(k, (n, p50, p99))| {
                ((*k).to_owned(), json!({ "requests": n, "p50_ms": p50, "p99_ms": p99 }))
            }).collect::<serde_json::Map<_, _>>(),
            "latency_ms": { "p50": p50, "p90": p90, "p99": p99, "p99_9": p999, "max": max },
            "sold_out_at_s": self.sold_out_at.map(|d| d.as_secs_f64()),
            "accepted_per_s_while_stock": self.accepted_per_s_while_stock,
            "rejections_per_s_after": self.rejections_per_s_after,
            "timeline": {
                "bucket_s": self.bucket.as_secs_f64(),
                "per_bucket": self.seconds.iter().map(|s| json!({
                    "requests_per_s": s.requests, "accepted_per_s": s.accepted, "p99_ms": s.p99_ms
                })).collect::<Vec<_>>(),
            },
        })
    }
}

/// The outcomes counted as they are read: latencies overall, per slice of the timeline and
/// per kind of request; answers per status and code.
struct Tally {
    all: Histogram<u64>,
    /// One entry per `bucket`: its counts and its latencies.
    per_second: Vec<(Second, Histogram<u64>)>,
    by_status: BTreeMap<u16, u64>,
    by_code: BTreeMap<String, u64>,
    /// When the last 202 arrived.
    last_accepted: Option<Duration>,
    kinds: BTreeMap<&'static str, (u64, Histogram<u64>)>,
    /// Whether any answer said the stock ran out.
    ran_out: bool,
    /// The timeline's slice in ms (at least 1).
    bucket_ms: u128,
}

impl Tally {
    fn new(bucket: Duration) -> Self {
        Self {
            all: histogram(),
            per_second: Vec::new(),
            by_status: BTreeMap::new(),
            by_code: BTreeMap::new(),
            last_accepted: None,
            kinds: BTreeMap::new(),
            ran_out: false,
            bucket_ms: u128::from(u64::try_from(bucket.as_millis()).unwrap_or(1).max(1)),
        }
    }

    fn record(&mut self, o: &Outcome) {
        let us = u64::try_from(o.latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.all.saturating_record(us);
        let (n, h) = self
            .kinds
            .entry(o.kind.name())
            .or_insert_with(|| (0, histogram()));
        *n += 1;
        h.saturating_record(us);
        let s = usize::try_from(o.done_at.as_millis() / self.bucket_ms).unwrap_or(usize::MAX);
        while self.per_second.len() <= s {
            self.per_second.push((Second::default(), histogram()));
        }
        let (second, h) = &mut self.per_second[s];
        second.requests += 1;
        h.saturating_record(us);
        *self.by_status.entry(o.status).or_insert(0) += 1;
        if let Some(code) = &o.code {
            *self.by_code.entry(code.clone()).or_insert(0) += 1;
            self.ran_out |= matches!(code.as_str(), "sold_out" | "insufficient_stock");
        }
        if o.status == 202 {
            second.accepted += 1;
            self.last_accepted = Some(o.done_at);
        }
    }
}

/// (Accepted per second while stock lasted, rejections per second after it ran out); without
/// a sell-out, accepted per second over the whole run and no rejections after.
fn sell_out_rates(
    outcomes: &[Outcome],
    duration: Duration,
    accepted: u64,
    sold_out_at: Option<Duration>,
) -> (f64, f64) {
    match sold_out_at {
        Some(at) => {
            let rejected_after = outcomes
                .iter()
                .filter(|o| o.done_at > at && o.status != 202)
                .count();
            let rest = duration.saturating_sub(at).as_secs_f64();
            (
                accepted as f64 / at.as_secs_f64().max(1e-6),
                rejected_after as f64 / rest.max(1e-6),
            )
        }
        None => (accepted as f64 / duration.as_secs_f64().max(1e-6), 0.0),
    }
}

/// The timeline's slices with their counts scaled to per second and their p99.
fn timeline(per_second: Vec<(Second, Histogram<u64>)>, bucket_ms: u128) -> Vec<Second> {
    per_second
        .into_iter()
        .map(|(mut s, h)| {
            let per_second = 1000 / bucket_ms.max(1) as u64;
            s.requests *= per_second.max(1);
            s.accepted *= per_second.max(1);
            s.p99_ms = ms(&h, 0.99);
            s
        })
        .collect()
}
