//! What the PostgreSQL hot tables and archive share: a small blocking pool per database, the
//! connection settings, the schema check, the decoding of an order row, and how a driver error
//! becomes a [`StoreError`] (retried or not).

use std::str::FromStr as _;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use flashgate_stock::Order;
use postgres::{Client, NoTls, Statement};

use super::StoreError;
use super::row::RawOrder;

/// How long connecting may take before the store counts as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long sent data may go unacknowledged before the connection counts as dead.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest any statement may run (a batch of a few thousand rows takes milliseconds).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);

/// An order row's columns with their types, the same in the hot tables and the archive (each
/// adds its own key: the archive's must hold its partition column).
pub(super) const ORDER_COLUMN_TYPES: &str = "order_id bigint NOT NULL, campaign_id text NOT NULL, \
    sku text NOT NULL, user_id text NOT NULL, quantity bigint NOT NULL, \
    unit_price_cents bigint NOT NULL, amount_cents bigint NOT NULL, status text NOT NULL, \
    version bigint NOT NULL, created_at bigint NOT NULL, pay_deadline bigint NOT NULL, \
    paid_at bigint, updated_at bigint NOT NULL";

/// A connection and the statements prepared on it, by slot (its pool's SQL texts).
pub(super) struct Pooled {
    pub(super) client: Client,
    prepared: Vec<Option<Statement>>,
}

impl Pooled {
    /// The statement of `slot` in `sql` (the SQL texts of this connection's pool), prepared on
    /// first use.
    pub(super) fn prepared(
        &mut self,
        sql: &[String],
        slot: usize,
    ) -> Result<Statement, postgres::Error> {
        if let Some(Some(statement)) = self.prepared.get(slot) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(&sql[slot])?;
        if let Some(entry) = self.prepared.get_mut(slot) {
            *entry = Some(statement.clone());
        }
        Ok(statement)
    }
}

/// Connections open and idle.
#[derive(Default)]
struct Slots {
    idle: Vec<Pooled>,
    open: usize,
}

/// A small pool of blocking connections to one database: callers each take one for a call and
/// put it back. At most `max` are open, so a burst of reads can neither exhaust the server's
/// connections nor starve the persistence workers for long. A connection that broke is dropped
/// and the next call opens a fresh one, so the store recovers by itself when the database
/// comes back.
pub(super) struct Pool {
    config: postgres::Config,
    slots: Mutex<Slots>,
    /// Signalled whenever a connection is given back or closed.
    returned: Condvar,
    /// SQL text per statement slot, built once; each connection prepares them as needed.
    sql: Vec<String>,
    max: usize,
    /// Which database this is, for errors ("store", "archive").
    name: &'static str,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: show where, not how.
        f.debug_struct("Pool")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

/// A blocking client runs its own small runtime: closing it may not happen on a thread that
/// drives async tasks (tokio forbids blocking there). The store may be dropped anywhere, so its
/// connections are closed on a thread of their own.
impl Drop for Pool {
    fn drop(&mut self) {
        let idle = match self.slots.get_mut() {
            Ok(slots) => std::mem::take(&mut slots.idle),
            Err(poisoned) => std::mem::take(&mut poisoned.into_inner().idle),
        };
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("fg-pg-close".into())
                .spawn(move || drop(idle));
        }
    }
}

impl Pool {
    pub(super) fn new(
        config: postgres::Config,
        sql: Vec<String>,
        max: usize,
        name: &'static str,
    ) -> Self {
        Self {
            config,
            slots: Mutex::new(Slots::default()),
            returned: Condvar::new(),
            sql,
            max,
            name,
        }
    }

    pub(super) fn sql(&self) -> &[String] {
        &self.sql
    }

    pub(super) fn config(&self) -> &postgres::Config {
        &self.config
    }

