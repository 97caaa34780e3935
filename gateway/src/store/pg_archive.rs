//! The PostgreSQL store's cold archive (ARCHITECTURE.md §9): the schema `flashgate_archive`, in
//! the hot tables' database or in another one, with a table per hot table (`orders_XX`, the same
//! columns) where the archive pass puts the orders of retired campaigns.
//!
//! Each archive table is partitioned by UTC month of `created_at` (`orders_XX_YYYYMM`): old
//! months can be detached, dumped or dropped whole, with no vacuum of the rest, and a month is
//! created the first time the pass copies an order of it. The primary key is
//! `(order_id, created_at)` because a partitioned table's keys must hold its partition key.
//!
//! `postgres.rs` finds what a step of the pass moves and deletes it; this file copies it and
//! answers what reads and late payments ask of the archive.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Mutex, PoisonError};

use flashgate_stock::Order;
use postgres::Client;
use postgres::types::ToSql;

use super::StoreError;
use super::collision::same_order_sql;
use super::pg_pool::{ORDER_COLUMN_TYPES, Pool, current, read};
use super::shards::{COLUMNS, TABLES, shard_bits_unrecorded};

/// Where the archive lives in its database.
const SCHEMA: &str = "flashgate_archive";

/// The archive's schema version, recorded in `flashgate_archive.archive_meta`.
const ARCHIVE_SCHEMA_VERSION: i64 = 1;

/// Advisory lock keys: gateways starting together migrate one at a time, and two passes never
/// race to create one partition. Distinct from the hot schema's, which may share the database.
const MIGRATE_LOCK: i64 = 7_163_504_022;
const PARTITION_LOCK: i64 = 7_163_504_023;

/// Connections to the archive open at once, per gateway: user pages read it on every call,
/// the rest rarely (a miss, a late payment, one step of the pass at a time).
const CONNECTIONS: usize = 4;

/// One day in unix milliseconds.
const DAY_MS: i64 = 86_400_000;

/// The statements of one archive table, by kind.
#[derive(Debug, Clone, Copy)]
enum Query {
    Copy,
    Get,
    ByUser,
    ByCampaign,
    Update,
    Count,
}

const QUERIES: usize = 6;

const ALL_QUERIES: [Query; QUERIES] = [
    Query::Copy,
    Query::Get,
    Query::ByUser,
    Query::ByCampaign,
    Query::Update,
    Query::Count,
];

