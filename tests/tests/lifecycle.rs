//! Payment, cancellation, payment timeout and stock return, through real gateways on real Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use flashgate_stock::CampaignKeys;
use flashgate_stock::{Order, OrderStatus};
use flashgate_tests::client::{Client, sign_hex};
use flashgate_tests::gateway::{InProcess, selling, stored_orders};
use flashgate_tests::redis_kind::{RedisKind, TestRedis};
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::{eventually, shared_redis};
use http::StatusCode;
use redis::AsyncCommands;
use serde_json::json;

const PRICE: i64 = 1999;

// Everything about an order's life holds the same on one Redis and on a Cluster.
flashgate_tests::on_each_redis!(
    paying_in_time_is_paid_in_redis_and_in_the_store,
    an_unpaid_order_expires_within_a_second_and_its_unit_sells_again,
    payments_racing_deadlines_settle_every_order_exactly_once,
    bad_callbacks_and_foreign_cancels_change_nothing_and_cancel_returns_stock,
    a_user_lists_their_own_orders_newest_first_page_by_page,
    the_store_side_sweep_settles_an_order_the_deadline_sweep_missed,
    two_gateways_sweeping_expire_every_order_once_and_both_sell_again,
    a_payment_id_reused_for_another_order_is_refused_and_changes_nothing,
    a_user_lists_orders_of_several_campaigns_with_the_states_redis_has,
);

async fn buy(c: &Client, user: &str, campaign: &str) -> String {
    let r = c
        .purchase(user, json!({ "campaign_id": campaign }))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    r.order_id().to_owned()
}

/// Every order of `campaign` as Redis holds it.
async fn redis_orders(redis: &TestRedis, campaign: &str) -> HashMap<u64, Order> {
    let mut conn = redis.conn().await;
    let all: HashMap<String, String> = conn
        .hgetall(CampaignKeys::new(campaign).orders)
        .await
        .unwrap();
    all.into_iter()
        .map(|(id, rec)| {
            let id: u64 = id.parse().unwrap();
            (
                id,
                flashgate_stock::record::decode(campaign, id, &rec).unwrap(),
            )
        })
        .collect()
}

async fn remaining(c: &Client, campaign: &str) -> i64 {
    c.get(&format!("/api/v1/campaigns/{campaign}"), None)
        .await
        .body["remaining"]
        .as_i64()
        .unwrap()
}

