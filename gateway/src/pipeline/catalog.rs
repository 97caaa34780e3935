//! The campaigns this gateway sells, and the checks that need nothing but them: does it exist
//! (stage 5), is it open (stage 6), is it known to be sold out (stage 7).
//!
//! Unknown ids are answered from a Bloom filter of campaign ids, without touching Redis or the
//! store: a filter may say "maybe" for an unknown id (then the map decides), never "no"
//! for a known one. The sold-out mark is a cache of Redis' answer: it is set when the script says
//! sold out and cleared by [`Catalog::refresh_sold_out`] within a second of stock returning.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bloomfilter::Bloom;
use flashgate_stock::CampaignLayout;

use super::reserver::Reserver;
use crate::config::CampaignConfig;
use crate::store::Retirement;

/// Why the catalog refuses a request for a campaign, decided without I/O. `ApiError` says how
/// each is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No campaign has this id.
    #[error("no such campaign")]
    Unknown,
    /// Its Redis state is refused until an operator rebuilds it.
    #[error("this campaign's stock state is being repaired by an operator; retry later")]
    NeedsRepair,
    #[error("campaign has not started")]
    NotStarted,
    #[error("campaign has ended")]
    Ended,
}

/// One campaign on sale here.
#[derive(Debug)]
pub struct Campaign {
    pub config: CampaignConfig,
    /// Its Redis keys, bucket by bucket (one bucket unless its stock is split).
    pub layout: Arc<CampaignLayout>,
    /// Where this campaign's reservations are batched into script calls.
    pub reserver: Reserver,
    sold_out: AtomicBool,
    /// Set while Redis' state of this campaign cannot be trusted (lost, or older than the
    /// store): no purchase may run against it until an operator rebuilds it from the store.
    needs_repair: AtomicBool,
    /// Why, for `/readyz`, the log and the refusal (read only off the hot path).
    repair_reason: Mutex<Option<String>>,
    /// Set once the campaign has left Redis for good (ARCHITECTURE.md §9): it sells nothing, and
    /// its orders, payments and view are answered from the store.
    retirement: OnceLock<Retirement>,
}

impl Campaign {
    /// Whether it is past its retirement time (`after` its end) and still here; a campaign
    /// refused until repaired waits for its repair: its Redis state is not to be trusted, let
    /// alone retired. The retirement task and the lag metric both ask.
    pub fn is_due_for_retirement(&self, after: std::time::Duration, now: i64) -> bool {
        !self.is_retired() && !self.needs_repair() && now >= self.retirement_due_at(after)
    }

    /// When it becomes due for retirement (Unix ms).
    pub fn retirement_due_at(&self, after: std::time::Duration) -> i64 {
        let after = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        self.config.end_ms.saturating_add(after)
    }

    pub fn new(config: CampaignConfig, layout: Arc<CampaignLayout>, reserver: Reserver) -> Self {
        Self {
            config,
            layout,
            reserver,
            sold_out: AtomicBool::new(false),
            needs_repair: AtomicBool::new(false),
            repair_reason: Mutex::new(None),
            retirement: OnceLock::new(),
        }
    }

    /// The campaign has left Redis for good; a second call changes nothing.
    pub fn retired(&self, retirement: Retirement) {
        let _ = self.retirement.set(retirement);
    }

    /// What the ledger keeps of the campaign, once retired (one atomic load before then).
    pub fn retirement(&self) -> Option<&Retirement> {
        self.retirement.get()
    }

    pub fn is_retired(&self) -> bool {
        self.retirement.get().is_some()
    }

