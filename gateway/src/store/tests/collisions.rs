//! Two orders under one id: the second is reported as a collision, never written or taken
//! for a replay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate_stock::{Order, OrderStatus};

use super::order;
use crate::store::OrderStore;
use crate::store::test_backends::each_backend;

/// Another order under a stored order's id is reported as a collision, per order: neither
/// written over the stored one nor taken for its replay, and the rest of the batch is stored.
#[test]
fn an_order_under_another_orders_id_is_reported_not_written() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let mut held = order(0, "c1");
        held.status = OrderStatus::PendingPayment;
        held.paid_at_ms = None;
        held.version = 1;
        store.write_batch(std::slice::from_ref(&held)).unwrap();

        let paid = an_intruder_collides_and_the_rest_is_stored(&*store, &held);
        any_identifying_field_differing_collides(&*store, &paid);
        two_orders_under_one_new_id_in_a_batch_collide(&*store);
    });
}

/// Same id as `held`, another campaign and user, and a higher version, which must not help it:
/// a collision, while the rest of the batch (a new order, a newer state of `held`) is stored.
/// Returns that newer, paid state.
fn an_intruder_collides_and_the_rest_is_stored(store: &dyn OrderStore, held: &Order) -> Order {
    let intruder = Order {
        campaign_id: "c2".into(),
        user_id: "mallory".into(),
        version: 5,
        ..held.clone()
    };
    let mut paid = held.clone();
    paid.version = 2;
    paid.status = OrderStatus::Paid;
    paid.paid_at_ms = Some(held.created_at_ms + 10);
    let fresh_order = order(21, "c1");
    let written = store
        .write_batch(&[intruder.clone(), fresh_order.clone(), paid.clone()])
        .unwrap();
    assert_eq!(
        written.stored, 2,
        "the new order and the newer state of the held one"
    );
    assert_eq!(written.collisions.len(), 1, "{written:?}");
    let collision = &written.collisions[0];
    assert_eq!(collision.index, 0);
    assert_eq!(collision.order_id, held.order_id);
    assert_eq!(
        (collision.campaign_id.as_str(), collision.user_id.as_str()),
        ("c1", "user-0")
    );
    assert!(
        collision.reason().contains("campaign c1 user user-0"),
        "{}",
        collision.reason()
    );
    assert_eq!(store.get(held.order_id).unwrap(), Some(paid.clone()));
    assert_eq!(store.get(fresh_order.order_id).unwrap(), Some(fresh_order));
    paid
}

/// Any identifying field differing is another order; a replay of the same one is not.
fn any_identifying_field_differing_collides(store: &dyn OrderStore, paid: &Order) {
    for other in [
        Order {
            sku: "other-sku".into(),
            ..paid.clone()
        },
        Order {
            quantity: paid.quantity + 1,
            ..paid.clone()
        },
        Order {
            unit_price_cents: 1,
            ..paid.clone()
        },
        Order {
            created_at_ms: paid.created_at_ms - 1,
            ..paid.clone()
        },
    ] {
        let written = store.write_batch(&[other]).unwrap();
        assert_eq!((written.stored, written.collisions.len()), (0, 1));
    }
    let replay = store.write_batch(std::slice::from_ref(paid)).unwrap();
    assert_eq!((replay.stored, replay.collisions.len()), (0, 0));
}

/// Two orders under one new id in one batch: one is stored, the other collides with it.
fn two_orders_under_one_new_id_in_a_batch_collide(store: &dyn OrderStore) {
    let first = order(33, "c1");
    let second = Order {
        campaign_id: "c3".into(),
        user_id: "eve".into(),
        ..first.clone()
    };
    let written = store.write_batch(&[first.clone(), second]).unwrap();
    assert_eq!(
        (written.stored, written.collisions.len()),
        (1, 1),
        "{written:?}"
    );
    assert_eq!(
        store.count_of_campaign("c1").unwrap() + store.count_of_campaign("c3").unwrap(),
        3
    );
    assert_eq!(store.count_of_campaign("c2").unwrap(), 0);
}
