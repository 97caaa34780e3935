//! What the PostgreSQL hot tables and archive share to reach their database: a small blocking
//! pool per database, the statements each connection prepares (a statement table per pool),
//! the connection settings, and how a driver error becomes a [`StoreError`] (retried or not).

use std::str::FromStr as _;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls, Statement};

use crate::store::StoreError;

/// How long connecting may take before the store counts as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long sent data may go unacknowledged before the connection counts as dead.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest any statement may run (a batch of a few thousand rows takes milliseconds).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);

/// A kind of statement prepared for each shard table of a database (the hot tables' queries,
/// the archive's): a pool holds the SQL of every kind for every table, the statement table,
/// where the statement of `kind` for shard `shard` is at slot `shard * ALL.len() + kind.slot()`.
pub(super) trait ShardStatement: Copy + 'static {
    /// Every kind, in slot order.
    const ALL: &'static [Self];

    /// This kind's place in [`ShardStatement::ALL`].
    fn slot(self) -> usize;

    /// This kind's SQL for the shard table `table`.
    fn sql(self, table: &str) -> String;
}

/// A connection and the statements prepared on it, by slot (its pool's SQL texts).
pub(super) struct Pooled {
    pub(super) client: Client,
    prepared: Vec<Option<Statement>>,
}

impl Pooled {
    /// The statement of `query` for table `shard`, from `pool` (this connection's own), prepared
    /// on first use.
    pub(super) fn statement<Q: ShardStatement>(
        &mut self,
        pool: &Pool,
        shard: usize,
        query: Q,
    ) -> Result<Statement, postgres::Error> {
        self.prepared(pool.sql(), shard * Q::ALL.len() + query.slot())
    }

    /// The statement of `slot` in `sql` (the SQL texts of this connection's pool), prepared on
    /// first use.
    fn prepared(&mut self, sql: &[String], slot: usize) -> Result<Statement, postgres::Error> {
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
///
/// Why hand-written rather than `r2d2` (issue #14, docs/BENCHMARKS.md §14): measured A B B A
/// with a `ManageConnection` yielding [`Pooled`], r2d2 was the same speed within the noise
/// (median PostgreSQL inserts 18,541/s here vs 16,362/s, 8-thread gets 13,001/s vs 15,120/s;
/// single runs ranged 13,752-24,921 and 11,139-19,239). It would save about 25 lines, and
/// costs six crates, three background threads per pool, and an outage in which every call
/// waits the full connect timeout for r2d2's background connect instead of failing at once
/// with the driver's error.
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
    /// A pool of at most `max` connections with `config`, preparing the statements of `Q` for
    /// each of `tables`; `name` says which database it is in errors.
    pub(super) fn new<Q: ShardStatement>(
        config: postgres::Config,
        tables: &[&str],
        max: usize,
        name: &'static str,
    ) -> Self {
        let sql = tables
            .iter()
            .flat_map(|t| Q::ALL.iter().map(|q| q.sql(t)))
            .collect();
        Self {
            config,
            slots: Mutex::new(Slots::default()),
            returned: Condvar::new(),
            sql,
            max,
            name,
        }
    }

    fn sql(&self) -> &[String] {
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
