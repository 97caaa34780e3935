//! `/metrics` on the admin listener after a small flash sale: its counters equal what the
//! clients saw, and its gauges read Redis (stock, journal backlog); on one Redis and on a
//! Redis Cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use flashgate_tests::client::Client;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::redis_kind::TestRedis;
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::store_home::{Backend, StoreHome};
use flashgate_tests::{eventually, free_port};
use serde_json::json;

flashgate_tests::on_each_redis!(metrics_after_a_small_flash_sale_equal_what_the_clients_saw);

async fn metrics_after_a_small_flash_sale_equal_what_the_clients_saw(redis: TestRedis) {
    let home = StoreHome::new(Backend::Sqlite);
    let campaign = CampaignSpec::open("metrics", 50, 1);
    let id = campaign.id.clone();
    let mut scenario = home.scenario(vec![campaign]);
    redis.point(&mut scenario);
    let admin = format!("127.0.0.1:{}", free_port());
    scenario.extra = format!("\n[admin]\nlisten = \"{admin}\"\n");
    let gateway = InProcess::start(&scenario);
    let client = gateway.client();

    let seen = flash_sale(&client, &id).await;
    assert_eq!(seen[&(202, "none".to_owned())], 50.0, "{seen:?}");

    // Persistence is asynchronous: wait for the store to have every order.
    let a = admin.clone();
    eventually(Duration::from_secs(10), "all 50 orders persisted", || {
        let a = a.clone();
        // At least: the reconciler may write an order the workers wrote too (idempotently).
        async move {
            flashgate_tests::client::metrics_series(&a)
                .await
                .get("flashgate_orders_persisted_total")
                .is_some_and(|n| *n >= 50.0)
        }
    })
    .await;
    let m = flashgate_tests::client::metrics_series(&admin).await;
    check_counters_and_gauges(&m, &seen, &id);

    check_every_plotted_metric_exists(&m);

    // The public port does not serve it.
    let public = client.get("/metrics", None).await;
    assert_eq!(public.status.as_u16(), 404);
    gateway.stop().unwrap();
}

/// Answers counted by (status, code), `none` for a success.
type Seen = HashMap<(u16, String), f64>;

/// 200 buyers for 50 units, 10 asking for a campaign that does not exist, 5 bad bodies: what
/// the clients saw.
async fn flash_sale(client: &Client, id: &str) -> Seen {
    let mut tasks = Vec::new();
    for n in 0..215 {
        let (client, id) = (client.clone(), id.to_owned());
        tasks.push(tokio::spawn(async move {
            let body = match n {
                0..200 => json!({ "campaign_id": id }),
                200..210 => json!({ "campaign_id": format!("no-such-campaign-{n}") }),
                _ => json!({ "campaign_id": id, "quantity": "many" }),
            };
            client.purchase(&format!("m-{n}"), body).await.unwrap()
        }));
    }
    let mut seen: HashMap<(u16, String), f64> = HashMap::new();
    for task in tasks {
        let reply = task.await.unwrap();
        let code = match reply.code() {
            "" => "none".to_owned(),
            code => code.to_owned(),
        };
        *seen.entry((reply.status.as_u16(), code)).or_default() += 1.0;
    }
    seen
}

/// Every request counter equals what the clients saw, and the gauges read the sold-out,
/// drained state.
fn check_counters_and_gauges(m: &HashMap<String, f64>, seen: &Seen, id: &str) {
    for ((status, code), count) in seen {
        let series = format!(
            "flashgate_requests_total{{route=\"purchase\",status=\"{status}\",code=\"{code}\"}}"
        );
        assert_eq!(m.get(&series), Some(count), "{series}");
    }
    let purchases: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("flashgate_requests_total{route=\"purchase\""))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(purchases, 215.0);
    assert_eq!(
        m["flashgate_request_duration_seconds_count{route=\"purchase\"}"],
        215.0
    );
    let unknown = m["flashgate_bloom_rejections_total"];
    assert!((1.0..=10.0).contains(&unknown), "{unknown}");
    assert_eq!(
        m[&format!("flashgate_stock_remaining{{campaign=\"{id}\"}}")],
        0.0
    );
    assert!(m["flashgate_redis_script_duration_seconds_count"] >= 1.0);
    assert_eq!(m["flashgate_queue_depth"], 0.0);
    assert_eq!(m["flashgate_store_degraded"], 0.0);
    assert_eq!(m["flashgate_orders_set_aside_total"], 0.0);
}

/// Every metric the shipped Grafana dashboard plots exists.
fn check_every_plotted_metric_exists(m: &HashMap<String, f64>) {
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/grafana-dashboard.json"
    ))
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut plotted = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("flashgate_"))
            {
                assert!(
                    m.keys().any(|series| series.starts_with(name)),
                    "the dashboard plots {name}, which /metrics does not have"
                );
                plotted += 1;
            }
        }
    }
    assert!(plotted >= 10);
}
