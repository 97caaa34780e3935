//! The schema of the store file and its attached archive: the migrations that create it.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::user_index;
use crate::store::StoreError;
use crate::store::shards::shard_bits_unrecorded;

/// Schema version recorded in `PRAGMA user_version`; bump it with each new migration.
const SCHEMA_VERSION: i64 = 5;

/// Creates order table `table` in `schema` (`main` or `archive`), with its campaign index.
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
        CREATE INDEX IF NOT EXISTS {schema}.{table}_campaign ON {table} (campaign_id);"
    ))?;
    Ok(())
}

/// Brings the schema up to [`SCHEMA_VERSION`] in one immediate transaction, so two processes
/// opening the same new file cannot both create it.
pub(super) fn migrate(
    conn: &mut Connection,
    shard_bits: u8,
    tables: &[&str],
) -> Result<(), StoreError> {
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
        // Rows come to it in bulk, off the purchase path, so its user index is an ordinary one.
        create_order_table(&tx, "archive", table)?;
        tx.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS archive.{table}_user ON {table} (user_id, order_id);"
        ))?;
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
    // Version 5: the hot tables' user index merged in bulk, not written per row.
    for table in tables {
        user_index::create(&tx, table, (1..5).contains(&version))?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}
