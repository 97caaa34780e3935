//! `lua/lifecycle.lua` against a real Redis: every transition, and that no unit comes back twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use flashgate_stock::lifecycle::{cancel, expire_due, pay};
use flashgate_stock::{
    CampaignKeys, Expired, Order, OrderStatus, PaymentOutcome, Reservation, ReserveOutcome,
    Scripts, Transition, remaining_stock, reserve_batch,
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
    let sweep = expire_due(&mut conn, &scripts, &keys, T0 + TIMEOUT + 1, 100)
        .await
        .unwrap();
    assert_eq!(
        sweep,
        Expired {
            orders: 0,
            units: 0,
            groups: 1
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
    let early = expire_due(&mut conn, &scripts, &keys, T0 + TIMEOUT - 1, 100)
        .await
        .unwrap();
    assert_eq!(
        early,
        Expired::default(),
        "nothing is due before the deadline"
    );

    let sweep = expire_due(&mut conn, &scripts, &keys, T0 + TIMEOUT, 100)
        .await
        .unwrap();
    assert_eq!(
        sweep,
        Expired {
            orders: 1,
            units: 1,
            groups: 1
        }
    );
    assert_eq!(remaining_stock(&mut conn, &keys).await.unwrap(), Some(10));
    assert_eq!(units_of(&mut conn, &keys, "cy").await, "0|42");
    let again = expire_due(&mut conn, &scripts, &keys, T0 + TIMEOUT + 5, 100)
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
    let sweep = expire_due(&mut conn, &scripts, &keys, T0 + TIMEOUT + 2, 100)
        .await
        .unwrap();
    assert_eq!(
        sweep,
        Expired {
            orders: 0,
            units: 0,
            groups: 1
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
