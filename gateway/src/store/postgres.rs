//! [`PostgresStore`]: the production order store. It has the same `2^n` shard tables as SQLite,
//! in one PostgreSQL database that several gateways share.
//!
//! Batches are written with one `INSERT … SELECT FROM UNNEST(arrays)` per shard table touched,
//! all in one transaction: a round trip per table rather than per order. That is what makes
//! the store fast enough for a sale's peak. Conflicts on `order_id` update only to a higher
//! version of the same order, as in SQLite; the same statement reports the orders whose id a
//! different stored order holds (see `collision.rs`).
//!
//! The cold archive (`pg_archive.rs`) lives in the schema `flashgate_archive`, of this database
//! or of another one; this file finds what a step of the pass moves and deletes it once copied.

use flashgate_stock::{Order, PaymentRecord};
use postgres::{Client, Statement};

use super::archive::{self, ArchiveStep, RowCounts};
use super::collision::{Collision, Written, same_order, same_order_sql};
use super::pg_archive::Archive;
use super::pg_pool::{ORDER_COLUMN_TYPES, Pool, Pooled, connect_config, current, read};
use super::row::{Row, payment_row};
use super::shards::{
    COLUMNS, MAX_SHARD_BITS, TABLES, first_by_deadline, page_start, shard_bits_unrecorded, shard_of,
};
use super::{OrderStore, Retirement, StoreError};

/// Schema version recorded in `store_meta`; bump it with each new migration.
const SCHEMA_VERSION: i64 = 4;

/// Connections open at once, per gateway: the persistence workers, the reconciler and the
/// read handlers share them.
const MAX_CONNECTIONS: usize = 16;

/// The statements of one shard table, by kind.
#[derive(Debug, Clone, Copy)]
enum Query {
    Upsert,
    Update,
    Get,
    ByCampaign,
    CountCampaign,
    Overdue,
    ByUser,
    OverduePage,
    ExpireUnpaid,
    ArchiveWindow,
    ArchiveDue,
    ArchiveDelete,
}

const QUERIES: usize = 12;

/// Every query, in slot order.
const ALL_QUERIES: [Query; QUERIES] = [
    Query::Upsert,
    Query::Update,
    Query::Get,
    Query::ByCampaign,
    Query::CountCampaign,
    Query::Overdue,
    Query::ByUser,
    Query::OverduePage,
    Query::ExpireUnpaid,
    Query::ArchiveWindow,
    Query::ArchiveDue,
    Query::ArchiveDelete,
];

