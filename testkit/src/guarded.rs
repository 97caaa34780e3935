//! A server process that cannot outlive the test process that started it.
//!
//! Each server runs under a small `sh` watchdog whose standard input is a pipe from the test
//! process: when that pipe closes — the [`Guarded`] is dropped, or the test process exits or is
//! killed, so its statics (the process-wide servers) go too — the watchdog signals the server,
//! waits for it and, if asked, removes its directory. No `atexit` hook or `unsafe` needed, and
//! `cargo test` leaves no stray servers behind.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

/// Starts `"$@"` in the background and prints its pid. It then reads one optional line, a
/// directory to remove at the end (sent only once the server is confirmed as ours:
/// [`Guarded::remove_at_exit`]), and waits for standard input to end (EOF). Then it sends the
/// server `$TESTKIT_STOP`, waits for it and removes that directory. Ctrl-C and the like are
/// ignored by the watchdog itself (after the server has started, so the server keeps its own
/// handling): only the end of its input, which comes when the test process dies, ends it, so
/// it always cleans up.
const WATCHDOG: &str = r#"
"$@" >/dev/null 2>&1 &
server=$!
echo "$server"
trap '' INT TERM HUP
IFS= read -r remove || remove=
while read -r _; do :; done
kill -s "$TESTKIT_STOP" "$server" 2>/dev/null
wait "$server" 2>/dev/null
if [ -n "$remove" ]; then rm -rf "$remove"; fi
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
    /// the signal it ends with (`KILL` for Redis, `INT` — a fast shutdown — for PostgreSQL).
    pub fn spawn(command: &Command, stop: &str) -> std::io::Result<Self> {
        let mut watchdog = Command::new("sh");
        watchdog
            .arg("-c")
            .arg(WATCHDOG)
            .arg("testkit-watchdog")
            .arg(command.get_program())
            .args(command.get_args())
            .env("TESTKIT_STOP", stop)
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

    /// Has the watchdog remove `dir` once the server has stopped: for the process-wide servers,
    /// which are never dropped. Called only once the server is known to be ours, so a start
    /// that lost its port to a stranger leaves the directory for the next try.
    pub fn remove_at_exit(&mut self, dir: &Path) {
        if let Some(lifeline) = &mut self.lifeline {
            let line = format!("{}\n", dir.display());
            let _ = lifeline.write_all(line.as_bytes());
            let _ = lifeline.flush();
        }
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
