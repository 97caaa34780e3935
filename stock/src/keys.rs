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
    /// user id → units bought (hash): the per-user limit.
    pub buyers: String,
    /// user id → the user's latest order id (hash): a limit-1 buyer asking again gets it back.
    pub user_orders: String,
    /// order id → compact order record (hash).
    pub orders: String,
    /// order id scored by payment deadline in ms (zset): the expiry sweeper's work list.
    pub deadlines: String,
    /// order id scored by the ms of its latest change (zset): states not yet in the store.
    pub journal: String,
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
            user_orders: key("user_orders"),
            orders: key("orders"),
            deadlines: key("deadlines"),
            journal: key("journal"),
        }
    }

    /// Every key, for tests and tools that wipe a campaign.
    pub fn all(&self) -> [&str; 7] {
        [
            &self.meta,
            &self.stock,
            &self.buyers,
            &self.user_orders,
            &self.orders,
            &self.deadlines,
            &self.journal,
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
