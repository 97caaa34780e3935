//! The order store: where every committed order ends up for good (ARCHITECTURE.md §3).
//!
//! Redis holds the truth during a sale; the store is what survives it. Persistence workers
//! (plain std threads) write orders in batches, the reconciler replays what they may have missed,
//! and the read endpoints look orders up. All of them talk to [`OrderStore`], so PostgreSQL can
//! replace SQLite without touching a caller: nothing in the trait or in [`StoreError`] names a
//! backend's type. [`open`] picks the backend from the config.
//!
//! # Layout
//!
//! - `mod.rs`: the [`OrderStore`] trait every backend implements.
//! - `error.rs`: [`StoreError`], the one error type callers match on.
//! - `sqlite/`: [`SqliteStore`], the embedded default — one file, `2^n` shard tables, and its
//!   archive in an attached file; its `mod.rs` lists its files.
//! - `postgres/`: [`PostgresStore`], for production and several gateways — the same tables in
//!   one PostgreSQL database, and its archive (schema `flashgate_archive`, monthly partitions);
//!   its `mod.rs` lists its files.
//! - `shards.rs`: which table an order lives in, the same for both.
//! - `row.rs`: checked conversions between an [`Order`] and a row.
//! - `collision.rs`: [`Written`] and [`Collision`]: two orders under one id are reported, never
//!   taken for a replay.
//! - `archive.rs`: which orders the archive pass moves out of the hot tables, and what a step
//!   of it reports; both backends keep their archive beside the hot tables (SQLite: an
//!   attached file; PostgreSQL: a schema, in the same or another database).
//! - `tests/`: unit tests of the store on both backends, one file per subject.
//! - `ledger_tests.rs`: the campaign ledger on both backends.

mod archive;
#[cfg(test)]
mod archive_tests;
mod collision;
mod error;
#[cfg(test)]
mod ledger_tests;
mod postgres;
mod row;
mod shards;
mod sqlite;
#[cfg(test)]
mod test_backends;
#[cfg(test)]
mod tests;

pub use archive::{ArchiveStep, RowCounts};
pub use collision::{Collision, Written};
pub use error::StoreError;
pub use postgres::PostgresStore;
pub use shards::MAX_SHARD_BITS;
pub use sqlite::SqliteStore;

use std::sync::Arc;

use flashgate_stock::{Order, PaymentRecord};

use crate::config::{DatabaseUrl, StoreConfig};

/// Opens the store the config names, with its archive: PostgreSQL when `store.url` is set
/// (the archive in `archive.url`, or a schema of the same database), else SQLite at
/// `store.path` (the archive attached from `archive.path`).
///
/// # Errors
///
/// The backend's: unreachable database, wrong shard bits, a newer schema.
pub fn open(config: &StoreConfig) -> Result<Arc<dyn OrderStore>, StoreError> {
    Ok(match &config.url {
        Some(url) => Arc::new(PostgresStore::open_with_archive(
            url.expose(),
            config.archive_url.as_ref().map(DatabaseUrl::expose),
            config.shard_bits,
        )?),
        None => Arc::new(SqliteStore::open_with_archive(
            &config.path,
            &config.archive_path,
            config.shard_bits,
        )?),
    })
}

