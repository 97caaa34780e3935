//! The journal: orders whose latest state Redis holds but the store may not yet.
//!
//! The reserve script journals every order it accepts, in the same atomic call. Persistence
//! workers ack what they wrote; the reconciler persists whatever is left (a full queue, a crashed
//! gateway, a store outage). These calls are blocking on purpose: they run on the persistence
//! threads, never on the request path.

use redis::{Commands, ConnectionLike};

use crate::StockError;
use crate::keys::CampaignKeys;
use crate::order::Order;
use crate::record;
use crate::scripts::Scripts;

/// One step of a scan over the journal: about `count` order ids and the cursor to continue from
/// (0 when the scan is complete). Like every SCAN, an id may come twice; persisting is
/// idempotent, so that costs a repeated write, never a second row.
///
/// # Errors
/// When Redis cannot be reached or holds a non-numeric id.
pub fn scan<C: ConnectionLike>(
    conn: &mut C,
    keys: &CampaignKeys,
    cursor: u64,
    count: usize,
) -> Result<(u64, Vec<u64>), StockError> {
    let (next, ids): (u64, Vec<String>) = redis::cmd("SSCAN")
        .arg(&keys.journal)
        .arg(cursor)
        .arg("COUNT")
        .arg(count)
        .query(conn)?;
    let ids = ids
        .iter()
        .map(|id| {
            id.parse()
                .map_err(|_| StockError::bad_reply("journal", format!("order id {id:?}")))
        })
        .collect::<Result<_, _>>()?;
    Ok((next, ids))
}

/// What Redis holds for some journaled order ids.
#[derive(Debug, Default)]
pub struct Records {
    /// Orders whose record was read.
    pub orders: Vec<Order>,
    /// Ids with no record any more (nothing left to persist).
    pub gone: Vec<u64>,
    /// Ids whose record cannot be read: reported and left in the journal, never allowed to
    /// hold back the rest.
    pub unreadable: Vec<(u64, String)>,
}

/// The current records of `order_ids`.
///
/// # Errors
/// When Redis cannot be reached.
pub fn orders<C: ConnectionLike>(
    conn: &mut C,
    keys: &CampaignKeys,
    order_ids: &[u64],
) -> Result<Records, StockError> {
    let mut found = Records::default();
    if order_ids.is_empty() {
        return Ok(found);
    }
    let records: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(&keys.orders)
        .arg(order_ids)
        .query(conn)?;
    for (&id, rec) in order_ids.iter().zip(records) {
        match rec.map(|rec| record::decode(&keys.campaign_id, id, &rec)) {
            Some(Ok(order)) => found.orders.push(order),
            Some(Err(e)) => found.unreadable.push((id, e.to_string())),
            None => found.gone.push(id),
        }
    }
    Ok(found)
}

/// Drops orders from the journal whose state in the store is now their latest
/// (`lua/ack.lua`); returns how many were dropped.
///
/// # Errors
/// When Redis cannot be reached.
pub fn ack<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    written: &[(u64, u32)],
) -> Result<usize, StockError> {
    let mut dropped = 0;
    for chunk in written.chunks(ACK_CHUNK) {
        let mut call = scripts.ack.prepare_invoke();
        call.key(&keys.orders).key(&keys.journal);
        for (order_id, version) in chunk {
            call.arg(order_id).arg(version);
        }
        dropped += call.invoke::<usize>(conn)?;
    }
    Ok(dropped)
}

/// Takes an order the store refuses for good (at `version`) out of the journal, into
/// `fg:{c}:poisoned` with the reason, in one script call (`lua/set_aside.lua`): it stops being
/// retried and is never lost from sight. A newer state journaled since stays journaled.
/// Returns whether it was set aside.
///
/// # Errors
/// When Redis cannot be reached.
pub fn set_aside<C: ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    order_id: u64,
    version: u32,
    reason: &str,
) -> Result<bool, StockError> {
    let done: i64 = scripts
        .set_aside
        .key(&keys.orders)
        .key(&keys.journal)
        .key(&keys.poisoned)
        .arg(order_id)
        .arg(version)
        .arg(reason)
        .invoke(conn)
        .map_err(|e| StockError::from_script("set_aside.lua", e))?;
    Ok(done == 1)
}

/// Orders acked per script call: well under Lua's `unpack` stack limit (~8,000 values).
const ACK_CHUNK: usize = 1_000;

/// How many orders wait in the journal (readiness, metrics, tests).
///
/// # Errors
/// When Redis cannot be reached.
pub fn backlog<C: ConnectionLike>(conn: &mut C, keys: &CampaignKeys) -> Result<u64, StockError> {
    Ok(conn.scard(&keys.journal)?)
}

/// How many orders of the campaign wait for the store, from an async caller (metrics).
///
/// # Errors
/// When Redis cannot be reached.
pub async fn waiting<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    keys: &CampaignKeys,
) -> Result<u64, StockError> {
    Ok(redis::cmd("SCARD")
        .arg(&keys.journal)
        .query_async(conn)
        .await?)
}

/// Up to `n` order ids picked at random among those waiting for the store (a lag sample).
///
/// # Errors
/// When Redis cannot be reached.
pub async fn sample<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    keys: &CampaignKeys,
    n: usize,
) -> Result<Vec<u64>, StockError> {
    Ok(redis::cmd("SRANDMEMBER")
        .arg(&keys.journal)
        .arg(n)
        .query_async(conn)
        .await?)
}

/// The orders of a campaign set aside because the store refused them, with the reasons.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn poisoned<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    keys: &CampaignKeys,
) -> Result<std::collections::BTreeMap<u64, String>, StockError> {
    let all: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&keys.poisoned)
        .query_async(conn)
        .await?;
    Ok(all
        .into_iter()
        .filter_map(|(id, reason)| Some((id.parse().ok()?, reason)))
        .collect())
}

/// Puts an order that was set aside back in the journal (`lua/retry_poisoned.lua`), once the
/// cause is fixed; returns false when it was not set aside.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn retry_poisoned<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    scripts: &Scripts,
    keys: &CampaignKeys,
    order_id: u64,
) -> Result<bool, StockError> {
    let done: i64 = scripts
        .retry_poisoned
        .key(&keys.poisoned)
        .key(&keys.journal)
        .arg(order_id)
        .invoke_async(conn)
        .await
        .map_err(|e| StockError::from_script("retry_poisoned.lua", e))?;
    Ok(done == 1)
}
