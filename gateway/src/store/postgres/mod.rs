//! [`PostgresStore`]: the production order store. It has the same `2^n` shard tables as SQLite,
//! in one PostgreSQL database that several gateways share.
//!
//! Batches are written with one `INSERT … SELECT FROM UNNEST(arrays)` per shard table touched,
//! all in one transaction: a round trip per table rather than per order. That is what makes
//! the store fast enough for a sale's peak. Conflicts on `order_id` update only to a higher
//! version of the same order, as in SQLite; the same statement reports the orders whose id a
//! different stored order holds (see `store/collision.rs`).
//!
//! The cold archive (`archive/`) lives in the schema `flashgate_archive`, of this database or
//! of another one; `pass.rs` finds what a step of the pass moves and deletes it once copied.
//!
//! # Layout
//!
//! - `mod.rs`: [`PostgresStore`]: opening it, and its [`OrderStore`] methods, each handed to
//!   the file of its concern:
//!   - `writes.rs`: batches of orders and one order's compare-and-set;
//!   - `lookups.rs`: orders by id, campaign or user, and stored versions;
//!   - `expiry.rs`: unpaid orders past their deadline;
//!   - `ledger.rs`: the campaign ledger, retired campaigns and their payments;
//!   - `pass.rs`: the hot side of an archive pass step, and row counts.
//! - `queries.rs`: the statements of the hot shard tables, by kind.
//! - `schema.rs`: the hot tables' migrations, and the check that a schema is current.
//! - `columns.rs`: an order row's columns: their types, decoding, arrays for `UNNEST`.
//! - `pool.rs`: connection pools and settings, the statement tables, driver errors.
//! - `archive/`: the archive (schema, statements, months and their partitions, tests).

use flashgate_stock::{Order, PaymentRecord};

use crate::store::shards::{MAX_SHARD_BITS, TABLES, shard_of};
use crate::store::{ArchiveStep, OrderStore, Retirement, RowCounts, StoreError, Written};
use archive::Archive;
use pool::{Pool, Pooled, connect_config};
use queries::Query;

mod archive;
mod columns;
mod expiry;
mod ledger;
mod lookups;
mod pass;
mod pool;
mod queries;
mod schema;
mod writes;

/// Connections open at once, per gateway: the persistence workers, the reconciler and the
/// read handlers share them.
const MAX_CONNECTIONS: usize = 16;

/// Orders in PostgreSQL, one table per value of the order id's low `shard_bits`, and their
/// archive (same layout, in the schema `flashgate_archive`).
///
/// Persistence workers, the reconciler and read handlers (on blocking threads) share a pool of
/// connections to the hot tables; the archive has a smaller pool of its own, so reading it
/// never waits for a hot connection (only a pass step holds one of each at once: it keeps its
/// rows locked while they are copied).
pub struct PostgresStore {
    pool: Pool,
    archive: Archive,
    shard_bits: u8,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URLs may carry a password: show where, not how.
        let (hot, cold) = (self.pool.config(), self.archive.config());
        f.debug_struct("PostgresStore")
            .field("hosts", &hot.get_hosts())
            .field("dbname", &hot.get_dbname())
            .field("archive_hosts", &cold.get_hosts())
            .field("archive_dbname", &cold.get_dbname())
            .field("shard_bits", &self.shard_bits)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and applies pending migrations, the
    /// archive's included (kept in the same database).
    /// Blocking, like every method: not on an async worker thread.
    ///
    /// # Errors
    ///
    /// [`StoreError::Misconfigured`] for a bad URL, `shard_bits` above [`MAX_SHARD_BITS`] or
    /// other than the database was created with, or a newer schema;
    /// [`StoreError::Unavailable`] if the database cannot be reached.
    pub fn open(url: &str, shard_bits: u8) -> Result<Self, StoreError> {
        Self::open_with_archive(url, None, shard_bits)
    }

    /// As [`PostgresStore::open`], with the archive in the database at `archive_url` (in the
    /// same schema `flashgate_archive`) when given: old orders can then live on cheaper
    /// storage, and scanning them never competes with a sale for the hot database.
    ///
    /// # Errors
    ///
    /// As for [`PostgresStore::open`], for either database.
    pub fn open_with_archive(
        url: &str,
        archive_url: Option<&str>,
        shard_bits: u8,
    ) -> Result<Self, StoreError> {
        if shard_bits > MAX_SHARD_BITS {
            return Err(StoreError::Misconfigured(format!(
                "shard_bits {shard_bits} is above the maximum {MAX_SHARD_BITS}"
            )));
        }
        let config = connect_config(url, "store.url")?;
        let archive_config = match archive_url {
            Some(archive_url) => connect_config(archive_url, "archive.url")?,
            None => config.clone(),
        };
        let tables = &TABLES[..1 << shard_bits];
        let pool = Pool::new::<Query>(config, tables, MAX_CONNECTIONS, "store");
        pool.with(|pooled| schema::migrate(&mut pooled.client, shard_bits, tables))?;
        let archive = Archive::open(archive_config, shard_bits)?;
        let store = Self {
            pool,
            archive,
            shard_bits,
        };
        tracing::info!(store = ?store, "order store open");
        Ok(store)
    }

