//! A private `redis-server` that the gateway starts, supervises and stops.
//!
//! It exists so `flashgate --config config/demo.toml` runs on a bare machine. It is chosen by
//! config (`[redis] embedded = true`) and never used as a fallback for an unreachable Redis: a
//! gateway that quietly sold from a private Redis would sell the same stock twice. For the same
//! reason AOF is always on — a restart of redis or of the gateway must not forget what was sold,
//! and the eviction policy is set to `noeviction` explicitly rather than left to the server's
//! defaults: an evicted key is a lost order or a reset per-user limit.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

use crate::config::RedisTarget;

/// How long `start` waits for the first PING to succeed, AOF replay included.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on a single local request, so a wedged server cannot hang start or stop.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a graceful `SHUTDOWN` (AOF flush) may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A child that stayed up this long was healthy, so the next crash starts a fresh backoff.
const HEALTHY_UPTIME: Duration = Duration::from_secs(30);
const LOG_FILE: &str = "redis.log";
const LOG_TAIL_BYTES: usize = 2048;

/// Why the embedded redis could not be started or stopped.
#[derive(Debug, Error)]
pub enum EmbeddedRedisError {
    #[error(
        "{} not found: the config asks for an embedded redis ([redis] embedded = true); install it: \
         apt-get install redis-server (Debian/Ubuntu) or brew install redis (macOS), or point \
         [redis] at an existing server",
        binary.display()
    )]
    BinaryNotFound { binary: PathBuf },
    /// Refused rather than shared: another server on that port holds someone else's stock.
    #[error(
        "port {port} on 127.0.0.1 is already in use; the embedded redis needs a port of its own"
    )]
    PortInUse { port: u16 },
    #[error("could not spawn redis-server: {0}")]
    Spawn(#[source] std::io::Error),
    #[error(
        "redis-server on port {port} did not answer PING within {waited:?}; log tail:\n{log_tail}"
    )]
    NotReady {
        port: u16,
        waited: Duration,
        log_tail: String,
    },
    #[error("embedded redis I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("embedded redis supervisor failed: {0}")]
    Supervisor(#[from] tokio::task::JoinError),
}

/// A running private redis; restarts it if it dies until [`EmbeddedRedis::stop`] is called.
///
/// Dropping it without `stop` still shuts redis down: the supervisor sees its stop channel close
/// and asks redis to exit, and if the runtime itself is gone the child is killed on drop.
#[derive(Debug)]
pub struct EmbeddedRedis {
    /// Fixed for the supervisor's lifetime, so restarts are invisible to clients.
    port: u16,
    /// Sending (or dropping) tells the supervisor to shut redis down gracefully.
    stop: oneshot::Sender<()>,
    /// Owns the child; awaiting it is how `stop` knows redis has really exited.
    supervisor: JoinHandle<Result<(), EmbeddedRedisError>>,
}

impl EmbeddedRedis {
    /// Starts redis and returns once it answers PING.
    ///
    /// `dir` holds the AOF and `redis.log`; reuse it across runs to keep the data.
    ///
    /// # Errors
    /// `PortInUse` if something already accepts on `127.0.0.1:port`, `BinaryNotFound` if `binary`
    /// cannot be found, `NotReady` (with the log tail) if redis exits or stays silent for ~5 s.
    pub async fn start(binary: &Path, port: u16, dir: &Path) -> Result<Self, EmbeddedRedisError> {
        if let Ok(Ok(_)) = timeout(REQUEST_TIMEOUT, TcpStream::connect(("127.0.0.1", port))).await {
            return Err(EmbeddedRedisError::PortInUse { port });
        }
        // Tiny local filesystem calls: not worth a blocking-pool hop.
        std::fs::create_dir_all(dir)?;
        let launch = Launch {
            binary: binary.to_path_buf(),
            port,
            dir: std::fs::canonicalize(dir)?,
        };
        let mut child = launch.spawn()?;
        let began = Instant::now();
        loop {
            if ping(port).await {
                break;
            }
            let exited = child.try_wait()?.is_some();
            if exited || began.elapsed() >= READY_TIMEOUT {
                if !exited {
                    child.kill().await?;
                }
                return Err(EmbeddedRedisError::NotReady {
                    port,
                    waited: began.elapsed(),
                    log_tail: launch.log_tail(),
                });
            }
            sleep(Duration::from_millis(50)).await;
        }
        tracing::info!(port, dir = %launch.dir.display(), "embedded redis ready");
        let (stop, stopped) = oneshot::channel();
        let supervisor = tokio::spawn(supervise(launch, child, stopped));
        Ok(Self {
            port,
            stop,
            supervisor,
        })
    }

