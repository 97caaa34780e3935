//! `lua/transfer.lua` and the bucket functions over it, against a real Redis: a campaign split
//! into buckets opens with its shares, a dry bucket borrows from a donor, a transfer is credited
//! once however often it is repeated, a repair finishes what a crash cut in half, and the
//! census adds up at every step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use flashgate_stock::buckets::{self, Census};
use flashgate_stock::{
    CampaignLayout, Reservation, ReserveOutcome, Scripts, StockChange, apply_settings,
    open_campaign, reserve_batch, set_stock_total,
};

const NOW: i64 = 1_800_000_000_000;

async fn bucketed(
    conn: &mut redis::aio::MultiplexedConnection,
    stock: u64,
    count: u32,
) -> (Scripts, CampaignLayout) {
    let scripts = Scripts::new();
    let first = common::unique_campaign("buckets");
    let layout = CampaignLayout::new(&first.campaign_id, count);
    let mut spec = common::spec(stock, 1);
    spec.buckets = count;
    let loaded = open_campaign(conn, &scripts, &first, &spec, common::permit(&first))
        .await
        .unwrap();
    assert_eq!((loaded.stock_total, loaded.buckets), (stock, count));
    (scripts, layout)
}

async fn census(conn: &mut redis::aio::MultiplexedConnection, layout: &CampaignLayout) -> Census {
    Census::take(conn, &Scripts::new(), layout).await.unwrap()
}

#[tokio::test]
async fn a_campaign_opens_split_into_its_buckets_and_keeps_its_count() {
    let mut conn = common::connection().await;
    let (scripts, layout) = bucketed(&mut conn, 10, 4).await;
    let c = census(&mut conn, &layout).await;
    let stocks: Vec<i64> = c.buckets.iter().map(|b| b.stock.unwrap()).collect();
    assert_eq!(stocks, [3, 3, 2, 2]);
    assert_eq!((c.total(), c.left(), c.pending()), (10, 10, 0));

    // A reload asking for another count keeps the one the campaign was opened with: a user's
    // home bucket, where their limit is counted, never moves.
    let mut spec = common::spec(999, 1);
    spec.buckets = 8;
    let loaded = apply_settings(&mut conn, &scripts, layout.first(), &spec)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (loaded.buckets, loaded.stock_total, loaded.created),
        (4, 10, false)
    );
    assert_eq!(
        buckets::live_count(&mut conn, &layout.campaign_id)
            .await
            .unwrap(),
        Some(4)
    );
}

