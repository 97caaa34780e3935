//! The admin token, and campaigns created, edited, restocked and closed through the API.

use std::path::Path;

use flashgate_tests::client::{Client, Reply};
use flashgate_tests::gateway::InProcess;
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::store_home::{Backend, StoreHome};
use http::{Method, StatusCode};
use serde_json::json;

use crate::{ADMIN_TOKEN, reload, with_admin};

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
async fn admin_creates_updates_restocks_and_closes_campaigns() {
    let home = StoreHome::new(Backend::Sqlite);
    let a = CampaignSpec::open("adm-edit", 10, 1);
    let a_id = a.id.clone();
    let (scenario, admin_addr) = with_admin(&home, vec![a]);
    let file = home.path().join("gateway.toml");
    let gateway = InProcess::start_from_file(&scenario, &file);
    let client = gateway.client();
    let admin = Admin(Client::new(admin_addr.parse().unwrap()));

    // An operator's comment in the file survives the API's edits.
    let commented = format!(
        "# operators: keep this comment\n{}",
        std::fs::read_to_string(&file).unwrap()
    );
    std::fs::write(&file, commented).unwrap();

    let new_id = a_created_campaign_sells_and_is_in_the_file(&admin, &client, &file).await;
    a_refused_update_changes_nothing(&admin, &file, &new_id).await;
    restocking_sells_exactly_the_raise(&admin, &client, &a_id).await;
    closing_ends_that_sale_only(&admin, &client, &new_id, &a_id).await;
    gateway.stop().unwrap();
}

/// The admin listener, called with the right token.
struct Admin(Client);

impl Admin {
    async fn call(&self, method: Method, path: &str, body: serde_json::Value) -> Reply {
        self.0
            .send(method, path, Some(ADMIN_TOKEN), body.to_string())
            .await
            .unwrap()
    }
}

/// Creates a campaign: it sells at once, and it is in the file for the next reload, beside
/// the operator's comment. Returns its id.
async fn a_created_campaign_sells_and_is_in_the_file(
    admin: &Admin,
    client: &Client,
    file: &Path,
) -> String {
    let new_id = flashgate_tests::scenario::unique_id("adm-new");
    let fields = json!({
        "sku": "SKU-NEW", "name": "made by the admin API", "unit_price_cents": 500,
        "stock": 5, "per_user_limit": 1, "start": "2020-01-01T00:00:00Z",
        "end": "2099-01-01T00:00:00Z", "pay_timeout": "15m",
    });
    let path = format!("/admin/v1/campaigns/{new_id}");
    let created = admin.call(Method::PUT, &path, fields).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let bought = client
        .purchase("new-buyer", json!({ "campaign_id": new_id }))
        .await
        .unwrap();
    assert_eq!(bought.status, StatusCode::ACCEPTED, "{}", bought.body);
    let edited = std::fs::read_to_string(file).unwrap();
    assert!(edited.contains(&new_id));
    assert!(
        edited.contains("# operators: keep this comment"),
        "{edited}"
    );
    let again = reload(&admin.0, Some(ADMIN_TOKEN)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["added"], json!([]));
    new_id
}

/// A refused update leaves the file and the campaign as they were.
async fn a_refused_update_changes_nothing(admin: &Admin, file: &Path, id: &str) {
    let before = std::fs::read_to_string(file).unwrap();
    let path = format!("/admin/v1/campaigns/{id}");
    let refused = admin
        .call(Method::PUT, &path, json!({ "unit_price_cents": -3 }))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(std::fs::read_to_string(file).unwrap(), before);
    let unknown = admin
        .call(Method::PUT, &path, json!({ "colour": "red" }))
        .await;
    assert_eq!(unknown.code(), "unknown_field");
}

/// Stock with its accounting: 4 of 10 sold; the total cannot go below 4, and raised to 20
/// exactly 16 more sell.
async fn restocking_sells_exactly_the_raise(admin: &Admin, client: &Client, id: &str) {
    for n in 0..4 {
        let r = client
            .purchase(&format!("stock-{n}"), json!({ "campaign_id": id }))
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let stock = format!("/admin/v1/campaigns/{id}/stock");
    let below = admin
        .call(Method::POST, &stock, json!({ "stock_total": 3 }))
        .await;
    assert_eq!(below.status, StatusCode::CONFLICT);
    assert_eq!(below.code(), "stock_below_taken");
    let raised = admin
        .call(Method::POST, &stock, json!({ "stock_total": 20 }))
        .await;
    assert_eq!(raised.status, StatusCode::OK, "{}", raised.body);
    assert_eq!(raised.body["taken"], 4);
    assert_eq!(raised.body["remaining"], 16);
    let mut accepted = 0;
    for n in 0..30 {
        let r = client
            .purchase(&format!("more-{n}"), json!({ "campaign_id": id }))
            .await
            .unwrap();
        if r.status == StatusCode::ACCEPTED {
            accepted += 1;
        } else {
            assert_eq!(r.code(), "sold_out", "{}", r.body);
        }
    }
    assert_eq!(accepted, 16, "exactly the raised stock sells");
}

/// Closing `closed` ends its sale now; a close with a wrong token is refused, and `other` is
/// untouched (sold out, not ended).
async fn closing_ends_that_sale_only(admin: &Admin, client: &Client, closed: &str, other: &str) {
    let close = format!("/admin/v1/campaigns/{closed}/close");
    let done = admin.call(Method::POST, &close, json!({})).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let late = client
        .purchase("late-buyer", json!({ "campaign_id": closed }))
        .await
        .unwrap();
    assert_eq!(late.code(), "ended");
    let wrong_token = admin
        .0
        .send(
            Method::POST,
            &format!("/admin/v1/campaigns/{other}/close"),
            Some("nope"),
            "",
        )
        .await
        .unwrap();
    assert_eq!(wrong_token.status, StatusCode::UNAUTHORIZED);
    let still_open = client
        .purchase("open-buyer", json!({ "campaign_id": other }))
        .await
        .unwrap();
    assert_eq!(
        still_open.code(),
        "sold_out",
        "the other campaign is untouched"
    );
}
