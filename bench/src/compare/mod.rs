//! `compare`: the same load against the gateway and against both yardsticks (the bare hello
//! server and the naive gateway, ARCHITECTURE.md §10), in one invocation, round after round,
//! with what each server spent per request read from outside it. Every gateway figure we
//! publish is such a ratio.
//!
//! # Layout
//! - [`subject`]: the servers compared, and the yardsticks started for the comparison.
//! - [`purchases`]: what each of them is sent.
//! - [`watched_redis`]: the Redis they reserve in, its CPU and script time read from outside.
//! - [`side`]: one server loaded once, and what each process spent per request.
//! - [`rounds`]: every server in turn, round after round; the ratios as medians, and JSON.
//! - [`table`]: the Markdown table and the ratios a person reads.

mod purchases;
mod rounds;
mod side;
mod subject;
mod table;
mod watched_redis;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::args::{EngineArgs, TargetArgs};

use self::purchases::Purchases;
use self::rounds::Rounds;
use self::subject::Lineup;
use self::watched_redis::{WatchedRedis, single_redis};

/// What a comparison is told.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// How long each side is loaded, closed loop (like `wrk -d`).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// A hello reference server already running; without it, one is started for the
    /// comparison.
    #[arg(long)]
    pub reference: Option<SocketAddr>,
    /// The Redis the naive gateway runs its script on (default: the gateway's own, when it is
    /// one Redis without a password). It writes only `naive:{reference}:*` keys.
    #[arg(long)]
    pub naive_redis: Option<String>,
    /// Leave the naive gateway out.
    #[arg(long)]
    pub no_naive: bool,
    /// Distinct buyers of the naive gateway per round: each buys once, so every request does
    /// the whole reservation (more than a round sends, or repeats answer 409).
    #[arg(long, default_value_t = 1_500_000)]
    pub naive_users: u32,
    /// Alternating rounds (gateway, hello, naive); single runs on a shared VM swing by 10-15%.
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// Distinct buyers the purchases cycle through.
    #[arg(long, default_value_t = 20_000)]
    pub users: u32,
    /// User ids are this prefix plus a number.
    #[arg(long, default_value = "compare-user-")]
    pub user_prefix: String,
    /// Write every figure as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs the comparison and prints it.
///
/// # Errors
/// Bad config, an unreachable gateway, a reference server that would not start.
pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let target = args.target.resolve()?;
    let purchases = Purchases::new(args, &target);
    let redis_target = single_redis(&target.config);
    let mut watched = WatchedRedis::open(redis_target.as_ref())?;
    let own_redis_url = redis_target.as_ref().map(|t| format!("redis://{t}"));
    let lineup = Lineup::start(args, &target, own_redis_url)?;

    eprintln!(
        "compare: purchases on {} over {} connections, {} thread(s), {:?} per side",
        target.campaign.id, args.engine.connections, args.engine.threads, args.duration
    );
    table::print_head();
    let rounds = Rounds::play(
        args,
        &lineup.subjects,
        &purchases,
        &mut watched,
        table::print_side,
    )?;
    let ratios = rounds.ratios(lineup.subjects.len());
    table::print_ratios(&ratios, rounds.len());
    if let Some(path) = &args.json {
        rounds.write_json(path, args, &target, &lineup.subjects, &ratios)?;
    }
    Ok(())
}
