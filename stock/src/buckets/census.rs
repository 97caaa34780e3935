//! Counting what is where: the exact [`Census`] of a campaign's buckets (a double collect), and
//! the cheap [`glance`].

use redis::aio::ConnectionLike;

use super::transfer::{SCRIPT, Transfer, invoke, parse_transfer};
use crate::StockError;
use crate::keys::CampaignLayout;
use crate::scripts::Scripts;

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
