//! What the retirement tests read back: every read of the campaign, the ledger's word that it
//! is retired, that it never sells again, and the store's row counts.

use std::time::Duration;

use flashgate_tests::client::Client;
use flashgate_tests::eventually;
use flashgate_tests::redis_memory::campaign_keys;
use flashgate_tests::scenario::Scenario;
use http::StatusCode;
use serde_json::{Value, json};

use crate::sale::Settled;

/// What a reader sees of the campaign: the view, every buyer's whole list (page by page), and
/// every `step`th order by id.
pub(crate) async fn reads(client: &Client, sale: &Settled, step: usize) -> Vec<Value> {
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
pub(crate) async fn retired(sale: &mut Settled) {
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
pub(crate) async fn never_sells_again(client: &Client, sale: &mut Settled) {
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

/// The store's row counts, and how many rows of `campaign` the hot tables still hold.
pub(crate) async fn rows(
    scenario: &Scenario,
    campaign: &str,
) -> (flashgate::store::RowCounts, u64) {
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
