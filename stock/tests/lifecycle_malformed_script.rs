//! `lua/lifecycle.lua` against a real Redis holding data of the wrong shape: every action
//! fails before its first write, and the expiry sweep neither stalls on nor loses the others.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::lifecycle::{PRICE, T0, TIMEOUT, reserved, snapshot, units_of};
use flashgate_stock::lifecycle::{cancel, expire_due, pay};
use flashgate_stock::{
    CampaignKeys, Expired, Reservation, Scripts, StockError, remaining_stock, reserve_batch,
};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

/// A reserved order whose buyers row or record is then overwritten with `row` / `record`.
async fn damaged(
    user: &str,
    row: Option<&str>,
    record: Option<&str>,
) -> (MultiplexedConnection, Scripts, CampaignKeys) {
    let (mut conn, scripts, keys, _) = reserved(user, 2).await;
    if let Some(row) = row {
        let _: () = conn.hset(&keys.buyers, user, row).await.unwrap();
    }
    if let Some(record) = record {
        let _: () = conn.hset(&keys.orders, "42", record).await.unwrap();
    }
    (conn, scripts, keys)
}

/// Records that do not have the shape `lua/reserve.lua` writes, for an order of `user`.
fn bad_records(user: &str) -> Vec<String> {
    let deadline = T0 + TIMEOUT;
    vec![
        "garbage".to_owned(),
        // A version that is not a number: today the stock comes back before that is noticed.
        format!("{user}|2|{PRICE}|SKU-T|pending_payment|v1|{T0}|{deadline}||{T0}"),
        format!("{user}|two|{PRICE}|SKU-T|pending_payment|1|{T0}|{deadline}||{T0}"),
        format!("{user}|2|{PRICE}|SKU-T|shipped|1|{T0}|{deadline}||{T0}"),
        format!("{user}|2|{PRICE}|SKU-T|pending_payment|1|{T0}|soon||{T0}"),
        format!("{user}|2|{PRICE}|SKU-T|pending_payment|1|{T0}"),
    ]
}

#[tokio::test]
async fn a_malformed_buyers_row_fails_every_releasing_action_before_any_write() {
    let mut sync = common::sync_connection();
    // cancel, the store-side repair, and a late payment: each returns the units.
    for action in ["cancel", "expire_order", "late_pay"] {
        let (mut conn, scripts, keys) = damaged("ivy", Some("garbage"), None).await;
        let before = snapshot(&mut conn, &keys).await;
        let result = match action {
            "cancel" => cancel(&mut conn, &scripts, &keys, T0 + 1, 42, "ivy").await,
            "expire_order" => flashgate_stock::lifecycle::expire_order(
                &mut sync,
                &scripts,
                &keys,
                T0 + TIMEOUT,
                42,
            ),
            _ => {
                pay(
                    &mut conn,
                    &scripts,
                    &keys,
                    T0 + TIMEOUT + 1,
                    42,
                    2 * PRICE,
                    "p-9",
                )
                .await
            }
        };
        assert!(
            matches!(result, Err(StockError::Corrupt { .. })),
            "{action}: {result:?}"
        );
        assert_eq!(
            snapshot(&mut conn, &keys).await,
            before,
            "{action}: Redis unchanged"
        );
    }
}

#[tokio::test]
async fn a_malformed_record_fails_every_action_before_any_write() {
    let mut sync = common::sync_connection();
    for record in bad_records("jo") {
        for action in ["cancel", "expire_order", "pay", "late_pay"] {
            let (mut conn, scripts, keys) = damaged("jo", None, Some(&record)).await;
            let before = snapshot(&mut conn, &keys).await;
            let result = match action {
                "cancel" => cancel(&mut conn, &scripts, &keys, T0 + 1, 42, "jo").await,
                "expire_order" => flashgate_stock::lifecycle::expire_order(
                    &mut sync,
                    &scripts,
                    &keys,
                    T0 + TIMEOUT,
                    42,
                ),
                "pay" => pay(&mut conn, &scripts, &keys, T0 + 1, 42, 2 * PRICE, "p-1").await,
                _ => {
                    pay(
                        &mut conn,
                        &scripts,
                        &keys,
                        T0 + TIMEOUT + 1,
                        42,
                        2 * PRICE,
                        "p-2",
                    )
                    .await
                }
            };
            assert!(
                matches!(result, Err(StockError::Corrupt { .. })),
                "{action} on {record:?}: {result:?}"
            );
            assert_eq!(
                snapshot(&mut conn, &keys).await,
                before,
                "{action} on {record:?}: Redis unchanged"
            );
        }
    }
}

