//! Invariants 1–3 checked on a [`Snapshot`] against what the client saw: no oversell, stock
//! conserved, per-user limits held, and every accepted order stored once and nothing else.

use std::collections::{HashMap, HashSet};

use flashgate::config::CampaignConfig;
use flashgate_stock::{Order, OrderStatus};

use crate::engine::{Kind, Outcome};

use super::snapshot::Snapshot;
use super::verification::{Check, Verification};

/// Checks invariants 1–3 on `snapshot` against what the client saw (`outcomes`, quantity 1
/// per purchase).
pub fn verify(
    snapshot: &Snapshot,
    campaign: &CampaignConfig,
    outcomes: &[Outcome],
) -> Verification {
    let tally = Tally::new(snapshot, campaign, outcomes);
    let mut checks = tally.stock_checks(snapshot, campaign);
    checks.extend(tally.store_checks(snapshot));
    Verification {
        checks,
        committed_unseen: tally.unseen.min(tally.ambiguous),
    }
}

/// What the checks compare, counted once.
struct Tally {
    /// Orders the client saw accepted.
    seen: HashSet<u64>,
    /// Answers that may or may not have committed an order.
    ambiguous: usize,
    /// Units held by orders pending payment or paid.
    held_units: u64,
    /// Users holding more than the campaign's per-user limit.
    over_limit: usize,
    /// Orders seen accepted but not in the store.
    missing: usize,
    /// Orders stored that the client never saw and that were not there before the run.
    unseen: usize,
    /// Orders not the same in Redis and in the store (or in only one of them).
    differing: usize,
}

impl Tally {
    fn new(snapshot: &Snapshot, campaign: &CampaignConfig, outcomes: &[Outcome]) -> Self {
        let Snapshot {
            in_redis, stored, ..
        } = snapshot;
        let seen: HashSet<u64> = outcomes
            .iter()
            .filter(|o| o.kind == Kind::Purchase && o.status == 202)
            .filter_map(|o| o.order_id.as_deref()?.parse().ok())
            .collect();
        let ambiguous = outcomes
            .iter()
            .filter(|o| o.status == 0 || o.code.as_deref() == Some("outcome_unknown"))
            .count();
        let (held_units, over_limit) = holdings(in_redis, campaign.per_user_limit);
        let missing = seen.iter().filter(|id| !stored.contains_key(id)).count();
        let unseen = stored
            .keys()
            .filter(|id| !seen.contains(id) && !snapshot.before.contains(id))
            .count();
        let differing = in_redis
            .iter()
            .filter(|(id, o)| stored.get(id) != Some(o))
            .count()
            + stored
                .keys()
                .filter(|id| !in_redis.contains_key(id))
                .count();
        Self {
            seen,
            ambiguous,
            held_units,
            over_limit,
            missing,
            unseen,
            differing,
        }
    }

    /// Invariants 1 and 2: no oversell, stock conserved, per-user limits held.
    fn stock_checks(&self, snapshot: &Snapshot, campaign: &CampaignConfig) -> Vec<Check> {
        let (stock_total, remaining) = (snapshot.stock_total, snapshot.remaining);
        let Self {
            seen,
            held_units,
            over_limit,
            ..
        } = self;
        vec![
            Check::new(
                "units accepted <= stock",
                seen.len() as u64 <= stock_total && *held_units <= stock_total,
                format!(
                    "client saw {} accepted, Redis holds {held_units} units, stock {stock_total}",
                    seen.len()
                ),
            ),
            Check::new(
                "stock conserved",
                i64::try_from(stock_total).unwrap_or(i64::MAX) - remaining
                    == i64::try_from(*held_units).unwrap_or(i64::MAX),
                format!(
                    "{stock_total} total - {remaining} left (over {} buckets, {} transfers \
                     pending) vs {held_units} held by orders",
                    snapshot.buckets, snapshot.pending_transfers
                ),
            ),
            Check::new(
                "per-user limit held",
                *over_limit == 0,
                format!("{over_limit} users above {} units", campaign.per_user_limit),
            ),
        ]
    }

    /// Invariant 3: the journal drained, and the store holds every accepted order, once, as
    /// Redis does, and nothing unexplained.
    fn store_checks(&self, snapshot: &Snapshot) -> Vec<Check> {
        let Snapshot {
            in_redis,
            stored,
            backlog,
            patience,
            ..
        } = snapshot;
        let backlog = *backlog;
        let Self {
            seen,
            ambiguous,
            missing,
            unseen,
            differing,
            ..
        } = self;
        vec![
            Check::new(
                "journal drained",
                backlog == 0,
                if backlog == 0 {
                    format!(
                        "{} orders waiting when the load ended, all stored {:.2} s later",
                        snapshot.backlog_at_end,
                        snapshot.drained_after.as_secs_f64()
                    )
                } else {
                    format!("{backlog} orders still waiting for the store after {patience:?}")
                },
            ),
            Check::new(
                "store equals Redis",
                *differing == 0,
                format!(
                    "{} in Redis, {} in the store, {differing} differ",
                    in_redis.len(),
                    stored.len()
                ),
            ),
            Check::new(
                "accepted orders stored once",
                *missing == 0,
                format!(
                    "{missing} of {} accepted orders missing from the store",
                    seen.len()
                ),
            ),
            Check::new(
                "no unexplained orders",
                unseen <= ambiguous,
                format!(
                    "{unseen} stored orders never seen accepted; {ambiguous} ambiguous answers"
                ),
            ),
        ]
    }
}

/// (Units held by orders pending payment or paid, users holding more than `per_user_limit`.)
fn holdings(in_redis: &HashMap<u64, Order>, per_user_limit: u32) -> (u64, usize) {
    let holding = |o: &&Order| matches!(o.status, OrderStatus::PendingPayment | OrderStatus::Paid);
    let held_units: u64 = in_redis
        .values()
        .filter(holding)
        .map(|o| u64::from(o.quantity))
        .sum();
    let mut per_user: HashMap<&str, u64> = HashMap::new();
    for o in in_redis.values().filter(holding) {
        *per_user.entry(&o.user_id).or_default() += u64::from(o.quantity);
    }
    let over_limit = per_user
        .values()
        .filter(|&&u| u > u64::from(per_user_limit))
        .count();
    (held_units, over_limit)
}
