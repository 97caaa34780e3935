//! The hot tables' schema: the migrations that create it; and what the archive's migration
//! shares: the check that a schema is current already, and of the versions it records.

use postgres::{Client, Transaction};

use super::columns::ORDER_COLUMN_TYPES;
use crate::store::StoreError;
use crate::store::shards::shard_bits_unrecorded;

/// Schema version recorded in `store_meta`; bump it with each new migration.
const SCHEMA_VERSION: i64 = 4;

/// Brings the schema up to [`SCHEMA_VERSION`] in one transaction, under an advisory lock so
/// gateways starting together do not race to create it.
pub(super) fn migrate(
    client: &mut Client,
    shard_bits: u8,
    tables: &[&str],
) -> Result<(), StoreError> {
    // Usually the schema is current: check without DDL, which would take locks that stall the
    // other gateways' writes during a rolling restart (and needs privileges a writer lacks).
    if current(client, "store_meta", SCHEMA_VERSION, shard_bits)? {
        return Ok(());
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock(7163504021)", &[])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS store_meta (key text PRIMARY KEY, value bigint NOT NULL)",
    )?;
    check_recorded(&mut tx, "store_meta", "schema", SCHEMA_VERSION, shard_bits)?;
    for table in tables {
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {table} ({ORDER_COLUMN_TYPES}, PRIMARY KEY (order_id));
            CREATE INDEX IF NOT EXISTS {table}_user ON {table} (user_id, order_id);
            CREATE INDEX IF NOT EXISTS {table}_campaign ON {table} (campaign_id);
            CREATE INDEX IF NOT EXISTS {table}_unpaid ON {table} (status, pay_deadline);"
        ))?;
    }
    // Version 2: the campaign ledger (which campaigns have been put on sale).
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS campaign_ledger (
            campaign_id text PRIMARY KEY,
            state text NOT NULL CHECK (state IN ('opening', 'open')),
            stock_total bigint,
            updated_at bigint NOT NULL
        )",
    )?;
    // Version 3: retired campaigns and the payments they keep (ARCHITECTURE.md §9).
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS campaign_retired (
            campaign_id text PRIMARY KEY,
            stock_total bigint NOT NULL,
            remaining bigint NOT NULL,
            retired_at bigint NOT NULL
        );
        CREATE TABLE IF NOT EXISTS payments (
            campaign_id text NOT NULL,
            payment_id text NOT NULL,
            order_id bigint NOT NULL,
            amount_cents bigint NOT NULL,
            outcome text NOT NULL,
            PRIMARY KEY (campaign_id, payment_id)
        )",
    )?;
    // Version 4: nothing new here, but the archive (`archive/`) holds orders an older
    // build would not find: it must refuse this database rather than answer 404 for them.
    tx.execute(
        "INSERT INTO store_meta (key, value) VALUES ('schema_version', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&SCHEMA_VERSION],
    )?;
    tx.commit()?;
    Ok(())
}

/// What a migration finds recorded in `meta_table`, checked under its lock: a schema (`what`)
/// newer than this build's `schema_version` is refused, and so are other shard bits than
/// `shard_bits`, which are recorded the first time.
pub(super) fn check_recorded(
    tx: &mut Transaction<'_>,
    meta_table: &str,
    what: &str,
    schema_version: i64,
    shard_bits: u8,
) -> Result<(), StoreError> {
    let meta = |tx: &mut Transaction<'_>, key: &str| -> Result<Option<i64>, StoreError> {
        Ok(tx
            .query_opt(
                &format!("SELECT value FROM {meta_table} WHERE key = $1"),
                &[&key],
            )?
            .map(|r| r.try_get(0))
            .transpose()?)
    };
    if let Some(version) = meta(tx, "schema_version")?
        && version > schema_version
    {
        return Err(StoreError::Misconfigured(format!(
            "{what} version {version} is newer than this build's {schema_version}"
        )));
    }
    if shard_bits_unrecorded(meta(tx, "shard_bits")?, shard_bits)? {
        tx.execute(
            &format!("INSERT INTO {meta_table} (key, value) VALUES ('shard_bits', $1)"),
            &[&i64::from(shard_bits)],
        )?;
    }
    Ok(())
}

/// Whether the schema whose `meta` table records its version is at `schema_version` with these
/// `shard_bits` already; a mismatch of shard bits or a newer schema is left to the migration
/// to report.
pub(super) fn current(
    client: &mut Client,
    meta: &str,
    schema_version: i64,
    shard_bits: u8,
) -> Result<bool, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&meta])?
        .try_get(0)?;
    if !exists {
        return Ok(false);
    }
    let rows = client.query(
        &format!("SELECT key, value FROM {meta} WHERE key IN ('schema_version', 'shard_bits')"),
        &[],
    )?;
    let mut version = None;
    let mut bits = None;
    for row in rows {
        let key: String = row.try_get(0)?;
        let value: i64 = row.try_get(1)?;
        match key.as_str() {
            "schema_version" => version = Some(value),
            _ => bits = Some(value),
        }
    }
    Ok(version == Some(schema_version) && bits == Some(i64::from(shard_bits)))
}