    /// Runs `f` on a pooled connection to the hot tables.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Pooled) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.pool.with(f)
    }

    fn shard_of(&self, order_id: u64) -> usize {
        shard_of(order_id, self.shard_bits)
    }
}

impl OrderStore for PostgresStore {
    fn write_batch(&self, orders: &[Order]) -> Result<Written, StoreError> {
        writes::write_batch(self, orders)
    }

    fn update_if_newer(&self, order: &Order) -> Result<bool, StoreError> {
        writes::update_if_newer(self, order)
    }

    fn get(&self, order_id: u64) -> Result<Option<Order>, StoreError> {
        lookups::get(self, order_id)
    }

    fn orders_of_campaign(&self, campaign_id: &str) -> Result<Vec<Order>, StoreError> {
        lookups::orders_of_campaign(self, campaign_id)
    }

    fn count_of_campaign(&self, campaign_id: &str) -> Result<u64, StoreError> {
        lookups::count_of_campaign(self, campaign_id)
    }

    fn claim_campaign_opening(
        &self,
        campaign_id: &str,
        stock_total: u64,
    ) -> Result<bool, StoreError> {
        ledger::claim_campaign_opening(self, campaign_id, stock_total)
    }

    fn confirm_campaign_open(&self, campaign_id: &str) -> Result<(), StoreError> {
        ledger::confirm_campaign_open(self, campaign_id)
    }

    fn record_campaign_stock_total(
        &self,
        campaign_id: &str,
        stock_total: u64,
    ) -> Result<(), StoreError> {
        ledger::record_campaign_stock_total(self, campaign_id, stock_total)
    }

    fn campaign_stock_total(&self, campaign_id: &str) -> Result<Option<u64>, StoreError> {
        ledger::campaign_stock_total(self, campaign_id)
    }

    fn overdue_unpaid(&self, before_ms: i64, limit: usize) -> Result<Vec<Order>, StoreError> {
        expiry::overdue_unpaid(self, before_ms, limit)
    }

    fn overdue_unpaid_page(
        &self,
        before_ms: i64,
        after: Option<(i64, u64)>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        expiry::overdue_unpaid_page(self, before_ms, after, limit)
    }

    fn expire_unpaid(&self, order: &Order, now_ms: i64) -> Result<bool, StoreError> {
        expiry::expire_unpaid(self, order, now_ms)
    }

    fn orders_of_user(
        &self,
        user_id: &str,
        gene: u8,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        lookups::orders_of_user(self, user_id, gene, before, limit)
    }

    fn stored_versions(&self, order_ids: &[u64]) -> Result<Vec<Option<u32>>, StoreError> {
        lookups::stored_versions(self, order_ids)
    }

    fn retire_campaign(&self, campaign_id: &str, retired: &Retirement) -> Result<(), StoreError> {
        ledger::retire_campaign(self, campaign_id, retired)
    }

    fn campaign_retirement(&self, campaign_id: &str) -> Result<Option<Retirement>, StoreError> {
        ledger::campaign_retirement(self, campaign_id)
    }

    fn record_payments(
        &self,
        campaign_id: &str,
        payments: &[PaymentRecord],
    ) -> Result<(), StoreError> {
        ledger::record_payments(self, campaign_id, payments)
    }

    fn payment(
        &self,
        campaign_id: &str,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        ledger::payment(self, campaign_id, payment_id)
    }

    fn shards(&self) -> usize {
        1 << self.shard_bits
    }

    fn archive_step(
        &self,
        shard: usize,
        after: Option<u64>,
        before_ms: i64,
        limit: usize,
    ) -> Result<ArchiveStep, StoreError> {
        pass::archive_step(self, shard, after, before_ms, limit)
    }

    fn row_counts(&self) -> Result<RowCounts, StoreError> {
        pass::row_counts(self)
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with(|pooled| {
            pooled.client.simple_query("SELECT 1")?;
            Ok(())
        })
    }
}
