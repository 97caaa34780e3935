//! A hot campaign's stock split into buckets, each in its own slot (ARCHITECTURE.md §7): moving
//! units between buckets, repairing moves a crash cut in half, and counting what is where.
//!
//! A purchase only ever touches its buyer's home bucket ([`CampaignLayout::home`]), so the
//! buckets of one campaign sell on as many Redis cores as there are masters. A home bucket that
//! runs dry borrows from a donor by a [`Transfer`]: taken from the donor ([`take`]), credited to
//! the home ([`credit`], once per transfer id whatever repeats it), then forgotten by the donor
//! ([`forget`]). [`repair`] finishes transfers a crash left between the first and the last step.
//! At every moment, Σ bucket stock + Σ pending transfers + units taken = the campaign's total
//! ([`Census`]).
//!
//! # Layout
//!
//! - `mod.rs`: how stock splits over buckets, and which buckets Redis holds.
//! - `transfer.rs`: a [`Transfer`]'s steps, the transfers a donor has pending, and [`repair`].
//! - `borrow.rs`: [`borrow`], filling a dry home bucket from the others.
//! - `census.rs`: [`Census`], every bucket at one moment, and the cheap [`glance`].

use redis::aio::ConnectionLike;

use crate::StockError;
use crate::keys::{CampaignKeys, CampaignLayout};

mod borrow;
mod census;
mod transfer;

pub use borrow::{Borrowed, borrow};
pub use census::{BucketCensus, Census, glance};
pub use transfer::{Transfer, complete, credit, forget, pending, repair, take};

/// How `stock` splits over `count` buckets: equal shares, the remainder to the first ones.
pub fn shares(stock: u64, count: u32) -> Vec<u64> {
    let count = u64::from(count.max(1));
    (0..count)
        .map(|b| stock / count + u64::from(b < stock % count))
        .collect()
}

/// The number of buckets campaign `campaign_id` was opened with, or `None` when Redis does not
/// hold it. A campaign opened before buckets existed has one.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn live_count<C: ConnectionLike>(
    conn: &mut C,
    campaign_id: &str,
) -> Result<Option<u32>, StockError> {
    let first = CampaignKeys::new(campaign_id);
    let (stock, buckets): (Option<String>, Option<u32>) = redis::pipe()
        .get(&first.stock)
        .hget(&first.meta, "buckets")
        .query_async(conn)
        .await?;
    Ok(stock.map(|_| buckets.unwrap_or(1)))
}

/// The buckets of `layout` Redis holds no stock for: all of them for a campaign never opened
/// or lost, some for an opening a crash interrupted (or a partial loss).
///
/// # Errors
/// When Redis cannot be reached.
pub async fn missing<C: ConnectionLike>(
    conn: &mut C,
    layout: &CampaignLayout,
) -> Result<Vec<u32>, StockError> {
    let mut missing = Vec::new();
    for keys in &layout.buckets {
        let present: bool = redis::cmd("EXISTS")
            .arg(&keys.stock)
            .query_async(conn)
            .await?;
        if !present {
            missing.push(keys.bucket);
        }
    }
    Ok(missing)
}

/// How many orders of the campaign Redis holds, over every bucket (see
/// [`crate::held::orders_held`]).
///
/// # Errors
/// When Redis cannot be reached.
pub async fn orders_held<C: ConnectionLike>(
    conn: &mut C,
    layout: &CampaignLayout,
) -> Result<u64, StockError> {
    let mut held = 0;
    for keys in &layout.buckets {
        held += crate::held::orders_held(conn, keys).await?;
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_split_evenly_with_the_remainder_first() {
        assert_eq!(shares(10, 4), [3, 3, 2, 2]);
        assert_eq!(shares(1_000, 8), [125; 8]);
        assert_eq!(shares(3, 8).iter().sum::<u64>(), 3);
        assert_eq!(shares(7, 1), [7]);
    }
}
