//! Every script raises its errors before its first write: data of the wrong shape in Redis (a
//! key of the wrong type, a garbled value) fails the call and leaves Redis exactly as it was.
//! (`lua/lifecycle.lua`'s cases are in `lifecycle_malformed_script.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use flashgate_stock::journal::{retry_poisoned, set_aside};
use flashgate_stock::{CampaignKeys, Reservation, StockError, reserve_batch};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

const NOW: i64 = 1_800_000_000_000;

/// Every key of the campaign as `DUMP` serialises it (None: absent).
async fn snapshot(conn: &mut MultiplexedConnection, keys: &CampaignKeys) -> Vec<Option<Vec<u8>>> {
    let mut all = Vec::new();
    for key in keys.all() {
        let dumped: Option<Vec<u8>> = redis::cmd("DUMP").arg(key).query_async(conn).await.unwrap();
        all.push(dumped);
    }
    all
}

/// What is damaged, which key, and the value written there.
type Damage = (&'static str, fn(&CampaignKeys) -> &String, &'static str);

#[tokio::test]
async fn a_reservation_over_malformed_data_writes_nothing() {
    let damage: [Damage; 4] = [
        ("deadlines of the wrong type", |k| &k.deadlines, "x"),
        ("journal of the wrong type", |k| &k.journal, "x"),
        ("stock Redis cannot decrement", |k| &k.stock, "0x10"),
        ("garbled stock", |k| &k.stock, "lots"),
    ];
    for (what, key, value) in damage {
        let mut conn = common::connection().await;
        let (scripts, keys) = common::loaded_campaign(&mut conn, "badres", 10, 2).await;
        let key = key(&keys).to_owned();
        let _: () = conn.set(&key, value).await.unwrap();
        let before = snapshot(&mut conn, &keys).await;
        let batch = [Reservation {
            user_id: "una",
            order_id: 7,
            quantity: 1,
        }];
        let result = reserve_batch(&mut conn, &scripts, &keys, NOW, &batch).await;
        assert!(
            matches!(result, Err(StockError::Corrupt { .. })),
            "{what}: {result:?}"
        );
        assert_eq!(snapshot(&mut conn, &keys).await, before, "{what}");
    }

    // A buyer's garbled row: refused as malformed, nothing written.
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "badrow", 10, 2).await;
    let _: () = conn.hset(&keys.buyers, "una", "garbage").await.unwrap();
    let before = snapshot(&mut conn, &keys).await;
    let batch = [Reservation {
        user_id: "una",
        order_id: 8,
        quantity: 1,
    }];
    let result = reserve_batch(&mut conn, &scripts, &keys, NOW, &batch).await;
    assert!(
        matches!(result, Err(StockError::Corrupt { .. })),
        "{result:?}"
    );
    assert_eq!(snapshot(&mut conn, &keys).await, before);
}

#[tokio::test]
async fn setting_aside_and_retrying_with_a_journal_of_the_wrong_type_write_nothing() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "badjournal", 10, 2).await;
    let mut sync = common::sync_connection();
    let _: () = conn.hset(&keys.poisoned, "9", "refused").await.unwrap();
    let _: () = conn.set(&keys.journal, "not a set").await.unwrap();

    let before = snapshot(&mut conn, &keys).await;
    let aside = set_aside(&mut sync, &scripts, &keys, 5, 1, "store said no");
    assert!(
        matches!(aside, Err(StockError::Corrupt { .. })),
        "{aside:?}"
    );
    assert_eq!(snapshot(&mut conn, &keys).await, before, "set_aside");

    let retried = retry_poisoned(&mut conn, &scripts, &keys, 9).await;
    assert!(
        matches!(retried, Err(StockError::Corrupt { .. })),
        "{retried:?}"
    );
    assert_eq!(
        snapshot(&mut conn, &keys).await,
        before,
        "retry: the order stays set aside, never lost from both"
    );
}