/// A transfer's three steps (take, credit, forget) told in order, each followed by its census.
/// Long on purpose: the steps share one transfer and one Redis state, and the census between
/// them is the point, so splitting would scatter the story.
#[tokio::test]
async fn a_dry_bucket_borrows_and_every_step_conserves_the_total() {
    let mut conn = common::connection().await;
    let (scripts, layout) = bucketed(&mut conn, 4, 4).await;
    let home = &layout.buckets[1];
    let buy = |user: &'static str, order_id: u64| {
        [Reservation {
            user_id: user,
            order_id,
            quantity: 1,
        }]
    };
    let sold = reserve_batch(&mut conn, &scripts, home, NOW, &buy("a", 17))
        .await
        .unwrap();
    assert!(matches!(sold[0], ReserveOutcome::Accepted(_)));
    let dry = reserve_batch(&mut conn, &scripts, home, NOW, &buy("b", 33))
        .await
        .unwrap();
    assert_eq!(
        dry[0],
        ReserveOutcome::SoldOut,
        "the home bucket alone is dry"
    );
    assert!(census(&mut conn, &layout).await.conserved(4, 1));

    // Step 1: taken from bucket 2, pending, in no bucket's stock.
    let (transfer, pending) = buckets::take(&mut conn, &scripts, &layout.buckets[2], 1, 5, NOW)
        .await
        .unwrap();
    let transfer = transfer.unwrap();
    assert_eq!(
        (transfer.units, transfer.donor, transfer.home, pending),
        (1, 2, 1, 1)
    );
    let c = census(&mut conn, &layout).await;
    assert_eq!(
        (c.pending(), c.buckets[2].stock, c.buckets[1].stock),
        (1, Some(0), Some(0))
    );
    assert!(c.conserved(4, 1), "{c:?}");

    // Step 2, twice (a repair racing the normal path): credited once.
    assert!(
        buckets::credit(&mut conn, &scripts, home, &transfer)
            .await
            .unwrap()
    );
    assert!(
        !buckets::credit(&mut conn, &scripts, home, &transfer)
            .await
            .unwrap()
    );
    let c = census(&mut conn, &layout).await;
    assert_eq!(c.buckets[1].stock, Some(1));
    assert_eq!(
        c.pending(),
        0,
        "credited: no longer pending, though the donor still records it"
    );
    // Credited, not yet forgotten: counted once, in the home's stock.
    assert_eq!(c.buckets[2].unforgotten, 1);
    assert!(c.conserved(4, 1), "{c:?}");

    // Step 3: forgotten; the borrowed unit sells in the home bucket.
    buckets::forget(&mut conn, &scripts, &layout.buckets[2], &transfer.id)
        .await
        .unwrap();
    let c = census(&mut conn, &layout).await;
    assert!(c.conserved(4, 1), "{c:?}");
    let sold = reserve_batch(&mut conn, &scripts, home, NOW, &buy("b", 33))
        .await
        .unwrap();
    assert!(matches!(sold[0], ReserveOutcome::Accepted(_)));
    assert!(census(&mut conn, &layout).await.conserved(4, 2));

    // An empty donor gives nothing.
    let (none, _) = buckets::take(&mut conn, &scripts, &layout.buckets[2], 1, 5, NOW)
        .await
        .unwrap();
    assert_eq!(none, None);
}

#[tokio::test]
async fn a_repair_finishes_transfers_a_crash_cut_in_half_and_only_once() {
    let mut conn = common::connection().await;
    let (scripts, layout) = bucketed(&mut conn, 8, 2).await;
    // Crash after step 1: taken, never credited.
    let (cut, _) = buckets::take(&mut conn, &scripts, &layout.buckets[0], 1, 3, NOW)
        .await
        .unwrap();
    let cut = cut.unwrap();
    // Crash after step 2: credited, never forgotten.
    let (half, _) = buckets::take(&mut conn, &scripts, &layout.buckets[1], 0, 2, NOW)
        .await
        .unwrap();
    let half = half.unwrap();
    buckets::credit(&mut conn, &scripts, &layout.buckets[0], &half)
        .await
        .unwrap();
    assert!(census(&mut conn, &layout).await.conserved(8, 0));

    // Too young to repair: left to the normal path.
    assert_eq!(
        buckets::repair(&mut conn, &scripts, &layout, NOW - 1)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        buckets::repair(&mut conn, &scripts, &layout, NOW)
            .await
            .unwrap(),
        2
    );
    let c = census(&mut conn, &layout).await;
    assert_eq!(c.pending(), 0);
    assert_eq!(
        (c.buckets[0].stock, c.buckets[1].stock),
        (Some(4 - 3 + 2), Some(4 + 3 - 2)),
        "each transfer credited exactly once"
    );
    assert!(c.conserved(8, 0));
    assert_eq!(
        buckets::repair(&mut conn, &scripts, &layout, NOW)
            .await
            .unwrap(),
        0
    );
    // The normal path arriving late after the repair changes nothing.
    assert!(
        !buckets::credit(&mut conn, &scripts, &layout.buckets[1], &cut)
            .await
            .unwrap()
    );
    assert!(census(&mut conn, &layout).await.conserved(8, 0));
}

