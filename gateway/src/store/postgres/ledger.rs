//! The campaign ledger (which campaigns were put on sale), retired campaigns and the
//! payments they keep: plain tables beside the shard tables.

use flashgate_stock::PaymentRecord;

use super::PostgresStore;
use super::queries::Query;
use crate::store::row::payment_row;
use crate::store::{OrderStore, Retirement, StoreError};

pub(super) fn claim_campaign_opening(
    store: &PostgresStore,
    campaign_id: &str,
    stock_total: u64,
) -> Result<bool, StoreError> {
    store.with(|pooled| {
        let mut counts = Vec::with_capacity(store.shards());
        for shard in 0..store.shards() {
            counts.push(pooled.statement(&store.pool, shard, Query::CountCampaign)?);
        }
        let mut tx = pooled.client.transaction()?;
        // Row lock (or the insert's conflict) serializes gateways claiming one campaign.
        tx.execute(
            "INSERT INTO campaign_ledger (campaign_id, state, updated_at) \
             VALUES ($1, 'opening', $2) ON CONFLICT (campaign_id) DO NOTHING",
            &[&campaign_id, &crate::clock::now_ms()],
        )?;
        let state: String = tx
            .query_one(
                "SELECT state FROM campaign_ledger WHERE campaign_id = $1 FOR UPDATE",
                &[&campaign_id],
            )?
            .try_get(0)?;
        let mut orders = 0i64;
        for statement in &counts {
            let n: i64 = tx.query_one(statement, &[&campaign_id])?.try_get(0)?;
            orders += n;
        }
        let retired = tx
            .query_opt(
                "SELECT 1 FROM campaign_retired WHERE campaign_id = $1",
                &[&campaign_id],
            )?
            .is_some();
        if retired {
            tx.rollback()?;
            return Ok(false);
        }
        let allowed = state != "open" && orders == 0;
        if allowed {
            tx.execute(
                "UPDATE campaign_ledger SET stock_total = $2 WHERE campaign_id = $1",
                &[
                    &campaign_id,
                    &i64::try_from(stock_total).unwrap_or(i64::MAX),
                ],
            )?;
        } else {
            tx.execute(
                "UPDATE campaign_ledger SET state = 'open', updated_at = $2 \
                 WHERE campaign_id = $1",
                &[&campaign_id, &crate::clock::now_ms()],
            )?;
        }
        tx.commit()?;
        Ok(allowed)
    })
}

pub(super) fn confirm_campaign_open(
    store: &PostgresStore,
    campaign_id: &str,
) -> Result<(), StoreError> {
    store.with(|pooled| {
        pooled.client.execute(
            "INSERT INTO campaign_ledger (campaign_id, state, updated_at) \
             VALUES ($1, 'open', $2) ON CONFLICT (campaign_id) DO UPDATE \
             SET state = 'open', updated_at = excluded.updated_at \
             WHERE campaign_ledger.state <> 'open'",
            &[&campaign_id, &crate::clock::now_ms()],
        )?;
        Ok(())
    })
}

pub(super) fn record_campaign_stock_total(
    store: &PostgresStore,
    campaign_id: &str,
    stock_total: u64,
) -> Result<(), StoreError> {
    store.with(|pooled| {
        pooled.client.execute(
            "INSERT INTO campaign_ledger (campaign_id, state, stock_total, updated_at) \
             VALUES ($1, 'open', $2, $3) ON CONFLICT (campaign_id) DO UPDATE \
             SET stock_total = excluded.stock_total, updated_at = excluded.updated_at",
            &[
                &campaign_id,
                &i64::try_from(stock_total).unwrap_or(i64::MAX),
                &crate::clock::now_ms(),
            ],
        )?;
        Ok(())
    })
}

pub(super) fn campaign_stock_total(
    store: &PostgresStore,
    campaign_id: &str,
) -> Result<Option<u64>, StoreError> {
    store.with(|pooled| {
        let row = pooled.client.query_opt(
            "SELECT stock_total FROM campaign_ledger WHERE campaign_id = $1",
            &[&campaign_id],
        )?;
        let total: Option<i64> = match row {
            Some(row) => row.try_get(0)?,
            None => None,
        };
        Ok(total.and_then(|n| u64::try_from(n).ok()))
    })
}

pub(super) fn retire_campaign(
    store: &PostgresStore,
    campaign_id: &str,
    retired: &Retirement,
) -> Result<(), StoreError> {
    store.with(|pooled| {
        pooled.client.execute(
            "INSERT INTO campaign_retired (campaign_id, stock_total, remaining, retired_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (campaign_id) DO NOTHING",
            &[
                &campaign_id,
                &i64::try_from(retired.stock_total).unwrap_or(i64::MAX),
                &retired.remaining,
                &retired.retired_at_ms,
            ],
        )?;
        Ok(())
    })
}

pub(super) fn campaign_retirement(
    store: &PostgresStore,
    campaign_id: &str,
) -> Result<Option<Retirement>, StoreError> {
    store.with(|pooled| {
        let Some(row) = pooled.client.query_opt(
            "SELECT stock_total, remaining, retired_at FROM campaign_retired \
             WHERE campaign_id = $1",
            &[&campaign_id],
        )?
        else {
            return Ok(None);
        };
        let stock_total: i64 = row.try_get(0)?;
        Ok(Some(Retirement {
            stock_total: u64::try_from(stock_total).unwrap_or(0),
            remaining: row.try_get(1)?,
            retired_at_ms: row.try_get(2)?,
        }))
    })
}

pub(super) fn record_payments(
    store: &PostgresStore,
    campaign_id: &str,
    payments: &[PaymentRecord],
) -> Result<(), StoreError> {
    if payments.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = payments.iter().map(|p| p.payment_id.as_str()).collect();
    let orders: Vec<i64> = payments
        .iter()
        .map(|p| i64::try_from(p.order_id).unwrap_or(i64::MAX))
        .collect();
    let amounts: Vec<i64> = payments.iter().map(|p| p.amount_cents).collect();
    let outcomes: Vec<&str> = payments.iter().map(|p| p.outcome.as_str()).collect();
    store.with(|pooled| {
        pooled.client.execute(
            "INSERT INTO payments (campaign_id, payment_id, order_id, amount_cents, outcome) \
             SELECT $1, * FROM UNNEST($2::text[], $3::int8[], $4::int8[], $5::text[]) \
             ON CONFLICT (campaign_id, payment_id) DO NOTHING",
            &[&campaign_id, &ids, &orders, &amounts, &outcomes],
        )?;
        Ok(())
    })
}

pub(super) fn payment(
    store: &PostgresStore,
    campaign_id: &str,
    payment_id: &str,
) -> Result<Option<PaymentRecord>, StoreError> {
    store.with(|pooled| {
        let Some(row) = pooled.client.query_opt(
            "SELECT order_id, amount_cents, outcome FROM payments \
             WHERE campaign_id = $1 AND payment_id = $2",
            &[&campaign_id, &payment_id],
        )?
        else {
            return Ok(None);
        };
        let outcome: String = row.try_get(2)?;
        payment_row(payment_id, row.try_get(0)?, row.try_get(1)?, &outcome).map(Some)
    })
}
