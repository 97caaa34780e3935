//! A server process that cannot outlive the test process that started it.
//!
//! Each server runs under a small `sh` watchdog whose standard input is a pipe from the test
//! process: when that pipe closes — the [`Guarded`] is dropped, or the test process exits or is
//! killed, so its statics (the process-wide servers) go too — the watchdog signals the server,
//! waits for it and, if asked, removes its directory. No `atexit` hook or `unsafe` needed, and
//! `cargo test` leaves no stray servers behind.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

/// Starts `"$@"` in the background, prints its pid, and once standard input ends (EOF), sends
/// it `$TESTKIT_STOP`, waits for it and removes `$TESTKIT_REMOVE` if set.
const WATCHDOG: &str = r#"
"$@" >/dev/null 2>&1 &
server=$!
echo "$server"
while read -r _; do :; done
kill -s "$TESTKIT_STOP" "$server" 2>/dev/null
wait "$server" 2>/dev/null
if [ -n "$TESTKIT_REMOVE" ]; then rm -rf "$TESTKIT_REMOVE"; fi
"#;

/// A server started under the watchdog; stopped (and waited for) on drop.
#[derive(Debug)]
pub struct Guarded {
    watchdog: Child,
    /// The pipe whose end is the watchdog's signal to stop the server.
    lifeline: Option<ChildStdin>,
    pid: u32,
}

impl Guarded {
    /// Runs `command`'s program and arguments (and environment) under the watchdog. `stop` is
    /// the signal it ends with (`KILL` for Redis, `INT` — a fast shutdown — for PostgreSQL);
    /// `remove` a directory the watchdog deletes once it has (for the process-wide servers,
    /// which are never dropped).
    pub fn spawn(command: &Command, stop: &str, remove: Option<&Path>) -> std::io::Result<Self> {
        let mut watchdog = Command::new("sh");
        watchdog
            .arg("-c")
            .arg(WATCHDOG)
            .arg("testkit-watchdog")
            .arg(command.get_program())
            .args(command.get_args())
            .env("TESTKIT_STOP", stop)
            .env(
                "TESTKIT_REMOVE",
                remove.map(Path::as_os_str).unwrap_or_default(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => watchdog.env(key, value),
                None => watchdog.env_remove(key),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            watchdog.current_dir(dir);
        }
        let mut child = watchdog.spawn()?;
        let lifeline = child.stdin.take();
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let pid = line
            .trim()
            .parse()
            .map_err(|_| std::io::Error::other(format!("the watchdog printed no pid: {line:?}")))?;
        Ok(Self {
            watchdog: child,
            lifeline,
            pid,
        })
    }

    /// The server's process id (not the watchdog's).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the server still runs (it exits by itself when, say, its port is taken).
    pub fn is_running(&self) -> bool {
        is_running(self.pid)
    }

    /// Sends the server `signal` (`"STOP"`, `"CONT"`, …).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args(["-s", signal, &self.pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "kill -s {signal} {}", self.pid);
    }

    /// Stops the server with the stop signal and waits until it and the watchdog are gone.
    pub fn stop(&mut self) {
        // A paused server would never see the stop signal's effect.
        if self.lifeline.is_some() && is_running(self.pid) {
            let _ = Command::new("kill")
                .args(["-s", "CONT", &self.pid.to_string()])
                .status();
        }
        drop(self.lifeline.take());
        let _ = self.watchdog.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether process `pid` runs: it exists and is no zombie waiting for its parent.
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
    })
}
