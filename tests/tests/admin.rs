//! The admin API and hot reload: a wrong or missing token changes nothing, an invalid file is
//! refused with every error named and the old config stays, a valid one changes campaign
//! windows while purchases are in flight without failing any, and SIGHUP reloads too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use flashgate_tests::client::Client;
use flashgate_tests::gateway::{InProcess, Process};
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::store_home::{Backend, StoreHome};
use flashgate_tests::{eventually, free_port};
use http::{Method, StatusCode};
use serde_json::json;

const ADMIN_TOKEN: &str = "admin-token-for-the-tests-0123";

/// A scenario with an admin listener; returns it and the admin address.
fn with_admin(home: &StoreHome, campaigns: Vec<CampaignSpec>) -> (Scenario, String) {
    let mut scenario = home.scenario(campaigns);
    let admin = format!("127.0.0.1:{}", free_port());
    scenario.extra = format!("\n[admin]\nlisten = \"{admin}\"\ntoken = \"{ADMIN_TOKEN}\"\n");
    (scenario, admin)
}

fn upcoming(prefix: &str) -> CampaignSpec {
    CampaignSpec {
        start: "2098-01-01T00:00:00Z".into(),
        ..CampaignSpec::open(prefix, 1_000, 1)
    }
}

async fn reload(admin: &Client, token: Option<&str>) -> flashgate_tests::client::Reply {
    admin
        .send(Method::POST, "/admin/v1/reload", token, "")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_admin_token_gets_401_and_changes_nothing() {
    let home = StoreHome::new(Backend::Sqlite);
    let a = CampaignSpec::open("adm-a", 100, 1);
    let (mut scenario, admin_addr) = with_admin(&home, vec![a]);
    let file = home.path().join("gateway.toml");
    let gateway = InProcess::start_from_file(&scenario, &file);
    let (client, admin) = (gateway.client(), Client::new(admin_addr.parse().unwrap()));

    // The file now has a second campaign; only a reload with the right token adds it.
    let b = CampaignSpec::open("adm-b", 100, 1);
    let b_id = b.id.clone();
    scenario.campaigns.push(b);
    std::fs::write(&file, scenario.toml()).unwrap();
    for token in [
        None,
        Some("not-the-admin-token-at-all"),
        Some("admin-token-for-the-tests-0124"),
    ] {
        let refused = reload(&admin, token).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
        assert_eq!(refused.code(), "invalid_admin_token");
        let listed = admin
            .send(Method::GET, "/admin/v1/campaigns", token, "")
            .await
            .unwrap();
        assert_eq!(listed.status, StatusCode::UNAUTHORIZED);
    }
    let before = client
        .purchase("adm-buyer", json!({ "campaign_id": b_id }))
        .await
        .unwrap();
    assert_eq!(
        before.code(),
        "unknown_campaign",
        "no change without the token"
    );

    let done = reload(&admin, Some(ADMIN_TOKEN)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["added"], json!([b_id]));
    let after = client
        .purchase("adm-buyer", json!({ "campaign_id": b_id }))
        .await
        .unwrap();
    assert_eq!(after.status, StatusCode::ACCEPTED, "{}", after.body);
    gateway.stop().unwrap();
}

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
        .map(|w| {
            let (client, stop, id) = (client.clone(), stop.clone(), busy_id.clone());
            tokio::spawn(async move {
                let mut replies = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let reply = client
                        .purchase(&format!("busy-{w}-{n}"), json!({ "campaign_id": id }))
                        .await
                        .unwrap();
                    replies.push(reply);
                    n += 1;
                }
                replies
            })
        })
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_creates_updates_restocks_and_closes_campaigns() {
    let home = StoreHome::new(Backend::Sqlite);
    let a = CampaignSpec::open("adm-edit", 10, 1);
    let a_id = a.id.clone();
    let (scenario, admin_addr) = with_admin(&home, vec![a]);
    let file = home.path().join("gateway.toml");
    let gateway = InProcess::start_from_file(&scenario, &file);
    let (client, admin) = (gateway.client(), Client::new(admin_addr.parse().unwrap()));
    let call = |method: Method, path: String, body: serde_json::Value| {
        let admin = admin.clone();
        async move {
            admin
                .send(method, &path, Some(ADMIN_TOKEN), body.to_string())
                .await
                .unwrap()
        }
    };

    // An operator's comment in the file survives the API's edits.
    let commented = format!(
        "# operators: keep this comment\n{}",
        std::fs::read_to_string(&file).unwrap()
    );
    std::fs::write(&file, commented).unwrap();

    // Create a campaign; it sells at once, and it is in the file for the next reload.
    let new_id = flashgate_tests::scenario::unique_id("adm-new");
    let fields = json!({
        "sku": "SKU-NEW", "name": "made by the admin API", "unit_price_cents": 500,
        "stock": 5, "per_user_limit": 1, "start": "2020-01-01T00:00:00Z",
        "end": "2099-01-01T00:00:00Z", "pay_timeout": "15m",
    });
    let created = call(Method::PUT, format!("/admin/v1/campaigns/{new_id}"), fields).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let bought = client
        .purchase("new-buyer", json!({ "campaign_id": new_id }))
        .await
        .unwrap();
    assert_eq!(bought.status, StatusCode::ACCEPTED, "{}", bought.body);
    let edited = std::fs::read_to_string(&file).unwrap();
    assert!(edited.contains(&new_id));
    assert!(
        edited.contains("# operators: keep this comment"),
        "{edited}"
    );
    let again = reload(&admin, Some(ADMIN_TOKEN)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["added"], json!([]));

    // A refused update leaves the file and the campaign as they were.
    let before = std::fs::read_to_string(&file).unwrap();
    let refused = call(
        Method::PUT,
        format!("/admin/v1/campaigns/{new_id}"),
        json!({ "unit_price_cents": -3 }),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    let unknown = call(
        Method::PUT,
        format!("/admin/v1/campaigns/{new_id}"),
        json!({ "colour": "red" }),
    )
    .await;
    assert_eq!(unknown.code(), "unknown_field");

    // Stock with its accounting: 4 of 10 sold; the total cannot go below 4.
    for n in 0..4 {
        let r = client
            .purchase(&format!("stock-{n}"), json!({ "campaign_id": a_id }))
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let stock = format!("/admin/v1/campaigns/{a_id}/stock");
    let below = call(Method::POST, stock.clone(), json!({ "stock_total": 3 })).await;
    assert_eq!(below.status, StatusCode::CONFLICT);
    assert_eq!(below.code(), "stock_below_taken");
    let raised = call(Method::POST, stock.clone(), json!({ "stock_total": 20 })).await;
    assert_eq!(raised.status, StatusCode::OK, "{}", raised.body);
    assert_eq!(raised.body["taken"], 4);
    assert_eq!(raised.body["remaining"], 16);
    let mut accepted = 0;
    for n in 0..30 {
        let r = client
            .purchase(&format!("more-{n}"), json!({ "campaign_id": a_id }))
            .await
            .unwrap();
        if r.status == StatusCode::ACCEPTED {
            accepted += 1;
        } else {
            assert_eq!(r.code(), "sold_out", "{}", r.body);
        }
    }
    assert_eq!(accepted, 16, "exactly the raised stock sells");

    // Closing ends the sale now.
    let closed = call(
        Method::POST,
        format!("/admin/v1/campaigns/{new_id}/close"),
        json!({}),
    )
    .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    let late = client
        .purchase("late-buyer", json!({ "campaign_id": new_id }))
        .await
        .unwrap();
    assert_eq!(late.code(), "ended");
    let wrong_token = admin
        .send(
            Method::POST,
            &format!("/admin/v1/campaigns/{a_id}/close"),
            Some("nope"),
            "",
        )
        .await
        .unwrap();
    assert_eq!(wrong_token.status, StatusCode::UNAUTHORIZED);
    let still_open = client
        .purchase("open-buyer", json!({ "campaign_id": a_id }))
        .await
        .unwrap();
    assert_eq!(
        still_open.code(),
        "sold_out",
        "the other campaign is untouched"
    );
    gateway.stop().unwrap();
}
