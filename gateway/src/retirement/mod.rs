//! Retiring campaigns from Redis (ARCHITECTURE.md §9, issue #13): once a campaign has ended
//! `persistence.retire_after` ago and everything of it is final and in the store, its keys
//! leave Redis and the store answers for it. Redis then holds only what is hot, whatever the
//! history.
//!
//! Every gateway runs the task; the fence on the campaign's bucket 0 (a lease) lets one retire
//! a campaign at a time, and the ledger entry tells the others it is done.
//!
//! # Layout
//! - [`pass`]: one retirement of one campaign, step by step.
//! - [`payments`]: a payment callback for an order of a retired campaign, decided from the
//!   store as Redis would have decided it.

pub mod pass;
pub mod payments;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::pipeline::catalog::Campaign;
use pass::Outcome;

/// How often due campaigns are looked at.
const TICK: Duration = Duration::from_secs(1);
/// How long a campaign that was not ready waits before the next pass (a full pass reads every
/// order of it).
const RETRY_MS: i64 = 5_000;

/// Starts the retirement task. With retirement off (`retire_after = 0`) it only removes what a
/// retirement cut short left of a campaign the ledger says is retired.
pub fn spawn(app: &Arc<App>) -> tokio::task::JoinHandle<()> {
    let after = app.config.persistence.retire_after;
    let app = app.clone();
    tokio::spawn(async move {
        // The node id, leased by one live gateway at a time: a gateway restarted after dying
        // mid-pass takes its own fence back at once.
        let holder = format!("node-{}", app.config.server.node_id);
        let mut next_try: HashMap<String, i64> = HashMap::new();
        let mut swept: HashSet<String> = HashSet::new();
        let mut tick = tokio::time::interval(TICK);
        loop {
            tick.tick().await;
            for campaign in app.catalog().campaigns() {
                if campaign.is_retired() && !swept.contains(&campaign.config.id) {
                    // Loaded as retired: a pass cut short after the ledger may have left keys.
                    let mut conn = app.redis.clone();
                    match flashgate_stock::retire::remove(&mut conn, &campaign.layout).await {
                        Ok(()) => {
                            swept.insert(campaign.config.id.clone());
                        }
                        Err(e) => {
                            tracing::debug!(campaign = %campaign.config.id, error = %e, "removing a retired campaign's leftover keys failed");
                        }
                    }
                    continue;
                }
                let Some(after) = after else { continue };
                let now = app.clock.now_ms();
                if !campaign.is_due_for_retirement(after, now)
                    || next_try.get(&campaign.config.id).is_some_and(|t| *t > now)
                {
                    continue;
                }
                if !try_once(&app, campaign, &holder).await {
                    next_try.insert(campaign.config.id.clone(), now + RETRY_MS);
                }
            }
        }
    })
}

/// One pass over `campaign`; true when it is retired.
async fn try_once(app: &App, campaign: &Campaign, holder: &str) -> bool {
    let id = &campaign.config.id;
    match pass::retire(app, campaign, holder).await {
        Ok(Outcome::Retired(retired)) => {
            tracing::info!(campaign = %id, remaining = retired.remaining, stock_total = retired.stock_total, "campaign retired: its keys left Redis, the store answers for it");
            campaign.retired(retired);
            true
        }
        Ok(Outcome::NotSettled(s)) => {
            tracing::info!(campaign = %id, unpaid = s.pending, journaled = s.journaled, transfers = s.transfers, unreadable = s.unreadable, set_aside = s.set_aside, "campaign due for retirement is not settled yet");
            false
        }
        Ok(Outcome::StoreBehind { orders }) => {
            tracing::warn!(campaign = %id, orders, "campaign due for retirement: orders whose id another stored order holds keep it in Redis");
            false
        }
        Ok(Outcome::Busy(other)) => {
            tracing::debug!(campaign = %id, holder = %other, "another gateway is retiring the campaign");
            false
        }
        Ok(Outcome::NotLoaded) => false,
        Err(e) => {
            tracing::warn!(campaign = %id, error = %e, "retirement pass failed; tried again later");
            false
        }
    }
}
