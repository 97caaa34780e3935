//! The PostgreSQL store's cold archive (ARCHITECTURE.md §9): the schema `flashgate_archive`, in
//! the hot tables' database or in another one, with a table per hot table (`orders_XX`, the same
//! columns) where the archive pass puts the orders of retired campaigns.
//!
//! Each archive table is partitioned by UTC month of `created_at` (`orders_XX_YYYYMM`): old
//! months can be detached, dumped or dropped whole, with no vacuum of the rest, and a month is
//! created the first time the pass copies an order of it. The primary key is
//! `(order_id, created_at)` because a partitioned table's keys must hold its partition key.
//!
//! The store (`../pass.rs`) finds what a step of the pass moves and deletes it; [`Archive`]
//! copies it and answers what reads and late payments ask of the archive.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Mutex, PoisonError};

use flashgate_stock::Order;
use postgres::types::ToSql;

use super::columns::{Columns, read};
use super::pool::Pool;
use crate::store::StoreError;
use crate::store::shards::TABLES;
use month::Month;
use queries::Query;

mod month;
mod queries;
mod schema;
#[cfg(test)]
mod tests;

/// Where the archive lives in its database.
const SCHEMA: &str = "flashgate_archive";

/// Advisory lock keys: gateways starting together migrate one at a time, and two passes never
/// race to create one partition. Distinct from the hot schema's, which may share the database.
const MIGRATE_LOCK: i64 = 7_163_504_022;
const PARTITION_LOCK: i64 = 7_163_504_023;

/// Connections to the archive open at once, per gateway: user pages read it on every call,
/// the rest rarely (a miss, a late payment, one step of the pass at a time).
const CONNECTIONS: usize = 4;

/// The archive of a [`super::PostgresStore`]: its own connections, so reads and a pass step
/// in the archive never wait for the hot pool (nor hold one of its connections longer).
#[derive(Debug)]
pub(super) struct Archive {
    pool: Pool,
    shards: usize,
    /// Partitions known to exist, by shard and month: a step creates one only the first time
    /// this process meets its month (another gateway may have created it since).
    partitions: Mutex<HashSet<(usize, Month)>>,
}

impl Archive {
    /// Connects with `config`, and creates or checks the archive's schema for `2^shard_bits`
    /// tables.
    ///
    /// # Errors
    ///
    /// [`StoreError::Misconfigured`] if the archive holds other shard bits or a newer schema;
    /// [`StoreError::Unavailable`] if its database cannot be reached.
    pub(super) fn open(config: postgres::Config, shard_bits: u8) -> Result<Self, StoreError> {
        let tables = &TABLES[..1 << shard_bits];
        let pool = Pool::new::<Query>(config, tables, CONNECTIONS, "archive");
        pool.with(|pooled| schema::migrate(&mut pooled.client, shard_bits, tables))?;
        Ok(Self {
            pool,
            shards: tables.len(),
            partitions: Mutex::new(HashSet::new()),
        })
    }

    /// Where the archive is, for the store's `Debug` (hosts and database, no password).
    pub(super) fn config(&self) -> &postgres::Config {
        self.pool.config()
    }

