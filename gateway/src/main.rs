//! `flashgate`: run the gateway, or check a config file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use flashgate::config::Config;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A flash-sale gateway: sells every unit exactly once and persists every order.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The config file to run with.
    #[arg(long, default_value = "config/demo.toml")]
    config: PathBuf,
    /// Validate this config file, name every bad field, and exit (non-zero when invalid).
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// Log lines as text for people, or as JSON objects for a log pipeline. The level comes
    /// from RUST_LOG (default info; the purchase path logs at debug only).
    #[arg(long, env = "FLASHGATE_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    /// Once the listener is bound, write its address (`127.0.0.1:41234`) to this file, whole
    /// or not at all (written beside it, then renamed): with `listen` on port 0 the kernel
    /// picks a free port, and whoever started the gateway learns it here, with no race for a
    /// port picked in advance. Bound is not ready: Redis, the store and the catalog come up
    /// after it, so a supervisor still waits for `/readyz`. A file left by an earlier run is
    /// removed at start, so it never names an old port.
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    if let Some(path) = args.check_config {
        return match Config::load(&path) {
            Ok(config) => {
                println!(
                    "{}: ok ({} campaigns)",
                    path.display(),
                    config.campaigns.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                ExitCode::from(2)
            }
        };
    }
    match serve(&args.config, args.ready_file.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flashgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(path: &Path, ready_file: Option<&Path>) -> anyhow::Result<()> {
    if let Some(file) = ready_file {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("removing the old ready file {}", file.display()));
            }
        }
    }
    let config = Config::load(path).with_context(|| format!("config {}", path.display()))?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = config.server.workers {
        runtime.worker_threads(workers);
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("binding {}", config.server.listen))?;
        if let Some(file) = ready_file {
            report_address(file, listener.local_addr()?)
                .with_context(|| format!("writing the ready file {}", file.display()))?;
        }
        let clock = flashgate::clock::Clock::system();
        flashgate::run(
            listener,
            config,
            clock,
            flashgate::signal::shutdown_signal(),
        )
        .await?;
        Ok(())
    })
}

/// Writes `addr` to `file` through a file beside it and a rename: a reader sees the whole
/// address or no file.
fn report_address(file: &Path, addr: SocketAddr) -> std::io::Result<()> {
    let mut partial = file.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, addr.to_string())?;
    std::fs::rename(&partial, file)
}
