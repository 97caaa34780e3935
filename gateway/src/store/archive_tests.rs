//! The cold archive on both backends: the pass moves exactly the due orders, reads find them
//! wherever they are, and a pass cut short between copy and delete loses and doubles nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate_stock::{Order, OrderStatus};

use super::test_backends::each_backend;
use super::{OrderStore, Retirement};

/// Old enough for any cutoff the tests use.
const LONG_AGO: i64 = 1_000;
const CUTOFF: i64 = 10_000;
const RECENT: i64 = 20_000;

fn order(n: u64, campaign: &str, status: OrderStatus, updated_at_ms: i64) -> Order {
    let gene = n % 16;
    Order {
        order_id: (n << 8) | gene,
        campaign_id: campaign.to_owned(),
        sku: "sku".into(),
        user_id: format!("u{gene}"),
        quantity: 1,
        unit_price_cents: 100,
        status,
        version: 2,
        created_at_ms: updated_at_ms - 1,
        pay_deadline_ms: updated_at_ms + 1,
        paid_at_ms: (status == OrderStatus::Paid).then_some(updated_at_ms),
        updated_at_ms,
    }
}

fn retire(store: &dyn OrderStore, campaign: &str) {
    let retired = Retirement {
        stock_total: 1_000,
        remaining: 0,
        retired_at_ms: LONG_AGO,
    };
    store.retire_campaign(campaign, &retired).unwrap();
}

/// Runs every step of one pass; returns the orders moved.
fn pass(store: &dyn OrderStore, limit: usize) -> usize {
    let mut moved = 0;
    for shard in 0..store.shards() {
        let mut after = None;
        loop {
            let step = store.archive_step(shard, after, CUTOFF, limit).unwrap();
            assert!(step.moved <= step.scanned, "{step:?}");
            moved += step.moved;
            match step.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    moved
}

/// Every page of every user, as ids with versions, through the store's cursor.
fn all_pages(store: &dyn OrderStore) -> Vec<(u64, u32, &'static str)> {
    let mut seen = Vec::new();
    for gene in 0..16u8 {
        let user = format!("u{gene}");
        let mut before = None;
        loop {
            let page = store.orders_of_user(&user, gene, before, 7).unwrap();
            seen.extend(
                page.iter()
                    .map(|o| (o.order_id, o.version, o.status.as_str())),
            );
            if page.len() < 7 {
                break;
            }
            before = page.last().map(|o| o.order_id);
        }
    }
    seen
}

fn statuses() -> [OrderStatus; 4] {
    [
        OrderStatus::Paid,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::RefundRequired,
    ]
}

#[test]
fn a_pass_moves_exactly_the_final_old_orders_of_retired_campaigns_and_reads_do_not_change() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let mut all = Vec::new();
        // Due: retired campaign, final, old. 200 of them, every status.
        for n in 0..200 {
            all.push(order(n, "old", statuses()[n as usize % 4], LONG_AGO));
        }
        // Not due: a live campaign's old final orders, a retired campaign's recent ones.
        for n in 200..240 {
            all.push(order(n, "live", OrderStatus::Paid, LONG_AGO));
        }
        for n in 240..260 {
            all.push(order(n, "old", OrderStatus::Paid, RECENT));
        }
        store.write_batch(&all).unwrap();
        retire(store.as_ref(), "old");
        let pages = all_pages(store.as_ref());
        assert_eq!(pages.len(), 260);

        assert_eq!(pass(store.as_ref(), 16), 200, "{}", fresh.name());
        let counts = store.row_counts().unwrap();
        assert_eq!((counts.hot, counts.archived), (60, 200), "{}", fresh.name());
        // Nothing else is due: a second pass moves nothing.
        assert_eq!(pass(store.as_ref(), 16), 0);

        for o in &all {
            assert_eq!(store.get(o.order_id).unwrap().as_ref(), Some(o));
        }
        assert_eq!(all_pages(store.as_ref()), pages, "{}", fresh.name());
        let mut of_old = store.orders_of_campaign("old").unwrap();
        of_old.sort_by_key(|o| o.order_id);
        assert_eq!(of_old.len(), 220);
        assert_eq!(store.count_of_campaign("old").unwrap(), 20);

        // A late payment of an archived, expired order: updated where it is.
        let mut late = all[2].clone();
        assert_eq!(late.status, OrderStatus::Expired);
        late.status = OrderStatus::RefundRequired;
        late.version += 1;
        assert!(store.update_if_newer(&late).unwrap());
        assert!(!store.update_if_newer(&late).unwrap());
        assert_eq!(store.get(late.order_id).unwrap(), Some(late));

        // The archive outlives the process.
        drop(store);
        let store = fresh.open(4).unwrap();
        assert_eq!(store.row_counts().unwrap().archived, 200);
        assert_eq!(all_pages(store.as_ref()).len(), 260);
    });
}