    fn connect(&self) -> Result<Pooled, StoreError> {
        let client = self.config.connect(NoTls)?;
        Ok(Pooled {
            client,
            prepared: vec![None; self.sql.len()],
        })
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        // The pool's bookkeeping stays consistent across a panic elsewhere: keep using it.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, or a new one while fewer than `max` are open, or the first one
    /// given back within [`CONNECT_TIMEOUT`].
    fn take(&self) -> Result<Pooled, StoreError> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let mut slots = self.lock();
        loop {
            if let Some(pooled) = slots.idle.pop() {
                return Ok(pooled);
            }
            if slots.open < self.max {
                slots.open += 1;
                drop(slots);
                return self.connect().inspect_err(|_| self.closed());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Unavailable(format!(
                    "all {} {} connections busy for {CONNECT_TIMEOUT:?}",
                    self.max, self.name
                )));
            }
            slots = self
                .returned
                .wait_timeout(slots, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Returns a connection to the pool, or closes it if it broke.
    fn give_back(&self, pooled: Pooled) {
        if pooled.client.is_closed() {
            drop(pooled);
            self.closed();
            return;
        }
        self.lock().idle.push(pooled);
        self.returned.notify_one();
    }

    fn closed(&self) {
        let mut slots = self.lock();
        slots.open = slots.open.saturating_sub(1);
        drop(slots);
        self.returned.notify_one();
    }

    /// Runs `f` on a pooled connection; a connection that broke is not reused.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&mut Pooled) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut pooled = self.take()?;
        let result = f(&mut pooled);
        self.give_back(pooled);
        result
    }
}

/// The connection settings for `url` (`postgres://user@host:port/db`), named `what` in errors:
/// the same deadlines for the hot tables and the archive.
///
/// # Errors
///
/// [`StoreError::Misconfigured`] for a bad URL.
pub(super) fn connect_config(url: &str, what: &str) -> Result<postgres::Config, StoreError> {
    let mut config = postgres::Config::from_str(url)
        .map_err(|e| StoreError::Misconfigured(format!("{what}: {e}")))?;
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("flashgate");
    // A half-open connection or a stuck statement must fail, not hang a worker, a readiness
    // probe or the shutdown drain: unacknowledged data times out the TCP connection, and
    // every statement has a deadline (unless the URL sets its own options).
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(5));
    config.tcp_user_timeout(TCP_USER_TIMEOUT);
    if config.get_options().is_none() {
        config.options(&format!(
            "-c statement_timeout={}",
            STATEMENT_TIMEOUT.as_millis()
        ));
    }
    Ok(config)
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

pub(super) fn read(row: &postgres::Row) -> Result<Order, StoreError> {
    RawOrder {
        order_id: row.try_get(0)?,
        campaign_id: row.try_get(1)?,
        sku: row.try_get(2)?,
        user_id: row.try_get(3)?,
        quantity: row.try_get(4)?,
        unit_price_cents: row.try_get(5)?,
        amount_cents: row.try_get(6)?,
        status: row.try_get(7)?,
        version: row.try_get(8)?,
        created_at: row.try_get(9)?,
        pay_deadline: row.try_get(10)?,
        paid_at: row.try_get(11)?,
        updated_at: row.try_get(12)?,
    }
    .into_order()
}

/// Only what is wrong with the order itself is permanent: a value the database refuses (class
/// 22, data exception), a constraint it breaks (class 23), or a value that does not convert.
/// Everything else (the connection, the server restarting or overloaded, locks, privileges,
/// a missing table, a pooler in between) may pass, and is retried rather than setting whole
/// batches of good orders aside.
impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        let permanent = match e.code() {
            None => {
                let text = e.to_string();
                text.starts_with("error serializing") || text.starts_with("error deserializing")
            }
            Some(code) => matches!(code.code().get(..2), Some("22" | "23")),
        };
        if permanent && !e.is_closed() {
            Self::Database(Box::new(e))
        } else {
            // The server's own message says more than "db error".
            let detail = e.as_db_error().map_or_else(
                || e.to_string(),
                |db| format!("{}: {}", db.code().code(), db.message()),
            );
            Self::Unavailable(detail)
        }
    }
}
