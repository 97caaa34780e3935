//! [`SqliteStore`]: the embedded order store, one SQLite file split into `2^n` shard tables.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use flashgate_stock::{Order, PaymentRecord};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use super::archive::{ArchiveStep, RowCounts, due_sql, newest_per_order, step_bounds, user_page};
use super::collision::{Collision, Written, same_order_sql};
use super::row::{RawOrder, Row, payment_row};
use super::shards::{
    COLUMNS, MAX_SHARD_BITS, TABLES, first_by_deadline, page_start, shard_bits_unrecorded, shard_of,
};
use super::{OrderStore, Retirement, StoreError};
use crate::config::default_archive_path;

/// Schema version recorded in `PRAGMA user_version`; bump it with each new migration.
const SCHEMA_VERSION: i64 = 4;

/// How long a statement waits on a lock held by another connection before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Statements cached per connection: fewer than thirty-two kinds per shard table, so this never
/// evicts.
const STATEMENT_CACHE: usize = 32 << MAX_SHARD_BITS;

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
}

/// The statements of one shard table.
#[derive(Debug)]
struct ShardSql {
    insert: String,
    /// Who holds an id the insert neither inserted nor advanced: a replay, or a collision.
    holder: String,
    update: String,
    get: String,
    by_campaign: String,
    count_campaign: String,
    version: String,
    by_user: String,
    overdue: String,
    overdue_page: String,
    expire_unpaid: String,
    /// The same update on the table's archive copy.
    update_archived: String,
    /// How far a step of the archive pass reaches: (rows, last id) of its window.
    window: String,
    /// Copies the window's due rows into the archive (upgrading an older copy).
    copy: String,
    /// Deletes the window's rows the archive holds at their version.
    delete_copied: String,
    count_hot: String,
    count_archived: String,
}

