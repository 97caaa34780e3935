//! One retirement of one campaign, step by step (ARCHITECTURE.md §9). Every step is safe to
//! repeat and to cut short: a gateway killed anywhere leaves either a campaign still whole in
//! Redis (the fence, if taken, goes stale and the next pass takes it over), or one the ledger
//! says is retired, whose keys the next pass finishes removing.

use flashgate_stock::retire::{self, Fence, OrderPages, Settlement};
use flashgate_stock::{CampaignLayout, Order, StockConnection, StockError};

use crate::app::{App, blocking};
use crate::pipeline::catalog::Campaign;
use crate::store::{Retirement, StoreError};

/// Orders per `HSCAN` page, and per store lookup: small enough that no Redis command or store
/// query takes long, whatever the campaign's size.
const PAGE: usize = 1_000;

/// A fence untouched this long belongs to a gateway that died mid-pass: another may take it
/// (the same node, restarted, takes its own back at once). A pass renews it every page, so a
/// live one never comes near.
pub const FENCE_STALE_MS: i64 = 60 * 1000;

/// What a pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The campaign has left Redis (now, or before: then its leftovers were removed).
    Retired(Retirement),
    /// Something of it may still change, or has not reached the store yet: tried again later.
    NotSettled(Settlement),
    /// Orders the store does not hold at their latest version and the pass could not write
    /// there (another order holds their id, see `store::Collision`): tried again later, and
    /// an operator's to look at.
    StoreBehind { orders: u64 },
    /// Another gateway is retiring it.
    Busy(String),
    /// Redis holds nothing of it and the ledger does not say it was retired: nothing to do
    /// here (a lost campaign is an operator's, see the rebuild).
    NotLoaded,
}

/// Why a pass stopped; nothing it did is undone, and the next pass goes on from there.
#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    #[error("Redis: {0}")]
    Redis(#[from] StockError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Retires `campaign` if it is settled, as gateway `holder`. The caller has checked that it
/// ended at least `retire_after` ago.
///
/// # Errors
/// When Redis or the store cannot be reached; a campaign fenced by this pass is unfenced
/// again when it can be (else the fence goes stale).
pub async fn retire(app: &App, campaign: &Campaign, holder: &str) -> Result<Outcome, RetireError> {
    let id = campaign.config.id.clone();
    let layout = &campaign.layout;
    let mut conn = app.redis.clone();
    if let Some(retired) = blocking(&app.store, move |s| s.campaign_retirement(&id)).await? {
        retire::remove(&mut conn, layout).await?;
        return Ok(Outcome::Retired(retired));
    }
    // Unfenced first: a campaign with unpaid orders must stay payable, so it is never fenced.
    let settlement = retire::settlement(&mut conn, layout, PAGE).await?;
    if !settlement.is_settled() {
        return Ok(Outcome::NotSettled(settlement));
    }
    if let Some(refused) = fence(app, &mut conn, layout, holder).await? {
        return Ok(refused);
    }
    match fenced(app, campaign, &mut conn, holder).await {
        Ok(Outcome::Retired(retired)) => Ok(Outcome::Retired(retired)),
        other => {
            // Not retired after all: it sells, pays and expires as before.
            retire::unfence(&mut conn, &app.scripts, layout, holder).await?;
            other
        }
    }
}

/// Takes (or renews) the fence on the campaign at the gateway clock's now; the outcome to
/// answer with when another gateway holds it or the campaign is gone from Redis.
async fn fence(
    app: &App,
    conn: &mut StockConnection,
    layout: &CampaignLayout,
    holder: &str,
) -> Result<Option<Outcome>, RetireError> {
    let now = app.clock.now_ms();
    Ok(
        match retire::fence(conn, &app.scripts, layout, holder, now, FENCE_STALE_MS).await? {
            Fence::Taken => None,
            Fence::HeldBy(other) => Some(Outcome::Busy(other)),
            Fence::Gone => Some(Outcome::NotLoaded),
        },
    )
}

/// The steps under the fence: nothing of the campaign changes in Redis any more, so what is
/// checked here stays true until its keys are gone.
async fn fenced(
    app: &App,
    campaign: &Campaign,
    conn: &mut StockConnection,
    holder: &str,
) -> Result<Outcome, RetireError> {
    let layout = &campaign.layout;
    // A change made just before the fence is in the journal, or already in the store.
    let mut settlement = retire::counts(conn, layout).await?;
    let mut behind = 0;
    let mut pages = OrderPages::new(layout, PAGE);
    while let Some(page) = pages.next(conn).await? {
        if let Some(refused) = fence(app, conn, layout, holder).await? {
            return Ok(refused);
        }
        settlement.tally(&page);
        let orders: Vec<Order> = page.into_iter().filter_map(Result::ok).collect();
        let ids: Vec<u64> = orders.iter().map(|o| o.order_id).collect();
        let stored = blocking(&app.store, move |s| s.stored_versions(&ids)).await?;
        let lagging: Vec<Order> = orders
            .into_iter()
            .zip(stored)
            .filter(|(order, stored)| stored.is_none_or(|s| s < order.version))
            .map(|(order, _)| order)
            .collect();
        if !lagging.is_empty() {
            // Under the fence these states are final: written here, they need no journal entry
            // (one lost to a crash or a flushed Redis would otherwise keep the campaign waiting
            // for ever). An order another one's id holds is not written: it keeps it here.
            let written = blocking(&app.store, move |s| s.write_batch(&lagging)).await?;
            behind += written.collisions.len() as u64;
        }
    }
    if !settlement.is_settled() {
        return Ok(Outcome::NotSettled(settlement));
    }
    if behind > 0 {
        return Ok(Outcome::StoreBehind { orders: behind });
    }
    let payments = retire::payments(conn, layout, PAGE).await?;
    let id = campaign.config.id.clone();
    blocking(&app.store, move |s| s.record_payments(&id, &payments)).await?;
    let live = flashgate_stock::campaign::live_states(conn, &app.scripts, &[&**layout]).await?;
    let (remaining, stock_total) = live
        .first()
        .copied()
        .flatten()
        .unwrap_or((0, campaign.config.stock));
    let retired = Retirement {
        stock_total,
        remaining,
        retired_at_ms: app.clock.now_ms(),
    };
    // The ledger first: from then on nothing gives the campaign stock again, and a pass cut
    // short below is finished by the next (see `retire`).
    let id = campaign.config.id.clone();
    blocking(&app.store, move |s| s.retire_campaign(&id, &retired)).await?;
    retire::remove(conn, layout).await?;
    Ok(Outcome::Retired(retired))
}
