//! The lifecycle mix, after a flash: a share of the buyers pay (signed provider callbacks), a
//! share cancel, and the rest let their orders expire. Its checks: every order settles, and
//! units sold + units returned == units reserved (and the flash checks' "stock conserved" then
//! says every returned unit is back on sale).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use flashgate::config::CampaignConfig;
use flashgate_stock::OrderStatus;
use serde_json::{Value, json};

use crate::args::{EngineArgs, Target};
use crate::engine::{Kind, Outcome, Pace, Prepared};
use crate::play::play;
use crate::report::Report;
use crate::requests::{self, Users};
use crate::verify::{Check, Snapshot, orders_in_redis, redis_connection};

/// How the accepted orders are settled; both shares 0 (the default) is a plain flash.
#[derive(Debug, Clone, clap::Args)]
pub struct LifecycleArgs {
    /// Share (0–1) of accepted orders whose buyers pay, through the signed payment callback
    /// (needs `auth.payment_secret`).
    #[arg(long, default_value_t = 0.0)]
    pub pay_share: f64,
    /// Share (0–1) whose buyers cancel. The rest let their orders expire, so with less than the
    /// whole in pay + cancel the campaign's `pay_timeout` must be short (at most 2 minutes).
    #[arg(long, default_value_t = 0.0)]
    pub cancel_share: f64,
    /// How long past the pay timeout to wait for the expiry sweepers.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub expiry_patience: Duration,
}

/// A checked [`LifecycleArgs`], with what it needs from the config.
#[derive(Debug)]
pub struct Plan {
    pay_share: f64,
    cancel_share: f64,
    patience: Duration,
    payment_secret: Vec<u8>,
}

/// The longest pay timeout a rehearsal waits out.
const MAX_WAIT: Duration = Duration::from_secs(120);

impl Plan {
    /// `None` when no lifecycle was asked for.
    ///
    /// # Errors
    /// Shares outside 0–1 or above 1 together; payments without a payment secret; expiries on
    /// a campaign whose pay timeout is too long to wait for.
    pub fn new(args: &LifecycleArgs, target: &Target) -> anyhow::Result<Option<Self>> {
        let (pay, cancel) = (args.pay_share, args.cancel_share);
        if pay == 0.0 && cancel == 0.0 {
            return Ok(None);
        }
        anyhow::ensure!(
            (0.0..=1.0).contains(&pay) && (0.0..=1.0).contains(&cancel) && pay + cancel <= 1.0,
            "--pay-share and --cancel-share are shares: each 0–1, together at most 1"
        );
        let payment_secret = match &target.config.auth.payment_secret {
            Some(s) => s.expose().as_bytes().to_vec(),
            None if pay == 0.0 => Vec::new(),
            None => anyhow::bail!("--pay-share needs auth.payment_secret in the gateway config"),
        };
        anyhow::ensure!(
            pay + cancel >= 1.0 || target.campaign.pay_timeout <= MAX_WAIT,
            "orders left to expire need a campaign whose pay_timeout is at most {MAX_WAIT:?} \
             ({} has {:?})",
            target.campaign.id,
            target.campaign.pay_timeout
        );
        Ok(Some(Self {
            pay_share: pay,
            cancel_share: cancel,
            patience: args.expiry_patience,
            payment_secret,
        }))
    }

    /// Settles the orders the flash accepted (`outcomes`), then waits for the rest to expire.
    /// `user_of` maps a request's index to the user who sent it.
    ///
    /// # Errors
    /// The gateway or Redis unreachable.
    pub fn run(
        &self,
        target: &Target,
        engine: &EngineArgs,
        users: &Users,
        outcomes: &[Outcome],
        user_of: impl Fn(usize) -> u64,
    ) -> anyhow::Result<Settled> {
        let Fates {
            prepared,
            paid,
            reserved,
        } = self.fates(&target.campaign, users, outcomes, user_of);
        let to_pay = paid.len() as u64;
        let to_cancel = prepared.len() as u64 - to_pay;
        eprintln!(
            "lifecycle: of {reserved} orders, {to_pay} pay, {to_cancel} cancel, {} expire",
            reserved - to_pay - to_cancel
        );
        let (answers, report) = if prepared.is_empty() {
            (Vec::new(), None)
        } else {
            let total = prepared.len();
            let (answers, duration) =
                play(target.addr, engine, prepared, total, Pace::Closed, None)?;
            let report = Report::new(&answers, duration);
            println!("-- payments and cancels");
            report.print();
            (answers, Some(report))
        };
        self.wait_for_expiries(target)?;
        Ok(Settled {
            reserved,
            to_pay,
            to_cancel,
            paid,
            answers,
            report,
        })
    }

