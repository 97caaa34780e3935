//! `flashgate-bench`: load that behaves like a flash sale, and the yardsticks it is measured
//! against.
//!
//! # Layout
//! - [`reference`]: the bare hyper hello-world server every gateway figure is a ratio of.
//! - [`tokens`]: bearer tokens for many distinct users, minted ahead so signing is not measured.

mod reference;
mod tokens;

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

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::ReferenceServer { listen } => reference::serve(listen),
        Command::MintTokens {
            secret,
            count,
            prefix,
            valid_for,
            out,
        } => tokens::write(&secret, count, &prefix, valid_for, &out),
    }
}
