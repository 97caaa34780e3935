//! `flashgate-bench`: load that behaves like a flash sale, proof afterwards that nothing was
//! oversold, duplicated or lost, and the yardsticks it is measured against.
//!
//! # Layout
//! - Scenarios: [`flash`] (many users, one campaign, at once; with [`lifecycle`], buyers then
//!   pay, cancel or let orders expire), [`steady`] (open-loop constant rate, mixed requests),
//!   [`compare`] (gateway vs reference server), [`plain`] (what `wrk` sends, to measure the
//!   engine itself), [`rehearse`] (all of it on a private Redis or Redis Cluster and gateway;
//!   [`private_redis`] starts either and reads what each master spent).
//! - [`engine`]: keep-alive connections driving prepared requests, closed or open loop;
//!   [`wire`]: HTTP/1.1 spoken directly on the socket, as `wrk` does; [`play`]: a run with its
//!   runtime and progress bar.
//! - [`requests`]: the API's requests, tokens minted and callbacks signed before the clock.
//! - [`report`]: outcomes, percentiles and the timeline; [`plot`]: its SVG chart.
//! - [`verify`]: Redis and the store checked against each other and the client's view;
//!   [`lag`]: the persistence lag sampled while a flash runs.
//! - [`reference`]: the yardsticks every gateway figure is a ratio of (a bare hyper
//!   hello-world, and a naive gateway doing one Redis script call per request);
//!   [`processes`]: servers a command starts for itself.
//! - [`args`]: options every scenario shares; [`tokens`]: `mint-tokens` for other tools.

mod archive;
mod args;
mod compare;
mod cpu;
mod engine;
mod flash;
mod lag;
mod lifecycle;
mod plain;
mod play;
mod plot;
mod private_redis;
mod processes;
mod reference;
mod rehearse;
mod report;
mod requests;
mod steady;
mod tokens;
mod verify;
mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A flash sale: N distinct users hit one campaign at once; verifies nothing was oversold,
    /// duplicated or lost (exit status 1 if anything was). With --pay-share/--cancel-share,
    /// buyers then pay, cancel or let their orders expire, and the stock is checked to add up.
    Flash(flash::FlashArgs),
    /// A constant arrival rate (open loop) for a while, mixing purchases, replays, order reads
    /// and invalid requests; latency counts from when each request was due.
    Steady(steady::SteadyArgs),
    /// Fill a store with a retired campaign's settled orders and time the archive pass over
    /// them: rows a second, and the hot tables' size before and after.
    Archive(archive::ArchiveArgs),
    /// The same purchases against the gateway and the reference server; prints the ratio.
    Compare(compare::CompareArgs),
    /// `GET <path>` closed loop, like `wrk`'s default: measures the engine against `wrk -t1`.
    Plain(plain::PlainArgs),
    /// Start a private Redis and a gateway, run a scenario against them, verify, stop both.
    Rehearse(rehearse::RehearseArgs),
    /// Serve a bare hyper hello-world: the same server stack as the gateway, doing nothing.
    /// With --naive-redis, serve the naive gateway instead: one EVALSHA of a 6-line stock
    /// script per `POST /buy/<user>` on that Redis (ARCHITECTURE.md §10).
    ReferenceServer {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
        #[arg(long)]
        naive_redis: Option<String>,
        /// Worker threads (default: one per core), as the gateway's `server.workers`.
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Write bearer tokens for users `<prefix>0` … `<prefix>{count-1}`, one per line.
    MintTokens {
        /// The gateway's `auth.jwt_secret` (or set FLASHGATE_JWT_SECRET).
        #[arg(long, env = "FLASHGATE_JWT_SECRET")]
        secret: String,
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value = "bench-user-")]
        prefix: String,
        /// Seconds the tokens stay valid.
        #[arg(long, default_value_t = 86_400)]
        valid_for: i64,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    let passed = execute(Args::parse().command)?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs one command; `Ok(false)` when its checks failed.
fn execute(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Flash(args) => flash::run(&args),
        Command::Steady(args) => steady::run(&args),
        Command::Compare(args) => compare::run(&args).map(|()| true),
        Command::Plain(args) => plain::run(&args).map(|()| true),
        Command::Archive(args) => archive::run(&args),
        Command::Rehearse(args) => rehearse::run(&args, |argv| {
            let args = Args::try_parse_from(std::iter::once("flashgate-bench".into()).chain(argv))?;
            anyhow::ensure!(
                matches!(
                    args.command,
                    Command::Flash(_) | Command::Steady(_) | Command::Compare(_)
                ),
                "rehearse runs flash, steady or compare"
            );
            execute(args.command)
        }),
        Command::ReferenceServer {
            listen,
            naive_redis,
            workers,
        } => match naive_redis {
            None => reference::serve(listen, workers),
            Some(url) => reference::serve_naive(listen, &url, workers),
        }
        .map(|()| true),
        Command::MintTokens {
            secret,
            count,
            prefix,
            valid_for,
            out,
        } => tokens::write(&secret, count, &prefix, valid_for, &out).map(|()| true),
    }
}