    /// Runs `query` of `shard`'s table with `params`, returning its rows.
    fn query(
        &self,
        shard: usize,
        query: Query,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, StoreError> {
        self.pool.with(|pooled| {
            let statement = pooled.statement(&self.pool, shard, query)?;
            Ok(pooled.client.query(&statement, params)?)
        })
    }

    /// Copies hot rows of `shard` (read as [`COLUMNS`](crate::store::shards::COLUMNS)) into the archive, committed when this
    /// returns; returns their ids. Their values are copied as stored, undecoded, so a row that
    /// does not decode into an order is archived like any other rather than stopping the pass.
    pub(super) fn copy(
        &self,
        shard: usize,
        rows: &[postgres::Row],
    ) -> Result<Vec<i64>, StoreError> {
        let mut columns = Columns::default();
        for row in rows {
            columns.push_stored(row)?;
        }
        let months: BTreeSet<Month> = columns.created_at.iter().map(|&ms| Month::of(ms)).collect();
        self.create_partitions(shard, &months)?;
        let copied = self.pool.with(|pooled| {
            let statement = pooled.statement(&self.pool, shard, Query::Copy)?;
            // One statement outside a transaction block: committed as it returns.
            let held = pooled.client.query(&statement, &columns.params())?;
            held.iter()
                .map(|row| row.try_get::<_, i64>(0).map_err(StoreError::from))
                .collect::<Result<Vec<i64>, StoreError>>()
        });
        if copied.is_err() {
            // Perhaps an operator detached a month meanwhile: check them again next time.
            let mut known = self
                .partitions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for month in &months {
                known.remove(&(shard, *month));
            }
        }
        copied
    }

    /// Creates the partitions of `months` in `shard`'s table that this process has not seen
    /// yet, each in its own short transaction so the parent's lock is not held across a copy.
    fn create_partitions(&self, shard: usize, months: &BTreeSet<Month>) -> Result<(), StoreError> {
        let missing: Vec<Month> = {
            let known = self
                .partitions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            months
                .iter()
                .filter(|m| !known.contains(&(shard, **m)))
                .copied()
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let table = TABLES[shard];
        self.pool.with(|pooled| {
            for month in &missing {
                let mut tx = pooled.client.transaction()?;
                // `IF NOT EXISTS` alone still races: two creators may both find it missing.
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])?;
                tx.batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {SCHEMA}.\"{table}_{suffix}\" \
                     PARTITION OF {SCHEMA}.{table} FOR VALUES FROM ({from}) TO ({to})",
                    suffix = month.suffix(),
                    from = month
                        .start_ms()
                        .map_or("MINVALUE".into(), |ms| ms.to_string()),
                    to = month
                        .next()
                        .start_ms()
                        .map_or("MAXVALUE".into(), |ms| ms.to_string()),
                ))?;
                tx.commit()?;
            }
            Ok(())
        })?;
        let mut known = self
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        known.extend(missing.into_iter().map(|m| (shard, m)));
        Ok(())
    }

    /// The archived order `order_id` of `shard`, at its highest version.
    pub(super) fn get(&self, shard: usize, order_id: i64) -> Result<Option<Order>, StoreError> {
        self.query(shard, Query::Get, &[&order_id])?
            .first()
            .map(read)
            .transpose()
    }

    /// Up to `limit` archived orders of `user_id` in `shard` with ids below `before`, newest
    /// first.
    pub(super) fn orders_of_user(
        &self,
        shard: usize,
        user_id: &str,
        before: i64,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError> {
        self.query(shard, Query::ByUser, &[&user_id, &before, &limit])?
            .iter()
            .map(read)
            .collect()
    }

    /// Every archived row of `campaign_id`, in no particular order.
    pub(super) fn orders_of_campaign(&self, campaign_id: &str) -> Result<Vec<Order>, StoreError> {
        let mut orders = Vec::new();
        for shard in 0..self.shards {
            for row in self.query(shard, Query::ByCampaign, &[&campaign_id])? {
                orders.push(read(&row)?);
            }
        }
        Ok(orders)
    }

    /// The hot table's compare-and-set on the archive: `params` as the hot `Update` binds them.
    pub(super) fn update_if_newer(
        &self,
        shard: usize,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<bool, StoreError> {
        self.pool.with(|pooled| {
            let statement = pooled.statement(&self.pool, shard, Query::Update)?;
            Ok(pooled.client.execute(&statement, params)? > 0)
        })
    }

    /// Rows in all archive tables.
    pub(super) fn row_count(&self) -> Result<u64, StoreError> {
        let mut total = 0u64;
        for shard in 0..self.shards {
            let rows = self.query(shard, Query::Count, &[])?;
            let n: i64 = match rows.first() {
                Some(row) => row.try_get(0)?,
                None => 0,
            };
            total += u64::try_from(n).unwrap_or(0);
        }
        Ok(total)
    }
}
