//! A campaign sold and settled on a private Redis, ready to retire, and the scenario changes
//! the retirement tests make to it.

use std::time::{Duration, Instant};

use flashgate::clock::{now_ms, rfc3339};
use flashgate::order_id::OrderIdGenerator;
use flashgate_stock::{
    CampaignKeys, CampaignLayout, Reservation, ReserveOutcome, Scripts, Transition, lifecycle,
    reserve_batch,
};
use flashgate_tests::client::Client;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_memory::used_memory;
use flashgate_tests::redis_server::RedisServer;
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::store_home::{Backend, StoreHome};
use redis::aio::MultiplexedConnection;

pub(crate) const PRICE: i64 = 1999;

/// Every order: (owner, id, what became of it: 0 paid, 1 cancelled, 2 expired).
pub(crate) type Orders = Vec<(String, u64, usize)>;

/// A campaign sold and settled on a private Redis (its memory is this test's alone), with a
/// gateway that never retires (`retire_after = 0`) still running.
pub(crate) struct Settled {
    pub(crate) redis: RedisServer,
    pub(crate) conn: MultiplexedConnection,
    /// Keeps the store's directory (and database) alive.
    _home: StoreHome,
    pub(crate) scenario: Scenario,
    pub(crate) id: String,
    /// Redis' `used_memory` with the campaign loaded and nothing sold.
    pub(crate) baseline: u64,
    /// Every order: (owner, id, what became of it: 0 paid, 1 cancelled, 2 expired).
    pub(crate) orders: Orders,
    pub(crate) gateway: Option<InProcess>,
    /// The running gateway's admin listener (`/metrics`).
    pub(crate) admin: String,
}

/// `users` buyers buy `per_user` units each, one at a time; of every three orders one is paid,
/// one cancelled and one left to expire. Then one late payment and one second payment are
/// made, and everything settles: every order final, the journal empty.
pub(crate) async fn settled_sale(backend: Backend, users: usize, per_user: u32) -> Settled {
    let redis = RedisServer::start_with(&["--appendonly", "no"]);
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let home = StoreHome::new(backend);
    let mut spec = CampaignSpec::open("retire", (users as u64) * u64::from(per_user), per_user);
    spec.max_quantity = 1;
    spec.pay_timeout = "2s".into();
    // Ended by the time the sale below is over (it sells straight through the script).
    spec.end = rfc3339(now_ms() + 1_000);
    spec.unit_price_cents = PRICE;
    let id = spec.id.clone();
    // Beside it, a campaign that ended with an order still unpaid: never settled, never retired.
    let mut unpaid = CampaignSpec::open("unpaid", 1, 1);
    unpaid.end = spec.end.clone();
    let unpaid_keys = CampaignKeys::new(&unpaid.id);
    let mut scenario = home.scenario(vec![spec, unpaid]);
    scenario.redis_url = redis.url();
    let (first, admin) = with_admin(&retiring_after(&scenario, "0"));
    let gateway = InProcess::start(&first);
    let baseline = used_memory(&mut conn).await;

    let keys = CampaignKeys::new(&id);
    let scripts = Scripts::new();
    let ids = OrderIdGenerator::new(flashgate::order_id::MAX_NODE_ID).unwrap();
    hold_an_unpaid_order(&mut conn, &scripts, &ids, &unpaid_keys).await;
    let buyers: Vec<String> = (0..users).map(|n| format!("buyer-{n}")).collect();
    let mut orders = Vec::with_capacity(users * per_user as usize);
    for _ in 0..per_user {
        for chunk in buyers.chunks(500) {
            sell_a_chunk(&mut conn, &scripts, &ids, &keys, chunk, &mut orders).await;
        }
    }
    let layout = CampaignLayout::new(&id, 1);
    settle(&mut conn, &layout).await;
    pay_for_nothing(&gateway.client(), &orders).await;
    settle(&mut conn, &layout).await;
    Settled {
        redis,
        conn,
        _home: home,
        scenario,
        id,
        baseline,
        orders,
        gateway: Some(gateway),
        admin,
    }
}

