//! After a run: do Redis and the order store agree with each other and with what the client
//! saw? Checks invariants 1–3 (no oversell, per-user limits, every accepted order stored once).
//!
//! # Layout
//! - [`redis_view`]: the gateway's Redis as verification reads it (orders, buckets, journal,
//!   stock census); [`lag`](crate::lag) and the lifecycle checks read it too.
//! - [`snapshot`]: Redis and the store for one campaign, once the journal has drained.
//! - [`invariants`]: the checks of invariants 1–3 on a snapshot and the client's outcomes.
//! - [`verification`]: each check and how it went, printed and as JSON.

mod invariants;
mod redis_view;
mod snapshot;
mod verification;

use std::collections::HashSet;
use std::time::Duration;

pub use self::invariants::verify;
pub use self::redis_view::{journal_backlog, layout_of, orders_in_redis, redis_connection};
pub use self::snapshot::Snapshot;
pub use self::verification::{Check, Verification};

use self::redis_view::orders_before;
use crate::args::Target;

/// Whether and how a run is checked afterwards.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Skip checking Redis and the store afterwards.
    #[arg(long)]
    pub no_verify: bool,
    /// How long verification waits for the store to catch up.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub drain_patience: Duration,
}

impl VerifyArgs {
    /// Read before the run: the campaign's orders from earlier runs, which verification must
    /// not count as unexplained; `None` when the run is not verified.
    ///
    /// # Errors
    /// Redis unreachable.
    pub fn baseline(&self, target: &Target) -> anyhow::Result<Option<HashSet<u64>>> {
        if self.no_verify {
            return Ok(None);
        }
        orders_before(&target.config, &target.campaign).map(Some)
    }
}
