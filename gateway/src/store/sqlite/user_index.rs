//! The hot tables' user index, merged in bulk (BENCHMARKS.md §10).
//!
//! A flash's buyers are new: each one's `(user_id, order_id)` entry lands on a random leaf page
//! of a B-tree index, so an index written with every batch writes one page per order (twice:
//! into the WAL, then at the checkpoint), two-thirds of the store's CPU per order. Here the
//! order's insert appends `(order_id, user_id)` to its table's tail instead (ids rise with
//! time, so a batch touches a few pages), and every [`MERGE_AGE`] or [`MERGE_ROWS`] the tails
//! are merged, sorted, into `{table}_by_user`: each leaf page written once per merge for all
//! its new entries, as an LSM tree merges.
//!
//! Triggers keep both in step with the table, so no write path can go around them: an insert
//! adds the tail entry, a delete (the archive pass) removes the order's entries from both. A
//! listing reads the merged index and the tail (see `queries.rs`, `by_user`), so what a batch
//! committed is listed at once.

use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use crate::store::StoreError;

/// The longest the tails grow before a merge, in rows written: a listing scans its table's
/// tail (about a sixteenth of this with the default 16 tables).
pub(super) const MERGE_ROWS: usize = 65_536;
/// The longest between merges while orders are written: a few seconds of a flash, where
/// merging every 1–4 s costs 40–60% of the per-batch index.
pub(super) const MERGE_AGE: Duration = Duration::from_secs(2);

/// Creates `table`'s merged index, its tail and the triggers that feed them. With `existing`
/// (a file from before the merged index) the old per-row index is moved into the merged one
/// and dropped.
pub(super) fn create(tx: &Connection, table: &str, existing: bool) -> Result<(), StoreError> {
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS main.{table}_by_user (
            user_id TEXT NOT NULL,
            order_id INTEGER NOT NULL,
            PRIMARY KEY (user_id, order_id)
        ) WITHOUT ROWID, STRICT;
        CREATE TABLE IF NOT EXISTS main.{table}_user_tail (
            order_id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL
        ) STRICT;
        CREATE TRIGGER IF NOT EXISTS main.{table}_user_added AFTER INSERT ON {table} BEGIN
            INSERT OR REPLACE INTO {table}_user_tail (order_id, user_id)
                VALUES (new.order_id, new.user_id);
        END;
        CREATE TRIGGER IF NOT EXISTS main.{table}_user_removed AFTER DELETE ON {table} BEGIN
            DELETE FROM {table}_by_user WHERE user_id = old.user_id AND order_id = old.order_id;
            DELETE FROM {table}_user_tail WHERE order_id = old.order_id;
        END;"
    ))?;
    if existing {
        tx.execute_batch(&format!(
            "INSERT OR IGNORE INTO main.{table}_by_user (user_id, order_id)
                SELECT user_id, order_id FROM main.{table} ORDER BY user_id, order_id;
            DROP INDEX IF EXISTS main.{table}_user;"
        ))?;
    }
    Ok(())
}

/// The two statements of one table's merge.
#[derive(Debug)]
pub(super) struct MergeSql {
    /// The tail's entries into the merged index, sorted so each leaf page is visited once.
    merge: String,
    clear: String,
}

impl MergeSql {
    pub(super) fn new(table: &str) -> Self {
        Self {
            merge: format!(
                "INSERT OR IGNORE INTO main.{table}_by_user (user_id, order_id) \
                 SELECT user_id, order_id FROM main.{table}_user_tail ORDER BY user_id, order_id"
            ),
            clear: format!("DELETE FROM main.{table}_user_tail"),
        }
    }
}

/// Merges every table's tail into its index and empties it, in one transaction (a crash
/// leaves both as they were); returns the entries merged.
pub(super) fn merge<'a>(
    conn: &mut Connection,
    tables: impl IntoIterator<Item = &'a MergeSql>,
) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut merged = 0;
    for sql in tables {
        merged += tx.prepare_cached(&sql.merge)?.execute([])?;
        tx.prepare_cached(&sql.clear)?.execute([])?;
    }
    tx.commit()?;
    Ok(merged)
}

/// When the tails are due a merge: rows written since the last one, and its time.
#[derive(Debug, Default)]
pub(super) struct Cadence {
    unmerged: usize,
    /// None until the first merge, so the first batch after opening merges what a stop or a
    /// crash left in the tails.
    merged_at: Option<Instant>,
}

impl Cadence {
    /// Counts `rows` written; whether the tails are due a merge now.
    pub(super) fn due(&mut self, rows: usize) -> bool {
        self.unmerged += rows;
        self.unmerged >= MERGE_ROWS || self.merged_at.is_none_or(|at| at.elapsed() >= MERGE_AGE)
    }

    /// Starts the count again, at a merge (or a failed one, retried at the next due time).
    pub(super) fn restart(&mut self) {
        self.unmerged = 0;
        self.merged_at = Some(Instant::now());
    }

    /// Merges only by rows from now on, as if the last merge were just now forever: a test
    /// that looks at the tail is not at the mercy of a slow machine's seconds.
    #[cfg(test)]
    pub(super) fn hold(&mut self) {
        self.merged_at = Instant::now().checked_add(Duration::from_secs(1 << 30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_is_due_after_enough_rows_or_time_and_at_the_first_batch() {
        let mut cadence = Cadence::default();
        assert!(cadence.due(1), "the first batch merges what a crash left");
        cadence.restart();
        assert!(!cadence.due(MERGE_ROWS - 1));
        assert!(cadence.due(1));
        cadence.restart();
        cadence.merged_at = Instant::now().checked_sub(MERGE_AGE);
        assert!(cadence.due(1));
    }
}
