//! The expiry sweeper: unpaid orders past their deadline expire and their units sell again,
//! well inside the second the API promises; stock transfers between buckets a crash left half
//! done are finished on the way.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use flashgate_stock::{CampaignKeys, StockConnection, StockError, lifecycle};

use super::Task;
use crate::app::App;
use crate::pipeline::catalog::Campaign;

/// How often unpaid orders past their deadline are expired: well inside the promised second.
const EXPIRY_SWEEP: Duration = Duration::from_millis(200);
/// Deadline groups (one per reserve call) expired per script call.
const EXPIRY_GROUPS: usize = 64;

/// Sweeps every campaign of the catalog in force every [`EXPIRY_SWEEP`].
pub fn spawn(app: &Arc<App>) -> Task {
    let app = app.clone();
    Task::spawn("expiry sweeper", async move {
        let mut tick = tokio::time::interval(EXPIRY_SWEEP);
        let mut conn = app.redis.clone();
        let mut reported = Reported::default();
        loop {
            tick.tick().await;
            for campaign in app.catalog().campaigns() {
                sweep(&app, &mut conn, campaign, &mut reported).await;
            }
        }
    })
}

/// Expires every due unpaid order of `campaign`. Every gateway sweeps; the script claims each
/// deadline group once, so no order is expired twice and none is missed while one gateway runs.
/// A group naming a malformed order is held (left as it is) and passed over, so it never
/// stalls the orders due after it. Malformed data is logged for an operator when it is news
/// (see [`Reported`]).
async fn sweep(
    app: &App,
    conn: &mut StockConnection,
    campaign: &Campaign,
    reported: &mut Reported,
) {
    // Redis' state of a campaign refused until repaired may be older than the store's: an
    // order paid since would be expired and its units sold again.
    if campaign.needs_repair() || campaign.is_retired() {
        return;
    }
    let mut malformed = Vec::new();
    let mut refused = false;
    // A bucket that cannot be swept (malformed data, its master down) holds no other back.
    for keys in &campaign.layout.buckets {
        if let Err(e) = sweep_bucket(app, conn, keys, &mut malformed).await {
            if e.is_corrupt() {
                refused = true;
                if reported.refused.insert(campaign.config.id.clone()) {
                    tracing::error!(campaign = %campaign.config.id, bucket = keys.bucket, error = %e, "expiry sweep refused: malformed data in Redis, nothing changed; needs an operator");
                }
            } else {
                tracing::debug!(error = %e, "expiry sweep failed");
            }
        }
    }
    if campaign.layout.is_bucketed() {
        let given_before = app.clock.now_ms() - TRANSFER_REPAIR_AGE_MS;
        match flashgate_stock::buckets::repair(conn, &app.scripts, &campaign.layout, given_before)
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(campaign = %campaign.config.id, transfers = n, "finished stock transfers a crash left half done")
            }
            Err(e) => tracing::debug!(error = %e, "transfer repair failed"),
        }
    }
    if !refused {
        reported.refused.remove(&campaign.config.id);
    }
    let last = reported.malformed.get(&campaign.config.id);
    if last.map_or(!malformed.is_empty(), |last| *last != malformed) {
        if !malformed.is_empty() {
            tracing::error!(campaign = %campaign.config.id, orders = ?malformed, "unpaid orders past their deadline have malformed data in Redis: left as they are, not expired; needs an operator");
        }
        reported
            .malformed
            .insert(campaign.config.id.clone(), malformed);
    }
}

/// A transfer between buckets still pending after this long was cut in half by a crash (the
/// normal path completes one within a few round trips): the sweeper finishes it.
const TRANSFER_REPAIR_AGE_MS: i64 = 2_000;

/// Expires the due unpaid orders of one bucket, collecting the malformed ones it passed over.
async fn sweep_bucket(
    app: &App,
    conn: &mut StockConnection,
    keys: &CampaignKeys,
    malformed: &mut Vec<u64>,
) -> Result<(), StockError> {
    let mut held = 0;
    loop {
        let expired = lifecycle::expire_due(
            conn,
            &app.scripts,
            keys,
            app.clock.now_ms(),
            EXPIRY_GROUPS,
            held,
        )
        .await?;
        app.metrics
            .expired_orders
            .fetch_add(expired.orders, Ordering::Relaxed);
        if expired.orders > 0 {
            tracing::info!(campaign = %keys.campaign_id, bucket = keys.bucket, orders = expired.orders, units = expired.units, "unpaid orders expired");
        }
        malformed.extend(expired.malformed);
        held += expired.held_groups;
        if expired.groups < EXPIRY_GROUPS as u64 {
            return Ok(());
        }
    }
}

/// What the expiry sweeper last logged about malformed data, per campaign: it sweeps every
/// 200 ms, so it logs a change, not every sighting.
#[derive(Debug, Default)]
struct Reported {
    /// The malformed orders each sweep held.
    malformed: HashMap<String, Vec<u64>>,
    /// Campaigns whose sweep is refused (a malformed stock or journal).
    refused: HashSet<String>,
}