fn sql(query: Query, table: &str) -> String {
    match query {
        // One statement: the upsert, then, from the rows it neither inserted nor advanced,
        // those whose stored row is another order (or, committed by a concurrent writer after
        // this statement's snapshot, not visible: `holder` NULL, looked up again after commit).
        // Replays of a stored state, the usual case, cost one anti-join and return nothing.
        Query::Upsert => format!(
            "WITH input AS (SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], \
             $4::text[], $5::int8[], $6::int8[], $7::int8[], $8::text[], $9::int8[], \
             $10::int8[], $11::int8[], $12::int8[], $13::int8[]) AS i({COLUMNS})), \
             written AS (INSERT INTO {table} ({COLUMNS}) SELECT * FROM input \
             ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, \
             version = excluded.version, paid_at = excluded.paid_at, \
             updated_at = excluded.updated_at WHERE excluded.version > {table}.version \
             AND {same} RETURNING order_id) \
             SELECT (SELECT count(*) FROM written), \
             coalesce(array_agg(i.order_id), '{{}}'), \
             coalesce(array_agg(t.order_id), '{{}}'), \
             coalesce(array_agg(t.campaign_id), '{{}}'), \
             coalesce(array_agg(t.user_id), '{{}}') \
             FROM input i LEFT JOIN {table} t ON t.order_id = i.order_id \
             WHERE NOT EXISTS (SELECT 1 FROM written w WHERE w.order_id = i.order_id) \
             AND (t.order_id IS NULL OR NOT ({same_t}))",
            same = same_order_sql(table, "excluded"),
            same_t = same_order_sql("t", "i"),
        ),
        Query::Update => format!(
            "UPDATE {table} SET campaign_id = $2, sku = $3, user_id = $4, quantity = $5, \
             unit_price_cents = $6, amount_cents = $7, status = $8, version = $9, \
             created_at = $10, pay_deadline = $11, paid_at = $12, updated_at = $13 \
             WHERE order_id = $1 AND version < $9 AND campaign_id = $2 AND user_id = $4 \
             AND sku = $3 AND quantity = $5 AND unit_price_cents = $6 AND created_at = $10"
        ),
        Query::Get => format!("SELECT {COLUMNS} FROM {table} WHERE order_id = $1"),
        Query::ByCampaign => format!("SELECT {COLUMNS} FROM {table} WHERE campaign_id = $1"),
        Query::CountCampaign => format!("SELECT count(*) FROM {table} WHERE campaign_id = $1"),
        Query::Overdue => format!(
            "SELECT {COLUMNS} FROM {table} WHERE status = 'pending_payment' \
             AND pay_deadline < $1 LIMIT $2"
        ),
        Query::ByUser => format!(
            "SELECT {COLUMNS} FROM {table} WHERE user_id = $1 AND order_id < $2 \
             ORDER BY order_id DESC LIMIT $3"
        ),
        Query::OverduePage => format!(
            "SELECT {COLUMNS} FROM {table} WHERE status = 'pending_payment' \
             AND pay_deadline < $1 AND (pay_deadline, order_id) > ($2, $3) \
             ORDER BY pay_deadline, order_id LIMIT $4"
        ),
        Query::ExpireUnpaid => format!(
            "UPDATE {table} SET status = 'expired', version = version + 1, updated_at = $3 \
             WHERE order_id = $1 AND version = $2 AND status = 'pending_payment'"
        ),
        // The size of the window a step looks at, and where the next one starts.
        Query::ArchiveWindow => format!(
            "SELECT count(*), max(order_id) FROM (SELECT order_id FROM {table} \
             WHERE order_id > $1 ORDER BY order_id LIMIT $2) w"
        ),
        // Locked until deleted, so a payment arriving meanwhile waits and then finds the
        // order in the archive; rows another pass holds are left to it.
        Query::ArchiveDue => format!(
            "SELECT {COLUMNS} FROM {table} WHERE order_id > $1 AND order_id <= $2 AND {due} \
             ORDER BY order_id FOR UPDATE OF {table} SKIP LOCKED",
            due = archive::due_sql("$3"),
        ),
        Query::ArchiveDelete => format!("DELETE FROM {table} WHERE order_id = ANY($1)"),
    }
}

