//! Gateways under test: in this process, or as a child process of the real binary.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use flashgate::clock::Clock;
use flashgate::store::{OrderStore, SqliteStore};
use flashgate_stock::Order;

use crate::client::Client;
use crate::scenario::{CampaignSpec, Scenario};

/// A gateway running in this process on its own runtime; shut down gracefully on drop.
pub struct InProcess {
    pub addr: SocketAddr,
    pub store_path: PathBuf,
    /// The gateway's clock: real time, which a test moves forward (to a window's end, past a
    /// payment deadline) with `clock.advance_to(ms)` instead of sleeping until then. A move of
    /// more than a few seconds is a clock step to the gateway: it mints no order id until its
    /// node lease is next renewed (`flashgate::node_lease::MINT_AHEAD`), as in production.
    pub clock: Clock,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl InProcess {
    pub fn start(scenario: &Scenario) -> Self {
        Self::try_start(scenario).unwrap_or_else(|e| panic!("gateway exited at start: {e}"))
    }

    /// Starts a gateway, or returns why it refused to start.
    pub fn try_start(scenario: &Scenario) -> Result<Self, String> {
        Self::try_start_with(scenario.config(), scenario.store_path.clone())
    }

    /// Starts a gateway on `scenario` written to `file`, so that a reload reads that file.
    pub fn start_from_file(scenario: &Scenario, file: &Path) -> Self {
        std::fs::write(file, scenario.toml()).unwrap();
        let config = flashgate::config::Config::load(file).unwrap();
        Self::try_start_with(config, scenario.store_path.clone())
            .unwrap_or_else(|e| panic!("gateway exited at start: {e}"))
    }

    fn try_start_with(
        config: flashgate::config::Config,
        store_path: PathBuf,
    ) -> Result<Self, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let clock = Clock::shiftable();
        let gateway_clock = clock.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
                flashgate::run(listener, config, gateway_clock, async {
                    let _ = stop.await;
                })
                .await
                .map_err(|e| e.to_string())
            })
        });
        let mut gateway = Self {
            addr,
            store_path,
            clock,
            shutdown: Some(shutdown),
            thread: Some(thread),
        };
        gateway.wait_ready()?;
        Ok(gateway)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !healthy(self.addr) {
            if self
                .thread
                .as_ref()
                .is_some_and(std::thread::JoinHandle::is_finished)
            {
                let result = self.thread.take().unwrap().join().unwrap();
                return Err(format!("{result:?}"));
            }
            assert!(Instant::now() < deadline, "gateway not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// Graceful shutdown (as SIGTERM would): in-flight requests finish, the queue drains into
    /// the store. Returns what `run` returned.
    pub fn stop(mut self) -> Result<(), String> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), String> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| "gateway thread panicked".to_string())?,
            None => Ok(()),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Whether `/healthz` answers 200 (a blocking one-shot HTTP/1.1 request).
fn healthy(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// The `flashgate` binary, built once per test run in the profile the tests run in.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build("flashgate", "flashgate"))
}

/// The `flashgate-bench` binary, likewise.
pub fn bench_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build("flashgate-bench", "flashgate-bench"))
}

fn build(package: &str, bin: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", package, "--bin", bin]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "building {bin} failed");
    // target/<profile>/deps/<test binary> → target/<profile>/<bin>
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join(bin)
}

/// The real binary as a child process, for tests that kill it; SIGKILLed on drop.
pub struct Process {
    pub addr: SocketAddr,
    /// The config file it runs on (a SIGHUP reloads it).
    pub config: PathBuf,
    child: Child,
}

impl Process {
    /// Starts the binary on `scenario`, logging into `dir`. The gateway listens where the
    /// scenario says, port 0 by default: it reports the port the kernel gave it in its
    /// `--ready-file`, so no port is picked in advance for someone else to take first.
    pub fn start(scenario: &Scenario, dir: &Path) -> Self {
        Self::start_with_env(scenario, dir, &[])
    }

