//! Reloading the config file, by the admin API or SIGHUP.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use flashgate_tests::client::{Client, Reply};
use flashgate_tests::eventually;
use flashgate_tests::gateway::{InProcess, Process};
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::store_home::{Backend, StoreHome};
use http::{Method, StatusCode};
use serde_json::json;

use crate::{ADMIN_TOKEN, reload, upcoming, with_admin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_is_refused_with_every_error_and_the_old_config_stays() {
    let home = StoreHome::new(Backend::Sqlite);
    let a = CampaignSpec::open("adm-inv", 100, 1);
    let a_id = a.id.clone();
    let (scenario, admin_addr) = with_admin(&home, vec![a]);
    let file = home.path().join("gateway.toml");
    let gateway = InProcess::start_from_file(&scenario, &file);
    let (client, admin) = (gateway.client(), Client::new(admin_addr.parse().unwrap()));

    // Three mistakes at once.
    let broken = scenario
        .toml()
        .replace("stock = 100", "stock = -5")
        .replace("pay_timeout = \"15m\"", "pay_timeout = \"soon\"")
        .replace("node_id = ", "max_body_bytes = 0\nnode_id = ");
    std::fs::write(&file, broken).unwrap();
    let refused = reload(&admin, Some(ADMIN_TOKEN)).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.code(), "invalid_config");
    let message = refused.body["error"]["message"].as_str().unwrap();
    for field in [
        "campaigns[0].stock",
        "campaigns[0].pay_timeout",
        "server.max_body_bytes",
    ] {
        assert!(message.contains(field), "{field} not named in: {message}");
    }

    // A file that drops a campaign on sale is refused too.
    let mut emptied = scenario.clone();
    emptied.campaigns.clear();
    std::fs::write(&file, emptied.toml()).unwrap();
    let removed = reload(&admin, Some(ADMIN_TOKEN)).await;
    assert_eq!(removed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        removed.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&a_id)
    );

    // The config in force is the old one: the campaign sells, and is listed as before.
    let listed = admin
        .send(Method::GET, "/admin/v1/campaigns", Some(ADMIN_TOKEN), "")
        .await
        .unwrap();
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["campaigns"][0]["id"], a_id.as_str());
    assert_eq!(listed.body["campaigns"][0]["stock_total"], 100);
    let bought = client
        .purchase("inv-buyer", json!({ "campaign_id": a_id }))
        .await
        .unwrap();
    assert_eq!(bought.status, StatusCode::ACCEPTED);
    gateway.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_reload_changes_windows_while_purchases_are_in_flight_and_fails_none() {
    let home = StoreHome::new(Backend::Sqlite);
    let busy = CampaignSpec::open("adm-busy", 1_000_000, 1);
    let later = upcoming("adm-later");
    let (busy_id, later_id) = (busy.id.clone(), later.id.clone());
    let (mut scenario, admin_addr) = with_admin(&home, vec![busy, later]);
    let file = home.path().join("gateway.toml");
    let gateway = InProcess::start_from_file(&scenario, &file);
    let (client, admin) = (gateway.client(), Client::new(admin_addr.parse().unwrap()));
    let not_yet = client
        .purchase("early-bird", json!({ "campaign_id": later_id }))
        .await
        .unwrap();
    assert_eq!(not_yet.code(), "not_started");

    // Purchases by ever new buyers, from four tasks, across the reload.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|w| tokio::spawn(buy_until(client.clone(), busy_id.clone(), w, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // New windows: the busy campaign ends later, the upcoming one opens now.
    scenario.campaigns[0].end = "2099-06-01T00:00:00Z".into();
    scenario.campaigns[1].start = "2020-01-01T00:00:00Z".into();
    std::fs::write(&file, scenario.toml()).unwrap();
    let done = reload(&admin, Some(ADMIN_TOKEN)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["not_applied"], json!([]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut accepted = std::collections::HashSet::new();
    for task in load {
        for reply in task.await.unwrap() {
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
            assert!(accepted.insert(reply.order_id().to_owned()));
        }
    }
    let purchases = accepted.len();
    assert!(
        purchases > 50,
        "only {purchases} purchases around the reload"
    );
    let now_open = client
        .purchase("early-bird", json!({ "campaign_id": later_id }))
        .await
        .unwrap();
    assert_eq!(now_open.status, StatusCode::ACCEPTED, "{}", now_open.body);
    let state = client
        .get(&format!("/api/v1/campaigns/{busy_id}"), None)
        .await;
    assert_eq!(
        state.body["ends_at"], "2099-06-01T00:00:00.000Z",
        "{}",
        state.body
    );
    gateway.stop().unwrap();
    // Every purchase accepted around the reload is stored, exactly once.
    let rows: std::collections::HashSet<String> =
        flashgate_tests::store_home::stored(&scenario, &busy_id)
            .iter()
            .map(|o| o.order_id.to_string())
            .collect();
    assert_eq!(rows, accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_file() {
    let home = StoreHome::new(Backend::Sqlite);
    let later = upcoming("adm-hup");
    let later_id = later.id.clone();
    let (mut scenario, _) = with_admin(&home, vec![later]);
    let gateway = Process::start(&scenario, home.path());
    let client = gateway.client();
    let not_yet = client
        .purchase("hup-buyer", json!({ "campaign_id": later_id }))
        .await
        .unwrap();
    assert_eq!(not_yet.code(), "not_started");

    // Open the campaign in the file the gateway runs on, and send SIGHUP.
    scenario.campaigns[0].start = "2020-01-01T00:00:00Z".into();
    std::fs::write(&gateway.config, scenario.toml()).unwrap();
    gateway.hangup();
    let (c, id) = (client.clone(), later_id.clone());
    eventually(
        Duration::from_secs(5),
        "the reloaded window is in force",
        || {
            let (c, id) = (c.clone(), id.clone());
            async move {
                let reply = c
                    .purchase("hup-buyer", json!({ "campaign_id": id }))
                    .await
                    .unwrap();
                reply.status == StatusCode::ACCEPTED || reply.status == StatusCode::OK
            }
        },
    )
    .await;
}

/// Purchases of `campaign` by ever new buyers (`busy-{worker}-{n}`), one after another, until
/// `stop`: every reply.
async fn buy_until(
    client: Client,
    campaign: String,
    worker: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Reply> {
    let mut replies = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let reply = client
            .purchase(
                &format!("busy-{worker}-{n}"),
                json!({ "campaign_id": campaign }),
            )
            .await
            .unwrap();
        replies.push(reply);
        n += 1;
    }
    replies
}