/// The statements of the hot tables, by shard and kind.
impl Pooled {
    fn statement(
        &mut self,
        store: &PostgresStore,
        shard: usize,
        query: Query,
    ) -> Result<Statement, postgres::Error> {
        self.prepared(store.pool.sql(), shard * QUERIES + query as usize)
    }
}

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
        let sql = tables
            .iter()
            .flat_map(|t| ALL_QUERIES.map(|q| sql(q, t)))
            .collect();
        let pool = Pool::new(config, sql, MAX_CONNECTIONS, "store");
        pool.with(|pooled| migrate(&mut pooled.client, shard_bits, tables))?;
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

    /// Writes the orders at `indices` of `orders` (each id's states of one order only), one
    /// statement per shard table, and reports the collisions with stored orders.
    fn upsert(
        &self,
        orders: &[Order],
        rows: &[Row<'_>],
        indices: Vec<usize>,
    ) -> Result<Written, StoreError> {
        let mut written = Written::default();
        // Every state of an order collides when its newest does.
        let mut indices_of: std::collections::HashMap<i64, Vec<usize>> =
            std::collections::HashMap::with_capacity(indices.len());
        for &index in &indices {
            indices_of
                .entry(rows[index].order_id)
                .or_default()
                .push(index);
        }
        // One statement may not touch a row twice: of one order, keep its newest state.
        let mut newest: Vec<&Row<'_>> = indices.into_iter().map(|i| &rows[i]).collect();
        newest.sort_by_key(|r| (r.order_id, std::cmp::Reverse(r.order.version)));
        newest.dedup_by_key(|r| r.order_id);
        let mut by_shard: Vec<Columns<'_>> =
            (0..self.shards()).map(|_| Columns::default()).collect();
        for row in newest {
            by_shard[self.shard_of(row.order.order_id)].push(row);
        }
        let collide = |written: &mut Written, id: i64, campaign_id: &str, user_id: &str| {
            for &index in indices_of.get(&id).into_iter().flatten() {
                written.collisions.push(Collision {
                    index,
                    order_id: orders[index].order_id,
                    campaign_id: campaign_id.to_owned(),
                    user_id: user_id.to_owned(),
                });
            }
        };
        self.with(|pooled| {
            let statements = by_shard
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.order_id.is_empty())
                .map(|(shard, _)| Ok((shard, pooled.statement(self, shard, Query::Upsert)?)))
                .collect::<Result<Vec<_>, postgres::Error>>()?;
            let mut tx = pooled.client.transaction()?;
            // Orders skipped whose holder this statement could not see: looked up after commit.
            let mut unseen = Vec::new();
            for (shard, statement) in statements {
                let reply = tx.query_one(&statement, &by_shard[shard].params())?;
                let count: i64 = reply.try_get(0)?;
                written.stored += usize::try_from(count).unwrap_or(0);
                let ids: Vec<i64> = reply.try_get(1)?;
                let held: Vec<Option<i64>> = reply.try_get(2)?;
                let campaigns: Vec<Option<String>> = reply.try_get(3)?;
                let users: Vec<Option<String>> = reply.try_get(4)?;
                for (((id, held), campaign_id), user_id) in
                    ids.into_iter().zip(held).zip(campaigns).zip(users)
                {
                    match (held, campaign_id, user_id) {
                        (Some(_), Some(campaign_id), Some(user_id)) => {
                            collide(&mut written, id, &campaign_id, &user_id);
                        }
                        _ => unseen.push(id),
                    }
                }
            }
            tx.commit()?;
            for id in unseen {
                let Some(&index) = indices_of.get(&id).and_then(|all| all.first()) else {
                    continue;
                };
                let order = &orders[index];
                let shard = self.shard_of(order.order_id);
                let statement = pooled.statement(self, shard, Query::Get)?;
                let holder = match pooled.client.query_opt(&statement, &[&id])? {
                    Some(row) => read(&row)?,
                    None => {
                        return Err(StoreError::Unavailable(format!(
                            "order {} was neither written nor found; retry",
                            order.order_id
                        )));
                    }
                };
                if !same_order(&holder, order) {
                    collide(&mut written, id, &holder.campaign_id, &holder.user_id);
                }
            }
            written.collisions.sort_by_key(|c| c.index);
            Ok(written)
        })
    }

    fn shard_of(&self, order_id: u64) -> usize {
        shard_of(order_id, self.shard_bits)
    }
}

/// Brings the schema up to [`SCHEMA_VERSION`] in one transaction, under an advisory lock so
/// gateways starting together do not race to create it.
fn migrate(client: &mut Client, shard_bits: u8, tables: &[&str]) -> Result<(), StoreError> {
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
    let meta = |tx: &mut postgres::Transaction<'_>, key: &str| -> Result<Option<i64>, StoreError> {
        Ok(tx
            .query_opt("SELECT value FROM store_meta WHERE key = $1", &[&key])?
            .map(|r| r.try_get(0))
            .transpose()?)
    };
    if let Some(version) = meta(&mut tx, "schema_version")?
        && version > SCHEMA_VERSION
    {
        return Err(StoreError::Misconfigured(format!(
            "schema version {version} is newer than this build's {SCHEMA_VERSION}"
        )));
    }
    if shard_bits_unrecorded(meta(&mut tx, "shard_bits")?, shard_bits)? {
        tx.execute(
            "INSERT INTO store_meta (key, value) VALUES ('shard_bits', $1)",
            &[&i64::from(shard_bits)],
        )?;
    }
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
    // Version 4: nothing new here, but the archive (`pg_archive.rs`) holds orders an older
    // build would not find: it must refuse this database rather than answer 404 for them.
    tx.execute(
        "INSERT INTO store_meta (key, value) VALUES ('schema_version', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&SCHEMA_VERSION],
    )?;
    tx.commit()?;
    Ok(())
}

