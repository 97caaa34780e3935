//! Options every scenario shares: what it runs against, how hard it drives, where it writes.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use flashgate::config::{CampaignConfig, Config};
use serde_json::Value;

use crate::plot;
use crate::report::Report;

/// The gateway under load and the config it runs with.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// The gateway to load.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The gateway's config: its secrets sign the users' tokens (and payments); its Redis and
    /// store are what verification reads.
    #[arg(long)]
    pub config: PathBuf,
    /// The campaign to buy from.
    #[arg(long)]
    pub campaign: String,
}

/// A [`TargetArgs`] read and checked.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub config: Config,
    pub campaign: CampaignConfig,
}

impl TargetArgs {
    /// # Errors
    /// An unreadable or invalid config, or a campaign it does not have.
    pub fn resolve(&self) -> anyhow::Result<Target> {
        let config =
            Config::load(&self.config).with_context(|| format!("{}", self.config.display()))?;
        let campaign = config
            .campaign(&self.campaign)
            .with_context(|| {
                format!(
                    "campaign {} is not in {}",
                    self.campaign,
                    self.config.display()
                )
            })?
            .clone();
        Ok(Target {
            addr: self.addr,
            config,
            campaign,
        })
    }
}

/// How the load engine runs.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Keep-alive connections the users share.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Threads driving the connections. One is like `wrk -t1`: it leaves the other core to what
    /// is measured, but on a 2-core machine it is itself the limit against a bare server.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// Where a run's figures go besides the terminal.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Write every figure as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an SVG chart of throughput and p99 over time here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

impl OutputArgs {
    /// Writes the report (with `extra` merged in at the top level) and its chart, as asked.
    ///
    /// # Errors
    /// An unwritable file.
    pub fn write(&self, report: &Report, extra: Value, title: &str) -> anyhow::Result<()> {
        if let Some(path) = &self.json {
            let mut value = report.to_json();
            if let (Value::Object(into), Value::Object(from)) = (&mut value, extra) {
                into.extend(from);
            }
            std::fs::write(path, serde_json::to_vec_pretty(&value)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(path) = &self.plot {
            std::fs::write(path, plot::svg(report, title))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}
