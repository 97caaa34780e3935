//! The hot side of the archive pass: a step finds the due orders of a window of one shard
//! table, has the archive copy them and deletes them; the rows each place holds.

use super::PostgresStore;
use super::queries::Query;
use crate::store::shards::TABLES;
use crate::store::{ArchiveStep, OrderStore, RowCounts, StoreError, archive};

pub(super) fn archive_step(
    store: &PostgresStore,
    shard: usize,
    after: Option<u64>,
    before_ms: i64,
    limit: usize,
) -> Result<ArchiveStep, StoreError> {
    if shard >= store.shards() {
        return Err(StoreError::Misconfigured(format!(
            "no shard {shard} of {}",
            store.shards()
        )));
    }
    let (after, n) = archive::step_bounds(after, limit);
    store.with(|pooled| {
        let window = pooled.statement(&store.pool, shard, Query::ArchiveWindow)?;
        let due = pooled.statement(&store.pool, shard, Query::ArchiveDue)?;
        let delete = pooled.statement(&store.pool, shard, Query::ArchiveDelete)?;
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
            let ids = store.archive.copy(shard, &rows)?;
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

pub(super) fn row_counts(store: &PostgresStore) -> Result<RowCounts, StoreError> {
    let hot = store.with(|pooled| {
        let mut total = 0u64;
        for table in &TABLES[..store.shards()] {
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
        archived: store.archive.row_count()?,
    })
}
