//! Paying: in time, racing the deadline, bad or foreign callbacks, a reused payment id.

use std::collections::HashMap;
use std::time::Duration;

use flashgate::clock::Clock;
use flashgate_stock::CampaignKeys;
use flashgate_stock::{Order, OrderStatus};
use flashgate_tests::client::{Client, sign_hex};
use flashgate_tests::eventually;
use flashgate_tests::gateway::stored_orders;
use flashgate_tests::redis_kind::TestRedis;
use flashgate_tests::scenario::CampaignSpec;
use http::StatusCode;
use redis::AsyncCommands;
use serde_json::json;

use crate::support::{PRICE, buy, redis_orders, remaining};

pub(crate) async fn paying_in_time_is_paid_in_redis_and_in_the_store(redis: TestRedis) {
    let (_dir, scenario, gateway, id) = redis.selling(CampaignSpec::open("pay", 10, 1));
    let c = gateway.client();
    let order_id = buy(&c, "payer", &id).await;

    let paid = c.pay(&order_id, PRICE, "succeeded").await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(paid.body["status"], "paid");
    assert_eq!(paid.body["version"], 2);
    let again = c.pay(&order_id, PRICE, "succeeded").await;
    assert_eq!(
        again.body, paid.body,
        "a repeated callback answers the same"
    );
    let seen = c
        .get(&format!("/api/v1/orders/{order_id}"), Some("payer"))
        .await;
    assert_eq!(seen.body["status"], "paid");
    assert_eq!(remaining(&c, &id).await, 9);

    gateway.stop().unwrap();
    let stored = stored_orders(&scenario.store_path, &id);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, OrderStatus::Paid);
    assert_eq!(stored[0].version, 2);
    assert!(stored[0].paid_at_ms.is_some());
}

pub(crate) async fn payments_racing_deadlines_settle_every_order_exactly_once(redis: TestRedis) {
    const ORDERS: usize = 500;
    let mut campaign = CampaignSpec::open("race", ORDERS as u64, 1);
    campaign.pay_timeout = "2s".into();
    let (_dir, scenario, gateway, id) = redis.selling(campaign);
    let c = gateway.client();

    let buys: Vec<_> = (0..ORDERS)
        .map(|n| {
            let (c, id) = (c.clone(), id.clone());
            tokio::spawn(async move { buy(&c, &format!("racer-{n}"), &id).await })
        })
        .collect();
    let mut order_ids = Vec::with_capacity(ORDERS);
    for b in buys {
        order_ids.push(b.await.unwrap());
    }
    let deadlines = || async {
        let orders = redis_orders(&redis, &id).await;
        let deadlines = orders.values().map(|o| o.pay_deadline_ms);
        (deadlines.clone().min().unwrap(), deadlines.max().unwrap())
    };
    let (first_deadline, last_deadline) = deadlines().await;

    // Real time, not a moved clock: the callbacks race the sweeper's own ticks.
    let answers = pay_each_twice_around(&c, &order_ids, first_deadline, &gateway.clock).await;
    // Past every deadline, each order is swept or paid: none stays pending.
    gateway.clock.wait_until(last_deadline + 1).await;
    eventually(Duration::from_secs(10), "no order left pending", || async {
        let orders = redis_orders(&redis, &id).await;
        !orders
            .values()
            .any(|o| o.status == OrderStatus::PendingPayment)
    })
    .await;

    let orders = redis_orders(&redis, &id).await;
    assert_eq!(orders.len(), ORDERS);
    let count = |s: OrderStatus| orders.values().filter(|o| o.status == s).count();
    let (paid, expired, refund) = (
        count(OrderStatus::Paid),
        count(OrderStatus::Expired),
        count(OrderStatus::RefundRequired),
    );
    assert_eq!(
        paid + expired + refund,
        ORDERS,
        "every order settled in one final state"
    );
    assert!(
        paid > 0 && refund > 0,
        "the race was real: {paid} paid, {refund} refunds"
    );
    // Paid units stay sold; every other unit is back on sale, once.
    assert_eq!(remaining(&c, &id).await, (ORDERS - paid) as i64);
    for (order_id, statuses) in &answers {
        let order = &orders[&order_id.parse::<u64>().unwrap()];
        // A callback answer never contradicts the final state (the duplicate answers the same
        // as the original, or reports the refund a later expiry-then-payment produced).
        assert!(
            statuses.iter().all(|s| s == "paid") == (order.status == OrderStatus::Paid),
            "{order_id}: answers {statuses:?}, final {:?}",
            order.status
        );
    }

    gateway.stop().unwrap();
    let stored: HashMap<u64, Order> = stored_orders(&scenario.store_path, &id)
        .into_iter()
        .map(|o| (o.order_id, o))
        .collect();
    assert_eq!(stored, orders, "the store ends equal to Redis");
}

/// Pays every order twice (providers retry), spread over the gateway's clock from 1 s before
/// `deadline` to 1 s after it, the duplicate 300 ms after its original and interleaved with
/// other orders' originals. Returns each order's answers (`status` of each callback).
async fn pay_each_twice_around(
    c: &Client,
    order_ids: &[String],
    deadline: i64,
    clock: &Clock,
) -> HashMap<String, Vec<String>> {
    let start = deadline - 1_000;
    let spread = i64::try_from(order_ids.len()).unwrap();
    let callbacks: Vec<_> = order_ids
        .iter()
        .zip(0..)
        .flat_map(|(order_id, n)| {
            let first = start + (n * 2_000) / spread;
            [(order_id.clone(), first), (order_id.clone(), first + 300)]
        })
        .map(|(order_id, at_ms)| {
            let (c, clock) = (c.clone(), clock.clone());
            tokio::spawn(async move {
                clock.wait_until(at_ms).await;
                let r = c.pay(&order_id, PRICE, "succeeded").await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                (order_id, r.body["status"].as_str().unwrap().to_owned())
            })
        })
        .collect();
    let mut answers: HashMap<String, Vec<String>> = HashMap::new();
    for cb in callbacks {
        let (order_id, status) = cb.await.unwrap();
        answers.entry(order_id).or_default().push(status);
    }
    answers
}

