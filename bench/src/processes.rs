//! Servers a bench command starts for itself (the reference server, a rehearsal's Redis and
//! gateway): each stopped when dropped, so an error never leaves one running.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// A child process, killed on drop unless it was stopped first.
#[derive(Debug)]
pub struct Server {
    name: &'static str,
    child: Option<Child>,
}

impl Server {
    /// Starts `command`.
    ///
    /// # Errors
    /// The program cannot be run.
    pub fn spawn(name: &'static str, command: &mut Command) -> anyhow::Result<Self> {
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        Ok(Self {
            name,
            child: Some(child),
        })
    }

    /// Waits until `addr` accepts connections.
    ///
    /// # Errors
    /// The process exited, or `patience` ran out.
    pub fn wait_listening(&mut self, addr: SocketAddr, patience: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                anyhow::bail!("{} exited ({status}) before listening on {addr}", self.name);
            }
            anyhow::ensure!(
                started.elapsed() < patience,
                "{} not listening on {addr} after {patience:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asks the process to stop (SIGTERM) and waits up to `patience` for it; kills it after.
    ///
    /// # Errors
    /// It had to be killed, or could not be signalled.
    pub fn terminate(mut self, patience: Duration) -> anyhow::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            anyhow::bail!("{} already stopped", self.name);
        };
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("running kill")?;
        anyhow::ensure!(sent.success(), "could not signal {}", self.name);
        let started = Instant::now();
        while started.elapsed() < patience {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!(
            "{} did not stop within {patience:?} and was killed",
            self.name
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port on 127.0.0.1 nobody listens on right now.
///
/// # Errors
/// No port could be bound.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// A reference server, started from this very binary: hello-world, or the naive gateway on
/// the Redis at `naive_redis`; on `workers` threads, like the gateway it is compared with.
///
/// # Errors
/// It could not be started or did not listen.
pub fn reference_server(
    naive_redis: Option<&str>,
    workers: Option<usize>,
) -> anyhow::Result<(Server, SocketAddr)> {
    let addr = free_addr()?;
    let exe = std::env::current_exe().context("locating flashgate-bench")?;
    let mut command = Command::new(exe);
    command
        .args(["reference-server", "--listen", &addr.to_string()])
        .stderr(std::process::Stdio::null());
    if let Some(url) = naive_redis {
        command.args(["--naive-redis", url]);
    }
    if let Some(workers) = workers {
        command.args(["--workers", &workers.to_string()]);
    }
    let mut server = Server::spawn("reference server", &mut command)?;
    server.wait_listening(addr, Duration::from_secs(10))?;
    Ok((server, addr))
}

/// `name` beside this binary (where cargo builds the workspace's binaries), else on `PATH`.
pub fn sibling_binary(name: &str) -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(name))
        .filter(|p| Path::new(p).is_file())
        .unwrap_or_else(|| name.into())
}
