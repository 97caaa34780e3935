//! A fixed-bucket latency histogram of atomics: recording is a few compares and two atomic adds,
//! no lock, no allocation.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds: 0.5 ms to 2.5 s, the range a purchase lives in.
pub const BOUNDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Observations per bucket (not cumulative; the exposition adds them up), plus +Inf.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let slot = BOUNDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BOUNDS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Appends the `_bucket`, `_sum` and `_count` lines of `name{labels}` to `out`.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in BOUNDS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.buckets[BOUNDS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{labels} {sum}");
        let _ = writeln!(out, "{name}_count{labels} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets_sum_and_count() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "route=\"a\"");
        assert!(
            out.contains("x_seconds_bucket{route=\"a\",le=\"0.0005\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_bucket{route=\"a\",le=\"0.0025\"} 1\n"));
        assert!(out.contains("x_seconds_bucket{route=\"a\",le=\"0.005\"} 2\n"));
        assert!(out.contains("x_seconds_bucket{route=\"a\",le=\"2.5\"} 2\n"));
        assert!(out.contains("x_seconds_bucket{route=\"a\",le=\"+Inf\"} 3\n"));
        assert!(out.contains("x_seconds_count{route=\"a\"} 3\n"));
        assert!(
            out.contains("x_seconds_sum{route=\"a\"} 10.0033\n"),
            "{out}"
        );
        let mut bare = String::new();
        h.render(&mut bare, "y", "");
        assert!(
            bare.contains("y_bucket{le=\"+Inf\"} 3\n") && bare.contains("y_count 3\n"),
            "{bare}"
        );
    }
}