/// One order of the `unpaid` campaign, left unpaid for ever.
async fn hold_an_unpaid_order(
    conn: &mut MultiplexedConnection,
    scripts: &Scripts,
    ids: &OrderIdGenerator,
    unpaid_keys: &CampaignKeys,
) {
    let hold = Reservation {
        user_id: "holder",
        order_id: ids.next("holder").unwrap(),
        quantity: 1,
    };
    let held = reserve_batch(conn, scripts, unpaid_keys, now_ms(), &[hold])
        .await
        .unwrap();
    assert!(matches!(held[..], [ReserveOutcome::Accepted(_)]));
}

/// One unit to each buyer of `chunk` in one batch; then, by its place in `orders`, each new
/// order is paid, cancelled or left to expire, and joins `orders`.
async fn sell_a_chunk(
    conn: &mut MultiplexedConnection,
    scripts: &Scripts,
    ids: &OrderIdGenerator,
    keys: &CampaignKeys,
    chunk: &[String],
    orders: &mut Orders,
) {
    let batch: Vec<Reservation<'_>> = chunk
        .iter()
        .map(|user| Reservation {
            user_id: user,
            order_id: ids.next(user).unwrap(),
            quantity: 1,
        })
        .collect();
    let out = reserve_batch(conn, scripts, keys, now_ms(), &batch)
        .await
        .unwrap();
    assert!(out.iter().all(|o| matches!(o, ReserveOutcome::Accepted(_))));
    for r in &batch {
        let fate = orders.len() % 3;
        let done = match fate {
            0 => lifecycle::pay(
                conn,
                scripts,
                keys,
                now_ms(),
                r.order_id,
                PRICE,
                &format!("pay-{}", r.order_id),
            )
            .await
            .unwrap(),
            1 => lifecycle::cancel(conn, scripts, keys, now_ms(), r.order_id, r.user_id)
                .await
                .unwrap(),
            _ => Transition::NotFound,
        };
        assert!(
            fate == 2 || matches!(done, Transition::Paid(_) | Transition::Cancelled(_)),
            "{done:?}"
        );
        orders.push((r.user_id.to_owned(), r.order_id, fate));
    }
}

/// Money that bought nothing: a payment after expiry, a second payment of a paid order.
async fn pay_for_nothing(client: &Client, orders: &Orders) {
    let expired = expired_order(orders, 0);
    let late = client
        .pay_with("late-1", &expired.to_string(), PRICE, "succeeded")
        .await;
    assert_eq!(
        late.body["payment_outcome"], "refund_required",
        "{}",
        late.body
    );
    let second = client
        .pay_with("second-1", &orders[0].1.to_string(), PRICE, "succeeded")
        .await;
    assert_eq!(second.body["payment_outcome"], "refund_required");
}

/// `scenario` with an admin listener of its own, and its address.
pub(crate) fn with_admin(scenario: &Scenario) -> (Scenario, String) {
    let mut scenario = scenario.clone();
    let admin = format!("127.0.0.1:{}", flashgate_tests::free_port());
    scenario.extra = format!("\n[admin]\nlisten = \"{admin}\"\n");
    (scenario, admin)
}

/// `scenario` with `persistence.retire_after = after`.
pub(crate) fn retiring_after(scenario: &Scenario, after: &str) -> Scenario {
    let mut scenario = scenario.clone();
    scenario
        .persistence
        .push_str(&format!("retire_after = \"{after}\"\n"));
    scenario
}

pub(crate) fn gateway(sale: &Settled) -> &InProcess {
    sale.gateway.as_ref().unwrap()
}

/// The `n`th order left to expire.
pub(crate) fn expired_order(orders: &[(String, u64, usize)], n: usize) -> u64 {
    orders.iter().filter(|o| o.2 == 2).nth(n).unwrap().1
}

/// Waits until every order is final and the store holds it (the journal is empty).
pub(crate) async fn settle(conn: &mut MultiplexedConnection, layout: &CampaignLayout) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = flashgate_stock::retire::settlement(conn, layout, 1_000)
            .await
            .unwrap();
        if s.is_settled() {
            return;
        }
        assert!(Instant::now() < deadline, "never settled: {s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
