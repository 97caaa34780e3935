//! Idle keys leave the per-IP and per-user token buckets: a keyed limiter keeps one entry per
//! key it ever saw unless it is pruned (governor's `retain_recent`).

use std::sync::Arc;

use super::Task;
use crate::app::App;

/// Prunes the limiters every `limits.prune_interval`.
pub fn spawn(app: &Arc<App>) -> Task {
    let app = app.clone();
    Task::spawn("limiter pruning", async move {
        let mut tick = tokio::time::interval(app.config.limits.prune_interval);
        loop {
            tick.tick().await;
            app.limits.prune();
        }
    })
}
