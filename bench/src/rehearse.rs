//! `rehearse`: a whole rehearsal in one command. It starts a private `redis-server` (or, with
//! `--cluster`, a private Redis Cluster) and a gateway from the given config (on that Redis,
//! with a fresh SQLite store or the PostgreSQL database given, and a free port), runs a scenario
//! against them with verification, and stops both, whatever happened. On a cluster it reports
//! what each master spent on commands during the scenario.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;

use crate::private_redis::{self, PrivateRedis};
use crate::processes::{self, Server};

/// What a rehearsal is told.
#[derive(Debug, Clone, clap::Args)]
pub struct RehearseArgs {
    /// The gateway config to rehearse with. Its campaigns, secrets and limits are used as they
    /// are; its listen address, Redis and store are replaced by private ones.
    #[arg(long)]
    pub config: PathBuf,
    /// The gateway binary (default: `flashgate` beside this binary, else on PATH).
    #[arg(long)]
    pub gateway: Option<PathBuf>,
    #[arg(long, default_value = "redis-server")]
    pub redis_server: PathBuf,
    #[arg(long, default_value = "redis-cli")]
    pub redis_cli: PathBuf,
    /// Start a private Redis Cluster instead of one Redis.
    #[arg(long)]
    pub cluster: bool,
    /// Masters of the `--cluster`.
    #[arg(long, default_value_t = 3)]
    pub cluster_masters: u16,
    /// Replicas of each master of the `--cluster` (0 keeps the cores for the masters).
    #[arg(long, default_value_t = 0)]
    pub cluster_replicas: u16,
    /// Write what each master of the `--cluster` spent on commands during the scenario here
    /// (JSON).
    #[arg(long)]
    pub redis_stats: Option<PathBuf>,
    /// Store orders in this PostgreSQL database instead of a fresh SQLite file. Give it an
    /// empty one: verification compares it with the rehearsal's fresh Redis.
    #[arg(long)]
    pub store_url: Option<String>,
    /// Keep the private config, store and logs here (default: a temporary directory, removed
    /// afterwards).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// The scenario and its options, without --addr and --config, e.g.
    /// `flash --campaign bench-flash --users 100000 --plot flash.svg`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "SCENARIO"
    )]
    pub scenario: Vec<String>,
}

/// Runs the rehearsal; `scenario` runs the given arguments with `--addr` and `--config`
/// added, and says whether its checks passed. `Ok(false)` when they did not or the gateway did
/// not stop cleanly.
///
/// # Errors
/// Redis or the gateway would not start; the scenario could not run.
pub fn run(
    args: &RehearseArgs,
    scenario: impl FnOnce(Vec<String>) -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    let temporary = tempfile::tempdir()?;
    let dir = args
        .workdir
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;

    let redis = PrivateRedis::start(
        &private_redis::Plan {
            redis_server: args.redis_server.clone(),
            redis_cli: args.redis_cli.clone(),
            cluster: args
                .cluster
                .then_some((args.cluster_masters.max(3), args.cluster_replicas)),
        },
        &dir,
    )?;
    let gateway = PrivateGateway::start(args, &dir, &redis)?;
    announce(gateway.addr, &redis, &dir);

    let mut argv = args.scenario.clone();
    argv.extend(["--addr".into(), gateway.addr.to_string(), "--config".into()]);
    argv.push(gateway.config.display().to_string());
    if redis.is_cluster() {
        redis.reset_stats()?;
    }
    let passed = scenario(argv)?;
    if redis.is_cluster() {
        report_command_time(&redis, args.redis_stats.as_deref())?;
    }

    let status = gateway.server.terminate(Duration::from_secs(30))?;
    drop(redis);
    match &args.workdir {
        Some(dir) => eprintln!(
            "rehearse: gateway stopped ({status}), Redis stopped; config, store and log kept in {}",
            dir.display()
        ),
        None => eprintln!(
            "rehearse: gateway stopped ({status}), Redis stopped, private files removed \
             (--workdir keeps them)"
        ),
    }
    Ok(passed && status.success())
}

/// The rehearsal's gateway, on the private Redis, stopped when dropped.
struct PrivateGateway {
    server: Server,
    addr: SocketAddr,
    /// Its private config, which the scenario reads too.
    config: PathBuf,
}

