//! The archive pass over one shard table: a step copies a window's due rows into the
//! archive and deletes those it holds; and the rows each place holds.

use rusqlite::TransactionBehavior;

use super::SqliteStore;
use super::connections::lock;
use crate::store::StoreError;
use crate::store::archive::{ArchiveStep, RowCounts, step_bounds};

pub(super) fn archive_step(
    store: &SqliteStore,
    shard: usize,
    after: Option<u64>,
    before_ms: i64,
    limit: usize,
) -> Result<ArchiveStep, StoreError> {
    let sql = store.sql.get(shard).ok_or_else(|| {
        StoreError::Misconfigured(format!("no shard table {shard} in this store"))
    })?;
    let (after, n) = step_bounds(after, limit);
    let mut conn = lock(&store.writer, "writer")?;
    // One lock for the whole step: no update can slip between the copy and the delete.
    let (scanned, last): (i64, Option<i64>) = conn
        .prepare_cached(&sql.window)?
        .query_row(rusqlite::params![after, n], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let Some(last) = last else {
        return Ok(ArchiveStep::default());
    };
    // Two transactions, copy first: across attached WAL files one transaction is atomic
    // per file only, so a single one could commit the delete and lose the copy.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached(&sql.copy)?
        .execute(rusqlite::params![after, last, before_ms])?;
    tx.commit()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let moved = tx
        .prepare_cached(&sql.delete_copied)?
        .execute(rusqlite::params![after, last])?;
    tx.commit()?;
    Ok(ArchiveStep {
        scanned: usize::try_from(scanned).unwrap_or(0),
        moved,
        next: (scanned == n).then(|| u64::try_from(last).unwrap_or(0)),
    })
}

pub(super) fn row_counts(store: &SqliteStore) -> Result<RowCounts, StoreError> {
    let conn = lock(&store.reader, "reader")?;
    let mut counts = RowCounts::default();
    for sql in &store.sql {
        let hot: i64 = conn
            .prepare_cached(&sql.count_hot)?
            .query_row([], |r| r.get(0))?;
        let archived: i64 = conn
            .prepare_cached(&sql.count_archived)?
            .query_row([], |r| r.get(0))?;
        counts.hot += u64::try_from(hot).unwrap_or(0);
        counts.archived += u64::try_from(archived).unwrap_or(0);
    }
    Ok(counts)
}
