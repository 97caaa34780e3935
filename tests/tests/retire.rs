//! `stock::retire`: a settled campaign of 100,000 orders read and removed on a private Redis,
//! whose memory must come back; a bucketed campaign removed from every bucket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate::store::{OrderStore, SqliteStore};
use flashgate_stock::retire::{self, Fence, Settlement};
use flashgate_stock::{
    CampaignKeys, CampaignLayout, CampaignSpec, OpenPermit, Reservation, ReserveOutcome, Scripts,
    journal, lifecycle, open_campaign, reserve_batch,
};
use flashgate_tests::redis_memory::{campaign_keys, used_memory};
use flashgate_tests::redis_server::RedisServer;

const NOW: i64 = 1_800_000_000_000;
const ORDERS: u64 = 100_000;

/// A private Redis without an AOF: the memory measured is this test's alone, and 100,000
/// orders need no fsync each.
fn private_redis() -> RedisServer {
    RedisServer::start_with(&["--appendonly", "no"])
}

/// Puts `layout`'s campaign on sale the way a gateway does: with the permit of a real store's
/// ledger (the store's directory is returned, to keep alive). Priced 100, paid within a minute,
/// on sale forever.
async fn open_on_sale(
    conn: &mut redis::aio::MultiplexedConnection,
    layout: &CampaignLayout,
    stock: u64,
    per_user_limit: u32,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("orders.db"), 0).unwrap();
    let ledger: &dyn OrderStore = &store;
    let permit = OpenPermit::claim(ledger, &layout.campaign_id, stock)
        .unwrap()
        .unwrap();
    let spec = CampaignSpec {
        sku: "SKU-R".into(),
        unit_price_cents: 100,
        per_user_limit,
        pay_timeout_ms: 60_000,
        start_ms: 0,
        end_ms: i64::MAX,
        stock,
        buckets: layout.count(),
    };
    open_campaign(conn, &Scripts::new(), &layout.buckets[0], &spec, permit)
        .await
        .unwrap();
    dir
}

#[tokio::test]
async fn a_settled_campaign_of_100k_orders_leaves_redis_and_its_memory_comes_back() {
    let redis = private_redis();
    let client = redis.client();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut sync = client.get_connection().unwrap();
    let scripts = Scripts::new();
    let layout = CampaignLayout::new("retire-100k", 1);
    let keys = &layout.buckets[0];
    let before = used_memory(&mut conn).await;

    let _store = open_on_sale(&mut conn, &layout, ORDERS, 1).await;
    sell_every_unit(&mut conn, &scripts, keys).await;
    // Every order pending and journaled: nothing may go yet.
    let held = retire::settlement(&mut conn, &layout, 1_000).await.unwrap();
    assert_eq!(
        held,
        Settlement {
            orders: ORDERS,
            pending: ORDERS,
            journaled: ORDERS,
            ..Settlement::default()
        }
    );
    assert!(!held.is_settled());

    settle_every_order(&mut conn, &mut sync, &scripts, keys).await;
    let settled = retire::settlement(&mut conn, &layout, 1_000).await.unwrap();
    assert_eq!(
        settled,
        Settlement {
            orders: ORDERS,
            ..Settlement::default()
        }
    );
    assert!(settled.is_settled());
    let full = used_memory(&mut conn).await;
    assert!(
        full > before + 10 * 1024 * 1024,
        "100,000 orders take Redis memory: {before} → {full}"
    );

    // Removed twice: the second pass (after a crash, say) finds nothing left to do.
    retire::remove(&mut conn, &layout).await.unwrap();
    retire::remove(&mut conn, &layout).await.unwrap();
    let after = used_memory(&mut conn).await;
    assert!(
        after <= before + 1024 * 1024,
        "memory back within 1 MB of before the campaign: {before} → {full} → {after}"
    );
    let left = campaign_keys(&mut conn, "retire-100k").await;
    assert!(left.is_empty(), "{left:?}");
    // Nothing sells after it: the scripts answer that the campaign is not loaded.
    let out = reserve_batch(
        &mut conn,
        &scripts,
        keys,
        NOW,
        &[Reservation {
            user_id: "late",
            order_id: 9,
            quantity: 1,
        }],
    )
    .await
    .unwrap();
    assert_eq!(out, [ReserveOutcome::NotLoaded]);
}

#[tokio::test]
async fn every_bucket_of_a_bucketed_campaign_is_read_and_removed() {
    let redis = private_redis();
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let layout = CampaignLayout::new("retire-buckets", 4);
    // One pending order's record and a transfer left in two different buckets.
    let record = "u|1|100|SKU|pending_payment|1|1|2||1";
    redis::pipe()
        .hset(&layout.buckets[2].orders, 42, record)
        .hset(&layout.buckets[3].transfers, "3.1.1", "5|0|1")
        .set(&layout.buckets[1].meta, "x")
        .exec_async(&mut conn)
        .await
        .unwrap();
    let held = retire::settlement(&mut conn, &layout, 10).await.unwrap();
    assert_eq!((held.orders, held.pending, held.transfers), (1, 1, 1));
    // An order the store refused for good, set aside: its state is in Redis only.
    redis::cmd("HSET")
        .arg(&layout.buckets[1].poisoned)
        .arg(7)
        .arg("refused")
        .exec_async(&mut conn)
        .await
        .unwrap();
    let held = retire::settlement(&mut conn, &layout, 10).await.unwrap();
    assert_eq!(held.set_aside, 1);
    assert!(!held.is_settled());

    retire::remove(&mut conn, &layout).await.unwrap();
    let left = campaign_keys(&mut conn, "retire-buckets").await;
    assert!(left.is_empty(), "{left:?}");
    let none = retire::settlement(&mut conn, &layout, 10).await.unwrap();
    assert_eq!(none, Settlement::default());
}

