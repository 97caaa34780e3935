//! Wall-clock time in the units the scripts, records and tokens use, read through one [`Clock`].
//!
//! A gateway creates one `Clock` in [`crate::run`] and hands a copy to everything that reads
//! time: campaign windows, the reserver (the `now` its scripts compare deadlines with), the
//! sweepers, the node lease, retirement and archive passes, the handlers that stamp times and
//! the order-id generator. Production reads the system clock; tests build a
//! [`Clock::manual`] one and move it with [`Clock::advance`] / [`Clock::set`] instead of
//! sleeping, so time-dependent behaviour is exact, not "late enough on an idle machine".

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
        }
    }

    /// Unix seconds (token expiries).
    pub fn now_s(&self) -> i64 {
        self.now_ms() / 1000
    }

    /// Moves a manual clock `ms` forward (backward when negative); returns the new reading. A
    /// system clock cannot be moved: it is left alone and read.
    pub fn advance(&self, ms: i64) -> i64 {
        match &self.0 {
            Source::System => self.now_ms(),
            Source::Manual(now) => now.fetch_add(ms, Ordering::AcqRel).saturating_add(ms),
        }
    }

    /// Moves a manual clock forward to `ms` (Unix ms) unless it already reads later: waiters
    /// that each move it to the time they wait for move it once, as real time would, not once
    /// each. A system clock is left alone.
    pub fn advance_to(&self, ms: i64) {
        if let Source::Manual(now) = &self.0 {
            now.fetch_max(ms, Ordering::AcqRel);
        }
    }

    /// Sets a manual clock to `ms` (Unix ms), forward or back. A system clock is left alone.
    pub fn set(&self, ms: i64) {
        if let Source::Manual(now) = &self.0 {
            now.store(ms, Ordering::Release);
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
}
