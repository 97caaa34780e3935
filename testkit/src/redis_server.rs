//! A private `redis-server`: free port, temp dir, AOF on, stopped on drop.
//!
//! [`RedisServer::start_with`] passes extra arguments (`--requirepass`, `--maxmemory-policy`,
//! `--rename-command`…); the kit's own connections log in with a `--requirepass` password.
//! Redis cannot listen on port 0, so a port is picked free and the start tried again on another
//! when a process of someone else's took it first.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::guarded::Guarded;

/// How many ports a start tries before it gives up.
const PORT_TRIES: usize = 5;

#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    /// Declared before `dir`: fields drop in order, and the server must be stopped before its
    /// directory is removed under it.
    server: Option<Guarded>,
    dir: TempDir,
    /// Passed to every (re)start after the kit's own.
    args: Vec<String>,
    /// The `--requirepass` among `args`, which the kit's connections log in with.
    password: Option<String>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts one with `args` added to the command line (e.g. `["--requirepass", "pw"]`).
    pub fn start_with(args: &[&str]) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), args, false)
    }

    /// Starts one in `dir`; `shared`: the process-wide one, whose directory the watchdog
    /// removes at exit (a static is never dropped).
    pub(crate) fn start_in(dir: TempDir, args: &[&str], shared: bool) -> Self {
        let password = args
            .iter()
            .position(|a| *a == "--requirepass")
            .map(|i| args[i + 1].to_owned());
        let mut server = Self {
            port: 0,
            server: None,
            dir,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            password,
        };
        for _ in 0..PORT_TRIES {
            server.port = crate::free_port();
            if server.try_start(shared) {
                return server;
            }
        }
        panic!("redis-server did not start on any of {PORT_TRIES} free ports");
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
        assert!(self.try_start(false), "redis-server did not start again");
    }

    /// Starts the server on `self.port`: `false` if it exited (its port was taken).
    fn try_start(&mut self, shared: bool) -> bool {
        assert!(self.server.is_none(), "already running");
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args);
        let server = Guarded::spawn(&command, "KILL")
            .expect("redis-server on PATH (apt-get install redis-server)");
        let pid = server.pid();
        self.server = Some(server);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Ours answers, not a server of someone else's that took the port first.
            if self.process_id() == Some(pid) {
                if shared && let Some(server) = &mut self.server {
                    server.remove_at_exit(self.dir.path());
                }
                return true;
            }
            if !self.server.as_ref().is_some_and(Guarded::is_running) {
                self.server = None;
                return false;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `process_id` the server on our port gives in `INFO server`, if one answers.
    fn process_id(&self) -> Option<u32> {
        let mut c = self
            .client()
            .get_connection_with_timeout(Duration::from_millis(200))
            .ok()?;
        let info: String = redis::cmd("INFO").arg("server").query(&mut c).ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|n| n.trim().parse().ok())
    }

    /// Stops it cleanly (the AOF is complete), keeping its data for [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            if let Ok(mut c) = self.client().get_connection() {
                let _: Result<(), _> = redis::cmd("SHUTDOWN").query(&mut c);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while server.is_running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            server.stop();
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
        self.running().signal("STOP");
    }

    /// SIGCONTs it after [`Self::pause`].
    pub fn resume(&self) {
        self.running().signal("CONT");
    }

    fn running(&self) -> &Guarded {
        self.server.as_ref().expect("a running redis-server")
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its directory (AOF and all).
    pub fn dir(&self) -> &Path {
        self.dir.path()
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