#[tokio::test]
async fn the_expiry_sweep_leaves_a_malformed_order_untouched_and_reports_it() {
    for (row, record) in [
        (Some("garbage"), None),
        (None, Some(bad_records("kit")[1].clone())),
        (None, Some("garbage".to_owned())),
    ] {
        let (mut conn, scripts, keys) = damaged("kit", row, record.as_deref()).await;
        let before = snapshot(&mut conn, &keys).await;
        let sweep = expire_due(&mut conn, &scripts, &keys, T0 + TIMEOUT, 100, 0)
            .await
            .unwrap();
        assert_eq!(
            sweep,
            Expired {
                groups: 1,
                held_groups: 1,
                malformed: vec![42],
                ..Expired::default()
            },
            "{row:?} {record:?}"
        );
        assert_eq!(
            snapshot(&mut conn, &keys).await,
            before,
            "{row:?} {record:?}: Redis unchanged"
        );
    }
}

#[tokio::test]
async fn a_malformed_order_neither_stalls_nor_loses_the_expiry_of_the_others() {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "held", 10, 3).await;
    let one = |user, order_id| Reservation {
        user_id: user,
        order_id,
        quantity: 1,
    };
    // One deadline group of three orders, and a second group due at the same time.
    reserve_batch(
        &mut conn,
        &scripts,
        &keys,
        T0,
        &[one("la", 42), one("mo", 43), one("ned", 44)],
    )
    .await
    .unwrap();
    reserve_batch(&mut conn, &scripts, &keys, T0, &[one("oz", 45)])
        .await
        .unwrap();
    let _: () = conn.del(&keys.journal).await.unwrap();
    let _: () = conn.hset(&keys.buyers, "mo", "garbage").await.unwrap();
    let record_43: String = conn.hget(&keys.orders, "43").await.unwrap();

    // One group per call, as a sweep does when many are due: the malformed order is held, the
    // others in its group expire on time, and the next call passes over it.
    let due = T0 + TIMEOUT;
    let first = expire_due(&mut conn, &scripts, &keys, due, 1, 0)
        .await
        .unwrap();
    assert_eq!(
        first,
        Expired {
            orders: 2,
            units: 2,
            groups: 1,
            held_groups: 1,
            malformed: vec![43]
        }
    );
    let second = expire_due(&mut conn, &scripts, &keys, due, 1, 1)
        .await
        .unwrap();
    assert_eq!((second.orders, second.held_groups), (1, 0), "{second:?}");
    let last = expire_due(&mut conn, &scripts, &keys, due, 1, 1)
        .await
        .unwrap();
    assert_eq!(last, Expired::default(), "nothing else is due");

    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(9));
    let still: String = conn.hget(&keys.orders, "43").await.unwrap();
    assert_eq!(still, record_43, "the malformed order is untouched");
    let deadline: Option<f64> = conn.zscore(&keys.deadlines, "43").await.unwrap();
    assert_eq!(deadline, Some(due as f64), "and keeps its deadline entry");
    let journaled: Vec<String> = conn.smembers(&keys.journal).await.unwrap();
    assert!(!journaled.contains(&"43".to_owned()), "{journaled:?}");
    assert_eq!(journaled.len(), 3);

    // Once an operator repairs the row, the next sweep expires it like any other.
    let _: () = conn.hset(&keys.buyers, "mo", "1|43").await.unwrap();
    let repaired = expire_due(&mut conn, &scripts, &keys, due + 1, 100, 0)
        .await
        .unwrap();
    assert_eq!((repaired.orders, repaired.malformed.len()), (1, 0));
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(10));
    assert_eq!(units_of(&mut conn, &keys, "mo").await, "0|43");
}

#[tokio::test]
async fn a_malformed_stock_fails_the_sweep_before_any_write() {
    let (mut conn, scripts, keys, _) = reserved("pia", 1).await;
    for stock in ["lots", "0x10"] {
        let _: () = conn.set(&keys.stock, stock).await.unwrap();
        let before = snapshot(&mut conn, &keys).await;
        let sweep = expire_due(&mut conn, &scripts, &keys, T0 + TIMEOUT, 100, 0).await;
        assert!(
            matches!(sweep, Err(StockError::Corrupt { .. })),
            "{sweep:?}"
        );
        let cancelled = cancel(&mut conn, &scripts, &keys, T0 + 1, 42, "pia").await;
        assert!(
            matches!(cancelled, Err(StockError::Corrupt { .. })),
            "{cancelled:?}"
        );
        assert_eq!(snapshot(&mut conn, &keys).await, before, "{stock}");
    }
    // A journal of the wrong type is refused before the stock or quota moves.
    let _: () = conn.set(&keys.stock, "9").await.unwrap();
    let _: () = conn.set(&keys.journal, "not a set").await.unwrap();
    let before = snapshot(&mut conn, &keys).await;
    let cancelled = cancel(&mut conn, &scripts, &keys, T0 + 1, 42, "pia").await;
    assert!(
        matches!(cancelled, Err(StockError::Corrupt { .. })),
        "{cancelled:?}"
    );
    assert_eq!(snapshot(&mut conn, &keys).await, before);
}