fn sql(query: Query, table: &str) -> String {
    let archived = format!("{SCHEMA}.{table}");
    match query {
        // A copy never takes an archived state back: a retry of a step cut short, or a second
        // pass copying a row another already did, leaves the newer version.
        // Returns the ids the archive now holds as the same order at the copied version or
        // newer: only those may leave the hot table. Another order under an id (see
        // `collision.rs`) is neither copied nor reported, so it stays hot.
        Query::Copy => format!(
            "WITH input AS (SELECT * FROM UNNEST($1::int8[], \
             $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[], \
             $8::text[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[]) \
             AS i({COLUMNS})), \
             written AS (INSERT INTO {archived} AS a ({COLUMNS}) SELECT * FROM input i \
             WHERE NOT EXISTS (SELECT 1 FROM {archived} o WHERE o.order_id = i.order_id \
             AND NOT ({same_oi})) \
             ON CONFLICT (order_id, created_at) DO UPDATE SET status = excluded.status, \
             version = excluded.version, paid_at = excluded.paid_at, \
             updated_at = excluded.updated_at WHERE excluded.version > a.version \
             AND {same_ae} RETURNING order_id) \
             SELECT i.order_id FROM input i WHERE i.order_id IN (SELECT order_id FROM written) \
             OR EXISTS (SELECT 1 FROM {archived} o WHERE o.order_id = i.order_id \
             AND o.version >= i.version AND {same_oi})",
            same_oi = same_order_sql("o", "i"),
            same_ae = same_order_sql("a", "excluded"),
        ),
        // Every partition is probed: an id says nothing of its month here.
        Query::Get => format!(
            "SELECT {COLUMNS} FROM {archived} WHERE order_id = $1 ORDER BY version DESC LIMIT 1"
        ),
        Query::ByUser => format!(
            "SELECT {COLUMNS} FROM {archived} WHERE user_id = $1 AND order_id < $2 \
             ORDER BY order_id DESC LIMIT $3"
        ),
        Query::ByCampaign => format!("SELECT {COLUMNS} FROM {archived} WHERE campaign_id = $1"),
        // The hot table's compare-and-set, with the same parameters; what identifies the order
        // (and so its partition) never changes.
        Query::Update => format!(
            "UPDATE {archived} SET status = $8, version = $9, pay_deadline = $11, \
             paid_at = $12, updated_at = $13 \
             WHERE order_id = $1 AND version < $9 AND campaign_id = $2 AND sku = $3 \
             AND user_id = $4 AND quantity = $5 AND unit_price_cents = $6 \
             AND amount_cents = $7 AND created_at = $10"
        ),
        Query::Count => format!("SELECT count(*) FROM {archived}"),
    }
}

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
        let sql = tables
            .iter()
            .flat_map(|t| ALL_QUERIES.map(|q| sql(q, t)))
            .collect();
        let pool = Pool::new(config, sql, CONNECTIONS, "archive");
        pool.with(|pooled| migrate(&mut pooled.client, shard_bits, tables))?;
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
            let statement = pooled.prepared(self.pool.sql(), shard * QUERIES + query as usize)?;
            Ok(pooled.client.query(&statement, params)?)
        })
    }

    /// Copies hot rows of `shard` (read as [`COLUMNS`]) into the archive, committed when this
    /// returns; returns their ids. Their values are copied as stored, undecoded, so a row that
    /// does not decode into an order is archived like any other rather than stopping the pass.
    pub(super) fn copy(
        &self,
        shard: usize,
        rows: &[postgres::Row],
    ) -> Result<Vec<i64>, StoreError> {
        let mut columns = Columns::default();
        for row in rows {
            columns.push(row)?;
        }
        let months: BTreeSet<Month> = columns.created_at.iter().map(|&ms| Month::of(ms)).collect();
        self.create_partitions(shard, &months)?;
        let copied = self.pool.with(|pooled| {
            let slot = shard * QUERIES + Query::Copy as usize;
            let statement = pooled.prepared(self.pool.sql(), slot)?;
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
            let slot = shard * QUERIES + Query::Update as usize;
            let statement = pooled.prepared(self.pool.sql(), slot)?;
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

/// Creates or checks the archive's schema, in one transaction under an advisory lock so
/// gateways starting together do not race to create it.
fn migrate(client: &mut Client, shard_bits: u8, tables: &[&str]) -> Result<(), StoreError> {
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
    let meta = |tx: &mut postgres::Transaction<'_>, key: &str| -> Result<Option<i64>, StoreError> {
        Ok(tx
            .query_opt(
                &format!("SELECT value FROM {meta_table} WHERE key = $1"),
                &[&key],
            )?
            .map(|r| r.try_get(0))
            .transpose()?)
    };
    if let Some(version) = meta(&mut tx, "schema_version")?
        && version > ARCHIVE_SCHEMA_VERSION
    {
        return Err(StoreError::Misconfigured(format!(
            "archive schema version {version} is newer than this build's {ARCHIVE_SCHEMA_VERSION}"
        )));
    }
    // An archive shared by stores of other shard bits would look in the wrong tables.
    if shard_bits_unrecorded(meta(&mut tx, "shard_bits")?, shard_bits)? {
        tx.execute(
            &format!("INSERT INTO {meta_table} (key, value) VALUES ('shard_bits', $1)"),
            &[&i64::from(shard_bits)],
        )?;
    }
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

/// Hot rows as column arrays for `UNNEST`, with their values as stored.
#[derive(Default)]
struct Columns {
    order_id: Vec<i64>,
    campaign_id: Vec<String>,
    sku: Vec<String>,
    user_id: Vec<String>,
    quantity: Vec<i64>,
    unit_price_cents: Vec<i64>,
    amount_cents: Vec<i64>,
    status: Vec<String>,
    version: Vec<i64>,
    created_at: Vec<i64>,
    pay_deadline: Vec<i64>,
    paid_at: Vec<Option<i64>>,
    updated_at: Vec<i64>,
}

impl Columns {
    fn push(&mut self, row: &postgres::Row) -> Result<(), StoreError> {
        self.order_id.push(row.try_get(0)?);
        self.campaign_id.push(row.try_get(1)?);
        self.sku.push(row.try_get(2)?);
        self.user_id.push(row.try_get(3)?);
        self.quantity.push(row.try_get(4)?);
        self.unit_price_cents.push(row.try_get(5)?);
        self.amount_cents.push(row.try_get(6)?);
        self.status.push(row.try_get(7)?);
        self.version.push(row.try_get(8)?);
        self.created_at.push(row.try_get(9)?);
        self.pay_deadline.push(row.try_get(10)?);
        self.paid_at.push(row.try_get(11)?);
        self.updated_at.push(row.try_get(12)?);
        Ok(())
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 13] {
        [
            &self.order_id,
            &self.campaign_id,
            &self.sku,
            &self.user_id,
            &self.quantity,
            &self.unit_price_cents,
            &self.amount_cents,
            &self.status,
            &self.version,
            &self.created_at,
            &self.pay_deadline,
            &self.paid_at,
            &self.updated_at,
        ]
    }
}

/// A UTC calendar month: the archive's partition of the orders created in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Month {
    year: i64,
    /// 1 to 12.
    month: u32,
}

impl Month {
    /// The month holding unix millisecond `ms`.
    fn of(ms: i64) -> Self {
        let (year, month, _) = civil_from_days(ms.div_euclid(DAY_MS));
        Self { year, month }
    }

    fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Its first millisecond; `None` where that is beyond `i64` (only for months no
    /// millisecond timestamp can reach the start of: the partition is then unbounded).
    fn start_ms(self) -> Option<i64> {
        days_from_civil(self.year, self.month, 1).checked_mul(DAY_MS)
    }

    /// The partition name's suffix, `YYYYMM`.
    fn suffix(self) -> String {
        format!("{:04}{:02}", self.year, self.month)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`): the
/// month boundaries without a date library.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01 (H. Hinnant's `civil_from_days`): year, month 1 to 12,
/// day 1 to 31.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted + 2) / 5 + 1;
    let month = if shifted < 10 {
        shifted + 3
    } else {
        shifted - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction (1..=12, 1..=31).
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use flashgate_stock::{Order, OrderStatus};

    use super::super::test_backends::Fresh;
    use super::super::{OrderStore, PostgresStore, Retirement};
    use super::{DAY_MS, Month, civil_from_days, days_from_civil};

    fn url(fresh: &Fresh) -> &str {
        match fresh {
            Fresh::Postgres { url, .. } => url,
            Fresh::Sqlite(_) => unreachable!("a PostgreSQL place"),
        }
    }

    #[test]
    fn an_archive_in_another_database_gets_a_partition_per_month_and_is_read_through() {
        let (hot, cold) = (Fresh::postgres(), Fresh::postgres());
        let store = PostgresStore::open_with_archive(url(&hot), Some(url(&cold)), 1).unwrap();
        // 2024-01-31T23:59:59.999Z and the next millisecond: two months, two partitions.
        let january_end = 1_706_745_599_999;
        let orders: Vec<Order> = (0..20u64)
            .map(|n| {
                let created_at_ms = january_end + i64::try_from(n / 2 % 2).unwrap();
                Order {
                    order_id: (n + 1) << 8 | (n % 2),
                    campaign_id: "old".into(),
                    sku: "sku".into(),
                    user_id: format!("u{}", n % 2),
                    quantity: 1,
                    unit_price_cents: 100,
                    status: OrderStatus::Paid,
                    version: 2,
                    created_at_ms,
                    pay_deadline_ms: created_at_ms + 1,
                    paid_at_ms: Some(created_at_ms),
                    updated_at_ms: created_at_ms,
                }
            })
            .collect();
        store.write_batch(&orders).unwrap();
        let retired = Retirement {
            stock_total: 20,
            remaining: 0,
            retired_at_ms: january_end,
        };
        store.retire_campaign("old", &retired).unwrap();
        let mut moved = 0;
        for shard in 0..store.shards() {
            let mut after = None;
            loop {
                let step = store.archive_step(shard, after, i64::MAX, 4).unwrap();
                moved += step.moved;
                let Some(next) = step.next else { break };
                after = Some(next);
            }
        }
        assert_eq!(moved, 20);
        let counts = store.row_counts().unwrap();
        assert_eq!((counts.hot, counts.archived), (0, 20));
        assert_eq!(
            cold.archived_in("orders_00") + cold.archived_in("orders_01"),
            20
        );
        assert_eq!(hot.count("orders_00") + hot.count("orders_01"), 0);
        let partitions = |fresh: &Fresh| {
            let mut client = postgres::Client::connect(url(fresh), postgres::NoTls).unwrap();
            let names: Vec<String> = client
                .query(
                    "SELECT c.relname::text FROM pg_inherits i \
                     JOIN pg_class c ON c.oid = i.inhrelid \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = 'flashgate_archive' AND c.relkind = 'r' \
                     ORDER BY 1",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            names
        };
        assert_eq!(
            partitions(&cold),
            [
                "orders_00_202401",
                "orders_00_202402",
                "orders_01_202401",
                "orders_01_202402"
            ]
        );
        assert!(partitions(&hot).is_empty());
        for o in &orders {
            assert_eq!(store.get(o.order_id).unwrap().as_ref(), Some(o));
        }
        assert_eq!(store.orders_of_user("u1", 1, None, 100).unwrap().len(), 10);
        assert_eq!(store.orders_of_campaign("old").unwrap().len(), 20);
        let shown = format!("{store:?}");
        assert!(shown.contains("archive_dbname"), "{shown}");
        // Reopening finds the archive current and its months still there.
        drop(store);
        let store = PostgresStore::open_with_archive(url(&hot), Some(url(&cold)), 1).unwrap();
        assert_eq!(store.row_counts().unwrap().archived, 20);
        // Another shard layout must not share the archive.
        drop(store);
        let other = Fresh::postgres();
        assert!(PostgresStore::open_with_archive(url(&other), Some(url(&cold)), 2).is_err());
    }

    #[test]
    fn two_gateways_passing_at_once_move_each_order_once() {
        let fresh = Fresh::postgres();
        let stores = [(); 2].map(|()| PostgresStore::open(url(&fresh), 2).unwrap());
        // Four months of orders, so both passes meet partitions to create.
        let orders: Vec<Order> = (0..400u64)
            .map(|n| {
                let created_at_ms = i64::try_from(n % 4).unwrap() * 31 * DAY_MS;
                Order {
                    order_id: (n + 1) << 8 | (n % 4),
                    campaign_id: "old".into(),
                    sku: "sku".into(),
                    user_id: format!("u{}", n % 4),
                    quantity: 1,
                    unit_price_cents: 100,
                    status: OrderStatus::Cancelled,
                    version: 2,
                    created_at_ms,
                    pay_deadline_ms: created_at_ms + 1,
                    paid_at_ms: None,
                    updated_at_ms: created_at_ms,
                }
            })
            .collect();
        stores[0].write_batch(&orders).unwrap();
        let retired = Retirement {
            stock_total: 400,
            remaining: 0,
            retired_at_ms: 0,
        };
        stores[0].retire_campaign("old", &retired).unwrap();
        let moved: usize = std::thread::scope(|s| {
            let passes: Vec<_> = stores
                .iter()
                .map(|store| {
                    s.spawn(move || {
                        let mut moved = 0;
                        for shard in 0..store.shards() {
                            let mut after = None;
                            loop {
                                let step = store.archive_step(shard, after, i64::MAX, 8).unwrap();
                                moved += step.moved;
                                let Some(next) = step.next else { break };
                                after = Some(next);
                            }
                        }
                        moved
                    })
                })
                .collect();
            passes.into_iter().map(|p| p.join().unwrap()).sum()
        });
        assert_eq!(moved, 400);
        let counts = stores[1].row_counts().unwrap();
        assert_eq!((counts.hot, counts.archived), (0, 400));
        for o in &orders {
            assert_eq!(stores[1].get(o.order_id).unwrap().as_ref(), Some(o));
        }
    }

    #[test]
    fn months_start_where_the_calendar_says() {
        assert_eq!(
            Month::of(0),
            Month {
                year: 1970,
                month: 1
            }
        );
        assert_eq!(
            Month::of(-1),
            Month {
                year: 1969,
                month: 12
            }
        );
        assert_eq!(
            Month {
                year: 1970,
                month: 1
            }
            .start_ms(),
            Some(0)
        );
        // 2024-02-29T23:59:59.999Z, then 2024-03-01T00:00:00Z.
        assert_eq!(
            Month::of(1_709_251_199_999),
            Month {
                year: 2024,
                month: 2
            }
        );
        assert_eq!(
            Month {
                year: 2024,
                month: 3
            }
            .start_ms(),
            Some(1_709_251_200_000)
        );
        assert_eq!(
            Month {
                year: 2024,
                month: 12
            }
            .next(),
            Month {
                year: 2025,
                month: 1
            }
        );
        assert_eq!(
            Month {
                year: 2025,
                month: 1
            }
            .suffix(),
            "202501"
        );
    }

    #[test]
    fn every_day_round_trips_and_each_month_holds_its_days() {
        // From 1600 to 2400: leap centuries and ordinary ones.
        for days in -135_000..157_000 {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
            let of = Month::of(days * DAY_MS);
            let start = of.start_ms().unwrap_or(i64::MIN);
            let end = of.next().start_ms().unwrap_or(i64::MAX);
            assert!(start <= days * DAY_MS && days * DAY_MS < end);
        }
    }

    #[test]
    fn the_extremes_of_i64_still_have_a_month() {
        for ms in [i64::MIN, i64::MAX] {
            let month = Month::of(ms);
            let start = month.start_ms().unwrap_or(i64::MIN);
            let end = month.next().start_ms().unwrap_or(i64::MAX);
            assert!(start <= ms && (ms < end || end == i64::MAX));
        }
    }
}
