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

use redis::aio::ConnectionLike;

use crate::StockError;
use crate::keys::{CampaignKeys, CampaignLayout};
use crate::scripts::Scripts;

const SCRIPT: &str = "transfer.lua";

/// Units taken from a donor bucket for a home bucket, not yet forgotten by the donor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Unique within the campaign: `<donor bucket>.<ms>.<donor's counter>`.
    pub id: String,
    pub donor: u32,
    pub home: u32,
    pub units: u64,
    /// When the donor gave the units (Unix ms).
    pub at_ms: i64,
}

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
/// [`crate::rebuild::orders_held`]).
///
/// # Errors
/// When Redis cannot be reached.
pub async fn orders_held<C: ConnectionLike>(
    conn: &mut C,
    layout: &CampaignLayout,
) -> Result<u64, StockError> {
    let mut held = 0;
    for keys in &layout.buckets {
        held += crate::rebuild::orders_held(conn, keys).await?;
    }
    Ok(held)
}

/// Takes `want` units from `donor` for bucket `home` (more, up to half the donor's stock, when
/// it has plenty; fewer when it has less). `None` when the donor has none;
/// either way, how many transfers the donor has pending (given and not yet forgotten).
///
/// # Errors
/// When Redis cannot be reached, or the donor's stock is malformed (nothing taken).
pub async fn take<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    donor: &CampaignKeys,
    home: u32,
    want: u64,
    now_ms: i64,
) -> Result<(Option<Transfer>, u64), StockError> {
    let (units, id, pending): (u64, String, u64) = invoke(donor, scripts)
        .arg("out")
        .arg(want)
        .arg(home)
        .arg(now_ms)
        .invoke_async(conn)
        .await
        .map_err(|e| StockError::from_script(SCRIPT, e))?;
    let transfer = (units > 0).then_some(Transfer {
        id,
        donor: donor.bucket,
        home,
        units,
        at_ms: now_ms,
    });
    Ok((transfer, pending))
}

/// Credits `transfer` to its home bucket, unless it was credited before: true when this call
/// made the credit. A home bucket Redis does not hold is not credited (the transfer stays
/// pending and counted).
///
/// # Errors
/// When Redis cannot be reached.
pub async fn credit<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    home: &CampaignKeys,
    transfer: &Transfer,
) -> Result<bool, StockError> {
    let (made, _stock): (i64, i64) = invoke(home, scripts)
        .arg("in")
        .arg(&transfer.id)
        .arg(transfer.units)
        .invoke_async(conn)
        .await
        .map_err(|e| StockError::from_script(SCRIPT, e))?;
    if made < 0 {
        return Err(StockError::bad_reply(
            SCRIPT,
            format!("bucket {} of the campaign is not loaded", home.bucket),
        ));
    }
    Ok(made == 1)
}

/// Forgets a credited transfer at its donor.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn forget<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    donor: &CampaignKeys,
    transfer_id: &str,
) -> Result<(), StockError> {
    let _: (i64,) = invoke(donor, scripts)
        .arg("done")
        .arg(transfer_id)
        .invoke_async(conn)
        .await
        .map_err(|e| StockError::from_script(SCRIPT, e))?;
    Ok(())
}

/// Credits then forgets: the second and third steps, also what a repair runs. True when this
/// call made the credit (false: a repair or the normal path made it before).
///
/// # Errors
/// When Redis cannot be reached: the transfer stays pending for [`repair`].
pub async fn complete<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    layout: &CampaignLayout,
    transfer: &Transfer,
) -> Result<bool, StockError> {
    let (Some(home), Some(donor)) = (
        layout.buckets.get(transfer.home as usize),
        layout.buckets.get(transfer.donor as usize),
    ) else {
        return Err(StockError::bad_reply(
            SCRIPT,
            format!("transfer {} names a bucket the campaign lacks", transfer.id),
        ));
    };
    let made = credit(conn, scripts, home, transfer).await?;
    forget(conn, scripts, donor, &transfer.id).await?;
    Ok(made)
}

/// The transfers `donor` has given and not yet forgotten.
///
/// # Errors
/// When Redis cannot be reached or a recorded transfer is malformed.
pub async fn pending<C: ConnectionLike>(
    conn: &mut C,
    donor: &CampaignKeys,
) -> Result<Vec<Transfer>, StockError> {
    let recorded: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(&donor.transfers)
        .query_async(conn)
        .await?;
    recorded
        .into_iter()
        .map(|(id, value)| parse_transfer(donor.bucket, id, &value))
        .collect()
}

