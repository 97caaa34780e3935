//! `lua/lifecycle.lua` against a real Redis: paying an order, and the payments on record (a
//! payment id belongs to one order; a repeated payment never answers paid for another).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::lifecycle::{PRICE, T0, TIMEOUT, reserved, snapshot};
use flashgate_stock::lifecycle::{expire_due, pay};
use flashgate_stock::{
    Expired, OrderStatus, PaymentOutcome, Reservation, Transition, remaining_stock, reserve_batch,
};
use redis::AsyncCommands;

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
