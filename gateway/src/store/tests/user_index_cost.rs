//! What the user index costs SQLite per order (BENCHMARKS.md §10): the same writes,
//! interleaved, into the store as built (its user index merged in bulk from a tail), into one
//! whose index is written with every row (as before the merged index) and into one with no
//! user index at all.

use flashgate_stock::{Order, OrderStatus};

use crate::store::OrderStore;
use crate::store::shards::table_of;
use crate::store::test_backends::Fresh;

/// This thread's CPU time (user + system), in clock ticks: SQLite writes on its caller's thread.
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A flash sale's orders: one campaign, each a buyer's first, buyers in random order.
fn flash_orders(from: u64, to: u64) -> Vec<Order> {
    (from..to)
        .map(|n| {
            // A bijective mix of n: buyers arrive in no order the index could append.
            let mixed = n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
            Order {
                order_id: (n << 4) | (mixed % 16) | (1 << 40),
                user_id: format!("u{mixed:016x}"),
                campaign_id: "flash".to_owned(),
                sku: "FLASH".to_owned(),
                quantity: 1,
                unit_price_cents: 99_900,
                status: OrderStatus::PendingPayment,
                version: 1,
                created_at_ms: 1_700_000_000_000 + n as i64,
                pay_deadline_ms: 1_700_000_900_000 + n as i64,
                paid_at_ms: None,
                updated_at_ms: 1_700_000_000_000 + n as i64,
            }
        })
        .collect()
}

/// CPU per order, not a pass/fail: `cargo test --release -p flashgate --lib
/// store::tests::user_index_cost -- --ignored --nocapture` (SQLite; batches of 128, the size
/// the persistence worker writes at ~26,000 purchases/s and a 5 ms flush interval).
#[test]
#[ignore = "timing experiment; run by hand with --release"]
fn user_index_cost() {
    const PREFILL: u64 = 400_000;
    // Long enough for merges by rows (every 65,536 written) and by age alike in each round.
    const ROUND: u64 = 131_072;
    // As built (merged in bulk); the index written with every row, as before; none at all.
    let backends = [Fresh::sqlite(), Fresh::sqlite(), Fresh::sqlite()];
    let stores = backends.each_ref().map(|b| b.open(4).unwrap());
    for table in (0..16).map(|gene| table_of(gene, 4)) {
        let no_tail =
            format!("DROP TRIGGER {table}_user_added; DROP TRIGGER {table}_user_removed;");
        backends[1].execute(&format!(
            "{no_tail} CREATE INDEX {table}_user ON {table} (user_id, order_id);"
        ));
        backends[2].execute(&no_tail);
    }
    let mut next = 0;
    let mut write = |store: &dyn OrderStore, count: u64| {
        let batch = flash_orders(next, next + count);
        next += count;
        let start = thread_cpu_ticks();
        let stored: usize = batch
            .chunks(128)
            .map(|b| store.write_batch(b).unwrap().stored)
            .sum();
        assert_eq!(stored, batch.len());
        (thread_cpu_ticks() - start) as f64 * 10_000.0 / count as f64
    };
    for store in &stores {
        write(store.as_ref(), PREFILL);
    }
    for round in 1..=3 {
        let [merged, per_row, none] = [0, 1, 2].map(|i| write(stores[i].as_ref(), ROUND));
        println!(
            "round {round}: µs of CPU per order with no user index {none:.1}; the index merged \
             in bulk {merged:.1} (+{:.1}), written with every row {per_row:.1} (+{:.1})",
            merged - none,
            per_row - none
        );
    }
}
