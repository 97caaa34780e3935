//! A rehearsal's own Redis: one `redis-server`, or a whole Redis Cluster (`--cluster`) of
//! several masters (and replicas if asked), created with `redis-cli --cluster create`. Stopped
//! when dropped. On a cluster, what each master spent on commands during the scenario is read
//! from `INFO commandstats`: the Redis CPU a reservation costs, master by master.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::processes::{self, Server};

/// How to start the private Redis.
#[derive(Debug, Clone)]
pub struct Plan {
    pub redis_server: PathBuf,
    pub redis_cli: PathBuf,
    /// `None`: one Redis. `Some((masters, replicas per master))`: a cluster.
    pub cluster: Option<(u16, u16)>,
}

/// The running private Redis.
pub struct PrivateRedis {
    nodes: Vec<(SocketAddr, Server)>,
    cluster: bool,
    cli: PathBuf,
}

impl PrivateRedis {
    /// Starts it, its files in `dir`.
    ///
    /// # Errors
    /// A server would not start, or the cluster would not form.
    pub fn start(plan: &Plan, dir: &Path) -> anyhow::Result<Self> {
        let count = plan.cluster.map_or(1, |(m, r)| usize::from(m * (1 + r)));
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            let addr = if plan.cluster.is_some() {
                cluster_addr()?
            } else {
                processes::free_addr()?
            };
            let port = addr.port().to_string();
            let mut command = Command::new(&plan.redis_server);
            command
                .args(["--bind", "127.0.0.1", "--port", &port])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir)
                .stdout(Stdio::null());
            if plan.cluster.is_some() {
                command
                    .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                    .arg(format!("nodes-{port}.conf"));
            }
            let mut server = Server::spawn("redis-server", &mut command)?;
            server.wait_listening(addr, Duration::from_secs(10))?;
            nodes.push((addr, server));
        }
        let redis = Self {
            nodes,
            cluster: plan.cluster.is_some(),
            cli: plan.redis_cli.clone(),
        };
        if let Some((_, replicas)) = plan.cluster {
            let status = Command::new(&redis.cli)
                .args(["--cluster", "create"])
                .args(redis.nodes.iter().map(|(a, _)| a.to_string()))
                .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
                .stdout(Stdio::null())
                .status()
                .with_context(|| format!("running {}", redis.cli.display()))?;
            anyhow::ensure!(status.success(), "redis-cli --cluster create failed");
            redis.wait_until_ok(Duration::from_secs(30))?;
        }
        Ok(redis)
    }

    /// The URLs the gateway is given: one, or every node of the cluster as seeds.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(a, _)| format!("redis://{a}"))
            .collect()
    }

    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    fn cli(&self, addr: SocketAddr, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.cli)
            .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .args(args)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn wait_until_ok(&self, patience: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        for (addr, _) in &self.nodes {
            while !self
                .cli(*addr, &["CLUSTER", "INFO"])?
                .contains("cluster_state:ok")
            {
                anyhow::ensure!(
                    started.elapsed() < patience,
                    "the cluster is not ok after {patience:?}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// The masters, each with the slots it serves.
    fn masters(&self) -> anyhow::Result<Vec<SocketAddr>> {
        let mut masters = Vec::new();
        for (addr, _) in &self.nodes {
            if self.cli(*addr, &["ROLE"])?.starts_with("master") {
                masters.push(*addr);
            }
        }
        Ok(masters)
    }

    /// Clears every node's command statistics: what follows is the scenario's alone.
    ///
    /// # Errors
    /// A node did not answer.
    pub fn reset_stats(&self) -> anyhow::Result<()> {
        for (addr, _) in &self.nodes {
            self.cli(*addr, &["CONFIG", "RESETSTAT"])?;
        }
        Ok(())
    }

    /// What each master spent on commands since [`PrivateRedis::reset_stats`]: script calls
    /// and microseconds, from `INFO commandstats`.
    ///
    /// # Errors
    /// A node did not answer.
    pub fn command_time(&self) -> anyhow::Result<Vec<MasterTime>> {
        let mut all = Vec::new();
        for addr in self.masters()? {
            let stats = self.cli(addr, &["INFO", "commandstats"])?;
            let (mut usec, mut script_calls, mut script_usec) = (0, 0, 0);
            for line in stats.lines().filter(|l| l.starts_with("cmdstat_")) {
                let field = |name: &str| -> u64 {
                    line.split([':', ','])
                        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0)
                };
                usec += field("usec");
                if line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:") {
                    script_calls += field("calls");
                    script_usec += field("usec");
                }
            }
            all.push(MasterTime {
                addr,
                usec,
                script_calls,
                script_usec,
            });
        }
        Ok(all)
    }
}

/// One master's command time over a scenario.
#[derive(Debug, Clone, Copy)]
pub struct MasterTime {
    pub addr: SocketAddr,
    /// Every command's time.
    pub usec: u64,
    pub script_calls: u64,
    pub script_usec: u64,
}

impl MasterTime {
    pub fn to_json(self) -> Value {
        json!({
            "master": self.addr.to_string(), "usec": self.usec,
            "script_calls": self.script_calls, "script_usec": self.script_usec,
        })
    }
}

/// A free port whose cluster bus port (+10000) is free too.
fn cluster_addr() -> anyhow::Result<SocketAddr> {
    for _ in 0..100 {
        let addr = processes::free_addr()?;
        if addr.port() < 55_000 && TcpListener::bind(("127.0.0.1", addr.port() + 10_000)).is_ok() {
            return Ok(addr);
        }
    }
    anyhow::bail!("no free port pair for a cluster node")
}