impl PrivateGateway {
    /// Writes the private config into `dir` and starts the gateway on it, logging to
    /// `dir/gateway.log`; returns once it listens.
    ///
    /// # Errors
    /// The config unreadable, the gateway would not start or listen.
    fn start(args: &RehearseArgs, dir: &Path, redis: &PrivateRedis) -> anyhow::Result<Self> {
        let addr = processes::free_addr()?;
        let config = dir.join("gateway.toml");
        std::fs::write(
            &config,
            private_config(
                &args.config,
                dir,
                &redis.urls(),
                redis.is_cluster(),
                addr,
                args.store_url.as_deref(),
            )?,
        )
        .with_context(|| format!("writing {}", config.display()))?;
        let log = dir.join("gateway.log");
        let binary = args
            .gateway
            .clone()
            .unwrap_or_else(|| processes::sibling_binary("flashgate"));
        let mut server = Server::spawn(
            "gateway",
            Command::new(binary)
                .arg("--config")
                .arg(&config)
                .env(
                    "RUST_LOG",
                    std::env::var("FLASHGATE_REHEARSE_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?),
        )?;
        server
            .wait_listening(addr, Duration::from_secs(30))
            .with_context(|| format!("see {}", log.display()))?;
        Ok(Self {
            server,
            addr,
            config,
        })
    }
}

/// Says where the gateway, Redis and the rehearsal's files are.
fn announce(gateway: SocketAddr, redis: &PrivateRedis, dir: &Path) {
    let nodes: Vec<String> = redis
        .urls()
        .iter()
        .map(|u| u.trim_start_matches("redis://").to_owned())
        .collect();
    eprintln!(
        "rehearse: gateway on {gateway}, private Redis{} on {}, files in {}",
        if redis.is_cluster() { " Cluster" } else { "" },
        nodes.join(" "),
        dir.display()
    );
}

/// What each master spent on commands during the scenario, printed and written to `out`.
fn report_command_time(redis: &PrivateRedis, out: Option<&Path>) -> anyhow::Result<()> {
    let times = redis.command_time()?;
    for t in &times {
        eprintln!(
            "rehearse: master {}: {} µs on commands, {} script calls ({} µs)",
            t.addr, t.usec, t.script_calls, t.script_usec
        );
    }
    if let Some(out) = out {
        let json: Vec<_> = times.iter().map(|t| t.to_json()).collect();
        std::fs::write(out, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// `original` with its listen address, Redis and store replaced by the private ones.
fn private_config(
    original: &Path,
    dir: &Path,
    redis_urls: &[String],
    cluster: bool,
    listen: SocketAddr,
    store_url: Option<&str>,
) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(original)
        .with_context(|| format!("reading {}", original.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", original.display()))?;
    let section = |table: &mut toml::Table, name: &str| -> anyhow::Result<toml::Table> {
        match table.remove(name) {
            None => Ok(toml::Table::new()),
            Some(toml::Value::Table(t)) => Ok(t),
            Some(_) => anyhow::bail!("[{name}] in {} is not a table", original.display()),
        }
    };
    let mut server = section(&mut table, "server")?;
    server.insert("listen".into(), listen.to_string().into());
    let mut redis_section = section(&mut table, "redis")?;
    redis_section.retain(|key, _| key.ends_with("_timeout"));
    if cluster {
        redis_section.insert("cluster".into(), redis_urls.to_vec().into());
    } else {
        redis_section.insert("url".into(), redis_urls.concat().into());
    }
    let mut store = section(&mut table, "store")?;
    store.insert(
        "path".into(),
        dir.join("orders.db").display().to_string().into(),
    );
    match store_url {
        Some(url) => store.insert("url".into(), url.into()),
        // A store the original config names would hold orders this Redis never saw.
        None => store.remove("url"),
    };
    table.insert("server".into(), server.into());
    table.insert("redis".into(), redis_section.into());
    table.insert("store".into(), store.into());
    Ok(toml::to_string(&table)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_config_keeps_campaigns_and_replaces_the_world() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let original = dir.path().join("in.toml");
        let text = "[server]\nlisten = \"0.0.0.0:80\"\nnode_id = 3\n\
                    [redis]\nembedded = true\nresponse_timeout = \"2s\"\n\
                    [[campaigns]]\nid = \"c1\"\n";
        std::fs::write(&original, text).unwrap_or_else(|e| unreachable!("{e}"));
        let redis = ["redis://127.0.0.1:7001".to_owned()];
        let listen: SocketAddr = "127.0.0.1:7002"
            .parse()
            .unwrap_or_else(|e| unreachable!("{e}"));
        let out = private_config(&original, Path::new("/w"), &redis, false, listen, None)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let t: toml::Table = toml::from_str(&out).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(t["server"]["listen"].as_str(), Some("127.0.0.1:7002"));
        assert_eq!(t["server"]["node_id"].as_integer(), Some(3));
        assert_eq!(t["redis"]["url"].as_str(), Some("redis://127.0.0.1:7001"));
        assert_eq!(t["redis"]["response_timeout"].as_str(), Some("2s"));
        assert!(t["redis"].get("embedded").is_none());
        assert_eq!(t["store"]["path"].as_str(), Some("/w/orders.db"));
        assert_eq!(t["campaigns"][0]["id"].as_str(), Some("c1"));

        let seeds = [
            "redis://127.0.0.1:7001".to_owned(),
            "redis://127.0.0.1:7002".to_owned(),
        ];
        let out = private_config(&original, Path::new("/w"), &seeds, true, listen, None)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let t: toml::Table = toml::from_str(&out).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(t["redis"].get("url").is_none());
        assert_eq!(
            t["redis"]["cluster"][1].as_str(),
            Some("redis://127.0.0.1:7002")
        );
    }
}
