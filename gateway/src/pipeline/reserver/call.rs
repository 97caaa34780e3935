//! One script call for a batch of one bucket, and what follows when it cannot answer every
//! purchase: borrowing from the other buckets and a retry, or, when the call failed, the
//! answers read back from the records Redis holds.

use flashgate_stock::StockConnection;
use flashgate_stock::{
    CampaignKeys, Reservation, ReserveOutcome, Scripts, StockError, buckets, record, reserve_batch,
};

use super::{Bucket, Pending};
use crate::pipeline::reserve_error::ReserveError;

/// One script call for `batch` in its bucket (and, for purchases the bucket could not serve,
/// borrowing and a retry), at `now` (Unix ms, the gateway clock's): the answer of each
/// reservation, in order.
pub(super) async fn call(
    conn: &mut StockConnection,
    scripts: &Scripts,
    bucket: &Bucket,
    now: i64,
    batch: &[Pending],
) -> Vec<Result<ReserveOutcome, ReserveError>> {
    let keys = bucket.keys();
    let outcomes = {
        let reservations = reservations(batch);
        reserve_batch(conn, scripts, keys, now, &reservations).await
    };
    match outcomes {
        Ok(outcomes) => {
            let mut outcomes: Vec<Result<ReserveOutcome, ReserveError>> =
                outcomes.into_iter().map(Ok).collect();
            if bucket.layout.is_bucketed() {
                borrow_for_dry(conn, scripts, bucket, now, batch, &mut outcomes).await;
            }
            outcomes
        }
        Err(e) => {
            tracing::warn!(campaign = %keys.campaign_id, bucket = keys.bucket, error = %e, "reserve call failed");
            let unsure = !matches!(&e, StockError::Redis(r) if r.is_connection_refusal());
            let ids: Vec<u64> = batch.iter().map(|p| p.order_id).collect();
            let users: Vec<&str> = batch.iter().map(|p| p.user_id.as_str()).collect();
            answers_from_records(conn, keys, now, &ids, &users, unsure).await
        }
    }
}

fn reservations(batch: &[Pending]) -> Vec<Reservation<'_>> {
    batch
        .iter()
        .map(|p| Reservation {
            user_id: &p.user_id,
            order_id: p.order_id,
            quantity: p.quantity,
        })
        .collect()
}

/// Rounds of borrow-and-retry one call makes for purchases its bucket could not serve.
const BORROW_ROUNDS: usize = 3;

/// The home bucket ran dry for some purchases of this call: borrows what they need from the
/// other buckets and tries them again, so they are answered sold out only when no bucket had a
/// unit to lend. A failure to borrow or to retry answers them as the failure says (nothing
/// was reserved for them, unless the retry's reply was lost: then Redis is asked, as for any
/// call).
async fn borrow_for_dry(
    conn: &mut StockConnection,
    scripts: &Scripts,
    bucket: &Bucket,
    now: i64,
    batch: &[Pending],
    outcomes: &mut [Result<ReserveOutcome, ReserveError>],
) {
    let home = u32::try_from(bucket.index).unwrap_or(0);
    for _ in 0..BORROW_ROUNDS {
        let dry: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                matches!(
                    o,
                    Ok(ReserveOutcome::SoldOut | ReserveOutcome::InsufficientStock { .. })
                )
            })
            .map(|(i, _)| i)
            .collect();
        if dry.is_empty() {
            return;
        }
        let need: u64 = dry.iter().map(|&i| u64::from(batch[i].quantity)).sum();
        // Nothing borrowed still asks the home once more: another call's transfer may have
        // filled it since it was found dry (this borrow finished it, or its owner did).
        let last_round = match buckets::borrow(conn, scripts, &bucket.layout, home, need, now).await
        {
            Ok(borrowed) => borrowed.units == 0,
            Err(e) => {
                tracing::warn!(campaign = %bucket.layout.campaign_id, bucket = home, error = %e, "borrowing stock failed");
                for &i in &dry {
                    outcomes[i] = Err(ReserveError::Unavailable);
                }
                return;
            }
        };
        let retry: Vec<Reservation<'_>> = dry
            .iter()
            .map(|&i| Reservation {
                user_id: &batch[i].user_id,
                order_id: batch[i].order_id,
                quantity: batch[i].quantity,
            })
            .collect();
        match reserve_batch(conn, scripts, bucket.keys(), now, &retry).await {
            Ok(again) => {
                for (&i, outcome) in dry.iter().zip(again) {
                    outcomes[i] = Ok(outcome);
                }
                if last_round {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(campaign = %bucket.layout.campaign_id, bucket = home, error = %e, "reserve call after borrowing failed");
                let ids: Vec<u64> = dry.iter().map(|&i| batch[i].order_id).collect();
                let unsure = !matches!(&e, StockError::Redis(r) if r.is_connection_refusal());
                let answers = answers_from_records(
                    conn,
                    bucket.keys(),
                    now,
                    &ids,
                    &batch_users(batch, &dry),
                    unsure,
                )
                .await;
                for (&i, answer) in dry.iter().zip(answers) {
                    outcomes[i] = answer;
                }
                return;
            }
        }
    }
}

fn batch_users<'a>(batch: &'a [Pending], which: &[usize]) -> Vec<&'a str> {
    which.iter().map(|&i| batch[i].user_id.as_str()).collect()
}

/// What Redis holds for each order id of a failed call, as the answers to give: the call may
/// have committed (a reply lost to a timeout or a dropped connection), so a committed order is
/// answered as such rather than as "nothing recorded".
async fn answers_from_records(
    conn: &mut StockConnection,
    keys: &CampaignKeys,
    call_time: i64,
    ids: &[u64],
    users: &[&str],
    unsure: bool,
) -> Vec<Result<ReserveOutcome, ReserveError>> {
    let Ok(records) = flashgate_stock::lookup::records(conn, keys, ids).await else {
        let error = if unsure {
            ReserveError::OutcomeUnknown
        } else {
            ReserveError::Unavailable
        };
        return vec![Err(error); ids.len()];
    };
    ids.iter()
        .zip(users)
        .zip(records)
        .map(|((&order_id, &user), record)| match record {
            None => Err(ReserveError::Unavailable),
            Some(record) if record::owner(&record) != user => Ok(ReserveOutcome::Conflict),
            Some(record) => match record::decode(&keys.campaign_id, order_id, &record) {
                Ok(order) if order.created_at_ms == call_time => {
                    Ok(ReserveOutcome::Accepted(order))
                }
                Ok(order) => Ok(ReserveOutcome::Replayed(order)),
                Err(_) => Err(ReserveError::OutcomeUnknown),
            },
        })
        .collect()
}
