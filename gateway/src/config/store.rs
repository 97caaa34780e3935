//! `[store]`: where orders are kept for good (SQLite or PostgreSQL) and where their archive
//! lives; [`DatabaseUrl`], a PostgreSQL URL that is never shown.

use std::fmt;
use std::path::PathBuf;

use super::checks::Errors;
use super::raw::{RawArchive, RawStore};

/// Environment variable that overrides `store.url`.
pub const ENV_STORE_URL: &str = "FLASHGATE_STORE_URL";
/// Overrides `archive.url`, so that a password need not be written in the config file.
pub const ENV_ARCHIVE_URL: &str = "FLASHGATE_ARCHIVE_URL";

/// `[store]`: where orders are kept for good: SQLite at `path` (the embedded default), or
/// PostgreSQL at `url` (production, and whenever several gateways run).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// SQLite database file (default `data/orders.db`); unused when `url` is set.
    pub path: PathBuf,
    /// `postgres://user[:password]@host[:port]/database` (or `FLASHGATE_STORE_URL`, which wins
    /// over the file, so a password need not be in it).
    pub url: Option<DatabaseUrl>,
    /// log2 of the number of shards (0..=4, default 4): more shards, more parallel writers.
    pub shard_bits: u8,
    /// `archive.path`: the SQLite archive file (default beside `path`, `orders-archive.db`),
    /// attached to the store's connections.
    pub archive_path: PathBuf,
    /// `archive.url` (or `FLASHGATE_ARCHIVE_URL`): another PostgreSQL database for the
    /// archive; by default the archive is schema `flashgate_archive` of the store's own.
    pub archive_url: Option<DatabaseUrl>,
}

/// Where the archive of the store at `path` lives by default: beside it, `orders.db` →
/// `orders-archive.db`.
pub fn default_archive_path(path: &std::path::Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "orders".to_owned(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}-archive.db"))
}

/// A database URL. `Debug` hides it: it may carry a password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Accepts `postgres://` and `postgresql://` URLs.
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        (value.starts_with("postgres://") || value.starts_with("postgresql://"))
            .then_some(Self(value))
    }

    /// The URL itself, for the one place that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl(***)")
    }
}

/// `[store]`, with the archive's place from `[archive]` (`path`, `url`): the archive lives
/// beside the store, and every reader of the store opens both.
pub(super) fn store(
    e: &mut Errors,
    st: RawStore,
    ar: &RawArchive,
    env: &dyn Fn(&str) -> Option<String>,
) -> StoreConfig {
    let path = match st.path {
        Some(p) if p.trim().is_empty() => {
            e.push("store.path", "must not be empty");
            PathBuf::new()
        }
        p => PathBuf::from(p.unwrap_or_else(|| "data/orders.db".into())),
    };
    StoreConfig {
        archive_path: match ar.path.as_deref() {
            Some(p) if p.trim().is_empty() => {
                e.push("archive.path", "must not be empty");
                PathBuf::new()
            }
            Some(p) => PathBuf::from(p),
            None => default_archive_path(&path),
        },
        path,
        url: database_url(e, "store.url", env(ENV_STORE_URL).or(st.url)),
        archive_url: database_url(e, "archive.url", env(ENV_ARCHIVE_URL).or(ar.url.clone())),
        shard_bits: e.int("store.shard_bits", st.shard_bits, 4, 0, 4),
    }
}

/// A PostgreSQL URL from the file or the environment, checked.
fn database_url(e: &mut Errors, field: &str, raw: Option<String>) -> Option<DatabaseUrl> {
    let parsed = DatabaseUrl::new(raw?);
    if parsed.is_none() {
        e.push(field, "must be a postgres:// or postgresql:// URL");
    }
    parsed
}
