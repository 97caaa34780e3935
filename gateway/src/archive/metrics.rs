//! What the archive pass shows an operator on `/metrics`: whether it runs or waits, what it
//! moved, and the steps that failed. Row counts are not among them: counting a large archive
//! would hold the store's reader for as long as it takes.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The archive pass's counters, shared by the task and the exposition.
#[derive(Debug, Default)]
pub struct ArchiveMetrics {
    running: AtomicBool,
    waiting: AtomicBool,
    moved: AtomicU64,
    waits: AtomicU64,
    failures: AtomicU64,
}

impl ArchiveMetrics {
    pub fn running(&self, on: bool) {
        self.running.store(on, Ordering::Relaxed);
    }

    pub fn moved(&self, n: usize) {
        self.moved.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn paused(&self) {
        self.waits.fetch_add(1, Ordering::Relaxed);
        self.waiting.store(true, Ordering::Relaxed);
    }

    pub fn resumed(&self) {
        self.waiting.store(false, Ordering::Relaxed);
    }

    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String) {
        let flag = |b: &AtomicBool| u8::from(b.load(Ordering::Relaxed));
        let metric = |out: &mut String, name: &str, kind: &str, help: &str, value: u64| {
            crate::metrics::text_format::family(out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        };
        metric(
            out,
            "flashgate_archive_pass_running",
            "gauge",
            "1 while an archive pass runs on this gateway.",
            u64::from(flag(&self.running)),
        );
        metric(
            out,
            "flashgate_archive_pass_waiting",
            "gauge",
            "1 while the archive pass waits for a busy sale (archive.pause_above).",
            u64::from(flag(&self.waiting) & flag(&self.running)),
        );
        metric(
            out,
            "flashgate_archived_orders_total",
            "counter",
            "Orders this gateway moved from the hot tables to the archive.",
            self.moved.load(Ordering::Relaxed),
        );
        metric(
            out,
            "flashgate_archive_waits_total",
            "counter",
            "Times the archive pass stopped for a busy sale.",
            self.waits.load(Ordering::Relaxed),
        );
        metric(
            out,
            "flashgate_archive_failures_total",
            "counter",
            "Hot tables an archive pass left for the next one after a store error (see the log).",
            self.failures.load(Ordering::Relaxed),
        );
    }
}