impl ShardSql {
    fn new(table: &str) -> Self {
        Self {
            insert: format!(
                "INSERT INTO {table} ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
                 ?11, ?12, ?13) ON CONFLICT(order_id) DO UPDATE SET status = excluded.status, \
                 version = excluded.version, paid_at = excluded.paid_at, \
                 updated_at = excluded.updated_at WHERE excluded.version > {table}.version \
                 AND {same}",
                same = same_order_sql(table, "excluded"),
            ),
            holder: format!(
                "SELECT campaign_id, user_id, sku, quantity, unit_price_cents, created_at \
                 FROM {table} WHERE order_id = ?1"
            ),
            update: update_sql(&format!("main.{table}")),
            // Hot and archived; a pass cut short may have left both, and the newer one wins.
            get: format!(
                "SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM main.{table} WHERE order_id = ?1 \
                 UNION ALL SELECT {COLUMNS} FROM archive.{table} WHERE order_id = ?1) \
                 ORDER BY version DESC LIMIT 1"
            ),
            by_campaign: format!(
                "SELECT {COLUMNS} FROM main.{table} WHERE campaign_id = ?1 \
                 UNION ALL SELECT {COLUMNS} FROM archive.{table} WHERE campaign_id = ?1"
            ),
            count_campaign: format!("SELECT count(*) FROM main.{table} WHERE campaign_id = ?1"),
            version: format!("SELECT version FROM main.{table} WHERE order_id = ?1"),
            overdue: format!(
                "SELECT {COLUMNS} FROM {table} WHERE status = 'pending_payment' \
                 AND pay_deadline < ?1 LIMIT ?2"
            ),
            overdue_page: format!(
                "SELECT {COLUMNS} FROM {table} WHERE status = 'pending_payment' \
                 AND pay_deadline < ?1 AND (pay_deadline, order_id) > (?2, ?3) \
                 ORDER BY pay_deadline, order_id LIMIT ?4"
            ),
            expire_unpaid: format!(
                "UPDATE {table} SET status = 'expired', version = version + 1, updated_at = ?3 \
                 WHERE order_id = ?1 AND version = ?2 AND status = 'pending_payment'"
            ),
            // Each side's first `?3` (twice a page: an order in both places counts once).
            by_user: format!(
                "SELECT * FROM (SELECT {COLUMNS} FROM main.{table} WHERE user_id = ?1 \
                 AND order_id < ?2 ORDER BY order_id DESC LIMIT ?3) UNION ALL \
                 SELECT * FROM (SELECT {COLUMNS} FROM archive.{table} WHERE user_id = ?1 \
                 AND order_id < ?2 ORDER BY order_id DESC LIMIT ?3)"
            ),
            // Only an order the hot table no longer holds: where it does, the hot row is the
            // newer (a pass cut short), and a stale update must not advance the old copy.
            update_archived: format!(
                "{} AND NOT EXISTS (SELECT 1 FROM main.{table} WHERE order_id = ?1)",
                update_sql(&format!("archive.{table}"))
            ),
            window: format!(
                "SELECT count(*), max(order_id) FROM (SELECT order_id FROM main.{table} \
                 WHERE order_id > ?1 ORDER BY order_id LIMIT ?2)"
            ),
            copy: format!(
                "INSERT INTO archive.{table} AS a ({COLUMNS}) SELECT {COLUMNS} FROM main.{table} \
                 WHERE order_id > ?1 AND order_id <= ?2 AND {due} \
                 ON CONFLICT(order_id) DO UPDATE SET status = excluded.status, \
                 version = excluded.version, paid_at = excluded.paid_at, \
                 updated_at = excluded.updated_at WHERE excluded.version > a.version AND {same}",
                due = due_sql("?3"),
                same = same_order_sql("a", "excluded"),
            ),
            // Only rows the archive holds as the same order, at their version or newer: another
            // order under the id (see `collision.rs`) stays where it is.
            delete_copied: format!(
                "DELETE FROM main.{table} AS h WHERE order_id > ?1 AND order_id <= ?2 \
                 AND EXISTS (SELECT 1 FROM archive.{table} a \
                 WHERE a.order_id = h.order_id AND a.version >= h.version AND {same})",
                same = same_order_sql("a", "h"),
            ),
            count_hot: format!("SELECT count(*) FROM main.{table}"),
            count_archived: format!("SELECT count(*) FROM archive.{table}"),
        }
    }
}

/// The compare-and-set update of one order in `table` (a hot table or its archive copy).
fn update_sql(table: &str) -> String {
    format!(
        "UPDATE {table} SET campaign_id = ?2, sku = ?3, user_id = ?4, quantity = ?5, \
         unit_price_cents = ?6, amount_cents = ?7, status = ?8, version = ?9, \
         created_at = ?10, pay_deadline = ?11, paid_at = ?12, updated_at = ?13 \
         WHERE order_id = ?1 AND version < ?9 AND campaign_id = ?2 AND user_id = ?4 \
         AND sku = ?3 AND quantity = ?5 AND unit_price_cents = ?6 AND created_at = ?10"
    )
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
        migrate(&mut writer, shard_bits, tables)?;

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
        })
    }

    fn shard_of(&self, order_id: u64) -> usize {
        shard_of(order_id, self.shard_bits)
    }
}

/// Settings every connection needs; not persisted in the file.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Creates order table `table` in `schema` (`main` or `archive`), with the indexes reads use.
fn create_order_table(tx: &Connection, schema: &str, table: &str) -> Result<(), StoreError> {
    // STRICT makes SQLite refuse a REAL in a money column instead of storing it.
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {schema}.{table} (
            order_id INTEGER PRIMARY KEY,
            campaign_id TEXT NOT NULL,
            sku TEXT NOT NULL,
            user_id TEXT NOT NULL,
            quantity INTEGER NOT NULL,
            unit_price_cents INTEGER NOT NULL,
            amount_cents INTEGER NOT NULL,
            status TEXT NOT NULL,
            version INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            pay_deadline INTEGER NOT NULL,
            paid_at INTEGER,
            updated_at INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX IF NOT EXISTS {schema}.{table}_user ON {table} (user_id, order_id);
        CREATE INDEX IF NOT EXISTS {schema}.{table}_campaign ON {table} (campaign_id);"
    ))?;
    Ok(())
}