/// The columns of one shard's rows as arrays, for `UNNEST`.
#[derive(Default)]
struct Columns<'a> {
    order_id: Vec<i64>,
    campaign_id: Vec<&'a str>,
    sku: Vec<&'a str>,
    user_id: Vec<&'a str>,
    quantity: Vec<i64>,
    unit_price_cents: Vec<i64>,
    amount_cents: Vec<i64>,
    status: Vec<&'static str>,
    version: Vec<i64>,
    created_at: Vec<i64>,
    pay_deadline: Vec<i64>,
    paid_at: Vec<Option<i64>>,
    updated_at: Vec<i64>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, row: &Row<'a>) {
        let o = row.order;
        self.order_id.push(row.order_id);
        self.campaign_id.push(&o.campaign_id);
        self.sku.push(&o.sku);
        self.user_id.push(&o.user_id);
        self.quantity.push(i64::from(o.quantity));
        self.unit_price_cents.push(o.unit_price_cents);
        self.amount_cents.push(row.amount_cents);
        self.status.push(o.status.as_str());
        self.version.push(i64::from(o.version));
        self.created_at.push(o.created_at_ms);
        self.pay_deadline.push(o.pay_deadline_ms);
        self.paid_at.push(o.paid_at_ms);
        self.updated_at.push(o.updated_at_ms);
    }

    fn params(&self) -> [&(dyn postgres::types::ToSql + Sync); 13] {
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

impl OrderStore for PostgresStore {
    fn write_batch(&self, orders: &[Order]) -> Result<Written, StoreError> {
        if orders.is_empty() {
            return Ok(Written::default());
        }
        let rows = orders.iter().map(Row::new).collect::<Result<Vec<_>, _>>()?;
        // Of each id, the states of the order it first comes with go now; another order under
        // that id in this batch (rare: a collision) goes in a second round, compared then with
        // whichever order holds the id.
        let mut first_of = std::collections::HashMap::with_capacity(rows.len());
        let (mut now, mut later) = (Vec::with_capacity(rows.len()), Vec::new());
        for (index, row) in rows.iter().enumerate() {
            let first = *first_of.entry(row.order_id).or_insert(index);
            if same_order(&orders[first], row.order) {
                now.push(index);
            } else {
                later.push(index);
            }
        }
        let mut written = self.upsert(orders, &rows, now)?;
        if !later.is_empty() {
            let again: Vec<Order> = later.iter().map(|&i| orders[i].clone()).collect();
            let more = self.write_batch(&again)?;
            written.stored += more.stored;
            written
                .collisions
                .extend(more.collisions.into_iter().map(|c| Collision {
                    index: later[c.index],
                    ..c
                }));
            written.collisions.sort_by_key(|c| c.index);
        }
        Ok(written)
    }

    fn update_if_newer(&self, order: &Order) -> Result<bool, StoreError> {
        let row = Row::new(order)?;
        let o = row.order;
        let shard = self.shard_of(o.order_id);
        let (quantity, version) = (i64::from(o.quantity), i64::from(o.version));
        let params: [&(dyn postgres::types::ToSql + Sync); 13] = [
            &row.order_id,
            &o.campaign_id,
            &o.sku,
            &o.user_id,
            &quantity,
            &o.unit_price_cents,
            &row.amount_cents,
            &o.status.as_str(),
            &version,
            &o.created_at_ms,
            &o.pay_deadline_ms,
            &o.paid_at_ms,
            &o.updated_at_ms,
        ];
        let changed = self.with(|pooled| {
            let statement = pooled.statement(self, shard, Query::Update)?;
            Ok(pooled.client.execute(&statement, &params)? > 0)
        })?;
        if changed {
            return Ok(true);
        }
        // A hot row, when there is one, is never older than its archived copy: only an order
        // the hot table no longer holds is updated in the archive (a late payment of a retired
        // campaign). Asked after the update, which waited for any step moving the row.
        let hot = self.with(|pooled| {
            let statement = pooled.statement(self, shard, Query::Get)?;
            Ok(pooled
                .client
                .query_opt(&statement, &[&row.order_id])?
                .is_some())
        })?;
        if hot {
            return Ok(false);
        }
        self.archive.update_if_newer(shard, &params)
    }

    fn get(&self, order_id: u64) -> Result<Option<Order>, StoreError> {
        let Ok(id) = i64::try_from(order_id) else {
            return Ok(None);
        };
        let shard = self.shard_of(order_id);
        let hot = self.with(|pooled| {
            let statement = pooled.statement(self, shard, Query::Get)?;
            pooled
                .client
                .query_opt(&statement, &[&id])?
                .map(|row| read(&row))
                .transpose()
        })?;
        // Hot first: a hot row is never older than its archived copy.
        match hot {
            Some(order) => Ok(Some(order)),
            None => self.archive.get(shard, id),
        }
    }

    fn orders_of_campaign(&self, campaign_id: &str) -> Result<Vec<Order>, StoreError> {
        let mut orders = self.with(|pooled| {
            let mut orders = Vec::new();
            for shard in 0..self.shards() {
                let statement = pooled.statement(self, shard, Query::ByCampaign)?;
                for row in pooled.client.query(&statement, &[&campaign_id])? {
                    orders.push(read(&row)?);
                }
            }
            Ok(orders)
        })?;
        orders.extend(self.archive.orders_of_campaign(campaign_id)?);
        Ok(archive::newest_per_order(orders))
    }

    fn count_of_campaign(&self, campaign_id: &str) -> Result<u64, StoreError> {
        self.with(|pooled| {
            let mut total = 0;
            for shard in 0..self.shards() {
                let statement = pooled.statement(self, shard, Query::CountCampaign)?;
                let n: i64 = pooled
                    .client
                    .query_one(&statement, &[&campaign_id])?
                    .try_get(0)?;
                total += u64::try_from(n).unwrap_or(0);
            }
            Ok(total)
        })
    }

    fn claim_campaign_opening(
        &self,
        campaign_id: &str,
        stock_total: u64,
    ) -> Result<bool, StoreError> {
        self.with(|pooled| {
            let mut counts = Vec::with_capacity(self.shards());
            for shard in 0..self.shards() {
                counts.push(pooled.statement(self, shard, Query::CountCampaign)?);
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

    fn confirm_campaign_open(&self, campaign_id: &str) -> Result<(), StoreError> {
        self.with(|pooled| {
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

    fn record_campaign_stock_total(
        &self,
        campaign_id: &str,
        stock_total: u64,
    ) -> Result<(), StoreError> {
        self.with(|pooled| {
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

    fn campaign_stock_total(&self, campaign_id: &str) -> Result<Option<u64>, StoreError> {
        self.with(|pooled| {
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

    fn overdue_unpaid(&self, before_ms: i64, limit: usize) -> Result<Vec<Order>, StoreError> {
        self.with(|pooled| {
            let mut found = Vec::new();
            for shard in 0..self.shards() {
                let left = i64::try_from(limit.saturating_sub(found.len())).unwrap_or(i64::MAX);
                if left == 0 {
                    break;
                }
                let statement = pooled.statement(self, shard, Query::Overdue)?;
                for row in pooled.client.query(&statement, &[&before_ms, &left])? {
                    found.push(read(&row)?);
                }
            }
            Ok(found)
        })
    }

    fn overdue_unpaid_page(
        &self,
        before_ms: i64,
        after: Option<(i64, u64)>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        let (after_deadline, after_id) = page_start(after);
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|pooled| {
            let mut found = Vec::new();
            // Each table's first `limit` in (deadline, id) order, merged.
            for shard in 0..self.shards() {
                let statement = pooled.statement(self, shard, Query::OverduePage)?;
                let params: [&(dyn postgres::types::ToSql + Sync); 4] =
                    [&before_ms, &after_deadline, &after_id, &n];
                for row in pooled.client.query(&statement, &params)? {
                    found.push(read(&row)?);
                }
            }
            Ok(first_by_deadline(found, limit))
        })
    }

    fn expire_unpaid(&self, order: &Order, now_ms: i64) -> Result<bool, StoreError> {
        let Ok(id) = i64::try_from(order.order_id) else {
            return Ok(false);
        };
        let shard = self.shard_of(order.order_id);
        let version = i64::from(order.version);
        self.with(|pooled| {
            let statement = pooled.statement(self, shard, Query::ExpireUnpaid)?;
            Ok(pooled
                .client
                .execute(&statement, &[&id, &version, &now_ms])?
                > 0)
        })
    }

    fn orders_of_user(
        &self,
        user_id: &str,
        gene: u8,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Order>, StoreError> {
        // The user's gene picks the one table holding all their orders.
        let shard = usize::from(gene) & (self.shards() - 1);
        let before = before.map_or(i64::MAX, |id| i64::try_from(id).unwrap_or(i64::MAX));
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut orders = self.with(|pooled| {
            let statement = pooled.statement(self, shard, Query::ByUser)?;
            pooled
                .client
                .query(&statement, &[&user_id, &before, &n])?
                .iter()
                .map(read)
                .collect::<Result<Vec<_>, _>>()
        })?;
        // Each place's first `limit` below the cursor hold the page's: an order in both is
        // among the first `limit` of each.
        orders.extend(self.archive.orders_of_user(shard, user_id, before, n)?);
        Ok(archive::user_page(orders, limit))
    }

    fn stored_versions(&self, order_ids: &[u64]) -> Result<Vec<Option<u32>>, StoreError> {
        let mut by_shard: Vec<Vec<i64>> = vec![Vec::new(); self.shards()];
        for &order_id in order_ids {
            if let Ok(id) = i64::try_from(order_id) {
                by_shard[self.shard_of(order_id)].push(id);
            }
        }
        let mut found = std::collections::HashMap::with_capacity(order_ids.len());
        self.with(|pooled| {
            for (shard, ids) in by_shard
                .iter()
                .enumerate()
                .filter(|(_, ids)| !ids.is_empty())
            {
                let rows = pooled.client.query(
                    &format!(
                        "SELECT order_id, version FROM {} WHERE order_id = ANY($1)",
                        TABLES[shard]
                    ),
                    &[ids],
                )?;
                for row in rows {
                    let (id, version): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
                    found.insert(id, version);
                }
            }
            Ok(())
        })?;
        Ok(order_ids
            .iter()
            .map(|&id| {
                let version = found.get(&i64::try_from(id).ok()?)?;
                u32::try_from(*version).ok()
            })
            .collect())
    }

    fn retire_campaign(&self, campaign_id: &str, retired: &Retirement) -> Result<(), StoreError> {
        self.with(|pooled| {
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

    fn campaign_retirement(&self, campaign_id: &str) -> Result<Option<Retirement>, StoreError> {
        self.with(|pooled| {
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

    fn record_payments(
        &self,
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
        self.with(|pooled| {
            pooled.client.execute(
                "INSERT INTO payments (campaign_id, payment_id, order_id, amount_cents, outcome) \
                 SELECT $1, * FROM UNNEST($2::text[], $3::int8[], $4::int8[], $5::text[]) \
                 ON CONFLICT (campaign_id, payment_id) DO NOTHING",
                &[&campaign_id, &ids, &orders, &amounts, &outcomes],
            )?;
            Ok(())
        })
    }

    fn payment(
        &self,
        campaign_id: &str,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        self.with(|pooled| {
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
        if shard >= self.shards() {
            return Err(StoreError::Misconfigured(format!(
                "no shard {shard} of {}",
                self.shards()
            )));
        }
        let (after, n) = archive::step_bounds(after, limit);
        self.with(|pooled| {
            let window = pooled.statement(self, shard, Query::ArchiveWindow)?;
            let due = pooled.statement(self, shard, Query::ArchiveDue)?;
            let delete = pooled.statement(self, shard, Query::ArchiveDelete)?;
            let mut tx = pooled.client.transaction()?;
            let reply = tx.query_one(&window, &[&after, &n])?;
            let scanned: i64 = reply.try_get(0)?;
            let Some(last) = reply.try_get::<_, Option<i64>>(1)? else {
                tx.commit()?;
                return Ok(ArchiveStep::default());
            };
            let next = if scanned == n {
                u64::try_from(last).ok()
            } else {
                None
            };
            let rows = tx.query(&due, &[&after, &last, &before_ms])?;
            let mut moved = 0;
            if !rows.is_empty() {
                // The copy commits before the delete: a crash in between leaves a duplicate at
                // one version, never a loss. The rows stay locked (and so at the version
                // copied) until the delete commits.
                let ids = self.archive.copy(shard, &rows)?;
                moved = tx.execute(&delete, &[&ids])?;
            }
            tx.commit()?;
            Ok(ArchiveStep {
                scanned: usize::try_from(scanned).unwrap_or(0),
                moved: usize::try_from(moved).unwrap_or(usize::MAX),
                next,
            })
        })
    }

    fn row_counts(&self) -> Result<RowCounts, StoreError> {
        let hot = self.with(|pooled| {
            let mut total = 0u64;
            for table in &TABLES[..self.shards()] {
                let n: i64 = pooled
                    .client
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])?
                    .try_get(0)?;
                total += u64::try_from(n).unwrap_or(0);
            }
            Ok(total)
        })?;
        Ok(RowCounts {
            hot,
            archived: self.archive.row_count()?,
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with(|pooled| {
            pooled.client.simple_query("SELECT 1")?;
            Ok(())
        })
    }
}
