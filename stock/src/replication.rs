//! Waiting for replicas: what lets an answered order survive the failover of its master.
//!
//! Redis replicates asynchronously. A master answers a script as soon as it has run it, and
//! sends the writes to its replicas afterwards; a master that dies in between takes those
//! writes with it, and the replica promoted in its place never saw them. An order answered
//! 202 from such a write is lost, and its unit is sold again. [`wait_for_replicas`] closes
//! that gap: the gateway asks, after each reservation batch and before any answer, whether
//! `n` replicas hold what the batch wrote or read.
//!
//! # How
//!
//! One pipeline, sent to the master of the campaign's slot (its first command is a write of a
//! key in that slot, which is what routes a pipeline on a Cluster):
//!
//! 1. `SET <mark> 1 PX …`: a write on *this* connection, so that the next step covers every
//!    write the master made before it, from any connection — the batch's own script (which may
//!    have run on another connection), and the original write of a replayed order (made by
//!    another gateway, perhaps never replicated). `WAIT` alone only covers the writes of the
//!    connection it is sent on.
//! 2. `WAIT n timeout`: the number of replicas that acknowledged everything up to the mark.
//! 3. `HMGET orders <ids>`: the orders are on the node that just answered. Should the slot have
//!    moved between the script and this pipeline (a failover: the pipeline follows MOVED to the
//!    new master), the replicas counted are the new master's, and this says whether the orders
//!    survived the move at all.
//!
//! Everything runs on one connection to one node, in order, so the answer is about one node
//! and nothing can slip between the steps.
//!
//! # Cost
//!
//! `WAIT` blocks the connection it is sent on until the replicas answer (one round trip from
//! the master to its replicas) or the timeout: any command queued behind it on that connection
//! waits too. The gateway therefore sends these pipelines on a connection of their own, never on
//! the one that carries the scripts. One pipeline per batch, never per purchase.

use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionLike;

use crate::StockError;
use crate::keys::CampaignKeys;

/// How long the mark outlives the last batch that wrote it: it holds nothing anyone reads, and
/// must not stay behind once a campaign is gone.
const MARK_TTL_MS: u64 = 60_000;

/// How many replicas of the campaign's master hold `order_ids` (and everything that master
/// wrote before this call), waiting at most `timeout` for `replicas` of them: `replicas` or
/// more means the orders survive the loss of the master. 0 when the node that answered does not
/// hold every one of the orders (the master they were written to is gone, and took them along).
///
/// `timeout` is rounded up to a whole millisecond and is never 0 (to Redis, `WAIT … 0` means
/// "wait for ever").
///
/// # Errors
/// When Redis cannot be reached or refuses (a replica cannot `WAIT`): nothing is known then.
pub async fn wait_for_replicas<C: ConnectionLike>(
    conn: &mut C,
    keys: &CampaignKeys,
    order_ids: &[u64],
    replicas: u32,
    timeout: Duration,
) -> Result<u32, StockError> {
    let timeout_ms = u64::try_from(timeout.as_micros().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1);
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(&keys.replicated)
        .arg(1)
        .arg("PX")
        .arg(MARK_TTL_MS)
        .ignore()
        .cmd("WAIT")
        .arg(replicas)
        .arg(timeout_ms);
    if !order_ids.is_empty() {
        pipe.cmd("HMGET").arg(&keys.orders).arg(order_ids);
    }
    let replies: Vec<Value> = pipe.query_async(conn).await?;
    let mut replies = replies.into_iter();
    let acked = match replies.next() {
        Some(Value::Int(n)) => u32::try_from(n).unwrap_or(0),
        other => {
            return Err(StockError::bad_reply("WAIT", format!("{other:?}")));
        }
    };
    let held = match replies.next() {
        None => true,
        Some(Value::Array(records)) => {
            records.len() == order_ids.len() && records.iter().all(|r| *r != Value::Nil)
        }
        Some(other) => return Err(StockError::bad_reply("HMGET", format!("{other:?}"))),
    };
    Ok(if held { acked } else { 0 })
}
