//! `compare`: the same load against the gateway and against both yardsticks (the bare hello
//! server and the naive gateway, ARCHITECTURE.md §10), in one invocation, round after round,
//! with what each server spent per request read from outside it. Every gateway figure we
//! publish is such a ratio.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use bytes::{BufMut as _, BytesMut};
use flashgate::config::{Config, RedisConfig, RedisTarget};
use serde_json::{Value, json};

use crate::args::{EngineArgs, TargetArgs};
use crate::cpu;
use crate::engine::{Kind, Pace, Prepared};
use crate::play::play;
use crate::processes::{self, Server};
use crate::report::Report;
use crate::requests::{self, Users};

/// What a comparison is told.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// How long each side is loaded, closed loop (like `wrk -d`).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// A hello reference server already running; without it, one is started for the
    /// comparison.
    #[arg(long)]
    pub reference: Option<SocketAddr>,
    /// The Redis the naive gateway runs its script on (default: the gateway's own, when it is
    /// one Redis without a password). It writes only `naive:{reference}:*` keys.
    #[arg(long)]
    pub naive_redis: Option<String>,
    /// Leave the naive gateway out.
    #[arg(long)]
    pub no_naive: bool,
    /// Distinct buyers of the naive gateway per round: each buys once, so every request does
    /// the whole reservation (more than a round sends, or repeats answer 409).
    #[arg(long, default_value_t = 1_500_000)]
    pub naive_users: u32,
    /// Alternating rounds (gateway, hello, naive); single runs on a shared VM swing by 10-15%.
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// Distinct buyers the purchases cycle through.
    #[arg(long, default_value_t = 20_000)]
    pub users: u32,
    /// User ids are this prefix plus a number.
    #[arg(long, default_value = "compare-user-")]
    pub user_prefix: String,
    /// Write every figure as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Which server a [`Subject`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Gateway,
    Hello,
    Naive,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Hello => "hello",
            Self::Naive => "naive",
        }
    }

    /// The answer status of a reservation (hello reserves nothing).
    fn reserved(self) -> Option<u16> {
        match self {
            Self::Gateway => Some(202),
            Self::Hello => None,
            Self::Naive => Some(201),
        }
    }
}

/// A server under comparison and how to watch what it spends.
struct Subject {
    kind: Role,
    addr: SocketAddr,
    /// Its process, for its CPU time.
    pid: Option<u32>,
    /// Whether it reserves in the Redis watched (its time there is charged to it).
    uses_redis: bool,
}

/// One side of one round.
struct Side {
    rate: f64,
    p50: f64,
    p99: f64,
    requests: u64,
    reservations: u64,
    statuses: String,
    /// CPU µs per request of the server process.
    server_us: Option<f64>,
    /// CPU µs per request of the Redis process.
    redis_us: Option<f64>,
    /// CPU µs per request of this load generator: with the others, what a request costs the
    /// machine.
    client_us: Option<f64>,
    /// Redis's script time (`INFO commandstats`) µs per reservation.
    redis_script_us: Option<f64>,
    /// CPU µs per request of the server's threads, by thread name.
    threads: BTreeMap<String, f64>,
}

impl Side {
    fn to_json(&self) -> Value {
        json!({
            "requests_per_s": self.rate, "p50_ms": self.p50, "p99_ms": self.p99,
            "requests": self.requests, "reservations": self.reservations,
            "answers": self.statuses,
            "server_cpu_us_per_request": self.server_us,
            "redis_cpu_us_per_request": self.redis_us,
            "client_cpu_us_per_request": self.client_us,
            "redis_script_us_per_reservation": self.redis_script_us,
            "server_cpu_us_per_request_by_thread": self.threads,
        })
    }
}

/// The Redis both the gateway and the naive gateway reserve in, watched from outside.
struct WatchedRedis {
    connection: redis::Connection,
    pid: Option<u32>,
}

impl WatchedRedis {
    fn info(&mut self, section: &str) -> String {
        redis::cmd("INFO")
            .arg(section)
            .query(&mut self.connection)
            .unwrap_or_default()
    }

    /// (process CPU time, script µs) now.
    fn spent(&mut self) -> (Option<Duration>, u64) {
        let usec = cpu::script_usec(&self.info("commandstats"));
        (self.pid.and_then(cpu::process_time), usec)
    }
}