#[tokio::test]
async fn the_stock_of_a_bucketed_campaign_changes_in_bucket_zero() {
    let mut conn = common::connection().await;
    let (scripts, layout) = bucketed(&mut conn, 8, 2).await;
    let change = set_stock_total(&mut conn, &scripts, &layout, 12)
        .await
        .unwrap();
    assert_eq!(
        change,
        StockChange::Applied {
            before: 8,
            taken: 0,
            left: 12
        }
    );
    let c = census(&mut conn, &layout).await;
    assert_eq!(
        (c.total(), c.buckets[0].stock, c.buckets[1].stock),
        (12, Some(8), Some(4))
    );
    // A repeated request (a retry, a second gateway) changes nothing more.
    let again = set_stock_total(&mut conn, &scripts, &layout, 12)
        .await
        .unwrap();
    assert!(
        matches!(again, StockChange::Applied { before: 12, .. }),
        "{again:?}"
    );
    assert_eq!(census(&mut conn, &layout).await.total(), 12);
    // Bucket 0 holds 8 for sale: the total can fall to 4, not below.
    let refused = set_stock_total(&mut conn, &scripts, &layout, 3)
        .await
        .unwrap();
    assert_eq!(
        refused,
        StockChange::BelowTaken {
            total: 12,
            taken: 4
        }
    );
    let lowered = set_stock_total(&mut conn, &scripts, &layout, 4)
        .await
        .unwrap();
    assert!(
        matches!(lowered, StockChange::Applied { left: 4, .. }),
        "{lowered:?}"
    );
}

#[tokio::test]
async fn a_dry_home_borrows_from_the_other_buckets_until_none_is_left() {
    let mut conn = common::connection().await;
    let (scripts, layout) = bucketed(&mut conn, 8, 4).await;
    // Bucket 1 takes what it needs and half a full donor's stock: stock drifts to the buyers.
    let got = buckets::borrow(&mut conn, &scripts, &layout, 1, 1, NOW)
        .await
        .unwrap();
    assert_eq!((got.units, got.transfers), (1, 1));
    let got = buckets::borrow(&mut conn, &scripts, &layout, 1, 100, NOW)
        .await
        .unwrap();
    assert_eq!(got.units, 5, "every unit of the other buckets");
    let c = census(&mut conn, &layout).await;
    assert_eq!(c.buckets[1].stock, Some(8));
    assert!(c.conserved(8, 0), "{c:?}");

    // A transfer a crash left pending toward another home is finished before "nothing left".
    let (cut, _) = buckets::take(&mut conn, &scripts, &layout.buckets[1], 3, 8, NOW)
        .await
        .unwrap();
    assert_eq!(
        cut.unwrap().units,
        8,
        "all of bucket 1's stock, pending toward bucket 3"
    );
    let got = buckets::borrow(&mut conn, &scripts, &layout, 0, 1, NOW)
        .await
        .unwrap();
    assert_eq!(
        (got.repaired, got.units),
        (1, 4),
        "finished, then half of it: {got:?}"
    );
    let c = census(&mut conn, &layout).await;
    assert_eq!(c.pending(), 0);
    assert!(c.conserved(8, 0), "{c:?}");
}

#[tokio::test]
async fn a_rebuild_fences_every_bucket_and_a_late_credit_changes_nothing() {
    let mut conn = common::connection().await;
    let (scripts, layout) = bucketed(&mut conn, 8, 2).await;
    // A gateway took units for bucket 1 and has not credited them when the rebuild starts.
    let (late, _) = buckets::take(&mut conn, &scripts, &layout.buckets[0], 1, 1, NOW)
        .await
        .unwrap();
    let late = late.unwrap();
    let mut spec = common::spec(8, 1);
    spec.buckets = 2;
    let rebuilt = flashgate_stock::rebuild_campaign(&mut conn, &scripts, &layout, &spec, &[])
        .await
        .unwrap();
    assert_eq!((rebuilt.stock_total, rebuilt.left), (8, 8));
    // Its credit lands after the rebuild: already counted by the settle, so nothing changes.
    assert!(
        !buckets::credit(&mut conn, &scripts, &layout.buckets[1], &late)
            .await
            .unwrap()
    );
    let c = census(&mut conn, &layout).await;
    assert_eq!((c.total(), c.left(), c.pending()), (8, 8, 0), "{c:?}");
    // And it sells on: the stock change reads the campaign total the rebuild wrote.
    let change = set_stock_total(&mut conn, &scripts, &layout, 9)
        .await
        .unwrap();
    assert!(
        matches!(
            change,
            StockChange::Applied {
                before: 8,
                left: 9,
                ..
            }
        ),
        "{change:?}"
    );
}
