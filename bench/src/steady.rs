//! The `steady` scenario: an open-loop constant arrival rate for a while, with a mix of
//! purchases, replays (a purchase retried with its order token), order reads and invalid
//! requests. Latency counts from when each request was due, so a stall is charged in full.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::args::{EngineArgs, OutputArgs, TargetArgs};
use crate::engine::{Kind, Outcome, Pace, Prepared};
use crate::play::play;
use crate::report::Report;
use crate::requests::{self, Users};
use crate::verify::{self, Check, Snapshot, VerifyArgs};
use crate::wire::Connection;

/// What a steady run is told.
#[derive(Debug, Clone, clap::Args)]
pub struct SteadyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Requests per second, sent on schedule whether or not earlier answers came back.
    #[arg(long, default_value_t = 1_000.0)]
    pub rate: f64,
    /// How long requests keep coming.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Weights of the four kinds of request.
    #[arg(long, default_value = "purchase=70,replay=10,read=15,invalid=5", value_parser = Mix::parse)]
    pub mix: Mix,
    /// Distinct buyers; purchases cycle through them, so the campaign's stock and per-user limit
    /// must allow every purchase (`bench-open` in bench/bench.toml does).
    #[arg(long, default_value_t = 10_000)]
    pub users: u32,
    /// Orders placed before the clock starts, for replays to repeat and reads to fetch.
    #[arg(long, default_value_t = 500)]
    pub warm_orders: u32,
    /// User ids are this prefix plus a number.
    #[arg(long, default_value = "steady-user-")]
    pub user_prefix: String,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

/// Weights of purchases, replays, reads and invalid requests.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    weights: [u32; 4],
}

const KINDS: [Kind; 4] = [Kind::Purchase, Kind::Replay, Kind::Read, Kind::Invalid];

impl Mix {
    /// Parses `purchase=70,replay=10,read=15,invalid=5`; a kind left out weighs 0.
    ///
    /// # Errors
    /// An unknown kind, a weight that is not a number, or all weights 0.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut weights = [0u32; 4];
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected kind=weight"))?;
            let slot = KINDS
                .iter()
                .position(|k| k.name() == name.trim())
                .ok_or_else(|| format!("`{name}`: kinds are purchase, replay, read and invalid"))?;
            weights[slot] = weight
                .trim()
                .parse()
                .map_err(|_| format!("`{weight}`: not a whole number"))?;
        }
        if weights.iter().all(|&w| w == 0) {
            return Err("every weight is 0".into());
        }
        Ok(Self { weights })
    }

    /// The kind of request `i`: a fixed, evenly spread pattern, the same on every run.
    fn kind(&self, i: usize) -> Kind {
        const WHEEL: u64 = 1_000;
        // 389 is prime, so consecutive requests visit every slot of the wheel once per turn.
        let slot = (i as u64 * 389) % WHEEL;
        let total: u64 = self.weights.iter().map(|&w| u64::from(w)).sum();
        let mut upto = 0;
        for (kind, &w) in KINDS.iter().zip(&self.weights) {
            upto += u64::from(w);
            if slot * total < upto * WHEEL {
                return *kind;
            }
        }
        Kind::Purchase
    }
}

/// What a request must be answered with.
#[derive(Debug, Clone)]
enum Expect {
    Accepted,
    Order(String),
    Status(u16),
}

/// An order placed before the clock: the request that placed it and who owns it.
struct WarmOrder {
    bearer: String,
    purchase: bytes::Bytes,
    order_id: String,
}

