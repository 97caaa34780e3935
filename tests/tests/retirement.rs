//! Issue #13 part 1: a settled campaign retired from Redis by the gateway. Every order reads
//! the same before and after (by id and in the owner's list), the campaign view keeps its final
//! counts, payments get their first answers and a late one is recorded, Redis gives its memory
//! back, and neither a restart nor a reload gives the campaign stock again — on SQLite and on
//! PostgreSQL, and with the gateway SIGKILLed in the middle of a retirement.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use flashgate::clock::{now_ms, rfc3339};
use flashgate::order_id::OrderIdGenerator;
use flashgate_stock::{
    CampaignKeys, CampaignLayout, Reservation, ReserveOutcome, Scripts, Transition, lifecycle,
    reserve_batch,
};
use flashgate_tests::client::{Client, metrics_series};
use flashgate_tests::eventually;
use flashgate_tests::gateway::{InProcess, Process};
use flashgate_tests::redis_memory::{campaign_keys, used_memory};
use flashgate_tests::redis_server::RedisServer;
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::store_home::{Backend, StoreHome};
use http::StatusCode;
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

const PRICE: i64 = 1999;

/// A campaign sold and settled on a private Redis (its memory is this test's alone), with a
/// gateway that never retires (`retire_after = 0`) still running.
struct Settled {
    redis: RedisServer,
    conn: MultiplexedConnection,
    /// Keeps the store's directory (and database) alive.
    _home: StoreHome,
    scenario: Scenario,
    id: String,
    /// Redis' `used_memory` with the campaign loaded and nothing sold.
    baseline: u64,
    /// Every order: (owner, id, what became of it: 0 paid, 1 cancelled, 2 expired).
    orders: Vec<(String, u64, usize)>,
    gateway: Option<InProcess>,
    /// The running gateway's admin listener (`/metrics`).
    admin: String,
}