/// Whether two paths name one file (through links or spellings), once the first exists.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        // A file not created yet: compare its would-be place.
        _ => {
            let absolute = |p: &Path| {
                let name = p.file_name().map(std::ffi::OsStr::to_os_string);
                let dir = p
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                std::fs::canonicalize(dir)
                    .ok()
                    .zip(name)
                    .map(|(d, n)| d.join(n))
            };
            absolute(a).is_some_and(|a| Some(a) == absolute(b))
        }
    }
}

/// Attaches the archive file as schema `archive`.
fn attach(conn: &Connection, archive: &Path) -> Result<(), StoreError> {
    conn.execute(
        "ATTACH DATABASE ?1 AS archive",
        [archive.to_string_lossy().as_ref()],
    )?;
    Ok(())
}

/// Brings the schema up to [`SCHEMA_VERSION`] in one immediate transaction, so two processes
/// opening the same new file cannot both create it.
fn migrate(conn: &mut Connection, shard_bits: u8, tables: &[&str]) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Misconfigured(format!(
            "schema version {version} is newer than this build's {SCHEMA_VERSION}"
        )));
    }
    // Version 1. Every statement is idempotent, so re-running it is harmless.
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) \
         STRICT",
    )?;
    let stored: Option<i64> = tx
        .query_row(
            "SELECT value FROM store_meta WHERE key = 'shard_bits'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if shard_bits_unrecorded(stored, shard_bits)? {
        tx.execute(
            "INSERT INTO store_meta (key, value) VALUES ('shard_bits', ?1)",
            [i64::from(shard_bits)],
        )?;
    }
    for table in tables {
        create_order_table(&tx, "main", table)?;
        tx.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS main.{table}_unpaid ON {table} (status, pay_deadline);"
        ))?;
        // The archive: the same tables in the attached file (the archived are never unpaid).
        create_order_table(&tx, "archive", table)?;
    }
    // Version 2: the campaign ledger (which campaigns have been put on sale).
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS campaign_ledger (
            campaign_id TEXT PRIMARY KEY,
            state TEXT NOT NULL CHECK (state IN ('opening', 'open')),
            stock_total INTEGER,
            updated_at INTEGER NOT NULL
        ) STRICT",
    )?;
    // Version 3: retired campaigns and the payments they keep (ARCHITECTURE.md §9).
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS campaign_retired (
            campaign_id TEXT PRIMARY KEY,
            stock_total INTEGER NOT NULL,
            remaining INTEGER NOT NULL,
            retired_at INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE IF NOT EXISTS payments (
            campaign_id TEXT NOT NULL,
            payment_id TEXT NOT NULL,
            order_id INTEGER NOT NULL,
            amount_cents INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            PRIMARY KEY (campaign_id, payment_id)
        ) STRICT",
    )?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Locks a connection, turning a poisoned mutex into an error: the connection itself is still
/// sound (an interrupted transaction rolls back when dropped), but the caller should know.
fn lock<'a>(
    conn: &'a Mutex<Connection>,
    which: &str,
) -> Result<MutexGuard<'a, Connection>, StoreError> {
    conn.lock()
        .map_err(|_| StoreError::Unavailable(format!("{which} connection lock poisoned")))
}

