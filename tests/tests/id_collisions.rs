//! Two orders under one id: the second is set aside with an alarm, never acked as stored (which
//! would lose it); and a gateway restarted with its clock stepped back never mints an id at or
//! below those it minted before.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flashgate_stock::CampaignKeys;
use flashgate_stock::{Order, OrderStatus};
use flashgate_tests::gateway::InProcess;
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::store_home::{Backend, StoreHome};
use flashgate_tests::{eventually, shared_redis};
use http::StatusCode;
use redis::AsyncCommands;
use serde_json::json;

const ADMIN_TOKEN: &str = "admin-token-for-the-tests-0123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_id_another_stored_order_holds_is_set_aside_not_lost() {
    order_under_a_stored_orders_id(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_id_another_stored_order_holds_is_set_aside_not_lost_on_postgres() {
    order_under_a_stored_orders_id(Backend::Postgres).await;
}

async fn order_under_a_stored_orders_id(backend: Backend) {
    let home = StoreHome::new(backend);
    let campaign = CampaignSpec::open("collide", 100, 1);
    let id = campaign.id.clone();
    let mut scenario = home.scenario(vec![campaign]);
    let admin = format!("127.0.0.1:{}", flashgate_tests::free_port());
    scenario.extra = format!("\n[admin]\nlisten = \"{admin}\"\ntoken = \"{ADMIN_TOKEN}\"\n");
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();

    // The id the gateway will give alice's order is known in advance (an order token) …
    let issued = client.order_token("alice", &id).await;
    let order_id: u64 = issued["order_id"].as_str().unwrap().parse().unwrap();
    // … and another order of another campaign and user is already stored under it.
    let squatter = squatter_under(order_id);
    let written = in_store(&scenario, {
        let squatter = squatter.clone();
        move |store| store.write_batch(&[squatter]).unwrap().stored
    });
    assert_eq!(written, 1);

    // Alice's purchase is accepted (Redis is the commit point) and a second buyer's too.
    let bought = client
        .purchase(
            "alice",
            json!({ "campaign_id": id, "token": issued["token"] }),
        )
        .await
        .unwrap();
    assert_eq!(bought.status, StatusCode::ACCEPTED, "{}", bought.body);
    assert_eq!(bought.order_id(), order_id.to_string());
    let other = client
        .purchase("carol", json!({ "campaign_id": id }))
        .await
        .unwrap();
    assert_eq!(other.status, StatusCode::ACCEPTED, "{}", other.body);

    // Alice's order is set aside with the reason, not acked out of the journal as stored.
    check_set_aside_not_acked(&id, order_id).await;

    // The stored order is untouched, carol's order is stored, and the alarm is counted.
    let carol: u64 = other.order_id().parse().unwrap();
    let (kept, carol_row) = in_store(&scenario, move |store| {
        (store.get(order_id).unwrap(), store.get(carol).unwrap())
    });
    assert_eq!(kept, Some(squatter));
    let metrics = flashgate_tests::client::metrics_series(&admin).await;
    assert_eq!(metrics["flashgate_order_id_collisions_total"], 1.0);
    assert_eq!(metrics["flashgate_orders_set_aside_total"], 1.0);
    if carol_row.is_none() {
        let s = scenario.clone();
        eventually(Duration::from_secs(10), "carol's order is stored", || {
            let s = s.clone();
            async move { in_store(&s, move |store| store.get(carol).unwrap()).is_some() }
        })
        .await;
    }
    gateway.stop().unwrap();
}

/// An order of another campaign and user under `order_id`, pending payment.
fn squatter_under(order_id: u64) -> Order {
    let now = flashgate::clock::now_ms();
    Order {
        order_id,
        campaign_id: "some-other-campaign".into(),
        sku: "OTHER".into(),
        user_id: "bob".into(),
        quantity: 1,
        unit_price_cents: 500,
        status: OrderStatus::PendingPayment,
        version: 1,
        created_at_ms: now - 60_000,
        pay_deadline_ms: now + 3_600_000,
        paid_at_ms: None,
        updated_at_ms: now - 60_000,
    }
}

/// Alice's order `order_id` of campaign `id` is set aside with the reason, not acked out of
/// the journal as stored, and Redis still holds it.
async fn check_set_aside_not_acked(id: &str, order_id: u64) {
    let mut redis = shared_redis().await;
    let poisoned = CampaignKeys::new(id).poisoned;
    let (p, o) = (poisoned.clone(), order_id.to_string());
    eventually(
        Duration::from_secs(10),
        "the colliding order is set aside in fg:{c}:poisoned",
        || {
            let (mut redis, p, o) = (redis.clone(), p.clone(), o.clone());
            async move { redis.hexists::<_, _, bool>(&p, &o).await.unwrap() }
        },
    )
    .await;
    let reason: String = redis.hget(&poisoned, order_id.to_string()).await.unwrap();
    assert!(
        reason.contains("collides")
            && reason.contains("some-other-campaign")
            && reason.contains("bob"),
        "{reason}"
    );
    let journaled: bool = redis
        .sismember(CampaignKeys::new(id).journal, order_id.to_string())
        .await
        .unwrap();
    assert!(!journaled, "set aside, not retried forever");
    let record: Option<String> = redis
        .hget(CampaignKeys::new(id).orders, order_id.to_string())
        .await
        .unwrap();
    assert!(
        record.is_some_and(|r| r.starts_with("alice|")),
        "Redis still has alice's order"
    );
}

/// Runs `f` on the scenario's store, on a thread of its own (the PostgreSQL client runs a
/// runtime of its own, which tokio forbids on a thread that drives async tasks).
fn in_store<T: Send>(
    scenario: &Scenario,
    f: impl FnOnce(&dyn flashgate::store::OrderStore) -> T + Send,
) -> T {
    let config = scenario.config().store;
    std::thread::scope(|s| {
        s.spawn(move || f(flashgate::store::open(&config).unwrap().as_ref()))
            .join()
            .unwrap()
    })
}

/// A clock moved by hand; each wait of the generator moves it 1 ms forward.
struct HandClock(std::sync::atomic::AtomicI64);

impl HandClock {
    fn at(ms: i64) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self(std::sync::atomic::AtomicI64::new(ms)))
    }
    fn set(&self, ms: i64) {
        self.0.store(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl flashgate::order_id::Clock for HandClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn pause(&self, _behind_ms: u64) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

type Generator = flashgate::order_id::OrderIdGenerator<std::sync::Arc<HandClock>>;

/// One life of a gateway on `node`: its lease (taken over from an earlier life on the same
/// address, as a restarted gateway does) and its generator, wired as `flashgate::run` wires
/// them, on a clock starting at `clock_ms`.
async fn life(
    redis: &mut flashgate_stock::StockConnection,
    node: u16,
    listen: std::net::SocketAddr,
    clock_ms: i64,
) -> (
    flashgate::node_lease::NodeLease,
    std::sync::Arc<HandClock>,
    Generator,
) {
    let lease = flashgate::node_lease::NodeLease::acquire(redis, node, listen, true)
        .await
        .unwrap();
    let clock = HandClock::at(clock_ms);
    let ids = flashgate::order_id::OrderIdGenerator::with_clock(
        node,
        clock.clone(),
        flashgate::order_id::DEFAULT_MAX_ROLLBACK_WAIT,
    )
    .unwrap()
    .leased(lease.held())
    .starting_after(lease.floor_ms())
    .minting_until(lease.mint_until());
    (lease, clock, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restarted_with_its_clock_stepped_back_never_mints_an_earlier_id() {
    let node = flashgate_tests::scenario::fresh_node_id();
    let listen: std::net::SocketAddr = format!("127.0.0.1:{}", flashgate_tests::free_port())
        .parse()
        .unwrap();
    let info = redis::IntoConnectionInfo::into_connection_info(flashgate_tests::shared_redis_url())
        .unwrap();
    let timeouts = flashgate_stock::Timeouts {
        response: std::time::Duration::from_secs(2),
        connect: std::time::Duration::from_secs(2),
    };
    let mut redis = flashgate_stock::StockConnection::connect(info, timeouts)
        .await
        .unwrap();
    let now = flashgate::clock::now_ms();

    // First life: 3,000 ids (three milliseconds' worth), then killed (no release).
    let (_first, _clock, ids) = life(&mut redis, node, listen, now).await;
    let minted: Vec<u64> = (0..3_000).map(|_| ids.next("42").unwrap()).collect();
    let highest = *minted.iter().max().unwrap();
    drop(ids);

    // Second life on the same node id, the clock stepped back two seconds: nothing is minted
    // until the clock passes what the first life may have minted, and then only above it.
    let (second, clock, ids) = life(&mut redis, node, listen, now - 2_000).await;
    assert!(
        second.floor_ms() >= flashgate::order_id::timestamp_ms_of(highest),
        "the lease kept the mark"
    );
    let refused = ids.next("42");
    assert!(
        matches!(
            refused,
            Err(flashgate::order_id::OrderIdError::ClockMovedBack { .. })
        ),
        "{refused:?}"
    );
    clock.set(flashgate::order_id::timestamp_ms_of(highest));
    assert!(
        ids.next("42").is_err(),
        "not in the last millisecond of the first life either"
    );
    clock.set(second.floor_ms() + 1);
    let after: Vec<u64> = (0..100).map(|_| ids.next("42").unwrap()).collect();
    assert!(
        after.iter().all(|id| *id > highest),
        "ids above every earlier one"
    );
    // No further ahead than the mark the lease recorded: a successor starts from it.
    clock.set(
        second
            .mint_until()
            .load(std::sync::atomic::Ordering::SeqCst)
            + 1,
    );
    assert!(matches!(
        ids.next("42"),
        Err(flashgate::order_id::OrderIdError::PastLeaseMark { .. })
    ));

    // A clean stop records the last id minted: a third life, its clock stepped back again, still
    // mints only above everything before.
    clock.set(
        second
            .mint_until()
            .load(std::sync::atomic::Ordering::SeqCst),
    );
    let last = ids.next("42").unwrap();
    second.release(&mut redis, ids.last_ms()).await;
    // The third lease's own mark is the system clock plus MINT_AHEAD: taken in the very
    // millisecond the second one was, it would equal the second's and leave nothing to mint
    // above it. A restarted gateway is never that quick; wait out that millisecond.
    let ahead = i64::try_from(flashgate::node_lease::MINT_AHEAD.as_millis()).unwrap();
    let second_mark = second
        .mint_until()
        .load(std::sync::atomic::Ordering::SeqCst);
    while flashgate::clock::now_ms() + ahead <= second_mark {
        tokio::task::yield_now().await;
    }
    let (third, clock, ids) = life(&mut redis, node, listen, now - 1_000).await;
    assert!(ids.next("42").is_err());
    clock.set(third.floor_ms() + 1);
    assert!(ids.next("42").unwrap() > last);
    third.release(&mut redis, ids.last_ms()).await;
}
