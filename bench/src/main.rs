//! `flashgate-bench`: load that behaves like a flash sale, and the yardsticks it is measured
//! against.
//!
//! # Layout
//! - [`flash`]: the flash-sale scenario (many users, one campaign, at once).
//! - [`engine`]: keep-alive connections driving prepared requests.
//! - [`report`]: outcomes, percentiles and the per-second timeline.
//! - [`verify`]: Redis and the store checked against each other and the client's view.
//! - [`plot`]: the SVG chart of a run.
//! - [`reference`]: the bare hyper hello-world server every gateway figure is a ratio of.
//! - [`tokens`]: bearer tokens for many distinct users, minted ahead so signing is not measured.

mod engine;
mod flash;
mod plot;
mod reference;
mod report;
mod tokens;
mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// duplicated or lost (exit status 1 if anything was).
    Flash(flash::FlashArgs),
    /// Serve a bare hyper hello-world: the same server stack as the gateway, doing nothing.
    ReferenceServer {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
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

fn main() -> anyhow::Result<std::process::ExitCode> {
    match Args::parse().command {
        Command::Flash(args) => Ok(if flash::run(&args)? {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }),
        Command::ReferenceServer { listen } => {
            reference::serve(listen).map(|()| std::process::ExitCode::SUCCESS)
        }
        Command::MintTokens {
            secret,
            count,
            prefix,
            valid_for,
            out,
        } => tokens::write(&secret, count, &prefix, valid_for, &out)
            .map(|()| std::process::ExitCode::SUCCESS),
    }
}
