//! Who may put a campaign's stock into Redis: the one guard against selling a campaign twice.
//!
//! Redis can lose a campaign (a restart without persistence, a failover to an empty replica,
//! keys deleted by hand). A campaign missing from Redis looks exactly like one never put on
//! sale, and putting the configured stock in place again would sell every unit a second time.
//! Only a durable record outside Redis can tell the two apart: the [`SalesLedger`], which the
//! order store keeps. [`crate::open_campaign`], the only function that creates stock, takes an
//! [`OpenPermit`], and a permit comes only from the ledger, one claim at a time. Every other
//! load of a campaign ([`crate::apply_settings`]: start, reload, a failed reload's restore, an
//! admin edit) leaves a campaign absent from Redis absent.

/// The durable memory of which campaigns have been put on sale.
///
/// Implemented by the order store, which outlives Redis' data.
pub trait SalesLedger {
    /// Why the ledger could not answer; no permit is given then.
    type Error;

    /// Records that `campaign_id` is being put on sale, and says whether that is allowed: only
    /// for a campaign never put on sale before, or one whose earlier opening never completed
    /// and that has no order anywhere in the store. A granted opening records `stock_total`.
    ///
    /// # Errors
    /// When the ledger cannot be read or written.
    fn claim_opening(&self, campaign_id: &str, stock_total: u64) -> Result<bool, Self::Error>;
}

/// Leave from the ledger to create one campaign's stock in Redis.
///
/// Neither `Clone` nor constructible outside this module: holding one means the ledger said
/// yes to this campaign, in this attempt.
#[derive(Debug)]
pub struct OpenPermit {
    campaign_id: String,
}

impl OpenPermit {
    /// Asks `ledger` whether `campaign_id` may be put on sale with `stock_total` units; `None`
    /// when it has been on sale before.
    ///
    /// # Errors
    /// The ledger's.
    pub fn claim<L: SalesLedger + ?Sized>(
        ledger: &L,
        campaign_id: &str,
        stock_total: u64,
    ) -> Result<Option<Self>, L::Error> {
        Ok(ledger
            .claim_opening(campaign_id, stock_total)?
            .then(|| Self {
                campaign_id: campaign_id.to_owned(),
            }))
    }

    /// The campaign this permit is for.
    pub fn campaign_id(&self) -> &str {
        &self.campaign_id
    }
}