    /// Refuses every purchase of this campaign until [`Campaign::repaired`]: Redis' state of it
    /// would sell units the store says are taken.
    pub fn refuse_until_repaired(&self, reason: String) {
        *self
            .repair_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason);
        self.needs_repair.store(true, Ordering::Release);
    }

    /// The campaign's Redis state was rebuilt from the store: it may sell again.
    pub fn repaired(&self) {
        self.needs_repair.store(false, Ordering::Release);
        *self
            .repair_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Whether this campaign is refused until repaired (one atomic load): background work on
    /// its untrusted Redis state (the expiry sweep) waits too.
    pub fn needs_repair(&self) -> bool {
        self.needs_repair.load(Ordering::Acquire)
    }

    /// Why this campaign is refused, if it is.
    pub fn repair_reason(&self) -> Option<String> {
        if !self.needs_repair() {
            return None;
        }
        self.repair_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stage 5½: a campaign whose Redis state needs repair sells nothing (one atomic load).
    ///
    /// # Errors
    /// [`Refusal::NeedsRepair`] (503 `campaign_needs_repair`).
    pub fn check_repaired(&self) -> Result<(), Refusal> {
        if self.needs_repair() {
            return Err(Refusal::NeedsRepair);
        }
        Ok(())
    }

    /// Stage 6: 403 before the start, 410 from the end on.
    ///
    /// # Errors
    /// [`Refusal::NotStarted`] or [`Refusal::Ended`].
    pub fn check_window(&self, now_ms: i64) -> Result<(), Refusal> {
        if now_ms < self.config.start_ms {
            Err(Refusal::NotStarted)
        } else if now_ms >= self.config.end_ms {
            Err(Refusal::Ended)
        } else {
            Ok(())
        }
    }

    /// Stage 7: whether Redis last said there is nothing left.
    pub fn is_marked_sold_out(&self) -> bool {
        self.sold_out.load(Ordering::Relaxed)
    }

    pub fn mark_sold_out(&self) {
        self.sold_out.store(true, Ordering::Relaxed);
    }

    /// Clears the mark once Redis has stock again (a cancelled or expired order returned it).
    pub fn clear_sold_out(&self) {
        self.sold_out.store(false, Ordering::Relaxed);
    }
}

/// Every campaign on sale here, found by id.
#[derive(Debug)]
pub struct Catalog {
    known: Bloom<str>,
    by_id: HashMap<String, Arc<Campaign>>,
    /// Lookups the Bloom filter answered "unknown" (for `/metrics`); shared with the catalogs
    /// that succeed this one at a reload.
    bloom_rejections: Arc<AtomicU64>,
}

/// False positives per lookup of an unknown id; each one costs a map lookup, nothing more.
const BLOOM_FP_RATE: f64 = 0.001;

impl Catalog {
    pub fn new(campaigns: impl IntoIterator<Item = Campaign>) -> Self {
        let by_id: HashMap<String, Arc<Campaign>> = campaigns
            .into_iter()
            .map(|c| (c.config.id.clone(), Arc::new(c)))
            .collect();
        let items = by_id.len().max(1);
        let mut known = match Bloom::new_for_fp_rate(items, BLOOM_FP_RATE) {
            Ok(bloom) => bloom,
            Err(e) => unreachable!("bloom parameters are constants and valid: {e}"),
        };
        for id in by_id.keys() {
            known.set(id.as_str());
        }
        Self {
            known,
            by_id,
            bloom_rejections: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Stage 5: the campaign named `id`.
    ///
    /// # Errors
    /// [`Refusal::Unknown`] (404 `unknown_campaign`), decided without any I/O.
    pub fn get(&self, id: &str) -> Result<&Arc<Campaign>, Refusal> {
        if !self.known.check(id) {
            self.bloom_rejections.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Unknown);
        }
        self.by_id.get(id).ok_or(Refusal::Unknown)
    }

    /// The catalog that replaces this one at a reload: `campaigns`, with this one's counters.
    pub fn successor(&self, campaigns: impl IntoIterator<Item = Campaign>) -> Self {
        let mut next = Self::new(campaigns);
        next.bloom_rejections = self.bloom_rejections.clone();
        next
    }

    /// Lookups the Bloom filter turned away without touching a map, Redis or the store.
    pub fn bloom_rejections(&self) -> u64 {
        self.bloom_rejections.load(Ordering::Relaxed)
    }

    pub fn campaigns(&self) -> impl Iterator<Item = &Arc<Campaign>> {
        self.by_id.values()
    }

    /// Stops every campaign's reservations (shutdown): see [`super::reserver::Reserver::close`].
    pub async fn close(&self, patience: std::time::Duration) {
        for campaign in self.campaigns() {
            campaign.reserver.close(patience).await;
        }
    }

    /// Clears the sold-out mark of every campaign whose stock Redis says is back above zero.
    ///
    /// # Errors
    /// When Redis cannot be reached; marks are left as they are.
    pub async fn refresh_sold_out(
        &self,
        conn: &mut flashgate_stock::StockConnection,
        scripts: &flashgate_stock::Scripts,
    ) -> Result<(), flashgate_stock::StockError> {
        // A retired campaign is sold out for good, and Redis has nothing of it to ask.
        for campaign in self
            .campaigns()
            .filter(|c| c.is_marked_sold_out() && !c.is_retired())
        {
            let left = flashgate_stock::units_left(conn, scripts, &campaign.layout).await?;
            if left.is_some_and(|n| n > 0) {
                campaign.clear_sold_out();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use flashgate_stock::CampaignLayout;

    use super::{Campaign, Refusal, Reserver};
    use crate::clock::Clock;
    use crate::config::CampaignConfig;

    const START: i64 = 1_800_000_000_000;

    fn campaign(start_ms: i64, end_ms: i64) -> Campaign {
        let config = CampaignConfig {
            id: "window".into(),
            sku: "sku".into(),
            name: "window".into(),
            unit_price_cents: 100,
            stock: 1,
            per_user_limit: 1,
            max_quantity: 1,
            start_ms,
            end_ms,
            pay_timeout: Duration::from_secs(60),
            buckets: 1,
        };
        let layout = Arc::new(CampaignLayout::new(&config.id, 1));
        Campaign::new(config, layout, Reserver::idle())
    }

    /// The window follows the gateway's clock: moved by hand, not waited for.
    #[test]
    fn the_window_opens_at_its_start_and_closes_at_its_end_as_the_clock_moves() {
        let clock = Clock::manual(START - 1);
        let c = campaign(START, START + 3_000);
        assert_eq!(c.check_window(clock.now_ms()), Err(Refusal::NotStarted));
        clock.advance(1);
        assert_eq!(c.check_window(clock.now_ms()), Ok(()));
        clock.advance(2_999);
        assert_eq!(c.check_window(clock.now_ms()), Ok(()));
        clock.advance(1);
        assert_eq!(c.check_window(clock.now_ms()), Err(Refusal::Ended));
    }

    #[test]
    fn a_campaign_is_due_for_retirement_once_the_clock_passes_its_end_and_the_wait() {
        let clock = Clock::manual(START + 3_000);
        let c = campaign(START, START + 3_000);
        let after = Duration::from_secs(600);
        assert!(!c.is_due_for_retirement(after, clock.now_ms()));
        clock.advance(600_000);
        assert!(c.is_due_for_retirement(after, clock.now_ms()));
        c.refuse_until_repaired("lost".into());
        assert!(
            !c.is_due_for_retirement(after, clock.now_ms()),
            "repair first"
        );
    }
}
