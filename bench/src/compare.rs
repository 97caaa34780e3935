//! `compare`: the same load against the gateway and against the bare reference server, in one
//! invocation, and the ratio of the two. Every gateway figure we publish is such a ratio.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;

use crate::args::{EngineArgs, TargetArgs};
use crate::engine::{Kind, Pace, Prepared};
use crate::play::play;
use crate::processes;
use crate::report::Report;
use crate::requests::{self, Users};

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
    /// A reference server already running; without it, one is started for the comparison.
    #[arg(long)]
    pub reference: Option<SocketAddr>,
    /// Alternating rounds (gateway, then reference); single runs on a shared VM swing by 10-15%.
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

/// One side of one round.
struct Side {
    rate: f64,
    p50: f64,
    p99: f64,
    statuses: String,
}

impl Side {
    fn of(report: &Report) -> Self {
        Self {
            rate: report.requests as f64 / report.duration.as_secs_f64().max(1e-6),
            p50: report.percentiles_ms[0],
            p99: report.percentiles_ms[2],
            statuses: report
                .by_status
                .iter()
                .map(|(s, n)| format!("{s}:{n}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Runs the comparison and prints it.
///
/// # Errors
/// Bad config, an unreachable gateway, a reference server that would not start.
pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let target = args.target.resolve()?;
    let users = Users::new(target.config.auth.jwt_secret.expose(), &args.user_prefix);
    let requests: Vec<Prepared> = (0..u64::from(args.users.max(1)))
        .map(|n| Prepared {
            kind: Kind::Purchase,
            bytes: requests::purchase(&users.bearer(n), &target.campaign.id, None),
        })
        .collect();
    let (_started, reference) = match args.reference {
        Some(addr) => (None, addr),
        None => {
            let (server, addr) = processes::reference_server()?;
            (Some(server), addr)
        }
    };
    let load = |addr| -> anyhow::Result<Side> {
        let (outcomes, duration) = play(
            addr,
            &args.engine,
            requests.clone(),
            usize::MAX,
            Pace::Closed,
            Some(args.duration),
        )?;
        Ok(Side::of(&Report::new(&outcomes, duration)))
    };
    eprintln!(
        "compare: purchases on {} over {} connections, {} thread(s), {:?} per side",
        target.campaign.id, args.engine.connections, args.engine.threads, args.duration
    );
    println!(
        "| round | gateway req/s | p50 ms | p99 ms | reference req/s | p50 ms | p99 ms | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut rounds = Vec::new();
    for round in 1..=args.rounds.max(1) {
        let gateway = load(target.addr).context("loading the gateway")?;
        let yardstick = load(reference).context("loading the reference server")?;
        let ratio = gateway.rate / yardstick.rate.max(1e-9);
        println!(
            "| {round} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {ratio:.2} |",
            gateway.rate, gateway.p50, gateway.p99, yardstick.rate, yardstick.p50, yardstick.p99
        );
        rounds.push((gateway, yardstick, ratio));
    }
    let mut ratios: Vec<f64> = rounds.iter().map(|r| r.2).collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "ratio gateway/reference: {median:.2} (median of {})",
        ratios.len()
    );
    println!("gateway answers: {}", rounds[0].0.statuses);
    if let Some(path) = &args.json {
        let side = |s: &Side| json!({ "requests_per_s": s.rate, "p50_ms": s.p50, "p99_ms": s.p99 });
        let value = json!({
            "scenario": {
                "name": "compare", "campaign": target.campaign.id,
                "connections": args.engine.connections, "threads": args.engine.threads,
                "duration_s": args.duration.as_secs_f64(),
            },
            "rounds": rounds.iter().map(|(g, r, ratio)| json!({
                "gateway": side(g), "reference": side(r), "ratio": ratio,
            })).collect::<Vec<_>>(),
            "ratio": median,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&value)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
