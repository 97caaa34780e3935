//! The Redis key layout of a campaign and of its stock buckets (ARCHITECTURE.md §2, §7).
//!
//! A campaign's stock may be split into `B` buckets (a power of two, at most
//! [`MAX_BUCKETS`]), each a complete set of keys under its own hash tag, so each bucket lives in
//! its own cluster slot and every script still touches a single slot. Bucket 0 keeps the tag
//! `{<campaign_id>}` a campaign without buckets always had, so a running deployment's campaigns
//! read unchanged as one-bucket campaigns; bucket `b > 0` is tagged `{<campaign_id>#<b>}`.
//!
//! A user's purchases all go to one *home* bucket, picked by the lowest bits of their shard
//! gene. Order ids end in that gene, so an order id names its bucket with no lookup.
//! Keys are built once per campaign, not per request.

/// The most buckets a campaign may have: the home bucket is the shard gene's low bits, and the
/// gene (the order id's lowest bits) has four.
pub const MAX_BUCKETS: u32 = 16;

/// The names of every Redis key of one bucket of a campaign (of the whole campaign when it has
/// one bucket).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CampaignKeys {
    /// The campaign these keys belong to; decoded orders carry it.
    pub campaign_id: String,
    /// Which bucket of the campaign (0 for a campaign without buckets).
    pub bucket: u32,
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
    /// transfer id → `"<units>|<home bucket>|<ms>"` (hash): units this bucket gave to another
    /// and that the other has perhaps not been credited yet (ARCHITECTURE.md §7).
    pub transfers: String,
    /// Ids of the transfers this bucket has been credited for (set), kept while the campaign
    /// lives: a repair racing the normal path finds the credit made and never makes it twice.
    pub credited: String,
    /// A short-lived mark a reservation batch writes before `WAIT` (`redis.replica_acks`), so
    /// the wait covers everything the master wrote until then (see [`crate::replication`]).
    pub replicated: String,
}

impl CampaignKeys {
    /// The keys of `campaign_id` (its bucket 0), which callers have already checked for
    /// key-safe characters.
    pub fn new(campaign_id: &str) -> Self {
        Self::bucket(campaign_id, 0)
    }

    /// The keys of bucket `bucket` of `campaign_id`.
    pub fn bucket(campaign_id: &str, bucket: u32) -> Self {
        let tag = if bucket == 0 {
            campaign_id.to_owned()
        } else {
            format!("{campaign_id}#{bucket}")
        };
        let key = |part: &str| format!("fg:{{{tag}}}:{part}");
        Self {
            campaign_id: campaign_id.to_owned(),
            bucket,
            meta: key("meta"),
            stock: key("stock"),
            buyers: key("buyers"),
            orders: key("orders"),
            deadlines: key("deadlines"),
            journal: key("journal"),
            payments: key("payments"),
            poisoned: key("poisoned"),
            transfers: key("transfers"),
            credited: key("credited"),
            replicated: key("replicated"),
        }
    }

    /// Every key, for tests and tools that wipe a campaign.
    pub fn all(&self) -> [&str; 11] {
        [
            &self.meta,
            &self.stock,
            &self.buyers,
            &self.orders,
            &self.deadlines,
            &self.journal,
            &self.payments,
            &self.poisoned,
            &self.transfers,
            &self.credited,
            &self.replicated,
        ]
    }
}

/// The buckets of one campaign: where each user buys and where each order lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignLayout {
    /// The campaign's id.
    pub campaign_id: String,
    /// Bucket `b`'s keys at index `b`; never empty, and its length a power of two.
    pub buckets: Vec<CampaignKeys>,
}

impl CampaignLayout {
    /// The layout of `campaign_id` with `count` buckets: `count` is rounded down to a power of
    /// two within `1..=MAX_BUCKETS` (config validation refuses other values before this).
    pub fn new(campaign_id: &str, count: u32) -> Self {
        let count = count.clamp(1, MAX_BUCKETS);
        let count = 1 << (31 - count.leading_zeros());
        Self {
            campaign_id: campaign_id.to_owned(),
            buckets: (0..count)
                .map(|b| CampaignKeys::bucket(campaign_id, b))
                .collect(),
        }
    }

    /// How many buckets.
    pub fn count(&self) -> u32 {
        u32::try_from(self.buckets.len()).unwrap_or(1)
    }

    /// Whether the stock is split at all.
    pub fn is_bucketed(&self) -> bool {
        self.buckets.len() > 1
    }

    /// The home bucket of a user with shard gene `gene`: all their purchases go there, and the
    /// per-user limit lives there only.
    pub fn home(&self, gene: u8) -> &CampaignKeys {
        &self.buckets[usize::from(gene) & (self.buckets.len() - 1)]
    }

    /// The bucket that holds order `order_id`: its lowest bits are its buyer's gene.
    pub fn of_order(&self, order_id: u64) -> &CampaignKeys {
        let mask = (self.buckets.len() - 1) as u64;
        &self.buckets[usize::try_from(order_id & mask).unwrap_or(0)]
    }

    /// Bucket 0: where the campaign-wide settings are read.
    pub fn first(&self) -> &CampaignKeys {
        &self.buckets[0]
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

    #[test]
    fn bucket_zero_keeps_the_campaign_tag_and_others_have_their_own() {
        let layout = CampaignLayout::new("phone-1", 8);
        assert_eq!(layout.count(), 8);
        assert_eq!(layout.first(), &CampaignKeys::new("phone-1"));
        assert_eq!(layout.buckets[3].stock, "fg:{phone-1#3}:stock");
        for key in layout.buckets[5].all() {
            assert!(key.starts_with("fg:{phone-1#5}:"), "{key}");
        }
    }

    #[test]
    fn an_order_lives_in_its_buyers_home_bucket() {
        let layout = CampaignLayout::new("c", 4);
        // Gene 13 → bucket 13 & 3 = 1; an id ending in that gene names the same bucket.
        assert_eq!(layout.home(13).bucket, 1);
        let id = (12_345_u64 << 4) | 13;
        assert_eq!(layout.of_order(id).bucket, 1);
        assert_eq!(
            CampaignLayout::new("c", 6).count(),
            4,
            "rounded down to a power of two"
        );
        assert_eq!(CampaignLayout::new("c", 0).count(), 1);
        assert_eq!(CampaignLayout::new("c", 64).count(), 16);
        assert_eq!(CampaignLayout::new("c", 1).of_order(id).bucket, 0);
    }
}
