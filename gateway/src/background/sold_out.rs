//! Sold-out marks checked against Redis: the catalog turns purchases of a sold-out campaign away
//! without a Redis call, and a unit returned (an order expired or cancelled) must sell again.

use std::sync::Arc;
use std::time::Duration;

use super::Task;
use crate::app::App;

/// How often sold-out marks are checked against Redis: a returned unit sells again within it.
const SOLD_OUT_REFRESH: Duration = Duration::from_millis(500);

/// Refreshes every campaign's sold-out mark every [`SOLD_OUT_REFRESH`].
pub fn spawn(app: &Arc<App>) -> Task {
    let app = app.clone();
    Task::spawn("sold-out refresh", async move {
        let mut tick = tokio::time::interval(SOLD_OUT_REFRESH);
        let mut conn = app.redis.clone();
        loop {
            tick.tick().await;
            if let Err(e) = app
                .catalog()
                .refresh_sold_out(&mut conn, &app.scripts)
                .await
            {
                tracing::debug!(error = %e, "sold-out refresh failed");
            }
        }
    })
}