impl OrderStore for SqliteStore {
    fn write_batch(&self, orders: &[Order]) -> Result<Written, StoreError> {
        if orders.is_empty() {
            return Ok(Written::default());
        }
        let rows = orders.iter().map(Row::new).collect::<Result<Vec<_>, _>>()?;
        let mut conn = lock(&self.writer, "writer")?;
        // Immediate: take the write lock up front rather than fail to upgrade mid-batch.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut written = Written::default();
        {
            // One statement per shard touched, looked up once per batch rather than per row.
            let mut stmts: Vec<Option<rusqlite::CachedStatement<'_>>> =
                self.sql.iter().map(|_| None).collect();
            for (index, row) in rows.iter().enumerate() {
                let shard = self.shard_of(row.order.order_id);
                let stmt = match &mut stmts[shard] {
                    Some(stmt) => stmt,
                    slot => slot.insert(tx.prepare_cached(&self.sql[shard].insert)?),
                };
                let changed = row.execute(stmt)?;
                written.stored += changed;
                if changed == 0 {
                    // A replay of a stored state, or another order under this id: only the
                    // rare rows the insert skipped are looked at again.
                    let holder = tx
                        .prepare_cached(&self.sql[shard].holder)?
                        .query_row([row.order_id], Holder::read)
                        .optional()?;
                    if let Some(holder) = holder.filter(|h| !h.holds(row.order)) {
                        written.collisions.push(Collision {
                            index,
                            order_id: row.order.order_id,
                            campaign_id: holder.campaign_id,
                            user_id: holder.user_id,
                        });
                    }
                }
            }
        }
        tx.commit()?;
        Ok(written)
    }

    fn update_if_newer(&self, order: &Order) -> Result<bool, StoreError> {
        let row = Row::new(order)?;
        let conn = lock(&self.writer, "writer")?;
        let sql = &self.sql[self.shard_of(order.order_id)];
        // Hot first: an order in both places (a pass cut short) is newest there, and the next
        // pass carries the change into the archive.
        if row.execute(&mut conn.prepare_cached(&sql.update)?)? > 0 {
            return Ok(true);
        }
        Ok(row.execute(&mut conn.prepare_cached(&sql.update_archived)?)? > 0)
    }

    fn get(&self, order_id: u64) -> Result<Option<Order>, StoreError> {
        // No stored id exceeds i64::MAX, so such an id is simply absent.
        let Ok(id) = i64::try_from(order_id) else {
            return Ok(None);
        };
        let conn = lock(&self.reader, "reader")?;
        let mut stmt = conn.prepare_cached(&self.sql[self.shard_of(order_id)].get)?;
        let raw = stmt.query_row([id], RawOrder::read).optional()?;
        raw.map(RawOrder::into_order).transpose()
    }

    fn orders_of_campaign(&self, campaign_id: &str) -> Result<Vec<Order>, StoreError> {
        let conn = lock(&self.reader, "reader")?;
        let mut orders = Vec::new();
        for sql in &self.sql {
            let mut stmt = conn.prepare_cached(&sql.by_campaign)?;
            for raw in stmt.query_map([campaign_id], RawOrder::read)? {
                orders.push(raw?.into_order()?);
            }
        }
        Ok(newest_per_order(orders))
    }

    fn orders_of_user(
        &self,
        user_id: &str,
        gene: u8,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        let conn = lock(&self.reader, "reader")?;
        // The user's gene picks the one table holding all their orders.
        let sql = &self.sql[usize::from(gene) & (self.sql.len() - 1)];
        let before = before.map_or(i64::MAX, |id| i64::try_from(id).unwrap_or(i64::MAX));
        let mut stmt = conn.prepare_cached(&sql.by_user)?;
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(rusqlite::params![user_id, before, n], RawOrder::read)?;
        let orders = rows
            .map(|raw| raw?.into_order())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(user_page(orders, limit))
    }

