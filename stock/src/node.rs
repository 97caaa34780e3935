//! The lease on a gateway's node id, and the mark of the ids minted under it
//! (`lua/node_lease.lua`).
//!
//! Order ids carry the node id and the millisecond they were minted in. The lease keeps two live
//! gateways off one node id; the mark keeps one gateway restarted on it from minting an id again
//! when its clock was stepped back across the restart: it is the highest millisecond the node
//! may have minted in, kept with the lease (in the same cluster slot) but never expiring.

use std::sync::LazyLock;

use redis::Script;
use redis::aio::ConnectionLike;

use crate::StockError;

static SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../lua/node_lease.lua")));

/// The keys of one node id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeKeys {
    /// The lease: the holder's string, expiring unless renewed.
    pub lease: String,
    /// The mark, Unix ms; hash-tagged with the lease key's name so both are in one slot.
    pub mark: String,
}

impl NodeKeys {
    pub fn new(node_id: u16) -> Self {
        Self {
            lease: format!("fg:node:{node_id}"),
            mark: format!("fg:{{fg:node:{node_id}}}:minted_until"),
        }
    }
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The lease is ours. `mark_before`: the mark as this claim found it (ids of this node's
    /// earlier lives are at or below it); `mark`: as it is now, at least the one asked for.
    Held { mark_before: i64, mark: i64 },
    /// Another gateway holds the node id.
    Taken { holder: String, left_ms: i64 },
}

/// Takes or renews the lease of `keys` for `holder` for `lease_ms`, taking over a holder that
/// starts with `takeover` (when not empty), and raises the mark to `mint_until_ms`.
///
/// # Errors
/// When Redis cannot be reached, or the mark is damaged.
pub async fn claim<C: ConnectionLike>(
    conn: &mut C,
    keys: &NodeKeys,
    holder: &str,
    lease_ms: u64,
    takeover: &str,
    mint_until_ms: i64,
) -> Result<Claim, StockError> {
    let (held, current, left_ms, before, after): (i64, String, i64, i64, i64) = SCRIPT
        .key(&keys.lease)
        .key(&keys.mark)
        .arg("claim")
        .arg(holder)
        .arg(lease_ms)
        .arg(takeover)
        .arg(mint_until_ms)
        .invoke_async(conn)
        .await?;
    Ok(if held == 1 {
        Claim::Held {
            mark_before: before,
            mark: after,
        }
    } else {
        Claim::Taken {
            holder: current,
            left_ms,
        }
    })
}

/// Gives the lease back if `holder` has it, recording `last_minted_ms` as the mark (this holder
/// mints no more); returns whether it was ours.
///
/// # Errors
/// When Redis cannot be reached, or the mark is damaged.
pub async fn release<C: ConnectionLike>(
    conn: &mut C,
    keys: &NodeKeys,
    holder: &str,
    last_minted_ms: i64,
) -> Result<bool, StockError> {
    let released: i64 = SCRIPT
        .key(&keys.lease)
        .key(&keys.mark)
        .arg("release")
        .arg(holder)
        .arg(0)
        .arg("")
        .arg(last_minted_ms)
        .invoke_async(conn)
        .await?;
    Ok(released == 1)
}
