//! `lua/lifecycle.lua` against a real Redis: every transition, and that no unit comes back twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use flashgate_stock::lifecycle::{cancel, expire_due, pay};
use flashgate_stock::{
    CampaignKeys, Expired, Order, OrderStatus, PaymentOutcome, Reservation, ReserveOutcome,
    Scripts, StockError, Transition, remaining_stock, reserve_batch,
};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

const T0: i64 = 1_800_000_000_000;
const TIMEOUT: i64 = 60_000; // common::spec's payment timeout
const PRICE: i64 = 1999;

/// A campaign of 10 units (limit 3) where `user` holds an order of `qty` units reserved at T0.
async fn reserved(user: &str, qty: u32) -> (MultiplexedConnection, Scripts, CampaignKeys, Order) {
    let mut conn = common::connection().await;
    let (scripts, keys) = common::loaded_campaign(&mut conn, "life", 10, 3).await;
    let batch = [Reservation {
        user_id: user,
        order_id: 42,
        quantity: qty,
    }];
    let mut out = reserve_batch(&mut conn, &scripts, &keys, T0, &batch)
        .await
        .unwrap();
    let ReserveOutcome::Accepted(order) = out.remove(0) else {
        panic!("not accepted")
    };
    let _: () = conn.del(&keys.journal).await.unwrap(); // as if persisted
    (conn, scripts, keys, order)
}

async fn units_of(conn: &mut MultiplexedConnection, keys: &CampaignKeys, user: &str) -> String {
    conn.hget(&keys.buyers, user).await.unwrap()
}

#[tokio::test]
async fn paying_in_time_sells_the_unit_and_every_other_payment_is_on_record() {
    let (mut conn, scripts, keys, _) = reserved("ann", 2).await;
    let wrong = pay(&mut conn, &scripts, &keys, T0 + 1, 42, PRICE, "p-wrong")
        .await
        .unwrap();
    assert!(matches!(wrong, Transition::AmountMismatch(ref o) if o.version == 1));

    let paid = pay(&mut conn, &scripts, &keys, T0 + 10, 42, 2 * PRICE, "p-1")
        .await
        .unwrap();
    let Transition::Paid(order) = paid else {
        panic!("{paid:?}")
    };
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(order.version, 2);
    assert_eq!(order.paid_at_ms, Some(T0 + 10));
    let journaled: bool = conn.sismember(&keys.journal, "42").await.unwrap();
    assert!(
        journaled,
        "the new state goes to the store through the journal"
    );

    let again = pay(&mut conn, &scripts, &keys, T0 + 20, 42, 2 * PRICE, "p-1")
        .await
        .unwrap();
    assert!(
        matches!(again, Transition::Repeated(ref o, PaymentOutcome::Paid) if o.version == 2 && o.paid_at_ms == Some(T0 + 10)),
        "the same payment again: its first answer"
    );
    let second = pay(&mut conn, &scripts, &keys, T0 + 30, 42, 2 * PRICE, "p-2")
        .await
        .unwrap();
    assert!(matches!(second, Transition::DuplicatePayment(ref o) if o.version == 2));
    let wrong_again = pay(&mut conn, &scripts, &keys, T0 + 31, 42, PRICE, "p-wrong")
        .await
        .unwrap();
    assert!(matches!(
        wrong_again,
        Transition::Repeated(_, PaymentOutcome::AmountMismatch)
    ));
    let recorded: std::collections::HashMap<String, String> =
        conn.hgetall(&keys.payments).await.unwrap();
    assert_eq!(recorded["p-1"], format!("42|{}|paid", 2 * PRICE));
    assert_eq!(recorded["p-2"], format!("42|{}|refund_required", 2 * PRICE));
    assert_eq!(recorded["p-wrong"], format!("42|{PRICE}|amount_mismatch"));
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(8));
    let sweep = expire_due(&mut conn, &scripts, &keys, T0 + TIMEOUT + 1, 100, 0)
        .await
        .unwrap();
    assert_eq!(
        sweep,
        Expired {
            orders: 0,
            units: 0,
            groups: 1,
            ..Expired::default()
        },
        "a paid order never expires"
    );
}

