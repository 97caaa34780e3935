//! What every SQLite connection of the store needs: its settings, the archive file attached
//! to it (never the store file itself), its lock, and how a driver error becomes a
//! [`StoreError`] (retried or not).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

use crate::store::StoreError;
use crate::store::shards::MAX_SHARD_BITS;

/// How long a statement waits on a lock held by another connection before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Statements cached per connection: fewer than thirty-two kinds per shard table, so this never
/// evicts.
const STATEMENT_CACHE: usize = 32 << MAX_SHARD_BITS;

/// Settings every connection needs; not persisted in the file.
pub(super) fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Whether two paths name one file (through links or spellings), once the first exists.
pub(super) fn same_file(a: &Path, b: &Path) -> bool {
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
pub(super) fn attach(conn: &Connection, archive: &Path) -> Result<(), StoreError> {
    conn.execute(
        "ATTACH DATABASE ?1 AS archive",
        [archive.to_string_lossy().as_ref()],
    )?;
    Ok(())
}

/// Locks a connection, turning a poisoned mutex into an error: the connection itself is still
/// sound (an interrupted transaction rolls back when dropped), but the caller should know.
pub(super) fn lock<'a>(
    conn: &'a Mutex<Connection>,
    which: &str,
) -> Result<MutexGuard<'a, Connection>, StoreError> {
    conn.lock()
        .map_err(|_| StoreError::Unavailable(format!("{which} connection lock poisoned")))
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
