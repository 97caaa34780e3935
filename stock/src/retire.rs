//! Retiring a settled campaign from Redis (DESIGN §11, issue #13): what tells whether Redis
//! still holds anything unsettled of it, and the removal of every key of every bucket.
//!
//! The guarantee that a retired campaign is never given stock again is not here: it belongs to
//! the store's campaign ledger, which must say "retired" before [`remove`] runs (a campaign
//! whose keys are gone would otherwise be loaded afresh by the next start).

use redis::aio::ConnectionLike;

use crate::StockError;
use crate::keys::{CampaignKeys, CampaignLayout};
use crate::order::OrderStatus;
use crate::record;

/// What Redis holds of a campaign that retirement has to wait for, summed over its buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settlement {
    /// Orders in the campaign's hashes.
    pub orders: u64,
    /// Of those, still `pending_payment`: they may yet be paid, cancelled or expire.
    pub pending: u64,
    /// Orders whose latest state may not be in the store yet (journal entries).
    pub journaled: u64,
    /// Stock transfers between buckets not yet completed.
    pub transfers: u64,
    /// Records that do not decode: an operator's to repair, never retired unseen.
    pub unreadable: u64,
}

impl Settlement {
    /// Nothing of the campaign can change any more, and nothing is waiting for the store.
    pub fn is_settled(&self) -> bool {
        self.pending == 0 && self.journaled == 0 && self.transfers == 0 && self.unreadable == 0
    }
}

/// Reads what every bucket of `layout` still holds, `page` orders per command (`HSCAN`): no
/// single command takes the time of a big hash.
///
/// # Errors
/// When Redis cannot be reached or answers in an unknown shape.
pub async fn settlement<C: ConnectionLike>(
    conn: &mut C,
    layout: &CampaignLayout,
    page: usize,
) -> Result<Settlement, StockError> {
    let mut settlement = Settlement::default();
    for keys in &layout.buckets {
        let (journaled, transfers): (u64, u64) = redis::pipe()
            .scard(&keys.journal)
            .hlen(&keys.transfers)
            .query_async(conn)
            .await?;
        settlement.journaled += journaled;
        settlement.transfers += transfers;
        let mut cursor = 0_u64;
        loop {
            let (next, fields): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
                .arg(&keys.orders)
                .arg(cursor)
                .arg("COUNT")
                .arg(page.max(1))
                .query_async(conn)
                .await?;
            for (id, record) in &fields {
                settlement.orders += 1;
                match decoded_status(keys, id, record) {
                    Some(OrderStatus::PendingPayment) => settlement.pending += 1,
                    Some(_) => {}
                    None => settlement.unreadable += 1,
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(settlement)
}

fn decoded_status(keys: &CampaignKeys, id: &str, record: &str) -> Option<OrderStatus> {
    let order_id = id.parse().ok()?;
    record::decode(&keys.campaign_id, order_id, record)
        .ok()
        .map(|order| order.status)
}

/// Removes every key of every bucket of `layout`. Each bucket's `meta` goes first: from then
/// on every script answers "not loaded" for it, so nothing sells, pays or expires while the
/// rest goes. `UNLINK` frees big values off Redis's main thread, so no command holds Redis for
/// the size of a hash. Idempotent: a removal cut short is finished by the next.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn remove<C: ConnectionLike>(
    conn: &mut C,
    layout: &CampaignLayout,
) -> Result<(), StockError> {
    for keys in &layout.buckets {
        redis::cmd("UNLINK")
            .arg(&keys.meta)
            .query_async::<()>(conn)
            .await?;
        let rest: Vec<&str> = keys.all().into_iter().filter(|k| *k != keys.meta).collect();
        redis::cmd("UNLINK")
            .arg(&rest)
            .query_async::<()>(conn)
            .await?;
    }
    Ok(())
}
