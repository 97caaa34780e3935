//! `lua/lifecycle.lua` against a real Redis: cancelling and expiring orders, and that no unit
//! comes back twice (late payments become refunds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::lifecycle::{PRICE, T0, TIMEOUT, reserved, units_of};
use flashgate_stock::lifecycle::{cancel, expire_due, pay};
use flashgate_stock::{Expired, OrderStatus, Transition, remaining_stock};
use redis::AsyncCommands;

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
