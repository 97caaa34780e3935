//! Orders looked up by campaign, a damaged row reported as corrupt rather than read, and the
//! rate of concurrent lookups by id (a measurement).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use super::{order, orders};
use crate::store::StoreError;
use crate::store::shards::table_of;
use crate::store::test_backends::each_backend;

#[test]
fn orders_of_campaign_filters_by_campaign() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let a = orders(0, 25, "spring");
        let b = orders(100, 110, "autumn");
        store.write_batch(&a).unwrap();
        store.write_batch(&b).unwrap();
        let mut got = store.orders_of_campaign("autumn").unwrap();
        got.sort_by_key(|o| o.order_id);
        let mut want = b.clone();
        want.sort_by_key(|o| o.order_id);
        assert_eq!(got, want);
        assert_eq!(store.orders_of_campaign("spring").unwrap().len(), 25);
        assert!(store.orders_of_campaign("winter").unwrap().is_empty());
    });
}

#[test]
fn a_damaged_row_is_reported_as_corrupt() {
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let o = order(5, "c1");
        store.write_batch(std::slice::from_ref(&o)).unwrap();
        fresh.execute(&format!(
            "UPDATE {} SET status = 'lost'",
            table_of(o.order_id, 4)
        ));
        let err = store.get(o.order_id).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { order_id, .. } if order_id == o.order_id));
        assert!(!err.is_transient());
        assert!(store.orders_of_campaign("c1").is_err());
    });
}

/// Throughput check, not a pass/fail, of many short concurrent reads (what the read handlers
/// do on blocking threads): 8 threads each look up 20,000 stored orders by id, sharing the
/// store (for PostgreSQL, its connection pool). `cargo test --release -p flashgate --lib
/// store::tests::lookups::read_rate -- --ignored --nocapture` (both backends).
#[test]
#[ignore = "timing experiment; run by hand with --release"]
fn read_rate() {
    const THREADS: u64 = 8;
    const GETS: u64 = 20_000;
    each_backend(|fresh| {
        let store = fresh.open(4).unwrap();
        let all = orders(0, 10_000, "bench");
        for batch in all.chunks(512) {
            store.write_batch(batch).unwrap();
        }
        let all = &all;
        let store = &store;
        let start = Instant::now();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                s.spawn(move || {
                    for i in 0..GETS {
                        let want = &all[((t * GETS + i * 7) % all.len() as u64) as usize];
                        let got = store.get(want.order_id).unwrap();
                        assert_eq!(got.as_ref(), Some(want));
                    }
                });
            }
        });
        let secs = start.elapsed().as_secs_f64();
        let gets = THREADS * GETS;
        println!(
            "{}: {gets} gets on {THREADS} threads in {secs:.2}s: {:.0} gets/s",
            fresh.name(),
            gets as f64 / secs
        );
    });
}