    fn overdue_unpaid(&self, before_ms: i64, limit: usize) -> Result<Vec<Order>, StoreError> {
        let conn = lock(&self.reader, "reader")?;
        let mut found = Vec::new();
        for sql in &self.sql {
            let left = i64::try_from(limit.saturating_sub(found.len())).unwrap_or(i64::MAX);
            if left == 0 {
                break;
            }
            let mut stmt = conn.prepare_cached(&sql.overdue)?;
            for raw in stmt.query_map(rusqlite::params![before_ms, left], RawOrder::read)? {
                found.push(raw?.into_order()?);
            }
        }
        Ok(found)
    }

    fn overdue_unpaid_page(
        &self,
        before_ms: i64,
        after: Option<(i64, u64)>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        let (after_deadline, after_id) = page_start(after);
        let conn = lock(&self.reader, "reader")?;
        let mut found = Vec::new();
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        // Each table's first `limit` in (deadline, id) order, merged: the first `limit` overall.
        for sql in &self.sql {
            let mut stmt = conn.prepare_cached(&sql.overdue_page)?;
            let params = rusqlite::params![before_ms, after_deadline, after_id, n];
            for raw in stmt.query_map(params, RawOrder::read)? {
                found.push(raw?.into_order()?);
            }
        }
        Ok(first_by_deadline(found, limit))
    }

    fn expire_unpaid(&self, order: &Order, now_ms: i64) -> Result<bool, StoreError> {
        let Ok(id) = i64::try_from(order.order_id) else {
            return Ok(false);
        };
        let conn = lock(&self.writer, "writer")?;
        let mut stmt =
            conn.prepare_cached(&self.sql[self.shard_of(order.order_id)].expire_unpaid)?;
        Ok(stmt.execute(rusqlite::params![id, order.version, now_ms])? > 0)
    }

    fn count_of_campaign(&self, campaign_id: &str) -> Result<u64, StoreError> {
        let conn = lock(&self.reader, "reader")?;
        let mut total = 0;
        for sql in &self.sql {
            let n: i64 = conn
                .prepare_cached(&sql.count_campaign)?
                .query_row([campaign_id], |r| r.get(0))?;
            total += u64::try_from(n).unwrap_or(0);
        }
        Ok(total)
    }

