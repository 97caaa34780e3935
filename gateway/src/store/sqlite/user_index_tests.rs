//! The merged user index: a listing finds every order whether its entry is merged or still in
//! the tail, a merge moves the tail into the index, the archive pass leaves no entry behind in
//! either, and a file from before the merged index is upgraded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate_stock::{Order, OrderStatus};
use rusqlite::Connection;

use super::SqliteStore;
use super::connections::lock;
use crate::store::shards::table_of;
use crate::store::{OrderStore, Retirement};

/// The gene of the user these tests list: their orders are all in table 1.
const GENE: u8 = 1;
const TABLE: &str = "orders_01";

/// Order `n` of `user` (gene [`GENE`]), paid long ago in campaign `c`.
fn order(n: u64, user: &str) -> Order {
    Order {
        order_id: (1 << 40) | (n << 4) | u64::from(GENE),
        campaign_id: "c".into(),
        sku: "sku".into(),
        user_id: user.into(),
        quantity: 1,
        unit_price_cents: 100,
        status: OrderStatus::Paid,
        version: 2,
        created_at_ms: 1_000,
        pay_deadline_ms: 2_000,
        paid_at_ms: Some(1_500),
        updated_at_ms: 1_500,
    }
}

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("orders.db"), 4).unwrap()
}

/// A second connection on the file, to look at what the store keeps.
fn count(dir: &tempfile::TempDir, table: &str) -> i64 {
    let conn = Connection::open(dir.path().join("orders.db")).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM main.{table}"), [], |r| {
        r.get(0)
    })
    .unwrap()
}

/// Alice's order ids as a listing gives them, newest first, a page of 3 at a time.
fn listed(store: &SqliteStore) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut before = None;
    loop {
        let page = store.orders_of_user("alice", GENE, before, 3).unwrap();
        ids.extend(page.iter().map(|o| o.order_id));
        match page.last() {
            Some(last) if page.len() == 3 => before = Some(last.order_id),
            _ => return ids,
        }
    }
}

fn merge(store: &SqliteStore) -> usize {
    let mut conn = lock(&store.writer, "writer").unwrap();
    store.merge_user_tails(&mut conn).unwrap()
}

/// Alice's ids from `from` to `to`, newest first, as a listing gives them.
fn newest_first(from: u64, to: u64) -> Vec<u64> {
    (from..to)
        .rev()
        .map(|n| order(n, "alice").order_id)
        .collect()
}

#[test]
fn listings_read_the_merged_index_and_the_tail_and_the_archive_pass_clears_both() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // The first batch after opening merges; then merges wait for enough rows, so the next
    // batch stays in the tail.
    let first: Vec<_> = (0..5).map(|n| order(n, "alice")).collect();
    store.write_batch(&first).unwrap();
    store.merges.lock().unwrap().hold();
    let second: Vec<_> = (5..9)
        .map(|n| order(n, "alice"))
        .chain([order(99, "bob")])
        .collect();
    store.write_batch(&second).unwrap();
    assert_eq!(count(&dir, &format!("{TABLE}_by_user")), 5);
    assert_eq!(count(&dir, &format!("{TABLE}_user_tail")), 5);
    assert_eq!(listed(&store), newest_first(0, 9), "merged and tail alike");

    // A replayed state inserts nothing, so it adds no entry.
    store.write_batch(&second).unwrap();
    assert_eq!(count(&dir, &format!("{TABLE}_user_tail")), 5);

    assert_eq!(merge(&store), 5);
    assert_eq!(count(&dir, &format!("{TABLE}_by_user")), 10);
    assert_eq!(count(&dir, &format!("{TABLE}_user_tail")), 0);
    assert_eq!(listed(&store), newest_first(0, 9), "after the merge");

    // One more in the tail, then the campaign retires and every order moves to the archive.
    store.write_batch(&[order(9, "alice")]).unwrap();
    assert_eq!(count(&dir, &format!("{TABLE}_user_tail")), 1);
    let retired = Retirement {
        stock_total: 100,
        remaining: 89,
        retired_at_ms: 1_600,
    };
    store.retire_campaign("c", &retired).unwrap();
    let step = store.archive_step(1, None, 10_000, 100).unwrap();
    assert_eq!(step.moved, 11);
    for table in ["", "_by_user", "_user_tail"] {
        assert_eq!(count(&dir, &format!("{TABLE}{table}")), 0, "{TABLE}{table}");
    }
    assert_eq!(listed(&store), newest_first(0, 10), "from the archive");
}

#[test]
fn a_store_file_from_before_the_merged_index_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let orders: Vec<_> = (0..7).map(|n| order(n, "alice")).collect();
    {
        let store = open(&dir);
        store.write_batch(&orders).unwrap();
    }
    // The file as schema version 4 left it: a per-row user index on each hot table.
    let conn = Connection::open(dir.path().join("orders.db")).unwrap();
    for gene in 0..16 {
        let table = table_of(gene, 4);
        conn.execute_batch(&format!(
            "DROP TRIGGER {table}_user_added; DROP TRIGGER {table}_user_removed;
             DROP TABLE {table}_by_user; DROP TABLE {table}_user_tail;
             CREATE INDEX main.{table}_user ON {table} (user_id, order_id);"
        ))
        .unwrap();
    }
    conn.pragma_update(None, "user_version", 4).unwrap();
    drop(conn);

    let store = open(&dir);
    store.merges.lock().unwrap().hold();
    assert_eq!(count(&dir, &format!("{TABLE}_by_user")), 7);
    let old_indexes: i64 = Connection::open(dir.path().join("orders.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM main.sqlite_master WHERE type = 'index' AND name GLOB '*_user'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old_indexes, 0, "the per-row index is dropped");
    assert_eq!(listed(&store), newest_first(0, 7));
    // New orders reach the tail again.
    store.write_batch(&[order(7, "alice")]).unwrap();
    assert_eq!(count(&dir, &format!("{TABLE}_user_tail")), 1);
    assert_eq!(listed(&store), newest_first(0, 8));
}