/// Runs the scenario; `Ok(false)` when a check failed.
///
/// # Errors
/// Bad config, unreachable gateway, warm-up refused, unwritable output.
pub fn run(args: &SteadyArgs) -> anyhow::Result<bool> {
    let target = args.target.resolve()?;
    let campaign = &target.campaign;
    anyhow::ensure!(args.rate > 0.0, "--rate must be above 0");
    let users = Users::new(target.config.auth.jwt_secret.expose(), &args.user_prefix);
    let before = args.verify.baseline(&target)?;
    let warm = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(warm_up(target.addr, &users, &campaign.id, args))?;

    let total = (args.rate * args.duration.as_secs_f64()).ceil() as usize;
    let (requests, expected) = prepare(&users, &campaign.id, &warm, args, total);
    eprintln!(
        "steady: {:.0} requests/s for {:?} on {} over {} connections, {} orders placed before",
        args.rate,
        args.duration,
        campaign.id,
        args.engine.connections,
        warm.len()
    );
    let (outcomes, duration) = play(
        target.addr,
        &args.engine,
        requests,
        total,
        Pace::Rate(args.rate),
        None,
    )?;
    let report = Report::new(&outcomes, duration);
    report.print();

    let answers = answer_checks(&outcomes, &expected);
    // Without --verify the answers are still checked; with it, Redis and the store too.
    let verification = if let Some(before) = before {
        // The orders placed before the clock are accepted orders the client saw, too.
        let seen: Vec<Outcome> = warm
            .iter()
            .map(|w| Outcome {
                kind: Kind::Purchase,
                index: usize::MAX,
                status: 202,
                code: None,
                order_id: Some(w.order_id.clone()),
                latency: Duration::ZERO,
                done_at: Duration::ZERO,
            })
            .chain(outcomes.iter().cloned())
            .collect();
        let snapshot =
            Snapshot::take(&target.config, campaign, args.verify.drain_patience, before)?;
        let mut v = verify::verify(&snapshot, campaign, &seen);
        v.checks.extend(answers);
        v
    } else {
        verify::Verification {
            checks: answers,
            committed_unseen: 0,
        }
    };
    verification.print();
    let passed = verification.passed();
    let extra = json!({
        "scenario": {
            "name": "steady", "campaign": campaign.id, "rate": args.rate,
            "duration_s": args.duration.as_secs_f64(), "mix": mix_json(&args.mix),
            "users": args.users, "warm_orders": warm.len(),
            "connections": args.engine.connections, "threads": args.engine.threads,
        },
        "verification": verification.to_json(),
    });
    let title = format!("steady: {:.0} requests/s on {}", args.rate, campaign.id);
    args.output.write(&report, extra, &title)?;
    Ok(passed)
}

