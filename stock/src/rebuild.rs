//! Rebuilding a campaign's Redis state from the order store (`lua/rebuild.lua`), and the check
//! that says when it is needed.
//!
//! Redis is the source of truth while a campaign sells, but Redis can lose data (a restart
//! without persistence) or go back in time (a restore from an older snapshot). Either way the
//! store then holds orders that Redis does not, and Redis' stock counts their units as unsold.
//! [`crate::held::orders_held`] lets a loader notice (the store has more orders of the
//! campaign than Redis); [`rebuild_campaign`] is the operator's repair: every stored order back
//! in Redis, and stock, buyers and deadlines recomputed from all the orders Redis then holds.

use redis::aio::ConnectionLike;

use crate::StockError;
use crate::campaign::CampaignSpec;
use crate::keys::{CampaignKeys, CampaignLayout};
use crate::order::Order;
use crate::scripts::Scripts;

/// Orders per merge call: bounds how long one script holds Redis.
const CHUNK: usize = 500;

/// What a rebuild found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    /// Stored orders whose record Redis lacked or held at an older version.
    pub restored: u64,
    /// Orders Redis holds at a newer version than the store (kept, and journaled).
    pub newer_in_redis: u64,
    /// Orders of the campaign in Redis after the rebuild.
    pub orders: u64,
    /// The stock total in force.
    pub stock_total: u64,
    /// Units held by unpaid orders or sold.
    pub taken: u64,
    /// Units for sale after the rebuild.
    pub left: u64,
}

/// Puts every order of `stored` back into Redis (unless Redis holds a newer version of it),
/// then recomputes the campaign's stock, buyers and deadlines from the orders and writes its
/// settings. `spec.stock` is the total in force (the ledger's), whatever Redis held. A campaign
/// split into buckets is rebuilt bucket by bucket; its pending transfers are dropped and every
/// unit not taken goes to bucket 0, from which the others borrow.
///
/// Meant for a campaign no gateway is selling: the gateways refuse a campaign that needs it,
/// and every bucket is fenced first (see [`fence`]), so the buckets of a campaign that lost only
/// some of them stop selling too while it runs.
///
/// # Errors
/// When Redis cannot be reached, or holds a record it cannot read (nothing of that settle step
/// is written then; merged records stay, and a rerun is harmless).
pub async fn rebuild_campaign<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    layout: &CampaignLayout,
    spec: &CampaignSpec,
    stored: &[Order],
) -> Result<Rebuilt, StockError> {
    let mut rebuilt = Rebuilt {
        restored: 0,
        newer_in_redis: 0,
        orders: 0,
        stock_total: 0,
        taken: 0,
        left: 0,
    };
    fence(conn, layout).await?;
    let mut taken_elsewhere = 0;
    // Bucket 0 last: its share is what the others have not taken.
    for keys in layout.buckets.iter().skip(1).chain(layout.buckets.first()) {
        let mine: Vec<&Order> = stored
            .iter()
            .filter(|o| layout.of_order(o.order_id).bucket == keys.bucket)
            .collect();
        for chunk in mine.chunks(CHUNK) {
            let mut call = invoke(scripts, keys);
            call.arg("merge");
            for order in chunk {
                call.arg(order.order_id)
                    .arg(order.version)
                    .arg(crate::record::encode(order));
            }
            let (written, newer): (u64, u64) = call.invoke_async(conn).await?;
            rebuilt.restored += written;
            rebuilt.newer_in_redis += newer;
        }
        let share = if keys.bucket == 0 {
            spec.stock.saturating_sub(taken_elsewhere).to_string()
        } else {
            "taken".to_owned()
        };
        let mut call = invoke(scripts, keys);
        call.arg("settle");
        spec.settings_args(&mut call);
        let (_share, taken, left, orders): (u64, u64, u64, u64) = call
            .arg(share)
            .arg(layout.count())
            .arg(keys.bucket)
            .arg(spec.stock)
            .invoke_async(conn)
            .await?;
        if keys.bucket != 0 {
            taken_elsewhere += taken;
        }
        rebuilt.taken += taken;
        rebuilt.left += left;
        rebuilt.orders += orders;
    }
    rebuilt.stock_total = spec.stock;
    Ok(rebuilt)
}

/// Stops every bucket selling and lending before any is settled: a bucket settled while
/// another still sells, or a transfer credited after its home was settled, would count units
/// twice. Each bucket's meta goes (the reservation script then answers "not loaded", a
/// transfer neither gives nor credits) until its settle writes it back, and every transfer
/// still pending is marked credited at its home, so a credit arriving late changes nothing:
/// the settles recompute every share from the orders.
async fn fence<C: ConnectionLike>(conn: &mut C, layout: &CampaignLayout) -> Result<(), StockError> {
    for keys in &layout.buckets {
        let _: () = redis::cmd("DEL").arg(&keys.meta).query_async(conn).await?;
    }
    for keys in &layout.buckets {
        for transfer in crate::buckets::pending(conn, keys).await? {
            if let Some(home) = layout.buckets.get(transfer.home as usize) {
                let _: () = redis::cmd("SADD")
                    .arg(&home.credited)
                    .arg(&transfer.id)
                    .query_async(conn)
                    .await?;
            }
        }
    }
    Ok(())
}

fn invoke<'s>(scripts: &'s Scripts, keys: &CampaignKeys) -> redis::ScriptInvocation<'s> {
    let mut call = scripts.rebuild.prepare_invoke();
    call.key(&keys.meta)
        .key(&keys.stock)
        .key(&keys.buyers)
        .key(&keys.orders)
        .key(&keys.deadlines)
        .key(&keys.journal)
        .key(&keys.transfers);
    call
}
