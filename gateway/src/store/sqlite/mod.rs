//! [`SqliteStore`]: the embedded order store, one SQLite file split into `2^n` shard tables.
//!
//! The archive is a second file, attached to both connections as schema `archive`: a read
//! falls through to it in one statement.
//!
//! # Layout
//!
//! - `mod.rs`: [`SqliteStore`]: opening it, and its [`OrderStore`] methods, each handed to
//!   the file of its concern:
//!   - `writes.rs`: batches of orders and one order's compare-and-set;
//!   - `lookups.rs`: orders by id, campaign or user, and stored versions;
//!   - `expiry.rs`: unpaid orders past their deadline;
//!   - `ledger.rs`: the campaign ledger, retired campaigns and their payments;
//!   - `pass.rs`: an archive pass step, and row counts.
//! - `queries.rs`: the statements of one shard table and its archive copy.
//! - `user_index.rs`: the hot tables' user index, merged in bulk from a tail the inserts
//!   append to.
//! - `schema.rs`: the migrations of the store file and its archive.
//! - `connections.rs`: connection settings, the archive file attached, locks, driver errors.

use std::path::Path;
use std::sync::Mutex;

use flashgate_stock::{Order, PaymentRecord};
use rusqlite::{Connection, OpenFlags};

use super::shards::{MAX_SHARD_BITS, TABLES, shard_of};
use super::{ArchiveStep, OrderStore, Retirement, RowCounts, StoreError, Written};
use crate::config::default_archive_path;
use connections::{attach, configure, lock, same_file};
use queries::ShardSql;

mod connections;
mod expiry;
mod ledger;
mod lookups;
mod pass;
mod queries;
mod schema;
mod user_index;
#[cfg(test)]
mod user_index_tests;
mod writes;

/// Orders in SQLite: WAL mode, one shard table per value of the order id's low `shard_bits`.
///
/// Two connections, each behind its own mutex. SQLite admits a single writer anyway, so one
/// writer connection costs nothing and lets batches reuse its cached statements. Reads get their
/// own connection because in WAL mode a reader does not wait for the writer: a `GET /orders/{id}`
/// never queues behind a 512-order commit.
#[derive(Debug)]
pub struct SqliteStore {
    /// Lookups and pings; read-only, so it can never take the write lock. Declared before the
    /// writer so it closes first and the writer, closing last, checkpoints the WAL.
    reader: Mutex<Connection>,
    /// Inserts and updates; held for one whole batch transaction.
    writer: Mutex<Connection>,
    /// `order_id & mask` picks the table; fixed for the life of the file.
    shard_bits: u8,
    /// SQL text per shard table, built once so the hot path only looks statements up.
    sql: Vec<ShardSql>,
    /// When the user-index tails are next merged; locked only under the writer's lock.
    merges: Mutex<user_index::Cadence>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, its archive beside it
    /// ([`crate::config::default_archive_path`]), and applies pending migrations.
    ///
    /// # Errors
    ///
    /// As for [`SqliteStore::open_with_archive`].
    pub fn open(path: &Path, shard_bits: u8) -> Result<Self, StoreError> {
        Self::open_with_archive(path, &default_archive_path(path), shard_bits)
    }

    /// Opens (creating if needed) the store at `path` with its archive at `archive` (attached
    /// to both connections, so a read falls through to it in one statement), and applies
    /// pending migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError::Misconfigured`] if `shard_bits` exceeds [`MAX_SHARD_BITS`], differs from the
    /// value the file was created with, or the file has a newer schema; [`StoreError::Io`] if the
    /// parent directory cannot be created; other errors if SQLite cannot open the file.
    pub fn open_with_archive(
        path: &Path,
        archive: &Path,
        shard_bits: u8,
    ) -> Result<Self, StoreError> {
        if shard_bits > MAX_SHARD_BITS {
            return Err(StoreError::Misconfigured(format!(
                "shard_bits {shard_bits} is above the maximum {MAX_SHARD_BITS}"
            )));
        }
        for file in [path, archive] {
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
        }
        // One file as both would make every hot row look archived, and the pass delete it.
        if same_file(path, archive) {
            return Err(StoreError::Misconfigured(format!(
                "archive.path {} is the store file itself",
                archive.display()
            )));
        }
        let tables = &TABLES[..1 << shard_bits];

        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        // FULL: a commit is on disk before the workers ack its orders out of the Redis journal,
        // so not even a power cut loses an acked order. One fsync per batch, not per order.
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        attach(&writer, archive)?;
        // Per file: the archive's commits are as durable as the hot file's, since a hot row is
        // deleted once its copy is committed.
        writer.pragma_update(Some("archive"), "journal_mode", "WAL")?;
        writer.pragma_update(Some("archive"), "synchronous", "FULL")?;
        schema::migrate(&mut writer, shard_bits, tables)?;

        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&reader)?;
        // Read-only like the main file: an attached file inherits the connection's flags.
        attach(&reader, archive)?;

        tracing::info!(path = %path.display(), archive = %archive.display(), shard_bits, "order store open");
        Ok(Self {
            reader: Mutex::new(reader),
            writer: Mutex::new(writer),
            shard_bits,
            sql: tables.iter().map(|t| ShardSql::new(t)).collect(),
            merges: Mutex::default(),
        })
    }

    fn shard_of(&self, order_id: u64) -> usize {
        shard_of(order_id, self.shard_bits)
    }

    /// Merges every table's user-index tail on `conn` (the writer's); returns the entries.
    fn merge_user_tails(&self, conn: &mut Connection) -> Result<usize, StoreError> {
        user_index::merge(conn, self.sql.iter().map(|s| &s.user_merge))
    }
}

impl OrderStore for SqliteStore {
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

    fn orders_of_user(
        &self,
        user_id: &str,
        gene: u8,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        lookups::orders_of_user(self, user_id, gene, before, limit)
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
        self.sql.len()
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
        if self.writer.is_poisoned() {
            return Err(StoreError::Unavailable(
                "writer connection lock poisoned".to_owned(),
            ));
        }
        let conn = lock(&self.reader, "reader")?;
        conn.query_row("SELECT count(*) FROM store_meta", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(())
    }
}