/// A transfer as its donor records it: `"<units>|<home>|<ms>"` under its id.
fn parse_transfer(donor: u32, id: String, value: &str) -> Result<Transfer, StockError> {
    let mut parts = value.split('|');
    let mut next = || parts.next().and_then(|p| p.parse::<i64>().ok());
    match (next(), next(), next()) {
        (Some(units), Some(home), Some(at_ms)) if units > 0 && home >= 0 => Ok(Transfer {
            id,
            donor,
            home: u32::try_from(home).unwrap_or(u32::MAX),
            units: units.unsigned_abs(),
            at_ms,
        }),
        _ => Err(StockError::Corrupt {
            script: SCRIPT,
            detail: format!("transfer {id} of bucket {donor} reads {value:?}"),
        }),
    }
}

/// Finishes every transfer given at or before `given_before_ms` that is still pending: what a
/// crash between a transfer's steps left behind. Returns how many it finished. Safe to run
/// beside the normal path: a credit is made once per transfer id.
///
/// # Errors
/// When Redis cannot be reached (what was finished stays finished).
pub async fn repair<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    layout: &CampaignLayout,
    given_before_ms: i64,
) -> Result<u64, StockError> {
    // One bucket or transfer that cannot be finished (its home lost, its master down) holds
    // none of the others back; the first failure is returned once all were tried.
    let (mut finished, mut failure) = (0, None);
    for donor in &layout.buckets {
        let transfers = match pending(conn, donor).await {
            Ok(transfers) => transfers,
            Err(e) => {
                failure.get_or_insert(e);
                continue;
            }
        };
        for transfer in transfers.iter().filter(|t| t.at_ms <= given_before_ms) {
            match complete(conn, scripts, layout, transfer).await {
                Ok(_) => finished += 1,
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
    }
    match failure {
        Some(e) if finished == 0 => Err(e),
        _ => Ok(finished),
    }
}

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

/// (units left, total) of a campaign from one pass over its buckets, `None` when Redis does
/// not hold it: cheap, for a display or for clearing a sold-out mark (any unit anywhere clears
/// it), not for accounting — a transfer moving between two reads may be counted twice or not
/// at all. [`Census`] is the exact reading.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn glance<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    layout: &CampaignLayout,
) -> Result<Option<(i64, i64)>, StockError> {
    let census = Census::collect(conn, scripts, layout).await?;
    Ok(census.loaded().then(|| (census.left(), census.total())))
}

/// One bucket as Redis holds it, read atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketCensus {
    /// Units for sale in the bucket (`None`: Redis does not hold the bucket).
    pub stock: Option<i64>,
    /// The bucket's share of the total: its stock plus the units taken in it. Purchases and
    /// returns leave it alone; only transfers (and an explicit stock change) move it.
    pub share: i64,
    /// Transfers this bucket gave whose home has not been credited yet, and their units.
    pub pending: u64,
    pub pending_units: u64,
    /// Transfers given and credited but not yet forgotten (a repair's work, or the normal
    /// path's next step): counted in their home's share, not as pending.
    pub unforgotten: u64,
    /// Transfers this bucket ever gave, and ever received (counters for metrics; also what the
    /// census compares between its two reads).
    pub given: u64,
    pub received: u64,
    /// The transfers recorded pending when the bucket was read.
    transfers: Vec<Transfer>,
}

/// Every bucket of a campaign at one moment. Buckets live in different slots, so no single
/// read sees them all: the census reads every bucket twice (double collect) and keeps a read in
/// which no transfer moved units between the two passes — then every bucket held what the first
/// pass read at the moment that pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Census {
    pub buckets: Vec<BucketCensus>,
}

/// Double collects tried before a census gives up on a campaign whose transfers never pause.
const CENSUS_ATTEMPTS: usize = 50;

impl Census {
    /// Reads every bucket of `layout` at one moment.
    ///
    /// # Errors
    /// When Redis cannot be reached, a bucket's data is malformed, or transfers never paused
    /// long enough for a consistent read.
    pub async fn take<C: ConnectionLike>(
        conn: &mut C,
        scripts: &Scripts,
        layout: &CampaignLayout,
    ) -> Result<Self, StockError> {
        let mut first = Self::collect(conn, scripts, layout).await?;
        for _ in 0..CENSUS_ATTEMPTS {
            first.settle_credits(conn, scripts, layout).await?;
            let second = Self::collect(conn, scripts, layout).await?;
            let moved =
                |a: &BucketCensus, b: &BucketCensus| (a.given, a.received) != (b.given, b.received);
            if !first
                .buckets
                .iter()
                .zip(&second.buckets)
                .any(|(a, b)| moved(a, b))
            {
                return Ok(first);
            }
            first = second;
        }
        Err(StockError::bad_reply(
            SCRIPT,
            "transfers never paused long enough for a census",
        ))
    }