    /// Where clients connect to it.
    pub fn target(&self) -> RedisTarget {
        RedisTarget::local(self.port)
    }

    /// Stops supervision and shuts redis down with `SHUTDOWN` so the AOF is flushed, killing it
    /// only if it has not exited within ~10 s.
    ///
    /// # Errors
    /// `Io` if waiting for or killing the process fails, `Supervisor` if the supervisor panicked.
    pub async fn stop(self) -> Result<(), EmbeddedRedisError> {
        // An Err only means the supervisor is already gone; its result below says why.
        let _ = self.stop.send(());
        self.supervisor.await?
    }
}

/// Everything needed to (re)spawn the same server, so a restart replays the same AOF.
#[derive(Debug)]
struct Launch {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
}

impl Launch {
    fn spawn(&self) -> Result<Child, EmbeddedRedisError> {
        // stdout/stderr go to the log (not `--logfile`) so fatal start-up errors land there too.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(LOG_FILE))?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--dir"])
            .arg(&self.dir)
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(["--save", "", "--daemonize", "no"])
            .args(["--maxmemory-policy", "noeviction"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => EmbeddedRedisError::BinaryNotFound {
                binary: self.binary.clone(),
            },
            _ => EmbeddedRedisError::Spawn(e),
        })
    }

    fn log_tail(&self) -> String {
        match std::fs::read(self.dir.join(LOG_FILE)) {
            Ok(bytes) => {
                let from = bytes.len().saturating_sub(LOG_TAIL_BYTES);
                String::from_utf8_lossy(&bytes[from..]).into_owned()
            }
            Err(e) => format!("(could not read {LOG_FILE}: {e})"),
        }
    }
}