/// `users` buyers buy `per_user` units each, one at a time; of every three orders one is paid,
/// one cancelled and one left to expire. Then one late payment and one second payment are
/// made, and everything settles: every order final, the journal empty.
async fn settled_sale(backend: Backend, users: usize, per_user: u32) -> Settled {
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
    let hold = Reservation {
        user_id: "holder",
        order_id: ids.next("holder").unwrap(),
        quantity: 1,
    };
    let held = reserve_batch(&mut conn, &scripts, &unpaid_keys, now_ms(), &[hold])
        .await
        .unwrap();
    assert!(matches!(held[..], [ReserveOutcome::Accepted(_)]));
    let buyers: Vec<String> = (0..users).map(|n| format!("buyer-{n}")).collect();
    let mut orders = Vec::with_capacity(users * per_user as usize);
    for _ in 0..per_user {
        for chunk in buyers.chunks(500) {
            let batch: Vec<Reservation<'_>> = chunk
                .iter()
                .map(|user| Reservation {
                    user_id: user,
                    order_id: ids.next(user).unwrap(),
                    quantity: 1,
                })
                .collect();
            let out = reserve_batch(&mut conn, &scripts, &keys, now_ms(), &batch)
                .await
                .unwrap();
            assert!(out.iter().all(|o| matches!(o, ReserveOutcome::Accepted(_))));
            for r in &batch {
                let fate = orders.len() % 3;
                let done = match fate {
                    0 => lifecycle::pay(
                        &mut conn,
                        &scripts,
                        &keys,
                        now_ms(),
                        r.order_id,
                        PRICE,
                        &format!("pay-{}", r.order_id),
                    )
                    .await
                    .unwrap(),
                    1 => lifecycle::cancel(
                        &mut conn,
                        &scripts,
                        &keys,
                        now_ms(),
                        r.order_id,
                        r.user_id,
                    )
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
    }
    let layout = CampaignLayout::new(&id, 1);
    settle(&mut conn, &layout).await;
    // Money that bought nothing: a payment after expiry, a second payment of a paid order.
    let client = gateway.client();
    let expired = expired_order(&orders, 0);
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

/// `scenario` with an admin listener of its own, and its address.
fn with_admin(scenario: &Scenario) -> (Scenario, String) {
    let mut scenario = scenario.clone();
    let admin = format!("127.0.0.1:{}", flashgate_tests::free_port());
    scenario.extra = format!("\n[admin]\nlisten = \"{admin}\"\n");
    (scenario, admin)
}

/// `scenario` with `persistence.retire_after = after`.
fn retiring_after(scenario: &Scenario, after: &str) -> Scenario {
    let mut scenario = scenario.clone();
    scenario
        .persistence
        .push_str(&format!("retire_after = \"{after}\"\n"));
    scenario
}

fn gateway(sale: &Settled) -> &InProcess {
    sale.gateway.as_ref().unwrap()
}

/// The `n`th order left to expire.
fn expired_order(orders: &[(String, u64, usize)], n: usize) -> u64 {
    orders.iter().filter(|o| o.2 == 2).nth(n).unwrap().1
}

/// Waits until every order is final and the store holds it (the journal is empty).
async fn settle(conn: &mut MultiplexedConnection, layout: &CampaignLayout) {
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

/// What a reader sees of the campaign: the view, every buyer's whole list (page by page), and
/// every `step`th order by id.
async fn reads(client: &Client, sale: &Settled, step: usize) -> Vec<Value> {
    let mut seen = vec![
        client
            .get(&format!("/api/v1/campaigns/{}", sale.id), None)
            .await
            .body,
    ];
    let mut buyers: Vec<&str> = sale.orders.iter().map(|o| o.0.as_str()).collect();
    buyers.sort_unstable();
    buyers.dedup();
    for buyer in buyers {
        let mut cursor = String::new();
        loop {
            let page = client
                .get(&format!("/api/v1/orders?limit=100{cursor}"), Some(buyer))
                .await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            let next = page.body["next_cursor"].as_str().map(str::to_owned);
            seen.push(page.body);
            match next {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
    }
    for (owner, order, _) in sale.orders.iter().step_by(step) {
        let read = client
            .get(&format!("/api/v1/orders/{order}"), Some(owner))
            .await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.body);
        seen.push(read.body);
    }
    seen
}

/// Waits until the ledger says the campaign is retired and Redis holds no key of it.
async fn retired(sale: &mut Settled) {
    let config = sale.scenario.config().store;
    let id = sale.id.clone();
    let conn = sale.conn.clone();
    eventually(Duration::from_secs(120), "campaign retired", || {
        let (config, id, mut conn) = (config.clone(), id.clone(), conn.clone());
        async move {
            let ledger = tokio::task::spawn_blocking({
                let id = id.clone();
                move || {
                    flashgate::store::open(&config)
                        .unwrap()
                        .campaign_retirement(&id)
                        .unwrap()
                }
            })
            .await
            .unwrap();
            ledger.is_some() && campaign_keys(&mut conn, &id).await.is_empty()
        }
    })
    .await;
}

/// Nothing of `campaign` in Redis, and no purchase of it accepted.
async fn never_sells_again(client: &Client, sale: &mut Settled) {
    assert_eq!(
        campaign_keys(&mut sale.conn, &sale.id).await,
        Vec::<String>::new()
    );
    let bought = client
        .purchase("newcomer", json!({ "campaign_id": sale.id }))
        .await
        .unwrap();
    assert_eq!(
        (bought.status, bought.code()),
        (StatusCode::GONE, "ended"),
        "{}",
        bought.body
    );
    assert_eq!(
        campaign_keys(&mut sale.conn, &sale.id).await,
        Vec::<String>::new()
    );
}

async fn retire_and_compare(backend: Backend, users: usize, per_user: u32, step: usize) {
    let mut sale = settled_sale(backend, users, per_user).await;
    let full = used_memory(&mut sale.conn).await;
    let before = reads(&gateway(&sale).client(), &sale, step).await;
    assert_eq!(before[0]["status"], "ended", "{}", before[0]);
    let metrics = metrics_series(&sale.admin).await;
    let bytes = format!("flashgate_campaign_redis_bytes{{campaign=\"{}\"}}", sale.id);
    assert!(
        metrics[&bytes] > (sale.orders.len() * 50) as f64,
        "{bytes}: {}",
        metrics[&bytes]
    );
    assert_eq!(metrics["flashgate_campaigns_retired"], 0.0);

    // A gateway that retires after 1 s: the campaign ended long enough ago.
    sale.gateway.take().unwrap().stop().unwrap();
    let (retiring, admin) = with_admin(&retiring_after(&sale.scenario, "1s"));
    sale.gateway = Some(InProcess::start(&retiring));
    retired(&mut sale).await;
    let metrics = metrics_series(&admin).await;
    assert_eq!(metrics["flashgate_campaigns_retired"], 1.0);
    assert!(
        !metrics.contains_key(&bytes),
        "a retired campaign has nothing in Redis"
    );
    // The campaign with an unpaid order waits, and its wait shows.
    let lag = metrics
        .iter()
        .find(|(k, _)| k.starts_with("flashgate_retirement_lag_seconds{campaign=\"unpaid-"))
        .map(|(_, v)| *v);
    assert!(lag.is_some_and(|l| l > 0.0), "{metrics:?}");
    let after_memory = used_memory(&mut sale.conn).await;
    assert!(
        after_memory <= sale.baseline + 1024 * 1024,
        "memory back within 1 MB of before the campaign: {} → {full} → {after_memory}",
        sale.baseline
    );

    // Every read answers as before, now from the store.
    let client = gateway(&sale).client();
    let after = reads(&client, &sale, step).await;
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "a read changed with the retirement");
    }

    // Payments: the first answers again, a payment id names one payment, and a late payment
    // is recorded (the order becomes refund_required, one version up).
    let paid = sale.orders[3].1.to_string();
    let again = client
        .pay_with(&format!("pay-{paid}"), &paid, PRICE, "succeeded")
        .await;
    assert_eq!(
        (again.status, again.body["payment_outcome"].as_str()),
        (StatusCode::OK, Some("applied")),
        "{}",
        again.body
    );
    let first_late = expired_order(&sale.orders, 0).to_string();
    let late_again = client
        .pay_with("late-1", &first_late, PRICE, "succeeded")
        .await;
    assert_eq!(late_again.body["payment_outcome"], "refund_required");
    assert_eq!(late_again.body["status"], "refund_required");
    let reused = client.pay_with("late-1", &paid, PRICE, "succeeded").await;
    assert_eq!(
        (reused.status, reused.code()),
        (StatusCode::CONFLICT, "payment_id_reused")
    );
    let (owner, late, _) = sale
        .orders
        .iter()
        .filter(|o| o.2 == 2)
        .nth(1)
        .cloned()
        .unwrap();
    let stored_before = client
        .get(&format!("/api/v1/orders/{late}"), Some(&owner))
        .await
        .body;
    assert_eq!(stored_before["status"], "expired");
    let late_payment = client
        .pay_with("late-2", &late.to_string(), PRICE, "succeeded")
        .await;
    assert_eq!(
        (
            late_payment.status,
            late_payment.body["payment_outcome"].as_str()
        ),
        (StatusCode::OK, Some("refund_required")),
        "{}",
        late_payment.body
    );
    let stored_after = client
        .get(&format!("/api/v1/orders/{late}"), Some(&owner))
        .await
        .body;
    assert_eq!(stored_after["status"], "refund_required");
    let repeated = client
        .pay_with("late-2", &late.to_string(), PRICE, "succeeded")
        .await;
    assert_eq!(
        repeated.body, late_payment.body,
        "a repeat gets the first answer"
    );
    // Cancelling: final orders stay as they are.
    let cancel = client.cancel(&owner, &late.to_string()).await;
    assert_eq!(
        (cancel.status, cancel.code()),
        (StatusCode::CONFLICT, "not_cancellable")
    );
    never_sells_again(&client, &mut sale).await;

    // A restart and a reload (SIGHUP) after the retirement give it no stock.
    sale.gateway.take().unwrap().stop().unwrap();
    // What a retirement cut short after the ledger leaves: keys the next start removes.
    let leftover = CampaignKeys::new(&sale.id).orders;
    redis::cmd("HSET")
        .arg(&leftover)
        .arg(1)
        .arg("left")
        .exec_async(&mut sale.conn)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let restarted = retiring_after(&sale.scenario, "0");
    let process = Process::start(&restarted, dir.path());
    let conn = sale.conn.clone();
    let id = sale.id.clone();
    eventually(Duration::from_secs(10), "leftover keys removed", || {
        let (mut conn, id) = (conn.clone(), id.clone());
        async move { campaign_keys(&mut conn, &id).await.is_empty() }
    })
    .await;
    never_sells_again(&process.client(), &mut sale).await;
    let view = process
        .client()
        .get(&format!("/api/v1/campaigns/{}", sale.id), None)
        .await
        .body;
    assert_eq!(view, before[0], "the view keeps its final counts");
    process.hangup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    never_sells_again(&process.client(), &mut sale).await;
    drop(sale.redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_campaign_of_100k_orders_is_retired_and_reads_the_same_on_sqlite() {
    retire_and_compare(Backend::Sqlite, 100, 1_000, 97).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_campaign_is_retired_and_reads_the_same_on_postgres() {
    retire_and_compare(Backend::Postgres, 20, 300, 7).await;
}

/// SIGKILLed as soon as its retirement fences the campaign (or later, wherever the kill lands):
/// the gateway restarted on the same node takes its fence back and finishes the work; no order
/// is lost or read twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_retirement_and_mid_archive_leaves_work_the_next_pass_finishes() {
    killed_mid_retirement_and_mid_archive(Backend::Sqlite, 30, 1_000, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_archive_on_postgres_leaves_work_the_next_pass_finishes() {
    killed_mid_retirement_and_mid_archive(Backend::Postgres, 10, 300, 5).await;
}

/// `scenario` archiving orders untouched for a second, `batch` rows a step, a pass a second.
fn archiving(scenario: &Scenario, batch: usize) -> Scenario {
    let mut scenario = scenario.clone();
    scenario.extra.push_str(&format!(
        "\n[archive]\nafter = \"1s\"\ninterval = \"1s\"\nbatch = {batch}\n"
    ));
    scenario
}

/// The store's row counts, and how many rows of `campaign` the hot tables still hold.
async fn rows(scenario: &Scenario, campaign: &str) -> (flashgate::store::RowCounts, u64) {
    let config = scenario.config().store;
    let campaign = campaign.to_owned();
    tokio::task::spawn_blocking(move || {
        let store = flashgate::store::open(&config).unwrap();
        (
            store.row_counts().unwrap(),
            store.count_of_campaign(&campaign).unwrap(),
        )
    })
    .await
    .unwrap()
}

/// Retirement, then the archive pass, each with the gateway SIGKILLed in the middle: every
/// read stays the same, every order is stored and listed once, and the next pass finishes.
async fn killed_mid_retirement_and_mid_archive(
    backend: Backend,
    users: usize,
    per_user: u32,
    batch: usize,
) {
    let mut sale = settled_sale(backend, users, per_user).await;
    let before = reads(&gateway(&sale).client(), &sale, 101).await;
    sale.gateway.take().unwrap().stop().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut retiring = retiring_after(&sale.scenario, "1s");
    let meta = CampaignKeys::new(&sale.id).meta;
    let mut process = Process::start(&retiring, dir.path());
    // Each gateway after this one starts on its address, once it is killed.
    process.pin(&mut retiring);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let fenced: Option<String> = redis::cmd("HGET")
            .arg(&meta)
            .arg("retiring")
            .query_async(&mut sale.conn)
            .await
            .unwrap();
        if fenced.is_some() || campaign_keys(&mut sale.conn, &sale.id).await.len() < 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the retirement never started");
    }
    process.kill();
    let left = campaign_keys(&mut sale.conn, &sale.id).await;
    eprintln!("killed mid-retirement with {} keys left", left.len());

    let mut process = Process::start(&retiring, dir.path());
    retired(&mut sale).await;
    let total = sale.orders.len() as u64;
    // Retired, not archived yet: every order in the hot tables.
    assert_eq!(rows(&sale.scenario, &sale.id).await.1, total);
    let after = reads(&process.client(), &sale, 101).await;
    assert_eq!(before, after, "a read changed with the retirement");
    process.kill();

    // The archive pass, killed once it has moved something and before it has moved all.
    let archiving = archiving(&retiring, batch);
    let mut process = Process::start(&archiving, dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (counts, hot) = rows(&sale.scenario, &sale.id).await;
        if counts.archived > 0 {
            process.kill();
            let (counts, hot) = rows(&sale.scenario, &sale.id).await;
            eprintln!("killed mid-archive: {counts:?}, {hot} of the campaign still hot");
            assert!(hot > 0, "the pass finished before it was killed");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the archive pass never started ({hot} hot)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let archived = reads(&Process::start(&retiring, dir.path()).client(), &sale, 101).await;
    assert_eq!(before, archived, "a read changed while half archived");

    let process = Process::start(&archiving, dir.path());
    let scenario = sale.scenario.clone();
    let id = sale.id.clone();
    eventually(Duration::from_secs(120), "every order archived", || {
        let (scenario, id) = (scenario.clone(), id.clone());
        async move { rows(&scenario, &id).await.1 == 0 }
    })
    .await;
    let (counts, _) = rows(&sale.scenario, &sale.id).await;
    // The other campaign's order is unpaid and stays hot; the archive holds each order once.
    assert_eq!((counts.hot, counts.archived), (1, total), "{counts:?}");
    let after = reads(&process.client(), &sale, 101).await;
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "a read changed with the archive");
    }
    // Every order once in the store, and once in its owner's list.
    let stored = flashgate_tests::store_home::stored(&sale.scenario, &sale.id);
    assert_eq!(stored.len(), sale.orders.len());
    let listed: usize = after
        .iter()
        .filter_map(|page| page["orders"].as_array())
        .map(Vec::len)
        .sum();
    assert_eq!(listed, sale.orders.len(), "every order listed once");
    never_sells_again(&process.client(), &mut sale).await;
}

/// The store lacking an order, or holding an older state of one, while the journal is empty
/// (an entry lost to a crash or a flushed Redis): under the fence the retirement writes them,
/// instead of waiting for ever for a reconciler that has nothing to replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_the_store_lacks_with_an_empty_journal_are_written_by_the_retirement() {
    let mut sale = settled_sale(Backend::Sqlite, 4, 30).await;
    let before = reads(&gateway(&sale).client(), &sale, 1).await;
    sale.gateway.take().unwrap().stop().unwrap();
    let (missing, older) = (sale.orders[0].1, sale.orders[1].1);
    let store = sale.scenario.config().store;
    tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(&store.path).unwrap();
        let table = |id: u64| format!("orders_{:02}", id & 15);
        conn.execute(
            &format!("DELETE FROM {} WHERE order_id = ?1", table(missing)),
            [i64::try_from(missing).unwrap()],
        )
        .unwrap();
        let changed = conn
            .execute(
                &format!(
                    "UPDATE {} SET version = version - 1, status = 'pending_payment' \
                     WHERE order_id = ?1",
                    table(older)
                ),
                [i64::try_from(older).unwrap()],
            )
            .unwrap();
        assert_eq!(changed, 1);
    })
    .await
    .unwrap();

    let retiring = retiring_after(&sale.scenario, "1s");
    let dir = tempfile::tempdir().unwrap();
    let process = Process::start(&retiring, dir.path());
    retired(&mut sale).await;
    let after = reads(&process.client(), &sale, 1).await;
    assert_eq!(before, after, "every order reads as before, from the store");
}