/// The gateway's Redis when it is one Redis (a Cluster's CPU is read by `rehearse
/// --redis-stats`, master by master).
fn single_redis(config: &Config) -> Option<RedisTarget> {
    match &config.redis {
        RedisConfig::Url { target, .. } => Some(target.clone()),
        RedisConfig::Embedded { port, .. } => Some(RedisTarget::local(*port)),
        RedisConfig::Cluster { .. } => None,
    }
}

/// `POST /buy/<user>` for `count` distinct users of `round`, in one buffer.
fn naive_requests(round: u32, count: u32) -> Vec<Prepared> {
    const HEAD: &[u8] = b" HTTP/1.1\r\nhost: flashgate\r\ncontent-length: 0\r\n\r\n";
    let mut buffer = BytesMut::with_capacity(count as usize * (HEAD.len() + 32));
    (0..count)
        .map(|n| {
            buffer.put_slice(format!("POST /buy/r{round}-u{n}").as_bytes());
            buffer.put_slice(HEAD);
            Prepared {
                kind: Kind::Purchase,
                bytes: buffer.split().freeze(),
            }
        })
        .collect()
}

/// Runs the comparison and prints it.
///
/// # Errors
/// Bad config, an unreachable gateway, a reference server that would not start.
pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let target = args.target.resolve()?;
    let users = Users::new(target.config.auth.jwt_secret.expose(), &args.user_prefix);
    let purchases: Vec<Prepared> = (0..u64::from(args.users.max(1)))
        .map(|n| Prepared {
            kind: Kind::Purchase,
            bytes: requests::purchase(&users.bearer(n), &target.campaign.id, None),
        })
        .collect();
    let redis_target = single_redis(&target.config);
    let mut watched = match &redis_target {
        Some(t) => {
            let mut connection = redis::Client::open(t.connection_info())?
                .get_connection()
                .with_context(|| format!("connecting to the gateway's Redis at {t}"))?;
            let server: String = redis::cmd("INFO").arg("server").query(&mut connection)?;
            Some(WatchedRedis {
                pid: cpu::redis_pid(&server),
                connection,
            })
        }
        None => None,
    };

    // The yardsticks run on as many threads as the gateway: the same server stack.
    let workers = target.config.server.workers;
    let mut started: Vec<Server> = Vec::new();
    let hello = match args.reference {
        Some(addr) => addr,
        None => {
            let (server, addr) = processes::reference_server(None, workers)?;
            started.push(server);
            addr
        }
    };
    let own_redis_url = redis_target.as_ref().map(|t| format!("redis://{t}"));
    let naive_url = args.naive_redis.clone().or_else(|| own_redis_url.clone());
    let naive = match (&naive_url, args.no_naive) {
        (Some(url), false) => {
            let (server, addr) = processes::reference_server(Some(url), workers)?;
            started.push(server);
            Some(addr)
        }
        _ => {
            eprintln!("compare: no naive gateway (--no-naive, or a Cluster without --naive-redis)");
            None
        }
    };
    let mut subjects = vec![
        Subject {
            kind: Role::Gateway,
            addr: target.addr,
            pid: cpu::listening_pid(target.addr),
            uses_redis: true,
        },
        Subject {
            kind: Role::Hello,
            addr: hello,
            pid: cpu::listening_pid(hello),
            uses_redis: false,
        },
    ];
    if let Some(addr) = naive {
        subjects.push(Subject {
            kind: Role::Naive,
            addr,
            pid: cpu::listening_pid(addr),
            uses_redis: naive_url == own_redis_url,
        });
    }

    let mut load = |subject: &Subject, requests: Vec<Prepared>| -> anyhow::Result<Side> {
        let server_before = subject.pid.and_then(cpu::process_time);
        let client_before = cpu::process_time(std::process::id());
        let threads_before = subject.pid.map(cpu::thread_times).unwrap_or_default();
        let redis_before = watched.as_mut().map(WatchedRedis::spent);
        let (outcomes, duration) = play(
            subject.addr,
            &args.engine,
            requests,
            usize::MAX,
            Pace::Closed,
            Some(args.duration),
        )
        .with_context(|| format!("loading the {}", subject.kind.name()))?;
        let client_after = cpu::process_time(std::process::id());
        let report = Report::new(&outcomes, duration);
        let requests = report.requests.max(1);
        let per = |d: Duration, n: u64| d.as_secs_f64() * 1e6 / n as f64;
        let server_us = subject
            .pid
            .and_then(cpu::process_time)
            .zip(server_before)
            .map(|(after, before)| per(after.saturating_sub(before), requests));
        let client_us = client_after
            .zip(client_before)
            .map(|(after, before)| per(after.saturating_sub(before), requests));
        let threads = subject
            .pid
            .map(cpu::thread_times)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, after)| {
                let before = threads_before.get(&name).copied().unwrap_or_default();
                (name, per(after.saturating_sub(before), requests))
            })
            .filter(|(_, us)| *us > 0.0)
            .collect();
        let reservations = subject
            .kind
            .reserved()
            .and_then(|status| report.by_status.get(&status).copied())
            .unwrap_or(0);
        let (mut redis_us, mut redis_script_us) = (None, None);
        if let (true, Some(redis), Some((cpu_before, usec_before))) =
            (subject.uses_redis, watched.as_mut(), redis_before)
        {
            let (cpu_after, usec_after) = redis.spent();
            redis_us = cpu_after
                .zip(cpu_before)
                .map(|(a, b)| per(a.saturating_sub(b), requests));
            redis_script_us = (reservations > 0)
                .then(|| usec_after.saturating_sub(usec_before) as f64 / reservations as f64);
        }
        Ok(Side {
            rate: report.requests as f64 / report.duration.as_secs_f64().max(1e-6),
            p50: report.percentiles_ms[0],
            p99: report.percentiles_ms[2],
            requests: report.requests,
            reservations,
            statuses: report
                .by_status
                .iter()
                .map(|(s, n)| format!("{s}:{n}"))
                .collect::<Vec<_>>()
                .join(" "),
            server_us,
            redis_us,
            client_us,
            redis_script_us,
            threads,
        })
    };

    eprintln!(
        "compare: purchases on {} over {} connections, {} thread(s), {:?} per side",
        target.campaign.id, args.engine.connections, args.engine.threads, args.duration
    );
    println!(
        "| round | server | req/s | p50 ms | p99 ms | server CPU µs/req | Redis CPU µs/req | Redis script µs/reservation | load generator CPU µs/req | answers |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let show = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    let mut rounds: Vec<Vec<Side>> = Vec::new();
    for round in 1..=args.rounds.max(1) {
        let mut sides = Vec::new();
        for subject in &subjects {
            let requests = if subject.kind == Role::Naive {
                naive_requests(round, args.naive_users.max(1))
            } else {
                purchases.clone()
            };
            let side = load(subject, requests)?;
            println!(
                "| {round} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
                subject.kind.name(),
                side.rate,
                side.p50,
                side.p99,
                show(side.server_us),
                show(side.redis_us),
                show(side.redis_script_us),
                show(side.client_us),
                side.statuses
            );
            if subject.kind == Role::Gateway && !side.threads.is_empty() {
                let by_thread: Vec<String> = side
                    .threads
                    .iter()
                    .map(|(name, us)| format!("{name} {us:.1}"))
                    .collect();
                eprintln!("gateway CPU µs/req by thread: {}", by_thread.join(", "));
            }
            sides.push(side);
        }
        rounds.push(sides);
    }
    let median = |mut values: Vec<f64>| -> f64 {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let ratio_to = |i: usize| -> Option<f64> {
        (i < subjects.len()).then(|| {
            median(
                rounds
                    .iter()
                    .map(|s| s[0].rate / s[i].rate.max(1e-9))
                    .collect(),
            )
        })
    };
    let (vs_hello, vs_naive) = (ratio_to(1), ratio_to(2));
    let times = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}×"));
    println!(
        "ratio gateway/hello: {} · gateway/naive: {} (medians of {} round(s))",
        times(vs_hello),
        times(vs_naive),
        rounds.len()
    );
    if let Some(path) = &args.json {
        let value = json!({
            "scenario": {
                "name": "compare", "campaign": target.campaign.id,
                "connections": args.engine.connections, "threads": args.engine.threads,
                "duration_s": args.duration.as_secs_f64(),
            },
            "rounds": rounds.iter().map(|sides| {
                let mut round = serde_json::Map::new();
                for (subject, side) in subjects.iter().zip(sides) {
                    round.insert(subject.kind.name().to_owned(), side.to_json());
                }
                // The gateway is "gateway"; "reference" and "ratio" keep older readers working.
                round.insert("reference".into(), sides[1].to_json());
                round.insert("ratio".into(), json!(sides[0].rate / sides[1].rate.max(1e-9)));
                if let Some(naive) = sides.get(2) {
                    round.insert("ratio_naive".into(), json!(sides[0].rate / naive.rate.max(1e-9)));
                }
                Value::Object(round)
            }).collect::<Vec<_>>(),
            "ratio": vs_hello,
            "ratio_naive": vs_naive,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&value)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
