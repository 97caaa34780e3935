//! Retiring a settled campaign from Redis (ARCHITECTURE.md §9, issue #13): what tells whether Redis
//! still holds anything unsettled of it, its orders and payments page by page for the store to
//! check and keep, the fence that freezes it meanwhile (also the lease that lets one gateway
//! do it), and the removal of every key of every bucket.
//!
//! The guarantee that a retired campaign is never given stock again is not here: it belongs to
//! the store's campaign ledger, which must say "retired" before [`remove`] runs (a campaign
//! whose keys are gone would otherwise be loaded afresh by the next start).

use redis::aio::ConnectionLike;

use crate::StockError;
use crate::keys::{CampaignKeys, CampaignLayout};
use crate::lifecycle::{PaymentOutcome, PaymentRecord};
use crate::order::{Order, OrderStatus};
use crate::record;
use crate::scripts::Scripts;

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
    /// Orders the store refused for good, set aside for an operator (`poisoned`): their latest
    /// state is in Redis only.
    pub set_aside: u64,
}

impl Settlement {
    /// Nothing of the campaign can change any more, and nothing is waiting for the store.
    pub fn is_settled(&self) -> bool {
        self.pending == 0
            && self.journaled == 0
            && self.transfers == 0
            && self.unreadable == 0
            && self.set_aside == 0
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
    let mut settlement = counts(conn, layout).await?;
    let mut pages = OrderPages::new(layout, page);
    while let Some(orders) = pages.next(conn).await? {
        settlement.tally(&orders);
    }
    Ok(settlement)
}

/// The journal and transfer counts of every bucket (two cheap commands a bucket): a campaign
/// with either is not settled, whatever its orders say.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn counts<C: ConnectionLike>(
    conn: &mut C,
    layout: &CampaignLayout,
) -> Result<Settlement, StockError> {
    let mut settlement = Settlement::default();
    for keys in &layout.buckets {
        let (journaled, transfers, set_aside): (u64, u64, u64) = redis::pipe()
            .scard(&keys.journal)
            .hlen(&keys.transfers)
            .hlen(&keys.poisoned)
            .query_async(conn)
            .await?;
        settlement.journaled += journaled;
        settlement.transfers += transfers;
        settlement.set_aside += set_aside;
    }
    Ok(settlement)
}

impl Settlement {
    /// Counts one page of orders in.
    pub fn tally(&mut self, orders: &[Result<Order, String>]) {
        for order in orders {
            self.orders += 1;
            match order {
                Ok(order) if order.status == OrderStatus::PendingPayment => self.pending += 1,
                Ok(_) => {}
                Err(_) => self.unreadable += 1,
            }
        }
    }
}

/// Every order of a campaign, bucket after bucket, a page per `HSCAN`: what retirement checks
/// against the store without holding Redis for the size of a hash. A page may repeat an order
/// of an earlier one (`HSCAN` guarantees every element, not once).
#[derive(Debug)]
pub struct OrderPages<'a> {
    layout: &'a CampaignLayout,
    page: usize,
    bucket: usize,
    cursor: u64,
}

impl<'a> OrderPages<'a> {
    pub fn new(layout: &'a CampaignLayout, page: usize) -> Self {
        Self {
            layout,
            page: page.max(1),
            bucket: 0,
            cursor: 0,
        }
    }

    /// The next page: each order decoded, or the id of one whose record does not decode.
    /// `None` once every bucket was read.
    ///
    /// # Errors
    /// When Redis cannot be reached or answers in an unknown shape.
    pub async fn next<C: ConnectionLike>(
        &mut self,
        conn: &mut C,
    ) -> Result<Option<Vec<Result<Order, String>>>, StockError> {
        let Some(keys) = self.layout.buckets.get(self.bucket) else {
            return Ok(None);
        };
        let (next, fields): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
            .arg(&keys.orders)
            .arg(self.cursor)
            .arg("COUNT")
            .arg(self.page)
            .query_async(conn)
            .await?;
        if next == 0 {
            self.bucket += 1;
        }
        self.cursor = next;
        Ok(Some(
            fields
                .into_iter()
                .map(|(id, record)| decoded(keys, &id, &record).ok_or(id))
                .collect(),
        ))
    }
}

fn decoded(keys: &CampaignKeys, id: &str, record: &str) -> Option<Order> {
    let order_id = id.parse().ok()?;
    record::decode(&keys.campaign_id, order_id, record).ok()
}

