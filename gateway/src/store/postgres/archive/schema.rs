//! The archive's schema (`flashgate_archive`): created, or checked, when the store opens.

use postgres::Client;

use super::{MIGRATE_LOCK, SCHEMA};
use crate::store::StoreError;
use crate::store::postgres::columns::ORDER_COLUMN_TYPES;
use crate::store::postgres::schema::{check_recorded, current};

/// The archive's schema version, recorded in `flashgate_archive.archive_meta`.
const ARCHIVE_SCHEMA_VERSION: i64 = 1;

/// Creates or checks the archive's schema, in one transaction under an advisory lock so
/// gateways starting together do not race to create it.
pub(super) fn migrate(
    client: &mut Client,
    shard_bits: u8,
    tables: &[&str],
) -> Result<(), StoreError> {
    let meta_table = format!("{SCHEMA}.archive_meta");
    // Usually the schema is current: no DDL, which would stall the other gateways' reads.
    if current(client, &meta_table, ARCHIVE_SCHEMA_VERSION, shard_bits)? {
        return Ok(());
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {SCHEMA};
        CREATE TABLE IF NOT EXISTS {meta_table} (key text PRIMARY KEY, value bigint NOT NULL)"
    ))?;
    // An archive shared by stores of other shard bits would look in the wrong tables.
    check_recorded(
        &mut tx,
        &meta_table,
        "archive schema",
        ARCHIVE_SCHEMA_VERSION,
        shard_bits,
    )?;
    for table in tables {
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {SCHEMA}.{table} ({ORDER_COLUMN_TYPES},
                PRIMARY KEY (order_id, created_at)
            ) PARTITION BY RANGE (created_at);
            CREATE INDEX IF NOT EXISTS {table}_user ON {SCHEMA}.{table} (user_id, order_id);
            CREATE INDEX IF NOT EXISTS {table}_campaign ON {SCHEMA}.{table} (campaign_id);"
        ))?;
    }
    tx.execute(
        &format!(
            "INSERT INTO {meta_table} (key, value) VALUES ('schema_version', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        ),
        &[&ARCHIVE_SCHEMA_VERSION],
    )?;
    tx.commit()?;
    Ok(())
}
