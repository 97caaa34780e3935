//! A settled campaign retired on SQLite and on PostgreSQL: every read the same, payments
//! answered as before, Redis' memory back, and no stock after a restart or a reload.

use std::time::Duration;

use flashgate_stock::CampaignKeys;
use flashgate_tests::client::{Client, metrics_series};
use flashgate_tests::eventually;
use flashgate_tests::gateway::{InProcess, Process};
use flashgate_tests::redis_memory::{campaign_keys, used_memory};
use flashgate_tests::store_home::Backend;
use http::StatusCode;
use serde_json::Value;

use crate::checks::{never_sells_again, reads, retired};
use crate::sale::{
    PRICE, Settled, expired_order, gateway, retiring_after, settled_sale, with_admin,
};

async fn retire_and_compare(backend: Backend, users: usize, per_user: u32, step: usize) {
    let mut sale = settled_sale(backend, users, per_user).await;
    let full = used_memory(&mut sale.conn).await;
    let before = reads(&gateway(&sale).client(), &sale, step).await;
    assert_eq!(before[0]["status"], "ended", "{}", before[0]);
    let bytes = check_metrics_before_retirement(&sale).await;

    // A gateway that retires after 1 s: the campaign ended long enough ago.
    sale.gateway.take().unwrap().stop().unwrap();
    let (retiring, admin) = with_admin(&retiring_after(&sale.scenario, "1s"));
    sale.gateway = Some(InProcess::start(&retiring));
    retired(&mut sale).await;
    check_metrics_after_retirement(&admin, &bytes).await;
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

    check_payments_answer_as_before(&client, &sale).await;
    check_a_late_payment_is_recorded(&client, &sale).await;
    never_sells_again(&client, &mut sale).await;
    check_no_stock_after_restart_and_reload(sale, &before[0]).await;
}

/// The campaign's Redis bytes show before the retirement, and nothing is retired yet; returns
/// the bytes series' name.
async fn check_metrics_before_retirement(sale: &Settled) -> String {
    let metrics = metrics_series(&sale.admin).await;
    let bytes = format!("flashgate_campaign_redis_bytes{{campaign=\"{}\"}}", sale.id);
    assert!(
        metrics[&bytes] > (sale.orders.len() * 50) as f64,
        "{bytes}: {}",
        metrics[&bytes]
    );
    assert_eq!(metrics["flashgate_campaigns_retired"], 0.0);
    bytes
}

/// One campaign retired with nothing left in Redis; the campaign with an unpaid order waits,
/// and its wait shows.
async fn check_metrics_after_retirement(admin: &str, bytes: &str) {
    let metrics = metrics_series(admin).await;
    assert_eq!(metrics["flashgate_campaigns_retired"], 1.0);
    assert!(
        !metrics.contains_key(bytes),
        "a retired campaign has nothing in Redis"
    );
    // The campaign with an unpaid order waits, and its wait shows.
    let lag = metrics
        .iter()
        .find(|(k, _)| k.starts_with("flashgate_retirement_lag_seconds{campaign=\"unpaid-"))
        .map(|(_, v)| *v);
    assert!(lag.is_some_and(|l| l > 0.0), "{metrics:?}");
}

/// Payments: the first answers again, and a payment id names one payment.
async fn check_payments_answer_as_before(client: &Client, sale: &Settled) {
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
}

/// A late payment of a retired order is recorded (the order becomes refund_required, one
/// version up), a repeat gets the first answer, and a final order cannot be cancelled.
async fn check_a_late_payment_is_recorded(client: &Client, sale: &Settled) {
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
}

/// A restart and a reload (SIGHUP) after the retirement give it no stock; the view keeps
/// `final_view`, its final counts.
async fn check_no_stock_after_restart_and_reload(mut sale: Settled, final_view: &Value) {
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
    assert_eq!(view, *final_view, "the view keeps its final counts");
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
