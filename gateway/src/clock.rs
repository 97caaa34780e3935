//! Wall-clock time in the units the scripts, records and tokens use, read through one [`Clock`].
//!
//! A gateway creates one `Clock` in [`crate::run`] and hands a copy to everything that reads
//! time: campaign windows, the reserver (the `now` its scripts compare deadlines with), the
//! sweepers, the node lease, retirement and archive passes, the handlers that stamp times and
//! the order-id generator. Production reads the system clock. Unit tests build a
//! [`Clock::manual`] one and move it with [`Clock::advance`] / [`Clock::set`] instead of
//! sleeping, so time-dependent behaviour is exact, not "late enough on an idle machine".
//! Integration tests run whole gateways on a [`Clock::shiftable`] one: real time that flows
//! as usual, which a test moves forward to a window's end or a payment deadline at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The gateway's one source of wall-clock time; cheap to clone, shared by every component.
///
/// The system clock is a unit variant: reading it is one `SystemTime::now()` behind a branch
/// that is always taken the same way, with no lock, allocation or shared atomic, so the
/// purchase path pays what it paid for the free function. A manual clock is one
/// `Arc<AtomicI64>` that every clone shares, so moving it moves every component's time.
///
/// No `Default`: a component is handed the gateway's clock, it never makes its own.
#[derive(Debug, Clone)]
pub struct Clock(Source);

#[derive(Debug, Clone)]
enum Source {
    /// The operating system's wall clock.
    System,
    /// Unix milliseconds set by hand (tests); moves only when told to (see [`Clock::manual`]).
    Manual(Arc<AtomicI64>),
    /// The system clock plus milliseconds added by hand (tests; see [`Clock::shiftable`]).
    Shifted(Arc<AtomicI64>),
}

impl Clock {
    /// The operating system's wall clock: what a gateway runs on.
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// A clock that reads `start_ms` (Unix ms) until moved with [`Clock::advance`] or
    /// [`Clock::set`]; its clones move with it. A component that would wait for a system clock
    /// to pass a time (the order-id generator, the node lease at start) moves a manual one
    /// there instead, by exactly the wait, so nothing sleeps on a clock that cannot move.
    pub fn manual(start_ms: i64) -> Self {
        Self(Source::Manual(Arc::new(AtomicI64::new(start_ms))))
    }

    /// The system clock, which a test can move forward (or back) with [`Clock::advance`],
    /// [`Clock::advance_to`] or [`Clock::set`] while it goes on flowing: what a whole gateway
    /// under an integration test runs on. Its background loops, timeouts and the order-id
    /// generator's waits see time flow as in production; a test that needs "after the window
    /// ends" or "past the payment deadline" moves the clock there instead of sleeping.
    pub fn shiftable() -> Self {
        Self(Source::Shifted(Arc::new(AtomicI64::new(0))))
    }

    /// Unix milliseconds. A system clock before 1970 reads as 0, which every window check
    /// treats as "not started": failing closed.
    #[inline]
    pub fn now_ms(&self) -> i64 {
        self.read_ms().max(0)
    }

    /// The reading, negative before 1970 (the order-id generator names such a clock).
    #[inline]
    pub(crate) fn read_ms(&self) -> i64 {
        match &self.0 {
            Source::System => system_ms(),
            Source::Manual(ms) => ms.load(Ordering::Acquire),
            Source::Shifted(offset) => system_ms().saturating_add(offset.load(Ordering::Acquire)),
        }
    }

    /// Unix seconds (token expiries).
    pub fn now_s(&self) -> i64 {
        self.now_ms() / 1000
    }

    /// Moves a manual or shiftable clock `ms` forward (backward when negative); returns the
    /// new reading. A system clock cannot be moved: it is left alone and read.
    pub fn advance(&self, ms: i64) -> i64 {
        match &self.0 {
            Source::System => self.now_ms(),
            Source::Manual(now) => now.fetch_add(ms, Ordering::AcqRel).saturating_add(ms),
            Source::Shifted(offset) => {
                offset.fetch_add(ms, Ordering::AcqRel);
                self.now_ms()
            }
        }
    }

    /// Moves a manual or shiftable clock forward to `ms` (Unix ms) unless it already reads
    /// later: waiters that each move it to the time they wait for move it once, as real time
    /// would, not once each. A system clock is left alone.
    pub fn advance_to(&self, ms: i64) {
        match &self.0 {
            Source::System => {}
            Source::Manual(now) => {
                now.fetch_max(ms, Ordering::AcqRel);
            }
            Source::Shifted(offset) => {
                offset.fetch_max(ms.saturating_sub(system_ms()), Ordering::AcqRel);
            }
        }
    }

