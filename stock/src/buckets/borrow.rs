//! Borrowing: a dry home bucket filled from the other buckets, one transfer per donor.

use redis::aio::ConnectionLike;

use super::transfer::{complete, repair, take};
use crate::StockError;
use crate::keys::CampaignLayout;
use crate::scripts::Scripts;

/// What [`borrow`] moved into a home bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Borrowed {
    /// Units credited to the home bucket.
    pub units: u64,
    /// Transfers made (each one donor).
    pub transfers: u64,
    /// Transfers found pending and finished on the way (a crash's leftovers, or another
    /// gateway's in flight).
    pub repaired: u64,
}

/// Fills a dry home bucket with at least `need` units if the other buckets hold them: donors
/// are asked in turn, starting after the home, until `need` is met. Each transfer is completed
/// before the next donor is asked. When every donor is empty but transfers are pending, they
/// are finished (whatever their age: finishing is idempotent) and the donors asked once more,
/// so "nothing borrowed" means every other bucket was empty and nothing was in flight.
///
/// # Errors
/// When Redis cannot be reached; units already moved stay moved (or pending, for a repair).
pub async fn borrow<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    layout: &CampaignLayout,
    home: u32,
    need: u64,
    now_ms: i64,
) -> Result<Borrowed, StockError> {
    let mut borrowed = Borrowed::default();
    let count = layout.count();
    for pass in 0..2 {
        let mut pending_seen = 0;
        for step in 1..count {
            if borrowed.units >= need {
                return Ok(borrowed);
            }
            let donor = &layout.buckets[((home + step) % count) as usize];
            let (transfer, pending) =
                take(conn, scripts, donor, home, need - borrowed.units, now_ms).await?;
            if let Some(transfer) = transfer {
                complete(conn, scripts, layout, &transfer).await?;
                borrowed.units += transfer.units;
                borrowed.transfers += 1;
                pending_seen += pending.saturating_sub(1);
            } else {
                pending_seen += pending;
            }
        }
        if borrowed.units >= need || pending_seen == 0 || pass == 1 {
            break;
        }
        borrowed.repaired += repair(conn, scripts, layout, i64::MAX).await?;
    }
    Ok(borrowed)
}