    async fn collect<C: ConnectionLike>(
        conn: &mut C,
        scripts: &Scripts,
        layout: &CampaignLayout,
    ) -> Result<Self, StockError> {
        let mut buckets = Vec::with_capacity(layout.buckets.len());
        for keys in &layout.buckets {
            let fields: Vec<String> = invoke(keys, scripts)
                .arg("census")
                .invoke_async(conn)
                .await
                .map_err(|e| StockError::from_script(SCRIPT, e))?;
            let number = |i: usize| -> Result<i64, StockError> {
                fields
                    .get(i)
                    .and_then(|f| f.parse().ok())
                    .ok_or_else(|| StockError::bad_reply(SCRIPT, format!("{fields:?}")))
            };
            let transfers = fields
                .get(5..)
                .unwrap_or_default()
                .chunks(2)
                .map(|pair| match pair {
                    [id, value] => parse_transfer(keys.bucket, id.clone(), value),
                    _ => Err(StockError::bad_reply(SCRIPT, format!("{fields:?}"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            buckets.push(BucketCensus {
                stock: (number(0)? == 1).then_some(number(1)?),
                share: number(2)?,
                pending: transfers.len() as u64,
                pending_units: transfers.iter().map(|t| t.units).sum(),
                unforgotten: 0,
                given: number(3)?.unsigned_abs(),
                received: number(4)?.unsigned_abs(),
                transfers,
            });
        }
        Ok(Self { buckets })
    }

    /// Moves every transfer this read found pending whose home already has the credit out of
    /// `pending`. The ids are the ones this read saw: one the donor forgot since was credited
    /// before it was forgotten, and the home's credited set says so.
    async fn settle_credits<C: ConnectionLike>(
        &mut self,
        conn: &mut C,
        scripts: &Scripts,
        layout: &CampaignLayout,
    ) -> Result<(), StockError> {
        for census in &mut self.buckets {
            for transfer in std::mem::take(&mut census.transfers) {
                let Some(home) = layout.buckets.get(transfer.home as usize) else {
                    continue;
                };
                let credited: Vec<i64> = invoke(home, scripts)
                    .arg("credited")
                    .arg(&transfer.id)
                    .invoke_async(conn)
                    .await
                    .map_err(|e| StockError::from_script(SCRIPT, e))?;
                if credited.first() == Some(&1) {
                    census.pending = census.pending.saturating_sub(1);
                    census.pending_units = census.pending_units.saturating_sub(transfer.units);
                    census.unforgotten += 1;
                }
            }
        }
        Ok(())
    }

    /// Whether Redis holds the campaign (its bucket 0).
    pub fn loaded(&self) -> bool {
        self.buckets.first().is_some_and(|b| b.stock.is_some())
    }

    /// Units for sale now or soon: every bucket's stock and every pending transfer.
    pub fn left(&self) -> i64 {
        self.buckets
            .iter()
            .map(|b| b.stock.unwrap_or(0) + i64::try_from(b.pending_units).unwrap_or(i64::MAX))
            .sum()
    }

    /// The campaign's total: every bucket's share and every pending transfer.
    pub fn total(&self) -> i64 {
        self.buckets
            .iter()
            .map(|b| b.share + i64::try_from(b.pending_units).unwrap_or(i64::MAX))
            .sum()
    }

    /// Units held by unpaid orders or sold.
    pub fn taken(&self) -> i64 {
        self.total() - self.left()
    }

    /// Transfers whose home has not been credited yet.
    pub fn pending(&self) -> u64 {
        self.buckets.iter().map(|b| b.pending).sum()
    }

    /// Whether Σ stock + Σ pending + `sold` equals `total`: `sold` counted from the orders
    /// themselves (units of orders not cancelled or expired).
    pub fn conserved(&self, total: u64, sold: u64) -> bool {
        i128::from(self.left()) + i128::from(sold) == i128::from(total)
    }
}

fn invoke<'s>(keys: &CampaignKeys, scripts: &'s Scripts) -> redis::ScriptInvocation<'s> {
    let mut call = scripts.transfer.prepare_invoke();
    call.key(&keys.meta)
        .key(&keys.stock)
        .key(&keys.transfers)
        .key(&keys.credited);
    call
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
