//! The Redis password never leaves the process: whichever way Redis fails at start
//! (unreachable, wrong password, no answer) and whichever way the password is given (in
//! `redis.url`, `FLASHGATE_REDIS_PASSWORD`, `redis.password_file`), the real binary refuses to
//! start naming Redis' host:port, and no piece of the password is in its output, JSON logs at
//! debug level included. A password given apart from the URL is the one the gateway logs in with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use flashgate_tests::free_port;
use flashgate_tests::gateway::{Process, run_to_exit};
use flashgate_tests::redis_server::RedisServer;
use flashgate_tests::scenario::{CampaignSpec, Scenario};
use flashgate_tests::store_home::{Backend, StoreHome, stored};
use http::StatusCode;
use serde_json::json;

/// The password the gateway is given. Upper case and letters past `f`, so no hex id, hash or
/// timestamp in a log can contain a piece of it by chance.
const SECRET: &str = "Xq7Kv93zLwT4pN8jRm2Y";
/// The password a test Redis really wants: never given to the gateway.
const RIGHT: &str = "Hk4Wz8QpTs6VnJ3xLc9R";
/// Any run of this many bytes of the secret counts as a leak.
const PIECE: usize = 6;

/// How the password reaches the gateway.
#[derive(Debug, Clone, Copy)]
enum Given {
    InUrl,
    Env,
    File,
}

const EVERY_WAY: [Given; 3] = [Given::InUrl, Given::Env, Given::File];

/// A scenario against `addr` with `password` given `how`, and the environment it needs.
fn configured(
    home: &StoreHome,
    addr: &str,
    password: &str,
    how: Given,
) -> (Scenario, Vec<(&'static str, String)>) {
    let mut scenario = home.scenario(vec![CampaignSpec::open("redis-secret", 10, 1)]);
    let mut env = vec![
        ("FLASHGATE_LOG_FORMAT", "json".to_owned()),
        ("RUST_LOG", "debug".to_owned()),
    ];
    match how {
        Given::InUrl => scenario.redis_url = format!("redis://:{password}@{addr}"),
        Given::Env => {
            scenario.redis_url = format!("redis://{addr}");
            env.push(("FLASHGATE_REDIS_PASSWORD", password.to_owned()));
        }
        Given::File => {
            let file = home.path().join("redis-password");
            std::fs::write(&file, format!("{password}\n")).unwrap();
            scenario.redis_url = format!("redis://{addr}");
            scenario.redis_extra = format!("password_file = \"{}\"", file.display());
        }
    }
    (scenario, env)
}

/// The first run of [`PIECE`] bytes of `secret` found in `output`, if any.
fn leaked<'a>(output: &[u8], secret: &'a str) -> Option<&'a str> {
    (0..=secret.len() - PIECE)
        .map(|i| &secret[i..i + PIECE])
        .find(|piece| output.windows(PIECE).any(|w| w == piece.as_bytes()))
}

/// Starts the binary against `addr`, which fails in its own way, once per way of giving the
/// password; each run must refuse to start, name `addr`, and leak nothing.
fn refused_without_leaking(addr: &str, failure: &str) {
    for how in EVERY_WAY {
        let home = StoreHome::new(Backend::Sqlite);
        let (scenario, env) = configured(&home, addr, SECRET, how);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let exited = run_to_exit(&scenario, home.path(), &env, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&exited.stderr);
        assert!(
            !exited.status.success(),
            "{failure}, {how:?}: started: {stderr}"
        );
        for (name, output) in [("stderr", &exited.stderr), ("stdout", &exited.stdout)] {
            if let Some(piece) = leaked(output, SECRET) {
                panic!("{failure}, {how:?}: {piece:?} of the password is in {name}:\n{stderr}");
            }
        }
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.contains("flashgate:") && last.contains(&format!("redis at {addr}")),
            "{failure}, {how:?}: the refusal does not name redis at {addr}: {stderr}"
        );
    }
}

#[test]
fn unreachable_redis_refuses_start_without_printing_the_password() {
    let addr = format!("127.0.0.1:{}", free_port());
    refused_without_leaking(&addr, "nothing listening");
}

#[test]
fn wrong_password_refuses_start_without_printing_it() {
    let redis = RedisServer::start_with(&["--requirepass", RIGHT]);
    refused_without_leaking(&redis.addr(), "wrong password");
}

/// A peer that accepts connections and never says a word, until dropped.
struct Silent {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl Silent {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        Self { addr, stop }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn silent_redis_refuses_start_without_printing_the_password() {
    let silent = Silent::start();
    refused_without_leaking(&silent.addr, "no answer");
}

/// A password from the environment or a file is the one the gateway logs in with: it sells,
/// its orders reach the store (the persistence threads log in too), and it logs in again after
/// Redis restarts; its logs, reconnection failures included, stay clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_given_apart_from_the_url_is_used_and_never_logged() {
    let mut redis = RedisServer::start_with(&["--requirepass", SECRET]);
    for how in [Given::Env, Given::File] {
        let home = StoreHome::new(Backend::Sqlite);
        let (scenario, env) = configured(&home, &redis.addr(), SECRET, how);
        let id = scenario.campaigns[0].id.clone();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut gateway = Process::start_with_env(&scenario, home.path(), &env);
        let client = gateway.client();
        let ready = client.get("/readyz", None).await;
        assert_eq!(ready.status, StatusCode::OK, "{how:?}: {:?}", ready.body);
        let bought = client
            .purchase("secret-buyer", json!({ "campaign_id": id }))
            .await
            .unwrap();
        assert_eq!(
            bought.status,
            StatusCode::ACCEPTED,
            "{how:?}: {:?}",
            bought.body
        );
        flashgate_tests::eventually(Duration::from_secs(10), "the order is stored", || {
            let scenario = scenario.clone();
            let id = id.clone();
            async move { stored(&scenario, &id).len() == 1 }
        })
        .await;

        // Every background task fails to reach Redis for a while, then logs in again.
        redis.stop();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let down = client.get("/readyz", None).await;
        assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE, "{how:?}");
        redis.restart();
        flashgate_tests::eventually(Duration::from_secs(10), "ready again", || {
            let client = client.clone();
            async move { client.get("/readyz", None).await.status == StatusCode::OK }
        })
        .await;
        assert!(gateway.terminate().success());
        let logs = std::fs::read(home.path().join("gateway.log")).unwrap();
        let text = String::from_utf8_lossy(&logs);
        assert!(
            text.contains("expiry sweep failed"),
            "{how:?}: the outage left no log line to check"
        );
        if let Some(piece) = leaked(&logs, SECRET) {
            panic!("{how:?}: {piece:?} of the password is in the logs");
        }
        assert_logged_in_path_is_clean(home.path());
    }
}

/// The config written for the gateway names a file or nothing: never the password itself.
fn assert_logged_in_path_is_clean(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read(&path).unwrap();
            assert!(leaked(&text, SECRET).is_none(), "{}", path.display());
        }
    }
}