async fn paying_in_time_is_paid_in_redis_and_in_the_store(redis: TestRedis) {
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

async fn an_unpaid_order_expires_within_a_second_and_its_unit_sells_again(redis: TestRedis) {
    let mut campaign = CampaignSpec::open("expire", 1, 1);
    campaign.pay_timeout = "1s".into();
    let (_dir, _scenario, gateway, id) = redis.selling(campaign);
    let c = gateway.client();

    let r = c
        .purchase("slow", json!({ "campaign_id": id }))
        .await
        .unwrap();
    let order_id = r.order_id().to_owned();
    let deadline =
        unix_ms(humantime::parse_rfc3339(r.body["pay_before"].as_str().unwrap()).unwrap());
    let late = c
        .purchase("eager", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(late.code(), "sold_out");

    // The deadline comes at once on the gateway's clock: no waiting for it.
    gateway.clock.advance_to(deadline);
    let path = format!("/api/v1/orders/{order_id}");
    eventually(Duration::from_secs(5), "the order expires", || {
        let (c, path) = (c.clone(), path.clone());
        async move { c.get(&path, Some("slow")).await.body["status"] == "expired" }
    })
    .await;
    let overdue = gateway.clock.now_ms() - deadline;
    assert!(overdue < 1_000, "expired {overdue} ms after its deadline");
    assert_eq!(remaining(&c, &id).await, 1, "the unit is back on sale");

    // Every gateway's sold-out mark clears within a second; the unit sells to someone else.
    let started = Instant::now();
    c.eventually_buys("eager", &id, Duration::from_secs(2))
        .await;
    assert!(started.elapsed() < Duration::from_secs(1));
}

async fn payments_racing_deadlines_settle_every_order_exactly_once(redis: TestRedis) {
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
    let deadline = redis_orders(&redis, &id)
        .await
        .values()
        .map(|o| o.pay_deadline_ms)
        .min()
        .unwrap();

    // Callbacks spread from 1 s before the first deadline to 1 s after it, each sent twice
    // (providers retry): the duplicate 300 ms later, interleaved with other orders' originals.
    let start = deadline - 1_000;
    let callbacks: Vec<_> = order_ids
        .iter()
        .enumerate()
        .flat_map(|(n, order_id)| {
            let first = start + (n as i64 * 2_000) / ORDERS as i64;
            let second = first + 300;
            [(order_id.clone(), first), (order_id.clone(), second)]
        })
        .map(|(order_id, at_ms)| {
            let c = c.clone();
            tokio::spawn(async move {
                let wait = at_ms - flashgate::clock::now_ms();
                tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
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
    // Past every deadline plus a sweep: nothing is pending any more.
    let last_deadline = redis_orders(&redis, &id)
        .await
        .values()
        .map(|o| o.pay_deadline_ms)
        .max()
        .unwrap();
    let wait = last_deadline + 600 - flashgate::clock::now_ms();
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;

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

async fn bad_callbacks_and_foreign_cancels_change_nothing_and_cancel_returns_stock(
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

async fn a_user_lists_their_own_orders_newest_first_page_by_page(redis: TestRedis) {
    let (_dir, _scenario, gateway, id) = redis.selling(CampaignSpec::open("list", 10, 3));
    let c = gateway.client();
    let mine = [
        buy(&c, "lister", &id).await,
        buy(&c, "lister", &id).await,
        buy(&c, "lister", &id).await,
    ];
    buy(&c, "someone-else", &id).await;
    let paid = c.pay(&mine[0], PRICE, "succeeded").await;
    assert_eq!(paid.body["status"], "paid");

    eventually(Duration::from_secs(10), "the orders are persisted", || {
        let c = c.clone();
        async move {
            let persisted = |user: &'static str, n: usize| {
                let c = c.clone();
                async move {
                    c.get("/api/v1/orders", Some(user)).await.body["orders"]
                        .as_array()
                        .is_some_and(|o| o.len() == n)
                }
            };
            persisted("lister", 3).await && persisted("someone-else", 1).await
        }
    })
    .await;
    let first = c.get("/api/v1/orders?limit=2", Some("lister")).await;
    assert_eq!(first.status, StatusCode::OK);
    let ids = |r: &flashgate_tests::client::Reply| -> Vec<String> {
        r.body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["order_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&first),
        vec![mine[2].clone(), mine[1].clone()],
        "newest first"
    );
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = c
        .get(
            &format!("/api/v1/orders?limit=2&cursor={cursor}"),
            Some("lister"),
        )
        .await;
    assert_eq!(ids(&second), vec![mine[0].clone()]);
    assert!(second.body["next_cursor"].is_null());
    assert_eq!(
        second.body["orders"][0]["status"], "paid",
        "state as Redis has it"
    );
    let theirs = c.get("/api/v1/orders", Some("someone-else")).await;
    assert_eq!(ids(&theirs).len(), 1);
    assert!(!ids(&theirs).iter().any(|o| mine.contains(o)));
    let bad = c.get("/api/v1/orders?limit=0", Some("lister")).await;
    assert_eq!(bad.code(), "invalid_limit");
}

/// A user's orders in two campaigns (two slots on a Cluster), interleaved newest first, each
/// with its state as Redis has it now.
async fn a_user_lists_orders_of_several_campaigns_with_the_states_redis_has(redis: TestRedis) {
    let (a, b) = (
        CampaignSpec::open("list-a", 10, 3),
        CampaignSpec::open("list-b", 10, 3),
    );
    let (a_id, b_id) = (a.id.clone(), b.id.clone());
    let dir = tempfile::tempdir().unwrap();
    let gateway = InProcess::start(&redis.scenario(dir.path().join("orders.db"), vec![a, b]));
    let c = gateway.client();
    let mut mine = Vec::new();
    for id in [&a_id, &b_id, &a_id, &b_id] {
        mine.push(buy(&c, "two-campaigns", id).await);
    }
    eventually(Duration::from_secs(10), "the orders are persisted", || {
        let c = c.clone();
        async move {
            c.get("/api/v1/orders", Some("two-campaigns")).await.body["orders"]
                .as_array()
                .is_some_and(|o| o.len() == 4)
        }
    })
    .await;
    // Changed in Redis after the store has them: the list shows Redis' state.
    assert_eq!(
        c.pay(&mine[1], PRICE, "succeeded").await.body["status"],
        "paid"
    );
    let cancelled = c.cancel("two-campaigns", &mine[2]).await;
    assert_eq!(cancelled.body["status"], "cancelled", "{}", cancelled.body);

    let listed = c.get("/api/v1/orders", Some("two-campaigns")).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let seen: Vec<(String, String, String)> = listed.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let field = |k: &str| o[k].as_str().unwrap().to_owned();
            (field("order_id"), field("campaign_id"), field("status"))
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        (&mine[3], &b_id, "pending_payment"),
        (&mine[2], &a_id, "cancelled"),
        (&mine[1], &b_id, "paid"),
        (&mine[0], &a_id, "pending_payment"),
    ]
    .into_iter()
    .map(|(o, c, s)| (o.clone(), c.clone(), s.to_owned()))
    .collect();
    assert_eq!(
        seen, expected,
        "newest first, each with its campaign and state"
    );
}

async fn the_store_side_sweep_settles_an_order_the_deadline_sweep_missed(redis: TestRedis) {
    let mut campaign = CampaignSpec::open("missed", 1, 1);
    campaign.pay_timeout = "1s".into();
    let (_dir, scenario, gateway, id) = redis.selling(campaign);
    let c = gateway.client();
    let order_id = buy(&c, "forgotten", &id).await;

    // Redis loses track of the deadline: the deadline sweep can no longer find the order.
    let mut conn = redis.conn().await;
    let removed: u64 = conn
        .zrem(CampaignKeys::new(&id).deadlines, &order_id)
        .await
        .unwrap();
    assert_eq!(removed, 1);

    let path = format!("/api/v1/orders/{order_id}");
    eventually(
        Duration::from_secs(10),
        "the store-side sweep expires it",
        || {
            let (c, path) = (c.clone(), path.clone());
            async move { c.get(&path, Some("forgotten")).await.body["status"] == "expired" }
        },
    )
    .await;
    assert_eq!(remaining(&c, &id).await, 1, "its unit is back on sale");

    gateway.stop().unwrap();
    let stored = stored_orders(&scenario.store_path, &id);
    assert_eq!(stored[0].status, OrderStatus::Expired);
}

async fn two_gateways_sweeping_expire_every_order_once_and_both_sell_again(redis: TestRedis) {
    const UNITS: usize = 200;
    let mut campaign = CampaignSpec::open("twosweep", UNITS as u64, 1);
    campaign.pay_timeout = "1s".into();
    let id = campaign.id.clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a =
        InProcess::start(&redis.scenario(dir_a.path().join("orders.db"), vec![campaign.clone()]));
    let b_scenario = redis.scenario(dir_b.path().join("orders.db"), vec![campaign]);
    let b = InProcess::start(&b_scenario);
    let (ca, cb) = (a.client(), b.client());

    // Both gateways sell; together they sell out, and both know it.
    let buys: Vec<_> = (0..UNITS)
        .map(|n| {
            let c = if n % 2 == 0 { ca.clone() } else { cb.clone() };
            let id = id.clone();
            tokio::spawn(async move { buy(&c, &format!("two-{n}"), &id).await })
        })
        .collect();
    for b in buys {
        b.await.unwrap();
    }
    for c in [&ca, &cb] {
        let r = c
            .purchase("latecomer", json!({ "campaign_id": id }))
            .await
            .unwrap();
        assert_eq!(r.code(), "sold_out");
    }

    // Nobody pays: both sweepers run; every order expires exactly once.
    let redis = &redis;
    eventually(Duration::from_secs(6), "every order expired", || {
        let id = id.clone();
        async move {
            redis_orders(redis, &id)
                .await
                .values()
                .all(|o| o.status == OrderStatus::Expired)
        }
    })
    .await;
    let orders = redis_orders(redis, &id).await;
    assert_eq!(orders.len(), UNITS);
    assert!(orders.values().all(|o| o.version == 2), "expired once each");
    assert_eq!(
        remaining(&ca, &id).await,
        UNITS as i64,
        "each unit returned once, never twice"
    );

    // Both gateways' sold-out marks clear: each sells again within a second.
    for (c, user) in [(&ca, "after-a"), (&cb, "after-b")] {
        let started = Instant::now();
        c.eventually_buys(user, &id, Duration::from_secs(2)).await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

async fn a_payment_id_reused_for_another_order_is_refused_and_changes_nothing(redis: TestRedis) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_buyers_row_is_answered_500_and_changes_nothing() {
    let (_dir, _scenario, gateway, id) = selling(CampaignSpec::open("corrupt", 5, 1));
    let c = gateway.client();
    let order_id = buy(&c, "damaged", &id).await;
    let mut conn = shared_redis().await;
    let _: () = conn
        .hset(CampaignKeys::new(&id).buyers, "damaged", "garbage")
        .await
        .unwrap();

    let cancelled = c.cancel("damaged", &order_id).await;
    assert_eq!(
        (cancelled.status, cancelled.code()),
        (StatusCode::INTERNAL_SERVER_ERROR, "order_corrupt"),
        "{}",
        cancelled.body
    );
    let seen = c
        .get(&format!("/api/v1/orders/{order_id}"), Some("damaged"))
        .await;
    assert_eq!(seen.body["status"], "pending_payment", "{}", seen.body);
    assert_eq!(remaining(&c, &id).await, 4, "no unit came back");
    let row: String = conn
        .hget(CampaignKeys::new(&id).buyers, "damaged")
        .await
        .unwrap();
    assert_eq!(row, "garbage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_logs_a_malformed_order_leaves_it_untouched_and_expires_the_others() {
    use flashgate_tests::gateway::Process;
    use flashgate_tests::store_home::{Backend, StoreHome};

    let home = StoreHome::new(Backend::Sqlite);
    let mut campaign = CampaignSpec::open("heldsweep", 5, 1);
    campaign.pay_timeout = "1s".into();
    let id = campaign.id.clone();
    let scenario = home.scenario(vec![campaign]);
    let mut gateway = Process::start(&scenario, home.path());
    let c = gateway.client();
    let damaged = buy(&c, "sweep-damaged", &id).await;
    let healthy = buy(&c, "sweep-healthy", &id).await;
    let mut conn = shared_redis().await;
    let buyers = CampaignKeys::new(&id).buyers;
    let _: () = conn
        .hset(&buyers, "sweep-damaged", "garbage")
        .await
        .unwrap();

    eventually(Duration::from_secs(5), "the healthy order expires", || {
        let (c, path) = (c.clone(), format!("/api/v1/orders/{healthy}"));
        async move { c.get(&path, Some("sweep-healthy")).await.body["status"] == "expired" }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let redis = TestRedis::start(RedisKind::Single);
    let held = redis_orders(&redis, &id).await[&damaged.parse::<u64>().unwrap()].clone();
    assert_eq!(
        (held.status, held.version),
        (OrderStatus::PendingPayment, 1)
    );
    assert_eq!(
        remaining(&c, &id).await,
        4,
        "only the healthy order's unit came back"
    );
    let deadline: Option<f64> = conn
        .zscore(CampaignKeys::new(&id).deadlines, &damaged)
        .await
        .unwrap();
    assert!(
        deadline.is_some(),
        "the malformed order keeps its deadline entry"
    );

    let status = tokio::task::spawn_blocking(move || gateway.terminate())
        .await
        .unwrap();
    assert!(status.success());
    let log = std::fs::read_to_string(home.path().join("gateway.log")).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("malformed data in Redis") && l.contains(&damaged))
        .collect();
    assert_eq!(lines.len(), 1, "logged once, not every sweep: {log}");
}

/// `t` in Unix milliseconds, as the gateway's clock reads.
fn unix_ms(t: SystemTime) -> i64 {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}
