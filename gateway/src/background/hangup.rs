//! SIGHUP reloads the config file (as `POST /admin/v1/reload` does).

use std::sync::Arc;

use tokio::signal::unix::{Signal, SignalKind, signal};

use super::Task;
use crate::app::App;

/// Takes SIGHUP over. Called at the very start of a gateway: SIGHUP's default action would end
/// the process, and an operator may send it while the gateway is still starting. `None` where
/// signals cannot be handled.
pub fn register() -> Option<Signal> {
    signal(SignalKind::hangup()).ok()
}

/// Reloads the config at each SIGHUP; a refused reload leaves the config in force.
pub fn spawn(app: &Arc<App>, hangups: Option<Signal>) -> Task {
    let app = app.clone();
    Task::spawn("SIGHUP reload", async move {
        let Some(mut hangups) = hangups else {
            tracing::warn!("SIGHUP cannot be handled here; reload through the admin API");
            return;
        };
        while hangups.recv().await.is_some() {
            match crate::reload::reload(&app).await {
                Ok(done) => {
                    tracing::info!(campaigns = ?done.campaigns, not_applied = ?done.not_applied, "SIGHUP: config reloaded")
                }
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: reload refused; the config in force stays")
                }
            }
        }
    })
}
