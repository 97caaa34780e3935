//! A private `redis-server`: free port, temp dir, AOF on, killed on drop.
//!
//! [`RedisServer::start_with`] passes extra arguments (`--requirepass`, `--maxmemory-policy`,
//! `--rename-command`…); the harness's own connections log in with a `--requirepass` password.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct RedisServer {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
    /// Passed to every (re)start after the harness's own.
    args: Vec<String>,
    /// The `--requirepass` among `args`, which the harness's connections log in with.
    password: Option<String>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts one with `args` added to the command line (e.g. `["--requirepass", "pw"]`).
    pub fn start_with(args: &[&str]) -> Self {
        let password = args
            .iter()
            .position(|a| *a == "--requirepass")
            .map(|i| args[i + 1].to_owned());
        let mut server = Self {
            port: crate::free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            password,
        };
        server.restart();
        server
    }

    /// Its URL, without any password.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> redis::Client {
        use redis::IntoConnectionInfo as _;
        let mut info = self.url().into_connection_info().unwrap();
        if let Some(password) = &self.password {
            let login = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(login);
        }
        redis::Client::open(info).unwrap()
    }

    /// Starts it again on the same port and data (a stopped server's AOF brings the data back).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ping = self
                .client()
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if ping.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it cleanly (the AOF is complete), keeping its data for [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(mut c) = self.client().get_connection() {
                let _: Result<(), _> = redis::cmd("SHUTDOWN").query(&mut c);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Holds every write (scripts included) for `ms` milliseconds while reads go on
    /// (`CLIENT PAUSE … WRITE`): a call the gateway gives up on still runs afterwards.
    pub fn pause_writes(&self, ms: u64) {
        let mut admin = self.client().get_connection().unwrap();
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(ms)
            .arg("WRITE")
            .query(&mut admin)
            .unwrap();
    }

    /// SIGSTOPs it: it reads and answers nothing (a replica sends no acknowledgement) until
    /// [`Self::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONTs it after [`Self::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("a running redis-server");
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill {signal}");
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many times Redis has run `command` (from `INFO commandstats`), e.g. "evalsha".
    pub fn calls(&self, command: &str) -> u64 {
        let mut c = self.client().get_connection().unwrap();
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut c)
            .unwrap();
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().unwrap())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
