//! The comparison as a person reads it: a Markdown table, one row per side of each round,
//! and the ratios under it.

use super::rounds::Ratios;
use super::side::Side;
use super::subject::{Role, Subject};

/// The table's head.
pub(super) fn print_head() {
    println!(
        "| round | server | req/s | p50 ms | p99 ms | server CPU µs/req | Redis CPU µs/req | Redis script µs/reservation | load generator CPU µs/req | answers |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
}

/// The row of one side, and for the gateway what each of its threads spent (on stderr).
pub(super) fn print_side(round: u32, subject: &Subject, side: &Side) {
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
}

/// The line under the table: the ratios over `rounds` rounds.
pub(super) fn print_ratios(ratios: &Ratios, rounds: usize) {
    println!(
        "ratio gateway/hello: {} · gateway/naive: {} (medians of {} round(s))",
        times(ratios.vs_hello),
        times(ratios.vs_naive),
        rounds
    );
}

fn show(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

fn times(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}×"))
}
