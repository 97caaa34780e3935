//! `docs/openapi.yaml` stays true: it describes every route the router answers and nothing
//! else, and every route listed really is routed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use flashgate::admin::ADMIN_ROUTES;
use flashgate::metrics::requests::Route;
use flashgate::router::ROUTES;
use flashgate_tests::client::token_for;
use flashgate_tests::gateway::InProcess;
use flashgate_tests::scenario::CampaignSpec;
use flashgate_tests::store_home::{Backend, StoreHome};

/// `(method, path)` of every operation in the document: paths are the two-space keys under
/// `paths:`, operations the four-space keys under each.
fn described() -> BTreeSet<(String, String)> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml"))
            .unwrap();
    let mut ops = BTreeSet::new();
    let mut in_paths = false;
    let mut path = None;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            path = Some(format!("/{p}"));
        } else if let Some(m) = line.strip_prefix("    ").and_then(|m| m.strip_suffix(':'))
            && ["get", "post", "put", "patch", "delete"].contains(&m)
        {
            ops.insert((m.to_owned(), path.clone().unwrap()));
        }
    }
    ops
}

#[test]
fn the_document_describes_exactly_the_routed_operations() {
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.as_str().to_lowercase(), (*p).to_owned()))
        .chain(
            ADMIN_ROUTES
                .iter()
                .map(|(m, p)| (m.as_str().to_lowercase(), (*p).to_owned())),
        )
        .collect();
    let documented = described();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(missing.is_empty(), "routed but not described: {missing:?}");
    assert!(extra.is_empty(), "described but not routed: {extra:?}");
}

#[test]
fn every_metrics_label_of_the_router_is_a_listed_route() {
    // The router labels each arm for /metrics: an arm added with a label of its own cannot
    // be missing from ROUTES (and so from the document) without this failing.
    for label in Route::ALL.into_iter().filter(|r| *r != Route::Other) {
        assert!(
            ROUTES.iter().any(|(_, _, r)| *r == label),
            "{label:?} has no entry in router::ROUTES"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_route_is_routed() {
    let home = StoreHome::new(Backend::Sqlite);
    let campaign = CampaignSpec::open("openapi", 10, 1);
    let id = campaign.id.clone();
    let gateway = InProcess::start(&home.scenario(vec![campaign]));
    let client = gateway.client();
    let token = token_for("openapi-user");
    for (method, template, _) in ROUTES {
        let path = template
            .replace("{order_id}", "123456")
            .replace("{campaign_id}", &id);
        let reply = client
            .send(method.clone(), &path, Some(&token), "{}")
            .await
            .unwrap();
        let code = reply.body["error"]["code"].as_str().unwrap_or_default();
        assert!(
            code != "not_found" && code != "method_not_allowed",
            "{method} {path} is not routed: {} {}",
            reply.status,
            reply.body
        );
    }
    let stray = client
        .send(http::Method::GET, "/api/v1/nowhere", None, "")
        .await
        .unwrap();
    assert_eq!(stray.body["error"]["code"], "not_found");
    gateway.stop().unwrap();
}
