//! `/healthz` (the process is alive) and `/readyz` (it can sell: Redis, its scripts and its
//! eviction policy; and how the store is doing).

use http::StatusCode;
use serde::Serialize;

use crate::app::App;
use crate::http::{Answer, json};
use crate::redis_health::{Eviction, eviction};

/// Alive: the process answers. Nothing else is checked, so an orchestrator never restarts a
/// gateway because a dependency is down.
pub fn healthz() -> Answer {
    json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

#[derive(Debug, Serialize)]
struct Readiness {
    ready: bool,
    redis: &'static str,
    scripts: &'static str,
    store: &'static str,
    /// Why not ready, when Redis answers but may not be used (it may evict keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Campaigns refused until an operator rebuilds them, and why (empty when none).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    campaigns_needing_repair: std::collections::BTreeMap<String, String>,
}

/// Ready to take purchases: Redis answers, every script is loaded in it, and its
/// `maxmemory-policy` is `noeviction` (read on every probe: it can be changed on a running
/// Redis, and an evicting one loses orders). The store is `ok`, or `degraded` while it does not
/// answer or writes to it fail (orders then wait in the Redis journal).
pub async fn readyz(app: &App) -> Answer {
    let mut conn = app.redis.clone();
    let scripts = app.scripts.all_loaded(&mut conn).await;
    let (redis, scripts) = match scripts {
        Ok(true) => ("ok", "ok"),
        Ok(false) => {
            // Redis restarted without our scripts: load them now so the next check passes.
            let reloaded = app.scripts.load_all(&mut conn).await.is_ok();
            ("ok", if reloaded { "ok" } else { "missing" })
        }
        Err(_) => ("down", "unknown"),
    };
    // Only of a Redis that answers: a down one would cost the probe another timeout.
    let reason = match redis {
        "ok" => match eviction(&mut conn).await {
            Eviction::Unsafe(reason) => Some(reason),
            Eviction::Safe | Eviction::Unknown => None,
        },
        _ => None,
    };
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
