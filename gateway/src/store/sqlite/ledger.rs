//! The campaign ledger: which campaigns were put on sale, their stock totals, the retired
//! ones, and the payments a campaign keeps.

use flashgate_stock::PaymentRecord;
use rusqlite::{OptionalExtension, TransactionBehavior};

use super::SqliteStore;
use super::connections::lock;
use crate::store::row::payment_row;
use crate::store::{Retirement, StoreError};

pub(super) fn claim_campaign_opening(
    store: &SqliteStore,
    campaign_id: &str,
    stock_total: u64,
) -> Result<bool, StoreError> {
    let mut conn = lock(&store.writer, "writer")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let state: Option<String> = tx
        .query_row(
            "SELECT state FROM campaign_ledger WHERE campaign_id = ?1",
            [campaign_id],
            |r| r.get(0),
        )
        .optional()?;
    let mut orders = 0;
    for sql in &store.sql {
        let n: i64 = tx
            .prepare_cached(&sql.count_campaign)?
            .query_row([campaign_id], |r| r.get(0))?;
        orders += n;
    }
    let retired = tx
        .query_row(
            "SELECT 1 FROM campaign_retired WHERE campaign_id = ?1",
            [campaign_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if retired {
        return Ok(false);
    }
    let allowed = state.as_deref() != Some("open") && orders == 0;
    let total = allowed.then(|| i64::try_from(stock_total).unwrap_or(i64::MAX));
    tx.execute(
        "INSERT INTO campaign_ledger (campaign_id, state, stock_total, updated_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT(campaign_id) DO UPDATE SET \
         state = excluded.state, updated_at = excluded.updated_at, \
         stock_total = coalesce(excluded.stock_total, campaign_ledger.stock_total)",
        rusqlite::params![
            campaign_id,
            if allowed { "opening" } else { "open" },
            total,
            crate::clock::now_ms()
        ],
    )?;
    tx.commit()?;
    Ok(allowed)
}

pub(super) fn confirm_campaign_open(
    store: &SqliteStore,
    campaign_id: &str,
) -> Result<(), StoreError> {
    let conn = lock(&store.writer, "writer")?;
    conn.execute(
        "INSERT INTO campaign_ledger (campaign_id, state, updated_at) VALUES (?1, 'open', ?2) \
         ON CONFLICT(campaign_id) DO UPDATE SET state = 'open', updated_at = excluded.updated_at \
         WHERE campaign_ledger.state <> 'open'",
        rusqlite::params![campaign_id, crate::clock::now_ms()],
    )?;
    Ok(())
}

pub(super) fn record_campaign_stock_total(
    store: &SqliteStore,
    campaign_id: &str,
    stock_total: u64,
) -> Result<(), StoreError> {
    let conn = lock(&store.writer, "writer")?;
    conn.execute(
        "INSERT INTO campaign_ledger (campaign_id, state, stock_total, updated_at) \
         VALUES (?1, 'open', ?2, ?3) ON CONFLICT(campaign_id) DO UPDATE SET \
         stock_total = excluded.stock_total, updated_at = excluded.updated_at",
        rusqlite::params![
            campaign_id,
            i64::try_from(stock_total).unwrap_or(i64::MAX),
            crate::clock::now_ms()
        ],
    )?;
    Ok(())
}

pub(super) fn campaign_stock_total(
    store: &SqliteStore,
    campaign_id: &str,
) -> Result<Option<u64>, StoreError> {
    let conn = lock(&store.reader, "reader")?;
    let total: Option<Option<i64>> = conn
        .query_row(
            "SELECT stock_total FROM campaign_ledger WHERE campaign_id = ?1",
            [campaign_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(total.flatten().and_then(|n| u64::try_from(n).ok()))
}

pub(super) fn retire_campaign(
    store: &SqliteStore,
    campaign_id: &str,
    retired: &Retirement,
) -> Result<(), StoreError> {
    let conn = lock(&store.writer, "writer")?;
    conn.execute(
        "INSERT INTO campaign_retired (campaign_id, stock_total, remaining, retired_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT(campaign_id) DO NOTHING",
        rusqlite::params![
            campaign_id,
            i64::try_from(retired.stock_total).unwrap_or(i64::MAX),
            retired.remaining,
            retired.retired_at_ms
        ],
    )?;
    Ok(())
}

pub(super) fn campaign_retirement(
    store: &SqliteStore,
    campaign_id: &str,
) -> Result<Option<Retirement>, StoreError> {
    let conn = lock(&store.reader, "reader")?;
    let row: Option<(i64, i64, i64)> = conn
        .query_row(
            "SELECT stock_total, remaining, retired_at FROM campaign_retired \
             WHERE campaign_id = ?1",
            [campaign_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(
        row.map(|(stock_total, remaining, retired_at_ms)| Retirement {
            stock_total: u64::try_from(stock_total).unwrap_or(0),
            remaining,
            retired_at_ms,
        }),
    )
}

pub(super) fn record_payments(
    store: &SqliteStore,
    campaign_id: &str,
    payments: &[PaymentRecord],
) -> Result<(), StoreError> {
    let mut conn = lock(&store.writer, "writer")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO payments (campaign_id, payment_id, order_id, amount_cents, outcome) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(campaign_id, payment_id) DO NOTHING",
        )?;
        for p in payments {
            stmt.execute(rusqlite::params![
                campaign_id,
                p.payment_id,
                i64::try_from(p.order_id).unwrap_or(i64::MAX),
                p.amount_cents,
                p.outcome.as_str()
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn payment(
    store: &SqliteStore,
    campaign_id: &str,
    payment_id: &str,
) -> Result<Option<PaymentRecord>, StoreError> {
    let conn = lock(&store.reader, "reader")?;
    let row: Option<(i64, i64, String)> = conn
        .query_row(
            "SELECT order_id, amount_cents, outcome FROM payments \
             WHERE campaign_id = ?1 AND payment_id = ?2",
            [campaign_id, payment_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    row.map(|(order_id, amount_cents, outcome)| {
        payment_row(payment_id, order_id, amount_cents, &outcome)
    })
    .transpose()
}