    /// Decides each accepted order's fate: the payments and cancels to send, and which orders
    /// are paid for (the rest expire).
    fn fates(
        &self,
        campaign: &CampaignConfig,
        users: &Users,
        outcomes: &[Outcome],
        user_of: impl Fn(usize) -> u64,
    ) -> Fates {
        let mut prepared = Vec::new();
        let (mut paid, mut reserved) = (HashSet::new(), 0u64);
        for (k, o) in outcomes
            .iter()
            .filter(|o| o.kind == Kind::Purchase && o.status == 202)
            .enumerate()
        {
            let Some(order_id) = o.order_id.as_deref() else {
                continue;
            };
            reserved += 1;
            // Spread the three fates evenly over the order of acceptance.
            let slot = ((k * 37) % 100) as f64 / 100.0;
            if slot < self.pay_share {
                paid.insert(order_id.parse::<u64>().unwrap_or(0));
                prepared.push(Prepared {
                    kind: Kind::Pay,
                    bytes: requests::pay(
                        &self.payment_secret,
                        order_id,
                        &format!("bench-pay-{order_id}"),
                        u64::try_from(campaign.unit_price_cents).unwrap_or(0),
                    ),
                });
            } else if slot < self.pay_share + self.cancel_share {
                prepared.push(Prepared {
                    kind: Kind::Cancel,
                    bytes: requests::cancel(&users.bearer(user_of(o.index)), order_id),
                });
            }
        }
        Fates {
            prepared,
            paid,
            reserved,
        }
    }

    /// The rest expire: waits for the sweepers to have settled every order (at most the pay
    /// timeout, up to [`MAX_WAIT`], and the patience).
    ///
    /// # Errors
    /// Redis unreachable.
    fn wait_for_expiries(&self, target: &Target) -> anyhow::Result<()> {
        let campaign = &target.campaign;
        let started = Instant::now();
        let deadline = started + campaign.pay_timeout.min(MAX_WAIT) + self.patience;
        let mut conn = redis_connection(&target.config)?;
        let mut pending = usize::MAX;
        while Instant::now() < deadline {
            pending = orders_in_redis(&mut conn, &campaign.id)?
                .values()
                .filter(|o| o.status == OrderStatus::PendingPayment)
                .count();
            if pending == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!(
            "lifecycle: {pending} orders still pending after {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// What happens to the accepted orders: the requests that settle them, and who pays.
struct Fates {
    /// The payments and cancels, in the order of acceptance.
    prepared: Vec<Prepared>,
    /// Orders the client pays for.
    paid: HashSet<u64>,
    /// Units the client saw accepted (quantity 1 each).
    reserved: u64,
}

/// What the lifecycle phase did, to be checked against the final state.
#[derive(Debug)]
pub struct Settled {
    /// Units the client saw accepted (quantity 1 each).
    reserved: u64,
    to_pay: u64,
    to_cancel: u64,
    /// Orders the client paid for.
    paid: HashSet<u64>,
    answers: Vec<Outcome>,
    report: Option<Report>,
}

impl Settled {
    /// The lifecycle checks, on the state read after the journal drained.
    pub fn checks(&self, snapshot: &Snapshot) -> Vec<Check> {
        let units = |wanted: &[OrderStatus]| -> u64 {
            snapshot
                .in_redis
                .values()
                .filter(|o| wanted.contains(&o.status))
                .map(|o| u64::from(o.quantity))
                .sum()
        };
        let sold = units(&[OrderStatus::Paid]);
        let returned = units(&[
            OrderStatus::Cancelled,
            OrderStatus::Expired,
            OrderStatus::RefundRequired,
        ]);
        let pending = units(&[OrderStatus::PendingPayment]);
        let unasked = snapshot
            .in_redis
            .values()
            .filter(|o| o.status == OrderStatus::Paid && !self.paid.contains(&o.order_id))
            .count();
        let answered = |kind: Kind, ok: &dyn Fn(&Outcome) -> bool| {
            let all = self.answers.iter().filter(|o| o.kind == kind);
            let bad = all.clone().filter(|o| !ok(o)).count();
            (all.count(), bad)
        };
        let (pays, bad_pays) = answered(Kind::Pay, &|o| o.status == 200);
        // A cancel may lose the race to its deadline: 409 `not_cancellable`, still returned.
        let (cancels, bad_cancels) = answered(Kind::Cancel, &|o| {
            o.status == 200 || o.code.as_deref() == Some("not_cancellable")
        });
        vec![
            Check::new(
                "every order settled",
                pending == 0,
                format!("{pending} units still pending payment"),
            ),
            Check::new(
                "sold + returned == reserved",
                sold + returned == self.reserved,
                format!(
                    "{sold} sold + {returned} returned vs {} reserved",
                    self.reserved
                ),
            ),
            Check::new(
                "only paid-for orders are paid",
                unasked == 0,
                format!("{unasked} orders paid that the client never paid"),
            ),
            Check::new(
                "payments and cancels answered",
                bad_pays == 0 && bad_cancels == 0 && pays as u64 == self.to_pay,
                format!(
                    "{pays} payments ({bad_pays} not 200), {cancels} cancels ({bad_cancels} \
                     neither 200 nor not_cancellable)"
                ),
            ),
        ]
    }

    pub fn to_json(&self) -> Value {
        json!({
            "reserved": self.reserved,
            "paid": self.to_pay,
            "cancelled": self.to_cancel,
            "left_to_expire": self.reserved - self.to_pay - self.to_cancel,
            "answers": self.report.as_ref().map(Report::to_json),
        })
    }
}