    /// Sets a manual or shiftable clock to read `ms` (Unix ms) now, forward or back. A system
    /// clock is left alone.
    pub fn set(&self, ms: i64) {
        match &self.0 {
            Source::System => {}
            Source::Manual(now) => now.store(ms, Ordering::Release),
            Source::Shifted(offset) => {
                offset.store(ms.saturating_sub(system_ms()), Ordering::Release)
            }
        }
    }

    /// Waits for this clock to reach `ms` (Unix ms): a clock that moves by itself is slept on
    /// for the distance, once; a manual one, which would never get there, is moved there.
    /// Every wait for the clock to pass a mark goes through here, so no caller special-cases
    /// tests. A clock stepped back during the sleep is not waited for again: the caller
    /// decides what a clock still short of its mark means (the node lease's generator mints
    /// nothing until it passes).
    pub async fn wait_until(&self, ms: i64) {
        if self.is_manual() {
            self.advance_to(ms);
            return;
        }
        let ahead = ms.saturating_sub(self.now_ms());
        if ahead > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ahead.unsigned_abs())).await;
        }
    }

    /// Whether this clock moves only by hand (then waiting for it in real time is pointless).
    pub fn is_manual(&self) -> bool {
        matches!(self.0, Source::Manual(_))
    }
}

/// The system clock in Unix milliseconds, negative before 1970.
fn system_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Unix milliseconds from the system clock, for the process edges that have no gateway
/// [`Clock`] to hand (tools, test harnesses, store-side stamps); a gateway component reads
/// its `Clock` instead.
pub fn now_ms() -> i64 {
    Clock::system().now_ms()
}

/// Unix seconds from the system clock; see [`now_ms`].
pub fn now_s() -> i64 {
    now_ms() / 1000
}

/// The last instant RFC 3339 can write with four year digits (9999-12-31T23:59:59.999Z).
const LAST_WRITABLE_MS: i64 = 253_402_300_799_999;

/// `ms` as an RFC 3339 UTC timestamp with milliseconds, as the API shows times. Out-of-range
/// values are clamped, never a panic.
pub fn rfc3339(ms: i64) -> String {
    let ms = ms.clamp(0, LAST_WRITABLE_MS);
    let time = UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn a_manual_clock_moves_only_by_hand_and_its_clones_move_with_it() {
        let clock = Clock::manual(1_000);
        let copy = clock.clone();
        assert_eq!(copy.now_ms(), 1_000);
        assert_eq!(clock.advance(2_500), 3_500);
        assert_eq!(copy.now_ms(), 3_500);
        assert_eq!(copy.now_s(), 3);
        clock.set(10);
        assert_eq!(copy.now_ms(), 10);
        assert!(copy.is_manual());
    }

    #[test]
    fn the_system_clock_is_not_moved() {
        let clock = Clock::system();
        clock.set(0);
        assert!(clock.now_ms() > 1_767_225_600_000);
        assert!(!clock.is_manual());
    }

    #[test]
    fn a_shiftable_clock_flows_and_moves_by_hand() {
        let clock = Clock::shiftable();
        let copy = clock.clone();
        let before = super::now_ms();
        let moved = clock.advance(3_600_000);
        assert!(moved >= before + 3_600_000, "{moved} vs {before}");
        assert!(copy.now_ms() >= moved);
        clock.advance_to(before);
        assert!(copy.now_ms() >= moved, "advance_to never moves back");
        clock.set(before - 60_000);
        assert!(copy.now_ms() < super::now_ms());
        assert!(!copy.is_manual(), "it flows by itself: waits on it sleep");
    }

    #[tokio::test]
    async fn waiting_for_a_manual_clock_moves_it_and_a_flowing_one_is_slept_on() {
        let manual = Clock::manual(1_000);
        manual.wait_until(5_000).await;
        assert_eq!(manual.now_ms(), 5_000);
        manual.wait_until(2_000).await;
        assert_eq!(manual.now_ms(), 5_000);

        let flowing = Clock::shiftable();
        let mark = flowing.now_ms() + 30;
        flowing.wait_until(mark).await;
        assert!(flowing.now_ms() >= mark);
    }
}