/// Keeps redis up until told to stop; a crash costs a backoff, not the data (AOF).
async fn supervise(
    launch: Launch,
    child: Child,
    mut stopped: oneshot::Receiver<()>,
) -> Result<(), EmbeddedRedisError> {
    let port = launch.port;
    let mut child = Some((child, Instant::now()));
    let mut backoff = INITIAL_BACKOFF;
    loop {
        if let Some((running, since)) = child.as_mut() {
            tokio::select! {
                _ = &mut stopped => return shut_down(running, port).await,
                status = running.wait() => {
                    if since.elapsed() >= HEALTHY_UPTIME {
                        backoff = INITIAL_BACKOFF;
                    }
                    tracing::warn!(port, ?status, ?backoff, "embedded redis exited; restarting");
                    child = None;
                }
            }
        }
        tokio::select! {
            _ = &mut stopped => return Ok(()),
            () = sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        match launch.spawn() {
            Ok(spawned) => child = Some((spawned, Instant::now())),
            Err(e) => tracing::error!(port, error = %e, ?backoff, "embedded redis restart failed"),
        }
    }
}

/// `SHUTDOWN` rather than a kill so redis flushes the AOF; kill only as a last resort.
async fn shut_down(child: &mut Child, port: u16) -> Result<(), EmbeddedRedisError> {
    if child.try_wait()?.is_none() {
        // On success redis closes the connection without a reply; an error reply is logged.
        match request(port, b"*1\r\n$8\r\nSHUTDOWN\r\n").await {
            Ok(reply) if reply.starts_with(b"-") => {
                let reply = String::from_utf8_lossy(&reply);
                tracing::warn!(port, reply = %reply.trim_end(), "embedded redis refused SHUTDOWN");
            }
            _ => {}
        }
    }
    match timeout(STOP_TIMEOUT, child.wait()).await {
        Ok(status) => log_exit(port, status?),
        Err(_) => {
            tracing::warn!(port, "embedded redis ignored SHUTDOWN; killing it");
            child.kill().await?;
        }
    }
    Ok(())
}

fn log_exit(port: u16, status: ExitStatus) {
    tracing::info!(port, %status, "embedded redis stopped");
}

/// True once redis accepts commands (a server still replaying its AOF answers `-LOADING`).
async fn ping(port: u16) -> bool {
    matches!(request(port, b"*1\r\n$4\r\nPING\r\n").await, Ok(r) if r.starts_with(b"+PONG"))
}

/// One raw RESP request, reading the first reply line (or to EOF), all under `REQUEST_TIMEOUT`.
async fn request(port: u16, command: &[u8]) -> std::io::Result<Vec<u8>> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(command).await?;
        let mut reply = Vec::new();
        let mut buf = [0_u8; 256];
        while !reply.ends_with(b"\r\n") && reply.len() < 1024 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        Ok(reply)
    };
    timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const BINARY: &str = "/usr/bin/redis-server";

    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    async fn connect(redis: &EmbeddedRedis) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(redis.target().connection_info()).unwrap();
        client.get_multiplexed_async_connection().await.unwrap()
    }

    // If an assertion panics, the test runtime drops the supervisor and kill_on_drop reaps redis.
    #[tokio::test]
    async fn data_survives_a_restart_through_the_aof() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let redis = EmbeddedRedis::start(Path::new(BINARY), port, dir.path())
            .await
            .unwrap();
        assert_eq!(redis.target().addr(), format!("127.0.0.1:{port}"));
        let mut conn = connect(&redis).await;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
        assert_eq!(pong, "PONG");
        let policy = flashgate_stock::eviction_policy(&mut conn).await.unwrap();
        assert!(!policy.evicts(), "{policy:?}");
        let () = redis::cmd("SET")
            .arg("stock:1")
            .arg("41")
            .query_async(&mut conn)
            .await
            .unwrap();
        drop(conn);
        redis.stop().await.unwrap();
        assert!(!ping(port).await, "redis still answers after stop");

        let redis = EmbeddedRedis::start(Path::new(BINARY), port, dir.path())
            .await
            .unwrap();
        let mut conn = connect(&redis).await;
        let value: Option<String> = redis::cmd("GET")
            .arg("stock:1")
            .query_async(&mut conn)
            .await
            .unwrap();
        drop(conn);
        redis.stop().await.unwrap();
        assert_eq!(value.as_deref(), Some("41"));
    }

    #[tokio::test]
    async fn missing_binary_says_how_to_install_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = EmbeddedRedis::start(
            Path::new("/nonexistent/redis-server"),
            free_port(),
            dir.path(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, EmbeddedRedisError::BinaryNotFound { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("apt-get install redis-server"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn refuses_a_port_already_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = EmbeddedRedis::start(Path::new(BINARY), port, dir.path())
            .await
            .unwrap_err();
        assert!(
            matches!(err, EmbeddedRedisError::PortInUse { port: p } if p == port),
            "{err:?}"
        );
        drop(listener);
    }

    #[tokio::test]
    async fn restarts_redis_after_it_exits() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let redis = EmbeddedRedis::start(Path::new(BINARY), port, dir.path())
            .await
            .unwrap();
        let mut conn = connect(&redis).await;
        // Redis exits without replying, so the call itself fails.
        let _ = redis::cmd("SHUTDOWN")
            .arg("NOSAVE")
            .query_async::<()>(&mut conn)
            .await;
        drop(conn);
        let down_by = Instant::now() + Duration::from_secs(2);
        while ping(port).await && Instant::now() < down_by {
            sleep(Duration::from_millis(10)).await;
        }
        assert!(!ping(port).await, "redis never went down");

        let deadline = Instant::now() + Duration::from_secs(5);
        let mut back = false;
        while !back && Instant::now() < deadline {
            sleep(Duration::from_millis(50)).await;
            back = ping(port).await;
        }
        redis.stop().await.unwrap();
        assert!(back, "supervisor did not restart redis within 5 s");
    }
}