    fn claim_campaign_opening(
        &self,
        campaign_id: &str,
        stock_total: u64,
    ) -> Result<bool, StoreError> {
        let mut conn = lock(&self.writer, "writer")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let state: Option<String> = tx
            .query_row(
                "SELECT state FROM campaign_ledger WHERE campaign_id = ?1",
                [campaign_id],
                |r| r.get(0),
            )
            .optional()?;
        let mut orders = 0;
        for sql in &self.sql {
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

    fn confirm_campaign_open(&self, campaign_id: &str) -> Result<(), StoreError> {
        let conn = lock(&self.writer, "writer")?;
        conn.execute(
            "INSERT INTO campaign_ledger (campaign_id, state, updated_at) VALUES (?1, 'open', ?2) \
             ON CONFLICT(campaign_id) DO UPDATE SET state = 'open', updated_at = excluded.updated_at \
             WHERE campaign_ledger.state <> 'open'",
            rusqlite::params![campaign_id, crate::clock::now_ms()],
        )?;
        Ok(())
    }

    fn record_campaign_stock_total(
        &self,
        campaign_id: &str,
        stock_total: u64,
    ) -> Result<(), StoreError> {
        let conn = lock(&self.writer, "writer")?;
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

    fn campaign_stock_total(&self, campaign_id: &str) -> Result<Option<u64>, StoreError> {
        let conn = lock(&self.reader, "reader")?;
        let total: Option<Option<i64>> = conn
            .query_row(
                "SELECT stock_total FROM campaign_ledger WHERE campaign_id = ?1",
                [campaign_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(total.flatten().and_then(|n| u64::try_from(n).ok()))
    }

    fn stored_versions(&self, order_ids: &[u64]) -> Result<Vec<Option<u32>>, StoreError> {
        let conn = lock(&self.reader, "reader")?;
        order_ids
            .iter()
            .map(|&order_id| {
                let Ok(id) = i64::try_from(order_id) else {
                    return Ok(None);
                };
                let version: Option<i64> = conn
                    .prepare_cached(&self.sql[self.shard_of(order_id)].version)?
                    .query_row([id], |r| r.get(0))
                    .optional()?;
                Ok(version.and_then(|v| u32::try_from(v).ok()))
            })
            .collect()
    }

    fn retire_campaign(&self, campaign_id: &str, retired: &Retirement) -> Result<(), StoreError> {
        let conn = lock(&self.writer, "writer")?;
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

    fn campaign_retirement(&self, campaign_id: &str) -> Result<Option<Retirement>, StoreError> {
        let conn = lock(&self.reader, "reader")?;
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

    fn record_payments(
        &self,
        campaign_id: &str,
        payments: &[PaymentRecord],
    ) -> Result<(), StoreError> {
        let mut conn = lock(&self.writer, "writer")?;
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

    fn payment(
        &self,
        campaign_id: &str,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let conn = lock(&self.reader, "reader")?;
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
        let sql = self.sql.get(shard).ok_or_else(|| {
            StoreError::Misconfigured(format!("no shard table {shard} in this store"))
        })?;
        let (after, n) = step_bounds(after, limit);
        let mut conn = lock(&self.writer, "writer")?;
        // One lock for the whole step: no update can slip between the copy and the delete.
        let (scanned, last): (i64, Option<i64>) = conn
            .prepare_cached(&sql.window)?
            .query_row(rusqlite::params![after, n], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let Some(last) = last else {
            return Ok(ArchiveStep::default());
        };
        // Two transactions, copy first: across attached WAL files one transaction is atomic
        // per file only, so a single one could commit the delete and lose the copy.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(&sql.copy)?
            .execute(rusqlite::params![after, last, before_ms])?;
        tx.commit()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let moved = tx
            .prepare_cached(&sql.delete_copied)?
            .execute(rusqlite::params![after, last])?;
        tx.commit()?;
        Ok(ArchiveStep {
            scanned: usize::try_from(scanned).unwrap_or(0),
            moved,
            next: (scanned == n).then(|| u64::try_from(last).unwrap_or(0)),
        })
    }

    fn row_counts(&self) -> Result<RowCounts, StoreError> {
        let conn = lock(&self.reader, "reader")?;
        let mut counts = RowCounts::default();
        for sql in &self.sql {
            let hot: i64 = conn
                .prepare_cached(&sql.count_hot)?
                .query_row([], |r| r.get(0))?;
            let archived: i64 = conn
                .prepare_cached(&sql.count_archived)?
                .query_row([], |r| r.get(0))?;
            counts.hot += u64::try_from(hot).unwrap_or(0);
            counts.archived += u64::try_from(archived).unwrap_or(0);
        }
        Ok(counts)
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

/// What identifies the stored order holding an id.
struct Holder {
    campaign_id: String,
    user_id: String,
    sku: String,
    quantity: i64,
    unit_price_cents: i64,
    created_at: i64,
}

impl Holder {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            campaign_id: r.get(0)?,
            user_id: r.get(1)?,
            sku: r.get(2)?,
            quantity: r.get(3)?,
            unit_price_cents: r.get(4)?,
            created_at: r.get(5)?,
        })
    }

    /// Whether the stored row is a state of `order` (see `collision::same_order`).
    fn holds(&self, order: &Order) -> bool {
        self.campaign_id == order.campaign_id
            && self.user_id == order.user_id
            && self.sku == order.sku
            && self.quantity == i64::from(order.quantity)
            && self.unit_price_cents == order.unit_price_cents
            && self.created_at == order.created_at_ms
    }
}

/// Busy, locked, full or unopenable databases may recover; anything else is reported as is.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure
                | ErrorCode::OutOfMemory,
            ) => Self::Unavailable(e.to_string()),
            _ => Self::Database(Box::new(e)),
        }
    }
}