    /// As [`Process::start`], with extra environment variables (`RUST_LOG` defaults to warn).
    pub fn start_with_env(scenario: &Scenario, dir: &Path, env: &[(&str, &str)]) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let config = dir.join(format!("gateway-{n}.toml"));
        let ready = dir.join(format!("gateway-{n}.ready"));
        std::fs::write(&config, scenario.toml()).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("gateway.log"))
            .unwrap();
        let child = Command::new(binary())
            .arg("--config")
            .arg(&config)
            .arg("--ready-file")
            .arg(&ready)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut process = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            config,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if process.addr.port() == 0
                && let Ok(addr) = std::fs::read_to_string(&ready)
            {
                process.addr = addr.trim().parse().unwrap();
            }
            if process.addr.port() != 0 && healthy(process.addr) {
                return process;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!(
                    "gateway exited at start with {status}; see {}",
                    dir.display()
                );
            }
            assert!(Instant::now() < deadline, "gateway process not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// Has `scenario` listen where this gateway does. A gateway started on it once this one
    /// is killed takes the killed one's node-id lease over at once, as a restarted gateway on
    /// a fixed address does in production (binding the address proves the old one gone); on
    /// port 0 it would wait for the lease to expire, or refuse to start.
    pub fn pin(&self, scenario: &mut Scenario) {
        scenario.listen = self.addr.to_string();
    }

    /// SIGKILL: no shutdown code runs at all.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status (bounded wait).
    /// Sends SIGHUP: the gateway reloads its config file.
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a gateway process that ended by itself left behind.
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// Its logs and its last word.
    pub stderr: Vec<u8>,
}

/// Runs the binary on `scenario` (written into `dir`) with `env` until it exits by itself, as a
/// gateway that refuses to start does; fails the test if it is still running after `patience`.
pub fn run_to_exit(
    scenario: &Scenario,
    dir: &Path,
    env: &[(&str, &str)],
    patience: Duration,
) -> Exited {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let config = dir.join(format!("refused-{n}.toml"));
    let (out, err) = (
        dir.join(format!("refused-{n}.out")),
        dir.join(format!("refused-{n}.err")),
    );
    std::fs::write(&config, scenario.toml()).unwrap();
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + patience;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "gateway still running after {patience:?}; stderr: {}",
                String::from_utf8_lossy(&std::fs::read(&err).unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Exited {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

/// A gateway on the shared Redis, with its own store in a temporary directory, selling
/// `campaign`: the directory (keep it alive), the scenario, the gateway and the campaign id.
pub fn selling(campaign: CampaignSpec) -> (tempfile::TempDir, Scenario, InProcess, String) {
    let dir = tempfile::tempdir().unwrap();
    let id = campaign.id.clone();
    let scenario = Scenario::new(
        crate::shared_redis_url(),
        dir.path().join("orders.db"),
        vec![campaign],
    );
    let gateway = InProcess::start(&scenario);
    (dir, scenario, gateway, id)
}

/// Every order of `campaign_id` in the SQLite store at `path`.
pub fn stored_orders(path: &Path, campaign_id: &str) -> Vec<Order> {
    let store = SqliteStore::open(path, 4).unwrap();
    store.orders_of_campaign(campaign_id).unwrap()
}

/// A gateway selling `campaign` on a private Redis (for tests that stop, pause or restrict
/// it): the Redis, the store's directory (keep it alive), the gateway and the campaign id.
pub fn on_private_redis(
    campaign: CampaignSpec,
) -> (
    crate::redis_server::RedisServer,
    tempfile::TempDir,
    InProcess,
    String,
) {
    let redis = crate::redis_server::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let id = campaign.id.clone();
    let scenario = Scenario::new(redis.url(), dir.path().join("orders.db"), vec![campaign]);
    let gateway = InProcess::start(&scenario);
    (redis, dir, gateway, id)
}
