//! The Redis key layout of one campaign (DESIGN §2).
//!
//! Every key carries the hash tag `{<campaign_id>}`, so one campaign lives in one cluster slot and
//! every script touches a single slot. Keys are built once per campaign, not per request.

/// The names of every Redis key of one campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignKeys {
    /// The campaign these keys belong to; decoded orders carry it.
    pub campaign_id: String,
    /// Settings the scripts need (hash): sku, price, per-user limit, payment timeout, window.
    pub meta: String,
    /// Units still for sale (string integer).
    pub stock: String,
    /// user id → `"<units bought>|<latest order id>"` (hash): the per-user limit, and the order a
    /// limit-1 buyer asking again gets back.
    pub buyers: String,
    /// order id → compact order record (hash).
    pub orders: String,
    /// Groups of order ids (`"<id>,<id>,…"`, the orders one script call accepted) scored by
    /// their payment deadline in ms (zset): the expiry sweeper's work list. One member per call,
    /// not per order, because zset inserts are the dearest part of a reservation.
    pub deadlines: String,
    /// Ids of orders whose latest state may not be in the store yet (set).
    pub journal: String,
    /// payment id → `"<order id>|<amount>|<outcome>"` (hash): every successful payment reported,
    /// so a repeat gets its first answer and money that bought nothing is on record for refund.
    pub payments: String,
    /// order id → why the store refused it for good (hash): set aside out of the journal so it
    /// never holds the rest back, and kept here for an operator to look at and re-journal.
    pub poisoned: String,
}

impl CampaignKeys {
    /// The keys of `campaign_id`, which callers have already checked for key-safe characters.
    pub fn new(campaign_id: &str) -> Self {
        let key = |part: &str| format!("fg:{{{campaign_id}}}:{part}");
        Self {
            campaign_id: campaign_id.to_owned(),
            meta: key("meta"),
            stock: key("stock"),
            buyers: key("buyers"),
            orders: key("orders"),
            deadlines: key("deadlines"),
            journal: key("journal"),
            payments: key("payments"),
            poisoned: key("poisoned"),
        }
    }

    /// Every key, for tests and tools that wipe a campaign.
    pub fn all(&self) -> [&str; 8] {
        [
            &self.meta,
            &self.stock,
            &self.buyers,
            &self.orders,
            &self.deadlines,
            &self.journal,
            &self.payments,
            &self.poisoned,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_campaign_hash_tag() {
        let keys = CampaignKeys::new("phone-1");
        for key in keys.all() {
            assert!(key.starts_with("fg:{phone-1}:"), "{key}");
        }
        assert_eq!(keys.stock, "fg:{phone-1}:stock");
    }
}
