//! Archiving settled orders (ARCHITECTURE.md §9, issue #13): orders of retired campaigns that
//! have not changed for `archive.after` leave the hot shard tables for the archive, so the tables a
//! flash sale writes to stay small whatever the history. Reads fall through to the archive in
//! the store itself ([`crate::store::OrderStore::get`] and the user listing).
//!
//! The pass is the store's least urgent user: it moves `archive.batch` rows per step (one
//! short write lock each), and waits while this gateway accepts more than
//! `archive.pause_above` purchases a second, so a sale's writes never queue behind it. Steps
//! are idempotent: a gateway killed mid-pass leaves at worst an order in both places, which
//! reads resolve and the next pass removes. Several gateways may run passes at once.
//!
//! # Layout
//! - [`pace`]: how busy the gateway is, and the wait while it is.
//! - [`metrics`]: what the pass counts for `/metrics`.

pub mod metrics;
pub mod pace;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::{App, blocking};
use crate::store::{ArchiveStep, StoreError};

/// The first pass starts this long after the gateway, out of the way of its warm-up.
const FIRST_PASS_DELAY: Duration = Duration::from_secs(1);

/// Starts the archive task; none with archiving off (`archive.after = 0`).
pub fn spawn(app: &Arc<App>) -> Option<tokio::task::JoinHandle<()>> {
    let after = app.config.archive.after?;
    let app = app.clone();
    Some(tokio::spawn(async move {
        tokio::time::sleep(FIRST_PASS_DELAY).await;
        loop {
            match run_pass(&app, after).await {
                done if done.failed_tables == 0 => {
                    tracing::info!(
                        moved = done.moved,
                        scanned = done.scanned,
                        waited_ms = done.waited.as_millis(),
                        took_ms = done.took.as_millis(),
                        "archive pass finished"
                    );
                }
                done => {
                    tracing::warn!(
                        moved = done.moved,
                        failed_tables = done.failed_tables,
                        "archive pass finished with tables left for the next pass"
                    );
                }
            }
            tokio::time::sleep(app.config.archive.interval).await;
        }
    }))
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct PassDone {
    pub moved: u64,
    pub scanned: u64,
    /// Time spent waiting for a busy sale.
    pub waited: Duration,
    pub took: Duration,
    /// Tables whose walk a store error cut short (each logged); the next pass tries again.
    pub failed_tables: usize,
}

/// One pass over every hot table: orders last updated before `now - after` move. A table
/// whose step fails is left for the next pass (the steps before stand); the others go on.
pub async fn run_pass(app: &Arc<App>, after: Duration) -> PassDone {
    let started = Instant::now();
    let before_ms = app
        .clock
        .now_ms()
        .saturating_sub(i64::try_from(after.as_millis()).unwrap_or(i64::MAX));
    let stats = &app.metrics.archive;
    stats.running(true);
    let mut done = PassDone::default();
    let mut pace = pace::Pace::new(app.config.archive.pause_above);
    for shard in 0..app.store.shards() {
        if let Err(e) = walk(app, shard, before_ms, &mut pace, &mut done).await {
            done.failed_tables += 1;
            stats.failed();
            tracing::warn!(shard, error = %e, "archive step failed; the table is left for the next pass");
        }
    }
    stats.running(false);
    done.took = started.elapsed();
    done
}

/// Every step over hot table `shard`.
async fn walk(
    app: &Arc<App>,
    shard: usize,
    before_ms: i64,
    pace: &mut pace::Pace,
    done: &mut PassDone,
) -> Result<(), StoreError> {
    let stats = &app.metrics.archive;
    let mut from = None;
    loop {
        done.waited += pace.wait_while_busy(&app.metrics.requests, stats).await;
        let batch = app.config.archive.batch;
        let step: ArchiveStep = blocking(&app.store, move |s| {
            s.archive_step(shard, from, before_ms, batch)
        })
        .await?;
        done.moved += step.moved as u64;
        done.scanned += step.scanned as u64;
        stats.moved(step.moved);
        match step.next {
            Some(next) => from = Some(next),
            None => return Ok(()),
        }
    }
}
