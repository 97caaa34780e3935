//! Each store test runs on both backends: SQLite in a temporary file, PostgreSQL in a
//! database of the test's own on the test process's server (a private one the test kit starts,
//! or `FLASHGATE_TEST_PG`), dropped after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate_testkit::Database;

use super::{OrderStore, PostgresStore, SqliteStore, StoreError};

/// A fresh, empty place for a store.
pub enum Fresh {
    Sqlite(tempfile::TempDir),
    /// `url` is `_db`'s, which is dropped with it.
    Postgres {
        url: String,
        _db: Database,
    },
}

/// Runs `test` on a fresh SQLite store, then on a fresh PostgreSQL one.
pub fn each_backend(test: impl Fn(&Fresh)) {
    test(&Fresh::sqlite());
    test(&Fresh::postgres());
}

impl Fresh {
    pub fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    pub fn postgres() -> Self {
        let db = Database::create("fg_unit");
        Self::Postgres {
            url: db.url.clone(),
            _db: db,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    pub fn open(&self, shard_bits: u8) -> Result<Box<dyn OrderStore>, StoreError> {
        Ok(match self {
            Self::Sqlite(dir) => Box::new(SqliteStore::open(
                &dir.path().join("data").join("orders.db"),
                shard_bits,
            )?),
            Self::Postgres { url, .. } => Box::new(PostgresStore::open(url, shard_bits)?),
        })
    }

    /// Runs `sql` directly, behind the store's back.
    pub fn execute(&self, sql: &str) {
        match self {
            Self::Sqlite(dir) => {
                let conn =
                    rusqlite::Connection::open(dir.path().join("data").join("orders.db")).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Self::Postgres { url, .. } => {
                postgres::Client::connect(url, postgres::NoTls)
                    .unwrap()
                    .batch_execute(sql)
                    .unwrap();
            }
        }
    }

    /// Rows in `table`, counted directly.
    pub fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT count(*) FROM {table}"))
    }

    /// Rows in the archive's copy of hot table `table`, counted directly.
    pub fn archived_in(&self, table: &str) -> i64 {
        match self {
            Self::Sqlite(dir) => {
                rusqlite::Connection::open(dir.path().join("data").join("orders-archive.db"))
                    .unwrap()
                    .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                    .unwrap()
            }
            Self::Postgres { .. } => self.count(&format!("flashgate_archive.{table}")),
        }
    }

    /// How many `orders_*` tables exist.
    pub fn order_tables(&self) -> i64 {
        self.scalar(match self {
            Self::Sqlite(_) => {
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name GLOB 'orders_[0-9][0-9]'"
            }
            Self::Postgres { .. } => {
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' \
                 AND tablename LIKE 'orders_%'"
            }
        })
    }

    fn scalar(&self, sql: &str) -> i64 {
        match self {
            Self::Sqlite(dir) => {
                rusqlite::Connection::open(dir.path().join("data").join("orders.db"))
                    .unwrap()
                    .query_row(sql, [], |r| r.get(0))
                    .unwrap()
            }
            Self::Postgres { url, .. } => postgres::Client::connect(url, postgres::NoTls)
                .unwrap()
                .query_one(sql, &[])
                .unwrap()
                .get(0),
        }
    }
}
