//! The archive pass's manners: it yields to a sale. The gateway's own accepted-purchase rate
//! is the signal (every gateway of a sale sees its share of the burst), sampled over short
//! windows, so the pass stops within a step of a burst starting.

use std::time::{Duration, Instant};

use super::metrics::ArchiveMetrics;
use crate::metrics::requests::RequestMetrics;

/// How long the purchase rate is measured over before a step.
const WINDOW: Duration = Duration::from_millis(200);
/// A short breath between steps even when idle: other writers get the lock in between.
const BETWEEN_STEPS: Duration = Duration::from_millis(2);

/// The rate the pass yields to, and the last verdict on it.
#[derive(Debug)]
pub struct Pace {
    /// Accepted purchases a second above which the pass waits; 0: never waits.
    pause_above: u64,
    /// When the purchase counter was last read, and its value then.
    last: Option<(Instant, u64)>,
    /// Whether the rate over the last window was above `pause_above`.
    busy: bool,
}

impl Pace {
    pub fn new(pause_above: u64) -> Self {
        Self {
            pause_above,
            last: None,
            busy: false,
        }
    }

    /// Returns once this gateway's accepted-purchase rate over the last window is at most
    /// `pause_above` (judged at most once a window, so an idle gateway's steps never wait for
    /// a measurement); returns how long it waited on a busy sale.
    pub async fn wait_while_busy(
        &mut self,
        requests: &RequestMetrics,
        stats: &ArchiveMetrics,
    ) -> Duration {
        tokio::time::sleep(BETWEEN_STEPS).await;
        if self.pause_above == 0 {
            return Duration::ZERO;
        }
        let started = Instant::now();
        let mut waited = false;
        loop {
            let now = Instant::now();
            let count = requests.accepted_purchases();
            match self.last {
                // The first step of a pass waits for one measurement: a gateway restarted in
                // the middle of a sale must not start with a burst of steps.
                None => {
                    self.last = Some((now, count));
                    tokio::time::sleep(WINDOW).await;
                    continue;
                }
                Some((at, before)) if now.duration_since(at) >= WINDOW => {
                    let rate =
                        count.saturating_sub(before) as f64 / now.duration_since(at).as_secs_f64();
                    self.busy = rate > self.pause_above as f64;
                    self.last = Some((now, count));
                    if self.busy && !waited {
                        tracing::info!(
                            rate,
                            pause_above = self.pause_above,
                            "archive pass waits for a busy sale"
                        );
                    }
                }
                Some(_) => {}
            }
            if !self.busy {
                if waited {
                    stats.resumed();
                    let waited = started.elapsed();
                    tracing::info!(
                        waited_ms = waited.as_millis(),
                        "archive pass resumes: the sale has calmed down"
                    );
                    return waited;
                }
                return Duration::ZERO;
            }
            if !waited {
                waited = true;
                stats.paused();
            }
            tokio::time::sleep(WINDOW).await;
        }
    }
}
