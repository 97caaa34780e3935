//! The admin API and hot reload: a wrong or missing token changes nothing, an invalid file is
//! refused with every error named and the old config stays, a valid one changes campaign
//! windows while purchases are in flight without failing any, and SIGHUP reloads too.
//!
//! # Layout
//! - [`reload`]: reloading the config file (admin call or SIGHUP): refused when invalid,
//!   applied under load when valid.
//! - [`campaigns`]: the token check, and creating, editing, restocking and closing campaigns.
//! - `main.rs`: the admin listener and token every scenario uses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod campaigns;
mod reload;

use flashgate_tests::client::Client;
use flashgate_tests::free_port;
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::store_home::StoreHome;
use http::Method;

const ADMIN_TOKEN: &str = "admin-token-for-the-tests-0123";

/// A scenario with an admin listener; returns it and the admin address.
fn with_admin(home: &StoreHome, campaigns: Vec<CampaignSpec>) -> (Scenario, String) {
    let mut scenario = home.scenario(campaigns);
    let admin = format!("127.0.0.1:{}", free_port());
    scenario.extra = format!("\n[admin]\nlisten = \"{admin}\"\ntoken = \"{ADMIN_TOKEN}\"\n");
    (scenario, admin)
}

/// A campaign that opens in 2098: a reload that opens it shows it took effect.
fn upcoming(prefix: &str) -> CampaignSpec {
    CampaignSpec {
        start: "2098-01-01T00:00:00Z".into(),
        ..CampaignSpec::open(prefix, 1_000, 1)
    }
}

/// `POST /admin/v1/reload` with `token`.
async fn reload(admin: &Client, token: Option<&str>) -> flashgate_tests::client::Reply {
    admin
        .send(Method::POST, "/admin/v1/reload", token, "")
        .await
        .unwrap()
}
