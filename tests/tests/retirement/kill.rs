//! A gateway SIGKILLed in the middle of a retirement, and again in the middle of the archive
//! pass: the next pass finishes the work, and no order is lost or read twice.

use std::time::{Duration, Instant};

use flashgate_stock::CampaignKeys;
use flashgate_tests::eventually;
use flashgate_tests::gateway::Process;
use flashgate_tests::redis_memory::campaign_keys;
use flashgate_tests::scenario::Scenario;
use flashgate_tests::store_home::Backend;
use serde_json::Value;

use crate::checks::{never_sells_again, reads, retired, rows};
use crate::sale::{Settled, gateway, retiring_after, settled_sale};

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
    let mut process = Process::start(&retiring, dir.path());
    // Each gateway after this one starts on its address, once it is killed.
    process.pin(&mut retiring);
    kill_once_fenced(&mut process, &mut sale).await;

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
    kill_mid_archive(&mut process, &sale).await;
    let archived = reads(&Process::start(&retiring, dir.path()).client(), &sale, 101).await;
    assert_eq!(before, archived, "a read changed while half archived");

    let process = Process::start(&archiving, dir.path());
    check_archived_once(&process, &mut sale, &before, total).await;
}

/// Kills `process` as soon as its retirement fences the campaign (or later, wherever the kill
/// lands: its keys already going).
async fn kill_once_fenced(process: &mut Process, sale: &mut Settled) {
    let meta = CampaignKeys::new(&sale.id).meta;
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
}

/// Kills `process` once its archive pass has moved something, checking it had not moved all.
async fn kill_mid_archive(process: &mut Process, sale: &Settled) {
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
}

/// Once `process`'s pass archives every order: the archive holds each of the `total` once,
/// every read is as `before`, every order is stored and listed once, and nothing sells.
async fn check_archived_once(process: &Process, sale: &mut Settled, before: &[Value], total: u64) {
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
    let after = reads(&process.client(), sale, 101).await;
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
    never_sells_again(&process.client(), sale).await;
}
