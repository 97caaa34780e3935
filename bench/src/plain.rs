//! `plain`: what `wrk` sends by default (`GET <path>`, closed loop, for a while), so the
//! engine itself can be measured against `wrk -t1` on the same server and connections.

use std::net::SocketAddr;
use std::time::Duration;

use crate::args::EngineArgs;
use crate::engine::{Kind, Pace, Prepared};
use crate::play::play;
use crate::report::Report;
use crate::wire;

/// What a plain run is told.
#[derive(Debug, Clone, clap::Args)]
pub struct PlainArgs {
    /// The server to load (e.g. `flashgate-bench reference-server`).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub addr: SocketAddr,
    #[arg(long, default_value = "/")]
    pub path: String,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
}

/// # Errors
/// The server cannot be reached.
pub fn run(args: &PlainArgs) -> anyhow::Result<()> {
    let request = Prepared {
        kind: Kind::Read,
        bytes: wire::request("GET", &args.path, None, &[], b""),
    };
    let (outcomes, duration) = play(
        args.addr,
        &args.engine,
        vec![request],
        usize::MAX,
        Pace::Closed,
        Some(args.duration),
    )?;
    Report::new(&outcomes, duration).print();
    Ok(())
}