#[tokio::test]
async fn cancelling_returns_stock_and_quota_once_and_only_for_the_owner() {
    let (mut conn, scripts, keys, _) = reserved("bob", 3).await;
    assert_eq!(
        cancel(&mut conn, &scripts, &keys, T0 + 1, 42, "eve")
            .await
            .unwrap(),
        Transition::NotFound
    );
    let done = cancel(&mut conn, &scripts, &keys, T0 + 2, 42, "bob")
        .await
        .unwrap();
    assert!(
        matches!(done, Transition::Cancelled(ref o) if o.status == OrderStatus::Cancelled && o.version == 2)
    );
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(10));
    assert_eq!(units_of(&mut conn, &keys, "bob").await, "0|42");

    let again = cancel(&mut conn, &scripts, &keys, T0 + 3, 42, "bob")
        .await
        .unwrap();
    assert!(matches!(again, Transition::Unchanged(_)));
    assert_eq!(
        remaining_stock(&mut conn, &keys).await.unwrap(),
        Some(10),
        "not twice"
    );

    // Paying a cancelled order: refund, and the unit is not taken again.
    let late = pay(&mut conn, &scripts, &keys, T0 + 4, 42, 3 * PRICE, "p-late")
        .await
        .unwrap();
    assert!(matches!(late, Transition::RefundRequired(ref o) if o.version == 3));
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(10));
}

#[tokio::test]
async fn unpaid_orders_expire_once_and_late_payments_become_refunds() {
    let (mut conn, scripts, keys, _) = reserved("cy", 1).await;
    let early = expire_due(&mut conn, &scripts, &keys, T0 + TIMEOUT - 1, 100, 0)
        .await
        .unwrap();
    assert_eq!(
        early,
        Expired::default(),
        "nothing is due before the deadline"
    );

    let sweep = expire_due(&mut conn, &scripts, &keys, T0 + TIMEOUT, 100, 0)
        .await
        .unwrap();
    assert_eq!(
        sweep,
        Expired {
            orders: 1,
            units: 1,
            groups: 1,
            ..Expired::default()
        }
    );
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(10));
    assert_eq!(units_of(&mut conn, &keys, "cy").await, "0|42");
    let again = expire_due(&mut conn, &scripts, &keys, T0 + TIMEOUT + 5, 100, 0)
        .await
        .unwrap();
    assert_eq!(again, Expired::default(), "a group is claimed once");

    let late = pay(
        &mut conn,
        &scripts,
        &keys,
        T0 + TIMEOUT + 10,
        42,
        PRICE,
        "p-late",
    )
    .await
    .unwrap();
    assert!(
        matches!(late, Transition::RefundRequired(ref o) if o.paid_at_ms == Some(T0 + TIMEOUT + 10))
    );
    assert_eq!(
        remaining_stock(&mut conn, &keys).await.unwrap(),
        Some(10),
        "no unit re-deducted"
    );
    let not_cancellable = cancel(&mut conn, &scripts, &keys, T0 + TIMEOUT + 11, 42, "cy")
        .await
        .unwrap();
    assert!(matches!(not_cancellable, Transition::NotCancellable(_)));
}

#[tokio::test]
async fn a_payment_after_the_deadline_but_before_the_sweep_returns_the_unit_once() {
    let (mut conn, scripts, keys, _) = reserved("dee", 2).await;
    let late = pay(
        &mut conn,
        &scripts,
        &keys,
        T0 + TIMEOUT + 1,
        42,
        2 * PRICE,
        "p-late",
    )
    .await
    .unwrap();
    assert!(matches!(late, Transition::RefundRequired(_)));
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(10));
    let sweep = expire_due(&mut conn, &scripts, &keys, T0 + TIMEOUT + 2, 100, 0)
        .await
        .unwrap();
    assert_eq!(
        sweep,
        Expired {
            orders: 0,
            units: 0,
            groups: 1,
            ..Expired::default()
        },
        "already settled: the sweep returns nothing more"
    );
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(10));
}

#[tokio::test]
async fn the_store_side_repair_expires_overdue_orders_and_rejournals_settled_ones() {
    let (mut conn, scripts, keys, _) = reserved("eli", 1).await;
    let mut sync = common::sync_connection();
    let early =
        flashgate_stock::lifecycle::expire_order(&mut sync, &scripts, &keys, T0 + 1, 42).unwrap();
    assert!(
        matches!(early, Transition::Unchanged(ref o) if o.status == OrderStatus::PendingPayment)
    );

    let late =
        flashgate_stock::lifecycle::expire_order(&mut sync, &scripts, &keys, T0 + TIMEOUT, 42)
            .unwrap();
    assert!(matches!(late, Transition::Expired(ref o) if o.version == 2));
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(10));

    let _: () = conn.del(&keys.journal).await.unwrap();
    let again =
        flashgate_stock::lifecycle::expire_order(&mut sync, &scripts, &keys, T0 + TIMEOUT + 1, 42)
            .unwrap();
    assert!(matches!(again, Transition::Unchanged(ref o) if o.status == OrderStatus::Expired));
    assert_eq!(
        remaining_stock(&mut conn, &keys).await.unwrap(),
        Some(10),
        "returned once"
    );
    let rejournaled: bool = conn.sismember(&keys.journal, "42").await.unwrap();
    assert!(
        rejournaled,
        "a settled order the store may have missed is journaled again"
    );
    assert_eq!(
        flashgate_stock::lifecycle::expire_order(&mut sync, &scripts, &keys, T0, 7).unwrap(),
        Transition::NotFound
    );
}

