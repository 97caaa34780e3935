//! Unit tests of the order id generator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::bits::{fnv1a64, sequence_of};
use super::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64};

/// A clock moved by hand. When `advance_on_pause` is set, each wait by the generator moves
/// it forward 1 ms (like `tokio::time::pause` auto-advance); otherwise it stays stuck.
#[derive(Debug)]
struct FakeClock {
    now: AtomicI64,
    advance_on_pause: AtomicBool,
    pauses: AtomicU64,
}

/// 2026-03-01T00:00:00Z, an arbitrary time well inside the range.
const T: i64 = EPOCH_UNIX_MS + 59 * 86_400_000;

impl FakeClock {
    fn at(ms: i64) -> Arc<Self> {
        Arc::new(Self {
            now: AtomicI64::new(ms),
            advance_on_pause: AtomicBool::new(true),
            pauses: AtomicU64::new(0),
        })
    }
    fn set(&self, ms: i64) {
        self.now.store(ms, Ordering::SeqCst);
    }
    fn stuck(&self) {
        self.advance_on_pause.store(false, Ordering::SeqCst);
    }
    fn pauses(&self) -> u64 {
        self.pauses.load(Ordering::SeqCst)
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
    fn pause(&self, _behind_ms: u64) {
        self.pauses.fetch_add(1, Ordering::SeqCst);
        if self.advance_on_pause.load(Ordering::SeqCst) {
            self.now.fetch_add(1, Ordering::SeqCst);
        } else {
            std::thread::yield_now();
        }
    }
}

fn fake_gen(node: u16, clock: &Arc<FakeClock>) -> OrderIdGenerator<Arc<FakeClock>> {
    OrderIdGenerator::with_clock(node, Arc::clone(clock), DEFAULT_MAX_ROLLBACK_WAIT).unwrap()
}

#[test]
fn unique_and_increasing_across_threads() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 50_000;
    let generator = Arc::new(OrderIdGenerator::new(7).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let generator = Arc::clone(&generator);
            std::thread::spawn(move || {
                let user = format!("user-{t}");
                (0..PER_THREAD)
                    .map(|_| generator.next(&user).unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut all = HashSet::with_capacity(THREADS * PER_THREAD);
    for (t, handle) in handles.into_iter().enumerate() {
        let ids = handle.join().unwrap();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "thread {t}: ids not strictly increasing"
        );
        let gene = shard_gene(&format!("user-{t}"));
        assert!(
            ids.iter()
                .all(|&id| gene_of(id) == gene && node_of(id) == 7)
        );
        all.extend(ids);
    }
    assert_eq!(
        all.len(),
        THREADS * PER_THREAD,
        "duplicate ids across threads"
    );
}

#[test]
fn different_nodes_never_collide_at_the_same_time() {
    let clock = FakeClock::at(T);
    let a = fake_gen(1, &clock);
    let b = fake_gen(2, &clock);
    let mut seen = HashSet::new();
    // 3000 each: more than one millisecond's sequence, so both also cross milliseconds.
    for _ in 0..3000 {
        let (x, y) = (a.next("42").unwrap(), b.next("42").unwrap());
        assert_eq!((node_of(x), node_of(y)), (1, 2));
        assert!(seen.insert(x) && seen.insert(y), "collision at {x} / {y}");
    }
    assert_eq!(seen.len(), 6000);
}

#[test]
fn gene_matches_user_and_fields_round_trip() {
    let clock = FakeClock::at(T);
    let generator = fake_gen(200, &clock);
    for user in [
        "0",
        "15",
        "16",
        "12345",
        "18446744073709551615",
        "alice",
        "",
        "+5",
    ] {
        let id = generator.next(user).unwrap();
        assert_eq!(gene_of(id), shard_gene(user), "user {user:?}");
        assert_eq!(node_of(id), 200);
        assert_eq!(timestamp_ms_of(id), T);
        assert!(i64::try_from(id).is_ok(), "sign bit set");
    }
    // Numeric ids: plain mod 16.
    assert_eq!(shard_gene("12345"), (12345 % 16) as u8);
    assert_eq!(shard_gene("007"), 7);
    assert_eq!(shard_gene("18446744073709551615"), 15);
    // Non-numeric (and overflowing) ids: FNV-1a 64 mod 16, pinned so it can never drift.
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    assert_eq!(shard_gene("a"), 0xc);
    assert_eq!(shard_gene("foobar"), 0x8);
    assert_eq!(shard_gene("+5"), (fnv1a64(b"+5") & 15) as u8);
    assert_eq!(
        shard_gene("18446744073709551616"),
        (fnv1a64(b"18446744073709551616") & 15) as u8
    );

    let id = generator.next_with_gene(11).unwrap();
    assert_eq!(gene_of(id), 11);
    // The exact bit layout, pinned: stored ids depend on it.
    let ms = (T - EPOCH_UNIX_MS) as u64;
    assert_eq!(id, (ms << 22) | (200 << 14) | (8 << 4) | 11);
    assert_eq!(sequence_of(id), 8);
    assert_eq!(
        generator.next_with_gene(16),
        Err(OrderIdError::GeneOutOfRange { gene: 16 })
    );
}

#[test]
fn later_milliseconds_give_larger_ids() {
    let clock = FakeClock::at(T);
    let high_node = fake_gen(255, &clock);
    let low_node = fake_gen(0, &clock);
    let first = high_node.next_with_gene(15).unwrap();
    clock.set(T + 1);
    // Smaller node and gene, but a later millisecond wins.
    let second = low_node.next_with_gene(0).unwrap();
    clock.set(T + 60_000);
    let third = high_node.next_with_gene(0).unwrap();
    assert!(first < second && second < third);
    assert_eq!(
        [first, second, third].map(timestamp_ms_of),
        [T, T + 1, T + 60_000]
    );
}

#[test]
fn used_up_millisecond_moves_to_the_next() {
    let clock = FakeClock::at(T);
    let generator = fake_gen(3, &clock);
    let ids: Vec<u64> = (0..3000).map(|_| generator.next("bob").unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(timestamp_ms_of(ids[0]), T);
    assert_eq!(timestamp_ms_of(ids[1023]), T);
    assert_eq!(sequence_of(ids[1023]), MAX_SEQUENCE);
    assert_eq!(timestamp_ms_of(ids[1024]), T + 1);
    assert_eq!(sequence_of(ids[1024]), 0);
    assert_eq!(timestamp_ms_of(ids[2999]), T + 2);
    // It waited for the clock rather than borrowing ahead of it.
    assert_eq!(clock.pauses(), 2);
    assert_eq!(clock.now_ms(), T + 2);
}

#[test]
fn small_rollback_is_waited_out() {
    let clock = FakeClock::at(T);
    let generator = fake_gen(1, &clock);
    let before = generator.next("carol").unwrap();
    clock.set(T - 3);
    let after = generator.next("carol").unwrap();
    assert!(after > before);
    assert_eq!(timestamp_ms_of(after), T);
    assert_eq!(clock.pauses(), 3, "should have waited for the clock");
}

#[test]
fn large_rollback_is_refused_and_mints_nothing() {
    let clock = FakeClock::at(T);
    let generator = fake_gen(1, &clock);
    let before = generator.next_with_gene(4).unwrap();
    clock.set(T - 100);
    assert_eq!(
        generator.next_with_gene(4),
        Err(OrderIdError::ClockMovedBack { by_ms: 100 })
    );
    assert_eq!(clock.pauses(), 0, "refused without waiting");
    clock.set(T);
    // The very next sequence value: the refused call consumed nothing.
    let after = generator.next_with_gene(4).unwrap();
    assert_eq!(after, before + (1 << SEQUENCE_SHIFT));
}

#[test]
fn stuck_clock_within_the_wait_is_refused() {
    let clock = FakeClock::at(T);
    let generator = fake_gen(1, &clock);
    let before = generator.next_with_gene(0).unwrap();
    clock.stuck();
    clock.set(T - 2);
    let started = Instant::now();
    let err = generator.next_with_gene(0).unwrap_err();
    assert!(
        matches!(err, OrderIdError::ClockStalled { behind_ms: 2, .. }),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_millis(3));
    clock.set(T);
    assert_eq!(
        generator.next_with_gene(0).unwrap(),
        before + (1 << SEQUENCE_SHIFT)
    );
}

#[test]
fn zero_wait_refuses_any_rollback() {
    let clock = FakeClock::at(T);
    let generator = OrderIdGenerator::with_clock(1, Arc::clone(&clock), Duration::ZERO).unwrap();
    generator.next("x").unwrap();
    clock.set(T - 1);
    assert_eq!(
        generator.next("x"),
        Err(OrderIdError::ClockMovedBack { by_ms: 1 })
    );
}

#[test]
fn clock_outside_the_range_is_refused() {
    let clock = FakeClock::at(EPOCH_UNIX_MS - 1);
    let generator = fake_gen(1, &clock);
    assert_eq!(
        generator.next("x"),
        Err(OrderIdError::ClockBeforeEpoch {
            now_ms: EPOCH_UNIX_MS - 1
        })
    );
    clock.set(i64::MIN);
    assert!(matches!(
        generator.next("x"),
        Err(OrderIdError::ClockBeforeEpoch { .. })
    ));
    let last_ms = EPOCH_UNIX_MS + MAX_TIMESTAMP as i64;
    clock.set(last_ms);
    let id = generator.next("x").unwrap();
    assert_eq!(timestamp_ms_of(id), last_ms);
    assert!(
        i64::try_from(id).is_ok(),
        "sign bit set at the last millisecond"
    );
    clock.set(last_ms + 1);
    assert_eq!(
        generator.next("x"),
        Err(OrderIdError::ClockOutOfRange {
            now_ms: last_ms + 1
        })
    );
}

#[test]
fn node_id_must_fit_eight_bits() {
    assert_eq!(
        OrderIdGenerator::new(256).unwrap_err(),
        OrderIdError::NodeIdOutOfRange { node_id: 256 }
    );
    assert_eq!(OrderIdGenerator::new(255).unwrap().node_id(), 255);
}

#[test]
fn system_clock_is_after_the_epoch() {
    let id = OrderIdGenerator::new(9).unwrap().next("dave").unwrap();
    let now = crate::clock::Clock::system().now_ms();
    assert!((now - timestamp_ms_of(id)).abs() < 10_000);
}

#[test]
fn the_gateway_clock_moved_by_hand_mints_past_a_used_up_millisecond() {
    let clock = crate::clock::Clock::manual(T);
    let generator =
        OrderIdGenerator::with_clock(4, clock.clone(), DEFAULT_MAX_ROLLBACK_WAIT).unwrap();
    let ids: Vec<u64> = (0..=MAX_SEQUENCE + 1)
        .map(|_| generator.next("erin").unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    // The generator's wait for the next millisecond moved the shared clock, exactly that far.
    assert_eq!(clock.now_ms(), T + 1);
    assert_eq!(timestamp_ms_of(ids[ids.len() - 1]), T + 1);
    clock.advance(-100);
    assert_eq!(
        generator.next("erin"),
        Err(OrderIdError::ClockMovedBack { by_ms: 100 })
    );
}

#[test]
fn a_generator_starting_after_a_mark_mints_only_above_it() {
    let clock = FakeClock::at(T);
    let generator = fake_gen(3, &clock).starting_after(T + 2);
    assert_eq!(generator.last_ms(), T + 2);
    // Within the small rollback that is waited out: the first id is in the millisecond after.
    let id = generator.next("7").unwrap();
    assert_eq!(timestamp_ms_of(id), T + 3);
    // Far behind the mark: refused.
    let clock = FakeClock::at(T);
    let generator = fake_gen(3, &clock).starting_after(T + 60_000);
    assert!(matches!(
        generator.next("7"),
        Err(OrderIdError::ClockMovedBack { by_ms: 60_000 })
    ));
    clock.set(T + 60_001);
    assert_eq!(timestamp_ms_of(generator.next("7").unwrap()), T + 60_001);
    // A mark before the epoch (none recorded yet) changes nothing.
    let generator = fake_gen(3, &clock).starting_after(0);
    assert_eq!(timestamp_ms_of(generator.next("7").unwrap()), T + 60_001);
}

#[test]
fn a_generator_mints_no_further_than_its_lease_mark() {
    let clock = FakeClock::at(T);
    let mark = Arc::new(AtomicI64::new(T + 10));
    let generator = fake_gen(3, &clock).minting_until(mark.clone());
    assert!(generator.next("7").is_ok());
    clock.set(T + 11);
    assert_eq!(
        generator.next("7"),
        Err(OrderIdError::PastLeaseMark {
            now_ms: T + 11,
            mark_ms: T + 10
        })
    );
    mark.store(T + 20, Ordering::SeqCst);
    assert_eq!(timestamp_ms_of(generator.next("7").unwrap()), T + 11);
}

#[test]
fn a_manual_clock_is_moved_by_the_order_id_generators_wait() {
    let clock = crate::clock::Clock::manual(5_000);
    Clock::pause(&clock, 3);
    assert_eq!(Clock::now_ms(&clock), 5_003);
}