pub(crate) async fn bad_callbacks_and_foreign_cancels_change_nothing_and_cancel_returns_stock(
    redis: TestRedis,
) {
    let (_dir, _scenario, gateway, id) = redis.selling(CampaignSpec::open("cancel", 5, 1));
    let c = gateway.client();
    let order_id = buy(&c, "owner", &id).await;
    let unchanged =
        |body: &serde_json::Value| body["status"] == "pending_payment" && body["version"] == 1;
    let path = format!("/api/v1/orders/{order_id}");

    let body = json!({ "order_id": order_id, "payment_id": "p", "amount_cents": PRICE, "status": "succeeded" }).to_string();
    let forged = c
        .signed_callback(
            body.clone(),
            &sign_hex(b"not-the-provider-secret", body.as_bytes()),
        )
        .await;
    assert_eq!(
        (forged.status, forged.code()),
        (StatusCode::UNAUTHORIZED, "invalid_signature")
    );
    let unsigned = c.signed_callback(body, "").await;
    assert_eq!(unsigned.code(), "invalid_signature");
    let wrong_amount = c.pay(&order_id, PRICE - 1, "succeeded").await;
    assert_eq!(
        (wrong_amount.status, wrong_amount.code()),
        (StatusCode::CONFLICT, "amount_mismatch")
    );
    let unknown = c.pay("123456789", PRICE, "succeeded").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let failed = c.pay(&order_id, PRICE, "failed").await;
    assert!(unchanged(&failed.body), "{}", failed.body);
    let stranger = c.cancel("stranger", &order_id).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    assert!(unchanged(&c.get(&path, Some("owner")).await.body));
    assert_eq!(remaining(&c, &id).await, 4);

    let cancelled = c.cancel("owner", &order_id).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(remaining(&c, &id).await, 5, "stock returned");
    let again = c.cancel("owner", &order_id).await;
    assert_eq!(
        again.body, cancelled.body,
        "a repeated cancel answers the same"
    );
    assert_eq!(remaining(&c, &id).await, 5, "and returns nothing twice");
    // The quota came back too: the owner (limit 1) can buy again, a new order.
    let rebuy = buy(&c, "owner", &id).await;
    assert_ne!(rebuy, order_id);

    let paid = c.pay(&rebuy, PRICE, "succeeded").await;
    assert_eq!(paid.body["status"], "paid");
    assert_eq!(paid.body["payment_outcome"], "applied");
    // A second, different payment of the paid order: on record, to be refunded; order unchanged.
    let second = c
        .pay_with("another-payment", &rebuy, PRICE, "succeeded")
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["payment_outcome"], "refund_required");
    assert_eq!(
        (
            second.body["status"].as_str(),
            second.body["version"].as_i64()
        ),
        (Some("paid"), Some(2))
    );
    let too_late = c.cancel("owner", &rebuy).await;
    assert_eq!(
        (too_late.status, too_late.code()),
        (StatusCode::CONFLICT, "not_cancellable")
    );
}

pub(crate) async fn a_payment_id_reused_for_another_order_is_refused_and_changes_nothing(
    redis: TestRedis,
) {
    let (_dir, _scenario, gateway, id) = redis.selling(CampaignSpec::open("reuse", 5, 1));
    let c = gateway.client();
    let first = buy(&c, "first-buyer", &id).await;
    let second = buy(&c, "second-buyer", &id).await;

    let paid = c.pay_with("pay-shared", &first, PRICE, "succeeded").await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(paid.body["payment_outcome"], "applied");

    let mut conn = redis.conn().await;
    let payments = CampaignKeys::new(&id).payments;
    let recorded: HashMap<String, String> = conn.hgetall(&payments).await.unwrap();
    let reused = c.pay_with("pay-shared", &second, PRICE, "succeeded").await;
    assert_eq!(
        (reused.status, reused.code()),
        (StatusCode::CONFLICT, "payment_id_reused"),
        "{}",
        reused.body
    );
    assert_ne!(reused.body["payment_outcome"], "applied");
    let seen = c
        .get(&format!("/api/v1/orders/{second}"), Some("second-buyer"))
        .await;
    assert_eq!(
        (seen.body["status"].as_str(), seen.body["version"].as_i64()),
        (Some("pending_payment"), Some(1)),
        "{}",
        seen.body
    );
    let after: HashMap<String, String> = conn.hgetall(&payments).await.unwrap();
    assert_eq!(after, recorded, "the payment record is unchanged");

    // The same report for the order it paid is still answered as before.
    let again = c.pay_with("pay-shared", &first, PRICE, "succeeded").await;
    assert_eq!(again.body, paid.body);
    // And the second order can still be paid with its own payment.
    let own = c.pay_with("pay-second", &second, PRICE, "succeeded").await;
    assert_eq!(own.body["payment_outcome"], "applied", "{}", own.body);
}
