//! A private PostgreSQL server, and databases of their own for tests.
//!
//! [`Postgres::start`] runs `initdb` into a temp dir (trust auth, user `postgres`, no fsync)
//! and a `postgres` on a free loopback port with its socket in that dir: nothing on the machine
//! needs setting up but the package (`apt-get install postgresql`; the binaries are looked for
//! on the PATH, then under `/usr/lib/postgresql/<version>/bin`). As root, which PostgreSQL
//! refuses to run as, both run as user `postgres` (`setpriv`). A port someone else took first
//! makes the server exit; the start is tried again on another.
//!
//! [`Database::create`] makes a database of its own for one test on the server tests share
//! ([`crate::postgres_url`]); it is dropped, connections and all, with the value.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::guarded::Guarded;

/// How many ports a start tries before it gives up.
const PORT_TRIES: usize = 5;

/// A private PostgreSQL server, stopped (fast shutdown) on drop.
#[derive(Debug)]
pub struct Postgres {
    url: String,
    _server: Guarded,
    /// Removed on drop; the process-wide server's, never dropped, by its watchdog.
    _dir: TempDir,
}

impl Postgres {
    /// `initdb` into a new temp dir and a server on a free port.
    pub fn start() -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), false)
    }

    /// Starts one in `dir`; `shared`: the process-wide one, whose directory the watchdog
    /// removes at exit (a static is never dropped).
    pub(crate) fn start_in(dir: TempDir, shared: bool) -> Self {
        let as_postgres = running_as_root();
        if as_postgres {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(owned, "chown postgres {}", dir.path().display());
        }
        let data = dir.path().join("data");
        let mut initdb = command(as_postgres, "initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let done = initdb
            .status()
            .expect("initdb (apt-get install postgresql)");
        assert!(done.success(), "initdb -D {} failed", data.display());
        for _ in 0..PORT_TRIES {
            let port = crate::free_port();
            let mut postgres = command(as_postgres, "postgres");
            postgres
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-k"])
                .arg(dir.path())
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "max_connections=300",
                ])
                .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
                .args(["-c", "full_page_writes=off"]);
            let mut server =
                Guarded::spawn(&postgres, "INT").expect("postgres (apt-get install postgresql)");
            let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
            if serves(&url, &data, &server) {
                if shared {
                    server.remove_at_exit(dir.path());
                }
                return Self {
                    url,
                    _server: server,
                    _dir: dir,
                };
            }
        }
        panic!("postgres did not start on any of {PORT_TRIES} free ports");
    }

    /// The URL that logs in as `postgres` to its `postgres` database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Waits until the server at `url` is the one on `data` (not a stranger that took the port):
/// `false` if `server` exited first.
fn serves(url: &str, data: &Path, server: &Guarded) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    let wanted = data.to_string_lossy().into_owned();
    loop {
        let serving = blocking(|| {
            let mut client = postgres::Client::connect(url, postgres::NoTls).ok()?;
            let row = client.query_one("SHOW data_directory", &[]).ok()?;
            row.try_get::<_, String>(0).ok()
        });
        if serving.as_deref() == Some(wanted.as_str()) {
            return true;
        }
        if !server.is_running() {
            return false;
        }
        assert!(Instant::now() < deadline, "postgres did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` of the PostgreSQL binaries, run as user `postgres` when `as_postgres`.
fn command(as_postgres: bool, program: &str) -> Command {
    let program = pg_binary(program);
    if as_postgres {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid",
                "postgres",
                "--regid",
                "postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// `name` on the PATH, else in the newest `/usr/lib/postgresql/<version>/bin` (where Debian
/// and Ubuntu put `initdb` and `postgres`, off the PATH).
fn pg_binary(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()));
    if on_path {
        return PathBuf::from(name);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let binary = entry.path().join("bin").join(name);
            binary.is_file().then_some((version, binary))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map_or_else(|| PathBuf::from(name), |(_, binary)| binary)
}

/// A database of its own for one test on the shared server; dropped (connections and all)
/// with it.
#[derive(Debug)]
pub struct Database {
    pub name: String,
    /// Logs in as the admin (`postgres`) to this database.
    pub url: String,
}

impl Database {
    /// A new, empty database named `<prefix>_<pid>_<n>`: unique on a server other test
    /// processes share.
    pub fn create(prefix: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        // One statement per call: neither may run inside a transaction block.
        admin_execute(&[
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ]);
        let url = url_of(&name);
        Self { name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        admin_try_execute(&[format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )]);
    }
}

/// The URL of database `name` on the shared server, logging in as its admin.
fn url_of(name: &str) -> String {
    let admin = crate::postgres_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

/// Runs each of `statements` as the admin of the shared server, each on its own (`CREATE
/// DATABASE` and the like may not share a transaction block).
pub fn admin_execute(statements: &[String]) {
    blocking(|| {
        let mut admin = postgres::Client::connect(&crate::postgres_url(), postgres::NoTls)
            .expect("the test PostgreSQL (FLASHGATE_TEST_PG, or a private one)");
        for sql in statements {
            admin.batch_execute(sql).unwrap();
        }
    });
}

/// Like [`admin_execute`], for a clean-up: whatever fails is let be.
pub fn admin_try_execute(statements: &[String]) {
    blocking(|| {
        if let Ok(mut admin) = postgres::Client::connect(&crate::postgres_url(), postgres::NoTls) {
            for sql in statements {
                let _ = admin.batch_execute(sql);
            }
        }
    });
}

/// Runs blocking PostgreSQL client work on a thread of its own: its client runs a runtime of
/// its own, which tokio forbids on a thread that drives async tasks (as a test's does).
pub fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}