/// The fence: one retirement holds it (a second is told who does, until the first goes stale),
/// and while it stands nothing sells and no order changes; lifted, the campaign is as before.
#[tokio::test]
async fn a_fenced_campaign_sells_nothing_and_changes_no_order_until_unfenced() {
    let redis = private_redis();
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let scripts = Scripts::new();
    let layout = CampaignLayout::new("retire-fence", 2);
    let _store = open_on_sale(&mut conn, &layout, 10, 2).await;
    let keys = &layout.buckets[0];
    let buy = |order_id| Reservation {
        user_id: "u",
        order_id,
        quantity: 1,
    };
    let out = reserve_batch(&mut conn, &scripts, keys, NOW, &[buy(16)])
        .await
        .unwrap();
    assert!(matches!(out[..], [ReserveOutcome::Accepted(_)]), "{out:?}");

    let fencing = conn.clone();
    let fence = |holder: &'static str, now: i64| {
        let (mut conn, scripts, layout) = (fencing.clone(), scripts.clone(), layout.clone());
        async move {
            retire::fence(&mut conn, &scripts, &layout, holder, now, 1_000)
                .await
                .unwrap()
        }
    };
    assert_eq!(fence("a", NOW).await, Fence::Taken);
    assert_eq!(fence("a", NOW + 500).await, Fence::Taken, "renewed");
    assert_eq!(
        fence("b", NOW + 1_000).await,
        Fence::HeldBy(format!("a|{}", NOW + 500))
    );
    nothing_changes_while_fenced(&mut conn, &scripts, &layout).await;
    // Another's release leaves it; a holder silent past the stale age loses it.
    retire::unfence(&mut conn, &scripts, &layout, "b")
        .await
        .unwrap();
    assert_eq!(
        fence("b", NOW + 1_000).await,
        Fence::HeldBy(format!("a|{}", NOW + 500))
    );
    assert_eq!(fence("b", NOW + 1_500).await, Fence::Taken, "taken over");
    retire::unfence(&mut conn, &scripts, &layout, "b")
        .await
        .unwrap();
    let paid = lifecycle::pay(&mut conn, &scripts, keys, NOW, 16, 100, "p")
        .await
        .unwrap();
    assert!(
        matches!(paid, flashgate_stock::Transition::Paid(_)),
        "{paid:?}"
    );
    let payments = retire::payments(&mut conn, &layout, 10).await.unwrap();
    assert_eq!(
        payments,
        [flashgate_stock::PaymentRecord {
            payment_id: "p".into(),
            order_id: 16,
            amount_cents: 100,
            outcome: flashgate_stock::PaymentOutcome::Paid,
        }]
    );
    // Removed, it is as fenced for good: what still asks gets "retiring", never a change.
    retire::remove(&mut conn, &layout).await.unwrap();
    assert_eq!(fence("a", NOW).await, Fence::Gone);
}

/// One unit to each of `ORDERS` users, 64 a batch, every one accepted.
async fn sell_every_unit(
    conn: &mut redis::aio::MultiplexedConnection,
    scripts: &Scripts,
    keys: &CampaignKeys,
) {
    let users: Vec<String> = (0..ORDERS).map(|n| format!("user-{n}")).collect();
    for chunk in (0..ORDERS).collect::<Vec<_>>().chunks(64) {
        let batch: Vec<Reservation<'_>> = chunk
            .iter()
            .map(|&n| Reservation {
                user_id: &users[n as usize],
                order_id: 1_000_000 + n,
                quantity: 1,
            })
            .collect();
        let out = reserve_batch(conn, scripts, keys, NOW, &batch)
            .await
            .unwrap();
        assert!(out.iter().all(|o| matches!(o, ReserveOutcome::Accepted(_))));
    }
}

/// Settle them all: every order expires, and the store "takes" each one (the journal acked
/// at the version the expiry wrote).
async fn settle_every_order(
    conn: &mut redis::aio::MultiplexedConnection,
    sync: &mut redis::Connection,
    scripts: &Scripts,
    keys: &CampaignKeys,
) {
    let expired_at = NOW + 120_000;
    let mut expired = 0;
    loop {
        let step = lifecycle::expire_due(conn, scripts, keys, expired_at, 20, 0)
            .await
            .unwrap();
        if step.orders == 0 {
            break;
        }
        expired += step.orders;
    }
    assert_eq!(expired, ORDERS);
    let mut cursor = 0;
    loop {
        let (next, ids) = journal::scan(sync, keys, cursor, 5_000).unwrap();
        let written: Vec<(u64, u32)> = ids.iter().map(|&id| (id, 2)).collect();
        journal::ack(sync, scripts, keys, &written).unwrap();
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

/// Fenced: no sale, no payment, no cancellation, in any bucket.
async fn nothing_changes_while_fenced(
    conn: &mut redis::aio::MultiplexedConnection,
    scripts: &Scripts,
    layout: &CampaignLayout,
) {
    let keys = &layout.buckets[0];
    let buy = |order_id| Reservation {
        user_id: "u",
        order_id,
        quantity: 1,
    };
    for bucket in &layout.buckets {
        let out = reserve_batch(conn, scripts, bucket, NOW, &[buy(17)])
            .await
            .unwrap();
        assert_eq!(out, [ReserveOutcome::NotLoaded]);
    }
    let paid = lifecycle::pay(conn, scripts, keys, NOW, 16, 100, "p")
        .await
        .unwrap();
    assert_eq!(paid, flashgate_stock::Transition::Retiring);
    let cancelled = lifecycle::cancel(conn, scripts, keys, NOW, 16, "u")
        .await
        .unwrap();
    assert_eq!(cancelled, flashgate_stock::Transition::Retiring);
}