/// Every key a lifecycle action may write, as `DUMP` serialises it (None: absent): equal
/// snapshots mean byte-for-byte the same state.
async fn snapshot(conn: &mut MultiplexedConnection, keys: &CampaignKeys) -> Vec<Option<Vec<u8>>> {
    let mut all = Vec::new();
    for key in [
        &keys.stock,
        &keys.buyers,
        &keys.orders,
        &keys.deadlines,
        &keys.journal,
        &keys.payments,
    ] {
        let dumped: Option<Vec<u8>> = redis::cmd("DUMP").arg(key).query_async(conn).await.unwrap();
        all.push(dumped);
    }
    all
}

#[tokio::test]
async fn a_payment_id_belongs_to_one_order_and_is_refused_for_another() {
    let (mut conn, scripts, keys, _) = reserved("fay", 1).await;
    let batch = [Reservation {
        user_id: "gus",
        order_id: 43,
        quantity: 1,
    }];
    reserve_batch(&mut conn, &scripts, &keys, T0, &batch)
        .await
        .unwrap();
    let paid = pay(&mut conn, &scripts, &keys, T0 + 1, 42, PRICE, "p-shared")
        .await
        .unwrap();
    assert!(matches!(paid, Transition::Paid(_)), "{paid:?}");

    let before = snapshot(&mut conn, &keys).await;
    let reused = pay(&mut conn, &scripts, &keys, T0 + 2, 43, PRICE, "p-shared")
        .await
        .unwrap();
    assert!(
        matches!(reused, Transition::PaymentIdReused(ref o) if o.order_id == 43 && o.status == OrderStatus::PendingPayment),
        "the same payment id for another order is not that order's payment: {reused:?}"
    );
    // Nor for the same order with another amount.
    let other_amount = pay(
        &mut conn,
        &scripts,
        &keys,
        T0 + 3,
        42,
        PRICE + 1,
        "p-shared",
    )
    .await
    .unwrap();
    assert!(
        matches!(other_amount, Transition::PaymentIdReused(_)),
        "{other_amount:?}"
    );
    assert_eq!(
        snapshot(&mut conn, &keys).await,
        before,
        "a reused payment id changes nothing"
    );
    let other: String = conn.hget(&keys.orders, "43").await.unwrap();
    assert!(other.contains("|pending_payment|1|"), "{other}");
}

#[tokio::test]
async fn a_repeated_payment_never_answers_paid_for_an_order_that_is_not_paid() {
    // Redis lost the payment's effect on the order (an older snapshot restored, say) but kept
    // the payment on record: the repeat must not say "paid" for an unpaid order.
    let (mut conn, scripts, keys, order) = reserved("hal", 1).await;
    let paid = pay(&mut conn, &scripts, &keys, T0 + 1, 42, PRICE, "p-lost")
        .await
        .unwrap();
    assert!(matches!(paid, Transition::Paid(_)), "{paid:?}");
    let pending = format!(
        "hal|1|{PRICE}|{}|pending_payment|1|{T0}|{}||{T0}",
        order.sku, order.pay_deadline_ms
    );
    let _: () = conn.hset(&keys.orders, "42", &pending).await.unwrap();

    let again = pay(&mut conn, &scripts, &keys, T0 + 2, 42, PRICE, "p-lost")
        .await
        .unwrap();
    let order = match &again {
        Transition::Paid(o) | Transition::Repeated(o, _) => o.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        order.status,
        OrderStatus::Paid,
        "the answer reflects the order as it now is: {again:?}"
    );
    let stored: String = conn.hget(&keys.orders, "42").await.unwrap();
    assert!(stored.contains("|paid|"), "{stored}");
}

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

#[tokio::test]
async fn a_deadline_member_that_names_no_order_is_claimed_and_dropped() {
    let (mut conn, scripts, keys, _) = reserved("quin", 1).await;
    let _: () = conn
        .zadd(&keys.deadlines, "junk,\n", T0 + TIMEOUT)
        .await
        .unwrap();
    let sweep = expire_due(&mut conn, &scripts, &keys, T0 + TIMEOUT, 100, 0)
        .await
        .unwrap();
    assert_eq!(
        (sweep.orders, sweep.groups, sweep.held_groups),
        (1, 2, 0),
        "{sweep:?}"
    );
    let left: u64 = conn.zcard(&keys.deadlines).await.unwrap();
    assert_eq!(left, 0);
}
