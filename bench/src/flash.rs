//! The `flash` scenario: many distinct users hit one campaign at once, each trying a few times.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use flashgate::config::Config;
use http::HeaderValue;

use crate::engine::{Prepared, closed_loop};
use crate::report::Report;
use crate::{plot, verify};

/// What a flash run is told.
#[derive(Debug, clap::Args)]
pub struct FlashArgs {
    /// The gateway to load.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The gateway's config: its JWT secret mints the users' tokens; its Redis and store are
    /// what --verify reads.
    #[arg(long)]
    pub config: PathBuf,
    /// The campaign to buy from.
    #[arg(long)]
    pub campaign: String,
    /// Distinct users.
    #[arg(long, default_value_t = 100_000)]
    pub users: u32,
    /// Purchase attempts per user.
    #[arg(long, default_value_t = 1)]
    pub tries: u32,
    /// Keep-alive connections the users share.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// User ids are this prefix plus a number.
    #[arg(long, default_value = "flash-user-")]
    pub user_prefix: String,
    /// Skip checking Redis and the store afterwards.
    #[arg(long)]
    pub no_verify: bool,
    /// How long verification waits for the store to catch up.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub drain_patience: Duration,
    /// Write every figure as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an SVG chart of throughput and p99 over time here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// Runs the scenario; `Ok(false)` when verification failed.
///
/// # Errors
/// Bad config, unreachable gateway, unwritable output.
pub fn run(args: &FlashArgs) -> anyhow::Result<bool> {
    let config =
        Config::load(&args.config).with_context(|| format!("{}", args.config.display()))?;
    let campaign = config
        .campaign(&args.campaign)
        .with_context(|| {
            format!(
                "campaign {} is not in {}",
                args.campaign,
                args.config.display()
            )
        })?
        .clone();
    let requests = Arc::new(prepare(&config, args)?);
    eprintln!(
        "flash: {} users x {} tries on {} (stock {}) over {} connections",
        args.users, args.tries, campaign.id, campaign.stock, args.connections
    );

    let progress = Arc::new(AtomicUsize::new(0));
    let ticker = progress_ticker(progress.clone(), requests.len());
    // One worker thread, like `wrk -t1`: the generator takes one core and leaves the rest to
    // what it measures. (A current-thread runtime measured slower: its I/O driver shares the
    // same thread as the connection tasks.)
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (outcomes, duration) = runtime.block_on(closed_loop(
        args.addr,
        "/api/v1/orders",
        requests,
        args.connections,
        progress,
    ))?;
    ticker.0.store(true, Ordering::Relaxed);
    let _ = ticker.1.join();

    let report = Report::new(&outcomes, duration);
    report.print();
    let verification = if args.no_verify {
        None
    } else {
        let v = verify::verify(&config, &campaign, &outcomes, args.drain_patience)?;
        v.print();
        Some(v)
    };
    if let Some(path) = &args.json {
        let mut value = report.to_json();
        value["scenario"] = serde_json::json!({
            "name": "flash", "campaign": campaign.id, "stock": campaign.stock,
            "users": args.users, "tries": args.tries, "connections": args.connections,
        });
        value["verification"] = verification
            .as_ref()
            .map_or(serde_json::Value::Null, |v| v.to_json());
        std::fs::write(path, serde_json::to_vec_pretty(&value)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "flash: {} users on {} units of {}",
            args.users, campaign.stock, campaign.id
        );
        std::fs::write(path, plot::svg(&report, &title))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(verification.is_none_or(|v| v.passed()))
}

/// Every request of the run, built before it starts: tokens signed, bodies serialised.
fn prepare(config: &Config, args: &FlashArgs) -> anyhow::Result<Vec<Prepared>> {
    let secret = config.auth.jwt_secret.expose().as_bytes();
    let exp = flashgate::clock::now_s() + 86_400;
    let body = Bytes::from(serde_json::to_vec(
        &serde_json::json!({ "campaign_id": args.campaign }),
    )?);
    let tokens = (0..args.users)
        .map(|n| {
            let token =
                flashgate::auth::jwt::sign(secret, &format!("{}{n}", args.user_prefix), exp);
            HeaderValue::from_str(&format!("Bearer {token}")).context("token header")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Every user's first try, then every user's second, …: retries come after the first wave.
    Ok((0..args.tries)
        .flat_map(|_| tokens.iter())
        .map(|authorization| Prepared {
            authorization: authorization.clone(),
            body: body.clone(),
        })
        .collect())
}

/// A progress bar on stderr while the run lasts (hidden when stderr is not a terminal).
fn progress_ticker(
    done: Arc<AtomicUsize>,
    total: usize,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} requests {per_sec}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let handle = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            bar.set_position(done.load(Ordering::Relaxed) as u64);
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    });
    (stop, handle)
}