#[test]
fn a_pass_cut_short_between_copy_and_delete_doubles_nothing_in_reads_and_is_finished_next_time() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let all: Vec<Order> = (0..64)
            .map(|n| order(n, "old", OrderStatus::Paid, LONG_AGO))
            .collect();
        store.write_batch(&all).unwrap();
        retire(store.as_ref(), "old");
        assert_eq!(pass(store.as_ref(), 1_000), 64);
        let pages = all_pages(store.as_ref());

        // As if a pass had copied and died before deleting: the rows are back in the hot
        // tables, one of them a version newer (paid again while both held it: a refund).
        store.write_batch(&all).unwrap();
        let mut newer = all[5].clone();
        newer.status = OrderStatus::RefundRequired;
        newer.version += 1;
        assert!(store.update_if_newer(&newer).unwrap());
        assert_eq!(store.row_counts().unwrap().hot, 64);

        // Reads show each order once, at its newest state.
        assert_eq!(store.get(newer.order_id).unwrap().as_ref(), Some(&newer));
        assert_eq!(store.get(all[6].order_id).unwrap().as_ref(), Some(&all[6]));
        let expected: Vec<_> = pages
            .iter()
            .map(|&(id, version, status)| {
                if id == newer.order_id {
                    (id, newer.version, "refund_required")
                } else {
                    (id, version, status)
                }
            })
            .collect();
        assert_eq!(all_pages(store.as_ref()), expected, "{}", fresh.name());
        assert_eq!(store.orders_of_campaign("old").unwrap().len(), 64);

        // The next pass removes the doubles, the newer state going to the archive.
        assert_eq!(pass(store.as_ref(), 1_000), 64);
        let counts = store.row_counts().unwrap();
        assert_eq!((counts.hot, counts.archived), (0, 64), "{}", fresh.name());
        assert_eq!(store.get(newer.order_id).unwrap(), Some(newer));
        assert_eq!(all_pages(store.as_ref()), expected);
    });
}

#[test]
fn the_archive_keeps_the_shard_layout() {
    each_backend(|fresh| {
        let store = fresh.open(2).unwrap();
        let all: Vec<Order> = (0..40)
            .map(|n| order(n, "old", OrderStatus::Cancelled, LONG_AGO))
            .collect();
        store.write_batch(&all).unwrap();
        retire(store.as_ref(), "old");
        assert_eq!(store.shards(), 4);
        assert_eq!(pass(store.as_ref(), 3), 40);
        // Each order is in the archive table of its hot table: gene & 3.
        for shard in 0..4 {
            let expected = all.iter().filter(|o| o.order_id & 3 == shard).count();
            assert_eq!(
                fresh.archived_in(&format!("orders_{shard:02}")),
                i64::try_from(expected).unwrap(),
                "{}",
                fresh.name()
            );
        }
    });
}

#[test]
fn another_order_under_an_archived_id_is_never_archived_over_it_nor_lost() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let archived = order(1, "old", OrderStatus::Paid, LONG_AGO);
        store.write_batch(std::slice::from_ref(&archived)).unwrap();
        retire(store.as_ref(), "old");
        assert_eq!(pass(store.as_ref(), 10), 1);
        // A different order under the same id (a clock stepped back): of another retired
        // campaign, as old, a version higher.
        let mut other = order(1, "older", OrderStatus::Cancelled, LONG_AGO);
        other.user_id = archived.user_id.clone();
        other.created_at_ms -= 7;
        other.version = 5;
        store.write_batch(std::slice::from_ref(&other)).unwrap();
        retire(store.as_ref(), "older");
        assert_eq!(pass(store.as_ref(), 10), 0, "{}", fresh.name());
        let counts = store.row_counts().unwrap();
        assert_eq!((counts.hot, counts.archived), (1, 1), "{}", fresh.name());
        assert_eq!(store.orders_of_campaign("older").unwrap(), vec![other]);
        assert_eq!(store.orders_of_campaign("old").unwrap(), vec![archived]);
    });
}

#[test]
fn a_stale_update_of_an_order_in_both_places_changes_neither() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let expired = order(3, "old", OrderStatus::Expired, LONG_AGO);
        store.write_batch(std::slice::from_ref(&expired)).unwrap();
        retire(store.as_ref(), "old");
        assert_eq!(pass(store.as_ref(), 10), 1);
        // Cut short: back in the hot table. A late payment lands there...
        store.write_batch(std::slice::from_ref(&expired)).unwrap();
        let mut late = expired.clone();
        late.status = OrderStatus::RefundRequired;
        late.version += 1;
        late.updated_at_ms += 1;
        assert!(store.update_if_newer(&late).unwrap());
        // ...and a second one of the same version must not advance the archived copy.
        let mut second = late.clone();
        second.updated_at_ms += 1;
        assert!(!store.update_if_newer(&second).unwrap(), "{}", fresh.name());
        assert_eq!(pass(store.as_ref(), 10), 1);
        assert_eq!(
            store.get(late.order_id).unwrap(),
            Some(late),
            "{}",
            fresh.name()
        );
    });
}

#[test]
fn the_store_file_is_refused_as_its_own_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let spelled = dir.path().join(".").join("orders.db");
    for archive in [&path, &spelled] {
        let refused = super::SqliteStore::open_with_archive(&path, archive, 4);
        assert!(
            matches!(refused, Err(super::StoreError::Misconfigured(_))),
            "{refused:?}"
        );
    }
    drop(super::SqliteStore::open(&path, 4).unwrap());
    let refused = super::SqliteStore::open_with_archive(&path, &spelled, 4);
    assert!(matches!(refused, Err(super::StoreError::Misconfigured(_))));
}
