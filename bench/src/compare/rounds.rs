//! The rounds of a comparison: every server loaded in turn, round after round, and the
//! ratios taken as medians over the rounds (single runs on a shared VM swing by 10-15%).

use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::args::Target;

use super::CompareArgs;
use super::purchases::Purchases;
use super::side::Side;
use super::subject::Subject;
use super::watched_redis::WatchedRedis;

/// Every round's sides, each in the order of the subjects (gateway, hello, naive).
pub(super) struct Rounds(Vec<Vec<Side>>);

/// The gateway's rate as a multiple of each yardstick's: medians over the rounds.
pub(super) struct Ratios {
    pub(super) vs_hello: Option<f64>,
    pub(super) vs_naive: Option<f64>,
}

impl Rounds {
    /// Loads every subject in turn for `args.rounds` rounds, handing each side to `measured`
    /// as it comes (the table prints its row then, not after the last round).
    ///
    /// # Errors
    /// A server unreachable.
    pub(super) fn play(
        args: &CompareArgs,
        subjects: &[Subject],
        purchases: &Purchases,
        watched: &mut Option<WatchedRedis>,
        mut measured: impl FnMut(u32, &Subject, &Side),
    ) -> anyhow::Result<Self> {
        let mut rounds: Vec<Vec<Side>> = Vec::new();
        for round in 1..=args.rounds.max(1) {
            let mut sides = Vec::new();
            for subject in subjects {
                let requests = purchases.for_side(subject, round);
                let side = Side::measure(subject, args, requests, watched)?;
                measured(round, subject, &side);
                sides.push(side);
            }
            rounds.push(sides);
        }
        Ok(Self(rounds))
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// The ratios of the gateway to the hello server and to the naive gateway (when it ran).
    pub(super) fn ratios(&self, subjects: usize) -> Ratios {
        Ratios {
            vs_hello: self.ratio_to(1, subjects),
            vs_naive: self.ratio_to(2, subjects),
        }
    }

    /// The median over the rounds of the gateway's rate over subject `i`'s.
    fn ratio_to(&self, i: usize, subjects: usize) -> Option<f64> {
        (i < subjects).then(|| {
            median(
                self.0
                    .iter()
                    .map(|s| s[0].rate / s[i].rate.max(1e-9))
                    .collect(),
            )
        })
    }

    /// Every figure as JSON, written to `path`.
    ///
    /// # Errors
    /// `path` not writable.
    pub(super) fn write_json(
        &self,
        path: &Path,
        args: &CompareArgs,
        target: &Target,
        subjects: &[Subject],
        ratios: &Ratios,
    ) -> anyhow::Result<()> {
        let value = json!({
            "scenario": {
                "name": "compare", "campaign": target.campaign.id,
                "connections": args.engine.connections, "threads": args.engine.threads,
                "duration_s": args.duration.as_secs_f64(),
            },
            "rounds": self.0.iter().map(|sides| round_json(subjects, sides)).collect::<Vec<_>>(),
            "ratio": ratios.vs_hello,
            "ratio_naive": ratios.vs_naive,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&value)?)
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// One round as JSON: each side by its server's name, and the round's ratios.
fn round_json(subjects: &[Subject], sides: &[Side]) -> Value {
    let mut round = serde_json::Map::new();
    for (subject, side) in subjects.iter().zip(sides) {
        round.insert(subject.kind.name().to_owned(), side.to_json());
    }
    // The gateway is "gateway"; "reference" and "ratio" keep older readers working.
    round.insert("reference".into(), sides[1].to_json());
    round.insert(
        "ratio".into(),
        json!(sides[0].rate / sides[1].rate.max(1e-9)),
    );
    if let Some(naive) = sides.get(2) {
        round.insert(
            "ratio_naive".into(),
            json!(sides[0].rate / naive.rate.max(1e-9)),
        );
    }
    Value::Object(round)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
