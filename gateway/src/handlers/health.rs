//! `/healthz` (the process is alive) and `/readyz` (it can sell: Redis, its scripts and its
//! eviction policy; and how the store is doing).

use std::future::Future;
use std::time::Duration;

use http::StatusCode;
use serde::Serialize;

use crate::app::App;
use crate::http::{Answer, json};
use crate::redis_health::{ClusterHealth, Eviction, cluster_health, eviction};

/// How long each Redis call of a probe may take. The connection has its own response timeout,
/// but a probe must answer even when a call waits on something else (a Cluster client
/// rediscovering its nodes, a node that accepts connections and never answers): an
/// orchestrator's probe that times out is no better than a hung gateway.
const PROBE_CALL: Duration = Duration::from_secs(1);

/// `call`'s output, or `None` when it took longer than [`PROBE_CALL`].
async fn bounded<T>(call: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(PROBE_CALL, call).await.ok()
}

/// Alive: the process answers. Nothing else is checked, so an orchestrator never restarts a
/// gateway because a dependency is down.
pub fn healthz() -> Answer {
    json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

#[derive(Debug, Serialize)]
struct Readiness {
    ready: bool,
    /// `ok`, `down`, or `cluster_fail`: a Redis Cluster that says its state is not ok.
    redis: &'static str,
    scripts: &'static str,
    store: &'static str,
    /// Why not ready, when Redis answers but may not be used (it may evict keys, or the
    /// Cluster is not whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Campaigns refused until an operator rebuilds them, and why (empty when none).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    campaigns_needing_repair: std::collections::BTreeMap<String, String>,
}

/// Ready to take purchases: Redis answers (on a Cluster: its state is `ok`, every slot has a
/// master), every script is loaded in it, and its `maxmemory-policy` is `noeviction` (on every
/// master; read on every probe: it can be changed on a running Redis, and an evicting one loses
/// orders). Each Redis call is bounded by [`PROBE_CALL`]. The store is `ok`, or `degraded`
/// while it does not answer or writes to it fail (orders then wait in the Redis journal).
pub async fn readyz(app: &App) -> Answer {
    let (redis, scripts, reason) = redis_readiness(app).await;
    let store = app.store.clone();
    let store = match tokio::task::spawn_blocking(move || store.ping()).await {
        Ok(Ok(())) if app.store_health.failing_since_ms().is_none() => "ok",
        _ => "degraded",
    };
    // The store is not needed to sell: Redis is the commit point and its journal holds what the
    // store has not taken yet. A store outage must not take every gateway out of the balancer.
    let ready = redis == "ok" && scripts == "ok" && reason.is_none();
    // A campaign refused until repaired does not make the gateway unready: it sells the others.
    let campaigns_needing_repair = app
        .catalog()
        .campaigns()
        .filter_map(|c| Some((c.config.id.clone(), c.repair_reason()?)))
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(
        status,
        &Readiness {
            ready,
            redis,
            scripts,
            store,
            campaigns_needing_repair,
            reason,
        },
    )
}

/// What `/readyz` says of Redis: its state, its scripts' and why it may not be used.
async fn redis_readiness(app: &App) -> (&'static str, &'static str, Option<String>) {
    let mut conn = app.redis.clone();
    // First: a Cluster that lost a slot refuses every command, so nothing else could be read.
    match bounded(cluster_health(&mut conn)).await {
        Some(ClusterHealth::Whole) => {}
        Some(ClusterHealth::Broken(state)) => {
            let reason = format!(
                "the Redis Cluster reports cluster_state:{state}: some hash slots have no master \
                 that answers (a master and its replicas down?), and the Cluster refuses \
                 commands until every slot is served again; see CLUSTER INFO and CLUSTER NODES"
            );
            return ("cluster_fail", "unknown", Some(reason));
        }
        Some(ClusterHealth::Unknown) | None => return ("down", "unknown", None),
    }
    let scripts = match bounded(app.scripts.all_loaded(&mut conn)).await {
        Some(Ok(true)) => "ok",
        Some(Ok(false)) => {
            // Redis restarted without our scripts: load them now so the next check passes.
            match bounded(app.scripts.load_all(&mut conn)).await {
                Some(Ok(())) => "ok",
                _ => "missing",
            }
        }
        Some(Err(_)) | None => return ("down", "unknown", None),
    };
    // Only of a Redis that answers: a down one would cost the probe another timeout.
    let reason = match bounded(eviction(&mut conn)).await {
        Some(Eviction::Unsafe(reason)) => Some(reason),
        Some(Eviction::Safe | Eviction::Unknown) | None => None,
    };
    ("ok", scripts, reason)
}
