//! What the `(user_id, order_id)` index costs SQLite per order (BENCHMARKS.md §10): the same
//! writes, interleaved, into the store as built and into one whose user indexes are dropped.

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
    const ROUND: u64 = 50_000;
    let with = Fresh::sqlite();
    let without = Fresh::sqlite();
    let stores = [with.open(4).unwrap(), without.open(4).unwrap()];
    for table in (0..16).map(|gene| table_of(gene, 4)) {
        without.execute(&format!("DROP INDEX {table}_user"));
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
        let [a, b] = [0, 1].map(|i| write(stores[i].as_ref(), ROUND));
        println!(
            "round {round}: µs of CPU per order with the user index {a:.1}, without {b:.1}: \
             the index {:.1} ({:.0}%)",
            a - b,
            (a - b) * 100.0 / a
        );
    }
}
