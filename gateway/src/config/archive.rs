//! `[archive]`: when settled orders leave the hot tables, and at what pace (where the archive
//! lives is part of `[store]`).

use std::time::Duration;

use super::checks::Errors;
use super::raw::RawArchive;

/// `[archive]`: the pass that moves settled orders of retired campaigns out of the hot tables
/// (ARCHITECTURE.md §9), so they stay small whatever the history. Where the archive lives is
/// part of [`StoreConfig`](super::StoreConfig), which every reader opens.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveConfig {
    /// Orders last updated longer ago than this are archived (default 90 days; `0` = never).
    pub after: Option<Duration>,
    /// Rows looked at per step, one short write lock each (1..=10000, default 500).
    pub batch: usize,
    /// Time from the end of one pass to the start of the next (default 10m).
    pub interval: Duration,
    /// Accepted purchases per second on this gateway above which the pass waits (default 50;
    /// 0 = never wait): a flash sale's writes never queue behind it.
    pub pause_above: u64,
}

/// `[archive]`'s age, batch and pace (its `path` and `url` are read with `[store]`).
pub(super) fn archive(e: &mut Errors, ar: &RawArchive) -> ArchiveConfig {
    ArchiveConfig {
        after: Some(e.duration(
            "archive.after",
            ar.after.as_deref(),
            Duration::from_secs(90 * 24 * 3600),
            Duration::ZERO,
        ))
        .filter(|d| !d.is_zero()),
        batch: e.int("archive.batch", ar.batch, 500, 1, 10_000),
        interval: e.duration(
            "archive.interval",
            ar.interval.as_deref(),
            Duration::from_secs(600),
            Duration::from_millis(100),
        ),
        pause_above: e.int("archive.pause_above", ar.pause_above, 50, 0, 1_000_000_000),
    }
}