fn mix_json(mix: &Mix) -> Value {
    KINDS
        .iter()
        .zip(mix.weights)
        .map(|(k, w)| (k.name().to_owned(), json!(w)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Places `warm_orders` orders with order tokens, one after another, before the clock starts.
async fn warm_up(
    addr: SocketAddr,
    users: &Users,
    campaign: &str,
    args: &SteadyArgs,
) -> anyhow::Result<Vec<WarmOrder>> {
    let mut conn = Connection::open(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let mut warm = Vec::with_capacity(args.warm_orders as usize);
    for n in 0..u64::from(args.warm_orders) {
        // Owners of warm orders are not among the buyers, so their orders stay as placed.
        let bearer = users.bearer(u64::from(args.users) + n);
        let issued = json_of(&mut conn, &requests::order_token(&bearer, campaign), 201).await?;
        let token = issued["token"].as_str().context("order token answer")?;
        let purchase = requests::purchase(&bearer, campaign, Some(token));
        let placed = json_of(&mut conn, &purchase, 202).await?;
        let order_id = placed["order_id"]
            .as_str()
            .context("purchase answer")?
            .to_owned();
        warm.push(WarmOrder {
            bearer,
            purchase,
            order_id,
        });
    }
    Ok(warm)
}

async fn json_of(conn: &mut Connection, request: &[u8], status: u16) -> anyhow::Result<Value> {
    let answer = conn.exchange(request).await?;
    anyhow::ensure!(
        answer.status == status,
        "warm-up: expected {status}, got {}: {}",
        answer.status,
        String::from_utf8_lossy(answer.body)
    );
    Ok(serde_json::from_slice(answer.body)?)
}

/// The run's requests in send order, and what each must be answered with.
fn prepare(
    users: &Users,
    campaign: &str,
    warm: &[WarmOrder],
    args: &SteadyArgs,
    total: usize,
) -> (Vec<Prepared>, Vec<Expect>) {
    let buyers = args.users.max(1) as usize;
    let purchases: Vec<bytes::Bytes> = (0..buyers as u64)
        .map(|n| requests::purchase(&users.bearer(n), campaign, None))
        .collect();
    let invalid = requests::invalid(&users.bearer(0), campaign);
    let reads: Vec<bytes::Bytes> = warm
        .iter()
        .map(|w| requests::read(&w.bearer, &w.order_id))
        .collect();
    let (mut prepared, mut expected) = (Vec::with_capacity(total), Vec::with_capacity(total));
    let mut counts = [0usize; 4];
    for i in 0..total {
        let mut kind = args.mix.kind(i);
        if warm.is_empty() && matches!(kind, Kind::Replay | Kind::Read) {
            kind = Kind::Purchase;
        }
        let slot = KINDS.iter().position(|k| *k == kind).unwrap_or(0);
        let n = counts[slot];
        counts[slot] += 1;
        let (bytes, expect) = match kind {
            Kind::Replay => {
                let w = &warm[n % warm.len()];
                (w.purchase.clone(), Expect::Order(w.order_id.clone()))
            }
            Kind::Read => (reads[n % reads.len()].clone(), Expect::Status(200)),
            Kind::Invalid => {
                let (bytes, status) = &invalid[n % invalid.len()];
                (bytes.clone(), Expect::Status(*status))
            }
            _ => (purchases[n % buyers].clone(), Expect::Accepted),
        };
        prepared.push(Prepared { kind, bytes });
        expected.push(expect);
    }
    (prepared, expected)
}

/// Did every request get the answer it must? Purchases may also be shed (429, 503 with
/// Retry-After) under overload: that is counted in the report, not failed here.
fn answer_checks(outcomes: &[Outcome], expected: &[Expect]) -> Vec<Check> {
    let mut wrong = [0usize; 4];
    let mut asked = [0usize; 4];
    for o in outcomes {
        let slot = KINDS.iter().position(|k| *k == o.kind).unwrap_or(0);
        asked[slot] += 1;
        let shed = matches!(o.status, 429 | 503);
        let right = match expected.get(o.index) {
            Some(Expect::Accepted) => o.status == 202 || shed,
            Some(Expect::Order(id)) => {
                (o.status == 200 && o.order_id.as_deref() == Some(id.as_str())) || shed
            }
            Some(Expect::Status(status)) => o.status == *status || (shed && *status == 200),
            None => false,
        };
        wrong[slot] += usize::from(!right);
    }
    let names = [
        "purchases accepted",
        "replays got their original order",
        "reads answered",
        "invalid requests refused right",
    ];
    KINDS
        .iter()
        .enumerate()
        .filter(|(slot, _)| asked[*slot] > 0)
        .map(|(slot, _)| {
            Check::new(
                names[slot],
                wrong[slot] == 0,
                format!("{} of {} answered otherwise", wrong[slot], asked[slot]),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_spread_by_weight() {
        let mix = Mix::parse("purchase=70,replay=10,read=15,invalid=5").unwrap_or_else(|e| {
            unreachable!("{e}");
        });
        let mut counts = std::collections::HashMap::new();
        for i in 0..1_000 {
            *counts.entry(mix.kind(i)).or_insert(0) += 1;
        }
        assert_eq!(counts[&Kind::Purchase], 700);
        assert_eq!(counts[&Kind::Replay], 100);
        assert_eq!(counts[&Kind::Read], 150);
        assert_eq!(counts[&Kind::Invalid], 50);
        // Spread, not in blocks: the first 20 requests already hold more than one kind.
        let first: std::collections::HashSet<_> = (0..20).map(|i| mix.kind(i)).collect();
        assert!(first.len() > 1);
    }

    #[test]
    fn bad_mixes_are_refused() {
        assert!(Mix::parse("purchase=1,refund=2").is_err());
        assert!(Mix::parse("purchase=x").is_err());
        assert!(Mix::parse("purchase=0").is_err());
        assert!(Mix::parse("read").is_err());
        assert!(Mix::parse("read=3").is_ok());
    }
}