/// Durable storage of orders, shared by persistence workers, the reconciler and read endpoints.
///
/// Every method blocks: call it from a std thread or `tokio::task::spawn_blocking`, never
/// directly on an async worker.
pub trait OrderStore: Send + Sync + 'static {
    /// Writes each order: a new order_id is inserted; a stored one is overwritten only by a
    /// higher version (the optimistic lock: an older state never replaces a newer one, whatever
    /// order the workers and the reconciler deliver them in, and replays never create a second
    /// row). Returns how many rows were inserted or advanced, and the orders refused because
    /// their id belongs to another order (other campaign, user, sku, quantity, price or creation
    /// time): a [`Collision`] is neither written nor a replay, and must not be acked as stored.
    ///
    /// A batch is all-or-nothing: on error no order of it is stored, so the caller can retry the
    /// whole batch. Collisions are not errors: the rest of the batch is written.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidOrder`] if an order cannot be represented (nothing is written);
    /// otherwise whatever the backend reports.
    fn write_batch(&self, orders: &[Order]) -> Result<Written, StoreError>;

    /// Compare-and-set update for later lifecycle work: writes `order` only where the stored
    /// version is lower than `order.version` and the stored row is the same order (not another
    /// one under its id, see [`Collision`]); returns whether a row changed.
    ///
    /// An archived order is updated in the archive (a late payment of a retired campaign's
    /// order). A missing order is not an error: it returns `false` like a stale version does,
    /// so insert first if the row may not exist yet.
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::write_batch`].
    fn update_if_newer(&self, order: &Order) -> Result<bool, StoreError>;

    /// The order with this id, if stored, in the hot tables or the archive.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if the stored row does not decode into an [`Order`].
    fn get(&self, order_id: u64) -> Result<Option<Order>, StoreError>;

    /// All orders of one campaign, hot and archived, one state each (tests, bench
    /// verification, repair); in no particular order.
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::get`].
    fn orders_of_campaign(&self, campaign_id: &str) -> Result<Vec<Order>, StoreError>;

    /// How many orders of one campaign the hot tables hold (a campaign with archived orders is
    /// retired, and nothing compares its count with Redis any more). A campaign that Redis does not know but the
    /// store has orders for means Redis lost its data: loading it afresh would sell its stock
    /// a second time.
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::get`].
    fn count_of_campaign(&self, campaign_id: &str) -> Result<u64, StoreError>;

    /// The campaign ledger: records that `campaign_id` is being put on sale and says whether it
    /// may be. Yes only for a campaign never put on sale before, or one whose earlier opening
    /// never completed (Redis never confirmed it) and that has no order here. A campaign that
    /// has orders but no ledger entry (sold before the ledger existed) is entered as open.
    ///
    /// This is what keeps a campaign that Redis lost from being given its stock again: the
    /// only way to create stock in Redis takes the permit this answer gives
    /// ([`flashgate_stock::OpenPermit`]).
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::write_batch`].
    /// `stock_total` is recorded with a granted opening: the total a rebuild starts from.
    fn claim_campaign_opening(
        &self,
        campaign_id: &str,
        stock_total: u64,
    ) -> Result<bool, StoreError>;

    /// Records in the ledger that `campaign_id` is on sale in Redis (its opening completed, or a
    /// gateway found it live there), so that losing it from Redis can never reopen it.
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::write_batch`].
    fn confirm_campaign_open(&self, campaign_id: &str) -> Result<(), StoreError>;

    /// Records a campaign's stock total in the ledger when an operator changes it: Redis may
    /// lose the change, and a rebuild must start from the total in force, not the config's.
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::write_batch`].
    fn record_campaign_stock_total(
        &self,
        campaign_id: &str,
        stock_total: u64,
    ) -> Result<(), StoreError>;

    /// The stock total the ledger holds for a campaign (set at its opening or by an operator).
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::get`].
    fn campaign_stock_total(&self, campaign_id: &str) -> Result<Option<u64>, StoreError>;

    /// Up to `limit` orders the store still holds as unpaid whose deadline is before
    /// `before_ms`: what the store-side sweep double-checks against Redis.
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::get`].
    fn overdue_unpaid(&self, before_ms: i64, limit: usize) -> Result<Vec<Order>, StoreError>;

    /// Up to `limit` orders the store holds as unpaid with a deadline before `before_ms`, in
    /// (deadline, id) order, starting after the (deadline, id) `after` (from the first when
    /// `None`). The store-side sweep pages with it, so orders it cannot settle never hide the
    /// ones behind them.
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::get`].
    fn overdue_unpaid_page(
        &self,
        before_ms: i64,
        after: Option<(i64, u64)>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError>;

    /// Marks `order` expired at `now_ms`, one version up, if the store still holds it unpaid at
    /// `order.version` (compare-and-set); returns whether it did. For orders Redis no longer
    /// knows, so nothing else will ever settle them.
    ///
    /// # Errors
    ///
    /// Whatever the backend reports.
    fn expire_unpaid(&self, order: &Order, now_ms: i64) -> Result<bool, StoreError>;

    /// Up to `limit` orders of `user_id` with ids below `before`, newest first, hot and
    /// archived alike: a cursor runs on into the archive. `gene` is the user's shard gene: all
    /// of a user's orders are in its one table (and its one archive table).
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::get`].
    fn orders_of_user(
        &self,
        user_id: &str,
        gene: u8,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError>;

    /// Whether each of `order_ids` is stored, and at which version (`None`: not stored), in
    /// the order given: what retirement checks a page of Redis' orders against.
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::get`].
    fn stored_versions(&self, order_ids: &[u64]) -> Result<Vec<Option<u32>>, StoreError>;

    /// Records in the ledger that `campaign_id` has left Redis for good, with the counts its
    /// view shows from then on. A first record stands: recording again changes nothing. From
    /// then on [`OrderStore::claim_campaign_opening`] refuses it, whatever else the ledger
    /// says, so no start, reload or rebuild gives it stock again.
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::write_batch`].
    fn retire_campaign(&self, campaign_id: &str, retired: &Retirement) -> Result<(), StoreError>;

    /// The retirement of `campaign_id`, if it was retired.
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::get`].
    fn campaign_retirement(&self, campaign_id: &str) -> Result<Option<Retirement>, StoreError>;

    /// Keeps the payments of a campaign (copied out of Redis before its retirement, or made
    /// after it); a payment id already recorded for the campaign keeps its first record.
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::write_batch`].
    fn record_payments(
        &self,
        campaign_id: &str,
        payments: &[PaymentRecord],
    ) -> Result<(), StoreError>;

    /// The payment recorded under `payment_id` for a campaign, if any.
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::get`].
    fn payment(
        &self,
        campaign_id: &str,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError>;

    /// Tables the orders are spread over (the archive has as many): the archive pass walks
    /// each with [`OrderStore::archive_step`].
    fn shards(&self) -> usize;

    /// One step of the archive pass over hot table `shard`: of the up to `limit` rows with ids
    /// after `after` (from the first when `None`), those of a retired campaign, in a final
    /// state and last updated before `before_ms` are copied into the archive, then deleted
    /// from the hot table where the archive holds them at their version (a crash in between
    /// leaves a duplicate that reads resolve and the next step removes, never a loss).
    ///
    /// Small steps keep the writer lock short: a flash sale's writes wait at most one step.
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::write_batch`]; a failed step may have copied without deleting.
    fn archive_step(
        &self,
        shard: usize,
        after: Option<u64>,
        before_ms: i64,
        limit: usize,
    ) -> Result<ArchiveStep, StoreError>;

    /// How many rows the hot tables and the archive hold (an order mid-move counts twice).
    ///
    /// # Errors
    ///
    /// As for [`OrderStore::get`].
    fn row_counts(&self) -> Result<RowCounts, StoreError>;

    /// Cheap liveness check for health endpoints.
    ///
    /// # Errors
    ///
    /// Whatever keeps the store from answering a trivial query.
    fn ping(&self) -> Result<(), StoreError>;
}

/// A campaign retired from Redis, as the ledger keeps it: what its view shows from then on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retirement {
    /// The stock total in force when it was retired.
    pub stock_total: u64,
    /// Units unsold when it was retired.
    pub remaining: i64,
    pub retired_at_ms: i64,
}

/// The store is the sales ledger: it outlives Redis' data, and it holds the orders.
impl flashgate_stock::SalesLedger for dyn OrderStore {
    type Error = StoreError;

    fn claim_opening(&self, campaign_id: &str, stock_total: u64) -> Result<bool, StoreError> {
        self.claim_campaign_opening(campaign_id, stock_total)
    }
}

impl std::fmt::Debug for dyn OrderStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrderStore")
    }
}
