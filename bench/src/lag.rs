//! Persistence lag while a run lasts: how many accepted orders wait in the Redis journal for the
//! store, sampled every 10 ms, and when the store last caught up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flashgate::config::{CampaignConfig, Config};
use serde_json::{Value, json};

use crate::verify::{journal_backlog, layout_of, redis_connection};

const EVERY: Duration = Duration::from_millis(10);

/// A sampler running beside the load.
#[derive(Debug)]
pub struct LagProbe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Lag>,
}

/// What the sampler saw, in time from the start of the run.
#[derive(Debug, Clone, Default)]
pub struct Lag {
    pub samples: u64,
    pub max_backlog: u64,
    pub max_at: Duration,
    /// The last sample that found orders waiting.
    pub last_waiting_at: Option<Duration>,
}

impl LagProbe {
    /// Starts sampling `campaign`'s journal.
    ///
    /// # Errors
    /// Redis unreachable.
    pub fn start(config: &Config, campaign: &CampaignConfig) -> anyhow::Result<Self> {
        let mut conn = redis_connection(config)?;
        let layout = layout_of(&mut conn, &campaign.id)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut lag = Lag::default();
            while !flag.load(Ordering::Relaxed) {
                if let Ok(backlog) = journal_backlog(&mut conn, &layout) {
                    let at = started.elapsed();
                    lag.samples += 1;
                    if backlog > lag.max_backlog {
                        lag.max_backlog = backlog;
                        lag.max_at = at;
                    }
                    if backlog > 0 {
                        lag.last_waiting_at = Some(at);
                    }
                }
                std::thread::sleep(EVERY);
            }
            lag
        });
        Ok(Self { stop, thread })
    }

    pub fn stop(self) -> Lag {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

impl Lag {
    pub fn print(&self) {
        println!(
            "persistence lag: at most {} orders waiting for the store (at {:.3} s); {}",
            self.max_backlog,
            self.max_at.as_secs_f64(),
            match self.last_waiting_at {
                Some(at) => format!("last seen waiting at {:.3} s", at.as_secs_f64()),
                None => "none ever seen waiting".into(),
            }
        );
    }

    pub fn to_json(&self) -> Value {
        json!({
            "samples": self.samples,
            "max_backlog": self.max_backlog,
            "max_at_s": self.max_at.as_secs_f64(),
            "last_waiting_at_s": self.last_waiting_at.map(|d| d.as_secs_f64()),
        })
    }
}
