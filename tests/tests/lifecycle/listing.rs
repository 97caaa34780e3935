//! A buyer's order list: their own orders, newest first, across campaigns.

use std::time::Duration;

use flashgate_tests::eventually;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_kind::TestRedis;
use flashgate_tests::scenario::CampaignSpec;
use http::StatusCode;

use crate::support::{PRICE, buy};

pub(crate) async fn a_user_lists_their_own_orders_newest_first_page_by_page(redis: TestRedis) {
    let (_dir, _scenario, gateway, id) = redis.selling(CampaignSpec::open("list", 10, 3));
    let c = gateway.client();
    let mine = [
        buy(&c, "lister", &id).await,
        buy(&c, "lister", &id).await,
        buy(&c, "lister", &id).await,
    ];
    buy(&c, "someone-else", &id).await;
    let paid = c.pay(&mine[0], PRICE, "succeeded").await;
    assert_eq!(paid.body["status"], "paid");

    eventually(Duration::from_secs(10), "the orders are persisted", || {
        let c = c.clone();
        async move {
            let persisted = |user: &'static str, n: usize| {
                let c = c.clone();
                async move {
                    c.get("/api/v1/orders", Some(user)).await.body["orders"]
                        .as_array()
                        .is_some_and(|o| o.len() == n)
                }
            };
            persisted("lister", 3).await && persisted("someone-else", 1).await
        }
    })
    .await;
    let first = c.get("/api/v1/orders?limit=2", Some("lister")).await;
    assert_eq!(first.status, StatusCode::OK);
    let ids = |r: &flashgate_tests::client::Reply| -> Vec<String> {
        r.body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["order_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&first),
        vec![mine[2].clone(), mine[1].clone()],
        "newest first"
    );
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = c
        .get(
            &format!("/api/v1/orders?limit=2&cursor={cursor}"),
            Some("lister"),
        )
        .await;
    assert_eq!(ids(&second), vec![mine[0].clone()]);
    assert!(second.body["next_cursor"].is_null());
    assert_eq!(
        second.body["orders"][0]["status"], "paid",
        "state as Redis has it"
    );
    let theirs = c.get("/api/v1/orders", Some("someone-else")).await;
    assert_eq!(ids(&theirs).len(), 1);
    assert!(!ids(&theirs).iter().any(|o| mine.contains(o)));
    let bad = c.get("/api/v1/orders?limit=0", Some("lister")).await;
    assert_eq!(bad.code(), "invalid_limit");
}

/// A user's orders in two campaigns (two slots on a Cluster), interleaved newest first, each
/// with its state as Redis has it now.
pub(crate) async fn a_user_lists_orders_of_several_campaigns_with_the_states_redis_has(
    redis: TestRedis,
) {
    let (a, b) = (
        CampaignSpec::open("list-a", 10, 3),
        CampaignSpec::open("list-b", 10, 3),
    );
    let (a_id, b_id) = (a.id.clone(), b.id.clone());
    let dir = tempfile::tempdir().unwrap();
    let gateway = InProcess::start(&redis.scenario(dir.path().join("orders.db"), vec![a, b]));
    let c = gateway.client();
    let mut mine = Vec::new();
    for id in [&a_id, &b_id, &a_id, &b_id] {
        mine.push(buy(&c, "two-campaigns", id).await);
    }
    eventually(Duration::from_secs(10), "the orders are persisted", || {
        let c = c.clone();
        async move {
            c.get("/api/v1/orders", Some("two-campaigns")).await.body["orders"]
                .as_array()
                .is_some_and(|o| o.len() == 4)
        }
    })
    .await;
    // Changed in Redis after the store has them: the list shows Redis' state.
    assert_eq!(
        c.pay(&mine[1], PRICE, "succeeded").await.body["status"],
        "paid"
    );
    let cancelled = c.cancel("two-campaigns", &mine[2]).await;
    assert_eq!(cancelled.body["status"], "cancelled", "{}", cancelled.body);

    let listed = c.get("/api/v1/orders", Some("two-campaigns")).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let seen: Vec<(String, String, String)> = listed.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let field = |k: &str| o[k].as_str().unwrap().to_owned();
            (field("order_id"), field("campaign_id"), field("status"))
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        (&mine[3], &b_id, "pending_payment"),
        (&mine[2], &a_id, "cancelled"),
        (&mine[1], &b_id, "paid"),
        (&mine[0], &a_id, "pending_payment"),
    ]
    .into_iter()
    .map(|(o, c, s)| (o.clone(), c.clone(), s.to_owned()))
    .collect();
    assert_eq!(
        seen, expected,
        "newest first, each with its campaign and state"
    );
}
