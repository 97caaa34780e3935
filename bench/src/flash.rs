//! The `flash` scenario: many distinct users hit one campaign at once, each trying a few times;
//! optionally followed by the lifecycle mix (some buyers pay, some cancel, the rest let their
//! orders expire).

use serde_json::json;

use crate::args::{EngineArgs, OutputArgs, TargetArgs};
use crate::engine::{Kind, Pace, Prepared};
use crate::lag::{Lag, LagProbe};
use crate::lifecycle::{self, LifecycleArgs};
use crate::play::play;
use crate::report::Report;
use crate::requests::{self, Users};
use crate::verify::{self, Snapshot, VerifyArgs};

/// What a flash run is told.
#[derive(Debug, Clone, clap::Args)]
pub struct FlashArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub lifecycle: LifecycleArgs,
    /// Distinct users.
    #[arg(long, default_value_t = 100_000)]
    pub users: u32,
    /// Purchase attempts per user.
    #[arg(long, default_value_t = 1)]
    pub tries: u32,
    /// User ids are this prefix plus a number.
    #[arg(long, default_value = "flash-user-")]
    pub user_prefix: String,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

/// Runs the scenario; `Ok(false)` when verification failed.
///
/// # Errors
/// Bad config, unreachable gateway, unwritable output.
pub fn run(args: &FlashArgs) -> anyhow::Result<bool> {
    let target = args.target.resolve()?;
    let campaign = &target.campaign;
    let users = Users::new(target.config.auth.jwt_secret.expose(), &args.user_prefix);
    let settle = lifecycle::Plan::new(&args.lifecycle, &target)?;
    let requests = prepare(&users, &campaign.id, args);
    eprintln!(
        "flash: {} users x {} tries on {} (stock {}) over {} connections",
        args.users, args.tries, campaign.id, campaign.stock, args.engine.connections
    );
    let before = args.verify.baseline(&target)?;
    let total = requests.len();
    let probe = match before {
        Some(_) => Some(LagProbe::start(&target.config, campaign)?),
        None => None,
    };
    let (outcomes, duration) = play(
        target.addr,
        &args.engine,
        requests,
        total,
        Pace::Closed,
        None,
    )?;
    let lag = probe.map(LagProbe::stop);
    let report = Report::new(&outcomes, duration);
    report.print();
    if let Some(lag) = &lag {
        lag.print();
    }

    let settled = match &settle {
        Some(plan) => Some(plan.run(&target, &args.engine, &users, &outcomes, |index| {
            u64::from(u32::try_from(index).unwrap_or(u32::MAX) % args.users.max(1))
        })?),
        None => None,
    };
    let verification = if let Some(before) = before {
        let snapshot =
            Snapshot::take(&target.config, campaign, args.verify.drain_patience, before)?;
        let mut v = verify::verify(&snapshot, campaign, &outcomes);
        if let Some(settled) = &settled {
            v.checks.extend(settled.checks(&snapshot));
        }
        v.print();
        Some(v)
    } else {
        None
    };
    let extra = json!({
        "scenario": {
            "name": "flash", "campaign": campaign.id, "stock": campaign.stock,
            "users": args.users, "tries": args.tries,
            "connections": args.engine.connections, "threads": args.engine.threads,
        },
        "lifecycle": settled.as_ref().map(lifecycle::Settled::to_json),
        "persistence_lag": lag.as_ref().map(Lag::to_json),
        "verification": verification.as_ref().map(verify::Verification::to_json),
    });
    let title = format!(
        "flash: {} users on {} units of {}",
        args.users, campaign.stock, campaign.id
    );
    args.output.write(&report, extra, &title)?;
    Ok(verification.is_none_or(|v| v.passed()))
}

/// Every request of the run, built before it starts: tokens signed, requests serialised.
fn prepare(users: &Users, campaign: &str, args: &FlashArgs) -> Vec<Prepared> {
    let first_tries: Vec<Prepared> = (0..u64::from(args.users))
        .map(|n| Prepared {
            kind: Kind::Purchase,
            bytes: requests::purchase(&users.bearer(n), campaign, None),
        })
        .collect();
    // Every user's first try, then every user's second, …: retries come after the first wave.
    (0..args.tries)
        .flat_map(|_| first_tries.iter().cloned())
        .collect()
}