/// Every payment Redis remembers for the campaign, over every bucket (`HSCAN` pages): what the
/// store must hold before the keys go, so that a repeated callback still gets its first answer
/// and a refund owed stays on record.
///
/// # Errors
/// When Redis cannot be reached; [`StockError::Corrupt`] for a record that does not read, or
/// for one payment id recorded differently in two buckets.
pub async fn payments<C: ConnectionLike>(
    conn: &mut C,
    layout: &CampaignLayout,
    page: usize,
) -> Result<Vec<PaymentRecord>, StockError> {
    let mut records = Vec::new();
    for keys in &layout.buckets {
        let mut cursor = 0_u64;
        loop {
            let (next, fields): (u64, Vec<(String, String)>) = redis::cmd("HSCAN")
                .arg(&keys.payments)
                .arg(cursor)
                .arg("COUNT")
                .arg(page.max(1))
                .query_async(conn)
                .await?;
            for (payment_id, value) in fields {
                records.push(payment_record(payment_id, &value)?);
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    // HSCAN may give a field twice; two buckets may each hold a payment under one id (see the
    // README's limits of buckets): the store keeps one record an id, so those are refused.
    records.sort_by(|a, b| a.payment_id.cmp(&b.payment_id));
    records.dedup();
    if let Some(pair) = records
        .windows(2)
        .find(|pair| pair[0].payment_id == pair[1].payment_id)
    {
        return Err(StockError::Corrupt {
            script: "lifecycle.lua",
            detail: format!(
                "payment {} is recorded for two orders or amounts in different buckets; an operator decides which one stands",
                pair[0].payment_id
            ),
        });
    }
    Ok(records)
}

/// A payment as lifecycle.lua records it: `"<order id>|<amount>|<outcome>"`.
fn payment_record(payment_id: String, value: &str) -> Result<PaymentRecord, StockError> {
    let mut parts = value.split('|');
    match (
        parts.next().and_then(|p| p.parse().ok()),
        parts.next().and_then(|p| p.parse().ok()),
        parts.next().and_then(PaymentOutcome::parse),
        parts.next(),
    ) {
        (Some(order_id), Some(amount_cents), Some(outcome), None) => Ok(PaymentRecord {
            payment_id,
            order_id,
            amount_cents,
            outcome,
        }),
        _ => Err(StockError::Corrupt {
            script: "lifecycle.lua",
            detail: format!("payment {payment_id} reads {value:?}"),
        }),
    }
}

/// Whether a retirement holds the campaign's fence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fence {
    /// Taken (or renewed) by the caller: nothing sells or changes until it is released or the
    /// keys are gone.
    Taken,
    /// Another retirement holds it (`"<holder>|<ms>"`).
    HeldBy(String),
    /// The campaign has no meta: removed already (or never loaded).
    Gone,
}

/// Fences every bucket of `layout` for a retirement by `holder`: bucket 0's fence is the lease,
/// taken only if free, already the holder's, or left `stale_ms` ago by a holder that stopped.
/// Renewing is taking again.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn fence<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    layout: &CampaignLayout,
    holder: &str,
    now_ms: i64,
    stale_ms: i64,
) -> Result<Fence, StockError> {
    let mut first = None;
    for keys in &layout.buckets {
        let reply: (i64, Option<String>) = fence_call(scripts, keys, "take", holder)
            .arg(now_ms)
            .arg(stale_ms)
            .invoke_async(conn)
            .await
            .map_err(|e| StockError::from_script(FENCE, e))?;
        let fence = match reply {
            (1, _) => Fence::Taken,
            (0, held) => Fence::HeldBy(held.unwrap_or_default()),
            _ => Fence::Gone,
        };
        // Bucket 0 decides; the others follow it (a bucket without meta is gone already).
        match first.get_or_insert(fence.clone()) {
            Fence::Taken => {}
            decided => return Ok(decided.clone()),
        }
    }
    Ok(first.unwrap_or(Fence::Gone))
}

/// Lifts `holder`'s fence from every bucket, bucket 0 (the lease) last: the retirement found
/// the campaign not ready after all, and it sells, pays and expires as before.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn unfence<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    layout: &CampaignLayout,
    holder: &str,
) -> Result<(), StockError> {
    for keys in layout.buckets.iter().rev() {
        let _: (i64,) = fence_call(scripts, keys, "release", holder)
            .invoke_async(conn)
            .await
            .map_err(|e| StockError::from_script(FENCE, e))?;
    }
    Ok(())
}

const FENCE: &str = "retire_fence.lua";

fn fence_call<'s>(
    scripts: &'s Scripts,
    keys: &CampaignKeys,
    mode: &str,
    holder: &str,
) -> redis::ScriptInvocation<'s> {
    let mut call = scripts.retire_fence.prepare_invoke();
    call.key(&keys.meta).arg(mode).arg(holder);
    call
}

/// Removes every key of every bucket of `layout`. Each bucket's `meta` goes first: from then
/// on reservations answer "not loaded" and lifecycle changes "retiring" (as under the fence),
/// so nothing sells, pays or expires while the rest goes. `UNLINK` frees big values off Redis's main thread, so no command holds Redis for
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

/// Bytes of Redis memory the campaign's keys take, every bucket's (`MEMORY USAGE`, which
/// samples the elements of big hashes): an estimate of what retiring it would give back.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn memory_usage<C: ConnectionLike>(
    conn: &mut C,
    layout: &CampaignLayout,
) -> Result<u64, StockError> {
    let mut bytes = 0;
    for keys in &layout.buckets {
        let mut pipe = redis::pipe();
        for key in keys.all() {
            pipe.cmd("MEMORY").arg("USAGE").arg(key);
        }
        let sizes: Vec<Option<u64>> = pipe.query_async(conn).await?;
        bytes += sizes.into_iter().flatten().sum::<u64>();
    }
    Ok(bytes)
}
