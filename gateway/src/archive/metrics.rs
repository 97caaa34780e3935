//! What the archive pass shows an operator on `/metrics`: whether it runs or waits, what it
//! moved, and how big the hot tables and the archive were at the end of the last pass
//! (counting rows at every scrape would cost the store a full count each time).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::store::RowCounts;

/// The archive pass's counters, shared by the task and the exposition.
#[derive(Debug, Default)]
pub struct ArchiveMetrics {
    running: AtomicBool,
    waiting: AtomicBool,
    moved: AtomicU64,
    waits: AtomicU64,
    /// `u64::MAX` until a pass has counted.
    hot_rows: AtomicU64,
    archived_rows: AtomicU64,
    counted: AtomicBool,
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

    pub fn rows(&self, counts: RowCounts) {
        self.hot_rows.store(counts.hot, Ordering::Relaxed);
        self.archived_rows.store(counts.archived, Ordering::Relaxed);
        self.counted.store(true, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String) {
        let flag = |b: &AtomicBool| u8::from(b.load(Ordering::Relaxed));
        let metric = |out: &mut String, name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
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
        if self.counted.load(Ordering::Relaxed) {
            let _ = writeln!(
                out,
                "# HELP flashgate_store_rows Order rows at the end of the last archive pass.\n\
                 # TYPE flashgate_store_rows gauge\n\
                 flashgate_store_rows{{place=\"hot\"}} {}\n\
                 flashgate_store_rows{{place=\"archive\"}} {}",
                self.hot_rows.load(Ordering::Relaxed),
                self.archived_rows.load(Ordering::Relaxed)
            );
        }
    }
}
