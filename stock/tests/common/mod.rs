//! Shared by the script tests: a connection to the test Redis and a fresh campaign in it
//! (`lifecycle.rs`: what the `lua/lifecycle.lua` tests share).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use flashgate_stock::{
    CampaignKeys, CampaignSpec, OpenPermit, SalesLedger, Scripts, open_campaign,
};

pub mod lifecycle;

/// The Redis this test process shares: a private one, or `FLASHGATE_TEST_REDIS`.
pub fn redis_url() -> String {
    flashgate_testkit::redis_url()
}

pub async fn connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("the test Redis")
}

pub fn sync_connection() -> redis::Connection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// A campaign id no other test (or test run) uses.
pub fn unique_campaign(prefix: &str) -> CampaignKeys {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = N.fetch_add(1, Ordering::Relaxed);
    CampaignKeys::new(&format!("{prefix}-{}-{nanos}-{n}", std::process::id()))
}

pub fn spec(stock: u64, per_user_limit: u32) -> CampaignSpec {
    CampaignSpec {
        sku: "SKU-T".into(),
        unit_price_cents: 1999,
        per_user_limit,
        pay_timeout_ms: 60_000,
        start_ms: 0,
        end_ms: i64::MAX,
        stock,
        buckets: 1,
    }
}

/// A loaded campaign with `stock` units and a per-user limit.
pub async fn loaded_campaign(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    stock: u64,
    per_user_limit: u32,
) -> (Scripts, CampaignKeys) {
    let scripts = Scripts::new();
    let keys = unique_campaign(prefix);
    open_campaign(
        conn,
        &scripts,
        &keys,
        &spec(stock, per_user_limit),
        permit(&keys),
    )
    .await
    .unwrap();
    (scripts, keys)
}

/// A ledger that has never seen a campaign: script tests put fresh campaigns on sale.
pub struct FreshLedger;

impl SalesLedger for FreshLedger {
    type Error = std::convert::Infallible;

    fn claim_opening(&self, _campaign_id: &str, _stock_total: u64) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// The permit to open the campaign of `keys`, from a ledger that always gives one.
pub fn permit(keys: &CampaignKeys) -> OpenPermit {
    OpenPermit::claim(&FreshLedger, &keys.campaign_id, 0)
        .unwrap()
        .unwrap()
}
