//! Bucketed campaigns, the purchase load of many buyers, and what its answers sold.

use std::collections::HashMap;
use std::sync::Arc;

use flashgate_tests::client::Client;
use flashgate_tests::scenario::CampaignSpec;
use http::StatusCode;
use serde_json::json;
use tokio::sync::Semaphore;

pub(crate) fn bucketed(prefix: &str, stock: u64, buckets: u32) -> CampaignSpec {
    let mut spec = CampaignSpec::open(prefix, stock, 1);
    spec.buckets = buckets;
    spec
}

/// Every purchase answer of a load: (user, status, order id or code).
pub(crate) type Answers = Vec<(String, StatusCode, String)>;

/// `users` buy once each at `parallel` in flight, over `clients` in turn.
pub(crate) async fn load(
    clients: &[Client],
    campaign: &str,
    users: Vec<String>,
    parallel: usize,
) -> Answers {
    let gate = Arc::new(Semaphore::new(parallel));
    let tasks: Vec<_> = users
        .into_iter()
        .enumerate()
        .map(|(i, user)| {
            let client = clients[i % clients.len()].clone();
            let (gate, body) = (gate.clone(), json!({ "campaign_id": campaign }));
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.unwrap();
                match client.purchase(&user, body).await {
                    Ok(r) if r.status == StatusCode::ACCEPTED || r.status == StatusCode::OK => {
                        let id = r.order_id().to_owned();
                        (user, r.status, id)
                    }
                    Ok(r) => (user, r.status, r.code().to_owned()),
                    Err(e) => (user, StatusCode::BAD_GATEWAY, e),
                }
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// The accepted orders of `answers`, user → order id, checking that nobody bought twice and
/// that every refusal is a business answer.
pub(crate) fn accepted(answers: &Answers) -> HashMap<String, String> {
    let mut sold = HashMap::new();
    for (user, status, what) in answers {
        match *status {
            StatusCode::ACCEPTED => {
                let before = sold.insert(user.clone(), what.clone());
                assert!(before.is_none(), "{user} bought twice (limit 1)");
            }
            StatusCode::OK => {}
            StatusCode::CONFLICT => {
                assert!(
                    matches!(what.as_str(), "sold_out" | "limit_reached"),
                    "{what}"
                )
            }
            other => panic!("{user}: {other} {what}"),
        }
    }
    sold
}

/// Numeric user ids route by `id mod 16` (the shard gene), so `user(b, n)` is the `n`th user
/// whose home bucket is `b` of 8.
pub(crate) fn user(bucket: u64, n: u64) -> String {
    (n * 16 + bucket).to_string()
}
