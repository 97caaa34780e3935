//! One transfer of units between two buckets, step by step (`lua/transfer.lua`): taken from the
//! donor, credited to the home, forgotten by the donor; the transfers a donor has pending, and
//! the repair that finishes those a crash left behind.

use redis::aio::ConnectionLike;

use crate::StockError;
use crate::keys::{CampaignKeys, CampaignLayout};
use crate::scripts::Scripts;

pub(super) const SCRIPT: &str = "transfer.lua";

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
pub(super) fn parse_transfer(donor: u32, id: String, value: &str) -> Result<Transfer, StockError> {
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

pub(super) fn invoke<'s>(keys: &CampaignKeys, scripts: &'s Scripts) -> redis::ScriptInvocation<'s> {
    let mut call = scripts.transfer.prepare_invoke();
    call.key(&keys.meta)
        .key(&keys.stock)
        .key(&keys.transfers)
        .key(&keys.credited);
    call
}
